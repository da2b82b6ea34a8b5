"""A model of the everyday recipe (192-px crops, stride-32 trunk, 48x48 maps) runs through the
same path as the shipped one: saved, loaded by the app's predictor, framed and decoded."""
import pytest
import torch
from skimage import data as skdata

from lab.config import DataConfig, DetectorConfig, SpatialConfig, to_dict
from lab.infer import PoseLab
from lab.models import io
from lab.models.pose import PoseNet


@pytest.fixture(scope="module")
def everyday_model(tmp_path_factory):
    torch.manual_seed(0)
    data, det = DataConfig.everyday(), DetectorConfig.everyday()
    sp = SpatialConfig(heatmap_size=data.heatmap_size)
    path = tmp_path_factory.mktemp("everyday") / "pose.safetensors"
    io.save(path, PoseNet(det, sp).eval(), {"kind": "pose", "detector": to_dict(det), "spatial": to_dict(sp),
                                            "data": to_dict(data), "stage": "joint", "epoch": 1})
    return PoseLab(path, regressor_path=None)


def test_the_predictor_runs_the_everyday_model_at_its_own_size(everyday_model):
    rgb = skdata.astronaut()
    pred = everyday_model.predict(rgb, box=(256.0, 200.0, 300.0))
    assert pred.crop.shape == (192, 192, 3)
    assert tuple(pred.unary.shape) == (14, 48, 48) and tuple(pred.log_marginal.shape) == (14, 48, 48)
    for method in ("unary", "marginal"):
        xy = pred.crop_joints(method)
        assert xy.shape == (14, 2) and ((xy > -1) & (xy < 192)).all()


def test_the_everyday_trunk_reaches_stride_32(everyday_model):
    trunk = everyday_model.pose.detector.features.trunk
    feats = trunk(torch.rand(1, 3, 192, 192))
    assert sorted(feats) == [4, 8, 16, 32] and tuple(feats[32].shape) == (1, 320, 6, 6)


def test_multiscale_flip_prediction_runs_through_the_predictor(everyday_model):
    rgb = skdata.astronaut()
    one = everyday_model.predict(rgb, box=(256.0, 200.0, 300.0))
    many = everyday_model.predict(rgb, box=(256.0, 200.0, 300.0), flip=True, scales=(0.8, 1.0, 1.2))
    assert many.unary.shape == one.unary.shape and not torch.equal(many.unary, one.unary)
