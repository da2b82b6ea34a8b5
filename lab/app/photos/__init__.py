"""The current photo, shared by every page: bundled samples, uploads (decoded safely by
`lab.data.images.load_image`), the crop box (around a detected person, or drawn by the learner) and
the cached prediction on it.

State lives in st.session_state under non-widget keys, so it survives switching pages
(the keys are listed in photo.py).

The box is framed around a person that `lab.people` detected (numbered boxes on the
photo; the learner picks one by clicking its number or from the list), or dragged by the
learner; the crop is always resampled from the original pixels.

  photo.py     the photo and its session state: samples, uploads, the current photo, the drawn box
  framing.py   the people found, the picked one, the crop box, the prediction, the download
  widgets.py   the photo picker, the person list, the crop sliders, the framing chart, view_image

The names below are the package's interface (`from lab.app import photos`, then `photos.predict(...)`).
"""
from lab.app.photos.framing import (
    auto_box,
    current_box,
    framing_label,
    framing_notes,
    model_key,
    outlines,
    people_in,
    pick,
    picked_index,
    picked_person,
    predict,
    result_json,
    selection_action,
)
from lab.app.photos.photo import (
    BOXES,
    MAX_PIXELS,
    MAX_UPLOAD_MB,
    PICKS,
    SAMPLES,
    SAMPLES_DIR,
    UPLOAD_KEY,
    Photo,
    Sample,
    accept_upload,
    current_photo,
    digest_of,
    example_photo,
    forget_sliders,
    is_adjusted,
    sample_photo,
    set_box,
    set_photo,
)
from lab.app.photos.widgets import (
    VIEW_SIDE,
    crop_controls,
    framing_chart,
    person_list,
    photo_input,
    show_framing_notes,
    view_image,
)

__all__ = [
    "BOXES", "MAX_PIXELS", "MAX_UPLOAD_MB", "PICKS", "SAMPLES", "SAMPLES_DIR", "UPLOAD_KEY", "VIEW_SIDE", "Photo",
    "Sample", "accept_upload", "auto_box", "crop_controls", "current_box", "current_photo", "digest_of",
    "example_photo", "forget_sliders", "framing_chart", "framing_label", "framing_notes", "is_adjusted", "model_key",
    "outlines", "people_in", "person_list", "photo_input", "pick", "picked_index", "picked_person", "predict",
    "result_json", "sample_photo", "selection_action", "set_box", "set_photo", "show_framing_notes", "view_image",
]
