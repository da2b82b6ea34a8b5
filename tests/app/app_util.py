"""Shared helpers for the AppTest page tests: start the real navigation app, switch pages,
and read Plotly figures back from their JSON (`layout.meta` names each pose-lab figure)."""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
from streamlit import config
from streamlit.testing.v1 import AppTest

from lab.app import grid

MAIN = str(Path(__file__).resolve().parents[2] / "lab" / "app" / "main.py")
# The pages' charts drawn as `pose-lab app` draws them: the light element (`lab.app.chart.show`),
# which needs the app's static files served.
config.set_option("server.enableStaticServing", True)
TIMEOUT = 600       # per script run: generous, the machine may be busy training (runs take seconds when idle)


def start() -> AppTest:
    """The app on its first page, checked for exceptions."""
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    no_placeholder_colours(at)
    return at


def go(at: AppTest, view: str) -> AppTest:
    at.switch_page(f"views/{view}.py")
    return rerun(at)


def rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    no_placeholder_colours(at)
    return at


def no_placeholder_colours(at: AppTest) -> None:
    """Streamlit's chart theme rewrites #000001..#000040 anywhere in a figure (its colour
    placeholders): a colour scale starting at #000004 (Inferno) would turn pink."""
    for spec in specs(at):
        fig = json.loads(spec)
        fig["layout"].pop("template", None)                  # Streamlit's own, placeholders on purpose
        assert not re.search(r"#0000[0-4][0-9]", json.dumps(fig)), fig["layout"].get("meta")


def arr(v) -> np.ndarray:
    """A Plotly JSON array: a list, or {"dtype", "bdata" (base64), "shape"}."""
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        if v.get("shape"):
            a = a.reshape([int(s) for s in str(v["shape"]).split(",")])
        return a
    return np.asarray(v, dtype=np.float64)


def panels(fig: dict) -> list[dict]:
    """A chart of several panels (`chart.panels`) as one figure per panel, as the page would
    have drawn them apart: the traces whose `meta` is the panel's id, its title from the
    annotation so named; the chart's layout otherwise."""
    ids = list(dict.fromkeys(t["meta"] for t in fig["data"] if isinstance(t.get("meta"), str)))
    titles = {a.get("name"): a.get("text") for a in fig["layout"].get("annotations", [])}
    return [{"layout": {**fig["layout"], "meta": m, "title": {"text": titles.get(m)}, "panel_of": fig["layout"].get("meta")},
             "data": [t for t in fig["data"] if t.get("meta") == m]} for m in ids]


def specs(at: AppTest) -> list[str]:
    """Every chart's figure JSON: the lab's light element (`chart.show`) or Streamlit's own."""
    light = [json.loads(e.proto.json)["figure"] for e in at.get("bidi_component")
             if e.proto.component_name == "pose_lab_chart"]
    return light + [c.proto.spec for c in at.get("plotly_chart")]


def figures(at: AppTest) -> list[dict]:
    """Every chart, and every panel of a chart of panels as a figure of its own."""
    out = []
    for spec in specs(at):
        fig = json.loads(spec)
        out += [fig, *panels(fig)]
    return out


def figure(at: AppTest, meta: str) -> dict:
    found = [f for f in figures(at) if f["layout"].get("meta") == meta]
    assert len(found) == 1, f"expected one figure {meta!r}, found {[f['layout'].get('meta') for f in figures(at)]}"
    return found[0]


def heatmaps(fig: dict) -> list[np.ndarray]:
    """Every heatmap's z; a mosaic of maps (`grid.heatmap_grid(mosaic=True)`) as its maps."""
    out = []
    for t in fig["data"]:
        if t["type"] != "heatmap":
            continue
        tiles = (t.get("meta") or {}).get("grid") if isinstance(t.get("meta"), dict) else None
        z = arr(t["z"])
        if tiles is None:
            out.append(z)
            continue
        n, h, w, cols = tiles
        at, gw, gh, _ = grid.grid_layout(n, h, w, cols)
        z = z.reshape(gh, gw)
        out += [z[y0:y0 + h, x0:x0 + w] for x0, y0 in at]
    return out


def joints_of(fig: dict) -> list[dict]:
    """The joint-marker traces of `plots.skeleton_traces` (customdata = (name, confidence))."""
    return [t for t in fig["data"] if t.get("mode") == "markers" and t.get("customdata") is not None
            and t.get("name") != "grid"]


def xy_of(trace: dict) -> np.ndarray:
    return np.stack([arr(trace["x"]), arr(trace["y"])], -1)


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def lesson_links(at: AppTest) -> list[str]:
    return [p.proto.query_string for p in at.get("page_link") if "lesson=" in p.proto.query_string]


def framed_box(rgb) -> tuple[float, float, float]:
    """The box the library frames a photo with by default (`lab.infer.frame`, which
    `PoseLab.predict` uses without a box); the app tests check the app frames the same."""
    from lab.infer import frame
    return frame(rgb)[0]
