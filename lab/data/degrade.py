"""What everyday photos do to a crop, as training augmentation.

LSP's photos are sharp, well lit sports shots. The photos learners bring are not:
indoor light and colour casts, camera shake, a small person in a large photo (few real
pixels, upsampled), messaging-app JPEG, furniture or other people in front of the body.
`degrade` draws each of these per image with the probabilities in `AugmentConfig`
(all 0 in the shipped models' recipe, so their training is unchanged).

Every function takes crops (B, 3, S, S) float in [0, 1] and a seeded generator, and
never moves a joint: the annotation stays as it is (an occluded joint stays labelled,
as in LSP, so the model learns to place joints it cannot see).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lab.config import AugmentConfig
from lab.data.images import decode_jpeg, encode_jpeg


def degrade(images: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Light, blur, downscaling, JPEG and occluders, each drawn per image."""
    x = light(images, cfg.light, g)
    x = blur(x, cfg.blur, g)
    x = downscale(x, cfg.downscale, g)
    x = occlude(x, cfg.occlude, g)
    return jpeg(x, cfg.jpeg, g)


def _chosen(B: int, p: float, g: torch.Generator) -> list[int]:
    """Indices of the images that get an effect of probability p (draws even when p is 0,
    so switching one effect off does not change the others' draws)."""
    return torch.nonzero(torch.rand(B, generator=g) < p).flatten().tolist()


def _u(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def light(images: torch.Tensor, strength: float, g: torch.Generator) -> torch.Tensor:
    """x' = clamp(c * x^gamma): gamma log-uniform in [1/(1+s), 1+s] (dim rooms, bright sun)
    and a colour cast c in [1 - s/4, 1 + s/4] per channel (indoor white balance)."""
    B = images.shape[0]
    log_gamma = _u(B, -1, 1, g) * torch.log1p(torch.tensor(strength))
    cast = 1 + strength / 4 * (torch.rand(B, 3, generator=g) * 2 - 1)
    if strength <= 0:
        return images
    gamma = log_gamma.exp().to(images)[:, None, None, None]
    return (images.clamp_min(1e-6) ** gamma * cast.to(images)[:, :, None, None]).clamp(0, 1)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """Normalised 1-D Gaussian of radius ceil(2.5 sigma)."""
    r = max(1, int(2.5 * sigma + 0.999))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return k / k.sum()


def blur(images: torch.Tensor, p: float, g: torch.Generator) -> torch.Tensor:
    """Separable Gaussian blur of sigma 0.5-2 crop px on a fraction p of the images."""
    idx = _chosen(images.shape[0], p, g)
    sigmas = _u(len(idx), 0.5, 2.0, g).tolist()
    if not idx:
        return images
    out = images.clone()
    for i, s in zip(idx, sigmas):
        k = gaussian_kernel(s).to(images)
        r = len(k) // 2
        x = F.pad(images[i:i + 1], (r, r, r, r), mode="replicate")
        x = F.conv2d(x, k.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
        out[i:i + 1] = F.conv2d(x, k.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)
    return out


def downscale(images: torch.Tensor, p: float, g: torch.Generator) -> torch.Tensor:
    """A small person: shrink by 2-4x (area average), then back up (bilinear)."""
    idx = _chosen(images.shape[0], p, g)
    factors = _u(len(idx), 2.0, 4.0, g).tolist()
    if not idx:
        return images
    S = images.shape[-1]
    out = images.clone()
    for i, f in zip(idx, factors):
        small = F.interpolate(images[i:i + 1], size=max(8, int(S / f)), mode="area")
        out[i:i + 1] = F.interpolate(small, size=S, mode="bilinear", align_corners=False)
    return out


def occlude(images: torch.Tensor, p: float, g: torch.Generator) -> torch.Tensor:
    """1-2 rectangles (10-40 % of the crop's side) filled with the same region of another
    image of the batch: real texture in front of the body, not a flat patch."""
    B, _, S, _ = images.shape
    idx = _chosen(B, p, g)
    out = images.clone() if idx else images
    for i in idx:
        for _ in range(1 + int(torch.rand(1, generator=g) < 0.5)):
            w, h = (_u(2, 0.1, 0.4, g) * S).long().tolist()
            x0, y0 = int(torch.randint(0, S - w + 1, (1,), generator=g)), int(torch.randint(0, S - h + 1, (1,), generator=g))
            j = (i + 1 + int(torch.randint(0, max(B - 1, 1), (1,), generator=g))) % B
            out[i, :, y0:y0 + h, x0:x0 + w] = images[j, :, y0:y0 + h, x0:x0 + w]
    return out


def jpeg(images: torch.Tensor, p: float, g: torch.Generator) -> torch.Tensor:
    """JPEG round trip at quality 15-60 (blocks, ringing, washed-out colour)."""
    idx = _chosen(images.shape[0], p, g)
    qualities = _u(len(idx), 15, 60, g).round().long().tolist()
    if not idx:
        return images
    out = images.clone()
    for i, q in zip(idx, qualities):
        u8 = (images[i].detach().cpu().permute(1, 2, 0) * 255).round().clamp(0, 255).to(torch.uint8).numpy()
        back = torch.from_numpy(np.array(decode_jpeg(encode_jpeg(u8, q)))).permute(2, 0, 1)
        out[i] = back.to(images).div(255)
    return out
