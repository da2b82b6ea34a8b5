"""The Heatmaps vs regression and Retrain pages, through Streamlit's AppTest.

compare: renders, its PCK-curve figure holds exactly the shipped JSONs' curves, and a
missing or damaged JSON gives a message instead of a traceback.
retrain: a bad cache path is refused clearly; a tiny run started from the page shows
progress, finishes, and appears in the sidebar's model choice; Cancel keeps the run's
checkpoint; with K = 1 a second run waits in the queue with its position and Cancel takes
it out; a run label typed with Markdown is shown literally; finished runs show their disk
use and can be deleted. Runs go to a temporary POSE_LAB_RUNS folder.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from lab.app import common
from lab.app import jobs as browser
from lab.infer import PRETRAINED
from lab.names import METHOD_LABELS

MAIN = str(Path(__file__).resolve().parents[2] / "lab" / "app" / "main.py")
EVALS = (PRETRAINED / "pose.eval.json", PRETRAINED / "regressor.eval.json")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)            # background training shares two cores with the test
    yield
    torch.set_num_threads(n)


def open_page(view: str) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.run()
    at.switch_page(f"views/{view}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def figures(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


# ------------------------------------------------------------------ compare
@pytest.mark.skipif(not all(p.is_file() for p in EVALS), reason="needs pretrained/*.eval.json")
def test_compare_page_draws_the_shipped_curves():
    at = open_page("compare")
    assert at.title[0].value == "Heatmaps vs regression"
    want = {}
    for path in EVALS:
        for name, m in json.loads(path.read_text())["methods"].items():
            want[METHOD_LABELS[name]] = m["curve"]
    curves = [f for f in figures(at) if {t.get("name") for t in f["data"]} == set(want)]
    assert len(curves) == 1, "one figure holds the three PCK curves"
    for trace in curves[0]["data"]:
        c = want[trace["name"]]
        assert trace["x"] == pytest.approx(c["alpha"])
        assert trace["y"] == pytest.approx([100 * v for v in c["mean"]])
    assert len(at.dataframe) >= 1                               # the PCK@0.2 table
    assert "Where the two disagree most" in texts(at.subheader)
    assert "regression to the mean pose" in texts(at.subheader)


def test_compare_page_says_when_the_results_are_missing(tmp_path, monkeypatch):
    (tmp_path / "pose.eval.json").write_text("{not json")
    monkeypatch.setattr("lab.infer.PRETRAINED", tmp_path)       # the page reads its JSONs from here
    at = open_page("compare")
    warnings = texts(at.warning)
    assert "not readable JSON" in warnings and "regressor.eval.json is missing" in warnings
    assert "need both evaluation files" in texts(at.info)


# ------------------------------------------------------------------ retrain
def wait_terminal(runs_dir: Path, run_id: str, timeout: float = 60.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = browser.read_status(runs_dir / run_id)
        if st and st["state"] in browser.TERMINAL:
            browser.get_run(run_id).join(10)
            return st
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish: {browser.read_status(runs_dir / run_id)}")


@pytest.fixture
def one_at_a_time():
    """K = 1 (the default a server starts with), restored afterwards."""
    old = (browser.LIMITS.max_running, browser.LIMITS.max_queued)
    browser.configure(max_running=1, max_queued=4)
    yield
    browser.configure(*old)


def test_retrain_page_trains_a_tiny_run(tmp_path, monkeypatch, one_at_a_time):
    runs = tmp_path / "runs"
    monkeypatch.setenv("POSE_LAB_RUNS", str(runs))
    monkeypatch.setattr(common, "RUNS_DIR", runs)               # common read the variable at import
    at = open_page("retrain")
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
    assert len(at.dataframe) >= 2                               # the runs list and run vs shipped

    # a second, longer run: Cancel keeps what it has
    at.slider(key="rt_epochs").set_value(30)
    at.text_input(key="rt_label").input("cancel me")
    at.button(key="rt_start").click().run()
    (second,) = [d for d in runs.iterdir() if d != run_dir]
    deadline = time.time() + 60
    while not (second / browser.POSE).is_file():
        assert time.time() < deadline, browser.read_status(second)
        time.sleep(0.1)
    at.run()

    # K = 1: a third run waits in the queue, says so, and Cancel takes it out at once
    at.slider(key="rt_epochs").set_value(1)
    at.text_input(key="rt_label").input("**queued** [x](http://y)")
    assert [b.label for b in at.button if b.key == "rt_start"] == ["Queue this run"]
    at.button(key="rt_start").click().run()
    (third,) = [d for d in runs.iterdir() if d not in (run_dir, second)]
    assert browser.status_of(runs, third.name)["queue_position"] == 1
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
