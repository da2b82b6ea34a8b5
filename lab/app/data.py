"""The data the pages show besides the current photo, read once through the library:
example crops from the bundled mini set, the examples where the spatial model fixes a
joint (`lab.analysis.veto_examples`), and the evaluation JSONs (`lab.eval.results`, the
app's entry point to evaluation results)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from lab import analysis
from lab.data.cache import load_mini
from lab.eval import results as evals

# Where example crops come from: the protocol's validation split when the mini set has it
# (never trained on by the shipped models), else the mini set's own validation crops.
EXAMPLE_SPLITS = {
    "heldout": "the protocol's validation split, which the shipped models never trained on",
    "val": "the mini set's validation crops (LSP im0001–1000, LSP's training half: the shipped "
           "models may have trained on them)",
}
SCAN = 100          # crops scanned for examples at most: the page opens on one (~5 s on 2 idle cores)


# ------------------------------------------------------------------ the mini set
def example_split():
    """(name, `CachedSplit`) of the mini set's split that examples come from, or None
    when the mini set is missing."""
    mini = load_mini()
    if mini is None:
        return None
    name = next((s for s in EXAMPLE_SPLITS if s in mini.splits), None)
    return None if name is None else (name, mini[name])


def training_split():
    """The mini set's training crops (for the mean training pose), or None."""
    mini = load_mini()
    return None if mini is None or "train" not in mini.splits else mini["train"]


def example_crop(i: int) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """Example crop i: (id, crop (S, S, 3) uint8, annotation (K, 2) crop px, labelled (K,))."""
    _, split = example_split()
    return split.ids[i], split.images[i], split.coords[i], split.labelled[i]


@st.cache_data(max_entries=8, show_spinner=False)
def _veto_examples(key: str, _models) -> list[dict]:
    found = example_split()
    if found is None:
        return []
    name, split = found
    n = min(len(split), SCAN)
    out = analysis.veto_examples(_models, split.images[:n], split.coords[:n], split.labelled[:n])
    for ex in out:
        ex["id"], ex["split"] = split.ids[ex["index"]], name
    return out


def veto_examples(models, key: str) -> list[dict]:
    """`lab.analysis.veto_examples` on the example split (its first SCAN crops), once per
    model; each dict also names the crop ("id") and the split. [] without a mini set."""
    with st.spinner("Looking for crops where the spatial model moves a joint to the right place…"):
        return _veto_examples(key, models)


# ------------------------------------------------------------------ evaluation JSONs
def _stamp(path: Path) -> float:
    return path.stat().st_mtime if path.is_file() else 0.0


@st.cache_resource(max_entries=8, show_spinner=False)      # read-only: no copy per rerun
def _evaluation(weights: str, w_stamp: float, result: str, r_stamp: float) -> dict:
    return evals.check_eval(result, weights)


def evaluation(weights: Path) -> dict:
    """`lab.eval.results.check_eval` for a weights file's evaluation JSON, once per file
    version of both: {"result" (or None), "message" (or None), "path"}."""
    result = evals.eval_path(weights)
    return _evaluation(str(weights), _stamp(Path(weights)), str(result), _stamp(result))


def zoom_and_flip(weights: Path) -> dict | None:
    """Test-time augmentation as `pose-lab eval --flip --scales` measured it for these weights:
    {"scales" (the zooms chosen on validation), "plain", "augmented" (marginal PCK@0.2 in
    [0, 1] on LSP test without and with it, or None)}; None when their evaluation JSON has no
    multi-scale run."""
    res = evaluation(weights)["result"]
    if not res or not res.get("scales"):
        return None
    plain, aug = evals.pck_of(res, "marginal"), evals.pck_of(res, "marginal_multiscale")
    return {"scales": tuple(float(s) for s in res["scales"]), "plain": plain, "augmented": aug}
