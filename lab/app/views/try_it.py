"""Try it: a photo in, three skeletons out (detector alone, + spatial model, regressor)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

from lab import analysis
from lab.analysis import confidence_help
from lab.app import chart, common, data, download, links, photos, plots
from lab.joints import NAMES, side
from lab.names import METHOD_LABELS, METHODS

CAPTIONS = {
    "unary": "Each joint at the peak of its own heatmap, decided independently of the others.",
    "marginal": "Each joint at the peak of its marginal: its heatmap multiplied by the messages from its "
                "neighbours in the body graph (pages *Spatial priors*, *Message passing*).",
    "regressor": "28 numbers straight from a network: no heatmaps and no confidence (page *Heatmaps vs regression*).",
}


def photo_and_framing(models):
    """1-2: the photo, the people found in it and the crop box; returns the photo, the box and the prediction."""
    left, right = st.columns([1, 2], gap="large")
    with left:
        st.subheader("1 · Photo")
        ph = photos.photo_input()
        st.subheader("2 · Framing")
        st.info(FRAMING_INFO, icon="ℹ️")
        photos.person_list(ph)
        box = photos.crop_controls(models, ph)
        scales = zoom_and_flip_switch()
    pred = photos.predict(models, ph, box, scales)
    with right:
        c1, c2 = st.columns([3, 2])
        with c1:
            photo_with_people(models, ph, box)
        with c2:
            codec = models.codec
            chart.show(plots.photo_figure(pred.crop, f"What the model sees ({codec.crop_size}×{codec.crop_size})",
                                               height=300, meta="crop"), key="crop")
            st.caption(f"The crop, resampled to {codec.crop_size}×{codec.crop_size} pixels from the original "
                       f"photo's pixels. Heatmaps are {codec.heatmap_size}×{codec.heatmap_size}: one cell per "
                       f"{codec.stride}×{codec.stride} crop pixels.")
        photos.show_framing_notes(ph)
    return ph, box, pred


FRAMING_INFO = ("Like the paper, the model assumes **one person, roughly centred, seen whole**. So a person "
                "detector runs first: every person it finds gets a numbered box, and the crop is framed around "
                "the one you pick (by default the most prominent). Click a number on the photo or pick from the "
                "list; drag a box on the photo (toolbar: *Box Select*), or move the sliders, to frame the crop "
                "yourself.")


TTA = "try_tta"          # the switch's session key; `tta=1` in a link


def zoom_and_flip_switch() -> tuple[float, ...]:
    """Test-time augmentation, off by default: the zooms to average the unary over (each also
    mirrored), as `pose-lab eval --flip --scales` measured them; () when off or not measured."""
    tta = data.zoom_and_flip(common.shipped_weights())
    if tta is None:
        return ()
    if links.take("try-it").get("tta") == "1":
        st.session_state[TTA] = True
    zooms = ", ".join(f"{s:g}" for s in tta["scales"])
    on = st.toggle("Flip + zoom test", key=TTA,
                   help=f"Run the detector on the crop at zooms {zooms}, each also mirrored, and average the "
                        f"unaries: {2 * len(tta['scales'])} runs instead of one.")
    if on and tta["plain"] is not None and tta["augmented"] is not None:
        st.caption(f"{2 * len(tta['scales'])} detector runs (zooms {zooms}, each mirrored; chosen on the validation "
                   f"split). On the LSP test set the marginal scores {100 * tta['augmented']:.1f} PCK@0.2 with "
                   f"them and {100 * tta['plain']:.1f} without (`pose-lab eval --flip --scales`).")
    links.share({"tta": "1" if on else None})
    return tta["scales"] if on else ()


def photo_with_people(models, ph, box) -> None:
    """The photo, the numbered people and the crop box; clicks and dragged boxes change the framing."""
    h, w = ph.rgb.shape[:2]
    vw = max(w, box[0] + box[2] / 2) - min(0, box[0] - box[2] / 2)
    vh = max(h, box[1] + box[2] / 2) - min(0, box[1] - box[2] / 2)
    photos.framing_chart(models, ph, box, height=plots.fit_height(vw, vh, width_px=480, lo=200, hi=400))
    st.caption(f"The photo ({w}×{h} px). Numbered: the people found. Dashed: the square crop the model sees, "
               f"centre ({box[0]:.0f}, {box[1]:.0f}), side {box[2]:.0f} px ({photos.framing_label(ph)}). "
               "Click a number to analyse that person; to frame the crop yourself, pick *Box Select* in the "
               "chart's toolbar and drag a box around the person. Where the box leaves the photo (grey here) "
               "the crop is filled with black.")


def view_window(ph, box, pred, methods, whole: bool) -> tuple[float, float, float, float]:
    """The part of the photo the skeletons are drawn over: all of it, or the crop box and every joint."""
    h, w = ph.rgb.shape[:2]
    if whole:
        return -0.5, w - 0.5, -0.5, h - 0.5
    pts = np.concatenate([pred.joints[m] for m in methods])
    return (min(box[0] - box[2] / 2, pts[:, 0].min()), max(box[0] + box[2] / 2, pts[:, 0].max()),
            min(box[1] - box[2] / 2, pts[:, 1].min()), max(box[1] + box[2] / 2, pts[:, 1].max()))


def three_predictions(models, ph, box, pred) -> list[str]:
    """3: one skeleton per predictor, side by side; returns the methods shown."""
    st.subheader("3 · Three predictions")
    st.markdown(f"Colours follow the person's own sides: {plots.side_legend_html()}. "
                "Hover a joint for its name, position and confidence.", unsafe_allow_html=True)
    methods = [m for m in METHODS if m in pred.joints]
    view = st.segmented_control("View", ["Around the crop", "Whole photo"], default="Around the crop",
                                key="skeleton_view", label_visibility="collapsed")
    x0, x1, y0, y1 = view_window(ph, box, pred, methods, view == "Whole photo")
    img, origin, step = photos.view_image(ph, (x0, x1, y0, y1), max_side=700)
    figs = []
    for m in methods:                                 # one chart, a panel per method: one draw, not three
        fig = plots.photo_figure(img, METHOD_LABELS[m], meta=f"skeleton_{m}", origin=origin, step=step,
                                 height=plots.fit_height(x1 - x0, y1 - y0, width_px=330))
        plots.add_box(fig, box, colour="rgba(255,255,255,0.6)")
        plots.add_skeleton(fig, pred.joints[m], pred.confidence[m], METHOD_LABELS[m])
        plots.zoom_to(fig, x0, x1, y0, y1)
        fig.update_layout(plot_bgcolor="#3a3a3a")
        figs.append(fig)
    chart.show(chart.panels(figs, meta="skeleton_panels"), key="skeletons")
    for col, m in zip(st.columns(len(methods)), methods):
        col.caption(CAPTIONS[m])
    if "marginal" not in pred.joints:
        st.warning(f"Not available with the chosen model: {METHOD_LABELS['marginal']} (it has no spatial model).")
    if "regressor" not in pred.joints:
        st.warning(f"Not available: {METHOD_LABELS['regressor']}. {common.regressor_note(models)}")
    return methods


def left_and_right(models, pred) -> None:
    """Whether the heatmaps tell the person's left from right (`lab.analysis.left_right_report`):
    the two best assignments and their scores, flagged when the second comes close or the
    skeleton shows a back view."""
    rep = analysis.left_right_report(models, pred)
    (st.warning if rep["suspect"] else st.caption)(rep["sentence"])
    with st.expander("Left and right: the two best assignments", expanded=rep["suspect"]):
        st.table(pd.DataFrame({"assignment": [a["name"] for a in rep["assignments"]],
                               "score (mean unary at the joints)": [a["score"] for a in rep["assignments"]]})
                 .style.format({"score (mean unary at the joints)": "{:.4f}"}), hide_index=True)
        st.caption(f"Facing: {FACING[rep['facing']]}. LSP labels are the person's own left and right, so a "
                   "heatmap model must tell from appearance alone whether it sees a front or a back. "
                   "The lesson *Pose as heatmaps* explains why this is hard.")


FACING = {"camera": "towards the camera (their right on the image's left)",
          "away": "away from the camera, or left and right swapped (their right on the image's right)",
          "side-on": "side-on (the two sides overlap)"}


def confidence_table(models, pred, methods) -> None:
    """The per-joint confidences, with what each one measures for this model."""
    help_of = confidence_help(models.pose.detector.cfg)
    with st.expander("Per-joint confidence", expanded=False):
        rows = {"joint": list(NAMES), "side": [side(k) for k in range(len(NAMES))]}
        scored = [m for m in methods if np.isfinite(pred.confidence[m]).any()]    # the regressor has none
        for m in scored:
            rows[METHOD_LABELS[m]] = [None if not np.isfinite(v) else float(v) for v in pred.confidence[m]]
        st.table(pd.DataFrame(rows).style.format({METHOD_LABELS[m]: "{:.3f}" for m in scored}, na_rep="–"),
                 hide_index=True)
        st.caption("The confidences measure different things, so compare them down a column, not across: "
                   + "; ".join(f"**{METHOD_LABELS[m]}**: {help_of[m]}" for m in scored) + "."
                   + "".join(f" {METHOD_LABELS[m]}: no column, {help_of[m]}." for m in methods if m not in scored))


def downloads(models, ph, box, pred, methods) -> None:
    """4: the annotated photo (PNG) and the joints (JSON)."""
    st.subheader("4 · Download")
    pick = st.multiselect("Skeletons in the PNG", methods, default=methods, format_func=lambda m: METHOD_LABELS[m])
    stem = "".join(ch if ch.isalnum() else "_" for ch in ph.name.rsplit(".", 1)[0])[:40] or "photo"
    d1, d2 = st.columns(2)
    with d1:
        panels = [(METHOD_LABELS[m], pred.joints[m]) for m in pick]
        png = (lambda: download.annotated_png(ph.rgb, panels, box)) if pick else b""    # made on click
        st.download_button("Annotated photo (PNG)", png, file_name=f"pose_{stem}.png", mime="image/png",
                           disabled=not pick, icon=":material/image:", on_click="ignore")
    with d2:
        js = json.dumps(photos.result_json(ph, pred, box, common.chosen(), models, photos.is_adjusted(ph),
                                           photos.framing_label(ph)), indent=2)
        st.download_button("Joints (JSON)", js, file_name=f"pose_{stem}.json", mime="application/json",
                           icon=":material/data_object:", on_click="ignore")
    st.caption("The JSON holds the photo's size, the crop box and every method's 14 joints in original "
               "photo pixels, with names and confidences, and which model produced them.")


INTRO = (
    "Give the model a photo and see what it finds. The network never sees the whole photo: a square "
    "**crop** around the person is resized to the model's input size, the part detector paints one "
    "heatmap per joint, and each joint is read off its heatmap's peak. Three predictors run on the same "
    "crop, so you can compare the paper's detector alone, the detector with its spatial model, and a "
    "DeepPose-style regressor that outputs coordinates directly.")


def main() -> None:
    common.header("Try it", INTRO, "try-it")
    models = common.require_models()
    ph, box, pred = photo_and_framing(models)
    methods = three_predictions(models, ph, box, pred)
    left_and_right(models, pred)
    confidence_table(models, pred, methods)
    downloads(models, ph, box, pred, methods)


common.friendly(main)
