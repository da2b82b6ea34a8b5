"""Part detector: the multi-resolution inputs, what each bank computes, the 14 unary heatmaps
and their peaks."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st
import torch

from lab.analysis import STRONG_SECOND_PEAK, describe_detector, peak_report
from lab.app import chart, common, grid, interact, links, photos, plots
from lab.joints import NAMES, R_WRIST, SHORT, side
from lab.models.detector import BANK_STRIDE, strongest_channels


@st.cache_data(max_entries=32, show_spinner=False)
def _inspect(key: str, digest: str, box: tuple, _models, _crop: np.ndarray) -> dict:
    out = _models.inspect(_crop)
    return {"inputs": [t.permute(1, 2, 0).numpy() for t in out["inputs"]],
            "banks": [t.numpy() for t in out["banks"]]}


def bank_inputs(models, ins: dict) -> None:
    """1: the crop at each bank's resolution, and how this model's banks are built."""
    st.header("1 · One crop, several resolutions")
    cfg, words = models.pose.detector.cfg, describe_detector(models.pose.detector.cfg)
    n_in = len(ins["inputs"])
    left, right = st.columns([n_in, 1])
    with left:                                       # one chart, a panel per bank
        chart.show(chart.panels([plots.rgb_figure(img, f"Bank {i + 1} input: {img.shape[0]}×{img.shape[0]}",
                                                       height=260, meta=f"bank_input_{i}")
                                      for i, img in enumerate(ins["inputs"])], meta="bank_inputs"),
                        key="bank_inputs")
        for i, (col, img) in enumerate(zip(st.columns(n_in), ins["inputs"])):
            s = img.shape[0]
            col.caption(("The crop at full resolution." if i == 0 else
                         f"Averaged over {2 ** i}×{2 ** i} blocks: 1/{2 ** i} resolution.")
                        + f" Bank {i + 1} turns it into {cfg.width} feature maps of {s // BANK_STRIDE}×{s // BANK_STRIDE}.")
    with right:
        n = models.codec.heatmap_size
        st.markdown(f"**This model**\n\n- {words['banks']}\n"
                    f"- coarse features upsampled to {n}×{n} and combined by **{cfg.combine}**\n"
                    f"- then {cfg.head_depth} dilated 3×3 layer{'s' if cfg.head_depth != 1 else ''} "
                    f"({cfg.head_width} channels) and a 1×1 layer to {cfg.joints} unary maps\n"
                    f"- each unary map holds {words['unary']}")
        st.caption("Every bank sees the whole crop: the coarse one covers a patch "
                   f"{2 ** (cfg.banks - 1)}× larger in crop pixels with the same kernels.")


def bank_features(models, ins: dict) -> None:
    """2: the strongest (or chosen) feature maps of one bank."""
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
    if not chans:
        st.info("Pick at least one channel.")
        return
    chart.show(grid.heatmap_grid(feats[chans], [f"ch {c}" for c in chans], cols=min(8, len(chans)),
                                       colorscale=plots.FEATURE, zmin=0.0, hover="activation", meta="features",
                                       cell_px=130, mosaic=True), key="features")
    shared = (" All banks run the same pretrained trunk, so the difference between banks is the resolution "
              "the trunk saw and each bank's own decoder." if models.pose.detector.features.trunk is not None else "")
    s = feats.shape[-1]
    st.caption(f"Bank {b + 1}'s output: {len(feats)} feature maps of {s}×{s} (after ReLU, so ≥ 0), "
               f"{len(chans)} shown on one shared colour scale. Neighbouring pixels are "
               f"{models.codec.stride * 2 ** b} crop pixels apart. Features are not labelled: some respond to "
               "edges, skin or limbs; the layers after combining turn them into joints." + shared)


def peak_marks(models, rep: list[dict]) -> list[list[dict]]:
    """Per joint, markers in heatmap pixels: the unary's peak and a strong second peak."""
    codec, marks = models.codec, []
    for r in rep:
        ux, uy = codec.to_heatmap(r["unary"])
        pts = [{"x": ux, "y": uy, "name": "unary peak", "symbol": "x", "colour": plots.MARK["unary"], "size": 8}]
        if r["strong"]:
            sx, sy = codec.to_heatmap(r["second"])
            pts.append({"x": sx, "y": sy, "name": f"second peak ({r['second_ratio']:.0%} of the first)",
                        "symbol": "triangle-up-open", "colour": plots.MARK["second"], "size": 9})
        marks.append(pts)
    return marks


def unary_grid(models, belief: np.ndarray, rep: list[dict]) -> None:
    """3: the 14 unary maps as the spatial model reads them, with their peaks."""
    st.header("3 · The 14 unary heatmaps")
    shared = st.segmented_control("Colour scale", ["Shared", "Per map"], default="Shared", key="unary_scale",
                                  help="Shared: one scale for all 14, to compare how sure the detector is about "
                                       "each joint. Per map: each map spans its own range, to see its shape.") \
        != "Per map"
    fig = grid.heatmap_grid(belief, list(NAMES), cols=7, hover="unary", markers=peak_marks(models, rep),
                             meta="unary_grid", cell_px=170, colorbar_title="unary", shared=shared, mosaic=True)
    chart.show(fig, key="unary_grid")
    n = models.codec.heatmap_size
    st.caption(f"The detector's output for this crop: 14 maps of {n}×{n}, one per joint, "
               + ("on one shared colour scale" if shared else "each on its own colour scale")
               + f". Drawn: {describe_detector(models.pose.detector.cfg)['drawn']}. ✕ marks each map's peak, "
               f"the detector's guess; a red △ marks a second peak at least {STRONG_SECOND_PEAK:.0%} as high: "
               "a candidate false positive.")


def joint_summary(r: dict) -> str:
    k = r["joint"]
    return (f"**{NAMES[k]}** ({side(k)} side)\n\n"
            f"- unary peak: ({r['unary'][0]:.0f}, {r['unary'][1]:.0f}) crop px, height {r['unary_value']:.3f}\n"
            + (f"- second peak: ({r['second'][0]:.0f}, {r['second'][1]:.0f}), **{r['second_ratio']:.0%}** of the "
               f"first{' — strong' if r['strong'] else ''}\n" if r["second"] is not None else
               "- no second local maximum\n")
            + (f"- with the spatial model: ({r['marginal'][0]:.0f}, {r['marginal'][1]:.0f}), moved "
               f"{r['moved']:.1f} crop px\n" if r["marginal"] is not None else ""))


def one_heatmap(models, pred, belief: np.ndarray, rep: list[dict]) -> None:
    """4: one joint's map over the crop, with the detector's and the full model's answers."""
    st.header("4 · One heatmap over the crop")
    c1, c2 = st.columns([1, 2], gap="large")
    with c1:
        k = st.selectbox("Joint", range(len(NAMES)), format_func=lambda i: NAMES[i], index=R_WRIST)
        alpha = st.slider("Heatmap opacity", 0.0, 1.0, 0.6, 0.05)
        r = rep[k]
        st.markdown(joint_summary(r))
    with c2:
        pts = [{"x": r["unary"][0], "y": r["unary"][1], "name": "unary peak (detector alone)", "symbol": "x",
                "colour": plots.MARK["unary"], "legend": True}]
        if r["second"] is not None:
            pts.append({"x": r["second"][0], "y": r["second"][1], "legend": True,
                        "name": f"second peak ({r['second_ratio']:.0%})", "symbol": "triangle-up-open",
                        "colour": plots.MARK["second"]})
        if r["marginal"] is not None:
            pts.append({"x": r["marginal"][0], "y": r["marginal"][1], "name": "detector + spatial model",
                        "symbol": "circle-open", "colour": plots.MARK["marginal"], "size": 14, "legend": True})
        fig = plots.overlay_figure(pred.crop, belief[k], models.codec, alpha, title=f"Unary heatmap: {NAMES[k]}",
                                   hover="unary", markers=pts, height=480, meta="unary_overlay")
        fig.update_layout(legend=dict(orientation="h", y=-0.02, x=0, font=dict(size=11)), showlegend=True)
        chart.show(fig, key="unary_overlay")
        s = models.codec.stride
        st.caption(f"The {NAMES[k]} heatmap stretched over the crop: each cell covers {s}×{s} crop pixels. "
                   "Where the detector alone (✕) and the full model (○) disagree, the spatial model overruled "
                   "the local evidence using the other joints.")


def doubt_table(models, rep: list[dict]) -> None:
    """5: per joint, where the detector disagrees with itself or with the full model."""
    st.header("5 · Where the detector alone is doubtful")
    df = pd.DataFrame({
        "joint": list(NAMES), "side": [side(j) for j in range(len(NAMES))],
        "unary peak (x, y)": [f"({q['unary'][0]:.0f}, {q['unary'][1]:.0f})" for q in rep],
        "peak height": [q["unary_value"] for q in rep],
        "second peak / first": [q["second_ratio"] for q in rep],
        "strong second peak": [q["strong"] for q in rep],
        "moved by spatial model (crop px)": [q["moved"] for q in rep],
    })
    st.table(df.style.format({"peak height": "{:.3f}", "second peak / first": "{:.2f}",
                              "moved by spatial model (crop px)": "{:.1f}"})
             .bar(subset=["second peak / first"], vmin=0.0, vmax=1.0, color="#9ecae1"), hide_index=True)
    doubtful = [NAMES[q["joint"]] for q in rep if q["strong"]]
    overruled = [NAMES[q["joint"]] for q in rep if q["overruled"]]
    st.caption("We have no ground truth for these photos, so this table shows where the detector *disagrees with "
               "itself* (a strong second peak) or *with the full model* (overruled: moved more than two heatmap "
               f"cells, {2 * models.codec.stride} crop px). "
               + (f"Strong second peaks: {', '.join(doubtful)}. " if doubtful else "No strong second peaks. ")
               + (f"Overruled by the spatial model: {', '.join(overruled)}." if overruled else ""))


INTRO = (
    "The part detector is a fully convolutional network: it slides over the crop and, at every position, "
    "scores how much the patch around it looks like each of the 14 joints. It looks at the crop at "
    "several resolutions at once (*banks*): the fine bank sees texture, the coarse bank sees more context "
    "for the same cost. Its output, one **unary heatmap** per joint, is the model's first, purely local "
    "guess; this page shows every stage for the current photo.")


def main() -> None:
    common.header("Part detector", INTRO, "detector")
    models = common.require_models()
    incoming = links.take("detector")             # a link opened: its banks, occlusion and joint
    ph = photos.photo_input(compact=True)
    box = photos.current_box(models, ph)
    pred = photos.predict(models, ph, box)
    with st.spinner("Running the detector stage by stage…"):
        ins = _inspect(photos.model_key(models), ph.digest, tuple(box), models, pred.crop)
    belief, rep = models.belief(pred.unary).numpy(), peak_report(models, pred)
    bank_inputs(models, ins)
    bank_features(models, ins)
    unary_grid(models, belief, rep)
    one_heatmap(models, pred, belief, rep)
    doubt_table(models, rep)
    touch_sections(models, pred, incoming)


@st.fragment
def touch_sections(models, pred, incoming: dict) -> None:
    """6-7: switch banks off, hide part of the crop, and the page's link. Each section is
    drawn only while open (a link's values open theirs); closed, its banks are all on and
    nothing is hidden. A fragment: a click here, opening a section included, reruns these
    two sections alone, so the browser redraws their charts, not the page's. A link's values
    (`incoming`) apply once: on the fragment's own reruns, which get the same dict, it is empty."""
    with common.section("6 · Switch off a bank", interact.BANKS_OPEN, "off" in incoming) as banks:
        off = interact.bank_switch(models, pred, incoming) if banks.open else ()
    with common.section("7 · Hide part of the crop", interact.OCC_OPEN, "occ" in incoming or "joint" in incoming) as hide:
        occ = interact.occlusion(models, pred, off, incoming) if hide.open else None
    incoming.clear()
    links.share({"off": links.joined(i + 1 for i in off), "occ": links.joined(occ or ()),
                 "joint": SHORT[st.session_state[interact.OCC_JOINT]] if hide.open else None})


common.friendly(main)
