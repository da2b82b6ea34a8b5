"""`pose-lab app` hands over to Streamlit with no prompt and no statistics, and opens a browser
only with a display; its settings are checked before anything starts. Progress is silent in
the library, plain periodic lines off a terminal, and a bar on one."""
from __future__ import annotations

import io

import pytest

from lab import progress
from lab.cli import main, parser
from lab.commands import app_command


def argv_of(*flags, env=None, monkeypatch=None):
    for k in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(k, raising=False)
    for k, v in (env or {}).items():
        monkeypatch.setenv(k, v)
    a = parser().parse_args(["app", *flags])
    return app_command(a)


def opt(argv, name):
    return argv[argv.index(name) + 1]


def test_app_serves_without_prompts_or_statistics(monkeypatch, tmp_path):
    argv, env, url, browser = argv_of("--port", "8600", "--runs", str(tmp_path), monkeypatch=monkeypatch)
    assert argv[1:4] == ["-m", "streamlit", "run"] and argv[4].endswith("lab/app/main.py")
    assert opt(argv, "--server.headless") == "true" and not browser          # no display here
    assert opt(argv, "--server.showEmailPrompt") == "false"
    assert opt(argv, "--browser.gatherUsageStats") == "false"
    assert opt(argv, "--server.port") == "8600" and url == "http://localhost:8600"
    assert env["POSE_LAB_RUNS"] == str(tmp_path.resolve())
    assert int(env["POSE_LAB_WORKERS"]) >= 1 and int(env["POSE_LAB_TORCH_THREADS"]) >= 1
    assert opt(argv, "--server.maxUploadSize") == "10"


def test_app_opens_a_browser_only_with_a_display(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":0")
    argv, _, _, browser = app_command(parser().parse_args(["app"]))
    assert opt(argv, "--server.headless") == "false" and browser
    argv, _, _, browser = app_command(parser().parse_args(["app", "--headless"]))
    assert opt(argv, "--server.headless") == "true" and not browser


def test_bad_settings_are_refused_before_anything_starts(monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(SystemExit) as e:
        main(["app", "--workers", "0", "--dry-run"])
    assert e.value.code == 2 and "POSE_LAB_WORKERS=0" in capsys.readouterr().err
    monkeypatch.setenv("POSE_LAB_UPLOAD_MB", "lots")
    with pytest.raises(SystemExit):
        main(["app", "--dry-run"])
    assert "not a whole number" in capsys.readouterr().err


def test_progress_is_silent_until_enabled_then_plain_lines_off_a_terminal(monkeypatch, capsys):
    progress.disable()
    assert list(progress.track(range(3), "x")) == [0, 1, 2]
    assert capsys.readouterr().err == ""
    try:
        assert progress.enable(stream=io.StringIO(), every=0) == "lines"     # not a terminal
        with progress.Progress(4, "eval crops test", unit="images") as p:
            for _ in range(4):
                p.update(1)
        err = capsys.readouterr().err.splitlines()
        assert err and err[-1].startswith("eval crops test: 4/4 (100%)") and "images/s" in err[-1]
        assert any("ETA" in line for line in err[:-1])
        monkeypatch.setenv("POSE_LAB_PROGRESS", "off")
        assert progress.enable() is None
    finally:
        progress.disable()
