"""Several `pose-lab app` replicas behind HAProxy, as README's "A class larger than one
machine" deploys them: deploy/haproxy.cfg itself (only its ports rewritten), two replicas
sharing one runs directory, two learners in Chromium.

Marker `replicas` (opt-in, like `wheel`; .ci/run runs it once, installing Debian's haproxy
if it is missing). Each learner (its own browser context, told apart by its User-Agent,
which HAProxy's log captures) opens Try it, uploads a photo of its own, switches to Part
detector and back (the classroom benchmark's walk, lab/bench/learners.py). The test checks:

  - both replicas served sessions (each learner's websocket went to a different one);
  - every request of a learner, the websocket and the upload included, went to one replica;
  - nobody saw an error (no exception, no error box, no timeout; no 5xx at the balancer);
  - the balancer gzips the app's script bundles, which Streamlit leaves to a proxy to compress.
"""
from __future__ import annotations

import asyncio
import gzip
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from lab.bench.browser import UNTHROTTLED, chromium_missing, free_port, launch, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
# the deployment's own file; POSE_LAB_HAPROXY_CONFIG tests another (a teacher's edited copy)
CONFIG = Path(os.environ.get("POSE_LAB_HAPROXY_CONFIG") or ROOT / "deploy" / "haproxy.cfg")
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
TIMEOUT = 240.0
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 {}"
# the log-format of deploy/haproxy.cfg: "%ci:%cp [%tr] %ft %b/%s %ST %B %Tt %hr %{+Q}r"
LOG_LINE = re.compile(r'^\S+ \[[^\]]*\] \S+ (?P<backend>[^/\s]+)/(?P<server>\S+) (?P<status>-?\d+) \S+ \S+ '
                      r'\{(?P<ua>[^}]*)\} "(?P<request>[^"]*)"')

pytestmark = [
    pytest.mark.replicas,
    pytest.mark.skipif(chromium_missing() is not None, reason=str(chromium_missing())),
    pytest.mark.skipif(not Path(HAPROXY).is_file(), reason="needs Debian's haproxy (apt-get install haproxy)"),
]


def balancer_config(lb_port: int, replica_ports: list[int]) -> str:
    """deploy/haproxy.cfg with its listening port and its replicas' ports rewritten."""
    text = CONFIG.read_text()
    text, n = re.subn(r"^(\s*bind )\S+", rf"\g<1>127.0.0.1:{lb_port}", text, flags=re.M)
    assert n == 1, "deploy/haproxy.cfg must have one bind line"
    servers = re.findall(r"^\s*server (\S+) 127\.0\.0\.1:\d+", text, flags=re.M)
    assert len(servers) == len(replica_ports), servers
    for name, port in zip(servers, replica_ports):
        text = re.sub(rf"^(\s*server {name} 127\.0\.0\.1:)\d+", rf"\g<1>{port}", text, flags=re.M)
    return text


def parse_log(text: str) -> list[dict]:
    return [m.groupdict() for m in map(LOG_LINE.match, text.splitlines()) if m]


async def two_learners(url: str, photos: list[Path]) -> list[dict]:
    """Learner a opens the app; once its page is open, learner b arrives; both walk on."""
    from playwright.async_api import async_playwright

    from lab.bench.learners import learner
    async with async_playwright() as pw:
        browser = await launch(pw, UNTHROTTLED)
        try:
            go = asyncio.Event()
            go.set()
            opened = asyncio.Event()
            a = asyncio.create_task(learner(browser, url, photos[0], go, TIMEOUT,
                                            context_args={"user_agent": UA.format("learner-a")}, opened=opened))
            waiter = asyncio.create_task(opened.wait())
            await asyncio.wait([a, waiter], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            b = asyncio.create_task(learner(browser, url, photos[1], go, TIMEOUT,
                                            context_args={"user_agent": UA.format("learner-b")}))
            return list(await asyncio.gather(a, b))
        finally:
            await browser.close()


def compressed_bundle(balancer: str, replica: str) -> dict:
    """The app's main script through the balancer (gzip accepted) and straight from a replica:
    the balancer's is gzip-encoded, smaller, and the same script once decompressed."""
    page = urllib.request.urlopen(replica + "/", timeout=30).read().decode()
    src = re.search(r'<script[^>]+src="\.?/?(static/js/[^"]+\.js)"', page)
    assert src, f"no script bundle in the app's page: {page[:500]}"
    plain = urllib.request.urlopen(f"{replica}/{src.group(1)}", timeout=30).read()
    req = urllib.request.Request(f"{balancer}/{src.group(1)}", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=30) as r:
        encoding, body = r.headers.get("Content-Encoding"), r.read()
    assert encoding == "gzip", f"the balancer sent {src.group(1)} with Content-Encoding {encoding!r}"
    assert gzip.decompress(body) == plain and len(body) < len(plain) / 2
    return {"script": src.group(1), "kb": round(len(plain) / 1024), "gzip_kb": round(len(body) / 1024)}


def test_two_replicas_behind_haproxy_keep_each_learner_on_one(tmp_path, record_property):
    pytest.importorskip("playwright.async_api")
    from lab.bench.learners import STEPS, learner_photos
    from lab.bench.server import Server
    t0 = time.perf_counter()
    runs = tmp_path / "runs"                                  # one runs directory for every replica
    replicas = []
    proxy = None
    try:
        for i in range(2):
            folder = tmp_path / f"replica{i + 1}"
            folder.mkdir()
            replicas.append(Server(folder, ["--runs", str(runs), "--max-trainings", "1"]))
        for r in replicas:
            r.wait_healthy()
        lb = free_port()
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(balancer_config(lb, [r.port for r in replicas]))
        check = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        log_path = tmp_path / "haproxy.log"
        log = open(log_path, "wb")
        proxy = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{lb}"
        wait_healthy(url, proxy, 30, lambda: log_path.read_text(errors="replace"), what="haproxy")
        record_property("start_s", round(time.perf_counter() - t0, 1))

        results = asyncio.run(two_learners(url, learner_photos(2, tmp_path)))
        time.sleep(1.0)                                       # the closed websockets' lines are written
        bundle = compressed_bundle(url, f"http://127.0.0.1:{replicas[0].port}")
        record_property("bundle_kb", bundle)
    finally:
        if proxy is not None and proxy.poll() is None:
            proxy.send_signal(signal.SIGTERM)
            proxy.wait(20)
        for r in replicas:
            r.stop()
    log.close()
    record_property("total_s", round(time.perf_counter() - t0, 1))

    # nobody saw an error, and every step was done
    for who, r in zip("ab", results):
        assert not r["problems"], (who, r["problems"])
        assert set(STEPS) <= set(r["times"]), (who, r["times"])
    record_property("steps_s", {who: {s: round(t, 2) for s, t in r["times"].items()} for who, r in zip("ab", results)})

    lines = parse_log(log_path.read_text(errors="replace"))
    served = {}
    for who in ("learner-a", "learner-b"):
        mine = [ln for ln in lines if ln["ua"].endswith(who)]
        assert mine, f"no request of {who} in the balancer's log:\n{log_path.read_text()[-3000:]}"
        servers = {ln["server"] for ln in mine}
        assert len(servers) == 1, f"{who}'s requests went to {sorted(servers)}: " + "\n".join(
            f"{ln['server']} {ln['status']} {ln['request']}" for ln in mine)
        paths = [ln["request"] for ln in mine]
        assert any("/_stcore/stream" in p for p in paths), f"{who}: no websocket in the log: {paths}"
        assert any(p.startswith("PUT /_stcore/upload_file/") for p in paths), f"{who}: no upload in the log: {paths}"
        assert not [ln for ln in mine if ln["status"].startswith("5") or ln["status"] == "-1"], mine
        served[who] = servers.pop()
    assert served["learner-a"] != served["learner-b"], f"both learners were served by {served['learner-a']}"
    assert set(served.values()) == {"r1", "r2"}
    record_property("served", served)
