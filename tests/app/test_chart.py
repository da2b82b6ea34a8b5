"""lab.app.chart: several figures as one chart of panels, and how a page draws a chart (the
light element on plotly.js's cartesian bundle, or Streamlit's own chart element without
static serving)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import tomllib
from app_util import figures, specs
from streamlit import config
from streamlit.testing.v1 import AppTest

from lab.app import chart, plots

APP = Path(chart.__file__).parent


def _page():
    """A page with two charts (AppTest runs this function's source alone: its own imports)."""
    import numpy as np  # noqa: F811
    import plotly.graph_objects as go

    from lab.app import chart  # noqa: F811

    fig = go.Figure(go.Heatmap(z=np.arange(12.0).reshape(3, 4), colorscale="Viridis"))
    fig.update_layout(meta="probe", height=300)
    chart.show(fig, key="plain")
    pick = go.Figure(go.Scatter(x=[1, 2], y=[3, 4], customdata=[[7], [8]], mode="markers"))
    pick.update_layout(meta="pick")
    chart.show(pick, key="pick", on_select="rerun", selection_mode="points")


def _run(static: bool) -> AppTest:
    before = config.get_option("server.enableStaticServing")
    config.set_option("server.enableStaticServing", static)
    try:
        return AppTest.from_function(_page, default_timeout=120).run()
    finally:
        config.set_option("server.enableStaticServing", before)


def test_a_chart_is_drawn_by_the_light_element_when_the_app_serves_its_static_files():
    at = _run(True)
    assert not at.exception
    assert not at.get("plotly_chart")
    els = [e for e in at.get("bidi_component") if e.proto.component_name == "pose_lab_chart"]
    assert len(els) == 2
    data = [json.loads(e.proto.json) for e in els]
    plain, pick = (json.loads(d["figure"]) for d in data)
    assert plain["layout"]["meta"] == "probe" and plain["data"][0]["type"] == "heatmap"
    assert data[0]["modes"] == [] and data[1]["modes"] == ["points"]
    assert pick["layout"]["clickmode"] == "event+select"              # a click selects, as Streamlit's
    # Streamlit's template holds colour placeholders only its own element fills: ours has none
    assert not re.search(r"#0000[0-4][0-9]", json.dumps(plain["layout"]["template"]))
    assert data[0]["template"]["layout"]["yaxis"]["automargin"]        # Streamlit's look: its tick labels fit
    assert [f["layout"]["meta"] for f in figures(at)] == ["probe", "pick"]    # tests read both kinds
    assert at.session_state["pick"]["selection"]["points"] == []     # nothing picked yet, as Streamlit's


def test_without_static_serving_streamlit_draws_the_same_figure():
    at = _run(False)
    assert not at.exception
    assert not [e for e in at.get("bidi_component") if e.proto.component_name == "pose_lab_chart"]
    assert [json.loads(s)["layout"]["meta"] for s in specs(at)] == ["probe", "pick"]


def test_the_cartesian_bundle_ships_with_the_app_and_draws_every_trace_the_lab_uses():
    js = (APP / "chart.js").read_text()
    src = re.search(r'const SRC = "app/static/([^"]+)"', js).group(1)
    bundle = (APP / "static" / src).read_text()
    assert bundle.startswith("/**\n* plotly.js (cartesian - minified)")
    assert (APP / "static" / "PLOTLY-LICENSE").read_text().startswith("MIT License")
    pyproject = tomllib.loads((APP.parents[1] / "pyproject.toml").read_text())
    shipped = pyproject["tool"]["setuptools"]["package-data"]["lab.app"]
    assert "chart.js" in shipped and "static/*.js" in shipped
    rgb = np.zeros((8, 8, 3), np.uint8)
    used = {t.type for f in (plots.photo_figure(rgb, "t"), plots.rgb_figure(rgb)) for t in f.data}
    lab_source = "\n".join(p.read_text() for p in APP.rglob("*.py"))
    used |= {t.lower() for t in re.findall(r"go\.(\w+)\(", lab_source)} - {"figure"}
    used |= {t.lower() for t in re.findall(r"\.add_(\w+)\(", lab_source)} & {"heatmap", "scatter", "bar", "image"}
    assert used >= {"heatmap", "scatter", "image", "bar"}
    for trace in used:                      # every trace the pages draw is in the bundle (no scattergl)
        assert f'name:"{trace}"' in bundle, trace
