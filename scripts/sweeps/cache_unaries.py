"""Spatial-model sweeps, step 1: cache a detector's unaries once, so that many spatial-model
settings can be compared on validation in about a minute each (scripts/sweeps/spatial_fit.py).

Validation crops are cached as they are; training crops with the training augmentation
(MODE aug), also with random grey occluders (occ), or as they are (clean). The detector is
$POSE (default pretrained/pose.safetensors). Used to pick the spatial stage's pair bias and
prior penalty in scripts/train_pretrained.sh. Never touches the test split.

    POSE=runs/pretrained/joint5/model.safetensors .venv/bin/python scripts/sweeps/cache_unaries.py /tmp/u.pt aug
usage: cache_unaries.py OUT.pt MODE(clean|aug|occ) [NTRAIN]"""

import os
import sys
import time

import torch

from lab.config import AugmentConfig
from lab.data.cache import PoseCache
from lab.data.transforms import augment
from lab.models import io

torch.set_num_threads(2)
out, mode = sys.argv[1], sys.argv[2]
ntrain = int(sys.argv[3]) if len(sys.argv) > 3 else 0
model, meta = io.load(os.environ.get("POSE", "pretrained/pose.safetensors"))
model.eval()
cache = PoseCache("cache/lsp128.safetensors")


def occlude(x, g, p=0.5):
    B, _, S, _ = x.shape
    for b in range(B):
        if torch.rand(1, generator=g) < p:
            w = int(S * (0.15 + 0.25 * torch.rand(1, generator=g)))
            h = int(S * (0.15 + 0.25 * torch.rand(1, generator=g)))
            x0 = int(torch.randint(0, S - w, (1,), generator=g))
            y0 = int(torch.randint(0, S - h, (1,), generator=g))
            x[b, :, y0 : y0 + h, x0 : x0 + w] = torch.rand(3, 1, 1, generator=g)
    return x


res = {}
for split in ("val", "train"):
    im, xy, lab = cache[split].subset(ntrain if split == "train" else 0).tensors()
    U, XY, L = [], [], []
    g = torch.Generator().manual_seed(1)
    t0 = time.time()
    for i in range(0, len(im), 64):
        x = im[i : i + 64].float().div(255)
        c = xy[i : i + 64]
        m = lab[i : i + 64]
        if split == "train" and mode != "clean":
            x, c, m = augment(x, c, m, AugmentConfig(), g)
            if mode == "occ":
                x = occlude(x, g)
        with torch.no_grad():
            U.append(model.detector(x).half())
            XY.append(c)
            L.append(m)
        if i % 1280 == 0:
            print(split, i, f"{time.time() - t0:.0f}s", flush=True)
    res[split] = (torch.cat(U), torch.cat(XY), torch.cat(L))
torch.save(res, out)
print("done", time.time() - t0)
