"""What every page shares: model choice, the current photo, cached loading,
lesson links and friendly errors. Pages call the library; no model math here."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import streamlit as st

from lab.errors import LabError
from lab.infer import POSE_WEIGHTS, REGRESSOR_WEIGHTS, PoseLab

from lab.app.settings import SETTINGS  # noqa: E402
from lab.resources import ASSETS, CHECKOUT, LESSONS  # noqa: E402,F401  (found through the package)

ROOT = CHECKOUT or Path.cwd()       # relative paths typed in the app start here
RUNS_DIR = SETTINGS.runs_dir
SHIPPED = "Shipped (pretrained/)"

# (view module in lab/app/views, title, url path, lesson file)
PAGES = [
    ("try_it", "Try it", "try-it"),
    ("detector", "Part detector", "detector"),
    ("priors", "Spatial priors", "priors"),
    ("messages", "Message passing", "messages"),
    ("compare", "Heatmaps vs regression", "compare"),
    ("retrain", "Retrain", "retrain"),
    ("lessons", "Lessons", "lessons"),
]
LESSON_OF = {"try-it": "01_heatmaps.md", "detector": "02_part_detector.md", "priors": "03_spatial_priors.md",
             "messages": "04_message_passing.md", "compare": "05_regression.md", "retrain": "06_training.md"}


# ------------------------------------------------------------------ models
def model_choices() -> dict[str, tuple[Path, Path | None]]:
    """Label -> (pose weights, regressor weights or None): the shipped models and
    every browser run that has a good checkpoint (runs/browser/<id>/pose.safetensors)."""
    choices = {SHIPPED: (POSE_WEIGHTS, REGRESSOR_WEIGHTS)}
    if RUNS_DIR.is_dir():
        for run in sorted(RUNS_DIR.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
            pose = run / "pose.safetensors"
            if pose.is_file():
                label = run.name
                status = run / "status.json"
                if status.is_file():
                    try:
                        label = json.loads(status.read_text()).get("label", run.name)
                    except ValueError:
                        pass
                reg = run / "regressor.safetensors"
                choices[f"Retrained: {label}"] = (pose, reg if reg.is_file() else REGRESSOR_WEIGHTS)
    return choices


@st.cache_resource(show_spinner="Loading models…", max_entries=4)
def _load(pose: str, reg: str | None, stamp: float) -> PoseLab:
    return PoseLab(Path(pose), Path(reg) if reg else None)


def load_models(label: str | None = None) -> PoseLab | None:
    """The chosen models, loaded once per file version. Shows an error and returns None if damaged."""
    choices = model_choices()
    label = label or st.session_state.get("model_choice", SHIPPED)
    pose, reg = choices.get(label, choices[SHIPPED])
    try:
        stamp = sum(p.stat().st_mtime for p in (pose, reg) if p and Path(p).is_file())
        return _load(str(pose), str(reg) if reg else None, stamp)
    except LabError as e:
        st.error(f"Could not load the model “{label}”: {e}")
    except OSError as e:
        st.error(f"Could not read the model “{label}”: {e}")
    return None


def load_spatial_models() -> PoseLab:
    """The chosen models for a page about the spatial model; stops the page with a
    message when loading failed or the model has no spatial model."""
    lab = load_models()
    if lab is None:
        st.stop()
    if lab.spatial is None:
        st.warning("The chosen model has no spatial model (it was trained as a detector only). "
                   "Pick another model in the sidebar.")
        st.stop()
    return lab


def sidebar() -> None:
    choices = list(model_choices())
    if st.session_state.get("model_choice") not in choices:
        st.session_state["model_choice"] = SHIPPED
    st.sidebar.selectbox("Model", choices, key="model_choice",
                         help="The shipped weights, or a model you retrained on the Retrain page.")


# ------------------------------------------------------------------ lessons and errors
def lesson_link(url_path: str) -> None:
    """A link to this page's lesson (rendered on the Lessons page)."""
    name = LESSON_OF.get(url_path)
    if name:
        st.page_link(str(Path(__file__).resolve().parent / "views" / "lessons.py"),
                     label=f"Lesson: {lesson_title(name)}", icon="📖",
                     query_params={"lesson": name})


def lesson_title(name: str) -> str:
    first = (LESSONS / name).read_text(encoding="utf-8").splitlines()[0]
    return first.lstrip("# ").strip()


def friendly(fn):
    """Run a page body; a LabError becomes a message, never a traceback."""
    try:
        return fn()
    except LabError as e:
        st.error(str(e))


def as_rgb_array(x) -> np.ndarray:
    return np.asarray(x, dtype=np.uint8)
