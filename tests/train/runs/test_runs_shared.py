"""Browser runs of several servers sharing one runs directory (replicas behind a load
balancer): one queue over the folder, K over the folder, every server sees the others'
runs as alive (not "interrupted"), cancel and the delete guard work across servers.

Another server is either a real second process (`python -c` starting a run with
lab.train.runs, as a replica would) or a status.json written as another live process or
another host would write it.
"""
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from lab.errors import LabError
from lab.train import runs
from lab.train.runs import start_run

TIMEOUT = 120


@pytest.fixture(autouse=True)
def _one_at_a_time(limits):
    limits(max_running=1, max_queued=8)


def until(predicate, what: str, timeout: float = TIMEOUT):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def foreign_status(runs_dir, run_id: str, state: str, pid: int, created: float, host: str | None = None,
                   updated: float | None = None):
    """status.json of a run another server owns."""
    d = runs_dir / run_id
    d.mkdir(parents=True)
    st = {"id": run_id, "label": run_id, "state": state, "error": None, "pid": pid, "created": created,
          "updated": time.time() if updated is None else updated, "progress": {}, "history": [], "steps": []}
    if host:
        st["host"] = host
    (d / "status.json").write_text(json.dumps(st))
    return d


def test_a_run_waits_while_another_servers_run_trains_and_goes_when_that_server_is_gone(tmp_path, tiny):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])     # a live replica
    try:
        foreign_status(tmp_path, "20260101-000000-aaaaaa", "running", other.pid, created=1.0)
        mine = start_run(tiny(epochs=1, label="mine"), tmp_path)
        time.sleep(1.5)
        assert mine.state == "queued" and mine.snapshot()["queue_position"] == 1      # K = 1 over the folder
        assert runs.queue_counts(tmp_path) == {"running": 1, "waiting": 1, "max_running": 1, "max_queued": 8}
        seen = {r["id"]: r["state"] for r in runs.list_runs(tmp_path)}
        assert seen["20260101-000000-aaaaaa"] == "running"                           # not "interrupted"
        with pytest.raises(LabError, match="another server"):
            runs.delete_run(tmp_path, "20260101-000000-aaaaaa")
    finally:
        other.kill()
        other.wait()
    # that server stopped: its run reads as interrupted and the line moves on
    until(lambda: mine.state != "queued", "the queue to move on once the other server is gone")
    mine.join(TIMEOUT)
    assert json.loads((mine.path / "status.json").read_text())["state"] == "done"
    assert runs.status_of(tmp_path, "20260101-000000-aaaaaa")["state"] == "interrupted"


def test_first_come_over_every_server_and_stale_runs_of_other_hosts_do_not_count(tmp_path, tiny):
    now = time.time()
    # another host's run that waits (created first, written recently): ahead of ours
    foreign_status(tmp_path, "20260101-000000-bbbbbb", "queued", 4242, created=now - 30, host="replica-b")
    # another host's run that stopped writing long ago: that server is gone, it does not count
    foreign_status(tmp_path, "20260101-000000-cccccc", "running", 4243, created=now - 3600, host="replica-c",
                   updated=now - 2 * runs.STALE_S)
    foreign_status(tmp_path, "20260101-000000-dddddd", "running", 4244, created=now - 60, host="replica-b")
    mine = start_run(tiny(epochs=1, label="mine"), tmp_path)
    time.sleep(1.0)
    assert mine.state == "queued" and mine.snapshot()["queue_position"] == 2
    listed = {r["id"]: r for r in runs.list_runs(tmp_path)}
    assert listed["20260101-000000-bbbbbb"]["queue_position"] == 1
    assert listed["20260101-000000-cccccc"]["state"] == "interrupted"
    assert runs.queue_counts(tmp_path)["running"] == 1 and runs.queue_counts(tmp_path)["waiting"] == 2
    # cancel from this server: the other server's waiting run gets the request file
    assert runs.cancel_run("20260101-000000-bbbbbb", tmp_path)
    assert (tmp_path / "20260101-000000-bbbbbb" / runs.CANCEL).is_file()
    assert runs.cancel_run(mine.id, tmp_path)
    mine.join(TIMEOUT)
    assert json.loads((mine.path / "status.json").read_text())["state"] == "cancelled"
    assert not runs.cancel_run("20260101-000000-cccccc", tmp_path)                  # not active: nothing to do


REPLICA = textwrap.dedent("""
    import json, sys, time
    from lab.train import runs
    runs.configure(max_running=1, max_queued=8)
    run = runs.start_run(runs.RunSettings(cache="mini", epochs=40, train_size=48, val_size=16, batch_size=16,
                                          spatial=False, label="replica"), sys.argv[1])
    print(run.id, flush=True)
    run.join(300)
    print(json.dumps(run.snapshot()["state"]), flush=True)
""")


def test_two_processes_share_one_queue_and_cancel_across_them(tmp_path, tiny):
    """A real second server process trains first; this one's run waits for it, sees it
    training, cancels it from here, then trains."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    other = subprocess.Popen([sys.executable, "-c", REPLICA, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                             env=env)
    try:
        other_id = other.stdout.readline().strip()
        assert other_id, "the other process started no run"
        until(lambda: (runs.status_of(tmp_path, other_id) or {}).get("state") == "running",
              "the other process's run to train")
        mine = start_run(tiny(epochs=1, label="mine"), tmp_path)
        time.sleep(1.5)
        assert mine.state == "queued" and mine.snapshot()["queue_position"] == 1
        assert runs.queue_counts(tmp_path)["running"] == 1
        assert runs.cancel_run(other_id, tmp_path)                                   # from this server
        assert json.loads(other.stdout.readline()) == "cancelled"
        assert other.wait(60) == 0
        mine.join(TIMEOUT)
        st = json.loads((mine.path / "status.json").read_text())
        assert st["state"] == "done", st.get("error")
        assert runs.status_of(tmp_path, other_id)["state"] == "cancelled"
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()
