"""MediaPipe BlazePose on the LiteRT interpreter: the person detector (`find_people`: the whole
photo and overlapping tiles, non-maximum suppression) and the pose landmark model (`refine`:
the 14 LSP joints of one person).

Speed and small people: detection runs on a downscaled copy of the photo (at most
`224 * max(TILES)` pixels on its long side), once on the whole photo and again on
overlapping tiles, so that people down to about MIN_DETECTABLE_SIDE of the photo's long side
are still seen. Boxes are returned in original photo pixels.
"""
from __future__ import annotations

import math
import threading
from dataclasses import replace

import numpy as np
from PIL import Image

from lab.errors import LabError
from lab.people.framing import Person
from lab.people.weights import model_path

INPUT = 224                      # the detector's input side (pixels)
SCORE_MIN = 0.5                  # MediaPipe's own detection threshold
TILES = (1, 2, 3)                # grid levels: the photo's long side split into 1, 2 and 3 tiles
# Neighbouring tiles overlap by this share of a tile at each level (less at the finest level,
# whose 4 x 3 tiles on a 4:3 photo are most of the time budget).
TILE_OVERLAP = {2: 0.5, 3: 1 / 3}
NMS_IOU = 0.3                    # detections of one person merge above this IoU
HEAD_FROM_EARS = 2.0             # head top = neck + 2 x (mid-ears - neck): the ears sit mid-head
# BlazePose's 33 landmarks -> LSP joints 0-11 (lab.joints order); neck and head top are derived.
LSP_FROM_BLAZEPOSE = (28, 26, 24, 23, 25, 27, 16, 14, 12, 11, 13, 15)
LANDMARK_INPUT = 256
ROI_SCALE = 1.25                 # MediaPipe: the landmark model sees 1.25 x the whole-body square


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
