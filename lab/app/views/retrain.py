"""Retrain: train the small configuration from the browser and watch it learn.

Runs live in lab.train.runs (a background thread and a folder per run under
common.RUNS_DIR, at most K training at once, the rest queued); this page starts, lists,
watches, cancels, compares and deletes them."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lab.app import chart, common
from lab.data.cache import MINI_PATH
from lab.errors import LabError
from lab.infer import POSE_WEIGHTS
from lab.names import METHOD_LABELS
from lab.train import runs as jobs

STAGE_COLOURS = {"detector": "#0072B2", "spatial": "#D55E00", "joint": "#009E73"}
STATE_COLOUR = {"queued": "gray", "running": "blue", "done": "green", "cancelled": "orange",
                "failed": "red", "interrupted": "orange"}


def preset_help() -> str:
    """The presets' settings, as `pose-lab bench --retrain` measures them."""
    return "Starting points: " + "; ".join(f"{name}: {p.epochs} epochs on all crops"
                                           for name, p in jobs.PRESETS.items()) + \
        " (measured on 2 quiet CPU cores; `pose-lab bench --retrain` prints their time and validation PCK here)."


def badge(state: str) -> str:
    """A coloured Streamlit markdown badge for a run state (plain text in tables)."""
    return f":{STATE_COLOUR.get(state, 'gray')}-badge[{state}]"


def md(text) -> str:
    """Text a learner typed (a run label), shown literally inside Markdown."""
    return "".join("\\" + ch if ch in "\\`*_{}[]()<>#+-.!|:~$" else ch for ch in str(text))


def size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
LRS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
POLL_S = 3.0


# ------------------------------------------------------------------ library calls, cached
@st.cache_data(show_spinner=False, max_entries=8)
def _describe(path: str, stamp: float) -> dict:
    return jobs.describe_cache(path)


def describe(cache: str) -> dict:
    p = MINI_PATH if cache == "mini" else Path(cache)
    return _describe(cache, p.stat().st_mtime if p.is_file() else 0.0)


@st.cache_data(show_spinner="Evaluating on the validation split…", max_entries=16)
def _val_pck(model: str, stamp: float, cache: str, limit: int) -> dict:
    return jobs.val_pck(Path(model), cache, "val", limit)


def val_pck(model: Path, cache: str, limit: int) -> dict:
    return _val_pck(str(model), model.stat().st_mtime, cache, limit)


def resolve_cache(text: str) -> str:
    """A path typed in the box: ~ expanded, relative paths from the repository root."""
    p = Path(text.strip()).expanduser()
    return str(p if p.is_absolute() else common.ROOT / p)


def runs_dir() -> Path:
    return Path(common.RUNS_DIR)


# ------------------------------------------------------------------ callbacks
def _start() -> None:
    s = st.session_state
    cache = "mini" if s.get("rt_source", "mini") == "mini" else resolve_cache(s.get("rt_cache", ""))
    settings = jobs.RunSettings(
        label=s.get("rt_label", "").strip(), cache=cache, epochs=int(s["rt_epochs"]), lr=float(s["rt_lr"]),
        sigma=float(s["rt_sigma"]), spatial=bool(s["rt_spatial"]), train_size=int(s["rt_train_size"]))
    try:
        run = jobs.start_run(settings, runs_dir())
    except (LabError, OSError, ValueError) as e:
        s["rt_start_error"] = f"Could not start the run: {e}"
        return
    s["rt_start_error"] = None
    s["rt_watch"] = run.id
    st.query_params["run"] = run.id


def _cancel(run_id: str) -> None:
    if not jobs.cancel_run(run_id, runs_dir()):
        st.session_state["rt_action_msg"] = "That run is not waiting or training in this server any more."


def _delete(run_id: str) -> None:
    try:
        jobs.delete_run(runs_dir(), run_id)
        st.session_state.pop("rt_watch", None)
        st.query_params.pop("run", None)
        st.session_state["rt_full_rerun"] = True       # the sidebar's model list changed
    except (LabError, OSError) as e:
        st.session_state["rt_action_msg"] = f"Could not delete the run: {e}"


# ------------------------------------------------------------------ new run
def new_run_form() -> None:
    st.subheader("Start a run")
    source = st.radio("Training data", ["mini", "cache"], horizontal=True, key="rt_source",
                      format_func=lambda v: {"mini": "Bundled mini set",
                                             "cache": "A cache file from `pose-lab prepare`"}[v])
    if source == "cache":
        text = st.text_input("Cache file", value="cache/lsp128.safetensors", key="rt_cache",
                             help="A file made by `pose-lab prepare` (relative paths start at the repository root).")
        cache = resolve_cache(text)
    else:
        cache = "mini"
    try:
        info = describe(cache)
    except LabError as e:
        st.error(f"Can't train on this file: {e}")
        return
    n_train, n_val = info["counts"]["train"], info["counts"]["val"]
    st.caption(f"{n_train} training and {n_val} validation crops ({info['source'] or info['path']}). "
               "Validation crops are only used to watch progress and pick the best epoch; "
               "the test set is never touched here.")

    d = jobs.RunSettings()
    c1, c2, c3 = st.columns(3)
    with c1:
        epochs = st.slider("Epochs (total, shared by the stages)", 1, 30, d.epochs, key="rt_epochs",
                           help=preset_help())
        st.select_slider("Learning rate", LRS, value=d.lr, key="rt_lr", format_func=lambda v: f"{v:g}")
    with c2:
        st.slider("Heatmap σ (target width, heatmap pixels)", 0.5, 3.0, float(info["data"]["sigma"]), 0.25,
                  key="rt_sigma")
        spatial = st.toggle("Spatial model (priors + message passing)", value=True, key="rt_spatial")
    with c3:
        default = min(d.train_size or n_train, n_train)
        st.slider("Training-set size (first N crops)", min(16, n_train), n_train, default, key="rt_train_size")
        st.text_input("Run label (optional)", key="rt_label", max_chars=60,
                      placeholder="e.g. sigma 2, no spatial model")
    plan = jobs.stage_plan(epochs, spatial)
    st.markdown("**Stages:** " + " → ".join(f"{stage} × {n} epoch{'s' if n > 1 else ''}" for stage, n in plan)
                + ". The small detector configuration, batches of 16; the best validation epoch is kept.")
    q = jobs.queue_counts(runs_dir())
    if q["max_running"] <= 0:
        st.info("Training from the browser is turned off on this server (pose-lab app --max-trainings 0).")
        return
    busy = q["running"] >= q["max_running"]
    st.caption(f"This server trains {q['max_running']} run{'s' if q['max_running'] > 1 else ''} at a time: "
               f"{q['running']} training now, {q['waiting']} waiting (at most {q['max_queued']})."
               + (" A new run waits its turn in the queue." if busy else ""))
    guess = jobs.expected_seconds(jobs.RunSettings(epochs=int(epochs), spatial=bool(spatial), cache=cache,
                                                   train_size=int(st.session_state.get("rt_train_size") or 0)),
                                  runs_dir())
    threads = jobs.train_threads(jobs.RunSettings())
    st.caption(f"A run trains on {threads} torch thread{'s' if threads > 1 else ''} of this server's "
               f"{os.cpu_count()} cores. "
               + (f"Expected here: about {jobs.fmt_seconds(guess['seconds'])}, measured from the last finished run "
                  f"on this server (“{md(guess['from'])}”: {guess['images']} images in "
                  f"{jobs.fmt_seconds(guess['wall'])})." if guess else
                  "No run has finished on this server yet: the time left is shown once training starts."))
    st.button("Start training" if not busy else "Queue this run", type="primary", key="rt_start", on_click=_start)
    if st.session_state.get("rt_start_error"):
        st.error(st.session_state["rt_start_error"])


# ------------------------------------------------------------------ runs
def runs_overview(runs: list[dict]) -> None:
    rows = []
    disk = jobs.disk_usage(runs_dir())
    for r in runs:
        best = (r.get("best") or {})
        state = r.get("state")
        if state == "queued" and r.get("queue_position"):
            state = f"queued (#{r['queue_position']})"
        rows.append({"run": r.get("label", r["id"]), "state": state,
                     "progress": 100 * float((r.get("progress") or {}).get("fraction", 0.0)),
                     "best val PCK@0.2": f"{100 * best['headline']:.1f}%" if best else "–",
                     "started": dt.datetime.fromtimestamp(r.get("created", 0)).strftime("%Y-%m-%d %H:%M"),
                     "on disk": size(disk["per_run"].get(r["id"])), "folder": r["id"]})
    st.table(pd.DataFrame(rows).style.format({"progress": "{:.0f}%"})
             .bar(subset=["progress"], vmin=0.0, vmax=100.0, color="#9ecae1"), hide_index=True)
    st.caption(f"Runs take {size(disk['runs'])} on disk in `{runs_dir()}`"
               + (f"; {size(disk['free'])} free there." if disk["free"] is not None else ".")
               + " Delete finished runs you no longer need (below, with the run you watch).")


def status_of(run_id: str) -> dict | None:
    try:
        return jobs.status_of(runs_dir(), run_id)
    except LabError:
        return None


def loss_figure(st_: dict) -> go.Figure:
    fig = go.Figure()
    steps = st_.get("steps") or []
    for stage in dict(st_.get("plan") or []):
        colour = STAGE_COLOURS.get(stage)
        pts = [p for p in steps if p[2] == stage and p[1] is not None]
        if pts:
            fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines",
                                     name=f"{stage} stage", legendgroup=stage, showlegend=False,
                                     line=dict(color=colour, width=1), opacity=0.45,
                                     hovertemplate="epoch %{x:.2f}: %{y:.5f}<extra>one batch</extra>"))
        rows = [h for h in st_.get("history", []) if h["stage"] == stage]
        if rows or pts:
            fig.add_trace(go.Scatter(x=[h["epoch"] for h in rows], y=[h["loss"] for h in rows],
                                     mode="lines+markers", name=f"{stage}: training", legendgroup=stage,
                                     line=dict(color=colour, width=3),
                                     hovertemplate="epoch %{x}: %{y:.5f}<extra>training, epoch mean</extra>"))
        val = [h for h in rows if h.get("val_loss") is not None]
        if val:
            fig.add_trace(go.Scatter(x=[h["epoch"] for h in val], y=[h["val_loss"] for h in val],
                                     mode="lines+markers", name=f"{stage}: validation", legendgroup=stage,
                                     line=dict(color=colour, width=3, dash="dash"), marker=dict(symbol="diamond"),
                                     hovertemplate="epoch %{x}: %{y:.5f}<extra>validation</extra>"))
    fig.update_layout(title="Loss: training and validation", xaxis_title="epoch", meta="retrain_loss",
                      yaxis=dict(title="loss (log scale)", type="log"), height=380,
                      margin=dict(t=50, l=10, r=10, b=10),
                      legend=dict(orientation="h", y=-0.25, yanchor="top", x=0))
    return fig


def pck_figure(st_: dict) -> go.Figure:
    fig = go.Figure()
    hist = st_.get("history", [])
    for method, colour in (("unary", "#56B4E9"), ("marginal", "#0072B2")):
        pts = [(h["epoch"], 100 * h["val_pck"][method]) for h in hist if method in h["val_pck"]]
        if pts:
            fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                                     name=METHOD_LABELS[method], line=dict(color=colour, width=3)))
    best = st_.get("best")
    if best:
        fig.add_trace(go.Scatter(x=[best["epoch"]], y=[100 * best["headline"]], mode="markers",
                                 name="kept (best epoch)", hovertemplate="kept: epoch %{x}, %{y:.1f}%<extra></extra>",
                                 marker=dict(symbol="circle-open", size=20, color="#E69F00", line=dict(width=3))))
    epochs = max(int(st_["progress"]["epochs"]), 1)
    fig.update_layout(title="Validation PCK@0.2", xaxis_title="epoch", yaxis_title="PCK (%)",
                      xaxis=dict(range=[0.5, epochs + 0.5], dtick=1 if epochs <= 15 else None),
                      yaxis=dict(rangemode="tozero"), height=380, margin=dict(t=50, l=10, r=10, b=10),
                      legend=dict(orientation="h", y=-0.25, yanchor="top", x=0))
    return fig


def run_panel(run_id: str) -> None:
    st_ = status_of(run_id)
    if st_ is None:
        st.info("This run has no readable status any more.")
        return
    state = st_.get("state")
    prog = st_.get("progress") or {}
    st.markdown(f"#### {md(st_.get('label'))} &nbsp; {badge(state)}")
    if state == "queued":
        pos = st_.get("queue_position")
        st.info(f"Waiting for its turn: number {pos} in the queue. " if pos else "Waiting for its turn. ")
        st.button("Cancel", key=f"rt_cancel_{run_id}", on_click=_cancel, args=(run_id,),
                  disabled=bool(st_.get("cancel_requested")), help="Leaves the queue at once.")
    elif state in jobs.ACTIVE:
        bits = [f"{prog.get('stage') or 'starting'} stage", f"epoch {prog.get('epoch', 0)}/{prog.get('epochs')}"]
        if prog.get("steps"):
            bits.append(f"batch {prog.get('step')}/{prog.get('steps')}")
        left = jobs.eta(st_)
        if left:
            bits.append(f"about {jobs.fmt_seconds(left['seconds'])} left")
        st.progress(min(max(float(prog.get("fraction", 0.0)), 0.0), 1.0), text=" · ".join(bits))
        st.caption("Time left: " + (left["text"] if left else "measured once the first batches have run") + ".")
        if st_.get("cancel_requested"):
            st.caption("Cancelling: it stops after the current batch and keeps its best checkpoint.")
        st.button("Cancel", key=f"rt_cancel_{run_id}", on_click=_cancel, args=(run_id,),
                  disabled=bool(st_.get("cancel_requested")),
                  help="Stops at the next batch; the best checkpoint so far is kept.")
    elif state == "failed":
        st.error(st_.get("error") or "The run failed.")
    elif state == "interrupted":
        st.warning(st_.get("error"))
    elif state == "cancelled":
        st.warning("Cancelled." + (" The best checkpoint so far is kept and can be chosen in the sidebar."
                                   if (runs_dir() / run_id / jobs.POSE).is_file() else
                                   " No epoch had finished, so there is no checkpoint."))
    best = st_.get("best")
    if best:
        method = METHOD_LABELS[best["method"]].lower()
        st.caption(f"Kept: epoch {best['epoch']} ({best['stage']} stage), validation PCK@0.2 "
                   f"{100 * best['headline']:.1f}% ({method}). It is listed in the sidebar's model choice as "
                   f"“Retrained: {md(st_.get('label'))}”.")

    left, mid, right = st.columns([5, 5, 3])
    with left:
        chart.show(loss_figure(st_), key=f"rt_loss_{run_id}")
        st.caption("Thin: every batch. Thick: the epoch's mean on the training crops. Dashed: the same loss on "
                   "the validation crops after each epoch. Training falling while validation stalls or rises "
                   "is overfitting: the model learns its training crops, not poses.")
    with mid:
        chart.show(pck_figure(st_), key=f"rt_pck_{run_id}")
    with right:
        live = st_.get("live")
        png = runs_dir() / run_id / jobs.LIVE
        if live and png.is_file():
            st.image(png.read_bytes(), width="stretch")
            st.caption(jobs.live_caption(live))
        else:
            st.caption("The heatmap of a validation image appears after the first epoch.")
    if len({h["stage"] for h in st_.get("history", [])}) > 1:
        st.caption("Loss values are not comparable across stages: the spatial and joint stages score the "
                   "marginals, so a jump when a stage starts is expected.")


def compare_with_shipped(st_: dict) -> None:
    run_dir = runs_dir() / st_["id"]
    pose = run_dir / jobs.POSE
    if not pose.is_file():
        return
    settings = st_.get("settings") or {}
    cache, limit = settings.get("cache", "mini"), int(settings.get("val_size", 0) or 0)
    st.markdown("**This run vs the shipped model**, on the same validation crops")
    rows = []
    for name, path in ((f"Retrained: {st_.get('label')}", pose), ("Shipped (pretrained/)", POSE_WEIGHTS)):
        try:
            res = val_pck(path, cache, limit)
        except LabError as e:
            st.warning(f"{name}: {e}")
            continue
        rows.append({"model": name, **{METHOD_LABELS[m]: 100 * res[m] for m in ("unary", "marginal") if m in res}})
    if rows:
        df = pd.DataFrame(rows).set_index("model")
        st.table(df.style.format("{:.1f}", na_rep="–"))
    if cache == "mini":
        st.caption("PCK@0.2 in %. Not a fair contest: the shipped model is the full-size configuration "
                   "trained on all of LSPET and LSP im0001–im1000, so it has seen most of these mini-set "
                   "validation images in training and its number here is optimistic. The honest comparison "
                   "is between your own runs, and the test-set numbers on the Heatmaps vs regression page.")
    else:
        st.caption("PCK@0.2 in %. With a cache built by `pose-lab prepare` (standard protocol, default seed) "
                   "this is the validation split the shipped model was checked on, never trained on.")


def watch(runs: list[dict]) -> None:
    ids = [r["id"] for r in runs]
    labels = {r["id"]: f"{r.get('label', r['id'])} ({r.get('state')})" for r in runs}
    wanted = st.session_state.get("rt_watch") or st.query_params.get("run")   # ids only: never a path
    if wanted not in ids:
        wanted = ids[0]
    st.session_state["rt_watch"] = wanted
    run_id = st.selectbox("Watch run", ids, key="rt_watch", format_func=lambda i: labels.get(i, i))
    if st.query_params.get("run") != run_id:
        st.query_params["run"] = run_id
    run_panel(run_id)
    st_ = status_of(run_id) or {}
    if st_.get("state") in jobs.TERMINAL:
        common.friendly(lambda: compare_with_shipped(st_))
        size_now = jobs.disk_usage(runs_dir())["per_run"].get(run_id)
        st.button(f"Delete this run ({size(size_now)})", key=f"rt_delete_{run_id}", on_click=_delete,
                  args=(run_id,), help=f"Removes {runs_dir() / run_id} and its model from the sidebar.")
    msg = st.session_state.pop("rt_action_msg", None)
    if msg:
        st.warning(msg)


def runs_section(was_active: set, choices: set) -> None:
    """Every run and the watched one; while any trains, this part alone reruns every POLL_S
    seconds, and the whole page reruns when a run finishes or first saves a model, so the
    sidebar's model list shows it."""
    runs = jobs.list_runs(runs_dir())
    still = {r["id"] for r in runs if r.get("state") in jobs.ACTIVE}
    new_model = set(common.model_choices()) != choices
    if (was_active - still) or new_model or st.session_state.pop("rt_full_rerun", False):
        st.rerun()
    if not runs:
        st.info(f"No runs yet. They will be kept in `{runs_dir()}`.")
        return
    runs_overview(runs)
    common.friendly(lambda: watch(runs))


# ------------------------------------------------------------------ page
st.title("Retrain")
st.markdown(
    "Train the **small** configuration yourself: pick the data and the knobs of the lesson, start, and "
    "watch the loss, the validation PCK and a validation image's heatmap evolve. Every good epoch is saved, "
    "so a run appears in the sidebar's **Model** choice as soon as its first epoch finishes, and cancelling "
    "keeps the best checkpoint so far. Runs keep training if you close or reload this tab.")
common.lesson_link("retrain")

common.friendly(new_run_form)
st.divider()
st.subheader("Runs")
ACTIVE_NOW = {r["id"] for r in jobs.list_runs(runs_dir()) if r.get("state") in jobs.ACTIVE}
CHOICES_NOW = set(common.model_choices())
st.fragment(run_every=POLL_S if ACTIVE_NOW else None)(runs_section)(ACTIVE_NOW, CHOICES_NOW)
with st.expander("Several learners training on one server"):
    st.markdown(
        "Each run has its own folder and thread, so learners can start runs from several tabs without "
        "touching each other's files. The server trains a few at a time (set by `pose-lab app "
        "--max-trainings`, one by default); later runs wait in a queue and show their place in it, and "
        "Cancel takes a run out of the queue at once. Training threads run at a lower CPU priority than "
        "the pages, so the lab stays usable while a run trains. Runs that train at the same time share "
        "PyTorch's random generator, so they are not bit-for-bit reproducible.")
