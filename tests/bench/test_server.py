"""The classroom benchmark's server side (lab/bench/server.py): its CPU, read from /proc."""


def test_server_cpu_is_read_from_proc_with_the_children(tmp_path):
    import os
    import subprocess
    import sys

    from lab.bench.server import tree_cpu_s
    # a parent that starts a busy child: the child's CPU counts while it runs
    code = ("import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', "
            "'import time\\nt = time.process_time()\\nwhile time.process_time() - t < 0.6: pass\\ntime.sleep(30)']);"
            " time.sleep(30)")
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)   # killed as a group
    try:
        import time
        deadline = time.monotonic() + 60
        while (tree_cpu_s(proc.pid) or 0) < 0.6:
            assert time.monotonic() < deadline, "the child's CPU never showed"
            time.sleep(0.2)
        own = sum(int(v) for v in open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()[11:13])
        assert own / os.sysconf("SC_CLK_TCK") < 0.5          # the parent itself idles: the rest is its child's
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
    assert tree_cpu_s(proc.pid) is None
