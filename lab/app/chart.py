"""How a page draws its charts cheaply: several one-panel figures as one Plotly chart
(`panels`: a browser lays out, draws and frames each chart on its own), and every chart
drawn by the lab's light element on plotly.js's cartesian bundle (`show`)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import plotly.graph_objects as go
import plotly.io as pio
import streamlit as st
from plotly.subplots import make_subplots


def _ref(ref: str, ax: str) -> str:
    """A shape's xref / yref ('x', 'y', 'x domain', 'paper') moved to axis suffix `ax`."""
    if ref in ("x", "y"):
        return ref + ax
    if ref in ("x domain", "y domain"):
        return f"{ref[0]}{ax} domain"
    return ref


def panels(figs: Sequence[go.Figure], cols: int | None = None, meta: str | None = None,
           spacing: float = 0.02, title_size: int = 13) -> go.Figure:
    """Several one-panel figures drawn as one Plotly chart, a subplot each, in rows of `cols`.

    A browser draws one chart with four panels far cheaper than four charts (each chart has
    its own layout pass, SVG tree, toolbar and Streamlit frame): this is how a page shows many
    small figures. Each panel keeps its traces (and so their hover), its axes, shapes, colour
    scale (a colour axis of its own, the colour bar flat under the panel) and title. Every trace of a
    panel carries the panel figure's `layout.meta` as its own `meta`, and so does its title's
    annotation (`name`), so tests and readers still find each panel by its id."""
    figs = list(figs)
    n = len(figs)
    cols = max(1, min(cols or n, n))
    rows = (n + cols - 1) // cols
    bars = any(f.layout.coloraxis.colorscale is not None and f.layout.coloraxis.showscale is not False
               for f in figs)
    titled = any(f.layout.xaxis.title.text for f in figs)          # axis titles and ticks need room
    plot_px = [max((figs[i].layout.height or 300) for i in range(r * cols, min(n, (r + 1) * cols))) - 30
               for r in range(rows)]
    # px: a row's title above it; under it the x axis (when titled), then the colour bars,
    # laid flat under their own panels so that they never reach into the next one
    title_px, axis_px, bar_px = 26, 45 if titled else 0, 34 if bars else 0
    below = axis_px + bar_px
    area = sum(plot_px) + (rows - 1) * (below + title_px)
    specs = [[{} if r * cols + c < n else None for c in range(cols)] for r in range(rows)]   # no empty axes
    fig = make_subplots(rows=rows, cols=cols, horizontal_spacing=spacing, specs=specs,
                        vertical_spacing=(below + title_px) / area if rows > 1 else 0.0, row_heights=plot_px)
    for i, f in enumerate(figs):
        r, c = i // cols + 1, i % cols + 1
        ax = "" if i == 0 else str(i + 1)
        pm = f.layout.meta
        ca = None
        if f.layout.coloraxis.colorscale is not None:
            ca = "coloraxis" if i == 0 else f"coloraxis{i + 1}"
            fig.layout[ca] = f.layout.coloraxis.to_plotly_json()
        for t in f.data:
            t = type(t)(t)
            if ca and getattr(t, "coloraxis", None):
                t.coloraxis = ca
            t.meta = pm
            fig.add_trace(t, row=r, col=c)
        for a in ("xaxis", "yaxis"):
            own = {k: v for k, v in f.layout[a].to_plotly_json().items()
                   if k not in ("domain", "anchor", "matches", "overlaying", "position")}
            if "scaleanchor" in own:
                own["scaleanchor"] = "x" + ax if own["scaleanchor"].startswith("x") else "y" + ax
            fig.layout[f"{a}{ax}"].update(own)
        for sh in f.layout.shapes:
            d = sh.to_plotly_json()
            d["xref"], d["yref"] = _ref(d.get("xref", "x"), ax), _ref(d.get("yref", "y"), ax)
            fig.add_shape(d)
        xd, yd = fig.layout[f"xaxis{ax}"].domain, fig.layout[f"yaxis{ax}"].domain
        if ca and fig.layout[ca].showscale is not False:
            cb = fig.layout[ca].colorbar
            cb.update(orientation="h", x=(xd[0] + xd[1]) / 2, xanchor="center", len=0.8 * (xd[1] - xd[0]),
                      lenmode="fraction", y=yd[0] - (axis_px + 6) / area, yanchor="top", ypad=0, thickness=8)
            if cb.title.text:
                cb.title.side = "right"
        title = f.layout.title.text
        if title:
            fig.add_annotation(text=title, name=pm, x=0, y=1, xref=f"x{ax} domain", yref=f"y{ax} domain",
                               xanchor="left", yanchor="bottom", showarrow=False, font=dict(size=title_size))
    first = figs[0].layout
    fig.update_layout(height=title_px + area + below,
                      margin=dict(l=55 if titled else 0, r=0, t=title_px, b=below),
                      hovermode="closest", dragmode=False,
                      showlegend=any(f.layout.showlegend for f in figs), plot_bgcolor=first.plot_bgcolor,
                      meta=meta)
    return fig


# ------------------------------------------------------------------ drawing a chart
# A chart is drawn by the lab's own light element (chart.js): plotly.js's cartesian bundle, a
# third of the full plotly.js that Streamlit's chart element parses on every page load, served
# once from the app's static files (`pose-lab app` turns static serving on). Without static
# serving (a bare `streamlit run`), Streamlit's own chart element draws it instead.
_JS = (Path(__file__).with_name("chart.js")).read_text(encoding="utf-8")
_ELEMENT = st.components.v2.component("pose_lab_chart", js=_JS, isolate_styles=False)
MODES = ("points", "box")
NOTHING = {"points": [], "box": [], "lasso": [], "point_indices": []}    # a selection before any click
# Streamlit's chart theme as its light theme draws it: read from a page drawn by Streamlit's own
# chart element (its Python template holds colour placeholders that only that element fills in).
_GREY, _LINE, _FONT = "#808495", "#e6eaf1", '"Source Sans", sans-serif'
_AXIS = dict(zerolinecolor=_LINE, gridcolor=_LINE, tickcolor=_LINE, tickfont=dict(color=_GREY, size=12),
             minor=dict(gridcolor=_LINE), automargin=True)
_SEQUENTIAL = ["#e4f5ff", "#c7ebff", "#a6dcff", "#83c9ff", "#60b4ff", "#3d9df3", "#0083e6", "#0068c9", "#0054a3",
               "#004280"]
TEMPLATE = {"layout": dict(
    font=dict(color=_GREY, family=_FONT, size=12, weight=400),
    title=dict(font=dict(family=_FONT, size=16, color="#2F2D2B"), pad=dict(l=4), xanchor="left", x=0),
    legend=dict(title=dict(font=dict(size=12, color=_GREY), side="top"), valign="top", bordercolor="transparent",
                borderwidth=0, font=dict(size=12, color="#262730")),
    paper_bgcolor="#FFFFFF", plot_bgcolor="#FFFFFF",
    xaxis=dict(_AXIS, showgrid=False, zeroline=False, title=dict(font=dict(color=_GREY, size=14), standoff=20)),
    yaxis=dict(_AXIS, ticklabelposition="outside", title=dict(font=dict(color=_GREY, size=14), standoff=24)),
    margin=dict(pad=8, r=0, l=0),
    hoverlabel=dict(bgcolor="#FFFFFF", bordercolor="#DCD8D4", font=dict(color=_GREY, family=_FONT, size=12)),
    coloraxis=dict(colorbar=dict(thickness=16, xpad=24, ticklabelposition="outside", outlinecolor="transparent",
                                 title=dict(font=dict(color=_GREY, size=14)), tickfont=dict(color=_GREY, size=12))),
    colorway=["#0068c9", "#83c9ff", "#ff2b2b", "#ffabab", "#29b09d", "#7defa1", "#ff8700", "#ffd16a", "#6d3fc0",
              "#d5dae5"],
    colorscale=dict(sequential=[[i / 9, c] for i, c in enumerate(_SEQUENTIAL)]),
    hovermode="closest")}


def light() -> bool:
    """Whether the light element can draw: the app serves its static files."""
    try:
        return bool(st.get_option("server.enableStaticServing"))
    except Exception:                   # an unknown option: an older Streamlit
        return False


def clickmode(dragmode: str, modes) -> str:
    """Plotly's clickmode for a selection chart, as Streamlit's chart sets it (chart.js keeps
    it so when the learner switches the toolbar's drag mode): a click selects a point, except
    while the drag mode draws a box, where the press that starts the box must not."""
    if dragmode in ("select", "lasso"):
        return "event"
    return "event+select" if "points" in modes else "none"


def show(fig: go.Figure, key: str | None = None, on_select=None, selection_mode=MODES,
         config: dict | None = None) -> None:
    """Draw `fig` where the page is writing (inside `with column:` for a column). With
    `on_select` ("rerun" or a callback) a click or a dragged box comes back in
    `st.session_state[key]` as Streamlit's own chart gives it: {"selection": {"points": [{"x",
    "y", "customdata", ...}], "box": [{"x": [x0, x1], "y": [y0, y1]}]}}."""
    modes = [selection_mode] if isinstance(selection_mode, str) else list(selection_mode)
    if not light():
        kw = dict(on_select=on_select, selection_mode=tuple(modes)) if on_select else {}
        st.plotly_chart(fig, key=key, config=config, **kw)
        return
    fig.update_layout(template=go.layout.Template())        # chart.js puts TEMPLATE in its place
    if not on_select:
        _ELEMENT(key=key, data=_data(fig, [], config))
        return
    drag = fig.layout.dragmode or ("pan" if "points" in modes else "select")   # as Streamlit's chart
    fig.update_layout(dragmode=drag, clickmode=clickmode(drag, modes))
    _ELEMENT(key=key, data=_data(fig, modes, config), default={"selection": NOTHING},
             on_selection_change=on_select if callable(on_select) else _rerun)


def _data(fig: go.Figure, modes: list[str], config: dict | None) -> dict:
    """What chart.js draws: the figure's JSON, the theme, the selection modes, Plotly's config."""
    return {"figure": pio.to_json(fig, validate=False), "template": TEMPLATE, "modes": modes,
            "config": config or {}}


def _rerun() -> None:
    """on_select="rerun": a selection reruns the page (or its fragment), nothing more."""
