"""Composite photos with known people, shared by tests/people/test_people.py and
tests/app/test_people_app.py: fixture photos pasted at chosen scales onto a plain canvas,
and whether a detected person covers a ground-truth one."""
from __future__ import annotations

import numpy as np
from PIL import Image

from lab import people as P
from lab.data.transforms import person_box


def canvas(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A plain background (h, w, 3) uint8: a smooth colour field with a little noise."""
    rng = np.random.default_rng(seed)
    field = Image.fromarray(rng.integers(60, 200, (2, 3, 3), dtype=np.uint8)).resize((w, h), Image.BILINEAR)
    return np.clip(np.asarray(field, np.int16) + rng.integers(-6, 7, (h, w, 1)), 0, 255).astype(np.uint8)


def paste(dst: np.ndarray, rec, side: float, x0: int, y0: int) -> tuple[float, float, float]:
    """Paste `rec`'s photo into dst, scaled so its person's square is `side` px, with the photo's
    top-left corner at (x0, y0); return that person's ground-truth square (cx, cy, side) on dst."""
    cx, cy, s = person_box(rec.coords, rec.labelled, 0.3)
    k = side / s
    img = Image.fromarray(rec.image())
    w, h = round(img.width * k), round(img.height * k)
    assert x0 + w <= dst.shape[1] and y0 + h <= dst.shape[0], "the pasted photo must fit"
    dst[y0:y0 + h, x0:x0 + w] = np.asarray(img.resize((w, h), Image.BILINEAR))
    xy = (rec.coords + 0.5) * [w / img.width, h / img.height] - 0.5 + [x0, y0]
    return person_box(xy, rec.labelled, 0.3)


def covers(person: P.Person, gt) -> bool:
    """The detector's whole-body square contains the ground-truth person's centre."""
    x0, y0, x1, y1 = person.box
    return x0 <= gt[0] <= x1 and y0 <= gt[1] <= y1
