"""deploy/haproxy.cfg as README shows it (default suite, fast; the replica test itself is
tests/deploy/test_replicas.py, marker `replicas`)."""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "haproxy.cfg"


def test_readme_shows_the_tested_file_verbatim():
    cfg = CONFIG.read_text()
    assert cfg[cfg.index("global"):] in (ROOT / "README.md").read_text()


def test_every_replica_is_pinned_by_the_balancers_cookie_and_health_checked():
    cfg = CONFIG.read_text()
    assert re.search(r"^\s*cookie POSELAB_REPLICA insert indirect nocache", cfg, re.M)
    servers = re.findall(r"^\s*server (\S+) \S+ check cookie (\S+)", cfg, re.M)
    assert len(servers) >= 2 and all(name == value for name, value in servers)
    assert "option httpchk GET /_stcore/health" in cfg and "timeout tunnel" in cfg


@pytest.mark.skipif(shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").is_file(),
                    reason="needs Debian's haproxy")
def test_haproxy_accepts_the_file():
    exe = shutil.which("haproxy") or "/usr/sbin/haproxy"
    r = subprocess.run([exe, "-c", "-f", str(CONFIG)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
