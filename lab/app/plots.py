"""Figure builders shared by the explore pages: photos with skeletons, heatmap grids,
heatmaps over a crop and prior kernels (several as one chart: `lab.app.chart`; the PNG the
Try it page downloads: `lab.app.download`).

Only drawing here: every number drawn comes from the library (lab.infer, lab.models).
Images go through `px.imshow` (go.Heatmap would put row 0 at the bottom); heatmaps
laid over a photo are go.Heatmap traces on the image's axes, whose y axis px.imshow
has already reversed. Each figure carries `layout.meta` (a short id) so tests and
readers can find it.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import plotly.express as px
import plotly.graph_objects as go

from lab.app.memo import memoised
from lab.colors import heat_scale
from lab.joints import DRAW_EXTRA, LIMBS, NAMES, side

# Person-centric sides, colour-blind safe (Okabe-Ito): right orange, left blue, centre green.
SIDE_COLOURS = {"right": "#E69F00", "left": "#0072B2", "centre": "#009E73"}
SIDE_NAMES = {"right": "person's right", "left": "person's left", "centre": "centre line"}


def _scale(name: str) -> list:
    """A named Plotly scale as explicit rgb() stops. Streamlit's chart theme rewrites the hex
    codes #000001..#000040 anywhere in a figure (its colour placeholders), and Inferno
    starts at #000004: spelled as rgb() it survives."""
    from plotly.colors import get_colorscale, hex_to_rgb
    return [[float(v), c if c.startswith("rgb") else "rgb({}, {}, {})".format(*hex_to_rgb(c))]
            for v, c in get_colorscale(name)]


HEAT = heat_scale()              # unary / marginal heatmaps: the lab's one ramp (lab.colors)
FEATURE = _scale("Viridis")      # feature maps
PRIOR = _scale("Blues")          # prior kernels
DIVERGING = _scale("RdBu_r")     # differences, centred on 0
# Over a photo: low values transparent, so the photo shows through where the map is low.
HEAT_OVER = [[0.0, "rgba(40,0,80,0)"], [0.35, "rgba(120,20,160,0.45)"], [0.65, "rgba(230,70,40,0.8)"],
             [1.0, "rgba(255,235,0,0.95)"]]
PRIOR_OVER = [[0.0, "rgba(0,160,255,0)"], [0.3, "rgba(0,190,255,0.5)"], [1.0, "rgba(120,255,255,0.95)"]]
MARK = {"unary": "#FFFFFF", "marginal": "#00E5FF", "second": "#FF3B30", "v": "#7CFC00", "truth": "#FFD700"}


def joint_colour(k: int) -> str:
    return SIDE_COLOURS[side(k)]


def limb_colour(a: int, b: int) -> str:
    """A limb takes the side of its non-centre end (hip-neck is a right or left limb)."""
    sa, sb = side(a), side(b)
    return SIDE_COLOURS[sa if sa != "centre" else sb]


def side_legend_html() -> str:
    """One line of coloured text naming the three colours (for captions)."""
    return " · ".join(f"<span style='color:{c};font-weight:600'>■ {SIDE_NAMES[s]}</span>"
                      for s, c in SIDE_COLOURS.items())


def side_legend_md() -> str:
    """The same, as Streamlit markdown colour directives (no HTML; nearest named colours)."""
    names = {"right": "orange", "left": "blue", "centre": "green"}
    return " · ".join(f":{names[s]}[■ {SIDE_NAMES[s]}]" for s in SIDE_COLOURS)


# ------------------------------------------------------------------ photos and skeletons
def _no_axes(fig: go.Figure, height: int | None = None, meta: str | None = None) -> go.Figure:
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, title=None, ticks="", showline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, title=None, ticks="", showline=False)
    fig.update_layout(margin=dict(l=0, r=0, t=30, b=0), coloraxis_showscale=False,
                      hovermode="closest", dragmode=False)
    if height:
        fig.update_layout(height=height)
    if meta:
        fig.update_layout(meta=meta)
    return fig


LOSSY_ABOVE = 300_000           # pixels: larger photo views are sent to the browser as JPEG, not PNG


@memoised
def photo_figure(rgb: np.ndarray, title: str | None = None, height: int = 420,
                 meta: str | None = None, origin: tuple[float, float] = (0.0, 0.0), step: int = 1) -> go.Figure:
    """The photo as an image trace, hover giving the pixel position.

    A reduced copy of a large photo (`lab.app.photos.view_image`) is placed in the original
    photo's pixels: its pixel (0, 0) covers original pixels origin .. origin + step - 1, so
    boxes and joints are drawn in original photo pixels whatever size is shown."""
    big = rgb.shape[0] * rgb.shape[1] > LOSSY_ABOVE
    fig = px.imshow(rgb, binary_format="jpg" if big else "png")   # a photo-sized view: JPEG, fast and small
    if step != 1 or origin != (0.0, 0.0):
        fig.update_traces(x0=origin[0] + (step - 1) / 2, dx=step, y0=origin[1] + (step - 1) / 2, dy=step)
    fig.update_traces(hovertemplate="x %{x:.0f}, y %{y:.0f}<extra></extra>")
    if title:
        fig.update_layout(title=dict(text=title, x=0.01, font=dict(size=14)))
    return _no_axes(fig, height, meta)


def add_box(fig: go.Figure, box, colour: str = "#FFFFFF", name: str = "crop",
            image_hw: tuple[int, int] | None = None) -> go.Figure:
    """A square crop box (cx, cy, side), dashed. With `image_hw`, the view is widened to
    show the whole box, and what lies outside the photo is drawn dark (the crop fills it black)."""
    cx, cy, s = box
    x0, x1, y0, y1 = cx - s / 2, cx + s / 2, cy - s / 2, cy + s / 2
    fig.add_shape(type="rect", x0=x0, x1=x1, y0=y0, y1=y1,
                  line=dict(color=colour, width=2, dash="dash"), name=name)
    if image_hw is not None:
        h, w = image_hw
        pad = 0.02 * s
        fig.update_xaxes(range=[min(-0.5, x0 - pad), max(w - 0.5, x1 + pad)], autorange=False)
        fig.update_yaxes(range=[max(h - 0.5, y1 + pad), min(-0.5, y0 - pad)], autorange=False)
        fig.update_layout(plot_bgcolor="#3a3a3a")
    return fig


PERSON_COLOURS = {"picked": "#FFD700", "other": "#00E5FF"}


def add_people(fig: go.Figure, boxes: Sequence[tuple[float, float, float, float]], picked: int | None,
               at: Sequence[tuple[float, float]] | None = None) -> go.Figure:
    """Numbered person boxes (x0, y0, x1, y1) photo px, the picked one in gold, and one
    clickable number per person at `at` (a point inside its own box, `lab.people.label_points`;
    default the box's top-left corner), customdata = index, so a click on it selects that person."""
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        c = PERSON_COLOURS["picked" if i == picked else "other"]
        fig.add_shape(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, line=dict(color=c, width=3 if i == picked else 2),
                      name=f"person {i + 1}")
    if len(boxes):
        b = np.asarray(boxes, np.float64)
        xy = np.asarray(at, np.float64) if at is not None else b[:, :2]
        fig.add_trace(go.Scatter(
            x=xy[:, 0], y=xy[:, 1], mode="markers+text", name="people",
            customdata=[[i] for i in range(len(b))],     # plain lists: a NumPy array reaches the browser as
                                                         # binary data and comes back in a selection as a dict
            text=[str(i + 1) for i in range(len(b))], textfont=dict(color="black", size=14),
            marker=dict(size=26, symbol="square",
                        color=[PERSON_COLOURS["picked" if i == picked else "other"] for i in range(len(b))]),
            hovertemplate="person %{text}: click to analyse<extra></extra>", showlegend=False))
    return fig


def zoom_to(fig: go.Figure, x0: float, x1: float, y0: float, y1: float, pad: float = 0.06) -> go.Figure:
    """Show only [x0, x1] x [y0, y1] (image coordinates, y down), with a margin."""
    m = pad * max(x1 - x0, y1 - y0)
    fig.update_xaxes(range=[x0 - m, x1 + m], autorange=False)
    fig.update_yaxes(range=[y1 + m, y0 - m], autorange=False)
    return fig


def fit_height(w: float, h: float, width_px: int = 400, lo: int = 240, hi: int = 520, extra: int = 40) -> int:
    """A figure height that suits a w x h view drawn about `width_px` wide."""
    return int(np.clip(width_px * h / max(w, 1e-6), lo, hi)) + extra


def limb_segments(labelled=None) -> list[tuple[int, int, str]]:
    """(a, b, colour) of every limb drawn (the kinematic tree and the torso outline) whose
    two ends are labelled, coloured by the person's side."""
    ok = [True] * len(NAMES) if labelled is None else [bool(v) for v in labelled]
    return [(a, b, limb_colour(a, b)) for a, b in (*LIMBS, *DRAW_EXTRA) if ok[a] and ok[b]]


def skeleton_traces(xy: np.ndarray, conf: np.ndarray | None = None, name: str = "joints",
                    colour: str | None = None, labelled=None, width: float = 3.0, size: float = 9,
                    legend: bool = False) -> list[go.Scatter]:
    """One skeleton, the lab's only Plotly drawer: the limbs as line traces (one per colour,
    None-separated segments), then the labelled joints as one marker trace whose customdata
    is (joint name, confidence) and whose hover says both. `colour` None: by the person's
    sides (`SIDE_COLOURS`); else every limb and joint in that colour (one method)."""
    xy = np.asarray(xy, np.float64)
    lines: dict[str, tuple[list, list]] = {}
    for a, b, c in limb_segments(labelled):
        xs, ys = lines.setdefault(colour or c, ([], []))
        xs += [xy[a, 0], xy[b, 0], None]
        ys += [xy[a, 1], xy[b, 1], None]
    traces = [go.Scatter(x=xs, y=ys, mode="lines", name=name, legendgroup=name, hoverinfo="skip",
                         showlegend=legend and i == 0, line=dict(color=c, width=width))
              for i, (c, (xs, ys)) in enumerate(lines.items())]
    idx = np.flatnonzero(np.ones(len(xy), bool) if labelled is None else np.asarray(labelled, bool))
    conf_txt = ["—" if conf is None or not np.isfinite(conf[k]) else f"{conf[k]:.3f}" for k in idx]
    traces.append(go.Scatter(
        x=xy[idx, 0], y=xy[idx, 1], mode="markers", name=name, legendgroup=name, showlegend=False,
        marker=dict(size=size, color=[colour or joint_colour(k) for k in idx], line=dict(color="white", width=1.5)),
        customdata=np.stack([np.array([NAMES[k] for k in idx], dtype=object), np.array(conf_txt, dtype=object)], -1),
        hovertemplate="<b>%{customdata[0]}</b><br>x %{x:.1f}, y %{y:.1f}<br>confidence %{customdata[1]}"
                      f"<extra>{name}</extra>"))
    return traces


def add_skeleton(fig: go.Figure, xy: np.ndarray, conf: np.ndarray | None = None, name: str = "joints",
                 **kw) -> go.Figure:
    """`skeleton_traces` added to a figure."""
    for t in skeleton_traces(xy, conf, name, **kw):
        fig.add_trace(t)
    return fig


def add_points(fig: go.Figure, pts: Iterable[dict], row: int | None = None, col: int | None = None) -> go.Figure:
    """Markers: each dict has x, y, name, and optionally symbol, colour, size, text (hover)."""
    for p in pts:
        fig.add_trace(go.Scatter(
            x=[p["x"]], y=[p["y"]], mode="markers", name=p["name"], showlegend=p.get("legend", False),
            marker=dict(symbol=p.get("symbol", "x"), color=p.get("colour", "#FFFFFF"), size=p.get("size", 11),
                        line=dict(color=p.get("outline", "black"), width=1.5)),
            hovertemplate=(p.get("text") or p["name"]) + "<br>x %{x:.1f}, y %{y:.1f}<extra></extra>"),
            row=row, col=col)
    return fig


def pose_figure(poses: dict[str, np.ndarray], labels: dict, colours: dict, rgb: np.ndarray | None = None,
                gt: np.ndarray | None = None, labelled=None, title: str = "", height: int = 300,
                meta: str | None = None) -> go.Figure:
    """Skeletons, one colour per method (`labels`, `colours` by name), over an image (y down,
    sent as a PNG) or, without one, in a body frame. "mean training pose" is drawn as a wide
    pale band underneath the rest."""
    fig = go.Figure()
    if rgb is not None:
        fig.add_trace(px.imshow(np.asarray(rgb), binary_string=True).data[0].update(hoverinfo="skip"))
    if gt is not None:
        fig.add_trace(go.Scatter(x=gt[:, 0], y=gt[:, 1], mode="markers", name="Ground truth", text=list(NAMES),
                                 marker=dict(color=MARK["truth"], size=7, symbol="x-thin",
                                             line=dict(color=MARK["truth"], width=2)),
                                 hovertemplate="%{text}<extra>ground truth</extra>", showlegend=False))
    for name, xy in poses.items():
        if name == "mean training pose":
            fig.add_trace(skeleton_traces(xy, name=name, colour="#d9d9d9", width=9)[0])
        else:
            add_skeleton(fig, xy, name=labels[name], colour=colours[name], labelled=labelled, width=2.5, size=6)
    if rgb is not None:
        h, w = rgb.shape[:2]
        fig.update_xaxes(visible=False, range=[-0.5, w - 0.5])
        fig.update_yaxes(visible=False, range=[h - 0.5, -0.5], scaleanchor="x")
    else:
        fig.update_xaxes(visible=False, range=[-1.7, 1.7])
        fig.update_yaxes(visible=False, range=[2.1, -2.1], scaleanchor="x")
        fig.update_layout(plot_bgcolor="#f6f6f6")
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=28 if title else 0, b=0), meta=meta,
                      title=dict(text=title, font=dict(size=12)) if title else None)
    return fig


# ------------------------------------------------------------------ heatmaps
def _heat_trace(m: np.ndarray, x=None, y=None, hover: str = "value", fmt: str = ".3f", **kw) -> go.Heatmap:
    """A heatmap trace as px.imshow builds it (rows top to bottom once the y axis is reversed),
    made directly: px.imshow costs ~50 ms a map, and a page draws 14 of them at once."""
    m = np.asarray(m, np.float32)
    xy = {k: v for k, v in (("x", x), ("y", y)) if v is not None}
    t = go.Heatmap(z=m, coloraxis="coloraxis", name="0", xaxis="x", yaxis="y", **xy)
    t.update(hovertemplate=f"x %{{x}}, y %{{y}}<br>{hover} %{{z:{fmt}}}<extra></extra>", **kw)
    return t


@memoised
def overlay_figure(crop: np.ndarray, m: np.ndarray | None, codec, opacity: float = 0.6,
                   title: str = "", colorscale=HEAT_OVER, hover: str = "value", zmid=None,
                   markers: Sequence[dict] = (), height: int = 420, meta: str | None = None,
                   fmt: str = ".3f") -> go.Figure:
    """A heatmap (H, W) laid over the crop (S, S, 3), each heatmap pixel centred where the
    codec (`lab.data.codec.HeatmapCodec.to_crop`) puts it, covering its stride x stride block.

    The heatmap's cells cover the whole crop, so its hover (crop x, y and the value) is the
    one a learner sees anywhere on it: the crop image's own hover, which never showed under
    it, is then skipped (Plotly would otherwise prepare every crop's pixels for a hover
    lookup: about a third of the time a chart of five such panels takes to draw). Without a
    heatmap the crop keeps its hover."""
    fig = px.imshow(crop)
    fig.update_traces(hovertemplate="crop x %{x}, y %{y}<extra></extra>")
    if m is not None:
        fig.update_traces(hoverinfo="skip", hovertemplate=None)
        m = np.asarray(m, np.float32)
        c, r = codec.to_crop(np.arange(m.shape[1])), codec.to_crop(np.arange(m.shape[0]))
        t = go.Heatmap(z=m, x=c, y=r, opacity=opacity, coloraxis="coloraxis",
                       hovertemplate=f"crop x %{{x}}, y %{{y}}<br>{hover} %{{z:{fmt}}}<extra></extra>")
        fig.add_trace(t)
        ca = dict(colorscale=colorscale, colorbar=dict(thickness=10))
        if zmid is not None:
            ca["cmid"] = zmid
        fig.update_layout(coloraxis=ca)
    add_points(fig, markers)
    if title:
        fig.update_layout(title=dict(text=title, x=0.01, font=dict(size=13)))
    _no_axes(fig, height, meta)
    fig.update_layout(coloraxis_showscale=m is not None)
    s = crop.shape[0]
    fig.update_xaxes(range=[-0.5, s - 0.5])
    fig.update_yaxes(range=[s - 0.5, -0.5])
    return fig


def add_click_grid(fig: go.Figure, codec, label: str = "click to put v here", every: int = 1) -> go.Figure:
    """Invisible markers at every heatmap cell centre, so a click on the image selects a
    cell (Plotly selects points of scatter traces, not pixels of images). The selected
    point's x, y are crop pixels; its customdata the cell (x, y) in heatmap pixels.
    `every` n: a marker on every n-th cell only, enough where only a dragged box's corners
    count. Plotly hovers, clicks and box-selects on a trace's data, not on its drawn markers,
    so the trace draws one marker only (`maxdisplayed`): styling 2,304 SVG markers took about
    half of the browser's time to redraw such a chart."""
    j = np.arange(0, codec.heatmap_size, every)
    gx, gy = np.meshgrid(j, j)
    cx, cy = codec.to_crop(gx.ravel()), codec.to_crop(gy.ravel())
    fig.add_trace(go.Scatter(
        x=cx, y=cy, mode="markers", name="grid", showlegend=False,
        marker=dict(size=max(codec.stride * 2, 8), color="rgb(255,255,255)", opacity=0, line=dict(width=0),
                    maxdisplayed=1),
        customdata=np.stack([gx.ravel(), gy.ravel()], -1),
        hovertemplate=f"{label}<br>heatmap (%{{customdata[0]}}, %{{customdata[1]}}) · crop (%{{x}}, %{{y}})"
                      "<extra></extra>",
        selected=dict(marker=dict(opacity=0)), unselected=dict(marker=dict(opacity=0))))
    fig.update_layout(clickmode="event+select", dragmode=False)
    return fig


def kernel_extent(*kernels: np.ndarray, offsets: np.ndarray, share: float = 0.02, margin: int = 3,
                  least: int = 8) -> int:
    """Half-width (heatmap px) of the window that holds every displacement where any of the
    kernels exceeds `share` of its largest |value|: the part worth looking at."""
    r = least
    for k in kernels:
        a = np.abs(np.asarray(k, np.float64))
        ys, xs = np.nonzero(a > share * max(a.max(), 1e-12))
        if len(xs):
            r = max(r, int(np.abs(offsets[xs]).max()), int(np.abs(offsets[ys]).max()))
    return int(min(r + margin, np.abs(offsets).max()))


@memoised
def kernel_figure(k: np.ndarray, offsets: np.ndarray, stride: int, title: str = "",
                  colorscale=PRIOR, zmid=None, hover: str = "p(A|v)", height: int = 370,
                  meta: str | None = None, fmt: str = ".4f", extent: int | None = None) -> go.Figure:
    """A kernel indexed by displacement (dy, dx) = A - v: x is Δx, y is Δy (down is +),
    both in heatmap pixels, with crop pixels (× stride) under each tick. The view shows
    ±extent heatmap px (the whole kernel stays in the figure: zoom out to see it)."""
    k = np.asarray(k, np.float32)
    fig = px.imshow(k, x=offsets, y=offsets, color_continuous_scale=colorscale,
                    color_continuous_midpoint=zmid, origin="upper")
    fig.update_traces(hovertemplate="Δx %{x} heatmap px (%{customdata[0]} crop px)<br>"
                                    "Δy %{y} heatmap px (%{customdata[1]} crop px)<br>"
                                    f"{hover} %{{z:{fmt}}}<extra></extra>",
                      customdata=np.stack(np.meshgrid(offsets * stride, offsets * stride), -1))
    r = int(extent) if extent else int(np.abs(offsets).max())
    step = next(s for s in (2, 4, 8, 16) if 2 * r / s <= 8)
    ticks = [int(t) for t in offsets if t % step == 0 and abs(t) <= r]
    fig.update_xaxes(tickvals=ticks, tickangle=0, showgrid=False, zeroline=False,
                     title=f"Δx = x<sub>A</sub> − x<sub>v</sub>, heatmap px (× {stride} = crop px)",
                     range=[-r - 0.5, r + 0.5], autorange=False)
    fig.update_yaxes(tickvals=ticks, showgrid=False, zeroline=False,
                     title=f"Δy, heatmap px (× {stride} = crop px)", range=[r + 0.5, -r - 0.5], autorange=False)
    # cross-hair at zero displacement: v's own position
    fig.add_hline(y=0, line=dict(color="rgba(128,128,128,0.6)", width=1, dash="dot"))
    fig.add_vline(x=0, line=dict(color="rgba(128,128,128,0.6)", width=1, dash="dot"))
    fig.update_layout(title=dict(text=title, x=0.01, font=dict(size=13)), height=height,
                      margin=dict(l=0, r=0, t=36, b=0), coloraxis_colorbar=dict(thickness=10, len=0.8),
                      dragmode=False)
    if meta:
        fig.update_layout(meta=meta)
    return fig


def rgb_figure(img: np.ndarray, title: str = "", height: int = 260, meta: str | None = None) -> go.Figure:
    """An RGB array (H, W, 3) in [0, 1] or uint8, shown pixel for pixel (no smoothing)."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0, 1) * 255).round().astype(np.uint8)
    return photo_figure(a, title=title, height=height, meta=meta)
