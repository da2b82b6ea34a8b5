"""Weights on disk: round trip, damaged files, no pickle."""
import json
import pickle
import struct

import pytest
import torch
from safetensors.torch import save_file

from lab.config import DetectorConfig, RegressorConfig, SpatialConfig, to_dict
from lab.errors import LabError
from lab.models import io
from lab.models.pose import PoseNet
from lab.models.regressor import Regressor

TINY = DetectorConfig(banks=2, width=8, bank_depth=2, head_width=16, head_depth=1)
SP = SpatialConfig(graph="tree", heatmap_size=32)


def pose_model(seed=0, spatial=True):
    torch.manual_seed(seed)
    m = PoseNet(TINY, SP if spatial else None)
    m.train()                                         # move BN statistics off their defaults
    with torch.no_grad():
        m(torch.rand(4, 3, 128, 128))
        if spatial:
            m.spatial.prior_logit.add_(torch.randn_like(m.spatial.prior_logit))
    return m.eval(), {"kind": "pose", "detector": to_dict(TINY),
                      "spatial": to_dict(SP) if spatial else None, "epoch": 3}


@pytest.fixture
def saved(tmp_path):
    m, meta = pose_model()
    path = tmp_path / "model.safetensors"
    io.save(path, m, meta)
    return path, m, meta


def test_pose_round_trip_gives_identical_outputs(saved):
    path, m, meta = saved
    loaded, meta2 = io.load(path)
    assert meta2 == meta
    assert not loaded.training
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        a, b = m(x), loaded(x)
    assert set(a) == set(b) == {"unary", "log_marginal", "marginal"}
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert not path.with_name(path.name + ".tmp").exists()


def test_detector_only_and_regressor_round_trip(tmp_path):
    m, meta = pose_model(spatial=False)
    io.save(tmp_path / "d.safetensors", m, meta)
    loaded, _ = io.load(tmp_path / "d.safetensors")
    assert loaded.spatial is None
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        assert torch.equal(m(x)["unary"], loaded(x)["unary"])

    torch.manual_seed(1)
    r = Regressor(RegressorConfig.small()).eval()
    io.save(tmp_path / "r.safetensors", r, {"kind": "regressor", "regressor": to_dict(RegressorConfig.small())})
    r2, meta = io.load(tmp_path / "r.safetensors")
    assert isinstance(r2, Regressor) and meta["kind"] == "regressor"
    with torch.no_grad():
        assert torch.equal(r(x), r2(x))


def test_missing_file(tmp_path):
    with pytest.raises(LabError, match="no weights"):
        io.load(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("keep", [0.5, 0.99, 20])
def test_truncated_file(saved, keep):
    path, _, _ = saved
    data = path.read_bytes()
    n = int(len(data) * keep) if keep < 1 else keep
    path.write_bytes(data[:n])
    with pytest.raises(LabError, match="damaged"):
        io.load(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0),
                                   dtype=torch.uint8).numpy().tobytes())
    with pytest.raises(LabError, match="damaged or not a pose-lab checkpoint"):
        io.load(path)


def test_a_pickle_is_refused_without_unpickling(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    m, _ = pose_model()
    torch.save(m.state_dict(), path)
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    with pytest.raises(LabError):
        io.load(path)


def test_nan_weights(saved):
    path, m, meta = saved
    with torch.no_grad():
        m.detector.unary.weight[0, 0, 0, 0] = float("nan")
    io.save(path, m, meta)
    with pytest.raises(LabError, match="non-finite"):
        io.load(path)


def test_inf_in_a_buffer(saved):
    path, m, meta = saved
    m.detector.features.banks[0].layers[0][1].running_var[0] = float("inf")
    io.save(path, m, meta)
    with pytest.raises(LabError, match="non-finite"):
        io.load(path)


@pytest.mark.parametrize("change", ["bigger detector", "other graph", "no spatial", "regressor"])
def test_config_that_does_not_match_tensors(saved, change):
    path, m, meta = saved
    meta = json.loads(json.dumps(meta))
    if change == "bigger detector":
        meta["detector"]["width"] = 16
    elif change == "other graph":
        meta["spatial"]["graph"] = "full"
    elif change == "no spatial":
        meta["spatial"] = None
    else:
        meta = {"kind": "regressor", "regressor": to_dict(RegressorConfig.small())}
    io.save(path, m, meta)
    with pytest.raises(LabError, match="does not match its configuration"):
        io.load(path)


def test_missing_tensor(saved):
    path, m, meta = saved
    state = {k: v.contiguous() for k, v in m.state_dict().items() if k != "detector.unary.bias"}
    save_file(state, str(path), metadata={"pose_lab": json.dumps(meta)})
    with pytest.raises(LabError, match="does not match"):
        io.load(path)


@pytest.mark.parametrize("header", [None, "not json", json.dumps({"kind": "banana"}),
                                    json.dumps({"kind": "pose"}), json.dumps([1, 2])])
def test_damaged_header(saved, header):
    path, m, _ = saved
    state = {k: v.contiguous() for k, v in m.state_dict().items()}
    save_file(state, str(path), metadata=None if header is None else {"pose_lab": header})
    with pytest.raises(LabError):
        io.load(path)


def test_loading_never_unpickles(saved, monkeypatch):
    """The file is plain safetensors (8-byte header length + JSON header + raw bytes),
    and loading it calls neither pickle nor torch.load."""
    path, m, _ = saved
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert "pose_lab" in header["__metadata__"]
    assert set(header) - {"__metadata__"} == set(m.state_dict())

    def boom(*a, **k):
        raise AssertionError("pickle used while loading weights")
    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    monkeypatch.setattr(pickle, "Unpickler", boom)
    monkeypatch.setattr(torch, "load", boom)
    model, meta = io.load(path)
    assert meta["epoch"] == 3 and isinstance(model, PoseNet)
