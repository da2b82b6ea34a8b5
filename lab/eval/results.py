"""The evaluation JSONs that `pose-lab eval --json` writes, read for the lab's pages and lessons.

- `load_eval`           an evaluation JSON, checked against the schema (LabError if not usable)
- `matches_weights`     whether that JSON was computed for the weights file shipped now
- `eval_path`, `check_eval`  a weights file's JSON, and whether it can be shown (with why not)
- `pck_of`              one method's mean PCK@0.2 (the lessons quote it)
- `pck_table`           per-joint and per-group PCK@0.2 of several methods side by side
- `disagreement`        per-image mean distance between two methods' predictions, in body sizes
- `rank_disagreement`   the test images where two methods disagree most
- `body_frame`          the frame a pose defines: torso-centred, scaled by the body's size
- `find_image`          a test image from the dataset folders or, failing that, a cache

The regressor's pull towards the average pose is studied in `lab.eval.mean_pose`.
Distances here are in "body sizes" of the ground truth (see `body_frame`), not PCK's torso
diameter, which a person lying towards the camera shrinks to almost nothing.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

from lab.errors import LabError
from lab.eval.pck import points_gain
from lab.joints import GROUPS, L_HIP, L_SHOULDER, R_HIP, R_SHOULDER, SHORT

TORSO_JOINTS = (R_HIP, L_HIP, R_SHOULDER, L_SHOULDER)


# ------------------------------------------------------------------ reading
def load_eval(path: str | Path) -> dict:
    """An evaluation JSON; LabError (with the command that makes it) if missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise LabError(f"{path} is missing. Make it with `pose-lab eval --model "
                       f"{path.with_suffix('').with_suffix('.safetensors')} --split test --json {path}`.")
    try:
        res = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise LabError(f"{path} is not readable JSON ({type(e).__name__}: {e}).")
    try:
        methods = res["methods"]
        assert isinstance(methods, dict) and methods
        for name, m in methods.items():
            p = m["pck@0.2"]
            float(p["mean"]), dict(p["per_joint"]), dict(p["groups"])
            c = m["curve"]
            assert len(c["alpha"]) == len(c["mean"]) > 1
            assert isinstance(m["predictions"], dict)
        assert isinstance(res["ground_truth"], dict) and isinstance(res["labelled"], dict)
    except (KeyError, TypeError, ValueError, AssertionError) as e:
        raise LabError(f"{path} does not look like a `pose-lab eval --json` file "
                       f"(bad or missing field: {type(e).__name__} {e}).")
    return res


def matches_weights(result: dict, weights: str | Path) -> bool | None:
    """Whether an evaluation result was computed for exactly this weights file (its sha256);
    None when the result or the file doesn't say."""
    from lab.eval.evaluate import sha256
    weights = Path(weights)
    if not result.get("sha256") or not weights.is_file():
        return None
    return sha256(weights) == result["sha256"]


def eval_path(weights: str | Path) -> Path:
    """Where `pose-lab eval --json` results for a weights file live: pretrained/pose.safetensors
    -> pretrained/pose.eval.json."""
    weights = Path(weights)
    return weights.with_name(weights.name.removesuffix(".safetensors") + ".eval.json")


def _shown(p: Path) -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        return str(Path(p).resolve().relative_to(root))
    except ValueError:
        return str(p)


def check_eval(path: str | Path, weights: str | Path) -> dict:
    """An evaluation JSON if it can be shown as the numbers of `weights`, else why not.

    Returns {"path", "result" (the parsed JSON or None), "message" (None, or a sentence for
    the reader)}. The result is None when the JSON is missing or unreadable, when the
    weights file is absent, or when the JSON was computed for other weights (sha256); a
    JSON that does not record its weights is returned, with a message saying so.
    """
    path, weights = Path(path), Path(weights)
    redo = f"`pose-lab eval --model {_shown(weights)} --split test --json {_shown(path)}`"
    out = {"path": path, "result": None, "message": None}
    if not path.is_file():
        out["message"] = f"`{_shown(path)}` is missing: make it with {redo}."
        return out
    try:
        res = load_eval(path)
    except LabError as e:
        out["message"] = str(e)
        return out
    if not weights.is_file():
        out["message"] = (f"`{_shown(path)}` describes `{_shown(weights)}`, which is not here, so its numbers "
                          "are not shown.")
        return out
    same = matches_weights(res, weights)
    if same is False:
        out["message"] = (f"`{_shown(path)}` was computed for a different `{weights.name}` than the one here "
                          f"now, so its numbers are not shown. Refresh it with {redo}.")
        return out
    out["result"] = res
    if same is None:
        out["message"] = (f"`{_shown(path)}` does not record which weights it evaluated (no sha256): its "
                          f"numbers may not describe `{_shown(weights)}`. Refresh it with {redo}.")
    return out


def pck_of(result: dict, method: str) -> float | None:
    """A method's mean PCK@0.2 in [0, 1] from an evaluation result, or None if it has none."""
    m = (result or {}).get("methods", {}).get(method)
    return None if m is None else float(m["pck@0.2"]["mean"])


def methods_of(*results: dict) -> dict[str, dict]:
    """Method name -> its entry, over several evaluation results (first one wins)."""
    out: dict[str, dict] = {}
    for res in results:
        for name, m in res["methods"].items():
            out.setdefault(name, m)
    return out


def pck_table(methods: dict[str, dict]) -> list[dict]:
    """Rows {"kind": "group"|"joint"|"mean", "name", <method>: PCK@0.2 in [0, 1], ...};
    plus "marginal - unary" when both are present: the difference of the two as shown (each
    rounded to 0.1 % first, `lab.eval.pck.points_gain`), as a fraction like the rest."""
    def row(kind, name, get):
        r = {"kind": kind, "name": name}
        for method, m in methods.items():
            v = get(m["pck@0.2"])
            r[method] = float(v) if v is not None else float("nan")
        if "marginal" in methods and "unary" in methods:
            g = points_gain(r["marginal"], r["unary"])
            r["marginal - unary"] = float("nan") if g is None else g / 100
        return r
    rows = [row("mean", "mean", lambda p: p["mean"])]
    rows += [row("group", g, lambda p, g=g: p["groups"].get(g)) for g in GROUPS]
    rows += [row("joint", j, lambda p, j=j: p["per_joint"].get(j)) for j in SHORT]
    return rows


def common_ids(*results: dict, methods: tuple[str, ...] = ()) -> list[str]:
    """Image ids present in every result's ground truth and every named method's predictions."""
    ids = None
    for res in results:
        have = set(res["ground_truth"])
        for name in methods:
            if name in res["methods"]:
                have &= set(res["methods"][name]["predictions"])
        ids = have if ids is None else ids & have
    return sorted(ids or [])


def stack(res_or_method: dict, key: str, ids: list[str]) -> np.ndarray:
    """(N, 14, 2) from a {"predictions": {...}} entry or an eval result's ground truth."""
    table = res_or_method["predictions"] if key == "predictions" else res_or_method[key]
    return np.asarray([table[i] for i in ids], dtype=float).reshape(len(ids), -1, 2)


def ground_truth(res: dict, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    gt = stack(res, "ground_truth", ids)
    lab = np.asarray([res["labelled"][i] for i in ids], dtype=bool).reshape(len(ids), -1)
    return gt, lab


# ------------------------------------------------------------------ disagreement
def disagreement(a: np.ndarray, b: np.ndarray, gt: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """Per image, the mean over labelled joints of |a - b| divided by the ground truth's body
    size (see `body_frame`) (N,); NaN when the ground truth lacks a torso joint. Body size,
    not torso diameter: a torso foreshortened towards the camera would make any
    disagreement look huge and fill the ranking with such images."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    labelled = np.asarray(labelled, bool)
    _, scale, ok = body_frame(gt, labelled)
    d = np.linalg.norm(a - b, axis=-1) / scale[:, None]
    return _row_mean(np.where(labelled & ok[:, None], d, np.nan))


def _row_mean(d: np.ndarray) -> np.ndarray:
    counted = (~np.isnan(d)).sum(1)
    return np.where(counted > 0, np.nansum(d, 1) / np.maximum(counted, 1), np.nan)


def mean_error(pred: np.ndarray, gt: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """Per image, mean distance of the labelled joints to the ground truth, in body sizes (N,)."""
    return disagreement(pred, gt, gt, labelled)


def rank_disagreement(a_res: dict, b_res: dict, a: str = "marginal", b: str = "regressor",
                      top: int = 8, also: tuple[str, ...] = ("unary",)) -> list[dict]:
    """The `top` images where methods `a` and `b` disagree most: dicts with "id",
    "disagreement" and "error" {method: mean distance to the ground truth}, in body sizes."""
    ma, mb = methods_of(a_res)[a], methods_of(b_res)[b]
    ids = common_ids(a_res, b_res)
    ids = [i for i in ids if i in ma["predictions"] and i in mb["predictions"]]
    if not ids:
        return []
    gt, lab = ground_truth(a_res, ids)
    pa, pb = stack(ma, "predictions", ids), stack(mb, "predictions", ids)
    dis = disagreement(pa, pb, gt, lab)
    errs = {a: mean_error(pa, gt, lab), b: mean_error(pb, gt, lab)}
    for name in also:
        m = methods_of(a_res, b_res).get(name)
        if m is not None and all(i in m["predictions"] for i in ids):
            errs[name] = mean_error(stack(m, "predictions", ids), gt, lab)
    order = [int(i) for i in np.argsort(-np.nan_to_num(dis, nan=-1.0), kind="stable") if not np.isnan(dis[i])]
    return [{"id": ids[i], "disagreement": float(dis[i]),
             "error": {k: float(v[i]) for k, v in errs.items()}} for i in order[:top]]


# ------------------------------------------------------------------ body frame
def body_frame(poses: np.ndarray, labelled: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The frame a pose defines: origin at the mean of its four torso joints (shoulders and
    hips), unit = its size, the root-mean-square distance of its labelled joints from that
    origin. (The size of the whole body, not the torso diameter: a foreshortened torso, e.g.
    a person lying towards the camera, would blow the frame up.)
    Returns centre (N, 2), scale (N,) and ok (N,): False without all four torso joints."""
    poses = np.asarray(poses, float)
    labelled = np.asarray(labelled, bool)
    centre = poses[:, list(TORSO_JOINTS)].mean(1)
    sq = np.where(labelled, ((poses - centre[:, None]) ** 2).sum(-1), 0.0)
    scale = np.sqrt(sq.sum(1) / np.maximum(labelled.sum(1), 1))
    ok = labelled[:, list(TORSO_JOINTS)].all(1) & (scale > 1e-6)
    return centre, np.where(ok, scale, 1.0), ok


def to_frame(poses: np.ndarray, centre: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Points (N, K, 2) -> (points - centre) / scale, per image."""
    return (np.asarray(poses, float) - centre[:, None]) / scale[:, None, None]


# ------------------------------------------------------------------ images
def to_shown(points: np.ndarray, affine: np.ndarray | None) -> np.ndarray:
    """Original-pixel points -> the pixels of the image `find_image` returned."""
    if affine is None:
        return np.asarray(points, float)
    from lab.data.transforms import apply_affine
    return apply_affine(np.asarray(affine), np.asarray(points, float))


def find_image(image_id: str, root: Path | None = None, cache: Path | None = None,
               split: str = "test") -> dict | None:
    """A test image for display: {"rgb", "affine" (original -> shown pixels, or None when
    the original photo is shown), "source"}, or None if neither the dataset nor the cache has it.
    Ids look like "lsp/im1001": the file <root>/lsp/images/im1001.jpg."""
    from lab.data.images import load_image
    if root is not None and "/" in image_id:
        folder, name = image_id.split("/", 1)
        path = Path(root) / folder / "images" / f"{name}.jpg"
        if path.is_file():
            try:
                return {"rgb": load_image(path, name=str(path)), "affine": None, "source": "dataset"}
            except LabError:
                pass
    if cache is not None and Path(cache).is_file():
        from lab.data.images import decode_jpeg
        try:
            c = _cache(str(cache))
        except LabError:
            return None
        if split in c.splits and image_id in c[split].ids:
            s = c[split]
            i = s.ids.index(image_id)
            return {"rgb": decode_jpeg(s.jpeg(i)), "affine": s.affine[i], "source": "cache crop"}
    return None


_CACHES: dict = {}              # the last cache file read (its test crops), keyed by (path, mtime)
_CACHES_LOCK = threading.Lock()


def _cache(path: str):
    from lab.data.cache import PoseCache
    key = (path, Path(path).stat().st_mtime)
    with _CACHES_LOCK:
        if key not in _CACHES:
            _CACHES.clear()
            _CACHES[key] = PoseCache(path)
        return _CACHES[key]
