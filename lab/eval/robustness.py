"""Measures that learners' photos depend on, on the LSP test photos.

The standard protocol crops every person with the annotation's box, from a sharp photo.
A learner's upload has neither. Two measures close the gap:

  upload path   the whole original photo through the app's own framing (`lab.infer.frame`:
                the person detector, the most prominent person, the landmark refinement and
                `square_box`), exactly as the app does on an upload
  robustness    the annotation's box, but the photo made harder: the person at 1/2 and 1/4
                resolution, JPEG at quality 30, the crop rotated 30 degrees, and a quarter of
                the crop hidden under a grey square

Each builds crops and their exact affines (original -> crop), so predictions map back to
the original pixels and PCK is computed there, as for the standard protocol.
"""
from __future__ import annotations

import io as _io
import math

import numpy as np
from PIL import Image

from lab.data.transforms import box_affine, compose, crop_image, person_box
from lab.progress import track

GREY = 128                      # the hiding square's colour (as lab.touch's occluder)
CONDITIONS = ("half resolution", "quarter resolution", "jpeg 30", "rotated 30", "quarter hidden")


def upload_path_crops(records, size: int) -> dict:
    """Crops (N, S, S, 3) uint8 and affines (N, 2, 3) framed as the app frames an upload,
    and how many photos had nobody found (those use the whole photo, as the app does)."""
    from lab.infer import frame
    crops, affines, missed = [], [], 0
    for rec in track(records, "upload path", unit="photos"):
        rgb = rec.image()
        box, person = frame(rgb)
        missed += person is None
        A = box_affine(box, size)
        crops.append(crop_image(rgb, A, size))
        affines.append(A)
    return {"images": np.stack(crops), "affine": np.stack(affines), "nobody_found": missed}


def condition_crops(records, condition: str, size: int, margin: float, seed: int = 0) -> dict:
    """Crops and affines of every record under one of `CONDITIONS` (annotation's box)."""
    rng = np.random.default_rng(seed)
    crops, affines = [], []
    for rec in track(records, condition, unit="photos"):
        rgb, box = rec.image(), person_box(rec.coords, rec.labelled, margin)
        A = box_affine(box, size)                           # original -> crop
        src, A_src = rgb, A                                 # what is resampled, and its affine
        if condition in ("half resolution", "quarter resolution"):
            f = 2 if condition == "half resolution" else 4
            src, A_src = shrink(rgb, f), compose(A, small_to_original(f))
        elif condition == "jpeg 30":
            src = jpeg_round_trip(rgb, 30)
        elif condition == "rotated 30":
            A = A_src = compose(rotation_about_centre(30.0, size), A)
        crop = crop_image(src, A_src, size)
        if condition == "quarter hidden":
            crop = hide_quarter(crop, int(rng.integers(4)))
        elif condition not in CONDITIONS:
            raise ValueError(f"unknown condition {condition!r}: one of {CONDITIONS}")
        crops.append(crop)
        affines.append(A)
    return {"images": np.stack(crops), "affine": np.stack(affines)}


def shrink(rgb: np.ndarray, f: int) -> np.ndarray:
    """The photo at 1/f resolution (f x f box average): pixel j covers original f j .. f j + f - 1."""
    h, w = rgb.shape[:2]
    img = Image.fromarray(rgb)
    if h % f or w % f:
        img = img.crop((0, 0, w - w % f, h - h % f))
    return np.asarray(img.reduce(f))


def small_to_original(f: int) -> np.ndarray:
    """Pixels of the photo at 1/f -> original pixels: orig = f small + (f - 1) / 2."""
    return np.array([[f, 0, (f - 1) / 2], [0, f, (f - 1) / 2]], np.float64)


def jpeg_round_trip(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = _io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def rotation_about_centre(degrees: float, size: int) -> np.ndarray:
    """Crop -> crop rotation by `degrees` about the crop's centre pixel (size - 1) / 2."""
    c, t = (size - 1) / 2, math.radians(degrees)
    R = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return np.hstack([R, (np.array([c, c]) - R @ np.array([c, c]))[:, None]])


def hide_quarter(crop: np.ndarray, quadrant: int) -> np.ndarray:
    """The crop with one quadrant (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right), a
    quarter of its area, filled with grey."""
    out, h = crop.copy(), crop.shape[0] // 2
    y, x = (quadrant // 2) * h, (quadrant % 2) * h
    out[y:y + h, x:x + h] = GREY
    return out


# ------------------------------------------------------------------ the table the lab shows
ROW_LABELS = {"standard": "Standard protocol (annotation's box, sharp photo)",
              "upload path": "Upload path (whole photo, the app's person detector and framing)",
              "half resolution": "Person at 1/2 resolution", "quarter resolution": "Person at 1/4 resolution",
              "jpeg 30": "JPEG quality 30", "rotated 30": "Rotated 30°", "quarter hidden": "A quarter of the crop hidden"}


def photo_rows(ev: dict, method: str = "marginal") -> list[dict]:
    """Rows of PCK@0.2 (%, one decimal) for the standard protocol, the upload path and each
    robustness condition of an eval JSON: {"condition", "mean", "limbs", "change"}, where
    "change" is the difference of the displayed (rounded) means, so it adds up on screen.
    Empty when the JSON has neither measure."""
    measured = {"upload path": ev["upload_path"]["methods"]} if ev.get("upload_path") else {}
    measured.update(ev.get("robustness") or {})
    if not measured or method not in ev.get("methods", {}):
        return []
    std = ev["methods"][method]["pck@0.2"]
    base = round(100 * std["mean"], 1)
    rows = [{"condition": ROW_LABELS["standard"], "mean": base, "limbs": _pct(std.get("limbs")), "change": None}]
    for name, methods in measured.items():
        p = methods[method]
        mean = round(100 * p["mean"], 1)
        rows.append({"condition": ROW_LABELS.get(name, name), "mean": mean, "limbs": _pct(p.get("limbs")),
                     "change": round(mean - base, 1)})
    return rows


def _pct(v) -> float | None:
    return None if v is None else round(100 * v, 1)
