"""Who is framed, and how: the people `lab.people` finds in the photo, the one the learner
picked, the crop box (around that person, or drawn by the learner; always resampled from
the original pixels), the cached prediction on it, and the result the Try it page downloads."""
from __future__ import annotations

import math

import numpy as np
import streamlit as st

from lab import people as P
from lab.analysis import confidence_help
from lab.app import workers
from lab.app.photos.photo import BOXES, PICKS, Photo, forget_sliders, is_adjusted, set_box
from lab.data.transforms import image_box
from lab.errors import LabError
from lab.infer import PoseLab, Prediction
from lab.joints import NAMES
from lab.names import METHOD_LABELS, METHODS


# ------------------------------------------------------------------ the people in the photo
@st.cache_data(max_entries=32, show_spinner=False)
def _find_people(digest: str, _rgb: np.ndarray) -> tuple[list[P.Person], str | None]:
    """Everyone `lab.people.find_people` sees, most prominent first, and why it could not
    run (the detector's weights missing), else None."""
    try:
        return workers.run(P.find_people, _rgb), None
    except LabError as e:
        return [], str(e)
    except Exception as e:          # never a traceback: the page goes on with the whole photo
        return [], f"{type(e).__name__}: {e}"


@st.cache_data(max_entries=64, show_spinner=False)
def _refined(digest: str, i: int, _rgb: np.ndarray, _person: P.Person) -> P.Person:
    """The person with landmarks; if the landmark model fails, the detector's own framing."""
    try:
        return workers.run(P.refine, _rgb, _person)
    except Exception:
        return _person


MAX_OUTLINED = 8            # people refined for a tight box on the photo; any beyond keep the detector's square


@st.cache_data(max_entries=32, show_spinner=False)
def _distinct_people(digest: str, _rgb: np.ndarray) -> list[P.Person]:
    """Everyone found, the first MAX_OUTLINED refined (landmarks: a tight box, and the framing
    the pages use), a detection whose landmarks land on someone already listed dropped
    (`lab.people.distinct`), most prominent first."""
    found = _find_people(digest, _rgb)[0]
    return P.distinct([_refined(digest, i, _rgb, p) if i < MAX_OUTLINED else p for i, p in enumerate(found)])


def people_in(ph: Photo) -> list[P.Person]:
    """The people found in the photo (none for an example crop, which is framed already)."""
    if ph.box is not None:
        return []
    with st.spinner("Finding the people…"):
        if not _find_people(ph.digest, ph.rgb)[0]:
            return []
    with st.spinner("Outlining the people…"):
        return _distinct_people(ph.digest, ph.rgb)


def picked_index(ph: Photo) -> int | None:
    """Which person the learner picked (default 0, the most prominent); None when nobody was found."""
    found = people_in(ph)
    if not found:
        return None
    i = st.session_state.get(PICKS, {}).get(ph.digest, 0)
    return i if 0 <= i < len(found) else 0


def picked_person(ph: Photo) -> P.Person | None:
    """The picked person, with MediaPipe's landmarks (`lab.people.refine`) for a tight framing."""
    i = picked_index(ph)
    if i is None:
        return None
    person = people_in(ph)[i]
    if person.joints is not None:               # refined already (the first MAX_OUTLINED people)
        return person
    with st.spinner("Framing the person…"):
        return _refined(ph.digest, i, ph.rgb, person)     # i >= MAX_OUTLINED: a key no refined one uses


def outlines(ph: Photo) -> list[tuple[float, float, float, float]]:
    """Each person's box on the photo, in list order: tight around their landmarks once
    refined (`lab.people.outline`), the detector's square for people beyond MAX_OUTLINED."""
    return [P.outline(p) for p in people_in(ph)]


def pick(ph: Photo, i: int) -> None:
    """Analyse person i of this photo on every page; their detected box replaces any drawn one."""
    st.session_state[PICKS] = {**st.session_state.get(PICKS, {}), ph.digest: int(i)}
    set_box(ph, None)
    forget_sliders(ph)


def selection_action(selection) -> tuple[str, object] | None:
    """What a plotly selection on the framing chart asks for: ("box", (cx, cy, side)) for a
    dragged box (`lab.people.square_from_box`: the box as the person's extent, training
    margin), ("pick", i) for a click on person i's number, None for nothing usable."""
    selection = selection or {}
    for b in reversed(selection.get("box") or []):
        xs, ys = b.get("x") or [], b.get("y") or []
        if len(xs) == 2 and len(ys) == 2 and abs(xs[1] - xs[0]) >= 4 and abs(ys[1] - ys[0]) >= 4:
            return "box", P.square_from_box((xs[0], ys[0], xs[1], ys[1]))
    for pt in selection.get("points") or []:
        cd = pt.get("customdata")
        if isinstance(cd, (list, tuple)) and cd:
            cd = cd[0]
        if isinstance(cd, (int, float)) and not isinstance(cd, bool) and cd >= 0:
            return "pick", int(cd)
    return None


def framing_notes(ph: Photo) -> list[str]:
    """Plain warnings about the framing: nobody found, a person too small or cut by the
    photo's edge, or a hand-drawn box that is (`lab.people`)."""
    if ph.box is not None:
        return []
    if is_adjusted(ph):
        return P.box_warnings(st.session_state[BOXES][ph.digest], ph.rgb.shape)
    problem = _find_people(ph.digest, ph.rgb)[1]
    if problem:
        return [f"The person detector could not run: {problem.rstrip('.')}. The whole photo is used: "
                "draw a box around the person or move the sliders."]
    person = picked_person(ph)
    if person is None:
        return [P.no_people_message(ph.rgb.shape) + " Until then the model sees the whole photo."]
    return P.person_warnings(person, ph.rgb.shape)


def framing_label(ph: Photo) -> str:
    """How the current box was made, in words."""
    if ph.box is not None:
        return "the example crop"
    if is_adjusted(ph):
        return "drawn or adjusted by you"
    i, n = picked_index(ph), len(people_in(ph))
    return "the whole photo (nobody found)" if i is None else f"detected person {i + 1} of {n}"


# ------------------------------------------------------------------ framing and prediction
def model_key(models: PoseLab) -> str:
    """Identifies the loaded models for the caches (common.load_models keeps one object per file version)."""
    return f"{id(models)}:{models.pose_meta.get('stage')}:{models.pose_meta.get('epoch')}"


def auto_box(models: PoseLab, ph: Photo) -> tuple[float, float, float]:
    """The detected box: the picked person framed as the models were trained
    (`lab.people.square_box`), the photo's fixed box, or the whole photo when nobody was found."""
    if ph.box is not None:
        return ph.box
    person = picked_person(ph)
    if person is None:
        h, w = ph.rgb.shape[:2]
        return tuple(float(v) for v in image_box(w, h))
    return tuple(float(v) for v in P.square_box(person))


def current_box(models: PoseLab, ph: Photo) -> tuple[float, float, float]:
    """The learner's box for this photo if they drew or adjusted it, else the detected one."""
    return st.session_state.get(BOXES, {}).get(ph.digest) or auto_box(models, ph)


@st.cache_data(max_entries=64, show_spinner=False)
def _predict(key: str, digest: str, box: tuple, scales: tuple, _models: PoseLab, _rgb: np.ndarray) -> Prediction:
    return _models.predict(_rgb, box, flip=bool(scales), scales=scales or (1.0,))


def predict(models: PoseLab, ph: Photo, box=None, scales: tuple[float, ...] = ()) -> Prediction:
    """`PoseLab.predict` on the photo and box (default: the current box), cached per photo, box,
    model and test-time augmentation: `scales` () runs the crop once; otherwise the unary is
    averaged over the crop at each zoom, each also mirrored (`pose-lab eval --flip --scales`)."""
    box = tuple(float(v) for v in (box or current_box(models, ph)))
    with st.spinner("Running the models…"):
        return _predict(model_key(models), ph.digest, box, tuple(float(s) for s in scales), models, ph.rgb)


def framing_label_auto(ph: Photo) -> str:
    i = picked_index(ph)
    return "the example crop" if ph.box is not None else "the whole photo" if i is None else f"person {i + 1}"


# ------------------------------------------------------------------ the result, for download
def result_json(ph: Photo, pred: Prediction, box, model_label: str, models: PoseLab,
                adjusted: bool = False, framing: str | None = None) -> dict:
    """What the Try it page downloads: photo size, box, and every method's joints in original
    photo pixels with names and confidences (None where a method has none). JSON-safe."""
    h, w = ph.rgb.shape[:2]
    out = {
        "photo": {"name": ph.name, "source": ph.source, "width": int(w), "height": int(h), "sha1_16": ph.digest},
        "coordinates": "original photo pixels; pixel centres at integers (x right, y down)",
        "box": {"cx": float(box[0]), "cy": float(box[1]), "side": float(box[2]),
                "framing": framing or ("drawn or adjusted by you" if adjusted else "detected person (lab.people)")},
        "model": {"choice": model_label,
                  "detector_spatial": {"stage": models.pose_meta.get("stage"), "epoch": models.pose_meta.get("epoch"),
                                       "trunk": models.pose.detector.cfg.trunk, "loss": models.pose.detector.cfg.loss,
                                       "graph": (models.pose_meta.get("spatial") or {}).get("graph")},
                  "regressor": None if models.regressor_meta is None else {"epoch": models.regressor_meta.get("epoch")}},
        "assumption": "one person, roughly centred, whole body visible (as in the paper)",
        "methods": {},
    }
    help_of = confidence_help(models.pose.detector.cfg)
    for m in METHODS:
        if m not in pred.joints:
            continue
        conf = pred.confidence[m]
        out["methods"][m] = {
            "label": METHOD_LABELS[m], "confidence": help_of[m],
            "joints": [{"name": NAMES[k], "x": round(float(x), 2), "y": round(float(y), 2),
                        "confidence": None if not math.isfinite(float(conf[k])) else round(float(conf[k]), 5)}
                       for k, (x, y) in enumerate(pred.joints[m])]}
    return out
