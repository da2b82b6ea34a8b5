"""lab.app.data: what the pages read besides the photo, from the shipped evaluation JSONs."""
import json

from lab.app import common, data


def test_zoom_and_flip_reads_the_scales_and_figures_of_the_eval_json():
    shipped = json.loads((common.PRETRAINED / "pose.eval.json").read_text())
    tta = data.zoom_and_flip(common.POSE_WEIGHTS)
    assert tta["scales"] == tuple(shipped["scales"]) and len(tta["scales"]) > 1
    assert tta["plain"] == shipped["methods"]["marginal"]["pck@0.2"]["mean"]
    assert tta["augmented"] == shipped["methods"]["marginal_multiscale"]["pck@0.2"]["mean"]


def test_zoom_and_flip_is_none_without_a_multiscale_run():
    full = json.loads((common.PRETRAINED / "pose_full.eval.json").read_text())
    assert not full.get("scales")
    assert data.zoom_and_flip(common.FULL_WEIGHTS) is None
