"""Framing: from a detected person to the square crop the pose models were trained on, and
what the lab says about a framing (too small, cut by the photo's edge) and about a group
(tight boxes, where each number goes, how to tell people apart).

Coordinates: pixel centres at integers, as in lab.data.transforms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lab.config import DataConfig
from lab.data.codec import CROP_SIZE

# Person square side (from the annotation, margin 0.3) below which the pose model's
# 128 px crop is upsampled more than 2x from the original pixels: the joints are blurred.
MIN_SIDE_PX = 64
# The smallest person the detector finds reliably, as a fraction of the photo's long side
# (square side, margin 0.3): measured by scripts/compare_person_detectors.py (recall by size).
MIN_DETECTABLE_SIDE = 0.12

# Detector keypoints -> the lab's training framing (margin 0.3), fitted (medians) by
# `scripts/compare_person_detectors.py --fit-framing` on LSPET training photos (never LSP im1001-im2000):
#   centre = hip + radius * (DX, DY),  side = RADIUS * radius
# (adding the hip -> shoulder direction or the torso length did not lower the median errors).
FRAME_DX, FRAME_DY, FRAME_RADIUS = 0.0095, -0.0450, 1.810
# After `refine`: person_box of the landmark joints, centre moved by side * (DX, DY), side x SCALE.
REFINED_DX, REFINED_DY, REFINED_SCALE = -0.0102, -0.0059, 0.998
TRAIN_MARGIN = DataConfig.margin  # the pose models' framing: side = (1 + margin) x the joints' extent


@dataclass
class Person:
    """One detected person, in original photo pixels.

    box: (x0, y0, x1, y1), the square around the detector's whole-body circle. It may
         reach outside the photo when the person is cut by its edge.
    score: detector confidence in [0, 1].
    hip: (x, y) the detector's mid-hip point; radius: its whole-body circle's radius.
    top: (x, y) the detector's second keypoint: radius away from the hip, towards the head.
    shoulder: (x, y) mid-shoulder point (the detector's third keypoint).
    level: the grid level (1 = whole photo) of the strongest detection merged into this one.
    joints: after `refine`, the 14 LSP joints (lab.joints order) estimated from MediaPipe's
         pose landmarks, (14, 2) photo px; `square_box` then frames them. None before.
    presence: after `refine`, the landmark model's confidence that a person is there.
    """
    box: tuple[float, float, float, float]
    score: float
    hip: tuple[float, float] = (0.0, 0.0)
    radius: float = 0.0
    top: tuple[float, float] = (0.0, 0.0)
    shoulder: tuple[float, float] = (0.0, 0.0)
    level: int = 1
    joints: np.ndarray | None = None
    presence: float | None = None

    @property
    def side(self) -> float:
        """Side of `box` (photo pixels)."""
        return float(self.box[2] - self.box[0])

    @property
    def centre(self) -> tuple[float, float]:
        return (float(self.box[0] + self.box[2]) / 2, float(self.box[1] + self.box[3]) / 2)



def square_box(person: Person, margin: float = TRAIN_MARGIN) -> tuple[float, float, float]:
    """The square crop (cx, cy, side) that frames `person` as the pose models were trained:
    side = (1 + margin) x the extent of the joints, centred on the joints' box centre
    (lab.data.transforms.person_box). Feed it to lab.data.transforms.box_affine.

    After `refine`, framed around the joints estimated from the pose landmarks (as
    person_box), corrected by the REFINED_* constants; before, estimated from the detector's
    mid-hip point and whole-body radius with the FRAME_* constants (both fitted on annotated
    training photos; docs/person_detectors.md)."""
    if person.joints is not None:
        from lab.data.transforms import person_box
        cx, cy, side = person_box(np.asarray(person.joints, np.float64), np.ones(len(person.joints), bool), margin)
        return (float(cx + REFINED_DX * side), float(cy + REFINED_DY * side),
                float(max(side * REFINED_SCALE, 16.0)))
    cx = person.hip[0] + FRAME_DX * person.radius
    cy = person.hip[1] + FRAME_DY * person.radius
    side = FRAME_RADIUS * person.radius * (1 + margin) / (1 + TRAIN_MARGIN)
    return float(cx), float(cy), float(max(side, 16.0))


def square_from_box(box: tuple[float, float, float, float], margin: float = TRAIN_MARGIN) -> tuple[float, float, float]:
    """The square crop (cx, cy, side) for a box (x0, y0, x1, y1) that a learner drew snugly
    around a person: the box is taken as the joints' extent, so side = (1 + margin) x its
    longer side, centred on it (lab.data.transforms.person_box)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = min(x0, x1), max(x0, x1)
    y0, y1 = min(y0, y1), max(y0, y1)
    return (x0 + x1) / 2, (y0 + y1) / 2, max(max(x1 - x0, y1 - y0) * (1 + margin), 16.0)


def outline(person: Person, pad: float = 0.08) -> tuple[float, float, float, float]:
    """The box (x0, y0, x1, y1) photo px drawn around a person on the photo: after `refine`,
    tight around the 14 joints (head top included), `pad` x their extent added on every
    side; before, the detector's square (`box`)."""
    if person.joints is None:
        return tuple(float(v) for v in person.box)
    j = np.asarray(person.joints, np.float64)                    # (14, 2)
    (x0, y0), (x1, y1) = j.min(0), j.max(0)
    m = pad * max(x1 - x0, y1 - y0, 1.0)
    return float(x0 - m), float(y0 - m), float(x1 + m), float(y1 + m)


def distinct(people: list[Person], same: float = 0.15, overlap: float = 0.9) -> list[Person]:
    """People in order, without repeats of someone already listed: after `refine`, two
    detections (say from two tile levels) whose landmarks land on the same body (median joint
    distance under `same` x that body's extent, left and right either way round); unrefined, boxes that overlap almost entirely
    (over `overlap` of the smaller one). Two people who overlap on the photo (a catcher behind
    a batter) have different landmarks and both stay."""
    kept: list[Person] = []
    for p in people:
        dup = False
        for q in kept:
            if p.joints is not None and q.joints is not None:
                from lab.joints import FLIP_PERM
                a, b = np.asarray(p.joints, np.float64), np.asarray(q.joints, np.float64)
                size = max(np.ptp(b, 0).max(), 1.0)
                d = min(float(np.median(np.linalg.norm(a - b, axis=1))),          # as found, or with left
                        float(np.median(np.linalg.norm(a[list(FLIP_PERM)] - b, axis=1))))   # and right swapped
                dup |= d < same * size
            else:
                a, b = np.asarray(outline(p)), np.asarray(outline(q))
                iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
                ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
                small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
                dup |= small > 0 and iw * ih / small > overlap
        if not dup:
            kept.append(p)
    return kept


def label_points(boxes) -> list[tuple[float, float]]:
    """Where to write each box's number: a point inside its own box (x0, y0, x1, y1) and, where
    the box has one, outside every other box, so that a number never sits on someone else; for
    a box nested inside a larger one, a point in no box smaller than its own (it reads as the
    inner box's). Candidates run from the top of the box down (a number near the head)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    cands = [(fx, fy) for fy in (0.06, 0.15, 0.3, 0.5, 0.7, 0.9) for fx in (0.5, 0.3, 0.7, 0.12, 0.88)]
    out = []
    for i, (x0, y0, x1, y1) in enumerate(b):
        others = np.delete(np.arange(len(b)), i)
        pts = [(x0 + fx * (x1 - x0), y0 + fy * (y1 - y0)) for fx, fy in cands]

        def holders(x, y):
            return [j for j in others if b[j, 0] <= x <= b[j, 2] and b[j, 1] <= y <= b[j, 3]]
        best = next(((x, y) for x, y in pts if not holders(x, y)), None) or \
            next(((x, y) for x, y in pts if all(area[j] > area[i] for j in holders(x, y))), None) or pts[0]
        out.append((float(best[0]), float(best[1])))
    return out


def describe(boxes, photo_shape: tuple[int, ...]) -> list[str]:
    """Words that tell people apart in a list: where each box is across the photo and how tall
    it is ("left, 310 px tall (52% of the photo's height)")."""
    h, w = photo_shape[:2]
    out = []
    for x0, y0, x1, y1 in np.asarray(boxes, np.float64).reshape(-1, 4):
        cx = (x0 + x1) / 2 / max(w, 1)
        where = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
        tall = min(y1, h) - max(y0, 0)
        out.append(f"{where}, {tall:.0f} px tall ({tall / max(h, 1):.0%} of the photo's height)")
    return out


def most_prominent(people: list[Person]) -> Person | None:
    """The default pick: the largest confident person, preferring the photo's centre a little.

    `find_people` already returns people in this order; None when there is nobody.
    """
    return people[0] if people else None


def too_small(person: Person, min_side_px: float = MIN_SIDE_PX) -> bool:
    """True when the person's training-style square is under `min_side_px` photo pixels:
    the pose model's 128 px crop would upsample it more than 128 / min_side_px times."""
    return square_box(person)[2] < min_side_px


def cut_by_edge(person: Person, photo_shape: tuple[int, ...], along: float = 0.15, across: float = 0.3) -> bool:
    """True when part of the person is probably outside the photo.

    After `refine`: some estimated joint lies outside the photo by more than 3% of the
    framing's side. Before (detector only): the training-style square (`square_box`)
    reaches past the photo's border by more than `along` x its side at the head or feet
    end (the sides facing the hip -> shoulder direction) or `across` x its side at the
    other two (a narrow, upright person leaves empty margin there), or the mid-hip or
    mid-shoulder point is outside.
    """
    h, w = photo_shape[:2]
    cx, cy, side = square_box(person)
    if person.joints is not None:
        j, t = np.asarray(person.joints), 0.03 * side
        return bool((j < -0.5 - t).any() or (j[:, 0] > w - 0.5 + t).any() or (j[:, 1] > h - 0.5 + t).any())
    over = np.array([-0.5 - (cx - side / 2), (cx + side / 2) - (w - 0.5),      # left, right
                     -0.5 - (cy - side / 2), (cy + side / 2) - (h - 0.5)]) / side  # top, bottom
    v = np.subtract(person.shoulder, person.hip)
    vertical = abs(v[1]) >= abs(v[0])
    tol = np.array([across, across, along, along] if vertical else [along, along, across, across])
    inside = lambda p: -0.5 <= p[0] <= w - 0.5 and -0.5 <= p[1] <= h - 0.5
    return bool((over > tol).any() or not inside(person.hip) or not inside(person.shoulder))


def person_warnings(person: Person, photo_shape: tuple[int, ...], min_side_px: float = MIN_SIDE_PX,
                    crop_size: int = CROP_SIZE) -> list[str]:
    """Plain-language warnings for a learner about this person's crop (empty when all is well)."""
    out = []
    side = square_box(person)[2]
    if too_small(person, min_side_px):
        out.append(f"This person is small in the photo (about {side:.0f} px for the whole crop): "
                   f"the {crop_size} px crop is enlarged {crop_size / side:.1f}x from the original pixels, "
                   "so it is blurry and the joints are less accurate.")
    if cut_by_edge(person, photo_shape):
        out.append("This person is cut off by the photo's edge: the missing part is filled with black "
                   "and those joints cannot be found.")
    return out


def box_warnings(box: tuple[float, float, float], photo_shape: tuple[int, ...], min_side_px: float = MIN_SIDE_PX,
                 crop_size: int = CROP_SIZE, outside: float = 0.15) -> list[str]:
    """The same warnings for a square crop box (cx, cy, side) that a learner set by hand:
    small when its side is under `min_side_px`; past the photo's edge when more than
    `outside` x its side lies outside on some side."""
    h, w = photo_shape[:2]
    cx, cy, side = (float(v) for v in box)
    out = []
    if side < min_side_px:
        out.append(f"This box is small (side {side:.0f} px): the {crop_size} px crop is enlarged "
                   f"{crop_size / side:.1f}x from the original pixels, so it is blurry and the joints are less accurate.")
    over = max(-0.5 - (cx - side / 2), (cx + side / 2) - (w - 0.5), -0.5 - (cy - side / 2), (cy + side / 2) - (h - 0.5))
    if over > outside * side:
        out.append("This box reaches past the photo's edge: that part of the crop is black, and joints "
                   "there cannot be found.")
    return out


def no_people_message(photo_shape: tuple[int, ...]) -> str:
    """What to tell the learner when `find_people` found nobody."""
    long_side = max(photo_shape[:2])
    return (f"No person found. People smaller than about {MIN_DETECTABLE_SIDE * long_side:.0f} px "
            f"({MIN_DETECTABLE_SIDE:.0%} of this photo's long side), lying down or upside down are "
            "often missed: draw a box around the person instead.")


def crop_person(rgb: np.ndarray, person: Person, size: int = CROP_SIZE,
                margin: float = TRAIN_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """The square crop (size, size, 3) uint8 of `person`, resampled from the original pixels
    (lab.data.transforms.crop_image), and its affine (2, 3) original -> crop (box_affine).

    Only the part of the photo under the box is handed to crop_image, so a crop from a
    large photo costs what its box costs, not what the whole photo costs."""
    from lab.data.transforms import box_affine, compose, crop_image
    box = square_box(person, margin)
    A = box_affine(box, size)
    h, w = rgb.shape[:2]
    cx, cy, side = box
    f = int(side / size) if size / side < 0.5 else 1           # crop_image's anti-alias reduce factor
    pad = 2 * f + 2
    # region corners on multiples of f, so the reduce blocks fall where they would on the whole photo
    x0, y0 = (max(int(cx - side / 2) - pad, 0) // f) * f, (max(int(cy - side / 2) - pad, 0) // f) * f
    x1, y1 = min(int(math.ceil(cx + side / 2)) + pad, w), min(int(math.ceil(cy + side / 2)) + pad, h)
    if x1 <= x0 or y1 <= y0:                                   # the box lies outside the photo
        return np.zeros((size, size, 3), np.uint8), A
    # the same pixel grid, shifted: region px = original px - (x0, y0)
    shift = np.array([[1, 0, x0], [0, 1, y0]], np.float64)   # region -> original
    return crop_image(np.ascontiguousarray(rgb[y0:y1, x0:x1]), compose(A, shift), size), A
