"""Part detector: the multi-resolution inputs, bank features, the 14 unary heatmaps and their peaks."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
import torch

from lab.app import common, photos, plots
from lab.data.targets import STRONG_SECOND_PEAK, crop_to_heatmap
from lab.infer import peak_report
from lab.joints import NAMES, side
from lab.models.detector import STRIDE, strongest_channels


def _to_heatmap(xy) -> list[float]:
    """Crop pixels -> heatmap pixels (lab.data.targets.crop_to_heatmap)."""
    return crop_to_heatmap(torch.as_tensor(np.asarray(xy, np.float64)), STRIDE).tolist()


@st.cache_data(max_entries=32, show_spinner=False)
def _inspect(key: str, digest: str, box: tuple, _lab, _crop: np.ndarray) -> dict:
    out = _lab.inspect(_crop)
    return {"inputs": [t.permute(1, 2, 0).numpy() for t in out["inputs"]],
            "banks": [t.numpy() for t in out["banks"]], "unary": out["unary"].numpy()}


def main() -> None:
    st.title("Part detector")
    st.markdown(
        "The part detector is a fully convolutional network: it slides over the crop and, at every position, "
        "scores how much the patch around it looks like each of the 14 joints. It looks at the crop at "
        "several resolutions at once (*banks*): the fine bank sees texture, the coarse bank sees more context "
        "for the same cost. Its output, one **unary heatmap** per joint, is the model's first, purely local "
        "guess; this page shows every stage for the current photo.")
    common.lesson_link("detector")
    lab = common.load_models()
    if lab is None:
        st.stop()
    ph = photos.photo_input(compact=True)
    box = photos.current_box(lab, ph)
    pred = photos.predict(lab, ph, box)
    with st.spinner("Running the detector stage by stage…"):
        ins = _inspect(photos.model_key(lab), ph.digest, tuple(box), lab, pred.crop)
    cfg = lab.pose.detector.cfg
    H = pred.unary.shape[-1]

    # ------------------------------------------------------------ 1. inputs
    st.header("1 · One crop, several resolutions")
    cols = st.columns(len(ins["inputs"]) + 1)
    for i, (col, img) in enumerate(zip(cols, ins["inputs"])):
        s = img.shape[0]
        with col:
            st.plotly_chart(plots.rgb_figure(img, f"Bank {i + 1} input: {s}×{s}", height=260,
                                             meta=f"bank_input_{i}"), key=f"bank_input_{i}")
            st.caption(("The crop at full resolution." if i == 0 else
                        f"Averaged over {2 ** i}×{2 ** i} blocks: 1/{2 ** i} resolution.")
                       + f" Bank {i + 1} turns it into {cfg.width} feature maps of {s // 4}×{s // 4}.")
    with cols[-1]:
        st.markdown(f"**This model**\n\n- {cfg.banks} banks, each {cfg.bank_depth} conv layers "
                    f"({cfg.width} channels), ending at 1/4 of its input\n"
                    f"- coarse features upsampled to {H}×{H} and combined by **{cfg.combine}**\n"
                    f"- then {cfg.head_depth} dilated 3×3 layers ({cfg.head_width} channels) and a 1×1 "
                    f"layer to {cfg.joints} heatmaps")
        st.caption("All banks see the same field of the crop: the coarse one covers a patch "
                   f"{2 ** (cfg.banks - 1)}× larger in crop pixels with the same kernels.")

    # ------------------------------------------------------------ 2. features
    st.header("2 · What each bank computes")
    c1, c2, c3 = st.columns([1, 1, 2])
    with c1:
        b = st.selectbox("Bank", range(len(ins["banks"])),
                         format_func=lambda i: f"Bank {i + 1} ({ins['inputs'][i].shape[0]} px input)")
    feats = ins["banks"][b]
    with c2:
        mode = st.radio("Channels", ["Strongest", "Pick"], horizontal=True,
                        help="Strongest: the channels with the largest mean activation on this crop.")
    with c3:
        if mode == "Strongest":
            n = st.slider("How many", 1, min(24, len(feats)), min(8, len(feats)))
            chans = strongest_channels(torch.from_numpy(feats), n)
        else:
            chans = st.multiselect("Channels", list(range(len(feats))), default=list(range(min(6, len(feats)))),
                                   max_selections=24)
    if chans:
        fig = plots.heatmap_grid(feats[chans], [f"ch {c}" for c in chans], cols=min(8, len(chans)),
                                 colorscale=plots.FEATURE, zmin=0.0, hover="activation", meta="features",
                                 cell_px=130)
        st.plotly_chart(fig, key="features")
        s = feats.shape[-1]
        st.caption(f"Bank {b + 1}'s output: {len(feats)} feature maps of {s}×{s} (after ReLU, so ≥ 0), "
                   f"{len(chans)} shown on one shared colour scale. Each pixel summarises a patch of the crop "
                   f"{STRIDE * 2 ** b} crop pixels apart from its neighbour. Features are not labelled: some "
                   "respond to edges, skin or limbs; the layers after combining turn them into joints.")
    else:
        st.info("Pick at least one channel.")

    # ------------------------------------------------------------ 3. unary grid
    st.header("3 · The 14 unary heatmaps")
    shared = st.segmented_control("Colour scale", ["Shared", "Per map"], default="Shared", key="unary_scale",
                                  help="Shared: one scale for all 14, to compare how sure the detector is about "
                                       "each joint. Per map: each map spans its own range, to see its shape.") \
        != "Per map"
    unary = ins["unary"]
    rep = peak_report(pred)
    marks = []
    for k in range(len(NAMES)):
        r = rep[k]
        ux, uy = _to_heatmap(r["unary"])
        pts = [{"x": ux, "y": uy, "name": "unary peak", "symbol": "x", "colour": plots.MARK["unary"], "size": 8}]
        if r["strong"] and r["second"] is not None:
            sx, sy = _to_heatmap(r["second"])
            pts.append({"x": sx, "y": sy, "name": f"second peak ({r['second_ratio']:.0%} of the first)",
                        "symbol": "triangle-up-open", "colour": plots.MARK["second"], "size": 9})
        marks.append(pts)
    fig = plots.heatmap_grid(unary, [f"{NAMES[k]}" for k in range(len(NAMES))], cols=7, hover="unary",
                             markers=marks, meta="unary_grid", cell_px=170, colorbar_title="unary",
                             shared=shared)
    st.plotly_chart(fig, key="unary_grid")
    st.caption(f"The detector's output for this crop: 14 maps of {H}×{H}, one per joint, "
               + ("on one shared colour scale" if shared else "each on its own colour scale")
               + " (values are not probabilities: training pushes them towards a Gaussian bump of height 1 at "
               f"the joint and 0 elsewhere). ✕ marks each map's peak, the detector's guess; a red △ marks a "
               f"second peak at least {STRONG_SECOND_PEAK:.0%} as high: a candidate false positive.")

    # ------------------------------------------------------------ 4. one over the crop
    st.header("4 · One heatmap over the crop")
    c1, c2 = st.columns([1, 2], gap="large")
    with c1:
        k = st.selectbox("Joint", range(len(NAMES)), format_func=lambda i: NAMES[i], index=6)
        alpha = st.slider("Heatmap opacity", 0.0, 1.0, 0.6, 0.05)
        r = rep[k]
        st.markdown(
            f"**{NAMES[k]}** ({side(k)} side)\n\n"
            f"- unary peak: ({r['unary'][0]:.0f}, {r['unary'][1]:.0f}) crop px, height {r['unary_value']:.3f}\n"
            + (f"- second peak: ({r['second'][0]:.0f}, {r['second'][1]:.0f}), **{r['second_ratio']:.0%}** of the "
               f"first{' — strong' if r['strong'] else ''}\n" if r["second"] is not None else
               "- no second local maximum\n")
            + (f"- with the spatial model: ({r['spatial'][0]:.0f}, {r['spatial'][1]:.0f}), moved "
               f"{r['moved']:.1f} crop px\n" if r["spatial"] is not None else ""))
    with c2:
        pts = [{"x": r["unary"][0], "y": r["unary"][1], "name": "unary peak (detector alone)", "symbol": "x",
                "colour": plots.MARK["unary"], "legend": True}]
        if r["second"] is not None:
            pts.append({"x": r["second"][0], "y": r["second"][1], "legend": True,
                        "name": f"second peak ({r['second_ratio']:.0%})", "symbol": "triangle-up-open",
                        "colour": plots.MARK["second"]})
        if r["spatial"] is not None:
            pts.append({"x": r["spatial"][0], "y": r["spatial"][1], "name": "detector + spatial model",
                        "symbol": "circle-open", "colour": plots.MARK["spatial"], "size": 14, "legend": True})
        fig = plots.overlay_figure(pred.crop, unary[k], STRIDE, alpha, title=f"Unary heatmap: {NAMES[k]}",
                                   hover="unary", markers=pts, height=480, meta="unary_overlay")
        fig.update_layout(legend=dict(orientation="h", y=-0.02, x=0, font=dict(size=11)), showlegend=True)
        st.plotly_chart(fig, key="unary_overlay")
        st.caption(f"The {NAMES[k]} heatmap stretched over the crop: each cell covers {STRIDE}×{STRIDE} crop "
                   "pixels. Where the detector alone (✕) and the full model (○) disagree, the spatial model "
                   "overruled the local evidence using the other joints.")

    # ------------------------------------------------------------ 5. table
    st.header("5 · Where the detector alone is doubtful")
    df = pd.DataFrame({
        "joint": list(NAMES), "side": [side(j) for j in range(len(NAMES))],
        "unary peak (x, y)": [f"({q['unary'][0]:.0f}, {q['unary'][1]:.0f})" for q in rep],
        "peak height": [q["unary_value"] for q in rep],
        "second peak / first": [q["second_ratio"] for q in rep],
        "strong second peak": [q["strong"] for q in rep],
        "moved by spatial model (crop px)": [q["moved"] for q in rep],
    })
    st.dataframe(df, hide_index=True, width="stretch", height=(len(df) + 1) * 35 + 3, column_config={
        "peak height": st.column_config.NumberColumn(format="%.3f"),
        "second peak / first": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.2f"),
        "moved by spatial model (crop px)": st.column_config.NumberColumn(format="%.1f")})
    doubtful = [NAMES[q["joint"]] for q in rep if q["strong"]]
    moved = [NAMES[q["joint"]] for q in rep if np.isfinite(q["moved"]) and q["moved"] > 2 * STRIDE]
    st.caption("We have no ground truth for these photos, so this table shows where the detector *disagrees with "
               "itself* (a strong second peak) or *with the full model* (moved more than "
               f"{2 * STRIDE} crop px, two heatmap cells). "
               + (f"Strong second peaks: {', '.join(doubtful)}. " if doubtful else "No strong second peaks. ")
               + (f"Moved by the spatial model: {', '.join(moved)}." if moved else ""))


common.friendly(main)
