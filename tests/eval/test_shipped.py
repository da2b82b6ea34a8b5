"""The figures in pretrained/ belong to the weights in pretrained/ and can be regenerated."""
import json
from pathlib import Path

import numpy as np
import pytest

from lab.eval.evaluate import evaluate, sha256
from lab.eval.pck import pck, pck_curve
from lab.joints import SHORT

PRETRAINED = Path(__file__).resolve().parents[2] / "pretrained"
SHIPPED = [("pose.safetensors", "pose.eval.json", {"unary", "spatial"}),
           ("regressor.safetensors", "regressor.eval.json", {"regressor"})]


@pytest.mark.parametrize("weights,evaluation,methods", SHIPPED)
def test_eval_json_describes_the_shipped_weights(weights, evaluation, methods):
    ev = json.loads((PRETRAINED / evaluation).read_text())
    assert ev["sha256"] == sha256(PRETRAINED / weights)
    assert ev["split"] == "test" and ev["images"] == 1000 and set(ev["methods"]) == methods
    ids = sorted(ev["ground_truth"])
    assert ids[0] == "lsp/im1001" and ids[-1] == "lsp/im2000"


@pytest.mark.parametrize("weights,evaluation,methods", SHIPPED)
def test_stated_pck_follows_from_the_stored_predictions(weights, evaluation, methods):
    """Recompute every stated figure from the per-image predictions in the same file."""
    ev = json.loads((PRETRAINED / evaluation).read_text())
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


@pytest.mark.dataset
@pytest.mark.parametrize("weights,evaluation,methods", SHIPPED)
def test_rerunning_eval_reproduces_the_shipped_json(weights, evaluation, methods):
    ev = json.loads((PRETRAINED / evaluation).read_text())
    again = evaluate(PRETRAINED / weights, "test", flip=ev["flip_test"])
    for name in methods:
        assert again["methods"][name]["pck@0.2"] == ev["methods"][name]["pck@0.2"]
        assert again["methods"][name]["curve"] == ev["methods"][name]["curve"]
