"""lab.data.codec: the one owner of heatmap geometry. Gaussian targets, decoding,
heatmap <-> crop <-> photo pixels."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lab.data.codec import HeatmapCodec, decode, gaussian_targets
from lab.data.transforms import box_affine


def heatmap_to_crop(xy, stride):
    return HeatmapCodec(crop_size=32 * stride, stride=stride).to_crop(xy)


def crop_to_heatmap(xy, stride):
    return HeatmapCodec(crop_size=32 * stride, stride=stride).to_heatmap(xy)


# ------------------------------------------------------------------ coordinates
def test_heatmap_pixel_centres_at_stride_4():
    j = torch.arange(32, dtype=torch.float64)
    xy = torch.stack([j, j.flip(0)], -1)
    crop = heatmap_to_crop(xy, 4)
    torch.testing.assert_close(crop[:, 0], 4 * j + 1.5)
    # Heatmap pixel j covers crop pixels 4j .. 4j+3, whose centre is 4j + 1.5.
    torch.testing.assert_close(crop[:, 0], (4 * j + 4 * j + 3) / 2)
    # The crop's edges are the heatmap's edges: [-0.5, 127.5] <-> [-0.5, 31.5].
    torch.testing.assert_close(crop_to_heatmap(torch.tensor([-0.5, 127.5]), 4), torch.tensor([-0.5, 31.5]))


@pytest.mark.parametrize("stride", [1, 2, 4, 8])
def test_crop_heatmap_round_trip(stride):
    xy = torch.rand(5, 14, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(stride)) * 140 - 6
    torch.testing.assert_close(heatmap_to_crop(crop_to_heatmap(xy, stride), stride), xy, atol=1e-12, rtol=0)
    torch.testing.assert_close(crop_to_heatmap(heatmap_to_crop(xy, stride), stride), xy, atol=1e-12, rtol=0)
    # Distances scale by the stride.
    h = crop_to_heatmap(xy, stride)
    torch.testing.assert_close(h[..., 1:, :] - h[..., :-1, :], (xy[..., 1:, :] - xy[..., :-1, :]) / stride)
    if stride == 1:
        torch.testing.assert_close(crop_to_heatmap(xy, 1), xy)


# ------------------------------------------------------------------ targets
def test_gaussian_targets_values():
    xy = torch.tensor([[[10.0, 20.0], [3.25, 4.5]]])
    t = gaussian_targets(xy, torch.ones(1, 2, dtype=torch.bool), 32, sigma=1.5)
    assert t.shape == (1, 2, 32, 32)
    assert t[0, 0, 20, 10] == 1.0 and t[0, 0].argmax() == 20 * 32 + 10   # row y, column x
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    want = torch.exp(-((xs - 3.25) ** 2 + (ys - 4.5) ** 2) / (2 * 1.5 ** 2))
    torch.testing.assert_close(t[0, 1], want)


def test_unlabelled_joints_give_all_zero_targets():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(3, 14, 2, generator=g) * 31
    lab = torch.rand(3, 14, generator=g) < 0.5
    lab[0, 0], lab[0, 1] = True, False
    t = gaussian_targets(xy, lab, 32, 1.0)
    assert (t[~lab] == 0).all()
    assert (t[lab].amax(dim=(-1, -2)) > 0.5).all()


@pytest.mark.parametrize("sigma", [0.5, 0.75, 1.0, 1.5, 2.0, 3.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_decode_recovers_coordinates_subpixel(sigma, dtype):
    size = 32
    g = torch.Generator().manual_seed(int(sigma * 100))
    xy = (torch.rand(8, 14, 2, generator=g) * (size - 1)).to(dtype)
    # Near and on the borders, including just outside the pixel centres.
    xy[0, :8] = torch.tensor([[0.0, 0.0], [-0.4, 5.2], [0.3, 31.0], [31.4, 30.6],
                              [1.49, 0.51], [30.5, 1.2], [15.5, -0.45], [0.05, 31.45]], dtype=dtype)
    t = gaussian_targets(xy, torch.ones(8, 14, dtype=torch.bool), size, sigma)
    got, val = decode(t)
    assert got.shape == (8, 14, 2) and val.shape == (8, 14)
    err = (got - xy).abs().max().item()
    assert err < 0.01, f"sigma {sigma} {dtype}: max error {err:.4f} heatmap px"
    assert (val <= 1).all() and (val > 0.3).all()


def test_decode_log_space_matches():
    g = torch.Generator().manual_seed(3)
    xy = torch.rand(2, 14, 2, generator=g, dtype=torch.float64) * 30
    t = gaussian_targets(xy, torch.ones(2, 14, dtype=torch.bool), 32, 1.2)
    got, _ = decode(torch.log(t), log_space=True)
    torch.testing.assert_close(got, xy, atol=1e-6, rtol=0)


def test_decode_one_hot_and_flat_maps():
    h = torch.zeros(1, 2, 16, 16)
    h[0, 0, 9, 4] = 1.0                            # a single spike: its own pixel, no refinement
    h[0, 1] = 0.25                                  # flat: first pixel, no crash, no NaN
    xy, val = decode(h)
    torch.testing.assert_close(xy[0, 0], torch.tensor([4.0, 9.0]))
    assert torch.isfinite(xy).all()
    assert val[0, 0] == 1.0 and val[0, 1] == 0.25
    assert (xy[0, 1] >= -0.5).all() and (xy[0, 1] <= 15.5).all()


def test_decode_stays_within_the_peak_pixel():
    g = torch.Generator().manual_seed(11)
    h = torch.rand(4, 14, 32, 32, generator=g)       # noise: refinement must not wander off
    xy, _ = decode(h)
    idx = h.reshape(4, 14, -1).argmax(-1)
    peak = torch.stack([idx % 32, idx // 32], -1).float()
    assert ((xy - peak).abs() <= 0.5 + 1e-6).all()


def test_targets_to_crop_pipeline_round_trip():
    """Crop coordinates -> heatmap targets -> decode -> crop coordinates."""
    g = torch.Generator().manual_seed(5)
    crop_xy = torch.rand(4, 14, 2, generator=g) * 127
    t = gaussian_targets(crop_to_heatmap(crop_xy, 4), torch.ones(4, 14, dtype=torch.bool), 32, 1.0)
    back = heatmap_to_crop(decode(t)[0], 4)
    assert (back - crop_xy).abs().max() < 0.05       # crop pixels


# ------------------------------------------------------------------ the codec object
def test_codec_from_a_checkpoint_config():
    c = HeatmapCodec.from_config({"crop_size": 96, "stride": 4, "sigma": 1.5, "margin": 0.3})
    assert (c.crop_size, c.stride, c.sigma, c.heatmap_size) == (96, 4, 1.5, 24)
    from lab.config import DataConfig
    assert HeatmapCodec.from_config(DataConfig()) == HeatmapCodec(128, 4, 1.0)
    assert HeatmapCodec.from_config({}) == HeatmapCodec()                # an old checkpoint without "data"


def test_the_codec_is_the_one_owner_of_the_crop_geometry():
    """DataConfig, the spatial model and the Retrain page take their defaults from the codec,
    and a DataConfig's codec is the geometry of its own crops."""
    from lab.config import DataConfig, SpatialConfig
    from lab.data import codec
    from lab.train.runs import RunSettings
    d = DataConfig()
    assert (d.crop_size, d.stride, d.sigma) == (codec.CROP_SIZE, codec.STRIDE, codec.SIGMA)
    assert d.codec == HeatmapCodec() and d.heatmap_size == HeatmapCodec().heatmap_size == 32
    assert SpatialConfig().heatmap_size == HeatmapCodec().heatmap_size and RunSettings().sigma == codec.SIGMA
    everyday = DataConfig.everyday()
    assert everyday.codec == HeatmapCodec(192, codec.STRIDE, 1.5) and everyday.heatmap_size == 48


def test_encode_normalised_sums_to_one_for_labelled_joints():
    c = HeatmapCodec()
    xy = torch.tensor([[[60.0, 70.0], [3.0, 125.0], [10.0, 10.0]]])
    lab = torch.tensor([[True, True, False]])
    t = c.encode(xy, lab, normalise=True)
    torch.testing.assert_close(t.sum((-1, -2))[0, :2], torch.ones(2))
    assert t[0, 2].abs().sum() == 0
    # same shape as the peak-1 targets, only scaled
    p = c.encode(xy, lab)
    torch.testing.assert_close(t[0, 0], p[0, 0] / p[0, 0].sum())


def test_decode_to_photo_pixels_through_the_crop_affine():
    c = HeatmapCodec()
    photo_xy = np.array([[250.0, 130.0], [180.5, 310.25]])
    A = box_affine((220.0, 200.0, 300.0), c.crop_size)              # photo -> crop
    hm = c.from_photo(photo_xy, A)                                   # (2, 2) heatmap px
    maps = gaussian_targets(torch.as_tensor(hm)[None], torch.ones(1, 2, dtype=torch.bool), c.heatmap_size, 1.0)
    xy, _ = c.decode(maps)
    np.testing.assert_allclose(c.to_photo(xy[0], A), photo_xy, atol=0.05 * 300 / 32)
    np.testing.assert_allclose(c.to_photo(hm, A), photo_xy, atol=1e-9)
