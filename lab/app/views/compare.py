"""Heatmaps vs regression: one photo through both, PCK curves and tables from the shipped
evaluation JSONs, the test images where the two disagree most, and regression to the mean
pose. Numbers come from lab.eval.compare; this file only lays them out and draws them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lab.app import common, photos, plots
from lab.config import data_root
from lab.data.cache import MINI_PATH, PoseCache
from lab.errors import LabError
from lab.eval import compare as cmp
from lab.infer import METHOD_LABELS, PRETRAINED
from lab.joints import DRAW_EXTRA, LIMBS, NAMES, SHORT

POSE_EVAL = PRETRAINED / "pose.eval.json"
REG_EVAL = PRETRAINED / "regressor.eval.json"
TEST_CACHE = common.ROOT / "cache" / "lsp128.safetensors"
# Okabe-Ito colours: distinguishable with colour-blindness
# (vermillion for the regressor: the other pages use orange for the person's right side)
COLOURS = {"unary": "#56B4E9", "spatial": "#0072B2", "regressor": "#D55E00",
           "ground truth": "#111111", "mean pose": "#8c8c8c"}
LABELS = {**METHOD_LABELS, "ground truth": "Ground truth", "mean pose": "Mean training pose"}
ORDER = ("unary", "spatial", "regressor")


def shown_path(p: Path) -> str:
    """A path as the reader knows it: relative to the repository when inside it."""
    try:
        return str(Path(p).resolve().relative_to(common.ROOT))
    except ValueError:
        return str(p)


# ------------------------------------------------------------------ loading (cached)
@st.cache_resource(show_spinner=False, max_entries=4)
def _eval(path: str, stamp: float) -> dict:
    return cmp.load_eval(path)


def load_eval(path: Path) -> dict:
    """The JSON, parsed once per file version (LabError if missing or unreadable)."""
    stamp = path.stat().st_mtime if path.is_file() else 0.0
    return _eval(str(path), stamp)


@st.cache_data(show_spinner=False, max_entries=8)
def matches_weights(weights: str, w_stamp: float, result: str, r_stamp: float) -> bool | None:
    """cmp.matches_weights, once per file version of both."""
    return cmp.matches_weights(load_eval(Path(result)), weights)


@st.cache_resource(show_spinner=False)
def _train_mean_pose(stamp: float) -> tuple[np.ndarray, int]:
    train = PoseCache(MINI_PATH)["train"]
    return cmp.mean_pose(train.coords, train.labelled), len(train)


@st.cache_resource(show_spinner=False, max_entries=2)
def _study(pose_path: str, reg_path: str, stamps: tuple, _pose_res: dict, _reg_res: dict) -> dict:
    mean, n_train = _train_mean_pose(MINI_PATH.stat().st_mtime)
    study = cmp.mean_pose_study([_pose_res, _reg_res], mean, ORDER)
    study["mean"], study["n_train"] = mean, n_train
    return study


# ------------------------------------------------------------------ drawing
def skeleton_traces(xy: np.ndarray, colour: str, name: str, dash: str | None = None,
                    width: float = 3, show_legend: bool = True, labelled=None) -> list:
    """Limbs as one line trace (None-separated) and joints as markers."""
    xy = np.asarray(xy, float)
    ok = np.ones(len(xy), bool) if labelled is None else np.asarray(labelled, bool)
    xs, ys = [], []
    for a, b in (*LIMBS, *DRAW_EXTRA):
        if ok[a] and ok[b]:
            xs += [xy[a, 0], xy[b, 0], None]
            ys += [xy[a, 1], xy[b, 1], None]
    line = go.Scatter(x=xs, y=ys, mode="lines", name=name, legendgroup=name, showlegend=show_legend,
                      line=dict(color=colour, width=width, dash=dash), hoverinfo="skip")
    idx = np.flatnonzero(ok)
    dots = go.Scatter(x=xy[idx, 0], y=xy[idx, 1], mode="markers", name=name, legendgroup=name,
                      showlegend=False, marker=dict(color=colour, size=width + 4,
                                                    line=dict(color="white", width=1)),
                      text=[NAMES[k] for k in idx], hovertemplate="%{text}<extra>" + name + "</extra>")
    return [line, dots]


def image_figure(rgb: np.ndarray, poses: dict[str, np.ndarray], height: int = 360,
                 title: str | None = None, legend: bool = False, gt: np.ndarray | None = None,
                 meta: str | None = None) -> go.Figure:
    h, w = rgb.shape[:2]
    fig = go.Figure(go.Image(z=rgb, hoverinfo="skip"))
    if gt is not None:
        fig.add_trace(go.Scatter(x=gt[:, 0], y=gt[:, 1], mode="markers", name="Ground truth",
                                 marker=dict(color=plots.MARK["truth"], size=7, symbol="x-thin",
                                             line=dict(color=plots.MARK["truth"], width=2)),
                                 text=list(NAMES), hovertemplate="%{text}<extra>ground truth</extra>",
                                 showlegend=legend))
    for method, xy in poses.items():
        for t in skeleton_traces(xy, COLOURS[method], LABELS[method], show_legend=legend):
            fig.add_trace(t)
    fig.update_xaxes(visible=False, range=[-0.5, w - 0.5])
    fig.update_yaxes(visible=False, range=[h - 0.5, -0.5], scaleanchor="x")
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=30 if title else 0, b=0),
                      title=dict(text=title, font=dict(size=13)) if title else None,
                      legend=dict(orientation="h", y=-0.02, yanchor="top"), meta=meta)
    return fig


def frame_figure(poses: dict[str, np.ndarray], labelled, title: str, height: int = 360,
                 meta: str | None = None) -> go.Figure:
    """Poses in a ground-truth body frame (unit: the body's size), y down like an image."""
    fig = go.Figure()
    for name, xy in poses.items():
        if name == "mean pose":             # a wide pale band underneath the rest
            fig.add_trace(skeleton_traces(xy, "#d9d9d9", LABELS[name], width=9, show_legend=False)[0])
            continue
        for t in skeleton_traces(xy, COLOURS[name], LABELS[name], width=2.5, show_legend=False,
                                 labelled=labelled):
            fig.add_trace(t)
    fig.update_xaxes(visible=False, range=[-1.7, 1.7])
    fig.update_yaxes(visible=False, range=[2.1, -2.1], scaleanchor="x")
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=28, b=0), plot_bgcolor="#f6f6f6",
                      title=dict(text=title, font=dict(size=12)), meta=meta)
    return fig


def legend_line(names) -> str:
    return " &nbsp; ".join(f"<span style='color:{COLOURS[n]}'>━━</span> {LABELS[n]}" for n in names)


# ------------------------------------------------------------------ sections
def section_photo() -> None:
    st.subheader("One photo, both approaches")
    lab = common.load_models()
    if lab is None:
        return
    ph = photos.photo_input(compact=True)
    pred = photos.predict(lab, ph)
    heat = "spatial" if "spatial" in pred.joints else "unary"
    cols = st.columns(2)
    for col, method in zip(cols, (heat, "regressor")):
        with col:
            if method not in pred.joints:
                st.info("No regressor is loaded for this model choice.")
                continue
            title = ("Heatmaps: " if method != "regressor" else "Direct regression: ") + METHOD_LABELS[method]
            fig = plots.photo_figure(pred.crop, title, height=400, meta=f"compare_photo_{method}")
            plots.add_skeleton(fig, pred.crop_joints(method), pred.confidence[method], METHOD_LABELS[method])
            st.plotly_chart(fig, width="stretch", key=f"photo-{method}")
    st.markdown(f"Both models see the same {lab.size}×{lab.size} crop of **{ph.label}** (framed as on the "
                f"Try it page), with the models chosen in the sidebar. Colours follow the person's own sides: "
                f"{plots.side_legend_md()}. Heatmaps commit to a peak per joint; the regressor outputs all 28 "
                "numbers in one go. Look at the wrists and ankles: that is where the two usually part ways.")


def section_curves(pose_res: dict, reg_res: dict) -> None:
    st.subheader("PCK curves on the LSP test set")
    methods = cmp.methods_of(pose_res, reg_res)
    fig = go.Figure()
    for name in ORDER:
        if name not in methods:
            continue
        c = methods[name]["curve"]
        fig.add_trace(go.Scatter(x=c["alpha"], y=[100 * v for v in c["mean"]], mode="lines+markers",
                                 name=METHOD_LABELS[name], line=dict(color=COLOURS[name], width=3),
                                 marker=dict(size=5),
                                 hovertemplate="α = %{x:.2f}: %{y:.1f}%<extra>" + METHOD_LABELS[name] + "</extra>"))
    fig.update_layout(title=dict(text="PCK@α: share of joints within α torso diameters of the truth"),
                      xaxis_title="α (fraction of the torso diameter)", yaxis_title="PCK (%)",
                      yaxis=dict(range=[0, 100]), height=420, hovermode="x unified",
                      legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0),
                      margin=dict(t=90, l=10, r=10, b=10), meta="pck_curves")
    st.plotly_chart(fig, width="stretch", key="pck-curves")
    st.caption(f"The shipped models on {pose_res.get('images', '?')} test images (LSP im1001–im2000), "
               f"read from `{POSE_EVAL.name}` and `{REG_EVAL.name}` (written by `pose-lab eval --json`), "
               "whatever model the sidebar shows. Tight thresholds (small α) reward precise "
               "localisation; loose ones only ask for the right region.")


def section_table(pose_res: dict, reg_res: dict) -> None:
    st.subheader("PCK@0.2 by body part")
    rows = cmp.pck_table(cmp.methods_of(pose_res, reg_res))
    cols = {m: METHOD_LABELS[m] for m in ORDER if m in rows[0]}
    if "spatial - unary" in rows[0]:
        cols["spatial - unary"] = "Spatial model gain (spatial − detector)"

    def frame(kind_rows, index_name):
        df = pd.DataFrame([{**{"": r["name"]}, **{v: 100 * r[k] for k, v in cols.items()}} for r in kind_rows])
        return df.set_index("").rename_axis(index_name)

    groups = frame([r for r in rows if r["kind"] in ("group", "mean")], "part")
    fmt = {c: "{:+.1f}" if c.startswith("Spatial model gain") else "{:.1f}" for c in groups.columns}
    st.dataframe(groups.style.format(fmt), width="stretch")
    with st.expander("Per joint (left and right separately)"):
        joints = frame([r for r in rows if r["kind"] == "joint"], "joint")
        joints.index = [f"{s} ({n})" for s, n in zip(SHORT, NAMES)]
        st.dataframe(joints.style.format(fmt), width="stretch")
    st.caption("Percent of joints within 0.2 torso diameters of the ground truth. Left and right "
               "are averaged in the part rows.")


def section_disagree(pose_res: dict, reg_res: dict) -> None:
    st.subheader("Where the two disagree most")
    top = cmp.rank_disagreement(pose_res, reg_res, "spatial" if "spatial" in pose_res["methods"] else "unary",
                                "regressor", top=6)
    if not top:
        st.info("The two evaluation files share no test images.")
        return
    a = "spatial" if "spatial" in pose_res["methods"] else "unary"
    gold = plots.MARK["truth"]
    st.markdown(f"The test images where the {METHOD_LABELS[a].lower()}'s joints and the regressor's are "
                "furthest apart on average, measured in **body sizes** (the root-mean-square distance of the "
                "true joints from the centre of the true torso: unlike PCK's torso diameter, it doesn't "
                "collapse when someone leans towards the camera). "
                + legend_line((a, "regressor"))
                + f" &nbsp; <span style='color:{gold};text-shadow:0 0 2px #000'>✕</span> ground truth",
                unsafe_allow_html=True)
    root, shown = data_root(), 0
    cols = st.columns(3)
    for n, item in enumerate(top):
        img = cmp.find_image(item["id"], root, TEST_CACHE)
        if img is None:
            continue
        shown += 1
        gt = cmp.to_shown(np.asarray(pose_res["ground_truth"][item["id"]]), img["affine"])
        poses = {m: cmp.to_shown(np.asarray(cmp.methods_of(pose_res, reg_res)[m]["predictions"][item["id"]]),
                                 img["affine"]) for m in (a, "regressor")}
        with cols[(shown - 1) % 3]:
            st.plotly_chart(image_figure(img["rgb"], poses, height=300, gt=gt, meta=f"disagree_{n}"),
                            width="stretch", key=f"disagree-{n}")
            e = item["error"]
            st.caption(f"**{item['id']}**: {item['disagreement']:.2f} apart; mean error "
                       f"{METHOD_LABELS[a].lower()} {e[a]:.2f}, regressor {e['regressor']:.2f}"
                       + (" (crop from the cache)" if img["source"] == "cache crop" else ""))
    if shown == 0:
        st.info(f"The test images aren't available here (no LSP folder under {root} and no "
                f"{shown_path(TEST_CACHE)}), so here are the ids and distances only.")
    if shown < len(top):
        df = pd.DataFrame([{"image": t["id"], "apart (body sizes)": t["disagreement"],
                            **{f"error: {METHOD_LABELS[m]}": v for m, v in t["error"].items()}} for t in top])
        st.dataframe(df.set_index("image").style.format("{:.2f}"), width="stretch")


def section_mean_pose(pose_res: dict, reg_res: dict) -> None:
    st.subheader("What regression to the mean pose looks like")
    stamps = tuple(p.stat().st_mtime for p in (POSE_EVAL, REG_EVAL, MINI_PATH))
    study = _study(str(POSE_EVAL), str(REG_EVAL), stamps, pose_res, reg_res)
    names = ["ground truth"] + [m for m in ORDER if m in study["median"]]
    st.markdown(
        "An L2 loss is minimised by the *average* of the plausible answers, so when an image is "
        "ambiguous a regressor hedges towards the average pose. To see it, every test image gets a "
        "frame from its **ground truth** (origin at the centre of the true shoulders and hips, unit = "
        "the true body's size: the root-mean-square distance of its joints from that centre), and "
        "the truth and each prediction are compared, in that frame, with the **mean pose of the "
        f"bundled training set** ({study['n_train']} crops, each in its own frame). "
        "A method that sits closer to the mean than the real poses do is pulling answers towards the middle.")
    cols = st.columns(len(names))
    for col, name in zip(cols, names):
        delta = None
        if name != "ground truth":
            delta = f"{study['median'][name] - study['median']['ground truth']:+.2f} vs truth"
        col.metric(LABELS[name], f"{study['median'][name]:.2f}", delta=delta, delta_color="off",
                   help=f"Median over {len(study['ids'])} test images of the mean distance of the joints "
                        f"to the mean pose, in body sizes (mean over images: {study['average'][name]:.2f}).")
    truth = study["median"]["ground truth"]
    closer = [LABELS[n] for n in names[1:] if study["median"][n] < truth]
    finding = (f" Here {' and '.join(closer)} sit{'s' if len(closer) == 1 else ''} closer to the mean than the truth."
               if closer else " Here no method sits closer to the mean than the truth.")
    if "spatial" in study["median"] and study["median"]["spatial"] < study["median"].get("unary", truth):
        gentler = study["median"]["spatial"] > study["median"].get("regressor", -1)
        finding += (" The spatial model's priors pull towards typical poses too"
                    + (", more gently than the regressor" if gentler else "")
                    + ": they weigh most where the detector's maps are unsure.")
    st.caption("Distance to the mean training pose, in body sizes: the median over the test images of "
               "each pose's mean joint distance. For a prediction, small is not good in itself: it should "
               "be about as far from the mean as the truth is." + finding)

    left, right = st.columns(2)
    with left:
        fig = go.Figure()
        for name in names:
            g = cmp.by_group(study["per_joint"][name])
            fig.add_trace(go.Bar(x=list(g), y=list(g.values()), name=LABELS[name],
                                 marker_color=COLOURS[name]))
        fig.update_layout(title="Distance to the mean pose, by body part (median)", barmode="group",
                          yaxis_title="body sizes", height=380, margin=dict(t=50, l=10, r=10, b=10),
                          meta="mean_pose_by_part",
                          legend=dict(orientation="h", y=-0.15))
        st.plotly_chart(fig, width="stretch", key="mean-by-part")
    with right:
        fig = go.Figure()
        x = study["per_image"]["ground truth"]
        hi = float(np.nanpercentile(x, 99)) * 1.1 if np.isfinite(x).any() else 1.0
        fig.add_trace(go.Scatter(x=[0, hi], y=[0, hi], mode="lines", name="as far as the truth",
                                 line=dict(color="#bbbbbb", dash="dash"), hoverinfo="skip"))
        for name in [n for n in names[1:] if n != "unary"]:       # the detector alone would hide the rest
            fig.add_trace(go.Scattergl(x=x, y=study["per_image"][name], mode="markers", name=LABELS[name],
                                       marker=dict(color=COLOURS[name], size=4, opacity=0.55),
                                       text=study["ids"], hovertemplate="%{text}<extra>" + LABELS[name] + "</extra>"))
        fig.update_layout(title="Per test image: truth's distance vs the prediction's",
                          xaxis=dict(title="ground truth's distance to the mean pose", range=[0, hi]),
                          yaxis=dict(title="prediction's distance", range=[0, hi * 1.3]),
                          height=380, margin=dict(t=50, l=10, r=10, b=10), legend=dict(orientation="h", y=-0.2),
                          meta="mean_pose_scatter")
        st.plotly_chart(fig, width="stretch", key="mean-scatter")
    st.caption("Points below the dashed line: the prediction is closer to the average pose than the "
               "person really was.")

    st.markdown("**The most unusual test poses** (ground truth furthest from the mean; chosen from the "
                "ground truth alone), drawn in each image's ground-truth frame over the mean pose (pale band). "
                + legend_line(("ground truth", *[n for n in names[1:] if n != "unary"])),
                unsafe_allow_html=True)
    picks = cmp.furthest_from_mean(study, top=4)
    cols = st.columns(max(len(picks), 1))
    for col, i in zip(cols, picks):
        poses = {"mean pose": study["mean"], **{n: study["poses"][n][i] for n in names if n != "unary"}}
        with col:
            st.plotly_chart(frame_figure(poses, study["labelled"][i], study["ids"][i], meta=f"mean_pose_example_{i}"),
                            width="stretch", key=f"frame-{i}")


# ------------------------------------------------------------------ page
st.title("Heatmaps vs regression")
st.markdown(
    "Tompson et al. predict a **heatmap** per joint and read off its peak; DeepPose (Toshev & "
    "Szegedy, 2014) **regresses** the 28 coordinates directly. Here the two meet on the same photo "
    "and on the whole LSP test set: how precise each is (PCK curves), where each part fails, the "
    "images where they disagree most, and the regressor's pull towards the average pose.")
common.lesson_link("compare")

common.friendly(section_photo)
st.divider()

results = {}
for key, path in (("pose", POSE_EVAL), ("regressor", REG_EVAL)):
    try:
        results[key] = load_eval(path)
    except LabError as e:
        st.warning(f"Test-set results unavailable: {e}")
        continue
    weights = PRETRAINED / path.name.replace(".eval.json", ".safetensors")
    if matches_weights(str(weights), weights.stat().st_mtime if weights.is_file() else 0.0,
                       str(path), path.stat().st_mtime) is False:
        st.warning(f"`{path.name}` was computed for a different `{weights.name}` than the one in "
                   f"`{shown_path(PRETRAINED)}/` now, so its numbers may not describe the shipped model. "
                   f"Refresh it with `pose-lab eval --model {shown_path(weights)} --split test --json {shown_path(path)}`.")
if len(results) == 2:
    common.friendly(lambda: section_curves(results["pose"], results["regressor"]))
    common.friendly(lambda: section_table(results["pose"], results["regressor"]))
    st.divider()
    common.friendly(lambda: section_disagree(results["pose"], results["regressor"]))
    st.divider()
    common.friendly(lambda: section_mean_pose(results["pose"], results["regressor"]))
else:
    st.info("The curves, tables, gallery and mean-pose study need both evaluation files in "
            f"`{shown_path(PRETRAINED)}/`. The photo above still works.")
