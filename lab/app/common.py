"""What every page shares: the model choice, cached loading, lesson links and friendly
errors. Pages call the library; no model math here."""
from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from lab.app.settings import SETTINGS  # noqa: E402
from lab.app.workers import PooledLab
from lab.errors import LabError
from lab.infer import (  # noqa: F401  (PRETRAINED: pages and tests read it here)
    FULL_WEIGHTS,
    POSE_WEIGHTS,
    PRETRAINED,
    REGRESSOR_WEIGHTS,
    SCRATCH_WEIGHTS,
    PoseLab,
)
from lab.resources import ASSETS, CHECKOUT, LESSONS  # noqa: E402,F401  (found through the package)
from lab.train import runs

ROOT = CHECKOUT or Path.cwd()       # relative paths typed in the app start here
RUNS_DIR = SETTINGS.runs_dir
# The Retrain page's limits, once per server process: K runs train at once, the rest wait.
runs.configure(SETTINGS.max_trainings, SETTINGS.max_queued)
SHIPPED = "With ImageNet features (shipped)"
SCRATCH = "As in the paper, from scratch (shipped)"
FULL = "ImageNet features, fully connected graph (shipped)"
CHOICE = "model_choice"

# (view module in lab/app/views, title, url path)
PAGES = [
    ("start", "Start here", "start"),
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
def model_choices() -> dict[str, tuple[Path, Path]]:
    """Label -> (pose weights, regressor weights): the two shipped models (the paper's
    from-scratch one when its file is present) and every browser run that has a good
    checkpoint (runs/browser/<id>/pose.safetensors), newest first."""
    choices = {SHIPPED: (POSE_WEIGHTS, REGRESSOR_WEIGHTS)}
    if SCRATCH_WEIGHTS.is_file():
        choices[SCRATCH] = (SCRATCH_WEIGHTS, REGRESSOR_WEIGHTS)
    if FULL_WEIGHTS.is_file():
        choices[FULL] = (FULL_WEIGHTS, REGRESSOR_WEIGHTS)
    if RUNS_DIR.is_dir():
        for run in sorted(RUNS_DIR.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
            pose = run / "pose.safetensors"
            if pose.is_file():
                reg = run / "regressor.safetensors"
                choices[f"Retrained: {_run_label(run)}"] = (pose, reg if reg.is_file() else REGRESSOR_WEIGHTS)
    return choices


def _run_label(run: Path) -> str:
    try:
        return json.loads((run / "status.json").read_text()).get("label", run.name)
    except (OSError, ValueError):
        return run.name


def chosen() -> str:
    """The sidebar's model choice (the ImageNet model until one is picked)."""
    return st.session_state.get(CHOICE, SHIPPED)


def shipped_weights() -> Path:
    """The shipped detector weights behind the current choice (a retrained run: the ImageNet model's)."""
    return {SCRATCH: SCRATCH_WEIGHTS, FULL: FULL_WEIGHTS}.get(chosen(), POSE_WEIGHTS)


@st.cache_resource(show_spinner="Loading models…", max_entries=4)
def _load(pose: str, reg: str, stamp: float) -> tuple[PooledLab, str | None]:
    """The models and, when the regressor could not be loaded, why (the detector still works)."""
    try:
        return PooledLab(PoseLab(Path(pose), Path(reg))), None
    except LabError as e:
        models = PooledLab(PoseLab(Path(pose), None))   # raises again if the detector is the problem
        return models, None if not Path(reg).is_file() else f"The regressor could not be loaded: {e}"


def _files() -> tuple[str, str, float]:
    """The chosen pose and regressor weights, and a stamp that changes with either file."""
    choices = model_choices()
    pose, reg = choices.get(chosen(), choices[SHIPPED])
    return str(pose), str(reg), sum(p.stat().st_mtime for p in (pose, reg) if p.is_file())


def load_models() -> PooledLab | None:
    """The chosen models, loaded once per file version. Shows an error and returns None if damaged."""
    try:
        return _load(*_files())[0]
    except LabError as e:
        st.error(f"Could not load the model “{chosen()}”: {e}")
    except OSError as e:
        st.error(f"Could not read the model “{chosen()}”: {e}")
    return None


def regressor_note(models: PoseLab) -> str | None:
    """Why the chosen models have no regressor (None when they have one)."""
    if models.regressor is not None:
        return None
    pose, reg, stamp = _files()
    return _load(pose, reg, stamp)[1] or f"There are no regressor weights at `{shown_path(Path(reg))}`."


def require_models() -> PooledLab:
    """The chosen models; stops the page (after load_models' message) when loading failed."""
    models = load_models()
    if models is None:
        st.stop()
    return models


def load_spatial_models() -> PooledLab:
    """The chosen models for a page about the spatial model; stops the page with a
    message when loading failed or the model has no spatial model."""
    models = require_models()
    if models.spatial is None:
        st.warning("The chosen model has no spatial model (it was trained as a detector only). "
                   "Pick another model in the sidebar.")
        st.stop()
    return models


def sidebar() -> None:
    choices = list(model_choices())
    if st.session_state.get(CHOICE) not in choices:
        st.session_state[CHOICE] = SHIPPED
    from lab.app import links
    note = links.gone_note()
    if note:
        st.sidebar.warning(note)
    st.sidebar.selectbox("Model", choices, key=CHOICE,
                         help="The shipped weights: the detector on ImageNet-pretrained features, or the "
                              "paper's detector trained from scratch; or a model you retrained on the "
                              "Retrain page.")


# ------------------------------------------------------------------ page header, lessons and errors
def header(title: str, intro: str, url_path: str) -> None:
    """A page's title, its introduction (markdown, HTML allowed) and the link to its lesson."""
    st.title(title)
    st.markdown(intro, unsafe_allow_html=True)
    lesson_link(url_path)


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


def section(label: str, key: str, opened: bool = False):
    """A heavy section drawn only while the learner has it open: an expander that reruns the
    script (or its fragment) when opened or closed, whose `.open` says whether to draw. The
    label is the section's heading. `opened` (a link's values for it) opens it. A closed
    section's widgets are forgotten after a run, so a section closed and opened again starts
    from its defaults, and the page treats a closed section as untouched."""
    if opened:
        st.session_state[key] = True
    return st.expander(label, key=key, on_change="rerun")


def shown_path(p: Path) -> str:
    """A path as the reader knows it: relative to the repository when inside it."""
    try:
        return str(Path(p).resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def friendly(fn):
    """Run a page body; a LabError becomes a message, never a traceback."""
    try:
        return fn()
    except LabError as e:
        st.error(str(e))
