"""Message passing, step by step: one joint's marginal built one neighbour at a time."""
from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from lab.app import common, photos, plots
from lab.data.cache import MINI_PATH, PoseCache
from lab.data.targets import heatmap_to_crop, peak_competition, second_peak
from lab.errors import LabError
from lab.joints import L_ANKLE, L_WRIST, NAMES, R_ANKLE, R_WRIST
from lab.models import graph
from lab.models.detector import STRIDE

JOINT = "msg_joint"
EXAMPLE = "msg_example"
SCAN_JOINTS = (R_WRIST, L_WRIST, R_ANKLE, L_ANKLE)


def _step_key(a: int) -> str:
    return f"msg_step_{a}"


@st.cache_resource(show_spinner=False)
def _mini_val():
    """The bundled mini set's validation split (decoded once), or None if it is missing."""
    try:
        val = PoseCache(MINI_PATH)["val"]
    except LabError:
        return None
    _ = val.images                  # decode the JPEGs now, once (a bare expression would be st.write magic)
    return val


@st.cache_data(max_entries=4, show_spinner=False)
def _examples(key: str, _lab) -> list[dict]:
    """Mini validation crops where the product most clearly removed a wrist/ankle unary's second peak."""
    val = _mini_val()
    if val is None:
        return []
    found = _lab.find_suppressed_peaks(val.images, SCAN_JOINTS, top=4, coords=val.coords, labelled=val.labelled,
                                       distinct=True)
    for f in found:
        f["id"] = val.ids[f["index"]]
    return found


def _pct(r: float) -> str:
    return f"{r:.1%}" if r >= 0.001 else "< 0.1%"


def _tex_name(k: int) -> str:
    return r"\text{" + NAMES[k] + "}"


def equation(a: int, vs: list[int], i: int) -> str:
    """The log-marginal of A written out over its neighbours, term i highlighted, later terms grey."""
    terms = []
    for j, v in enumerate(vs):
        t = r"\log m_{" + _tex_name(v) + r"\to " + _tex_name(a) + "}"
        if j == i:
            terms.append(r"\colorbox{#fde68a}{$\displaystyle " + t + "$}")
        elif j > i:
            terms.append(r"\textcolor{#9ca3af}{" + t + "}")
        else:
            terms.append(t)
    lhs = r"\log \bar e_{" + _tex_name(a) + r"}(x)"
    if len(terms) <= 4:
        return lhs + r" \;=\; " + " + ".join(terms)
    rows = [" + ".join(terms[j:j + 3]) for j in range(0, len(terms), 3)]   # a full graph: 14 terms
    return (r"\begin{aligned}" + lhs + r" \;=\; & " + rows[0]
            + "".join(r" \\ & + " + r for r in rows[1:]) + r"\end{aligned}")


def main() -> None:
    st.title("Message passing, step by step")
    st.markdown(
        "Each joint A collects a **message** from every neighbour v in the graph: v's unary heatmap (negatives "
        "clipped by ReLU) convolved with the prior p(A|v), plus a small bias. The messages are multiplied, i.e. "
        "their logs are added, into A's **marginal**. A product is an AND: a location survives only if *every* "
        "neighbour agrees it is plausible, which is how body structure vetoes a false detection. Step through "
        "the sum one neighbour at a time.")
    common.lesson_link("messages")
    lab = common.load_spatial_models()
    sp = lab.spatial

    # ------------------------------------------------------------ examples (before the widgets they set)
    with st.spinner("Looking for examples in the bundled validation crops…"):
        examples = _examples(photos.model_key(lab), lab)

    def use_example(ex: dict) -> None:
        val = _mini_val()
        photos.set_photo(photos.example_photo(
            f"{val.ids[ex['index']]} (mini validation crop)", val.images[ex["index"]],
            "A person-centred crop from the bundled mini set's validation split (LSP im0001–1000: LSP's "
            "training half, which the shipped model may have been trained on)."))
        st.session_state[JOINT] = ex["joint"]
        st.session_state[EXAMPLE] = {"digest": photos.current_photo().digest, "joint": ex["joint"],
                                     "unary_ratio": ex["unary_ratio"]}
        st.session_state[_step_key(ex["joint"])] = len(graph.neighbours(sp.edges, ex["joint"]))

    ph = photos.photo_input(compact=True)
    box = photos.current_box(lab, ph)
    pred = photos.predict(lab, ph, box)

    st.header("1 · Pick a joint")
    if examples:
        st.caption("Or start from an example the app found where the product removes a false positive "
                   "(section 2, below).")
    c1, c2 = st.columns([1, 2], gap="large")
    with c1:
        st.session_state.setdefault(JOINT, R_WRIST)
        a = st.selectbox("Joint A", range(len(NAMES)), format_func=lambda k: NAMES[k], key=JOINT)
    steps = sp.step_through(pred.unary[None], a)
    n = len(steps)
    key = _step_key(a)
    st.session_state[key] = int(np.clip(st.session_state.get(key, 1), 1, n))

    def move(d: int) -> None:
        st.session_state[key] = int(np.clip(st.session_state[key] + d, 1, n))

    with c2:
        st.markdown(f"**{NAMES[a]}** has {n} neighbours in this model's {sp.cfg.graph} graph: "
                    + ", ".join(NAMES[s['v']] + (" (itself)" if s["v"] == a else "") for s in steps) + ".")
        b1, b2, b3 = st.columns([1, 1, 4])
        b1.button("◀ Previous", on_click=move, args=(-1,), disabled=st.session_state[key] <= 1, key="msg_prev")
        b2.button("Next ▶", on_click=move, args=(1,), disabled=st.session_state[key] >= n, key="msg_next")
        with b3:
            if n > 1:
                st.slider("Step", 1, n, key=key, label_visibility="collapsed")
    i = st.session_state[key] - 1
    s = steps[i]
    v = s["v"]

    st.latex(r"\log \bar e_A(x) \;=\; \sum_{v \in N(A)} \log \underbrace{\Big(\mathrm{SoftPlus}(e_{A|v}) \ast "
             r"\mathrm{ReLU}(e_v) + \mathrm{SoftPlus}(b_{v\to A})\Big)}_{m_{v\to A}\text{: the message from } v}")
    st.latex(equation(a, [t["v"] for t in steps], i))
    st.markdown(f"**Step {i + 1} of {n}:** adding the message from **{NAMES[v]}**"
                + (" — the self edge: A's own unary, blurred by p(A|A)." if v == a else ".")
                + " Terms already added are black, the current one is highlighted, later ones are grey.")

    # ------------------------------------------------------------ the maps
    unary_a = pred.unary[a]
    sp_a = second_peak(unary_a)
    comp = peak_competition(unary_a, s["log_sum"])
    final = peak_competition(unary_a, steps[-1]["log_sum"])
    ex = st.session_state.get(EXAMPLE)
    if ex and ex["digest"] == ph.digest and ex["joint"] == a:
        st.info(f"Example found by the scan: the {NAMES[a]} unary has a second peak (△) at "
                f"{ex['unary_ratio']:.0%} of its first (✕). Step to the end and watch it fade in the running "
                "product; each step shows which neighbour's message did the work.", icon=":material/search:")
    m1, m2, m3 = st.columns(3)
    m1.metric("Second peak / first, unary", f"{sp_a['ratio']:.0%}" if sp_a["second"] else "no second peak",
              help="Heights of the unary's two best local maxima (after ReLU).")
    if comp["second"] is not None:
        m2.metric(f"Same two places after step {i + 1}", _pct(comp["marginal_ratio"]),
                  delta=f"{100 * (min(comp['marginal_ratio'], 9.99) - comp['unary_ratio']):+.0f} points",
                  delta_color="off",
                  help="exp(log-sum) at the unary's second peak over exp(log-sum) at its first peak "
                       "(lab.data.targets.peak_competition).")
        m3.metric("After all steps (the marginal)", _pct(final["marginal_ratio"]))

    alpha = st.slider("Heatmap opacity over the crop", 0.0, 1.0, 0.7, 0.05, key="msg_alpha")

    def at(xy, name, symbol, colour, size=11):
        cx, cy = heatmap_to_crop(torch.as_tensor(np.asarray(xy, np.float64)), STRIDE).tolist()
        return {"x": cx, "y": cy, "name": name, "symbol": symbol, "colour": colour, "size": size}

    def own_peak(m, symbol="x", colour=plots.MARK["unary"]):
        return at(second_peak(m, log_space=True)["first"], "this map's peak", symbol, colour)

    ref = [at(sp_a["first"], "unary's peak", "x", plots.MARK["unary"])]
    if sp_a["second"] is not None:
        ref.append(at(sp_a["second"], f"unary's second peak ({sp_a['ratio']:.0%})", "triangle-up-open",
                      plots.MARK["second"], 12))
    panels = [
        ("msg_unary_a", f"Unary of A: {NAMES[a]}", unary_a, "unary", ref,
         "The detector's own evidence for A: what A would be without any neighbours. ✕ peak, △ second peak."),
        ("msg_unary_v", f"Unary of v: {NAMES[v]}", s["unary_v"], "unary", [own_peak(s["unary_v"])],
         "The neighbour's evidence. Only its positive part (ReLU) is sent on."),
        ("msg_message", f"Message {NAMES[v]} → {NAMES[a]}", s["message"], "message", [own_peak(s["message"])],
         f"ReLU(unary of v) convolved with p({NAMES[a]} | {NAMES[v]}), plus the bias: where {NAMES[v]} "
         f"says {NAMES[a]} should be."),
        ("msg_log_sum", f"Running log-sum, steps 1–{i + 1}", s["log_sum"], "log-sum",
         ref + [own_peak(s["log_sum"], "circle-open", plots.MARK["spatial"])],
         "The sum of the logs of the messages so far: adding a log multiplies a message in. ○ its peak; "
         "✕ △ the unary's two peaks, for reference."),
        ("msg_marginal", "Marginal so far (exp of the log-sum)", s["marginal"], "marginal",
         ref + [own_peak(s["marginal"], "circle-open", plots.MARK["spatial"])],
         "exp(log-sum): high only where every message so far agrees. After the last step this is A's "
         "marginal, before normalisation."),
    ]
    cols = st.columns(3)
    for j, (meta, title, m, hover, marks, cap) in enumerate(panels):
        with cols[j % 3]:
            fig = plots.overlay_figure(pred.crop, m.numpy(), STRIDE, alpha, title=title, hover=hover,
                                       colorscale=plots.HEAT_OVER, markers=marks, height=330, meta=meta, fmt=".4g")
            st.plotly_chart(fig, key=meta)
            st.caption(cap)
        if j == 2:
            cols = st.columns(3)
    with cols[2]:
        u = pred.crop_joints("unary")[a]
        f = pred.crop_joints("spatial")[a] if "spatial" in pred.joints else u
        moved = float(np.linalg.norm(f - u))
        st.markdown("**After all steps**")
        st.markdown(f"- detector alone: {NAMES[a]} at crop ({u[0]:.0f}, {u[1]:.0f})\n"
                    f"- with the spatial model: ({f[0]:.0f}, {f[1]:.0f})\n"
                    f"- moved by **{moved:.0f} crop px** "
                    + ("(the neighbours agreed with the detector)" if moved < STRIDE * 1.5 else
                       "(the neighbours overruled the detector)"))

    # ------------------------------------------------------------ examples
    st.header("2 · Examples: the product removes a false positive")
    if not examples:
        st.info("No example found: either the bundled mini set is missing or, for the chosen model, no wrist or "
                "ankle in its validation crops has a strong second peak that the marginal suppresses.")
    else:
        st.markdown(
            "Found just now by scanning the bundled mini set's 100 validation crops: for every wrist and ankle, "
            "the unary's two best peaks are compared before and after the product (`lab.infer.find_suppressed_"
            "peaks`). These are the crops (one joint each) where the second peak lost the most. Click one, then step through "
            "the neighbours to see which message vetoed it.")
        for j, ex in enumerate(examples):
            c1, c2 = st.columns([2, 3])
            c1.button(f"{NAMES[ex['joint']]} in {ex['id']}", key=f"msg_ex_{j}", on_click=use_example, args=(ex,),
                      icon=":material/search:", width="stretch")
            mr = ex["marginal_ratio"]
            txt = (f"second peak at **{ex['unary_ratio']:.0%}** of the first in the unary → "
                   f"**{_pct(mr)}** in the marginal")
            if "truth" in ex:
                txt += (f"; the annotated joint is {ex['first_error']:.0f} crop px from the kept peak and "
                        f"{ex['second_error']:.0f} px from the suppressed one")
                near = 0.1 * lab.size
                if ex["second_error"] < ex["first_error"]:
                    txt += " — here the suppressed peak was the closer one: the veto was wrong"
                elif ex["first_error"] > near:
                    txt += (f" — neither is within {near:.0f} px of it: the veto removed a false peak, "
                            "but the one kept is not right either")
                else:
                    txt += " — the veto helped"
            c2.markdown(txt + ".")
        st.caption("With the ground truth of these crops we can say honestly whether each veto helped. The examples "
                   "are chosen by the model's own maps, not by hand, so they change with the model you pick.")


common.friendly(main)
