"""The interactions of issue 9 as page sections: switch off a bank, hide part of the crop
(Part detector page), plant a joint and switch off a message (Message passing page). Each
is the body of a section the page draws only while it is open (`lab.app.common.section`),
whose label is the heading.

Every number comes from `lab.touch`; here are only the widgets, the caches and the figures.
Each stage is cached by its inputs (model, photo, box and the one thing the learner
changed), so an interaction recomputes only the stages it changes; model calls go
through the server's model pool (`lab.app.workers`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
import torch

from lab import touch
from lab.app import chart, common, data, grid, links, photos, plots, workers
from lab.eval.pck import points
from lab.joints import NAMES, R_WRIST, SHORT
from lab.models import graph

OCC_ON, OCC_PICK, OCC_JOINT, OCC_DONE = "occ_on", "occ_pick", "occ_joint", "occ_pick_done"
OCC = ("occ_x0", "occ_y0", "occ_x1", "occ_y1")
PLANT_V, PLANT_ON, PLANT_PICK, PLANT_DONE = "plant_v", "plant_on", "plant_pick", "plant_pick_done"
# Whether each section is open (`lab.app.common.section`): it is drawn only then.
BANKS_OPEN, OCC_OPEN, PLANT_OPEN, DROP_OPEN = "open_banks", "open_occlusion", "open_plant", "open_drop"


def bank_key(i: int) -> str:
    return f"bank_on_{i}"


def plant_keys(v: int) -> tuple[str, str]:
    return f"plant_x_{v}", f"plant_y_{v}"


def drop_key(a: int) -> str:
    return f"drop_{a}"


# ------------------------------------------------------------------ cached stages
def _key(models, crop: np.ndarray) -> tuple[str, str]:
    """What a crop's maps depend on: the models and the crop's pixels."""
    return photos.model_key(models), photos.digest_of(crop)


@st.cache_data(max_entries=64, show_spinner=False)
def _maps(key: tuple, off: tuple, occ: tuple | None, _models, _crop) -> dict:
    crop = _crop if occ is None else touch.occlude(_crop, occ)
    return workers.run(touch.maps, _models, crop, off)


def maps(models, crop, off: tuple = (), occ: tuple | None = None) -> dict:
    """`lab.touch.maps` of the crop (occluded by `occ`, banks in `off` off), cached by its inputs."""
    return _maps(_key(models, crop), tuple(off), occ, models, crop)


@st.cache_data(max_entries=128, show_spinner=False)
def _plant(key: tuple, a: int, v: int, xy: tuple, _models, _unary) -> dict:
    return touch.plant(_models, _unary, a, v, xy)


@st.cache_data(max_entries=128, show_spinner=False)
def _without(key: tuple, drop: tuple, _models, _unary) -> torch.Tensor:
    return touch.without_edges(_models, _unary, drop)


def weights_path() -> Path:
    return Path(common.model_choices().get(common.chosen(), common.model_choices()[common.SHIPPED])[0])


def ablation_table(rows: list[dict] | None, what: str, flag: str) -> None:
    """An eval JSON's ablation rows (`lab.touch.bank_rows` / `edge_rows`), or why there are none."""
    check = data.evaluation(weights_path())
    if check["result"] is None:
        st.info(f"No evaluation numbers for this model: {check['message']}")
        return
    if rows is None:
        st.info(f"This model's evaluation JSON (`{common.shown_path(check['path'])}`) has no {what} table: "
                f"make it with `pose-lab eval --model {common.shown_path(weights_path())} --split test {flag} "
                f"--json {common.shown_path(check['path'])}`.")
        return
    with_unary = any(r["unary"] is not None for r in rows[1:])      # the limb table measures the marginal only
    df = pd.DataFrame([{"left out": r["label"],
                        **({"unary PCK@0.2 (%)": points(r["unary"])} if with_unary else {}),
                        "marginal PCK@0.2 (%)": points(r["marginal"]),
                        "marginal: lost (points)": None if r["marginal_drop"] is None else round(100 * r["marginal_drop"], 1)}
                       for r in rows])
    st.table(df.style.format({c: "{:.1f}" for c in df.columns[1:]}, na_rep="–"), hide_index=True)
    st.caption(f"From `{common.shown_path(check['path'])}` ({check['result'].get('split')} split, "
               f"{check['result'].get('images')} images): PCK@0.2 in % with everything on, then with each {what} left "
               "out; 'lost' is how many percentage points the full model's marginal PCK drops without it "
               "(negative: it scores a little higher without it).")


def graph_table() -> None:
    """Tree against full graph on the LSP test set, from the two shipped models' eval JSONs
    (`lab.touch.graph_rows`), or why it cannot be shown."""
    st.subheader("Tree or fully connected graph? (LSP test)")
    checks = {g: data.evaluation(w) for g, w in (("tree", common.POSE_WEIGHTS), ("full", common.FULL_WEIGHTS))}
    rows = touch.graph_rows({g: c["result"] for g, c in checks.items()})
    if rows is None:
        st.info("The comparison needs both shipped models with their evaluation JSONs: "
                + "; ".join(f"{g}: {c['message']}" for g, c in checks.items() if c["message"]))
        return
    df = pd.DataFrame([{"graph": r["graph"], "directed edges": r["edges"], "unary PCK@0.2 (%)": points(r["unary"]),
                        "marginal PCK@0.2 (%)": points(r["marginal"]), "gain (points)": round(100 * r["gain"], 1),
                        "worst group (points)": f"{r['worst_group'][0]} ({100 * r['worst_group'][1]:+.1f})"}
                       for r in rows])
    st.table(df.style.format({"unary PCK@0.2 (%)": "{:.1f}", "marginal PCK@0.2 (%)": "{:.1f}",
                              "gain (points)": "{:+.1f}"}), hide_index=True)
    st.caption(f"Both models share one detector, so only the spatial model differs: `{common.shown_path(common.POSE_WEIGHTS)}` "
               f"(tree, trained jointly) and `{common.shown_path(common.FULL_WEIGHTS)}` (every ordered pair of joints, "
               "its spatial model trained on the frozen detector). Pick the full graph in the sidebar to step "
               "through its 14 messages per joint. Figures from their eval JSONs.")


# ------------------------------------------------------------------ Part detector: banks
def banks_off(n: int, incoming: dict) -> tuple[int, ...]:
    """Checkboxes, one per bank (a link's `off` first); returns the banks switched off (0-based)."""
    wanted = links.ints(incoming.get("off"))
    cols = st.columns(n)
    for i in range(n):
        if wanted is not None:
            st.session_state[bank_key(i)] = (i + 1) not in wanted
        st.session_state.setdefault(bank_key(i), True)
        cols[i].checkbox(f"Bank {i + 1} on", key=bank_key(i))
    return tuple(i for i in range(n) if not st.session_state[bank_key(i)])


def bank_switch(models, pred, incoming: dict) -> tuple[int, ...]:
    """Switch banks off: the 14 unary maps and their confidences recomputed, and the eval
    JSON's answer to "what does each resolution contribute?". Returns the banks off."""
    st.markdown("Zero the features of a resolution bank and watch the unary maps and their confidences change.")
    n = models.pose.detector.cfg.banks
    off = banks_off(n, incoming)
    base, now = maps(models, pred.crop), maps(models, pred.crop, off=off)
    if len(off) == n:
        st.warning("Every bank is off: the layers after the banks see only zeros.")
    label = "all banks on" if not off else "bank" + ("s " if len(off) > 1 else " ") + \
        ", ".join(str(i + 1) for i in off) + " off"
    ref = models.belief(base["unary"])          # (K, H, W): the colour scale of all banks on, so dead maps look dead
    now_b = models.belief(now["unary"])
    fig = grid.heatmap_grid(now_b.numpy(), list(NAMES), cols=7, hover="unary", meta="unary_banks_off",
                             cell_px=150, colorbar_title="unary", zmin=float(min(ref.min(), now_b.min())),
                             zmax=float(ref.max()), mosaic=True)
    chart.show(fig, key="unary_banks_off")
    rows = touch.displacement(models, base, now)
    st.table(pd.DataFrame({
        "joint": list(NAMES), "confidence, all banks": [r["unary_conf_before"] for r in rows],
        f"confidence, {label}": [r["unary_conf_after"] for r in rows],
        "unary peak moved (crop px)": [r["unary_moved"] for r in rows]})
        .style.format({"confidence, all banks": "{:.3f}", f"confidence, {label}": "{:.3f}",
                       "unary peak moved (crop px)": "{:.1f}"}), hide_index=True)
    st.caption(f"The unary with {label}, drawn as the spatial model reads it, on the colour scale of all banks "
               "on (so a map a bank's loss has emptied looks empty). Confidence: "
               f"{touch_confidence(models)}.")
    st.subheader("What does each resolution contribute? (LSP test)")
    ablation_table(touch.bank_rows(data.evaluation(weights_path())["result"]), "bank", "--ablate-banks")
    return off


def touch_confidence(models) -> str:
    from lab.analysis import describe_detector
    return describe_detector(models.pose.detector.cfg)["confidence"]


# ------------------------------------------------------------------ Part detector: occlusion
def occlusion_state(size: int, incoming: dict) -> None:
    """The occlusion box's number inputs, set from a link or a box drawn on the crop."""
    box = links.ints(incoming.get("occ"), 4)
    sel = (st.session_state.get(OCC_PICK) or {}).get("selection", {})
    drawn = (sel.get("box") or [None])[-1]
    if drawn and st.session_state.get(OCC_DONE) != str(drawn):
        st.session_state[OCC_DONE] = str(drawn)
        box = touch.box_from_selection(drawn.get("x"), drawn.get("y"), size)
    if box is not None:
        st.session_state.update(dict(zip(OCC, box)))
        st.session_state[OCC_ON] = True
    for k, d in zip(OCC, (size // 4, size // 4, size // 2, size // 2)):
        st.session_state.setdefault(k, d)
    st.session_state.setdefault(OCC_ON, False)


def occlusion_controls(models, crop, incoming: dict) -> tuple[tuple | None, int]:
    """The toggle, the box's number inputs and the joint to show; returns (box or None, joint)."""
    S = models.size
    occlusion_state(S, incoming)
    k = links.joint_of(incoming.get("joint"))
    if k is not None:
        st.session_state[OCC_JOINT] = k
    st.session_state.setdefault(OCC_JOINT, R_WRIST)
    st.toggle("Grey out the box", key=OCC_ON)
    c1, c2 = st.columns(2)
    for i, (k_, label) in enumerate(zip(OCC, ("left x", "top y", "right x (excl.)", "bottom y (excl.)"))):
        (c1 if i % 2 == 0 else c2).number_input(label, 0, S, step=4, key=k_)
    a = st.selectbox("Joint to show", range(len(NAMES)), format_func=lambda j: NAMES[j], key=OCC_JOINT)
    box = tuple(int(st.session_state[k_]) for k_ in OCC)
    ok = st.session_state[OCC_ON] and box[2] > box[0] and box[3] > box[1]
    return (box if ok else None), a


def occlusion_picker(models, crop, box) -> None:
    """The crop, with the box greyed; drag a rectangle on it to move the box."""
    fig = plots.overlay_figure(crop if box is None else touch.occlude(crop, box), None, models.codec,
                               title="Drag a rectangle to hide it", height=360, meta="occlusion_crop")
    plots.add_click_grid(fig, models.codec, label="drag to hide", every=2)    # the box counts, not the points
    fig.update_layout(dragmode="select")
    chart.show(fig, key=OCC_PICK, on_select="rerun", selection_mode="box")


def before_after(models, crop, occluded, base, now, a: int) -> None:
    """A's unary and marginal without and with the occluder, side by side, peaks marked."""
    pb, pa = touch.peaks(models, base), touch.peaks(models, now)
    panels = [("occ_unary_before", "Unary, whole crop", crop, models.belief(base["unary"])[a], pb, "unary"),
              ("occ_unary_after", "Unary, occluded", occluded, models.belief(now["unary"])[a], pa, "unary")]
    if "log_marginal" in base:
        panels += [("occ_marginal_before", "Marginal, whole crop", crop, touch.marginal_map(base["log_marginal"][a]),
                    pb, "marginal"),
                   ("occ_marginal_after", "Marginal, occluded", occluded, touch.marginal_map(now["log_marginal"][a]),
                    pa, "marginal")]
    figs = []
    for meta, title, img, m, p, method in panels:
        x, y = p[method][a]
        mark = [{"x": x, "y": y, "name": f"{method} peak", "symbol": "x" if method == "unary" else "circle-open",
                 "colour": plots.MARK[method], "size": 12}]
        figs.append(plots.overlay_figure(img, m.numpy(), models.codec, 0.7, title=f"{title}: {NAMES[a]}",
                                         hover=method, markers=mark, height=300, meta=meta, fmt=".4g"))
    chart.show(chart.panels(figs, cols=4, meta="occ_panels"), key="occ_panels")    # one chart, not four


def moved_table(rows: list[dict]) -> None:
    cols = {"joint": [r["name"] for r in rows], "moved": [r["moved"] for r in rows],
            "unary moved (crop px)": [r["unary_moved"] for r in rows]}
    if "marginal_moved" in rows[0]:
        cols["marginal moved (crop px)"] = [r["marginal_moved"] for r in rows]
    st.table(pd.DataFrame(cols).style.format({c: "{:.1f}" for c in cols if c.endswith("(crop px)")}),
             hide_index=True)


def occlusion(models, pred, off: tuple, incoming: dict) -> tuple | None:
    """Hide part of the crop: unary and marginal recomputed next to the unoccluded ones, and
    which joints moved by how far. Returns the occlusion box (or None)."""
    c1, c2 = st.columns([1, 2], gap="large")
    with c1:
        occ, a = occlusion_controls(models, pred.crop, incoming)
    with c2:
        occlusion_picker(models, pred.crop, occ)
    base, now = maps(models, pred.crop, off), maps(models, pred.crop, off, occ)
    before_after(models, pred.crop, pred.crop if occ is None else touch.occlude(pred.crop, occ), base, now, a)
    rows = touch.displacement(models, base, now)
    moved = [r["name"] for r in rows if r["moved"]]
    st.markdown("**Joints that moved:** " + (", ".join(moved) if moved else "none") +
                f" (more than {touch.MOVED_PX:g} heatmap px = {touch.MOVED_PX * models.codec.stride:g} crop px).")
    moved_table(rows)
    st.caption("Try hiding a wrist: its unary collapses, yet the elbow's message keeps the wrist's marginal "
               "at a plausible place. That is the spatial model doing its job.")
    return occ


# ------------------------------------------------------------------ Message passing: plant a joint
def plant_controls(models, pred, a: int, incoming: dict) -> tuple[int, bool, tuple]:
    """Neighbour v, the planted/real toggle and v's position (heatmap px): a link, a click on
    v's map, or the number inputs. Returns (v, planted, (x, y) heatmap px)."""
    codec, n = models.codec, models.codec.heatmap_size
    vs = [v for v in graph.neighbours(models.spatial.edges, a) if v != a]
    p = str(incoming.get("plant", "")).split(",")
    if len(p) == 3 and links.joint_of(p[0]) in vs and links.ints(",".join(p[1:]), 2):
        v = links.joint_of(p[0])
        st.session_state[PLANT_V], st.session_state[PLANT_ON] = v, True
        st.session_state.update(dict(zip(plant_keys(v), links.ints(",".join(p[1:]), 2))))
    if st.session_state.get(PLANT_V) not in vs:
        st.session_state[PLANT_V] = vs[0]
    v = st.selectbox("Neighbour v", vs, format_func=lambda j: NAMES[j], key=PLANT_V)
    kx, ky = plant_keys(v)
    sel = (st.session_state.get(PLANT_PICK) or {}).get("selection", {}).get("points", [])
    if sel and sel[-1].get("x") is not None and st.session_state.get(PLANT_DONE) != (v, sel[-1]["x"], sel[-1]["y"]):
        st.session_state[PLANT_DONE] = (v, sel[-1]["x"], sel[-1]["y"])
        clicked = codec.to_heatmap(np.array([sel[-1]["x"], sel[-1]["y"]], np.float64))        # crop -> heatmap px
        hx, hy = (int(np.clip(round(float(t)), 0, n - 1)) for t in clicked)
        st.session_state[kx], st.session_state[ky], st.session_state[PLANT_ON] = hx, hy, True
    x0, y0 = (int(np.clip(round(float(t)), 0, n - 1)) for t in codec.to_heatmap(pred.crop_joints("unary")[v]))
    st.session_state.setdefault(kx, x0)
    st.session_state.setdefault(ky, y0)
    st.session_state.setdefault(PLANT_ON, False)
    st.toggle(f"Plant {NAMES[v]} (off: the detector's real unary)", key=PLANT_ON)
    c1, c2 = st.columns(2)
    c1.number_input("x (heatmap px)", 0, n - 1, key=kx)
    c2.number_input("y (heatmap px)", 0, n - 1, key=ky)
    return v, bool(st.session_state[PLANT_ON]), (int(st.session_state[kx]), int(st.session_state[ky]))


def plant(models, pred, a: int, incoming: dict) -> str | None:
    """Plant neighbour v where the learner clicks: the message into A and A's marginal follow.
    Returns the link value of the planted joint (None when the real unary is shown)."""
    st.markdown("Replace a neighbour's unary by a single peak where you click, and watch its message into "
                f"**{NAMES[a]}** and {NAMES[a]}'s marginal follow: the prior p(A | v) slides with the click.")
    c1, c2 = st.columns([1, 3], gap="large")
    with c1:
        v, on, xy = plant_controls(models, pred, a, incoming)
    codec = models.codec
    xy_crop = tuple(float(t) for t in codec.to_crop(np.asarray(xy, np.float64)))
    out = _plant(_key(models, pred.crop), a, v, xy_crop, models, pred.unary)
    pre = "" if on else "real_"
    unary_v = out["unary_v"] if on else models.belief(pred.unary)[v]
    a_peak = out[pre + "a_peak"]
    marks_a = [{"x": a_peak[0], "y": a_peak[1], "name": f"{NAMES[a]}'s marginal peak", "symbol": "circle-open",
                "colour": plots.MARK["marginal"], "size": 14}]
    with c2:
        cols = st.columns([1, 2])
        fig = plots.overlay_figure(pred.crop, unary_v.numpy(), codec, 0.7, title=f"Unary of v: {NAMES[v]}"
                                   + (" (planted)" if on else ""), hover="unary", height=320, meta="plant_v")
        plots.add_click_grid(fig, codec, label=f"click to plant {NAMES[v]} here")
        with cols[0]:
            chart.show(fig, key=PLANT_PICK, on_select="rerun", selection_mode="points")
        figs = [plots.overlay_figure(pred.crop, m.numpy(), codec, 0.7, title=title, hover="value",
                                     markers=marks_a if meta == "plant_marginal" else (), height=320, meta=meta,
                                     fmt=".4g")
                for meta, title, m in (
                    ("plant_message", f"Message {NAMES[v]} → {NAMES[a]}", out[pre + "message"]),
                    ("plant_marginal", f"Marginal of {NAMES[a]}", touch.marginal_map(out[pre + "log_marginal"])))]
        with cols[1]:                                # the two that follow the click: one chart
            chart.show(chart.panels(figs, meta="plant_panels"), key="plant_panels")
    moved = float(np.linalg.norm(out["a_peak"] - out["real_a_peak"]))
    if on:
        st.caption(f"Planted at heatmap ({xy[0]}, {xy[1]}) = crop ({xy_crop[0]:.1f}, {xy_crop[1]:.1f}). With "
                   f"{NAMES[v]} planted there, {NAMES[a]}'s marginal peak is {moved:.0f} crop px from where the real "
                   "unary puts it.")
    else:
        st.caption(f"Showing the detector's real unary of {NAMES[v]}: nothing is planted. Switch Plant on, or "
                   f"click on {NAMES[v]}'s map, to plant it.")
    return f"{SHORT[v]},{xy[0]},{xy[1]}" if on else None


# ------------------------------------------------------------------ Message passing: messages off
def edges_off(models, pred, a: int, incoming: dict) -> str | None:
    """Leave out messages into A: A's marginal without them next to the full one, and the eval
    JSON's PCK with each limb left out. Returns the link value of the dropped neighbours."""
    vs = graph.neighbours(models.spatial.edges, a)
    want = [links.joint_of(t) for t in str(incoming.get("drop", "")).split(",")]
    if incoming.get("drop"):
        st.session_state[drop_key(a)] = [v for v in want if v in vs]
    drop = st.multiselect(f"Leave out the message into {NAMES[a]} from", vs, key=drop_key(a),
                          format_func=lambda j: NAMES[j] + (" (itself)" if j == a else ""))
    full = pred.log_marginal[a]
    lm = _without(_key(models, pred.crop), tuple((a, v) for v in drop), models, pred.unary)[a]
    peaks = [models.codec.decode_crop(m[None, None], log_space=True)[0][0, 0].numpy() for m in (full, lm)]
    figs = []
    for meta, title, m, p in (("edge_full", "All messages", full, peaks[0]),
                              ("edge_without", ("Without " + ", ".join(NAMES[v] for v in drop))
                                                if drop else "None left out yet", lm, peaks[1])):
        mark = [{"x": p[0], "y": p[1], "name": "marginal peak", "symbol": "circle-open",
                 "colour": plots.MARK["marginal"], "size": 14}]
        figs.append(plots.overlay_figure(pred.crop, touch.marginal_map(m).numpy(), models.codec, 0.7,
                                         title=f"Marginal of {NAMES[a]}: {title}", hover="marginal",
                                         markers=mark, height=360, meta=meta, fmt=".4g"))
    chart.show(chart.panels(figs, meta="edge_panels"), key="edge_panels")        # one chart, not two
    st.caption(f"Without those messages {NAMES[a]}'s marginal peak moves "
               f"{float(np.linalg.norm(peaks[1] - peaks[0])):.0f} crop px.")
    st.subheader("What does each limb's message contribute? (LSP test)")
    ablation_table(touch.edge_rows(data.evaluation(weights_path())["result"]), "limb", "--ablate-edges")
    graph_table()
    return links.joined(SHORT[v] for v in drop)
