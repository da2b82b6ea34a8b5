"""What the pages show of the photo: the photo picker and uploader, the list of people,
the crop sliders, the framing warnings, and the photo itself with everyone's numbered box
(reduced so a 12-MP photo is never sent to the browser whole)."""
from __future__ import annotations

import math

import numpy as np
import streamlit as st
from PIL import Image

from lab import people as P
from lab.app import chart, plots
from lab.app.photos.framing import (
    auto_box,
    current_box,
    framing_label_auto,
    framing_notes,
    model_key,
    outlines,
    people_in,
    pick,
    picked_index,
    selection_action,
)
from lab.app.photos.photo import (
    ERROR,
    MAX_UPLOAD_MB,
    NOTICE,
    PICK_KEY,
    SAMPLES,
    SLIDER_REV,
    UPLOAD_KEY,
    UPLOAD_TYPES,
    UPLOADED,
    Photo,
    current_photo,
    forget_sliders,
    is_adjusted,
    on_upload,
    sample_photo,
    set_box,
    set_photo,
)
from lab.app.settings import SETTINGS
from lab.infer import PoseLab

VIEW_SIDE = 1280                # a photo is drawn at most this many pixels on its long side


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
                         type=UPLOAD_TYPES, max_upload_size=MAX_UPLOAD_MB, key=UPLOAD_KEY, on_change=on_upload,
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
        if all(k in st.session_state for k in keys):     # not when a new box has just replaced them
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

    chart.show(fig, key=key, on_select=selected, selection_mode=("points", "box"),
                    config={"modeBarButtonsToRemove": ["lasso2d"], "displayModeBar": True})
