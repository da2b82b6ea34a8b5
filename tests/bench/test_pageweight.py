"""The page-weight benchmark's figures (the benchmark itself: `pose-lab classroom --page-weight`)."""
import pytest

from lab.bench.pageweight import compare_table, compared, parse_metrics, step_row, table
from lab.errors import LabError

# Chromium's answer to CDP Performance.getMetrics (timeDomain threadTicks), recorded on this
# machine after a page that adds 3e7 numbers in a script (metrics not read here left out).
RECORDED = {"metrics": [
    {"name": "Timestamp", "value": 2531.379061}, {"name": "Documents", "value": 2}, {"name": "Nodes", "value": 15},
    {"name": "LayoutCount", "value": 1}, {"name": "LayoutDuration", "value": 0.001399},
    {"name": "RecalcStyleDuration", "value": 0.000279}, {"name": "ScriptDuration", "value": 0.475529},
    {"name": "V8CompileDuration", "value": 7.3e-05}, {"name": "TaskDuration", "value": 0.484578},
    {"name": "TaskOtherDuration", "value": 0.003279}, {"name": "ThreadTime", "value": 0.485971},
    {"name": "ProcessTime", "value": 0.55}, {"name": "JSHeapUsedSize", "value": 1211672}]}
ZERO = {"cpu_s": 0.0, "task_s": 0.0, "script_s": 0.0, "layout_s": 0.0, "style_s": 0.0}


def test_metrics_are_read_by_name():
    m = parse_metrics(RECORDED)
    assert m == {"cpu_s": 0.55, "task_s": 0.484578, "script_s": 0.475529, "layout_s": 0.001399,
                 "style_s": 0.000279}
    assert parse_metrics({"metrics": []})["cpu_s"] == 0.0                 # absent: 0, not an error
    with pytest.raises(LabError, match="Performance.getMetrics"):
        parse_metrics({"result": "something else"})


def test_a_step_is_the_difference_and_the_table_names_the_heaviest_page():
    # two steps as `pose-lab classroom --page-weight` recorded them on this machine (load average 7.7):
    # their differences, bytes and figures are the recorded ones; the counters' start is arbitrary
    before = {"cpu_s": 10.0, "task_s": 6.0, "script_s": 3.0, "layout_s": 0.5, "style_s": 0.4}
    after_detector = {"cpu_s": 13.1, "task_s": 8.45, "script_s": 3.53, "layout_s": 0.59, "style_s": 0.67}
    detector = step_row("open Part detector", before, after_detector, 763_085, {"figures": 11, "traces": 76}, 3.7)
    assert detector["cpu_s"] == pytest.approx(3.1) and detector["task_s"] == pytest.approx(2.45)
    assert detector["script_s"] == pytest.approx(0.53) and detector["received_kb"] == pytest.approx(745.2)
    assert (detector["figures"], detector["traces"]) == (11, 76)
    retrain = step_row("open Retrain", after_detector, {**after_detector, "cpu_s": 13.4, "task_s": 8.65}, 19_660,
                       {"figures": 0, "traces": 0}, 0.4)
    assert retrain["cpu_s"] == pytest.approx(0.3) and retrain["figures"] == 0
    text = table([detector, retrain])
    assert "open Part detector" in text and "745.2" in text
    assert "heaviest page to open: Part detector, 3.10 CPU-s, 11 figures / 76 traces" in text


def test_a_new_renderer_is_counted_from_its_start():
    row = step_row("load Lessons (its address)", {**ZERO, "cpu_s": 20.0}, {**ZERO, "cpu_s": 1.2}, 0, {}, 1.0)
    assert row["cpu_s"] == pytest.approx(1.2) and "new renderer" in row["note"]


def test_a_loaded_page_counts_its_new_documents_main_thread_from_zero():
    # loading a page by its address: ProcessTime goes on, the main-thread counters restart with the document
    before = {"cpu_s": 30.0, "task_s": 11.0, "script_s": 4.0, "layout_s": 0.4, "style_s": 0.9}
    after = {"cpu_s": 33.55, "task_s": 1.75, "script_s": 0.31, "layout_s": 0.06, "style_s": 0.2}
    row = step_row("load Part detector (address)", before, after, 0, {}, 4.9, new_document=True)
    assert row["cpu_s"] == pytest.approx(3.55) and row["task_s"] == pytest.approx(1.75)
    assert "note" not in row


def test_before_and_after_are_compared_step_by_step_with_medians_and_a_ratio():
    # `--before REF --rounds-before 2`: the same walk on both servers, twice each; a step
    # name may come twice in a walk (Try it opened, then clicked in the sidebar)
    def walk(cpu):
        return [step_row(name, ZERO, {**ZERO, "cpu_s": c}, 1024, {"figures": f, "traces": 3 * f}, 1.0)
                for name, c, f in zip(("open Try it", "open Try it", "switch bank 1 off (Part detector)"), cpu,
                                      (3, 3, 7))]
    before = [walk((4.0, 0.4, 1.4)), walk((4.2, 0.6, 1.2))]
    after = [walk((3.8, 0.3, 0.4)), walk((4.0, 0.5, 0.6))]
    rows = compared(before, after)
    assert [r["step"] for r in rows] == ["open Try it", "open Try it", "switch bank 1 off (Part detector)"]
    assert rows[0]["cpu_s_before"] == pytest.approx(4.1) and rows[0]["cpu_s_after"] == pytest.approx(3.9)
    assert rows[1]["cpu_s_before"] == pytest.approx(0.5)                 # step 2, not step 1's name-mates
    assert rows[2]["ratio"] == pytest.approx(0.38) and rows[2]["figures_after"] == 7
    text = compare_table(rows)
    lines = text.splitlines()
    assert "open Try it" in lines[1] and lines[1].count("*") == 1        # 3.90 > 1.5 a page
    assert "*" not in lines[3]                                          # 0.50 ≤ 0.5 an interaction
    assert "target" in lines[-1]
