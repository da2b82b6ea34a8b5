"""Where the lab's shipped files are: installed from the wheel, installed editable, or run
from a checkout.

The weights (`pretrained/`) and the lessons (`lessons/`) are top-level folders of the
repository. The wheel carries them inside the package, as `lab/pretrained/` and
`lab/lessons/` (pyproject.toml maps the folders onto those packages), next to
`lab/assets/` (mini set, ImageNet trunk, sample photos). Everything is found through
`importlib.resources.files("lab")` first; when the package lives in a checkout (no
`lab/pretrained/` beside it), the checkout's top-level folders are used.

Names every module should use (paths; they need not exist):

  PRETRAINED   folder of the shipped weights, model cards and evaluation JSONs
  LESSONS      folder of the lessons (one Markdown file per stage, README.md the index)
  ASSETS       lab/assets: mini.safetensors, lite0_trunk.safetensors, samples/
  SAMPLES      lab/assets/samples: the Try it page's photos
  MEDIAPIPE    lab/assets/mediapipe: the person detector's two .tflite models and their licence
  CHECKOUT     the repository root when running from a checkout (or an editable install), else None
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["PRETRAINED", "LESSONS", "ASSETS", "SAMPLES", "MEDIAPIPE", "CHECKOUT", "package_folder"]


def _package_root() -> Path:
    # The lab package is always a plain folder (pip installs wheels unpacked), so this is a Path.
    root = resources.files("lab")
    return Path(str(root))


def _checkout_root(package: Path) -> Path | None:
    """The repository root if `package` (the lab folder) sits in a checkout."""
    repo = package.parent
    if (repo / "pyproject.toml").is_file() and (repo / "lab" / "__init__.py").is_file():
        return repo
    return None


PACKAGE = _package_root()
CHECKOUT = _checkout_root(PACKAGE)


def package_folder(name: str) -> Path:
    """lab/<name> inside the installed package, else <checkout>/<name>."""
    inside = PACKAGE / name
    if inside.is_dir() or CHECKOUT is None:
        return inside
    return CHECKOUT / name


PRETRAINED = package_folder("pretrained")
LESSONS = package_folder("lessons")
ASSETS = PACKAGE / "assets"
SAMPLES = ASSETS / "samples"
MEDIAPIPE = ASSETS / "mediapipe"
