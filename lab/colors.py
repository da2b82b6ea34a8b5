"""The heatmap colour ramp, one for the whole lab.

The app's heatmap figures (`lab.app.plots.HEAT`, Plotly) and the pictures drawn without
Plotly (the Retrain page's live heatmap, `lab.train.runs.live`) both colour a map through
these stops: matplotlib's inferno as Plotly's `sequential.Inferno` samples it, dark for
low values and pale yellow for the peak. Below the app in the layers
(data -> models -> train | eval | infer -> app), so training code can use it too.
"""
from __future__ import annotations

import numpy as np

HEAT_HEX = ("#000004", "#1b0c41", "#4a0c6b", "#781c6d", "#a52c60",
            "#cf4446", "#ed6925", "#fb9b06", "#f7d13d", "#fcffa4")
HEAT_RGB = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in HEAT_HEX], float)


def heat_scale() -> list[list]:
    """The ramp as a Plotly colour scale of rgb() stops, evenly spaced on 0..1. Spelled as
    rgb(), not hex: Streamlit's chart theme rewrites the hex codes #000001..#000040 anywhere
    in a figure (its colour placeholders), and the ramp starts at #000004."""
    step = 1 / (len(HEAT_HEX) - 1)
    return [[i * step, "rgb({}, {}, {})".format(*(int(c) for c in rgb))] for i, rgb in enumerate(HEAT_RGB)]


def colorize(v: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> (..., 3) uint8 through the ramp (linear between its stops)."""
    v = np.clip(np.nan_to_num(v), 0, 1) * (len(HEAT_RGB) - 1)
    i = np.minimum(v.astype(int), len(HEAT_RGB) - 2)
    f = (v - i)[..., None]
    return (HEAT_RGB[i] * (1 - f) + HEAT_RGB[i + 1] * f).astype(np.uint8)
