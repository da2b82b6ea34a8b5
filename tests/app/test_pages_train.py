"""The Heatmaps vs regression, Lessons and Retrain pages, through Streamlit's AppTest.

compare: its figures and tables hold exactly what the evaluation JSONs say (curves, PCK
table with the mean-pose baseline, pose spreads), computed here by `pose-lab eval`'s own
`evaluate` on the mini set's validation crops for the shipped detector and a small untrained
regressor; a missing, damaged or stale JSON gives a message instead of a traceback.
lessons: the numbers a lesson quotes are filled in from those JSONs.
retrain: a bad cache path is refused clearly; a tiny run started from the page shows
progress, finishes, and appears in the sidebar's model choice; Cancel keeps the run's
checkpoint; with K = 1 a second run waits in the queue with its position and Cancel takes
it out; a run label typed with Markdown is shown literally; finished runs show their disk
use and can be deleted. Runs go to a temporary POSE_LAB_RUNS folder.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import torch
from app_util import figure, figures, go, joints_of, rerun, specs, start, texts

from lab.app import common
from lab.config import DataConfig, RegressorConfig, to_dict
from lab.data.cache import MINI_PATH
from lab.eval import mean_pose as mp
from lab.eval import results as evals
from lab.eval.evaluate import evaluate
from lab.infer import POSE_WEIGHTS
from lab.models import io
from lab.models.regressor import Regressor
from lab.names import METHOD_LABELS, METHOD_SHORT
from lab.train import runs as browser_runs


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> Path:
    """A pretrained/ folder whose evaluation JSONs match its weights: the shipped detector and a
    small untrained regressor (it predicts much the same pose for every crop), each evaluated by
    `lab.eval.evaluate.evaluate` on the mini set's 100 validation crops."""
    d = tmp_path_factory.mktemp("pretrained")
    shutil.copy(POSE_WEIGHTS, d / "pose.safetensors")
    torch.manual_seed(0)
    cfg = RegressorConfig.small()
    io.save(d / "regressor.safetensors", Regressor(cfg),
            {"kind": "regressor", "regressor": to_dict(cfg), "data": to_dict(DataConfig())})
    for name in ("pose", "regressor"):
        res = evaluate(d / f"{name}.safetensors", split="val", cache=str(MINI_PATH))
        evals.eval_path(d / f"{name}.safetensors").write_text(json.dumps(res))
    return d


def use_pretrained(monkeypatch, folder: Path) -> None:
    """Point the app at another pretrained/ folder (the detector, the regressor and their JSONs)."""
    monkeypatch.setattr(common, "PRETRAINED", folder)
    monkeypatch.setattr(common, "POSE_WEIGHTS", folder / "pose.safetensors")
    monkeypatch.setattr(common, "SCRATCH_WEIGHTS", folder / "scratch.safetensors")
    monkeypatch.setattr(common, "REGRESSOR_WEIGHTS", folder / "regressor.safetensors")


# ------------------------------------------------------------------ compare
def test_compare_page_shows_the_evaluations(shipped, monkeypatch):
    use_pretrained(monkeypatch, shipped)
    at = go(start(), "compare")
    assert at.title[0].value == "Heatmaps vs regression"
    assert not at.warning, texts(at.warning)
    results = [json.loads(evals.eval_path(shipped / f"{n}.safetensors").read_text()) for n in ("pose", "regressor")]
    methods = evals.methods_of(*results)
    # the photo through both models
    assert joints_of(figure(at, "compare_photo_marginal")) and joints_of(figure(at, "compare_photo_regressor"))
    # every method's curve, the mean-pose baseline included, in the lab's order
    curves = figure(at, "pck_curves")["data"]
    assert [t["name"] for t in curves] == [METHOD_LABELS[m] for m in ("unary", "marginal", "regressor", "mean_pose")]
    for trace, m in zip(curves, ("unary", "marginal", "regressor", "mean_pose")):
        assert trace["x"] == pytest.approx(methods[m]["curve"]["alpha"])
        assert trace["y"] == pytest.approx([100 * v for v in methods[m]["curve"]["mean"]])
    # the PCK@0.2 table: a short column header per method (all fit on screen) and the spatial model's gain
    table = at.table[0].value
    assert list(table.columns) == [METHOD_SHORT[m] for m in ("unary", "marginal", "regressor", "mean_pose")] + ["Gain"]
    assert all(len(c) <= 12 for c in table.columns)
    assert table.loc["mean", METHOD_SHORT["mean_pose"]] == pytest.approx(100 * methods["mean_pose"]["pck@0.2"]["mean"])
    # round once, then subtract: every gain shown equals marginal shown - unary shown
    for part, row in table.iterrows():
        assert f"{row['Gain']:+.1f}" == f"{float(f'{row.Marginal:.1f}') - float(f'{row.Unary:.1f}'):+.1f}", part
    # pose spreads next to the ground truth's, and the collapsed regressor named
    spreads = mp.pose_spreads(*results)
    bars = figure(at, "pose_spread")["data"][0]
    names = ["ground_truth", "unary", "marginal", "regressor", "mean_pose"]
    assert bars["y"] == ["Ground truth"] + [METHOD_LABELS[m] for m in names[1:]]
    assert bars["x"] == pytest.approx([spreads[n] for n in names])
    assert mp.collapsed(spreads) == ["regressor"]
    assert "**Regressor (DeepPose-style)** vary less than" in texts(at.caption)
    # the two other studies: their finding is shown, their charts only once their sections are opened
    assert mp.mean_pose_finding(at_study(results)) in texts(at.caption)
    assert {"Where the two disagree most", MEAN_CHARTS} <= {e.label for e in at.expander}
    heavy = {"mean_pose_by_part", "mean_pose_scatter", "mean_pose_examples", "disagree_panels"}
    assert not heavy & metas(at)
    assert not any("apart (body sizes)" in d.value.columns for d in at.table)
    at.session_state[DISAGREE_OPEN] = at.session_state[MEAN_OPEN] = True
    rerun(at)
    assert figure(at, "mean_pose_by_part") and figure(at, "mean_pose_scatter") and figure(at, "mean_pose_examples")
    # the test images may not be here: then the disagreement is a table
    assert "disagree_panels" in metas(at) or any("apart (body sizes)" in d.value.columns for d in at.table)


MEAN_CHARTS = "Charts: by body part, per test image, and the most unusual poses"
DISAGREE_OPEN, MEAN_OPEN = "open_disagree", "open_mean_charts"      # lab/app/views/compare.py's (it runs on import)


def metas(at) -> set:
    return {f["layout"].get("meta") for f in figures(at)}


def at_study(results):
    from lab.data.cache import load_mini
    train = load_mini()["train"]
    return mp.mean_pose_study(results, mp.mean_pose(train.coords, train.labelled), ("unary", "marginal", "regressor"))


def test_compare_page_says_when_the_results_cannot_be_shown(shipped, tmp_path, monkeypatch):
    shutil.copy(shipped / "pose.safetensors", tmp_path / "pose.safetensors")
    (tmp_path / "pose.eval.json").write_text("{not json")
    use_pretrained(monkeypatch, tmp_path)
    at = go(start(), "compare")
    warnings = texts(at.warning)
    assert "not readable JSON" in warnings and "regressor.eval.json` is missing" in warnings
    assert "need the evaluation files" in texts(at.info)
    assert "No regressor to compare with" in texts(at.info)
    # a JSON computed for other weights is not shown as theirs
    res = json.loads((shipped / "pose.eval.json").read_text())
    (tmp_path / "pose.eval.json").write_text(json.dumps({**res, "sha256": "0" * 64}))
    at = go(start(), "compare")
    assert "computed for a different `pose.safetensors`" in texts(at.warning)
    assert not [s for s in specs(at) if "pck_curves" in s]


# ------------------------------------------------------------------ lessons
def test_lessons_quote_the_evaluation(shipped, monkeypatch):
    use_pretrained(monkeypatch, shipped)
    at = go(start(), "lessons")
    at.query_params["lesson"] = "05_regression.md"
    at.run()
    shown = texts(at.markdown)
    pose = json.loads((shipped / "pose.eval.json").read_text())
    reg = json.loads((shipped / "regressor.eval.json").read_text())
    for value in (evals.pck_of(pose, "marginal"), evals.pck_of(pose, "mean_pose"), evals.pck_of(reg, "regressor")):
        assert f"{100 * value:.1f}%" in shown
    assert "{{" not in shown


def test_self_check_answers_get_immediate_feedback_and_stay_in_the_session():
    """Lesson 1's questions on the page: a wrong answer gets the right one and why, a right
    one says so, with a sentence about the learner's current photo."""
    from lab import selfcheck
    at = go(start(), "lessons")
    assert "Check yourself" in texts(at.subheader)
    q = selfcheck.questions_for("01_heatmaps.md")[0]
    radio = at.radio(key=f"sc_{q.id}")
    assert radio.value is None and not at.success and not at.error          # nothing answered yet
    radio.set_value((q.right() + 1) % len(q.options))
    rerun(at)
    assert any(q.options[q.right()] in e.value for e in at.error)
    at.radio(key=f"sc_{q.id}").set_value(q.right())
    rerun(at)
    assert any(s.value.startswith("Right.") for s in at.success)
    assert any(i.value.startswith("On your current photo") for i in at.info)
    assert at.session_state[f"sc_{q.id}"] == q.right()


def test_every_lesson_renders_with_its_questions_and_no_placeholder():
    from lab import selfcheck
    at = go(start(), "lessons")
    for f in sorted(p.name for p in common.LESSONS.glob("0*.md")):
        at.query_params["lesson"] = f
        rerun(at)
        assert "Check yourself" in texts(at.subheader), f
        assert "{{" not in texts(at.markdown), f
        assert len([r for r in at.radio if str(r.key).startswith("sc_")]) + \
            len([n for n in at.number_input if str(n.key).startswith("sc_")]) == len(selfcheck.questions_for(f))


def test_start_here_lists_every_page_in_order():
    at = go(start(), "start")
    assert at.title[0].value == "Start here"
    assert "The order to go through it" in texts(at.subheader)


def test_a_link_keeps_a_retrained_model_while_it_exists(tmp_path, monkeypatch):
    """A page's link names a retrained run's model (model=run-<id>); opened in a fresh session
    it picks that model; once the run is deleted, the link says so and shows the shipped one."""
    from app_util import MAIN, TIMEOUT
    from streamlit.testing.v1 import AppTest
    run_id = "20261207-000000-abcdef"
    run = tmp_path / run_id
    run.mkdir()
    shutil.copy(POSE_WEIGHTS, run / "pose.safetensors")
    (run / "status.json").write_text(json.dumps({"id": run_id, "label": "my run", "state": "done"}))
    monkeypatch.setattr(common, "RUNS_DIR", tmp_path)
    label = "Retrained: my run"
    assert label in common.model_choices()

    def fresh(**q):
        at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
        for k, v in q.items():
            at.query_params[k] = v
        at.switch_page("views/detector.py")
        return rerun(at)
    at = fresh(model=f"run-{run_id}", photo="lsp_im1007")
    assert at.session_state[common.CHOICE] == label
    assert at.query_params["model"] == f"run-{run_id}"                 # the page's own link keeps it
    shutil.rmtree(run)
    at = fresh(model=f"run-{run_id}", photo="lsp_im1007")
    assert at.session_state[common.CHOICE] == common.SHIPPED
    assert any("no longer on this server" in w.value for w in at.sidebar.warning)


# ------------------------------------------------------------------ retrain
def wait_terminal(runs_dir: Path, run_id: str, timeout: float = 60.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = browser_runs.read_status(runs_dir / run_id)
        if st and st["state"] in browser_runs.TERMINAL:
            browser_runs.get_run(run_id).join(10)
            return st
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish: {browser_runs.read_status(runs_dir / run_id)}")


@pytest.fixture
def one_at_a_time():
    """K = 1 (the default a server starts with), restored afterwards."""
    old = (browser_runs.LIMITS.max_running, browser_runs.LIMITS.max_queued)
    browser_runs.configure(max_running=1, max_queued=4)
    yield
    browser_runs.configure(*old)


def test_retrain_page_trains_a_tiny_run(tmp_path, monkeypatch, one_at_a_time):
    runs = tmp_path / "runs"
    monkeypatch.setenv("POSE_LAB_RUNS", str(runs))
    monkeypatch.setattr(common, "RUNS_DIR", runs)               # common read the variable at import
    at = go(start(), "retrain")
    assert "No runs yet" in texts(at.info)

    at.radio(key="rt_source").set_value("cache").run()          # a bad cache path is refused clearly
    at.text_input(key="rt_cache").input(str(tmp_path / "nope.safetensors")).run()
    assert "cache not found" in texts(at.error) and not at.exception
    assert "rt_start" not in [b.key for b in at.button]         # nothing to start on

    at.radio(key="rt_source").set_value("mini").run()
    at.slider(key="rt_epochs").set_value(1)
    at.toggle(key="rt_spatial").set_value(False)
    at.slider(key="rt_train_size").set_value(16)
    at.text_input(key="rt_label").input("tiny page run")
    at.button(key="rt_start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    (run_dir,) = list(runs.iterdir())
    shown = texts(at.markdown)
    assert "tiny page run" in shown
    assert at.get("progress") or "badge[done]" in shown         # progress while it trains

    st = wait_terminal(runs, run_dir.name)
    assert st["state"] == "done", st["error"]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Retrained: tiny page run" in at.sidebar.selectbox[0].options
    assert ":green-badge[done]" in texts(at.markdown)
    tables = [t.value for t in at.table]                        # static tables: no data-grid bundle
    (listing,) = [t for t in tables if "progress" in t.columns]  # the runs list
    row = listing[listing["run"] == "tiny page run"].iloc[0]
    assert row["state"] == "done" and float(row["progress"]) == pytest.approx(100.0)
    (versus,) = [t for t in tables if "Retrained: tiny page run" in t.index]   # run vs shipped
    assert "Shipped (pretrained/)" in versus.index
    assert not at.dataframe

    # a second, longer run: Cancel keeps what it has
    at.slider(key="rt_epochs").set_value(30)
    at.text_input(key="rt_label").input("cancel me")
    at.button(key="rt_start").click().run()
    (second,) = [d for d in runs.iterdir() if d != run_dir]
    deadline = time.time() + 60
    while not (second / browser_runs.POSE).is_file():
        assert time.time() < deadline, browser_runs.read_status(second)
        time.sleep(0.1)
    at.run()

    # K = 1: a third run waits in the queue, says so, and Cancel takes it out at once
    at.slider(key="rt_epochs").set_value(1)
    at.text_input(key="rt_label").input("**queued** [x](http://y)")
    assert [b.label for b in at.button if b.key == "rt_start"] == ["Queue this run"]
    at.button(key="rt_start").click().run()
    (third,) = [d for d in runs.iterdir() if d not in (run_dir, second)]
    assert browser_runs.status_of(runs, third.name)["queue_position"] == 1
    assert "number 1 in the queue" in texts(at.info)
    assert "\\*\\*queued\\*\\* \\[x\\]\\(http\\:" in texts(at.markdown)    # shown literally
    at.button(key=f"rt_cancel_{third.name}").click().run()
    assert wait_terminal(runs, third.name, 10)["state"] == "cancelled"

    at.query_params["run"] = second.name
    at.session_state["rt_watch"] = second.name
    at.run()
    at.button(key=f"rt_cancel_{second.name}").click().run()
    st = wait_terminal(runs, second.name)
    assert st["state"] == "cancelled"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Retrained: cancel me" in at.sidebar.selectbox[0].options
    assert "on disk" in texts(at.caption)

    # a finished run can be deleted from the page; the sidebar forgets it
    at.button(key=f"rt_delete_{second.name}").click().run()
    assert not second.exists() and not at.exception
    at.run()
    assert "Retrained: cancel me" not in at.sidebar.selectbox[0].options
