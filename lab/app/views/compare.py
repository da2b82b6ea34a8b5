"""Heatmaps vs regression: one photo through both, then the test set from the evaluation JSONs
(`pose-lab eval --json`): PCK curves and tables with the mean-pose baseline, how much each
method's poses vary, the images where the two disagree most, and regression to the mean pose.
Every number comes from lab.eval.results; this file only lays them out and draws them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lab.app import chart, common, data, photos, plots
from lab.config import data_root
from lab.eval import mean_pose as mp
from lab.eval import results as evals
from lab.eval.robustness import photo_rows
from lab.joints import NAMES, SHORT
from lab.names import METHOD_LABELS, METHOD_SHORT

TEST_CACHE = common.ROOT / "cache" / "lsp128.safetensors"
# Okabe-Ito colours, distinguishable with colour-blindness (vermillion for the regressor: the
# other pages use orange for the person's right side); flip-test rows dashed.
COLOURS = {"unary": "#56B4E9", "marginal": "#0072B2", "unary_flip": "#56B4E9", "marginal_flip": "#0072B2",
           "unary_multiscale": "#56B4E9", "marginal_multiscale": "#0072B2", "regressor": "#D55E00",
           "mean_pose": "#8c8c8c", "ground truth": "#111111"}
LABELS = {**METHOD_LABELS, "ground truth": "Ground truth", "ground_truth": "Ground truth"}
STUDY = ("unary", "marginal", "regressor")     # the predictors the mean-pose study compares
DISAGREE_OPEN, MEAN_OPEN = "open_disagree", "open_mean_charts"     # sections drawn only while open


def ordered(methods) -> list[str]:
    """Methods in the lab's order (`lab.names.METHOD_LABELS`); names it does not know are left out."""
    return [m for m in METHOD_LABELS if m in methods]


def legend_line(names) -> str:
    return " &nbsp; ".join(f"<span style='color:{COLOURS[n]}'>━━</span> {LABELS[n]}" for n in names)


def pose_figure(poses: dict[str, np.ndarray], rgb: np.ndarray | None = None, gt: np.ndarray | None = None,
                labelled=None, title: str = "", height: int = 300, meta: str | None = None):
    """`plots.pose_figure` in this page's colours and names."""
    return plots.pose_figure(poses, LABELS, COLOURS, rgb, gt, labelled, title, height, meta)


# ------------------------------------------------------------------ sections
def section_photo() -> None:
    st.subheader("One photo, both approaches")
    models = common.load_models()
    if models is None:
        return
    ph = photos.photo_input(compact=True)
    pred = photos.predict(models, ph)
    heat = "marginal" if "marginal" in pred.joints else "unary"
    figs = []
    for method in (heat, "regressor"):
        if method not in pred.joints:
            continue
        title = ("Heatmaps: " if method != "regressor" else "Direct regression: ") + METHOD_LABELS[method]
        fig = plots.photo_figure(pred.crop, title, height=400, meta=f"compare_photo_{method}")
        plots.add_skeleton(fig, pred.crop_joints(method), pred.confidence[method], METHOD_LABELS[method])
        figs.append(fig)
    if "regressor" in pred.joints:                   # one chart, a panel each
        chart.show(chart.panels(figs, cols=2, meta="compare_photos", spacing=0.04), key="compare-photos")
    else:
        left, right = st.columns(2)
        with left:
            chart.show(figs[0], key="compare-photos")
        right.info(f"No regressor to compare with. {common.regressor_note(models)}")
    st.markdown(f"Both models see the same {models.size}×{models.size} crop of **{ph.label}** (framed as on the "
                f"Try it page), with the models chosen in the sidebar. Colours follow the person's own sides: "
                f"{plots.side_legend_md()}. Heatmaps commit to a peak per joint; the regressor outputs all 28 "
                "numbers in one go. Look at the wrists and ankles: that is where the two usually part ways.")


def evaluations() -> list[dict]:
    """The evaluation JSONs of the chosen shipped detector and of the regressor, each checked
    against its weights (`lab.eval.results.check_eval`); what cannot be shown is said why."""
    if common.chosen() not in (common.SHIPPED, common.SCRATCH, common.FULL):
        st.info(f"Retrained runs have no test-set evaluation (the Retrain page compares them on validation "
                f"crops); the numbers below are those of “{common.SHIPPED}”.")
    checks = [data.evaluation(common.shipped_weights()), data.evaluation(common.REGRESSOR_WEIGHTS)]
    for c in checks:
        if c["message"]:
            st.warning(c["message"])
    return [c["result"] for c in checks if c["result"] is not None]


def section_curves(results: list[dict]) -> None:
    split = results[0].get("split", "test")
    st.subheader("PCK curves on the LSP test set" if split == "test" else f"PCK curves on the {split} split")
    methods = evals.methods_of(*results)
    fig = go.Figure()
    for name in ordered(methods):
        c = methods[name]["curve"]
        fig.add_trace(go.Scatter(x=c["alpha"], y=[100 * v for v in c["mean"]], mode="lines+markers",
                                 name=METHOD_LABELS[name], marker=dict(size=5),
                                 line=dict(color=COLOURS[name], width=3, dash="dash" if "flip" in name or
                                           name == "mean_pose" else "dot" if "multiscale" in name else None),
                                 hovertemplate="α = %{x:.2f}: %{y:.1f}%<extra>" + METHOD_LABELS[name] + "</extra>"))
    fig.update_layout(title=dict(text="PCK@α: share of joints within α torso diameters of the truth",
                                 yref="container", y=1.0, yanchor="top", pad=dict(t=6)),   # above the legend
                      xaxis_title="α (fraction of the torso diameter)", yaxis_title="PCK (%)",
                      yaxis=dict(range=[0, 100]), height=420, hovermode="x unified",
                      legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0),
                      margin=dict(t=115, l=10, r=10, b=10), meta="pck_curves")
    chart.show(fig, key="pck-curves")
    st.caption(f"The shipped models on {results[0].get('images', '?')} {split} images, read "
               "from their evaluation files (written by `pose-lab eval --json`). The mean pose (dashed grey) "
               "predicts the training set's average pose for every photo: a method must beat it to have seen "
               "anything. Tight thresholds (small α) reward precise localisation; loose ones only ask for the "
               "right region.")


def section_table(results: list[dict]) -> None:
    st.subheader("PCK@0.2 by body part")
    rows = evals.pck_table(evals.methods_of(*results))
    cols = {m: METHOD_SHORT[m] for m in ordered(rows[0])}
    if "marginal - unary" in rows[0]:
        cols["marginal - unary"] = "Gain"

    def frame(kind_rows, index_name):
        df = pd.DataFrame([{"": r["name"], **{v: 100 * r[k] for k, v in cols.items()}} for r in kind_rows])
        return df.set_index("").rename_axis(index_name)

    fmt = {c: "{:+.1f}" if c == "Gain" else "{:.1f}" for c in cols.values()}   # a static table: light to draw
    groups = frame([r for r in rows if r["kind"] in ("group", "mean")], "part")
    st.table(groups.style.format(fmt, na_rep="–"))
    with st.expander("Per joint (left and right separately)"):
        joints = frame([r for r in rows if r["kind"] == "joint"], "joint")
        joints.index = [f"{s} ({n})" for s, n in zip(SHORT, NAMES)]
        st.table(joints.style.format(fmt, na_rep="–"))
    st.caption("Percent of joints within 0.2 torso diameters of the ground truth. Columns: "
               + "; ".join(f"**{METHOD_SHORT[m]}** = {METHOD_LABELS[m]}" for m in ordered(rows[0]))
               + (". **Gain** = marginal − unary, in points" if "marginal - unary" in rows[0] else "")
               + ". Left and right are averaged in the part rows. The mean-pose column is the floor: what "
               "predicting one pose for every photo scores.")


def section_photos(results: list[dict]) -> None:
    """The measures learners' photos depend on (`lab.eval.robustness.photo_rows`), next to the
    standard protocol's figure."""
    rows = photo_rows(results[0])
    if not rows:
        return
    st.subheader("Your photo is not an LSP test crop")
    df = pd.DataFrame([{"condition": r["condition"], "PCK@0.2": r["mean"], "12 limb joints": r["limbs"],
                        "change": r["change"]} for r in rows]).set_index("condition")
    st.table(df.style.format({"PCK@0.2": "{:.1f}", "12 limb joints": "{:.1f}", "change": "{:+.1f}"}, na_rep="–"))
    found = (results[0].get("upload_path") or {}).get("nobody_found")
    st.caption("The standard protocol crops each test person with the annotation's box, from a sharp photo. "
               "The upload path starts from the whole photo, as the lab does with yours: the person detector "
               "frames the person" + (f" (it found nobody in {found} of the photos, which then use the whole "
                                      "photo)" if found is not None else "") + ". The other rows keep the "
               "annotation's box but make the photo harder. **PCK@0.2**: detector + spatial model (marginal), in %; "
               "**12 limb joints**: all but neck and head top, the joints MediaPipe BlazePose also predicts; "
               "**change**: minus the standard protocol's figure, in points. Figures from "
               "`pose-lab eval --upload-path --robustness`.")


def section_spread(results: list[dict]) -> None:
    st.subheader("Do the predicted poses vary as much as real ones?")
    spreads = mp.pose_spreads(*results)
    if not spreads:
        st.info("These evaluation files predate the pose spread: refresh them with `pose-lab eval` to see it.")
        return
    names = ["ground_truth"] + ordered(spreads)
    fig = go.Figure(go.Bar(x=[spreads[n] for n in names], y=[LABELS[n] for n in names], orientation="h",
                           marker_color=[COLOURS.get(n, COLOURS["ground truth"]) for n in names],
                           hovertemplate="%{y}: %{x:.3f} crop sides<extra></extra>"))
    fig.update_layout(height=60 + 34 * len(names), margin=dict(t=10, l=10, r=10, b=40), meta="pose_spread",
                      xaxis_title="spread of the poses across test crops (crop sides)", yaxis=dict(autorange="reversed"))
    chart.show(fig, key="pose-spread")
    low = mp.collapsed(spreads)
    st.caption("For each joint, the standard deviation of its position across the test crops, averaged over "
               "joints: how much the poses differ from photo to photo. The mean pose never varies (0). "
               + (f"**{' and '.join(LABELS[m] for m in low)}** vary less than {mp.COLLAPSED:.0%} as much as the "
                  "real poses: close to one pose for every photo, a collapse towards the mean."
                  if low else "Every predictor varies at least half as much as the real poses do."))


def section_disagree(results: list[dict]) -> None:
    """Drawn only while open: six test images, a chart of panels."""
    with common.section("Where the two disagree most", DISAGREE_OPEN) as box:
        if box.open:
            disagreement(results)


def disagreement(results: list[dict]) -> None:
    """The test images where the heatmap model's and the regressor's joints are furthest apart."""
    methods = evals.methods_of(*results)
    a = "marginal" if "marginal" in methods else "unary"
    if "regressor" not in methods or a not in methods:
        st.info("This needs both the detector's and the regressor's evaluation files.")
        return
    heat, reg = (next(r for r in results if m in r["methods"]) for m in (a, "regressor"))
    top = evals.rank_disagreement(heat, reg, a, "regressor", top=6)
    st.markdown(f"The test images where the {METHOD_LABELS[a].lower()}'s joints and the regressor's are "
                "furthest apart on average, measured in **body sizes** (the root-mean-square distance of the "
                "true joints from the centre of the true torso: unlike PCK's torso diameter, it doesn't "
                "collapse when someone leans towards the camera). " + legend_line((a, "regressor"))
                + f" &nbsp; <span style='color:{plots.MARK['truth']};text-shadow:0 0 2px #000'>✕</span> ground truth",
                unsafe_allow_html=True)
    figs, notes = [], []
    for n, item in enumerate(top):
        img = evals.find_image(item["id"], data_root(), TEST_CACHE)
        if img is None:
            continue
        gt = evals.to_shown(np.asarray(heat["ground_truth"][item["id"]]), img["affine"])
        poses = {m: evals.to_shown(np.asarray(methods[m]["predictions"][item["id"]]), img["affine"])
                 for m in (a, "regressor")}
        figs.append(pose_figure(poses, img["rgb"], gt, title=f"{item['id']}: {item['disagreement']:.2f} apart",
                                height=330, meta=f"disagree_{n}"))
        e = item["error"]
        notes.append(f"**{item['id']}**: mean error {METHOD_LABELS[a].lower()} {e[a]:.2f}, regressor "
                     f"{e['regressor']:.2f}" + (" (crop from the cache)" if img["source"] == "cache crop" else ""))
    shown = len(figs)
    if figs:                                         # one chart, a panel per image
        chart.show(chart.panels(figs, cols=3, meta="disagree_panels", spacing=0.03), key="disagree-panels")
        st.caption("Distances in body sizes. " + "; ".join(notes) + ".")
    if shown < len(top):
        if shown == 0:
            st.info(f"The test images aren't available here (no LSP folder under {data_root()} and no "
                    f"{common.shown_path(TEST_CACHE)}), so here are the ids and distances only.")
        df = pd.DataFrame([{"image": t["id"], "apart (body sizes)": t["disagreement"],
                            **{f"error: {METHOD_LABELS[m]}": v for m, v in t["error"].items()}} for t in top])
        st.table(df.set_index("image").style.format("{:.2f}"))


@st.cache_resource(show_spinner=False, max_entries=2)
def _study(key: tuple, _results: list[dict]) -> dict | None:
    train = data.training_split()
    if train is None:
        return None
    study = mp.mean_pose_study(_results, mp.mean_pose(train.coords, train.labelled), STUDY)
    study["mean"], study["n_train"] = mp.mean_pose(train.coords, train.labelled), len(train)
    return study


def section_mean_pose(results: list[dict]) -> None:
    st.subheader("What regression to the mean pose looks like")
    study = _study(tuple((r.get("model"), r.get("sha256")) for r in results), results)
    if study is None:
        st.info("The bundled mini set (lab/assets/mini.safetensors), whose mean training pose this needs, is missing.")
        return
    names = ["ground truth"] + [m for m in STUDY if m in study["median"]]
    st.markdown(
        "An L2 loss is minimised by the *average* of the plausible answers, so when an image is "
        "ambiguous a regressor hedges towards the average pose. To see it, every test image gets a "
        "frame from its **ground truth** (origin at the centre of the true shoulders and hips, unit = "
        "the true body's size: the root-mean-square distance of its joints from that centre), and "
        "the truth and each prediction are compared, in that frame, with the **mean pose of the "
        f"bundled training set** ({study['n_train']} crops, each in its own frame). "
        "A method that sits closer to the mean than the real poses do is pulling answers towards the middle.")
    for col, name in zip(st.columns(len(names)), names):
        delta = None if name == "ground truth" else \
            f"{study['median'][name] - study['median']['ground truth']:+.2f} vs truth"
        col.metric(LABELS[name], f"{study['median'][name]:.2f}", delta=delta, delta_color="off",
                   help=f"Median over {len(study['ids'])} test images of the mean distance of the joints "
                        f"to the mean pose, in body sizes (mean over images: {study['average'][name]:.2f}).")
    st.caption("Distance to the mean training pose, in body sizes: the median over the test images of each pose's "
               "mean joint distance. For a prediction, small is not good in itself: it should be about as far "
               "from the mean as the truth is. " + mp.mean_pose_finding(study))
    with common.section("Charts: by body part, per test image, and the most unusual poses", MEAN_OPEN) as box:
        if box.open:                                  # three charts, drawn only when opened
            mean_pose_charts(study, names)
            unusual_poses(study, names)


def mean_pose_charts(study: dict, names: list[str]) -> None:
    """By body part, and per test image against the truth's own distance."""
    left, right = st.columns(2)
    with left:
        fig = go.Figure([go.Bar(x=list(g), y=list(g.values()), name=LABELS[n], marker_color=COLOURS[n])
                         for n in names for g in [mp.by_group(study["per_joint"][n])]])
        fig.update_layout(title="Distance to the mean pose, by body part (median)", barmode="group",
                          yaxis_title="body sizes", height=380, margin=dict(t=50, l=10, r=10, b=10),
                          meta="mean_pose_by_part", legend=dict(orientation="h", y=-0.15))
        chart.show(fig, key="mean-by-part")
    with right:
        x = study["per_image"]["ground truth"]
        hi = float(np.nanpercentile(x, 99)) * 1.1 if np.isfinite(x).any() else 1.0
        fig = go.Figure(go.Scatter(x=[0, hi], y=[0, hi], mode="lines", name="as far as the truth",
                                   line=dict(color="#bbbbbb", dash="dash"), hoverinfo="skip"))
        for name in [n for n in names[1:] if n != "unary"]:       # the detector alone would hide the rest
            fig.add_trace(go.Scatter(x=x, y=study["per_image"][name], mode="markers", name=LABELS[name],
                                       marker=dict(color=COLOURS[name], size=4, opacity=0.55), text=study["ids"],
                                       hovertemplate="%{text}<extra>" + LABELS[name] + "</extra>"))
        fig.update_layout(title="Per test image: truth's distance vs the prediction's",
                          xaxis=dict(title="ground truth's distance to the mean pose", range=[0, hi]),
                          yaxis=dict(title="prediction's distance", range=[0, hi * 1.3]), height=380,
                          margin=dict(t=50, l=10, r=10, b=10), legend=dict(orientation="h", y=-0.2),
                          meta="mean_pose_scatter")
        chart.show(fig, key="mean-scatter")
    st.caption("Points below the dashed line: the prediction is closer to the average pose than the "
               "person really was.")


def unusual_poses(study: dict, names: list[str]) -> None:
    """The test poses furthest from the mean, each method drawn in the truth's body frame."""
    shown = [n for n in names if n != "unary"]
    st.markdown("**The most unusual test poses** (ground truth furthest from the mean; chosen from the "
                "ground truth alone), drawn in each image's ground-truth frame over the mean pose (pale band). "
                + legend_line(shown), unsafe_allow_html=True)
    picks = mp.furthest_from_mean(study, top=4)
    figs = [pose_figure({"mean training pose": study["mean"], **{n: study["poses"][n][i] for n in shown}},
                        labelled=study["labelled"][i], title=study["ids"][i], height=360,
                        meta=f"mean_pose_example_{i}") for i in picks]
    if figs:                                         # one chart, a panel per pose
        chart.show(chart.panels(figs, meta="mean_pose_examples", spacing=0.03), key="mean-pose-examples")


INTRO = (
    "Tompson et al. predict a **heatmap** per joint and read off its peak; DeepPose (Toshev & "
    "Szegedy, 2014) **regresses** the 28 coordinates directly. Here the two meet on the same photo "
    "and on the whole LSP test set: how precise each is (PCK curves), where each part fails, how much "
    "their poses vary, the images where they disagree most, and the regressor's pull towards the average pose.")


def main() -> None:
    common.header("Heatmaps vs regression", INTRO, "compare")
    common.friendly(section_photo)
    st.divider()
    results = evaluations()
    if not results:
        st.info("The curves, tables and studies need the evaluation files in "
                f"`{common.shown_path(common.shipped_weights().parent)}/`. The photo above still works.")
        return
    for section in (section_curves, section_table, section_photos, section_spread, section_disagree,
                    section_mean_pose):
        common.friendly(lambda: section(results))
        st.divider()


common.friendly(main)
