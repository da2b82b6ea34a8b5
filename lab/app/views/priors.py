"""Spatial priors: the learned kernel p(A|v) for one edge, the histogram it started from,
and where it expects A once v is placed on the crop."""
from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from lab.app import common, photos, plots
from lab.data.cache import MINI_PATH, PoseCache
from lab.data.targets import crop_to_heatmap, heatmap_to_crop
from lab.errors import LabError
from lab.joints import NAMES
from lab.models import graph
from lab.models.detector import STRIDE
from lab.models.spatial import compare_with_histogram

CLICK = "prior_click"
GRAPH_NOTE = {
    "tree": "the **kinematic tree**: each limb in both directions, plus a self edge A|A per joint",
    "full": "**fully connected**: every ordered pair of joints, self edges included",
}


@st.cache_data(max_entries=8, show_spinner=False)
def _histograms(key: str, _lab) -> np.ndarray | None:
    """The displacement histograms of the bundled mini training set, for this model's edges."""
    try:
        train = PoseCache(MINI_PATH)["train"]
    except LabError:
        return None
    return _lab.empirical_priors(train.coords, train.labelled, PoseCache(MINI_PATH).data.crop_size)


def _hm(xy) -> list[float]:
    return crop_to_heatmap(torch.as_tensor(np.asarray(xy, np.float64)), STRIDE).tolist()


def _crop(xy) -> list[float]:
    return heatmap_to_crop(torch.as_tensor(np.asarray(xy, np.float64)), STRIDE).tolist()


def main() -> None:
    st.title("Spatial priors")
    st.markdown(
        "A body has structure: a knee sits about a shin's length above its ankle. The spatial model stores this "
        "as one image per pair of joints, a **prior** p(A|v) over the displacement from joint v to joint A, "
        "kept as a convolution kernel that covers every displacement between two heatmap pixels. Training "
        "starts each kernel from a histogram of displacements in the training labels and then refines it by "
        "back-propagation. Pick a pair, compare the two, then place v on the crop to see where A is expected.")
    common.lesson_link("priors")
    lab = common.load_spatial_models()
    sp = lab.spatial
    ph = photos.photo_input(compact=True)
    box = photos.current_box(lab, ph)
    pred = photos.predict(lab, ph, box)
    H = sp.cfg.heatmap_size
    off = sp.offsets()

    # ------------------------------------------------------------ the pair
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
    e = sp.edge_index(a, v)

    kernel = sp.kernel(a, v)
    hist_all = _histograms(photos.model_key(lab), lab)
    cmp = compare_with_histogram(kernel, hist_all[e]) if hist_all is not None else None
    ext = plots.kernel_extent(kernel, *([cmp["histogram"]] if cmp else []), offsets=off)
    iy, ix = np.unravel_index(int(np.argmax(kernel)), kernel.shape)
    dx, dy = int(off[ix]), int(off[iy])

    # ------------------------------------------------------------ kernels
    st.header(f"2 · p({NAMES[a]} | {NAMES[v]}) as a kernel")
    k1, k2, k3 = st.columns(3)
    with k1:
        st.plotly_chart(plots.kernel_figure(kernel, off, STRIDE, "Learned: SoftPlus(e<sub>A|v</sub>)",
                                            meta="prior_kernel", extent=ext), key="prior_kernel")
        st.caption(f"The kernel this model uses: {kernel.shape[0]}×{kernel.shape[1]} weights, one per displacement "
                   f"Δ = A − v between two {H}×{H} heatmap pixels (centre = same place). Its peak says "
                   f"{NAMES[a]} is most likely at Δx = {dx}, Δy = {dy} heatmap px ({dx * STRIDE}, {dy * STRIDE} "
                   f"crop px) from {NAMES[v]}; +y is down. The view shows ±{ext} px; double-click to see "
                   "all of it.")
    if cmp is not None:
        with k2:
            st.plotly_chart(plots.kernel_figure(cmp["histogram"], off, STRIDE, "Empirical histogram (start)",
                                                hover="histogram", meta="prior_hist", extent=ext), key="prior_hist")
            st.caption("How often each displacement occurs in the 900 labelled training crops bundled with the "
                       "app (LSP im0001–1000), blurred by "
                       f"{sp.cfg.hist_blur:g} px and scaled to a peak of 1: the kind of histogram the kernel was "
                       "initialised from (the shipped model used its full training set).")
        with k3:
            lim = float(np.abs(cmp["difference"]).max()) or 1.0
            fig = plots.kernel_figure(cmp["difference"], off, STRIDE, "Learned − histogram (both peak 1)",
                                      colorscale=plots.DIVERGING, zmid=0.0, hover="difference", meta="prior_diff",
                                      extent=ext)
            fig.update_coloraxes(cmin=-lim, cmax=lim)
            st.plotly_chart(fig, key="prior_diff")
            st.caption("Red: displacements training made *more* likely than the data's histogram; blue: less. "
                       "Both are scaled to a peak of 1 first, because the overall scale of a kernel trades off "
                       "against the bias and the other messages.")
    else:
        with k2:
            st.info("The bundled mini set (lab/assets/mini.safetensors) is missing, so the empirical histogram "
                    "cannot be shown. The learned kernel on the left does not need it.")

    # ------------------------------------------------------------ placed on the crop
    st.header("3 · Place v on the crop")
    pos = pred.crop_joints("spatial") if "spatial" in pred.joints else pred.crop_joints("unary")
    kx, ky = f"prior_vx_{ph.digest}_{v}", f"prior_vy_{ph.digest}_{v}"
    # a click on the crop (previous run) moves the sliders before they are drawn
    sel = st.session_state.get(CLICK)
    pts = (sel or {}).get("selection", {}).get("points", []) if sel else []
    if pts:
        p = pts[-1]
        sig = (ph.digest, v, p.get("x"), p.get("y"))
        if st.session_state.get("prior_click_done") != sig and p.get("x") is not None:
            hx, hy = (int(np.clip(round(t), 0, H - 1)) for t in _hm((p["x"], p["y"])))
            st.session_state[kx], st.session_state[ky] = hx, hy
            st.session_state["prior_click_done"] = sig
    vx0, vy0 = (int(np.clip(round(t), 0, H - 1)) for t in _hm(pos[v]))
    st.session_state.setdefault(kx, vx0)        # state first, no default: a click may set it
    st.session_state.setdefault(ky, vy0)
    c1, c2 = st.columns([1, 2], gap="large")
    with c1:
        st.markdown(f"**Click on the crop** to put **{NAMES[v]}** there, or use the sliders. It starts where the "
                    "model found it.")
        vx = st.slider(f"{NAMES[v]} x (heatmap px)", 0, H - 1, key=kx)
        vy = st.slider(f"{NAMES[v]} y (heatmap px)", 0, H - 1, key=ky)
        cx, cy = _crop((vx, vy))
        st.caption(f"Heatmap pixel ({vx}, {vy}) is crop pixel ({cx:.1f}, {cy:.1f}): crop = {STRIDE}·heatmap + "
                   f"{(STRIDE - 1) / 2:g}.")
        alpha = st.slider("Prior opacity", 0.0, 1.0, 0.65, 0.05, key="prior_alpha")
    prior_map = sp.prior_at(a, v, (vx, vy))
    with c2:
        marks = [{"x": cx, "y": cy, "name": f"{NAMES[v]} (v, placed)", "symbol": "star", "size": 16,
                  "colour": plots.MARK["v"], "legend": True}]
        if a != v:
            marks.append({"x": pos[a][0], "y": pos[a][1], "name": f"{NAMES[a]} (A, model's estimate)",
                          "symbol": "circle-open", "size": 14, "colour": plots.MARK["spatial"], "legend": True})
        fig = plots.overlay_figure(pred.crop, prior_map, STRIDE, alpha, hover=f"p({NAMES[a]} | v here)",
                                   colorscale=plots.PRIOR_OVER, markers=marks, height=520, meta="prior_placed",
                                   title=f"Where p({NAMES[a]} | {NAMES[v]}) expects {NAMES[a]}", fmt=".4f")
        plots.add_click_grid(fig, H, STRIDE, label=f"click to put {NAMES[v]} here")
        fig.update_layout(legend=dict(orientation="h", y=-0.02, x=0), showlegend=True)
        st.plotly_chart(fig, key=CLICK, on_select="rerun", selection_mode="points")
        st.caption(f"The kernel above, centred on the ★ and cut to the {H}×{H} heatmap grid: this is the message "
                   f"{NAMES[v]} would send {NAMES[a]} if its heatmap were a single bright pixel at the ★ "
                   "(before the bias). Real heatmaps are spread out, so real messages are this map blurred by "
                   f"{NAMES[v]}'s heatmap (next page).")


common.friendly(main)
