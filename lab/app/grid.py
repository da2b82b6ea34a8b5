"""Many small heatmaps on one pair of axes (`heatmap_grid`): a browser draws that several
times faster than a subplot per map; with `mosaic`, every map is a tile of one trace."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from lab.app.memo import memoised
from lab.app.plots import HEAT, _heat_trace, _no_axes


def grid_layout(n: int, h: int, w: int, cols: int) -> tuple[list[tuple[int, int]], int, int, int]:
    """Where `heatmap_grid` puts n maps of h x w on its one pair of axes: each map's top-left
    (x, y) in grid units (one unit a map pixel), the grid's width and height, and the band
    above each row that holds its titles."""
    cols = max(1, min(cols, n))
    gap, band = max(1, round(0.08 * w)), max(2, round(0.16 * h))
    at = [((i % cols) * (w + gap), (i // cols) * (h + gap + band) + band) for i in range(n)]
    rows = (n + cols - 1) // cols
    return at, cols * w + (cols - 1) * gap, rows * (h + band) + (rows - 1) * gap, band


def _mosaic_trace(maps: np.ndarray, at, size: tuple[int, int], hover: str, cols: int,
                  own_range: bool = False) -> go.Heatmap:
    """Every map (n, h, w) a tile of one heatmap trace on a (gh, gw) grid, gaps empty; its
    customdata is each cell's pixel in its own map (what hover shows). `own_range`: each
    tile spans its map's own min..max (0..1) and customdata[2] holds the true value, which
    hover shows instead."""
    n, h, w = maps.shape
    z = np.full(size, np.nan, np.float32)
    own = np.full((*size, 3 if own_range else 2), max(h, w), np.float32 if own_range else
                  np.uint8 if max(h, w) < 255 else np.uint16)
    yy, xx = np.mgrid[0:h, 0:w]
    for i, (x0, y0) in enumerate(at):
        lo, hi = (float(maps[i].min()), float(maps[i].max())) if own_range else (0.0, 1.0)
        z[y0:y0 + h, x0:x0 + w] = (maps[i] - lo) / (hi - lo if hi > lo else 1.0) if own_range else maps[i]
        own[y0:y0 + h, x0:x0 + w, :2] = np.stack([xx, yy], -1)
        if own_range:
            own[y0:y0 + h, x0:x0 + w, 2] = maps[i]
    t = _heat_trace(z, hover=hover)
    value = "%{customdata[2]:.3f}" if own_range else "%{z:.3f}"
    return t.update(customdata=own, meta={"grid": [n, h, w, cols]}, name="maps",
                    hovertemplate=f"x %{{customdata[0]}}, y %{{customdata[1]}}<br>{hover} {value}<extra></extra>")


def _marker_traces(markers: Sequence[Sequence[dict]], at) -> list[go.Scatter]:
    """markers[i]: points of panel i in its map's pixels; one trace per kind of marker
    (customdata: panel, x, y), moved to where `grid_layout` put each panel."""
    kinds: dict[tuple, list] = {}
    for i, pts in enumerate(markers):
        for p in pts:
            k = (p["name"], p.get("symbol", "x"), p.get("colour", "#FFFFFF"), p.get("size", 11), p.get("text"))
            kinds.setdefault(k, []).append((i, p["x"], p["y"]))
    out = []
    for (name, symbol, colour, size, text), pts in kinds.items():
        a = np.asarray(pts, np.float64)
        out.append(go.Scatter(
            x=a[:, 1] + [at[int(i)][0] for i in a[:, 0]], y=a[:, 2] + [at[int(i)][1] for i in a[:, 0]],
            mode="markers", name=name, showlegend=False, customdata=a,
            marker=dict(symbol=symbol, color=colour, size=size, line=dict(color="black", width=1.5)),
            hovertemplate=(text or name) + "<br>x %{customdata[1]:.1f}, y %{customdata[2]:.1f}<extra></extra>"))
    return out


@memoised
def heatmap_grid(maps: np.ndarray, titles: Sequence[str], cols: int = 7, colorscale=HEAT,
                 zmin: float | None = None, zmax: float | None = None, hover: str = "value",
                 markers: Sequence[Sequence[dict]] | None = None, meta: str | None = None,
                 cell_px: int = 150, colorbar_title: str = "", shared: bool = True,
                 mosaic: bool = False) -> go.Figure:
    """One small map per panel; heatmap trace i is panel i (row-major), or with `mosaic`
    every panel a tile of one heatmap trace, gaps empty: about four times cheaper again to
    draw, the hover (customdata: the map's own x, y, and without `shared` its true value)
    unchanged; its `meta` {"grid": [n, h, w, cols]} says where each map lies (`grid_layout`).

    All panels lie side by side on one pair of axes (`grid_layout`), each title above its
    map: a browser draws that several times faster than a subplot per map (two axes each).
    Hover gives the map's own pixel (x, y) and its value; markers[i]: points for panel i in
    the maps' pixel coordinates, one trace per kind of marker (customdata: panel, x, y).
    shared: one colour scale for all panels (compare heights), else each panel spans its
    own min..max (see every map's shape): the panels then share one colour bar from 0 (the
    map's own minimum) to 1 (its own maximum), and hover still gives the true values.
    """
    maps = np.asarray(maps, np.float32)
    n, h, w = maps.shape
    at, gw, gh, band = grid_layout(n, h, w, cols)
    rows = (n + max(1, min(cols, n)) - 1) // max(1, min(cols, n))
    fig = go.Figure()
    if shared:
        zmin = float(maps.min()) if zmin is None else zmin
        zmax = float(maps.max()) if zmax is None else zmax
    else:
        zmin, zmax = 0.0, 1.0
        colorbar_title = "share of the map's own range (0 = its min, 1 = its max)"
    where = "x %{pointNumber[1]}, y %{pointNumber[0]}"          # the map's own pixel, not the grid's
    if mosaic:
        fig.add_trace(_mosaic_trace(maps, at, (gh, gw), hover, max(1, min(cols, n)), own_range=not shared))
    for i in range(n):
        if i < len(titles):
            fig.add_annotation(text=str(titles[i]), x=at[i][0] + (w - 1) / 2, y=at[i][1] - 0.5, xref="x", yref="y",
                               xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=12))
        if mosaic:
            continue
        if shared:
            t = _heat_trace(maps[i], hover=hover)
            t.update(hovertemplate=f"{where}<br>{hover} %{{z:.3f}}<extra></extra>")
        else:                                        # z: the map on its own range; hover: the true value
            lo, hi = float(maps[i].min()), float(maps[i].max())
            t = _heat_trace((maps[i] - lo) / (hi - lo if hi > lo else 1.0), hover=hover)
            t.update(customdata=maps[i], hovertemplate=f"{where}<br>{hover} %{{customdata:.3f}}<extra></extra>")
        t.update(x0=at[i][0], dx=1, y0=at[i][1], dy=1, name=str(titles[i]) if i < len(titles) else str(i))
        fig.add_trace(t)
    for t in _marker_traces(markers or (), at):
        fig.add_trace(t)
    fig.update_xaxes(range=[-0.5, gw - 0.5], autorange=False, constrain="domain")
    fig.update_yaxes(range=[gh - 0.5, -0.5], autorange=False, scaleanchor="x", constrain="domain")
    fig.update_layout(coloraxis=dict(colorscale=colorscale, cmin=zmin, cmax=zmax,
                                     colorbar=dict(title=colorbar_title, thickness=12, len=0.9)))
    _no_axes(fig, rows * cell_px + 50, meta)
    fig.update_layout(coloraxis_showscale=True, margin=dict(l=0, r=0, t=10, b=0))
    return fig
