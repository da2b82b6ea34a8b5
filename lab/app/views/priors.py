"""Spatial priors: the learned kernel p(A|v) for one edge next to the histogram it started
from (stored in the model), and where it expects A once v is placed on the crop."""
from __future__ import annotations

import numpy as np
import streamlit as st

from lab.analysis import describe_prior
from lab.app import chart, common, photos, plots
from lab.joints import NAMES
from lab.models import graph
from lab.models.spatial import compare_with_histogram
from lab.names import PRIOR_HTML

CLICK = "prior_click"
GRAPH_NOTE = {
    "tree": "the **kinematic tree**: each limb in both directions, plus a self edge A|A per joint",
    "full": "**fully connected**: every ordered pair of joints, self edges included",
}


def pick_pair(sp) -> tuple[int, int]:
    """1: joint A and one of its neighbours v in this model's graph."""
    st.header("1 · Pick a pair")
    c1, c2, c3 = st.columns([1, 1, 2])
    with c1:
        a = st.selectbox("Joint A (receives)", range(len(NAMES)), index=1, format_func=lambda i: NAMES[i],
                         key="prior_a")
    vs = graph.neighbours(sp.edges, a)
    with c2:
        v = st.selectbox("Neighbour v (sends)", vs, index=1 if len(vs) > 1 else 0,
                         format_func=lambda i: NAMES[i] + (" (self edge)" if i == a else ""), key=f"prior_v_{a}")
    with c3:
        st.markdown(f"This model's graph is {GRAPH_NOTE.get(sp.cfg.graph, sp.cfg.graph)}: {len(sp.edges)} "
                    f"directed edges, so **{NAMES[a]}** has {len(vs)} neighbours (its own self edge included). "
                    "Only pairs in the graph have a prior.")
    return a, v


def kernels(sp, a: int, v: int, stride: int) -> None:
    """2: the learned prior, the histogram it started from, their difference, and what changed."""
    st.header(f"2 · p({NAMES[a]} | {NAMES[v]}) as a kernel")
    off = sp.offsets()
    cmp = compare_with_histogram(sp.kernel(a, v), sp.histogram[sp.edge_index(a, v)].cpu().numpy())
    ext = plots.kernel_extent(cmp["learned"], cmp["histogram"], offsets=off)
    told = describe_prior(sp, a, v, stride)
    st.info(told["sentence"], icon=":material/insights:")
    lim = float(np.abs(cmp["difference"]).max()) or 1.0
    diff = plots.kernel_figure(cmp["difference"], off, stride, "Learned − histogram (both peak 1)",
                               colorscale=plots.DIVERGING, zmid=0.0, hover="difference", meta="prior_diff",
                               extent=ext)
    diff.update_coloraxes(cmin=-lim, cmax=lim)
    figs = [plots.kernel_figure(sp.kernel(a, v), off, stride, f"Learned: {PRIOR_HTML}", meta="prior_kernel",
                                extent=ext),
            plots.kernel_figure(cmp["histogram"], off, stride, "Histogram it started from", hover="histogram",
                                meta="prior_hist", extent=ext),
            diff]
    chart.show(chart.panels(figs, meta="prior_kernels", spacing=0.07), key="prior_kernels")   # one chart
    k1, k2, k3 = st.columns(3)
    k1.caption(f"The kernel this model uses: {len(off)}×{len(off)} weights, one per displacement "
               f"Δ = A − v between two {sp.cfg.heatmap_size}×{sp.cfg.heatmap_size} heatmap pixels (centre = "
               f"same place; +y is down). The view shows ±{ext} px; double-click to see all of it.")
    k2.caption("How often each displacement occurred in the model's training labels, blurred by "
               f"{sp.cfg.hist_blur:g} px and scaled to a peak of 1: the kernel's starting point, stored "
               "in the model next to what training made of it.")
    k3.caption("Red: displacements training made *more* likely than the histogram; blue: less. Both are "
               "scaled to a peak of 1 first, because a kernel's overall scale trades off against the bias "
               "and the other messages.")


def v_position(models, ph, pred, v: int) -> tuple[str, str]:
    """The session keys of v's slider position (heatmap px): a click on the crop moves them;
    they start where the model found v."""
    codec, n = models.codec, models.codec.heatmap_size
    kx, ky = f"prior_vx_{ph.digest}_{v}", f"prior_vy_{ph.digest}_{v}"
    sel = st.session_state.get(CLICK) or {}
    pts = sel.get("selection", {}).get("points", [])
    if pts and pts[-1].get("x") is not None:            # a click (previous run) moves the sliders first
        p = pts[-1]
        sig = (ph.digest, v, p["x"], p["y"])
        if st.session_state.get("prior_click_done") != sig:
            hx, hy = (int(np.clip(round(float(t)), 0, n - 1)) for t in codec.to_heatmap(np.array([p["x"], p["y"]])))
            st.session_state[kx], st.session_state[ky] = hx, hy
            st.session_state["prior_click_done"] = sig
    method = "marginal" if "marginal" in pred.joints else "unary"
    vx0, vy0 = (int(np.clip(round(float(t)), 0, n - 1)) for t in codec.to_heatmap(pred.crop_joints(method)[v]))
    st.session_state.setdefault(kx, vx0)
    st.session_state.setdefault(ky, vy0)
    return kx, ky


@st.fragment                        # a click or a slider here reruns this section alone
def place_v(models, ph, pred, a: int, v: int) -> None:
    """3: the prior centred where the learner puts v on the crop."""
    st.header("3 · Place v on the crop")
    sp, codec = models.spatial, models.codec
    n = codec.heatmap_size
    kx, ky = v_position(models, ph, pred, v)
    c1, c2 = st.columns([1, 2], gap="large")
    with c1:
        st.markdown(f"**Click on the crop** to put **{NAMES[v]}** there, or use the sliders. It starts where the "
                    "model found it.")
        vx = st.slider(f"{NAMES[v]} x (heatmap px)", 0, n - 1, key=kx)
        vy = st.slider(f"{NAMES[v]} y (heatmap px)", 0, n - 1, key=ky)
        cx, cy = codec.to_crop(np.array([vx, vy], np.float64))
        st.caption(f"Heatmap pixel ({vx}, {vy}) is crop pixel ({cx:.1f}, {cy:.1f}): crop = {codec.stride}·heatmap + "
                   f"{(codec.stride - 1) / 2:g}.")
        alpha = st.slider("Prior opacity", 0.0, 1.0, 0.65, 0.05, key="prior_alpha")
    with c2:
        marks = [{"x": cx, "y": cy, "name": f"{NAMES[v]} (v, placed)", "symbol": "star", "size": 16,
                  "colour": plots.MARK["v"], "legend": True}]
        if a != v and "marginal" in pred.joints:
            xa, ya = pred.crop_joints("marginal")[a]
            marks.append({"x": xa, "y": ya, "name": f"{NAMES[a]} (A, the model's estimate)",
                          "symbol": "circle-open", "size": 14, "colour": plots.MARK["marginal"], "legend": True})
        fig = plots.overlay_figure(pred.crop, sp.prior_at(a, v, (vx, vy)), codec, alpha, hover=f"p({NAMES[a]} | v here)",
                                   colorscale=plots.PRIOR_OVER, markers=marks, height=520, meta="prior_placed",
                                   title=f"Where p({NAMES[a]} | {NAMES[v]}) expects {NAMES[a]}", fmt=".4f")
        plots.add_click_grid(fig, codec, label=f"click to put {NAMES[v]} here")
        fig.update_layout(legend=dict(orientation="h", y=-0.02, x=0), showlegend=True)
        chart.show(fig, key=CLICK, on_select="rerun", selection_mode="points")
        st.caption(f"The kernel above, centred on the ★ and cut to the {n}×{n} heatmap grid: this is the message "
                   f"{NAMES[v]} would send {NAMES[a]} if its heatmap were a single bright pixel at the ★ "
                   "(before the bias). Real heatmaps are spread out, so real messages are this map blurred by "
                   f"{NAMES[v]}'s heatmap (next page).")


INTRO = (
    "A body has structure: a knee sits about a shin's length above its ankle. The spatial model stores this "
    "as one image per pair of joints, a **prior** p(A|v) over the displacement from joint v to joint A, "
    f"kept as a convolution kernel {PRIOR_HTML} that covers every displacement between two heatmap pixels. "
    "Training starts each kernel from a histogram of displacements in the training labels and then refines "
    "it by back-propagation. Pick a pair, compare the two, then place v on the crop to see where A is "
    "expected.")


def main() -> None:
    common.header("Spatial priors", INTRO, "priors")
    models = common.load_spatial_models()
    ph = photos.photo_input(compact=True)
    pred = photos.predict(models, ph, photos.current_box(models, ph))
    a, v = pick_pair(models.spatial)
    kernels(models.spatial, a, v, models.codec.stride)
    place_v(models, ph, pred, a, v)


common.friendly(main)
