"""Message passing, step by step: one joint's marginal built one neighbour at a time, opening
on a crop (found in the data) where the spatial model moves a joint to the right place."""
from __future__ import annotations

import numpy as np
import streamlit as st

from lab.analysis import describe_detector, message_panels, neighbour_names, peak_report, second_peak
from lab.app import chart, common, data, interact, links, photos, plots
from lab.joints import NAMES, R_WRIST, SHORT
from lab.names import PRIOR_TEX

SOURCE, EXAMPLE, JOINT, OPENED = "msg_source", "msg_example", "msg_joint", "msg_opened"
LINKED = "msg_linked"           # the link values of the page's later sections (plant, drop), for a step's link
FOUND, OWN = "An example the app found", "The current photo"


def _step_key(a: int) -> str:
    return f"msg_step_{a}"


CAP = 9.99          # ratios above 999 % are shown as "> 999 %"


def _pct(r: float) -> str:
    """A ratio of two peak heights as a percentage of the first (one unit for every figure of
    the page): "72 %", "671 %" once the second place is the higher one, "> 999 %" beyond."""
    return "> 999 %" if r > CAP else f"{round(100 * r):.0f} %" if r >= 0.005 else "< 1 %"


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


def _tag(examples: list[dict]) -> tuple:
    """Which examples were found (they change with the model)."""
    return tuple((ex["id"], ex["joint"]) for ex in examples)


def open_example(examples: list[dict], j: int) -> None:
    """Show example j, on its joint, from the first step."""
    ex = examples[j]
    st.session_state[SOURCE], st.session_state[EXAMPLE], st.session_state[OPENED] = FOUND, j, _tag(examples)
    st.session_state[JOINT] = ex["joint"]
    st.session_state[_step_key(ex["joint"])] = 1


def choose_crop(models, examples: list[dict]):
    """0: an example from the data (the default) or the learner's current photo.
    Returns its prediction and the example shown (None for the learner's photo)."""
    if examples and (SOURCE not in st.session_state or (st.session_state[SOURCE] == FOUND and
                                                        st.session_state.get(OPENED) != _tag(examples))):
        open_example(examples, 0)           # first visit, or another model's examples: open on the best one
    src = (st.segmented_control("Crop", [FOUND, OWN], key=SOURCE, label_visibility="collapsed")
           if examples else OWN) or OWN
    if src == OWN:
        ph = photos.photo_input(compact=True)
        return photos.predict(models, ph, photos.current_box(models, ph)), None
    ex = examples[min(st.session_state.get(EXAMPLE, 0), len(examples) - 1)]
    _, crop, _, _ = data.example_crop(ex["index"])
    ph = photos.example_photo(f"{ex['id']} ({ex['split']} crop)", crop, data.EXAMPLE_SPLITS[ex["split"]])
    st.info(f"**{ex['id']}**, a crop from {data.EXAMPLE_SPLITS[ex['split']]}. The detector alone puts the "
            f"**{NAMES[ex['joint']]}** {ex['unary_error']:.0f} crop px from the annotated joint (★); with the "
            f"spatial model it is {ex['marginal_error']:.0f} px away. Step through the neighbours to see whose "
            "message moves it. More examples at the bottom of the page.", icon=":material/search:")
    return photos.predict(models, ph, ph.box), ex


def pick_joint_and_step(models, pred) -> tuple[int, list[dict], int]:
    """1: joint A and the step; returns A, its steps (`lab.analysis.message_panels`) and the step index."""
    sp = models.spatial
    st.header("1 · Pick a joint, then step through its neighbours")
    c1, c2 = st.columns([1, 2], gap="large")
    with c1:
        st.session_state.setdefault(JOINT, R_WRIST)
        a = st.selectbox("Joint A", range(len(NAMES)), format_func=lambda k: NAMES[k], key=JOINT)
    steps = message_panels(models, pred, a)
    n, key = len(steps), _step_key(a)
    st.session_state[key] = int(np.clip(st.session_state.get(key, 1), 1, n))

    def move(d: int) -> None:
        st.session_state[key] = int(np.clip(st.session_state[key] + d, 1, n))

    with c2:
        st.markdown(f"**{NAMES[a]}** has {n} neighbours in this model's {sp.cfg.graph} graph: "
                    + ", ".join(neighbour_names(sp, a)) + ".")
        b1, b2, b3 = st.columns([1, 1, 4])
        b1.button("◀ Previous", on_click=move, args=(-1,), disabled=st.session_state[key] <= 1, key="msg_prev")
        b2.button("Next ▶", on_click=move, args=(1,), disabled=st.session_state[key] >= n, key="msg_next")
        with b3:
            if n > 1:
                st.slider("Step", 1, n, key=key, label_visibility="collapsed")
    return a, steps, st.session_state[key] - 1


def show_equation(models, a: int, steps: list[dict], i: int) -> None:
    """The message-passing equation for this model, then A's sum with step i highlighted."""
    belief = describe_detector(models.pose.detector.cfg)["belief_tex"]
    st.latex(r"\log \bar e_A(x) \;=\; \sum_{v \in N(A)} \log \underbrace{\Big(" + PRIOR_TEX + r" \ast "
             + belief + r" + \mathrm{SoftPlus}(b_{v\to A})\Big)}_{m_{v\to A}\text{: the message from } v}")
    st.latex(equation(a, [t["v"] for t in steps], i))
    v = steps[i]["v"]
    st.markdown(f"**Step {i + 1} of {len(steps)}:** adding the message from **{NAMES[v]}**"
                + (" — the self edge: A's own unary, blurred by p(A|A)." if v == a else ".")
                + " Terms already added are black, the current one is highlighted, later ones are grey.")


def competition_metrics(steps: list[dict], i: int, unary_peaks: dict) -> None:
    """How the contest between the unary's two best peaks stands after step i and at the end:
    each figure the height at the unary's second peak as a percentage of the height at its first."""
    comp, final = steps[i]["competition"], steps[-1]["competition"]
    m1, m2, m3 = st.columns(3)
    m1.metric("Second peak / first, unary", _pct(unary_peaks["ratio"]) if unary_peaks["second"] else
              "no second peak", help="The height of the unary's second-best local maximum as a percentage of its "
                                     "best one.")
    if comp["second"] is not None:
        shown = [round(100 * min(r, CAP)) for r in (comp["marginal_ratio"], comp["unary_ratio"])]
        m2.metric(f"Same two places after step {i + 1}", _pct(comp["marginal_ratio"]),
                  delta=f"{shown[0] - shown[1]:+d} points vs the unary", delta_color="off",
                  help="The running product at the unary's second peak as a percentage of its value at the "
                       "unary's first peak. Over 100 %: the second place now wins.")
        m3.metric("After all steps (the marginal)", _pct(final["marginal_ratio"]),
                  help="The same percentage for A's marginal, after every message is multiplied in.")


def panels(models, pred, a: int, steps: list[dict], i: int, ex: dict | None) -> list[tuple]:
    """(meta, title, map (H, W), hover, markers, caption) of the five maps of step i; markers in crop px."""
    codec, s, v = models.codec, steps[i], steps[i]["v"]
    belief_a = models.belief(pred.unary)[a]
    peaks = second_peak(belief_a)

    def at(xy, name, symbol, colour, size=11):
        x, y = codec.to_crop(np.asarray(xy, np.float64))
        return {"x": x, "y": y, "name": name, "symbol": symbol, "colour": colour, "size": size}

    def own_peak(m, colour=plots.MARK["unary"], symbol="x"):
        return at(second_peak(m, log_space=True)["first"], "this map's peak", symbol, colour)

    ref = [at(peaks["first"], "unary's peak", "x", plots.MARK["unary"])]
    if peaks["second"] is not None:
        ref.append(at(peaks["second"], f"unary's second peak ({peaks['ratio']:.0%})", "triangle-up-open",
                      plots.MARK["second"], 12))
    truth = ex is not None and ex["joint"] == a
    if truth:
        ref.append({"x": ex["truth"][0], "y": ex["truth"][1], "name": "annotated joint", "symbol": "star",
                    "colour": plots.MARK["truth"], "size": 14})
    drawn = describe_detector(models.pose.detector.cfg)["belief_words"]
    return [
        ("msg_unary_a", f"Unary of A: {NAMES[a]}", belief_a, "unary", ref,
         "The detector's own evidence for A: what A would be without any neighbours. ✕ peak, △ second peak"
         + (", ★ the annotation." if truth else ".")),
        ("msg_unary_v", f"Unary of v: {NAMES[v]}", s["unary_v"], "unary", [own_peak(s["unary_v"])],
         f"The neighbour's evidence, as a message uses it: {drawn}."),
        ("msg_message", f"Message {NAMES[v]} → {NAMES[a]}", s["message"], "message", [own_peak(s["message"])],
         f"The unary of v convolved with p({NAMES[a]} | {NAMES[v]}), plus the bias: where {NAMES[v]} "
         f"says {NAMES[a]} should be."),
        ("msg_log_sum", f"Running log-sum, steps 1–{i + 1}", s["log_sum"], "log-sum",
         ref + [own_peak(s["log_sum"], plots.MARK["marginal"], "circle-open")],
         "The sum of the logs of the messages so far: adding a log multiplies a message in. ○ its peak."),
        ("msg_marginal", "Marginal so far (exp of the log-sum)", s["marginal"], "marginal",
         ref + [own_peak(s["marginal"], plots.MARK["marginal"], "circle-open")],
         "exp(log-sum): high only where every message so far agrees. After the last step this is A's "
         "marginal, before normalisation."),
    ]


def message_maps(models, pred, a: int, steps: list[dict], i: int, ex: dict | None) -> None:
    """2: A's unary, v's unary, the message, the running log-sum and the marginal so far, over the crop."""
    st.header("2 · The maps of this step")
    competition_metrics(steps, i, second_peak(models.belief(pred.unary)[a]))
    alpha = st.slider("Heatmap opacity over the crop", 0.0, 1.0, 0.7, 0.05, key="msg_alpha")
    maps = [(plots.overlay_figure(pred.crop, m.numpy(), models.codec, alpha, title=title, hover=hover,
                                  colorscale=plots.HEAT_OVER, markers=marks, height=330, meta=meta, fmt=".4g"), cap)
            for meta, title, m, hover, marks, cap in panels(models, pred, a, steps, i, ex)]
    # the five maps as one chart of panels, three a row, not three charts: one draw; each caption
    # under the chart names its map
    chart.show(chart.panels([f for f, _ in maps], cols=3, meta="msg_maps"), key="msg_maps")
    for row in (maps[:3], maps[3:]):
        cols = st.columns(3)
        for col, (fig, cap) in zip(cols, row):
            col.caption(f"**{fig.layout.title.text}.** {cap}")
    with cols[2]:
        after_all_steps(models, pred, a, ex)


def after_all_steps(models, pred, a: int, ex: dict | None) -> None:
    """Where A ends up with and without the spatial model (and, for an example, against the annotation)."""
    r = peak_report(models, pred)[a]
    u, f = r["unary"], r["marginal"]
    st.markdown("**After all steps**")
    st.markdown(f"- detector alone: {NAMES[a]} at crop ({u[0]:.0f}, {u[1]:.0f})\n"
                f"- with the spatial model: ({f[0]:.0f}, {f[1]:.0f})\n"
                f"- moved by **{r['moved']:.0f} crop px** "
                + ("(the neighbours overruled the detector)" if r["overruled"] else
                   "(the neighbours agreed with the detector)"))
    if ex is not None and ex["joint"] == a:
        st.markdown(f"- from the annotation: {ex['unary_error']:.0f} px → **{ex['marginal_error']:.0f} px**")


def examples_list(examples: list[dict]) -> None:
    """3: every example found, each a button that opens it."""
    st.header("5 · Examples: the spatial model moves a joint to the right place")
    if not examples:
        st.info("No example found: either the bundled mini set is missing or, for the chosen model, no joint in "
                f"the first {data.SCAN} example crops goes from wrong to right with the spatial model.")
        return
    st.markdown(
        f"Found just now in the first {data.SCAN} crops of {data.EXAMPLE_SPLITS[examples[0]['split']]}, by "
        "comparing each joint's unary peak and marginal peak with the annotation: "
        "joints the detector alone got wrong and the spatial model got right, furthest off first, one per crop.")
    for j, ex in enumerate(examples):
        c1, c2 = st.columns([2, 3])
        c1.button(f"{NAMES[ex['joint']]} in {ex['id']}", key=f"msg_ex_{j}", on_click=open_example,
                  args=(examples, j), icon=":material/search:", width="stretch")
        c2.markdown(f"detector alone **{ex['unary_error']:.0f} crop px** from the annotation → "
                    f"**{ex['marginal_error']:.0f} px** with the spatial model")
    st.caption("The examples are chosen from the model's own maps and the annotation, not by hand, so they "
               "change with the model you pick.")


INTRO = (
    "Each joint A collects a **message** from every neighbour v in the graph: v's unary heatmap convolved with "
    "the prior p(A|v), plus a small bias. The messages are multiplied, i.e. their logs are added, into A's "
    "**marginal**. A product is an AND: a location survives only if *every* neighbour agrees it is "
    "plausible, which is how body structure vetoes a false detection. Step through the sum one neighbour "
    "at a time.")


def from_link(examples: list[dict], q: dict) -> None:
    """A link's crop (an example, else the current photo), joint and step, before the widgets."""
    j = links.ints(q.get("ex"), 1)
    if j is not None and examples and 0 <= j[0] < len(examples):
        st.session_state[SOURCE], st.session_state[EXAMPLE], st.session_state[OPENED] = FOUND, j[0], _tag(examples)
    elif q.get("ex") == "own":
        st.session_state[SOURCE] = OWN
    a = links.joint_of(q.get("joint"))
    if a is not None:
        st.session_state[JOINT] = a
        step = links.ints(q.get("step"), 1)
        if step:
            st.session_state[_step_key(a)] = step[0]


def share(a: int, i: int, ex: dict | None, examples: list[dict], planted: str | None, dropped: str | None) -> None:
    links.share({"ex": examples.index(ex) if ex is not None else "own", "joint": SHORT[a], "step": i + 1,
                 "plant": planted, "drop": dropped}, photo=ex is None)
    st.session_state[LINKED] = (planted, dropped)


@st.fragment
def stepping(models, pred, ex: dict | None, examples: list[dict], drawn: int) -> None:
    """1-2: the joint, the step, the equation and the step's maps. A fragment: a step (Next,
    Previous, the slider) reruns and redraws these two sections alone; another joint A
    (`drawn`: the one the rest of the page shows) reruns the whole page, whose later sections
    follow A. On a step the link keeps the later sections' values."""
    a, steps, i = pick_joint_and_step(models, pred)
    if a != drawn:
        st.rerun()
    show_equation(models, a, steps, i)
    message_maps(models, pred, a, steps, i, ex)
    share(a, i, ex, examples, *st.session_state.get(LINKED, (None, None)))


@st.fragment
def try_sections(models, pred, a: int, ex: dict | None, examples: list[dict], incoming: dict) -> None:
    """3-4: plant a joint and switch off a message into A, each drawn only while open (a
    link's `plant` or `drop` opens its own), and the page's link. A fragment: opening a
    section or a click inside reruns these two sections alone. A link's values apply once:
    on the fragment's own reruns, which get the same dict, it is empty."""
    with common.section("3 · Plant a joint", interact.PLANT_OPEN, "plant" in incoming) as box:
        planted = interact.plant(models, pred, a, incoming) if box.open else None
    with common.section("4 · Switch off a message", interact.DROP_OPEN, "drop" in incoming) as box:
        dropped = interact.edges_off(models, pred, a, incoming) if box.open else None
    incoming.clear()
    share(a, st.session_state[_step_key(a)] - 1, ex, examples, planted, dropped)


def main() -> None:
    common.header("Message passing, step by step", INTRO, "messages")
    models = common.load_spatial_models()
    incoming = links.take("messages")
    examples = data.veto_examples(models, photos.model_key(models))
    from_link(examples, incoming)
    pred, ex = choose_crop(models, examples)
    a = st.session_state.setdefault(JOINT, R_WRIST)
    stepping(models, pred, ex, examples, a)
    try_sections(models, pred, a, ex, examples, incoming)
    examples_list(examples)


common.friendly(main)
