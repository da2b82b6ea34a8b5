"""The current photo, shared by every page: bundled samples, uploads (decoded safely by
`lab.data.images.load_image`), the crop box (around a detected person, or drawn by the learner) and
the cached prediction on it.

State lives in st.session_state under non-widget keys, so it survives switching pages:
  PHOTO     the current `Photo`
  UPLOADED  the last upload that decoded (offered again in the photo list)
  ERROR     why the last upload was refused (shown until the photo changes)
  BOXES     photo digest -> the learner's crop box, dragged or set with the sliders (absent: detected)
  PICKS     photo digest -> which detected person every page analyses (absent: the most prominent)

The box is framed around a person that `lab.people` detected (numbered boxes on the
photo; the learner picks one by clicking its number or from the list), or dragged by the
learner; the crop is always resampled from the original pixels.
"""
from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass

import numpy as np
import streamlit as st
from PIL import Image

from lab import people as P
from lab.analysis import confidence_help
from lab.app import common, plots, workers
from lab.app.settings import SETTINGS
from lab.data.images import load_image
from lab.data.transforms import image_box
from lab.errors import LabError
from lab.infer import PoseLab, Prediction
from lab.joints import NAMES
from lab.names import METHOD_LABELS, METHODS

SAMPLES_DIR = common.ASSETS / "samples"
MAX_UPLOAD_MB = SETTINGS.upload_mb          # the limits come from the server's settings
MAX_PIXELS = SETTINGS.upload_pixels
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp"]
PHOTO, UPLOADED, ERROR, NOTICE, BOXES = "photo", "photo_uploaded", "photo_error", "photo_notice", "photo_boxes"
UPLOAD_KEY = "photo_upload"
PICK_KEY = "photo_pick"
PICKS = "photo_people_pick"     # photo digest -> index of the picked person (absent: 0, the most prominent)
SLIDER_REV = "photo_slider_rev"  # photo digest -> revision of the crop sliders' keys
VIEW_SIDE = 1280                # a photo is drawn at most this many pixels on its long side


@dataclass(frozen=True)
class Sample:
    file: str
    label: str
    note: str


SAMPLES = (
    Sample("lsp_im1007.jpg", "Tennis serve (LSP im1007)",
           "LSP test photo: one person, centred, whole body: what the model was trained for."),
    Sample("lsp_im1041.jpg", "Goalkeeper kick (LSP im1041)",
           "LSP test photo: a leg stretched out sideways, arms wide."),
    Sample("lsp_im1051.jpg", "Baseball lunge (LSP im1051)",
           "LSP test photo: a low lunge, limbs foreshortened."),
    Sample("lsp_im1091.jpg", "Cartwheel, upside down (LSP im1091)",
           "LSP test photo: head at the bottom. Rare in training data; the spatial priors expect the head on top."),
    Sample("astronaut.jpg", "Portrait: head and shoulders (astronaut)",
           "Not from LSP. Breaks the assumption: only the upper body is visible, so there are no hips, "
           "knees or ankles to find, yet every method still places all 14 joints."),
    Sample("group_lsp.jpg", "Three people (LSP im1051, im1007, im1041 side by side)",
           "Three LSP test photos pasted side by side at different scales: the person detector numbers "
           "everyone; click a number (or use the Person list) to analyse that person on every page."),
    Sample("wide_lsp_im1033.jpg", "Small person off to one side (padded LSP im1033)",
           "An LSP test photo pasted onto a wide empty background: breaks 'roughly centred'. "
           "Watch how the automatic framing copes, then frame the person yourself with the sliders."),
)


@dataclass(frozen=True)
class Photo:
    name: str
    rgb: np.ndarray                 # (H, W, 3) uint8
    digest: str                     # content hash: the cache key
    source: str                     # "sample", "upload" or "example"
    note: str = ""
    box: tuple | None = None        # a fixed crop box (examples are crops already)

    @property
    def label(self) -> str:
        return {"sample": "", "upload": "Your photo: ", "example": "Example crop: "}[self.source] + self.name


def digest_of(rgb: np.ndarray) -> str:
    h = hashlib.sha1(str(rgb.shape).encode())
    h.update(np.ascontiguousarray(rgb).tobytes())
    return h.hexdigest()[:16]


@st.cache_data(max_entries=16, show_spinner=False)
def _read_sample(file: str) -> np.ndarray:
    return load_image(SAMPLES_DIR / file, name=file)


def sample_photo(sample: Sample) -> Photo:
    rgb = _read_sample(sample.file)
    return Photo(sample.label, rgb, digest_of(rgb), "sample", sample.note)


def example_photo(name: str, crop: np.ndarray, note: str = "") -> Photo:
    """A crop that is already person-centred: its box is the whole image."""
    h, w = crop.shape[:2]
    return Photo(name, crop, digest_of(crop), "example", note, ((w - 1) / 2, (h - 1) / 2, float(max(w, h))))


# ------------------------------------------------------------------ the current photo
def current_photo() -> Photo:
    ph = st.session_state.get(PHOTO)
    if ph is None:
        ph = st.session_state[PHOTO] = sample_photo(SAMPLES[0])
    return ph


def set_photo(ph: Photo) -> None:
    st.session_state[PHOTO] = ph
    st.session_state.pop(ERROR, None)


def accept_upload(name: str, data: bytes) -> Photo | None:
    """Decode an upload and make it the current photo. On failure the reason goes to
    st.session_state[ERROR] and the previous photo stays. Never raises."""
    st.session_state.pop(NOTICE, None)
    try:
        rgb = load_image(data, name=f"“{name}”", max_bytes=SETTINGS.upload_bytes, max_pixels=MAX_PIXELS)
    except LabError as e:
        st.session_state[ERROR] = str(e)
        return None
    except Exception as e:        # anything else PIL throws at a hostile file: still no traceback
        st.session_state[ERROR] = f"“{name}” could not be read as an image ({type(e).__name__})."
        return None
    ph = Photo(name, rgb, digest_of(rgb), "upload")
    set_photo(ph)
    st.session_state[UPLOADED] = ph
    mode = _mode(data)
    if mode and mode not in ("RGB", "YCbCr"):
        what = {"L": "grayscale", "LA": "grayscale with transparency", "RGBA": "RGBA (with transparency)",
                "P": "palette", "CMYK": "CMYK", "I;16": "16-bit grayscale", "I": "32-bit grayscale"}.get(mode, mode)
        st.session_state[NOTICE] = (f"“{name}” is {what}; it was converted to RGB"
                                    + (" (transparent areas on white)." if "A" in mode or mode == "P" else "."))
    return ph


def _mode(data: bytes) -> str | None:
    try:
        return Image.open(io.BytesIO(data)).mode
    except Exception:
        return None


def _on_upload() -> None:
    f = st.session_state.get(UPLOAD_KEY)
    if f is None:                   # the uploader was cleared: keep the photo
        st.session_state.pop(ERROR, None)
        return
    accept_upload(f.name, f.getvalue())


def photo_input(compact: bool = False) -> Photo:
    """Pick a sample or upload a photo; returns the current photo (kept in session state).

    compact: inside a collapsed expander (the explore pages); the Try it page shows it open.
    """
    box = st.expander(f"Photo: {current_photo().label} (change)", expanded=False) if compact else st.container()
    with box:
        cur = current_photo()
        options = [sample_photo(s) for s in SAMPLES]
        up = st.session_state.get(UPLOADED)
        if up is not None:
            options.append(up)
        if cur.source == "example":
            options.append(cur)
        opts = {o.digest: o for o in options}
        if st.session_state.get(PICK_KEY) != cur.digest:
            st.session_state[PICK_KEY] = cur.digest      # the photo changed elsewhere: show it

        def picked():
            ph = opts.get(st.session_state.get(PICK_KEY))
            if ph is not None:
                set_photo(ph)

        st.selectbox("Photo", list(opts), key=PICK_KEY, format_func=lambda d: opts[d].label, on_change=picked,
                     help="Bundled samples (credits in lab/assets/samples/README.md), "
                          "your last upload, or an example crop chosen on another page.")
        st.file_uploader(f"…or upload your own (JPEG, PNG or WebP, up to {MAX_UPLOAD_MB} MB)",
                         type=UPLOAD_TYPES, max_upload_size=MAX_UPLOAD_MB, key=UPLOAD_KEY, on_change=_on_upload,
                         help=SETTINGS.upload_help())
        if st.session_state.get(ERROR):
            st.error(f"{st.session_state[ERROR]} The previous photo ({cur.label}) is still in use.")
        elif st.session_state.get(NOTICE) and cur.source == "upload":
            st.info(st.session_state[NOTICE])
        if cur.note:
            st.caption(cur.note)
        if compact:
            person_list(cur)
    if compact:
        show_framing_notes(cur)
    return cur


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


def set_box(ph: Photo, box) -> None:
    boxes = dict(st.session_state.get(BOXES, {}))
    if box is None:
        boxes.pop(ph.digest, None)
    else:
        boxes[ph.digest] = tuple(float(v) for v in box)
    st.session_state[BOXES] = boxes


def is_adjusted(ph: Photo) -> bool:
    return ph.digest in st.session_state.get(BOXES, {})


def forget_sliders(ph: Photo) -> None:
    """Start the crop sliders again from the current box: their keys get a new revision (a
    browser keeps a slider's value under its old key whatever `value` says), old state dropped."""
    for k in [k for k in st.session_state if str(k).startswith("crop_") and ph.digest in str(k)]:
        del st.session_state[k]
    st.session_state[SLIDER_REV] = {**st.session_state.get(SLIDER_REV, {}),
                                    ph.digest: st.session_state.get(SLIDER_REV, {}).get(ph.digest, 0) + 1}


@st.cache_data(max_entries=64, show_spinner=False)
def _predict(key: str, digest: str, box: tuple, _models: PoseLab, _rgb: np.ndarray) -> Prediction:
    return _models.predict(_rgb, box)


def predict(models: PoseLab, ph: Photo, box=None) -> Prediction:
    """`PoseLab.predict` on the photo and box (default: the current box), cached per photo, box and model."""
    box = tuple(float(v) for v in (box or current_box(models, ph)))
    with st.spinner("Running the models…"):
        return _predict(model_key(models), ph.digest, box, models, ph.rgb)


def crop_controls(models: PoseLab, ph: Photo) -> tuple[float, float, float]:
    """Sliders for the crop's centre and side, initialised from the current box, and a
    reset button. Returns the box to use."""
    auto = auto_box(models, ph)
    box = current_box(models, ph)
    h, w = ph.rgb.shape[:2]
    # per photo and model: another model's automatic box must not stay on the sliders
    rev = st.session_state.get(SLIDER_REV, {}).get(ph.digest, 0)
    keys = [f"crop_{n}_{ph.digest}_{model_key(models)}_{rev}" for n in ("cx", "cy", "side")]

    def changed():
        set_box(ph, tuple(st.session_state[k] for k in keys))

    def reset():
        set_box(ph, None)
        forget_sliders(ph)

    cx, cy, side = (round(float(v)) for v in box)
    big = float(2 * max(w, h))
    st.slider("Crop centre x (photo px)", float(min(0, cx)), float(max(w - 1, cx)), float(cx), 1.0,
              key=keys[0], on_change=changed)
    st.slider("Crop centre y (photo px)", float(min(0, cy)), float(max(h - 1, cy)), float(cy), 1.0,
              key=keys[1], on_change=changed)
    st.slider("Crop side (photo px)", 16.0, float(max(big, side)), float(side), 1.0, key=keys[2], on_change=changed)
    st.button("Reset to the detected box", on_click=reset, disabled=not is_adjusted(ph),
              help=f"Detected box ({framing_label_auto(ph)}): centre ({auto[0]:.0f}, {auto[1]:.0f}), "
                   f"side {auto[2]:.0f} px.")
    return current_box(models, ph)


def framing_label_auto(ph: Photo) -> str:
    i = picked_index(ph)
    return "the example crop" if ph.box is not None else "the whole photo" if i is None else f"person {i + 1}"


def person_list(ph: Photo) -> None:
    """The detected people as a list; picking one analyses that person on every page."""
    found = people_in(ph)
    if not found:
        return
    key = f"person_pick_{ph.digest}"
    st.session_state[key] = picked_index(ph)            # a click on the photo may have changed it
    words = P.describe(outlines(ph), ph.rgb.shape)
    label = lambda i: f"{i + 1} · {'most prominent · ' if i == 0 else ''}{words[i]}"
    st.selectbox(f"Person ({len(found)} found: click a number on the photo, or pick here)", range(len(found)),
                 key=key, format_func=label, on_change=lambda: pick(ph, st.session_state[key]),
                 help="Everyone MediaPipe's person detector found, most prominent first, each with where they "
                      "stand and how tall their box is. Every page analyses the person picked here.")


def show_framing_notes(ph: Photo) -> None:
    for note in framing_notes(ph):
        st.warning(note, icon="⚠️")


# ------------------------------------------------------------------ drawing the photo
@st.cache_data(max_entries=16, show_spinner=False)
def _reduced(digest: str, step: int, _rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(_rgb).reduce(step)) if step > 1 else _rgb


def view_image(ph: Photo, window=None, max_side: int = VIEW_SIDE) -> tuple[np.ndarray, tuple[float, float], int]:
    """What to draw for the photo, or for the part `window` = (x0, x1, y0, y1) photo px of it:
    (pixels, origin, step) for `plots.photo_figure`, reduced by a whole step (box filter) so
    that the long side is at most `max_side`. A 12-MP photo is never sent to the browser whole."""
    h, w = ph.rgb.shape[:2]
    if window is None:
        step = max(1, math.ceil(max(h, w) / max_side))
        return _reduced(ph.digest, step, ph.rgb), (0.0, 0.0), step
    x0, x1, y0, y1 = window
    x0, y0 = max(int(math.floor(x0)), 0), max(int(math.floor(y0)), 0)
    x1, y1 = min(int(math.ceil(x1)) + 1, w), min(int(math.ceil(y1)) + 1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return view_image(ph, None, max_side)
    step = max(1, math.ceil(max(x1 - x0, y1 - y0) / max_side))
    region = np.ascontiguousarray(ph.rgb[y0:y1, x0:x1])
    return (np.asarray(Image.fromarray(region).reduce(step)) if step > 1 else region), (float(x0), float(y0)), step


def framing_chart(models: PoseLab, ph: Photo, box, height: int) -> None:
    """The photo with every detected person's numbered box and the crop box. Click a number to
    pick that person; with the toolbar's Box Select, drag a box to frame the crop yourself."""
    img, origin, step = view_image(ph)
    fig = plots.photo_figure(img, "Photo: the people found and the crop", meta="photo_box", height=height,
                             origin=origin, step=step)
    boxes = outlines(ph)
    plots.add_people(fig, boxes, picked_index(ph), P.label_points(boxes))
    plots.add_box(fig, box, image_hw=ph.rgb.shape[:2])
    h, w = ph.rgb.shape[:2]        # invisible corners: box select needs a scatter trace, even with nobody found
    fig.add_scatter(x=[-0.5, w - 0.5, -0.5, w - 0.5], y=[-0.5, -0.5, h - 0.5, h - 0.5], mode="markers",
                    marker=dict(opacity=0), hoverinfo="skip", showlegend=False, name="frame")
    # Streamlit turns click selection off while the drag mode is box select: start in zoom mode, where a
    # click on a number picks that person; the toolbar's Box Select then drags a box for the crop.
    fig.update_layout(dragmode="zoom", clickmode="event+select", newselection=dict(line=dict(color="white")))
    key = f"framing_{ph.digest}"

    def selected():
        action = selection_action((st.session_state.get(key) or {}).get("selection"))
        if action is None:
            return
        kind, value = action
        if kind == "pick":
            pick(ph, value)
        else:
            set_box(ph, value)
            forget_sliders(ph)

    st.plotly_chart(fig, key=key, on_select=selected, selection_mode=("points", "box"),
                    config={"modeBarButtonsToRemove": ["lasso2d"], "displayModeBar": True})


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
