"""lab.models.predict: multi-scale testing keeps the crop's geometry."""
import torch

from lab.data.cache import load_mini
from lab.data.codec import HeatmapCodec
from lab.data.transforms import zoom
from lab.infer import POSE_WEIGHTS
from lab.models import io
from lab.models.predict import heatmaps, predict_pose, to_input


def test_zoom_and_back_keeps_a_peak_in_place():
    maps = torch.zeros(1, 1, 32, 32)
    maps[0, 0, 9, 22] = 1
    back = zoom(zoom(maps, 1.25), 0.8)
    assert divmod(int(back.flatten().argmax()), 32) == (9, 22)


def test_one_scale_is_the_plain_forward_pass():
    model, _ = io.load(POSE_WEIGHTS)
    x = to_input(load_mini()["val"].tensors()[0][:2])
    a, b = heatmaps(model.eval(), x), heatmaps(model, x, scales=(1.0,))
    assert torch.equal(a["unary"], b["unary"])


def test_multiscale_joints_stay_near_the_single_scale_ones():
    """Averaging the zoomed crops' unaries moves few joints far: the maps are re-aligned."""
    model, meta = io.load(POSE_WEIGHTS)
    codec = HeatmapCodec.from_config(meta["data"])
    images = load_mini()["val"].tensors()[0][:16]
    one = predict_pose(model, images, codec)["marginal"]
    many = predict_pose(model, images, codec, scales=(0.85, 1.0, 1.15), flip=True)["marginal"]
    dist = (one - many).norm(dim=-1)                                # (N, K) crop px
    assert dist.median() <= 4
