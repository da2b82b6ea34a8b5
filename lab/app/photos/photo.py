"""The photo and its session state: bundled samples, uploads (decoded safely by
`lab.data.images.load_image`), the current photo, and the learner's own crop box for it.

State lives in st.session_state under non-widget keys, so it survives switching pages:
  PHOTO     the current `Photo`
  UPLOADED  the last upload that decoded (offered again in the photo list)
  ERROR     why the last upload was refused (shown until the photo changes)
  BOXES     photo digest -> the learner's crop box, dragged or set with the sliders (absent: detected)
  PICKS     photo digest -> which detected person every page analyses (absent: the most prominent)
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np
import streamlit as st
from PIL import Image

from lab.app import common
from lab.app.settings import SETTINGS
from lab.data.images import load_image
from lab.errors import LabError

SAMPLES_DIR = common.ASSETS / "samples"
MAX_UPLOAD_MB = SETTINGS.upload_mb          # the limits come from the server's settings
MAX_PIXELS = SETTINGS.upload_pixels
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp"]
PHOTO, UPLOADED, ERROR, NOTICE, BOXES = "photo", "photo_uploaded", "photo_error", "photo_notice", "photo_boxes"
UPLOAD_KEY = "photo_upload"
PICK_KEY = "photo_pick"
PICKS = "photo_people_pick"     # photo digest -> index of the picked person (absent: 0, the most prominent)
SLIDER_REV = "photo_slider_rev"  # photo digest -> revision of the crop sliders' keys


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


def on_upload() -> None:
    f = st.session_state.get(UPLOAD_KEY)
    if f is None:                   # the uploader was cleared: keep the photo
        st.session_state.pop(ERROR, None)
        return
    accept_upload(f.name, f.getvalue())


# ------------------------------------------------------------------ the learner's box
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
