"""The figures in pretrained/ belong to the weights in pretrained/, can be regenerated, and
meet what the lab's lessons claim about them."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from lab.eval.evaluate import evaluate, sha256
from lab.eval.pck import pck, pck_curve
from lab.joints import GROUPS, NAMES, SHORT
from lab.models import io
from lab.models.spatial import prior_drift
from lab.resources import LESSONS

PRETRAINED = Path(__file__).resolve().parents[2] / "pretrained"
POSE_METHODS = {"unary", "marginal", "unary_flip", "marginal_flip", "unary_multiscale", "marginal_multiscale",
                "mean_pose"}
SHIPPED = [("pose.safetensors", "pose.eval.json", POSE_METHODS),
           ("scratch.safetensors", "scratch.eval.json", {"unary", "marginal", "mean_pose"}),
           ("regressor.safetensors", "regressor.eval.json", {"regressor", "mean_pose"}),
           ("pose_full.safetensors", "pose_full.eval.json", {"unary", "marginal", "mean_pose"})]


def load(evaluation):
    return json.loads((PRETRAINED / evaluation).read_text())


@pytest.mark.parametrize("weights,evaluation,methods", SHIPPED)
def test_eval_json_describes_the_shipped_weights(weights, evaluation, methods):
    ev = load(evaluation)
    assert ev["sha256"] == sha256(PRETRAINED / weights)
    assert ev["split"] == "test" and ev["images"] == 1000 and set(ev["methods"]) == methods
    ids = sorted(ev["ground_truth"])
    assert ids[0] == "lsp/im1001" and ids[-1] == "lsp/im2000"


@pytest.mark.parametrize("weights,evaluation,methods", SHIPPED)
def test_stated_pck_follows_from_the_stored_predictions(weights, evaluation, methods):
    """Recompute every stated figure from the per-image predictions in the same file."""
    ev = load(evaluation)
    ids = list(ev["ground_truth"])
    gt = np.array([ev["ground_truth"][i] for i in ids])
    lab = np.array([ev["labelled"][i] for i in ids], bool)
    for name, m in ev["methods"].items():
        pred = np.array([m["predictions"][i] for i in ids])
        p = pck(pred, gt, lab, 0.2)
        # predictions are stored rounded to 0.01 px: allow a hair of slack
        assert abs(p["mean"] - m["pck@0.2"]["mean"]) < 2e-3
        assert np.allclose([m["pck@0.2"]["per_joint"][j] for j in SHORT], p["per_joint"], atol=3e-3)
        assert np.allclose(pck_curve(pred, gt, lab)["mean"], m["curve"]["mean"], atol=3e-3)


def test_the_shipped_model_reaches_the_paper_and_the_spatial_model_costs_no_group():
    """Detector + spatial model >= 72.3 (the paper) without flip test; the marginal beats the
    unary on the mean and loses <= 1 point on every body-part group."""
    m = load("pose.eval.json")["methods"]
    unary, marginal = m["unary"]["pck@0.2"], m["marginal"]["pck@0.2"]
    assert marginal["mean"] >= 0.723
    assert marginal["mean"] > unary["mean"]
    for g in GROUPS:
        assert marginal["groups"][g] - unary["groups"][g] >= -0.01, g


def test_the_spatial_model_adds_to_the_shipped_detector():
    """Lessons 3-4 and the Message passing page say the spatial model takes the shipped detector
    from its unary to a higher marginal on the LSP test set, and the comparison page's Gain column
    shows it by body part: the mean gains, and more body-part groups gain than lose. (Issue 19's
    target of >= +1.5 with no group below -0.5 is a benchmark figure, `pose-lab eval`, reported
    with the campaign in checkpoints/README.md, not a test.)"""
    m = load("pose.eval.json")["methods"]
    unary, marginal = m["unary"]["pck@0.2"], m["marginal"]["pck@0.2"]
    assert marginal["mean"] > unary["mean"]
    gains = [marginal["groups"][g] - unary["groups"][g] for g in GROUPS]
    assert sum(x > 0 for x in gains) > sum(x < 0 for x in gains)


def test_lesson_4_says_how_the_shipped_model_ended_its_joint_training():
    """Lesson 4: the shipped model dropped the unary loss for its last epoch (joint_m), because the
    run that kept it (joint_uw) ended with a validation unary as high as its marginal, and the lab
    ships only a model whose spatial model adds on validation (scripts/ship_everyday.sh); its card
    lists both runs."""
    meta = io.read_meta(PRETRAINED / "pose.safetensors")
    assert meta["stage"] == "joint" and meta["train"]["unary_weight"] == 0
    card = (PRETRAINED / "pose.md").read_text()
    final = {line.split("|")[1].strip(" `"): [float(x) for x in re.findall(r"marginal ([\d.]+), unary ([\d.]+)", line)[-1]]
             for line in card.splitlines() if line.startswith("| `joint")}
    (uw_marginal, uw_unary), (m_marginal, m_unary) = final["joint_uw"], final["joint_m"]
    assert uw_marginal <= uw_unary and m_marginal > m_unary
    last = meta["history"][-1]["val_pck"]
    assert 100 * last["marginal"] == pytest.approx(m_marginal, abs=0.05)
    assert 100 * last["unary"] == pytest.approx(m_unary, abs=0.05)
    text = (LESSONS / "04_message_passing.md").read_text()
    assert "on validation its unary scored as high as its marginal" in text
    assert "ships only a model whose spatial model adds on validation" in text
    assert "`pretrained/pose.md`) lists both runs" in text


def test_lesson_5_the_regressor_reads_the_shipped_detectors_features():
    """Lesson 5's controlled comparison: the regressor starts from exactly the detector training
    behind the shipped pose model (every detector stage of its lineage, the same epochs and
    validation after each), so only the head differs."""
    def detector_stages(name):
        return [(s["epochs"], s["val_history"]) for s in io.stages(io.read_meta(PRETRAINED / name))
                if s["stage"] == "detector"]
    assert detector_stages("regressor.safetensors") == detector_stages("pose.safetensors") != []
    text = (LESSONS / "05_regression.md").read_text()
    assert "starts from exactly the features of the detector behind the shipped model" in text


def test_the_shipped_regressor_is_a_fair_baseline():
    """>= 45 PCK@0.2 and not collapsed to the mean pose: its poses vary across test crops at
    least half as much as the ground truth's, and it beats the mean-pose baseline."""
    ev = load("regressor.eval.json")
    m = ev["methods"]
    assert m["regressor"]["pck@0.2"]["mean"] >= 0.45
    assert m["regressor"]["pck@0.2"]["mean"] > m["mean_pose"]["pck@0.2"]["mean"] + 0.2
    assert ev["pose_spread"]["regressor"] >= 0.5 * ev["pose_spread"]["ground_truth"]


@pytest.mark.parametrize("weights", ["pose.safetensors", "scratch.safetensors"])
def test_learned_priors_still_read_as_anatomy(weights):
    """For every limb edge, the learned prior's mode stays on the same side of v, and within
    2 heatmap px, of the mode of the histogram it started from."""
    model, _ = io.load(PRETRAINED / weights)
    rows = prior_drift(model.spatial)
    assert len(rows) == 2 * 13                                  # both directions of the 13 limbs
    bad = [f"p({NAMES[r['a']]} | {NAMES[r['v']]}): {r['histogram_mode']} -> {r['learned_mode']}"
           for r in rows if not (r["same_side"] and r["shift"] <= 2)]
    assert not bad, bad


@pytest.mark.dataset
@pytest.mark.parametrize("weights,evaluation,methods", SHIPPED)
def test_rerunning_eval_reproduces_the_stored_predictions(weights, evaluation, methods):
    """Every fifth test photo, rerun: each method's joints equal the stored ones (rounded to
    0.01 px). With the test above (every figure follows from the stored predictions) this ties
    the figures to the code at a fifth of a full rerun's cost; the full rerun is -m slow."""
    ev = load(evaluation)
    again = evaluate(PRETRAINED / weights, "test", flip=ev["flip_test"], every=5)
    assert again["images"] == 200 and set(again["methods"]["mean_pose"]["predictions"]) < set(ev["ground_truth"])
    for name in methods - {"unary_multiscale", "marginal_multiscale"}:
        stored, rerun = ev["methods"][name]["predictions"], again["methods"][name]["predictions"]
        worst = max(np.abs(np.subtract(rerun[i], stored[i])).max() for i in rerun)
        assert worst <= 0.011, (name, worst)


@pytest.mark.slow
@pytest.mark.dataset
@pytest.mark.parametrize("weights,evaluation,methods", SHIPPED)
def test_rerunning_eval_reproduces_the_shipped_json(weights, evaluation, methods):
    ev = load(evaluation)
    again = evaluate(PRETRAINED / weights, "test", flip=ev["flip_test"])
    for name in methods - {"unary_multiscale", "marginal_multiscale"}:    # those: the slow test below
        assert again["methods"][name]["pck@0.2"] == ev["methods"][name]["pck@0.2"]
        assert again["methods"][name]["curve"] == ev["methods"][name]["curve"]


def test_the_full_graph_model_shares_the_tree_models_detector():
    """The tree vs full graph comparison is fair: the two shipped models differ only in
    their spatial model (the full graph's was trained on the tree model's frozen detector)."""
    tree, _ = io.load(PRETRAINED / "pose.safetensors")
    full, meta = io.load(PRETRAINED / "pose_full.safetensors")
    assert tree.spatial.cfg.graph == "tree" and full.spatial.cfg.graph == "full"
    assert meta["stage"] == "spatial"
    a, b = tree.detector.state_dict(), full.detector.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_full_graph_limb_priors_still_read_as_anatomy():
    """The limb edges of the fully connected graph keep their histograms' modes too."""
    from lab.joints import LIMBS
    model, _ = io.load(PRETRAINED / "pose_full.safetensors")
    limbs = set(LIMBS) | {(v, a) for a, v in LIMBS}
    rows = [r for r in prior_drift(model.spatial) if (r["a"], r["v"]) in limbs]
    assert len(rows) == 2 * 13
    bad = [f"p({NAMES[r['a']]} | {NAMES[r['v']]}): {r['histogram_mode']} -> {r['learned_mode']}"
           for r in rows if not (r["same_side"] and r["shift"] <= 2)]
    assert not bad, bad


def test_the_shipped_model_is_measured_on_learners_photos():
    """pose.eval.json holds the upload path and every robustness condition for both methods,
    and each is below the standard protocol's figure (they are harder, never easier)."""
    from lab.eval.robustness import CONDITIONS
    ev = load("pose.eval.json")
    std = ev["methods"]["marginal"]["pck@0.2"]["mean"]
    measured = {"upload path": ev["upload_path"]["methods"], **ev["robustness"]}
    assert set(measured) == {"upload path", *CONDITIONS}
    for name, methods in measured.items():
        assert set(methods) == {"unary", "marginal"} and methods["marginal"]["mean"] < std, name
    assert 0 <= ev["upload_path"]["nobody_found"] < 1000


@pytest.mark.slow
@pytest.mark.dataset
def test_rerunning_eval_reproduces_the_multiscale_figures():
    """Multi-scale testing costs six more passes over the test set (opt-in: -m slow)."""
    ev = load("pose.eval.json")
    again = evaluate(PRETRAINED / "pose.safetensors", "test", scales=tuple(ev["scales"]))
    for name in ("unary_multiscale", "marginal_multiscale"):
        assert again["methods"][name]["pck@0.2"] == ev["methods"][name]["pck@0.2"]


def test_the_shipped_detectors_use_the_loss_lesson_2_says_was_chosen():
    """Lesson 2, "Which loss ships": every shipped detector uses MSE, and the card it names
    lists an MSE and a softmax run with MSE ahead on validation after their last epoch."""
    lesson = (LESSONS / "02_part_detector.md").read_text()
    assert "Both shipped detectors use the paper's MSE" in lesson and "`docs/cards/pose_128px.md`" in lesson
    for weights in ("pose.safetensors", "scratch.safetensors", "pose_full.safetensors"):
        assert io.read_meta(PRETRAINED / weights)["detector"]["loss"] == "mse", weights
    card = (PRETRAINED.parent / "docs" / "cards" / "pose_128px.md").read_text()
    rows = card.split("## Settings chosen on validation", 1)[1].splitlines()
    last = {}
    for r in rows:
        cells = [c.strip() for c in r.split("|")]
        if len(cells) > 5 and cells[2] in ("mse", "softmax"):
            last[cells[2]] = float(cells[5].split(";")[-1].split()[-1])
    assert set(last) == {"mse", "softmax"} and last["mse"] > last["softmax"], last


def readme_column(marker: str = "(ships)") -> dict[str, str]:
    """The README table of the everyday recipe: row label -> the shipping model's cell."""
    lines = (PRETRAINED.parent / "README.md").read_text().splitlines()
    cells = lambda line: [c.strip() for c in line.strip("|").split("|")]     # noqa: E731
    head = next(i for i, line in enumerate(lines) if line.startswith("|") and marker in line)
    col = next(i for i, c in enumerate(cells(lines[head])) if marker in c)
    rows = {}
    for line in lines[head + 2:]:
        if not line.startswith("|"):
            break
        rows[cells(line)[0]] = cells(line)[col]
    return rows


def test_readme_gives_the_shipped_models_test_figures():
    """README's recipe table is typed, so its shipping column is checked against the eval JSONs."""
    ev, full = load("pose.eval.json"), load("pose_full.eval.json")
    m, cell = ev["methods"], readme_column()
    pct = lambda x: f"{100 * x:.1f}"                                     # noqa: E731
    assert cell["detector + spatial model"] == pct(m["marginal"]["pck@0.2"]["mean"])
    assert cell["the 12 limb joints (BlazePose's)"] == pct(m["marginal"]["pck@0.2"]["limbs"])
    assert cell["flip test / multi-scale + flip"] == (f"{pct(m['marginal_flip']['pck@0.2']['mean'])} / "
                                                      f"{pct(m['marginal_multiscale']['pck@0.2']['mean'])}")
    up = ev["upload_path"]["methods"]["marginal"]["mean"]
    assert cell["upload path: the whole photo through the app's person detector"] == pct(up)
    rb = {k: pct(v["marginal"]["mean"]) for k, v in ev["robustness"].items()}
    assert cell["person at 1/2 / 1/4 resolution"] == f"{rb['half resolution']} / {rb['quarter resolution']}"
    assert cell["JPEG quality 30 / rotated 30° / a quarter hidden"] == " / ".join(
        rb[k] for k in ("jpeg 30", "rotated 30", "quarter hidden"))
    fm = full["methods"]
    assert cell["full graph on the same detector (unary -> marginal)"] == (
        f"{pct(fm['unary']['pck@0.2']['mean'])} -> {pct(fm['marginal']['pck@0.2']['mean'])}")
