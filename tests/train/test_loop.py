"""End-to-end training on the bundled mini set: every stage runs and learns, runs resume
exactly, stopping keeps the last good checkpoint, and a run folder keeps its stage.

Kept small for a shared two-core CPU: 32 training crops, batches of 8 (4 steps an
epoch), 8 validation crops, the small configs, one torch thread.
"""
import dataclasses
import shutil

import numpy as np
import pytest
import torch

from lab.config import AugmentConfig, DetectorConfig, RegressorConfig, SpatialConfig, TrainConfig
from lab.data.codec import HeatmapCodec
from lab.errors import LabError
from lab.models import io
from lab.models.spatial import displacement_histograms
from lab.train.loop import new_model, train

DET = DetectorConfig.small()
REG = RegressorConfig.small()
SP = SpatialConfig(graph="tree", heatmap_size=32)
LIMIT, BATCH = 32, 8
STEPS = LIMIT // BATCH


def cfg(stage, epochs=3, **kw):
    kw.setdefault("lr", 3e-3)
    kw.setdefault("warmup", 2)
    return TrainConfig(stage=stage, epochs=epochs, batch_size=BATCH, train_limit=LIMIT,
                       threads=1, device="cpu", augment=AugmentConfig(), **kw)


@pytest.fixture(scope="module")
def splits(mini):
    return mini.data, mini["train"], mini["val"].subset(8)


def go(splits, stage, out, epochs=3, **kw):
    data, tr, va = splits
    extra = {k: kw.pop(k) for k in ("init", "callback", "should_stop") if k in kw}
    model_cfg = {"detector": {"det": DET}, "regressor": {"reg": REG}}.get(stage, {"sp": SP})
    return train(cfg(stage, epochs, **kw), data, tr, va, out, **model_cfg, **extra)


def weights(run_dir):
    return io.load(run_dir / "model.safetensors")[0].state_dict()


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def det_run(splits, tmp_path_factory):
    out = tmp_path_factory.mktemp("det")
    return go(splits, "detector", out)


@pytest.fixture(scope="module")
def spatial_run(splits, det_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("spatial")
    return go(splits, "spatial", out, epochs=1, init=det_run.path / "model.safetensors")


@pytest.fixture(scope="module")
def reg_run(splits, tmp_path_factory):
    return go(splits, "regressor", tmp_path_factory.mktemp("reg"))


def losses(run):
    return [row["loss"] for row in run.history]


# ------------------------------------------------------------------ stages
def test_detector_stage_lowers_training_loss(det_run):
    h = det_run.history
    assert [row["epoch"] for row in h] == [1, 2, 3]
    assert all(np.isfinite(losses(det_run)))
    assert losses(det_run)[0] > losses(det_run)[-1]
    # The unary layer starts near zero, so epoch 1 already sits near the uniform map's
    # cross-entropy, log(32 * 32); learning shows as a clear drop below it.
    assert losses(det_run)[-1] < 0.97 * losses(det_run)[0]
    assert set(h[-1]["val_pck"]) == {"unary"} and 0 <= h[-1]["val_pck"]["unary"] <= 1
    assert h[-1]["images_per_s"] > 0
    model, meta = io.load(det_run.path / "model.safetensors")
    assert meta["stage"] == "detector" and meta["epoch"] == 3 and meta["spatial"] is None
    assert model.spatial is None and len(meta["history"]) == 3


def test_spatial_stage_starts_from_histograms(splits, det_run):
    data, tr, _ = splits
    init = det_run.path / "model.safetensors"
    model, meta = new_model(cfg("spatial"), DET, SP, REG, init, tr.subset(LIMIT), data)
    xy = HeatmapCodec().to_heatmap(torch.from_numpy(tr.coords[:LIMIT])).numpy()
    hist = displacement_histograms(xy, tr.labelled[:LIMIT], model.spatial.edges, 32, SP.hist_blur)
    torch.testing.assert_close(model.spatial.prior(), torch.from_numpy(hist).clamp_min(1e-4),
                               rtol=1e-3, atol=1e-6)
    assert meta["spatial"]["graph"] == "tree"
    # the detector comes from the previous stage
    assert_same_weights(model.detector.state_dict(), io.load(init)[0].detector.state_dict())


def test_spatial_stage_trains_only_the_spatial_model(spatial_run, det_run):
    row = spatial_run.history[-1]
    assert np.isfinite(row["loss"]) and set(row["val_pck"]) == {"unary", "marginal"}
    model, meta = io.load(spatial_run.path / "model.safetensors")
    assert meta["stage"] == "spatial" and model.spatial is not None
    # frozen detector: weights and BatchNorm statistics untouched
    before = io.load(det_run.path / "model.safetensors")[0].detector.state_dict()
    assert_same_weights(model.detector.state_dict(), before)


def test_joint_stage_lowers_training_loss(splits, spatial_run, tmp_path):
    init = spatial_run.path / "model.safetensors"
    run = go(splits, "joint", tmp_path / "joint", init=init, unary_weight=0.5)
    assert all(np.isfinite(losses(run))) and losses(run)[0] > losses(run)[-1]
    model, meta = io.load(run.path / "model.safetensors")
    prev, _ = io.load(init)
    assert meta["stage"] == "joint"
    # both parts learn; the spatial model starts from the spatial stage's priors
    changed = lambda a, b: any(not torch.equal(a[k], b[k]) for k in a)
    assert changed(model.detector.state_dict(), prev.detector.state_dict())
    assert changed(model.spatial.state_dict(), prev.spatial.state_dict())


def test_a_later_stage_keeps_the_spatial_config_its_weights_started_from(splits, spatial_run):
    """The joint stage continues the spatial stage's model, so its header keeps that stage's
    spatial config (the biases it started from), not the command line's defaults."""
    data, tr, _ = splits
    init = spatial_run.path / "model.safetensors"
    other = dataclasses.replace(SP, bias_init=SP.bias_init + 1.0)
    _, meta = new_model(cfg("joint"), DET, other, REG, init, tr.subset(LIMIT), data)
    assert meta["spatial"] == io.read_meta(init)["spatial"]


def test_joint_from_a_detector_checkpoint_starts_from_histograms(splits, det_run):
    data, tr, _ = splits
    model, _ = new_model(cfg("joint"), DET, SP, REG, det_run.path / "model.safetensors",
                         tr.subset(LIMIT), data)
    xy = HeatmapCodec().to_heatmap(torch.from_numpy(tr.coords[:LIMIT])).numpy()
    hist = displacement_histograms(xy, tr.labelled[:LIMIT], model.spatial.edges, 32, SP.hist_blur)
    torch.testing.assert_close(model.spatial.prior(), torch.from_numpy(hist).clamp_min(1e-4),
                               rtol=1e-3, atol=1e-6)


def test_regressor_stage_lowers_training_loss(reg_run):
    assert all(np.isfinite(losses(reg_run))) and losses(reg_run)[0] > losses(reg_run)[-1]
    model, meta = io.load(reg_run.path / "model.safetensors")
    assert meta["kind"] == "regressor" and meta["stage"] == "regressor"
    assert set(reg_run.history[-1]["val_pck"]) == {"regressor"}


def test_regressor_from_a_detector_starts_on_exactly_its_features(splits, det_run, spatial_run, tmp_path):
    """--init with a detector: the regressor's trunk and banks start as that detector's, its
    head from scratch, and only a pose checkpoint is accepted."""
    det, _ = io.load(det_run.path / "model.safetensors")
    model, meta = new_model(cfg("regressor"), DET, SP, REG, det_run.path / "model.safetensors",
                            splits[1], splits[0])
    theirs = det.detector.features.state_dict()
    for k, v in model.features.state_dict().items():
        assert torch.equal(v, theirs[k]), k
    assert meta["lineage"][-1]["stage"] == "detector"
    reg = go(splits, "regressor", tmp_path / "reg", epochs=1, detector_lr=0.0, init=det_run.path / "model.safetensors")
    trained, _ = io.load(reg.path / "model.safetensors")
    for k, v in trained.features.state_dict().items():       # features at lr 0 stay put
        if "running" not in k and "num_batches" not in k:
            assert torch.equal(v, theirs[k]), k
    with pytest.raises(LabError, match="part detector"):
        new_model(cfg("regressor"), DET, SP, REG, reg.path / "model.safetensors", splits[1], splits[0])


def test_a_detector_restarts_from_a_detector_with_its_own_config(splits, det_run, reg_run):
    """--init for the detector stage: a warm restart, every detector weight as the checkpoint's,
    its config (not the command line's) and its stage in the lineage; a regressor is refused."""
    det, meta0 = io.load(det_run.path / "model.safetensors")
    other = dataclasses.replace(DET, head_width=2 * DET.head_width)       # what the command line says
    model, meta = new_model(cfg("detector"), other, SP, REG, det_run.path / "model.safetensors",
                            splits[1], splits[0])
    assert meta["detector"] == meta0["detector"] and meta["spatial"] is None
    assert meta["lineage"][-1]["stage"] == "detector"
    theirs = det.detector.state_dict()
    assert model.detector.state_dict().keys() == theirs.keys()
    for k, v in model.detector.state_dict().items():
        assert torch.equal(v, theirs[k]), k
    with pytest.raises(LabError, match="part detector"):
        new_model(cfg("detector"), DET, SP, REG, reg_run.path / "model.safetensors", splits[1], splits[0])


def test_stages_after_the_detector_need_init(splits, tmp_path):
    for stage in ("spatial", "joint"):
        with pytest.raises(LabError, match="needs --init"):
            go(splits, stage, tmp_path / stage)


# ------------------------------------------------------------------ resume and stop
@pytest.mark.parametrize("stage", ["detector", "regressor"])
def test_stop_mid_epoch_keeps_checkpoint_and_resume_is_exact(splits, det_run, reg_run, stage, tmp_path):
    """Stopping in epoch 3 leaves epoch 2's files byte for byte; resuming from them gives
    the same weights as the uninterrupted 3-epoch run (seeded batches, augmentation and
    dropout per epoch; Adam state saved)."""
    straight = det_run if stage == "detector" else reg_run
    out = tmp_path / "run"
    calls, saved = [0], {}

    def stop():
        calls[0] += 1
        return calls[0] > 2 * STEPS + 1            # one step into epoch 3, then stop

    def snapshot(e):
        if e["event"] == "epoch" and e["epoch"] == 2:
            saved.update({p.name: p.read_bytes() for p in out.glob("*.safetensors")})

    run = go(splits, stage, out, should_stop=stop, callback=snapshot)
    assert run.stopped and len(run.history) == 2
    assert set(saved) == {"model.safetensors", "optim.safetensors"}
    for name, data in saved.items():
        assert (out / name).read_bytes() == data, f"{name} changed after the stop"
    assert not list(out.glob("*.tmp"))
    model, meta = io.load(out / "model.safetensors")
    assert meta["epoch"] == 2 and meta["history"] == run.history

    events = []
    resumed = go(splits, stage, out, callback=events.append)
    assert not resumed.stopped and len(resumed.history) == 3
    assert resumed.history[:2] == run.history
    assert {e["epoch"] for e in events} == {2, 3}   # step events count from 0, epoch events from 1
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [3]
    assert resumed.history[2]["loss"] == pytest.approx(straight.history[2]["loss"], rel=1e-6)
    assert_same_weights(weights(out), weights(straight.path))


def test_stop_before_the_first_epoch_ends_writes_nothing(splits, tmp_path):
    out = tmp_path / "run"
    run = go(splits, "detector", out, should_stop=lambda: True)
    assert run.stopped and run.history == []
    assert not list(out.glob("*.safetensors"))


def test_more_epochs_continue_a_finished_run(splits, tmp_path):
    """epochs=2, then epochs=3 on the same folder: only epoch 3 runs, after epoch 2's weights.

    (Its weights do not equal a straight 3-epoch run's: the cosine learning-rate schedule
    spans `epochs`, so the first call decayed over 2 epochs, the second over 3.)"""
    out = tmp_path / "run"
    first = go(splits, "detector", out, epochs=2)
    after_two = weights(out)
    events = []
    run = go(splits, "detector", out, epochs=3, callback=events.append)
    assert len(run.history) == 3 and run.history[:2] == first.history
    assert [row["epoch"] for row in run.history] == [1, 2, 3]
    assert sum(e["event"] == "step" for e in events) == STEPS
    assert all(e["epoch"] == 2 for e in events if e["event"] == "step")
    assert io.read_meta(out / "model.safetensors")["epoch"] == 3
    assert any(not torch.equal(after_two[k], v) for k, v in weights(out).items())


def test_a_finished_run_is_not_trained_again(splits, det_run, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(det_run.path, out)
    events = []
    run = go(splits, "detector", out, callback=events.append)
    assert events == [] and run.history == det_run.history
    assert_same_weights(weights(out), weights(det_run.path))


def test_stage_mismatch_raises(splits, det_run, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(det_run.path, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(LabError, match="holds a 'detector' run"):
        go(splits, "regressor", out)
    with pytest.raises(LabError, match="holds a 'detector' run"):
        go(splits, "spatial", out, init=det_run.path / "model.safetensors")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_every_epoch_logs_its_speed_against_the_model_only_speed(splits, tmp_path):
    """Given the bench's model-only img/s, each epoch's row carries it, the loop's share of it
    and the load average; with the probe instead, a measured model-only figure."""
    run = go(splits, "detector", tmp_path / "given", epochs=1, model_only_ips=50.0)
    row = run.history[0]
    assert row["model_only_images_per_s"] == 50.0
    assert row["vs_model_only"] == pytest.approx(row["images_per_s"] / 50.0)
    assert row["load_average"] >= 0
    probed = go(splits, "detector", tmp_path / "probed", epochs=1, speed_probe=2).history[0]
    assert probed["model_only_images_per_s"] > 0 and probed["vs_model_only"] > 0


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize("stage", ["joint", "regressor"])
def test_validation_scores_pck_and_the_stage_loss_from_one_forward(splits, spatial_run, reg_run, stage):
    """validate's loss is the training loss (every term, same weights) on the validation crops
    in eval mode, batch by batch; its PCK is predict_pose's / predict_regressor's."""
    from lab.eval.pck import pck
    from lab.models.predict import predict_pose, predict_regressor
    from lab.train.loop import validate
    from lab.train.losses import step_loss
    data, _, va = splits
    run = spatial_run if stage == "joint" else reg_run
    model = io.load(run.path / "model.safetensors")[0].eval()
    c, codec = cfg(stage, unary_weight=0.3, prior_decay=1e-2), data.codec
    scores, loss = validate(model, c, va, codec, "cpu", batch=3)            # 8 crops: batches 3, 3, 2
    images, coords, lab = va.tensors()
    x = images.float() / 255
    want = sum(float(step_loss(model, stage, x[i:i + 3], coords[i:i + 3], lab[i:i + 3], codec, 0.3,
                               c.marginal_loss, 1e-2)) * len(x[i:i + 3]) for i in range(0, 8, 3)) / 8
    assert loss == pytest.approx(want, rel=1e-5)
    pred = predict_pose(model, images, codec) if stage == "joint" else {"regressor": predict_regressor(model, images)}
    assert scores == {k: pytest.approx(pck(p.numpy(), coords.numpy(), lab.numpy())["mean"])
                      for k, p in pred.items() if not k.endswith("_conf")}
    assert run.history[-1]["val_loss"] > 0
