"""What a lesson quotes about the shipped models, filled in from their files, never typed by hand.

Two kinds of placeholder, used by the Lessons page and by `pose-lab handout` alike:

  {{pck:pose:marginal}}   method "marginal"'s mean PCK@0.2 in pretrained/pose.eval.json ("74.1%")
  {{size:pose:heatmap}}   a size of the shipped weights pretrained/pose.safetensors, read from
                          their metadata (the geometry the pages draw), one of SIZES

so a lesson that says "a 48x48 heatmap" says what the pages show for the model that ships.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from lab.resources import PRETRAINED

PCK = re.compile(r"\{\{pck:(?P<model>[\w-]+):(?P<method>\w+)\}\}")
SIZE = re.compile(r"\{\{size:(?P<model>[\w-]+):(?P<what>\w+)\}\}")
SIZES = {
    "crop": "the crop's side in pixels",
    "half": "half the crop's side: the crop centre's coordinate",
    "stride": "the detector's output stride",
    "heatmap": "the heatmap's side (crop / stride)",
    "reach": "the largest displacement between two heatmap pixels (heatmap - 1)",
    "kernel": "a prior's side, every displacement (2 heatmap - 1)",
    "linear": "the full linear convolution's length (heatmap + kernel - 1)",
    "window": "the length that keeps wrap-around off the kept window (heatmap + reach)",
    "fft": "the FFT length the lab pads to (`lab.models.spatial.fft_len`)",
    "macs": "multiply-adds of one message by direct convolution, heatmap^2 kernel^2, as TeX",
    "sigma": "the Gaussian target's sigma, in heatmap pixels",
}


def shipped_pck(model: str, method: str) -> float | None:
    """A shipped model's mean PCK@0.2 in [0, 1] from its eval JSON, checked against its
    weights (`lab.eval.results.check_eval`); None when it cannot be shown."""
    from lab.eval import results as evals
    w = PRETRAINED / f"{model}.safetensors"
    check = evals.check_eval(evals.eval_path(w), w)
    return evals.pck_of(check["result"], method) if check["result"] else None


def sizes(data: dict) -> dict[str, str]:
    """Every SIZES entry of a model whose checkpoint stores `data` (its DataConfig as a dict)."""
    from lab.config import SpatialConfig
    from lab.data.codec import HeatmapCodec
    from lab.models.spatial import fft_len
    codec = HeatmapCodec.from_config(data)
    n = codec.heatmap_size
    k = SpatialConfig(heatmap_size=n).kernel_size
    macs = n * n * k * k
    exp = len(str(macs)) - 1
    return {"crop": str(codec.crop_size), "half": f"{codec.crop_size / 2:g}", "stride": str(codec.stride),
            "heatmap": str(n), "reach": str(n - 1), "kernel": str(k), "linear": str(n + k - 1),
            "window": str(2 * n - 1), "fft": str(fft_len(n, k)), "sigma": f"{codec.sigma:g}",
            "macs": f"{macs / 10 ** exp:.0f}\\times10^{{{exp}}}" if exp > 1 else str(macs)}


def shipped_size(model: str, what: str) -> str | None:
    """One of SIZES for the shipped weights pretrained/<model>.safetensors; None when absent."""
    w = PRETRAINED / f"{model}.safetensors"
    if what not in SIZES or not w.is_file():
        return None
    return _sizes_of(w, w.stat().st_mtime_ns)[what]


@lru_cache(maxsize=8)
def _sizes_of(weights: Path, mtime_ns: int) -> dict[str, str]:
    """Every size of one weights file, its header read once per version (a lesson quotes many)."""
    from lab.models import io
    return sizes(io.read_meta(weights).get("data", {}))


def fill(text: str, pck: Callable[[str, str], float | None] = shipped_pck,
         size: Callable[[str, str], str | None] = shipped_size) -> str:
    """Each placeholder replaced: a PCK as "74.1%", a size as its number; what cannot be
    read says so ("(not measured yet)", "(no such model)") rather than guess."""
    def one_pck(m: re.Match) -> str:
        v = pck(m["model"], m["method"])
        return f"{100 * v:.1f}%" if v is not None else "(not measured yet)"

    def one_size(m: re.Match) -> str:
        v = size(m["model"], m["what"])
        return v if v is not None else "(no such model)"
    return SIZE.sub(one_size, PCK.sub(one_pck, text))
