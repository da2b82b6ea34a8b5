"""The current photo, shared by every page: bundled samples, uploads (decoded safely by
`lab.data.images.load_image`), the crop box (automatic or adjusted by the learner) and
the cached prediction on it.

State lives in st.session_state under non-widget keys, so it survives switching pages:
  PHOTO     the current `Photo`
  UPLOADED  the last upload that decoded (offered again in the photo list)
  ERROR     why the last upload was refused (shown until the photo changes)
  BOXES     photo digest -> the learner's crop box (absent: automatic)
"""
from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass

import numpy as np
import streamlit as st
from PIL import Image

from lab.analysis import confidence_help
from lab.app import common
from lab.app.settings import SETTINGS
from lab.data.images import load_image
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
    return cur


# ------------------------------------------------------------------ framing and prediction
def model_key(models: PoseLab) -> str:
    """Identifies the loaded models for the caches (common.load_models keeps one object per file version)."""
    return f"{id(models)}:{models.pose_meta.get('stage')}:{models.pose_meta.get('epoch')}"


@st.cache_data(max_entries=64, show_spinner=False)
def _auto_box(key: str, digest: str, _models: PoseLab, _rgb: np.ndarray) -> tuple[float, float, float]:
    return tuple(float(v) for v in _models.auto_box(_rgb))


def auto_box(models: PoseLab, ph: Photo) -> tuple[float, float, float]:
    """The automatic framing (`PoseLab.auto_box`), or the photo's fixed box."""
    if ph.box is not None:
        return ph.box
    with st.spinner("Framing the person…"):
        return _auto_box(model_key(models), ph.digest, models, ph.rgb)


def current_box(models: PoseLab, ph: Photo) -> tuple[float, float, float]:
    """The learner's box for this photo if they adjusted it, else the automatic one."""
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
    keys = [f"crop_{n}_{ph.digest}_{model_key(models)}" for n in ("cx", "cy", "side")]

    def changed():
        set_box(ph, tuple(st.session_state[k] for k in keys))

    def reset():
        set_box(ph, None)
        for k in keys:
            st.session_state.pop(k, None)

    cx, cy, side = (round(float(v)) for v in box)
    big = float(2 * max(w, h))
    st.slider("Crop centre x (photo px)", float(min(0, cx)), float(max(w - 1, cx)), float(cx), 1.0,
              key=keys[0], on_change=changed)
    st.slider("Crop centre y (photo px)", float(min(0, cy)), float(max(h - 1, cy)), float(cy), 1.0,
              key=keys[1], on_change=changed)
    st.slider("Crop side (photo px)", 16.0, float(max(big, side)), float(side), 1.0, key=keys[2], on_change=changed)
    st.button("Reset to automatic framing", on_click=reset, disabled=not is_adjusted(ph),
              help=f"Automatic box: centre ({auto[0]:.0f}, {auto[1]:.0f}), side {auto[2]:.0f} px.")
    return current_box(models, ph)


# ------------------------------------------------------------------ the result, for download
def result_json(ph: Photo, pred: Prediction, box, model_label: str, models: PoseLab,
                adjusted: bool = False) -> dict:
    """What the Try it page downloads: photo size, box, and every method's joints in original
    photo pixels with names and confidences (None where a method has none). JSON-safe."""
    h, w = ph.rgb.shape[:2]
    out = {
        "photo": {"name": ph.name, "source": ph.source, "width": int(w), "height": int(h), "sha1_16": ph.digest},
        "coordinates": "original photo pixels; pixel centres at integers (x right, y down)",
        "box": {"cx": float(box[0]), "cy": float(box[1]), "side": float(box[2]),
                "framing": "adjusted by hand" if adjusted else "automatic (PoseLab.auto_box)"},
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
