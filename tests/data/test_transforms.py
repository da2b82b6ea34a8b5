"""lab.data.transforms: crop geometry and batched augmentation.

Convention under test: pixel centres at integers, an image of width W spans
[-0.5, W - 0.5], an affine maps source pixels to destination pixels.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from lab.config import AugmentConfig
from lab.data.transforms import (
    apply_affine,
    augment,
    box_affine,
    color_jitter,
    compose,
    crop_image,
    hflip,
    image_box,
    invert_affine,
    person_box,
    random_affines,
    warp,
)
from lab.joints import FLIP_PAIRS, FLIP_PERM, K

NO_AUG = AugmentConfig(scale=0, rotation=0, translate=0, flip=0, color=0)
GEOMETRY = AugmentConfig(scale=0.25, rotation=30, translate=0.08, flip=0.5, color=0)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def blob(h, w, x, y, sigma):
    """Gaussian blob with peak 1 centred at pixel coordinate (x, y)."""
    ys, xs = np.mgrid[0:h, 0:w]
    return np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2))


def centroid(channel, r=4):
    """Intensity centroid of the window of radius r around the argmax (x, y)."""
    c = np.asarray(channel, dtype=np.float64)
    py, px = np.unravel_index(np.argmax(c), c.shape)
    y0, y1 = max(py - r, 0), min(py + r + 1, c.shape[0])
    x0, x1 = max(px - r, 0), min(px + r + 1, c.shape[1])
    win = c[y0:y1, x0:x1]
    ys, xs = np.mgrid[y0:y1, x0:x1]
    return np.array([(win * xs).sum() / win.sum(), (win * ys).sum() / win.sum()])


def rotation_about(cx, cy, deg, s=1.0):
    t = math.radians(deg)
    M = s * np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return np.hstack([M, (np.array([cx, cy]) - M @ [cx, cy])[:, None]])


# ------------------------------------------------------------------ affine algebra
def test_invert_affine_round_trips_to_1e_9(rng):
    pts = rng.uniform(-500, 1500, (200, 2))
    for _ in range(20):
        A = np.hstack([rng.uniform(-3, 3, (2, 2)) + 4 * np.eye(2), rng.uniform(-300, 300, (2, 1))])
        back = apply_affine(invert_affine(A), apply_affine(A, pts))
        np.testing.assert_allclose(back, pts, rtol=0, atol=1e-9)
        np.testing.assert_allclose(compose(A, invert_affine(A)), [[1, 0, 0], [0, 1, 0]], atol=1e-12)


def test_compose_is_a_after_b(rng):
    A = np.hstack([rng.normal(size=(2, 2)), rng.normal(size=(2, 1))])
    B = np.hstack([rng.normal(size=(2, 2)), rng.normal(size=(2, 1))])
    p = rng.normal(size=(10, 2))
    np.testing.assert_allclose(apply_affine(compose(A, B), p), apply_affine(A, apply_affine(B, p)), atol=1e-12)


def test_apply_affine_torch_batched_matches_numpy(rng):
    A = rng.normal(size=(5, 2, 3))
    p = rng.normal(size=(5, 14, 2))
    got = apply_affine(torch.from_numpy(A), torch.from_numpy(p)).numpy()
    for b in range(5):
        np.testing.assert_allclose(got[b], apply_affine(A[b], p[b]), atol=1e-12)


# ------------------------------------------------------------------ person crop
def test_person_box_covers_labelled_joints_with_margin(rng):
    for _ in range(50):
        coords = rng.uniform(0, 400, (14, 2)).astype(np.float32)
        lab = rng.random(14) < 0.7
        lab[rng.integers(14)] = True
        coords[~lab] = rng.uniform(-1e4, 1e4, ((~lab).sum(), 2))  # junk must be ignored
        margin = rng.uniform(0, 0.5)
        cx, cy, side = person_box(coords, lab, margin)
        pts = coords[lab]
        extent = float((pts.max(0) - pts.min(0)).max())
        assert side == pytest.approx(max(extent * (1 + margin), 16.0))
        # Every labelled joint is inside, at least margin * extent / 2 away from the edge.
        gap = side / 2 - np.abs(pts - [cx, cy]).max(1)
        assert (gap >= margin * extent / 2 - 1e-3).all()


def test_person_box_minimum_side_and_no_joints():
    coords = np.full((14, 2), 50.0, np.float32)
    assert person_box(coords, np.ones(14, bool), 0.3) == (50.0, 50.0, 16.0)
    with pytest.raises(ValueError):
        person_box(coords, np.zeros(14, bool), 0.3)


def test_person_box_on_real_records_ignores_unlabelled(lspet):
    r = lspet[4]                                   # four unannotated joints held at (0, 0)
    cx, cy, side = person_box(r.coords, r.labelled, 0.3)
    assert abs(cx - 0) > side / 2 or abs(cy - 0) > side / 2  # (0, 0) is not framed


@pytest.mark.parametrize("box,size", [((50.0, 80.0, 100.0), 128), ((13.3, -7.1, 41.7), 64),
                                      ((1000.5, 20.25, 3000.0), 32)])
def test_box_affine_maps_box_onto_crop_exactly(box, size):
    cx, cy, side = box
    A = box_affine(box, size)
    corners = np.array([[cx - side / 2, cy - side / 2], [cx + side / 2, cy + side / 2]])
    np.testing.assert_allclose(apply_affine(A, corners), [[-0.5, -0.5], [size - 0.5, size - 0.5]], atol=1e-9)
    np.testing.assert_allclose(apply_affine(A, np.array([[cx, cy]])), [[(size - 1) / 2] * 2], atol=1e-9)
    np.testing.assert_allclose(A[:, :2], np.eye(2) * size / side, atol=1e-15)


def test_image_box_frames_the_whole_image():
    W, H, S = 157, 105, 128
    A = box_affine(image_box(W, H), S)
    ext = apply_affine(A, np.array([[-0.5, -0.5], [W - 0.5, H - 0.5]]))
    np.testing.assert_allclose(ext[:, 0], [-0.5, S - 0.5], atol=1e-9)      # the long side fills
    assert ext[0, 1] > -0.5 and ext[1, 1] < S - 0.5                       # the short side fits
    np.testing.assert_allclose(ext[:, 1].mean(), (S - 1) / 2, atol=1e-9)   # centred


def test_crop_to_original_mapping_is_exact_on_real_records(fixture_records):
    for r in fixture_records:
        A = box_affine(person_box(r.coords, r.labelled, 0.3), 128)
        xy = r.coords.astype(np.float64)
        crop = apply_affine(A, xy)
        np.testing.assert_allclose(apply_affine(invert_affine(A), crop), xy, rtol=0, atol=1e-9)
        inside = crop[r.labelled]
        assert (inside > -0.5).all() and (inside < 127.5).all()


@pytest.mark.parametrize("dot,box,size", [
    ((37, 71), (40.3, 65.7, 50.0), 64),         # upsampling 1.28x
    ((5, 110), (20.0, 100.0, 60.0), 128),       # near the image corner, 2.1x
    ((60, 40), (61.7, 38.2, 100.0), 64),        # 0.64x, still no reduce
    ((88, 3), (70.0, 25.0, 90.0), 96),          # dot on the image border
])
def test_crop_image_puts_a_dot_at_the_mapped_coordinate(dot, box, size):
    img = np.zeros((120, 90, 3), np.uint8)
    img[dot[1], dot[0]] = 255
    A = box_affine(box, size)
    crop = crop_image(img, A, size)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    mx, my = apply_affine(A, np.array([dot], float))[0]
    py, px = np.unravel_index(np.argmax(crop[..., 0]), (size, size))
    assert abs(px - mx) <= 0.5 + 1e-9 and abs(py - my) <= 0.5 + 1e-9, ((px, py), (mx, my))


def test_crop_image_outside_the_image_is_black():
    img = np.full((50, 40, 3), 200, np.uint8)
    A = box_affine((19.5, 24.5, 200.0), 100)     # box four times the image
    crop = crop_image(img, A, 100)
    (x0, y0), (x1, y1) = apply_affine(A, np.array([[-0.5, -0.5], [39.5, 49.5]]))
    assert crop[: int(y0) - 1].max() == 0 and crop[:, : int(x0) - 1].max() == 0
    assert (crop[int(y0) + 2:int(y1) - 2, int(x0) + 2:int(x1) - 2] == 200).all()


@pytest.mark.parametrize("deg", [0.0, 17.0, -40.0])
def test_crop_image_blob_centroid_under_general_affines(deg):
    h, w = 150, 130
    x0, y0 = 71.3, 58.6
    img = np.repeat((255 * blob(h, w, x0, y0, 3.0)).round().astype(np.uint8)[..., None], 3, -1)
    A = compose(rotation_about(31.5, 31.5, deg), box_affine((65.0, 60.0, 70.0), 64))
    crop = crop_image(img, A, 64)
    m = apply_affine(A, np.array([[x0, y0]]))[0]
    np.testing.assert_allclose(centroid(crop[..., 1], r=6), m, atol=0.1)


def test_crop_image_reduce_path_maps_exactly():
    """Downscaling by more than 2x box-reduces first; the composed affine must stay exact."""
    h, w = 500, 620
    x0, y0 = 311.3, 207.8
    img = np.repeat((255 * blob(h, w, x0, y0, 12.0)).round().astype(np.uint8)[..., None], 3, -1)
    box = (300.0, 230.0, 420.0)
    A = box_affine(box, 64)
    assert A[0, 0] < 0.5 and int(1 / A[0, 0]) == 6            # the reduce path is taken (f = 6)
    crop = crop_image(img, A, 64)
    m = apply_affine(A, np.array([[x0, y0]]))[0]
    np.testing.assert_allclose(centroid(crop[..., 0], r=5), m, atol=0.1)
    py, px = np.unravel_index(np.argmax(crop[..., 0]), crop.shape[:2])
    assert abs(px - m[0]) <= 0.5 and abs(py - m[1]) <= 0.5
    # Same geometry as a direct (un-reduced) bilinear warp of the full image.
    direct = warp(torch.from_numpy(img).permute(2, 0, 1)[None].double(),
                  torch.from_numpy(A)[None], (64, 64))[0, 0].numpy()
    np.testing.assert_allclose(centroid(direct, r=5), m, atol=0.1)


@pytest.mark.parametrize("W,H", [(613, 587), (700, 520), (601, 599)])
def test_crop_image_reduce_path_anti_aliases(W, H):
    """A one-pixel checkerboard shrunk 8x averages to grey instead of aliasing."""
    img = (((np.add.outer(np.arange(H), np.arange(W))) % 2) * 255).astype(np.uint8)
    img = np.repeat(img[..., None], 3, -1)
    A = box_affine(image_box(W, H), 75)
    crop = crop_image(img, A, 75)
    (x0, y0), (x1, y1) = apply_affine(A, np.array([[-0.5, -0.5], [W - 0.5, H - 0.5]]))
    inner = crop[int(y0) + 3:int(y1) - 3, int(x0) + 3:int(x1) - 3, 0].astype(float)
    assert inner.size > 40 * 40
    assert abs(inner.mean() - 127.5) < 3 and inner.std() < 3


def test_crop_image_identity_is_lossless(rng):
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    A = box_affine(image_box(32, 32), 32)
    np.testing.assert_allclose(A, [[1, 0, 0], [0, 1, 0]], atol=1e-15)
    np.testing.assert_array_equal(crop_image(img, A, 32), img)


def test_warp_integer_translation_shifts_exactly(rng):
    img = torch.from_numpy(rng.random((2, 3, 20, 24)))
    A = torch.tensor([[1.0, 0, 3], [0, 1.0, -2]], dtype=torch.float64).expand(2, 2, 3)
    out = warp(img, A, (20, 24))
    torch.testing.assert_close(out[:, :, 0:18, 3:24], img[:, :, 2:20, 0:21])
    assert (out[:, :, :, :3] == 0).all() and (out[:, :, 18:] == 0).all()


# ------------------------------------------------------------------ hflip
def batch(rng, B=4, S=32):
    images = torch.from_numpy(rng.random((B, 3, S, S))).float()
    coords = torch.from_numpy(rng.uniform(0, S - 1, (B, K, 2))).float()
    lab = torch.from_numpy(rng.random((B, K)) < 0.8)
    return images, coords, lab


def test_hflip_twice_is_identity(rng):
    images, coords, lab = batch(rng)
    coords = torch.round(coords * 64) / 64          # (W-1) - x is exact on this grid
    i2, c2, l2 = hflip(*hflip(images, coords, lab))
    assert torch.equal(i2, images) and torch.equal(c2, coords) and torch.equal(l2, lab)
    # Arbitrary float32 coordinates come back to within rounding.
    images, coords, lab = batch(rng)
    _, c3, l3 = hflip(*hflip(images, coords, lab))
    torch.testing.assert_close(c3, coords, atol=1e-5, rtol=0)
    assert torch.equal(l3, lab)


def test_hflip_mirrors_x_and_swaps_left_right(rng):
    images, coords, lab = batch(rng, B=3, S=40)
    W = images.shape[-1]
    before = coords.clone()
    fi, fc, fl = hflip(images, coords, lab)
    assert torch.equal(fi, images[..., torch.arange(W - 1, -1, -1)])
    assert torch.equal(coords, before)              # the input is not modified in place
    pairs = dict(FLIP_PAIRS)
    pairs.update({b: a for a, b in FLIP_PAIRS})
    for k in range(K):
        src = pairs.get(k, k)                       # neck and head keep their index
        assert torch.equal(fc[:, k, 0], (W - 1) - coords[:, src, 0])
        assert torch.equal(fc[:, k, 1], coords[:, src, 1])
        assert torch.equal(fl[:, k], lab[:, src])
    assert sorted(pairs) == list(range(12)) and FLIP_PERM[12:] == (12, 13)


def test_hflip_moves_image_content_with_the_coordinates():
    S = 32
    img = torch.zeros(1, 3, S, S)
    coords = torch.zeros(1, K, 2)
    coords[0, 3] = torch.tensor([5.0, 9.0])         # left hip at x=5
    img[0, :, 9, 5] = 1.0
    fi, fc, fl = hflip(img, coords, torch.ones(1, K, dtype=torch.bool))
    x, y = fc[0, 2].tolist()                        # it is now the right hip, at W-1-5
    assert (x, y) == (26.0, 9.0) and fi[0, 0, int(y), int(x)] == 1.0


# ------------------------------------------------------------------ augment
def blob_batch(coords, S, sigma=1.2):
    """One image per joint triple: image t holds joints 3t..3t+2 as blobs in channels 0..2."""
    B = coords.shape[0]
    out = []
    for t in range(math.ceil(K / 3)):
        im = np.zeros((B, 3, S, S))
        for b in range(B):
            for c in range(3):
                k = 3 * t + c
                if k < K:
                    im[b, c] = blob(S, S, *coords[b, k].tolist(), sigma)
        out.append(torch.from_numpy(im).float())
    return out


def test_augment_moves_joints_with_the_image_content(rng):
    """Blob k, wherever augmentation puts it, sits at the returned coordinate of joint k
    (after the left/right swap when the sample was flipped)."""
    S, B = 64, 12
    coords_np = rng.uniform(14, S - 15, (B, K, 2))
    coords = torch.from_numpy(coords_np).float()
    lab = torch.ones(B, K, dtype=torch.bool)
    _, flip = random_affines(B, S, GEOMETRY, gen(5))
    assert flip.any() and (~flip).any()             # both cases are exercised
    checked = 0
    for t, images in enumerate(blob_batch(coords_np, S)):
        out, xy, ol = augment(images, coords, lab, GEOMETRY, gen(5))   # same draw each time
        for b in range(B):
            for c in range(3):
                k = 3 * t + c                       # the original joint whose blob is in channel c
                if k >= K:
                    continue
                j = FLIP_PERM[k] if flip[b] else k  # ... which now carries label j
                p = xy[b, j].numpy()
                if not ((p > 5) & (p < S - 6)).all():
                    continue                        # too near the edge to find the blob whole
                assert ol[b, j]
                got = centroid(out[b, c].numpy())
                assert np.abs(got - p).max() < 1.0, (b, k, j, got, p)
                checked += 1
    assert checked > 0.8 * B * K


def test_augment_geometry_matches_random_affines(rng):
    S, B = 48, 6
    images, coords, lab = batch(rng, B, S)
    lab[:] = True
    A, flip = random_affines(B, S, GEOMETRY, gen(3))
    _, xy, _ = augment(images, coords, lab, GEOMETRY, gen(3))
    want = apply_affine(A, coords)
    for b in range(B):
        perm = list(FLIP_PERM) if flip[b] else list(range(K))
        torch.testing.assert_close(xy[b], want[b, perm])
    # The flip is a true mirror: det < 0 exactly when flipped.
    assert torch.equal(torch.linalg.det(A[:, :, :2]) < 0, flip)


def test_augment_identity_config_changes_nothing(rng):
    images, coords, lab = batch(rng, 3, 32)
    out, xy, ol = augment(images, coords, lab, NO_AUG, gen())
    torch.testing.assert_close(out, images, atol=1e-5, rtol=0)
    torch.testing.assert_close(xy, coords, atol=1e-5, rtol=0)
    assert torch.equal(ol, lab)


def test_augment_pushes_joints_out_and_unlabels_them(rng):
    S, B = 32, 16
    images, coords, lab = batch(rng, B, S)
    lab[:] = True
    # Already outside the crop: unlabelled even without augmentation.
    c = coords.clone()
    c[:, 0] = torch.tensor([-0.6, 10.0])
    c[:, 1] = torch.tensor([10.0, S - 0.5])
    _, _, ol = augment(images, c, lab, NO_AUG, gen())
    assert not ol[:, 0].any() and not ol[:, 1].any() and ol[:, 2:].all()
    # Large shifts push some joints out; exactly those lose their label.
    far = AugmentConfig(scale=0, rotation=0, translate=0.45, flip=0, color=0)
    _, xy, ol = augment(images, coords, lab, far, gen(1))
    inside = ((xy > -0.5) & (xy < S - 0.5)).all(-1)
    assert torch.equal(ol, inside)
    assert (~inside).sum() > 10 and inside.sum() > 10
    # A joint that was unlabelled stays unlabelled wherever it lands.
    lab2 = lab.clone()
    lab2[:, 5] = False
    _, _, ol2 = augment(images, coords, lab2, NO_AUG, gen())
    assert not ol2[:, 5].any()


def test_augment_runs_on_batches_with_per_sample_transforms(rng):
    S, B = 32, 8
    images = torch.rand(1, 3, S, S, generator=gen(9)).expand(B, -1, -1, -1).contiguous()
    coords = torch.from_numpy(rng.uniform(8, 24, (1, K, 2))).float().expand(B, -1, -1).contiguous()
    lab = torch.ones(B, K, dtype=torch.bool)
    out, xy, ol = augment(images, coords, lab, AugmentConfig(), gen(2))
    assert out.shape == (B, 3, S, S) and xy.shape == (B, K, 2) and ol.shape == (B, K)
    assert out.dtype == images.dtype and ol.dtype == torch.bool
    assert 0 <= out.min() and out.max() <= 1
    # Identical inputs, different draws per sample.
    assert len({tuple(x.flatten().round(decimals=3).tolist()) for x in xy}) == B


def test_augment_is_deterministic_for_a_seeded_generator(rng):
    images, coords, lab = batch(rng, 4, 32)
    a = augment(images, coords, lab, AugmentConfig(), gen(42))
    b = augment(images, coords, lab, AugmentConfig(), gen(42))
    c = augment(images, coords, lab, AugmentConfig(), gen(43))
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert not torch.equal(a[1], c[1])


def test_color_jitter_does_not_move_joints(rng):
    images, coords, lab = batch(rng, 4, 32)
    jit = AugmentConfig(color=0.4)
    plain = AugmentConfig(color=0.0)
    o1, xy1, l1 = augment(images, coords, lab, jit, gen(7))
    o0, xy0, l0 = augment(images, coords, lab, plain, gen(7))
    assert torch.equal(xy1, xy0) and torch.equal(l1, l0)
    assert not torch.equal(o1, o0)
    assert 0 <= o1.min() and o1.max() <= 1


def test_color_jitter_zero_strength_is_identity():
    x = torch.rand(2, 3, 8, 8)
    assert color_jitter(x, 0.0, gen()) is x


def test_augment_from_stored_images_with_context_to_the_crop(rng):
    """From a 96-px stored image to a 64-px crop about the same centre (the context cache):
    each joint's blob still sits at the returned coordinate, cut-off shifts included."""
    S_in, S, B = 96, 64, 10
    cfg = AugmentConfig(scale=0.25, rotation=40, translate=0.08, flip=0.5, color=0, cut=0.5)
    coords_np = rng.uniform(30, S_in - 31, (B, K, 2))
    coords = torch.from_numpy(coords_np).float()
    lab = torch.ones(B, K, dtype=torch.bool)
    _, flip = random_affines(B, S, cfg, gen(9), in_size=S_in)
    checked = 0
    for t, images in enumerate(blob_batch(coords_np, S_in)):
        out, xy, ol = augment(images, coords, lab, cfg, gen(9), size=S)
        assert tuple(out.shape[-2:]) == (S, S)
        for b in range(B):
            for c in range(3):
                k = 3 * t + c
                if k >= K:
                    continue
                j = FLIP_PERM[k] if flip[b] else k
                p = xy[b, j].numpy()
                if not ((p > 5) & (p < S - 6)).all():
                    assert not ol[b, j] or ((p > -0.5) & (p < S - 0.5)).all()
                    continue
                assert np.abs(centroid(out[b, c].numpy()) - p).max() < 1.0
                checked += 1
    assert checked > 0.3 * B * K


def test_everyday_degradations_keep_range_shape_and_joints(rng):
    """Light, blur, downscale, occluders and JPEG change pixels only: same shape, values in
    [0, 1], joints and labels exactly as the geometry alone gives them."""
    from lab.data.degrade import degrade
    B, S = 8, 64
    images = torch.from_numpy(rng.uniform(0, 1, (B, 3, S, S))).float()
    everyday = AugmentConfig(light=0.4, blur=1, downscale=1, jpeg=1, occlude=1)
    out = degrade(images, everyday, gen(3))
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 1
    assert (out - images).abs().mean() > 0.05                       # every image was changed
    coords = torch.from_numpy(rng.uniform(10, S - 11, (B, K, 2))).float()
    lab = torch.ones(B, K, dtype=torch.bool)
    plain = augment(images, coords, lab, GEOMETRY, gen(4))
    degraded = augment(images, coords, lab, dataclasses.replace(GEOMETRY, light=0.4, blur=1, downscale=1,
                                                                 jpeg=1, occlude=1), gen(4))
    assert torch.equal(plain[1], degraded[1]) and torch.equal(plain[2], degraded[2])


def test_no_degradation_is_the_identity():
    from lab.data.degrade import degrade
    images = torch.rand(4, 3, 32, 32, generator=gen(1))
    assert torch.equal(degrade(images, AugmentConfig(), gen(2)), images)
