"""`pose-lab eval --ablate-edges` (`lab.eval.evaluate.edge_ablation`) on crops of the mini set:
one row per limb of the graph, each the PCK of the marginal with that limb's two messages
left out, as computed directly from `SpatialModel.log_marginal_masked`."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lab.eval.evaluate import edge_ablation, summary_table
from lab.eval.pck import pck
from lab.infer import POSE_WEIGHTS
from lab.joints import LIMBS, R_ELBOW, R_WRIST, SHORT
from lab.models import io
from lab.models.predict import heatmaps, to_input


@pytest.fixture(scope="module")
def split(mini):
    val = mini["val"]
    n = 12
    return {"images": torch.from_numpy(val.images[:n]).permute(0, 3, 1, 2).contiguous(),
            "gt": val.coords[:n].astype(np.float64), "labelled": val.labelled[:n],
            "affine": np.tile(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (n, 1, 1))}


def test_one_row_per_limb_each_the_marginal_without_its_messages(split):
    if not POSE_WEIGHTS.is_file():
        pytest.skip("no shipped weights")
    model, meta = io.load(POSE_WEIGHTS)
    rows = edge_ablation(model, meta, split, batch=5)
    assert list(rows) == [f"{SHORT[a]}-{SHORT[v]} off" for a, v in LIMBS]
    sp = model.spatial
    unary = heatmaps(model, to_input(split["images"]))["unary"]
    with torch.no_grad():
        lm = sp.log_marginal_masked(unary, sp.edge_mask([(R_WRIST, R_ELBOW), (R_ELBOW, R_WRIST)]))
    from lab.data.codec import HeatmapCodec
    xy = HeatmapCodec.from_config(meta["data"]).decode_crop(lm, log_space=True)[0].numpy()
    want = pck(xy, split["gt"], split["labelled"], 0.2)
    got = rows[f"{SHORT[R_WRIST]}-{SHORT[R_ELBOW]} off"]["marginal"]
    assert got["mean"] == pytest.approx(want["mean"]) and got["groups"] == pytest.approx(want["groups"])
    res = {"kind": "pose", "split": "val", "images": 12, "source": "mini", "ablations": {"edges": rows},
           "methods": {}}
    assert "r_wri-r_elb" in summary_table(res)
