"""Everyday photos in the app (issue 7): the person detector runs before framing, every
person found is a numbered box, each pick gives its own crop on every page, a dragged box
replaces the detected one, and photos with nobody, or a tiny person, are said plainly.

Photos are made here from real LSP test photos (the fixture's images) pasted onto a plain
canvas at different scales, as in tests/people/test_people.py; the joints the page draws must be
those of running the model on that person's crop alone, whatever the weights' accuracy."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from app_util import arr, figure, go, joints_of, rerun, start, texts, xy_of
from PIL import Image

from lab import people as P
from lab.app import photos
from lab.data.transforms import apply_affine, image_box, invert_affine
from lab.infer import POSE_WEIGHTS, PoseLab

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "people"))
from people_util import canvas, covers, paste  # noqa: E402

LAYOUT = [(1, 480, 10, 300), (2, 300, 520, 40), (3, 180, 740, 570)]    # (photo, person side, x0, y0)
PHOTOS = ("lsp/im0001", "lsp/im0002", "lspet/im00002", "lspet/im00005")


def png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def group(by_id):
    """A 1200 x 900 photo of three LSP people at different scales, and their true squares."""
    recs = [by_id[i] for i in PHOTOS]
    rgb = canvas(1200, 900, seed=3)
    gts = [paste(rgb, recs[i], side, x0, y0) for i, side, x0, y0 in LAYOUT]
    return rgb, gts


@pytest.fixture(scope="module")
def models():
    return PoseLab(POSE_WEIGHTS, None)


def upload(at, name: str, rgb: np.ndarray):
    at.file_uploader(key=photos.UPLOAD_KEY).set_value((name, png(rgb), "image/png"))
    return rerun(at)


def person_select(at):
    return next(s for s in at.selectbox if s.label.startswith("Person"))


def crop_rect(fig: dict) -> dict:
    (rect,) = [s for s in fig["layout"]["shapes"] if s.get("name") == "crop"]
    return rect


def listed(rgb) -> list:
    """The people the page lists: everyone found, refined, one entry per body (`lab.people.distinct`)."""
    return P.distinct([P.refine(rgb, p) for p in P.find_people(rgb)])


def alone(models, rgb, person) -> np.ndarray:
    """The unary joints (photo px) of running the model on that person's crop alone."""
    crop, A = P.crop_person(rgb, person, models.size)
    pred = models.predict(crop, image_box(models.size, models.size))
    return apply_affine(invert_affine(A), pred.crop_joints("unary"))


def test_group_photo_numbered_boxes_and_each_pick_its_own_crop(group, models):
    rgb, gts = group
    at = upload(start(), "group.png", rgb)
    people = listed(rgb)
    fig = figure(at, "photo_box")
    boxes = [s for s in fig["layout"]["shapes"] if str(s.get("name", "")).startswith("person")]
    assert [b["name"] for b in boxes] == [f"person {i + 1}" for i in range(len(people))]
    (numbers,) = [t for t in fig["data"] if t.get("name") == "people"]
    assert list(numbers["text"]) == [str(i + 1) for i in range(len(people))]
    sel = person_select(at)
    assert len(sel.options) == len(people) and sel.value == 0             # default: the most prominent
    hits = [next(i for i, p in enumerate(people) if covers(p, gt)) for gt in gts]
    assert len(set(hits)) == len(gts)                                     # everyone found, once each
    assert hits[0] == 0                                                   # the largest is the default
    crops = []
    for i in hits:
        person_select(at).set_value(i)
        rerun(at)
        person = people[i]
        box = P.square_box(person)
        rect = crop_rect(figure(at, "photo_box"))
        assert rect["x0"] == pytest.approx(box[0] - box[2] / 2) and rect["y1"] == pytest.approx(box[1] + box[2] / 2)
        (joints,) = joints_of(figure(at, "skeleton_unary"))
        np.testing.assert_allclose(xy_of(joints), alone(models, rgb, person), atol=1e-2)
        crops.append(np.asarray(figure(at, "crop")["data"][0]["source"]))
        # every page that uses "your photo" analyses this person
        at = go(at, "detector")
        assert person_select(at).value == i
        at = go(at, "try_it")
    assert len(set(map(str, crops))) == len(hits)


def test_the_library_frames_an_upload_as_the_app_does(group, models):
    """PoseLab.predict without a box (lab.infer.frame) gives the app's default crop."""
    rgb, _ = group
    at = upload(start(), "group.png", rgb)
    rect = crop_rect(figure(at, "photo_box"))
    cx, cy, side = models.predict(rgb).box
    assert (rect["x0"], rect["y0"], rect["x1"], rect["y1"]) == pytest.approx(
        (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))


def test_reset_returns_to_the_detected_box_after_the_sliders(group):
    rgb, _ = group
    at = upload(start(), "group.png", rgb)
    detected = crop_rect(figure(at, "photo_box"))
    side = next(s for s in at.slider if s.label == "Crop side (photo px)")
    side.set_value(side.value + 40)
    rerun(at)
    assert crop_rect(figure(at, "photo_box"))["x1"] - crop_rect(figure(at, "photo_box"))["x0"] == \
        pytest.approx(detected["x1"] - detected["x0"] + 40, abs=1)
    assert "drawn or adjusted by you" in texts(at.caption)
    next(b for b in at.button if b.label.startswith("Reset")).click()
    rerun(at)
    assert crop_rect(figure(at, "photo_box")) == detected


def test_a_dragged_box_becomes_the_crop():
    sel = {"box": [{"x": [100.0, 300.0], "y": [50.0, 450.0]}], "points": [{"customdata": [1]}]}
    kind, box = photos.selection_action(sel)
    assert kind == "box" and box == pytest.approx(P.square_from_box((100, 50, 300, 450)))
    assert photos.selection_action({"points": [{"customdata": [2], "point_index": 2}], "box": []}) == ("pick", 2)
    assert photos.selection_action({"box": [{"x": [1.0, 2.0], "y": [1.0, 2.0]}]}) is None     # a stray click
    assert photos.selection_action(None) is None
    # a point without a usable person number (another trace, or binary-encoded customdata) picks nobody
    assert photos.selection_action({"points": [{"customdata": {"dtype": "i8", "bdata": "AgA="}}], "box": []}) is None
    assert photos.selection_action({"points": [{"point_index": 0}], "box": []}) is None


def test_nobody_found_says_so_and_uses_the_whole_photo():
    rgb = canvas(640, 480, seed=7)
    at = upload(start(), "empty.png", rgb)
    assert not at.exception
    assert any("No person found" in w.value for w in at.warning)
    rect = crop_rect(figure(at, "photo_box"))
    cx, cy, side = image_box(640, 480)
    assert rect["x0"] == pytest.approx(cx - side / 2) and rect["x1"] == pytest.approx(cx + side / 2)
    assert not [s for s in at.selectbox if s.label.startswith("Person")]
    assert figure(at, "skeleton_unary")                                   # the page still works


def test_a_small_person_and_a_person_cut_by_the_edge_are_said_plainly(by_id):
    small = canvas(150, 150)
    paste(small, by_id["lsp/im0002"], 56, 40, 30)
    at = upload(start(), "small.png", small)
    assert any("small in the photo" in w.value and "enlarged" in w.value for w in at.warning)
    rec = by_id["lsp/im0002"]
    cut = np.ascontiguousarray(rec.image()[: int(rec.coords[[2, 3], 1].mean()) + 5])    # down to the hips
    at = upload(at, "cut.png", cut)
    assert any("cut off by the photo's edge" in w.value for w in at.warning)
    assert figure(at, "skeleton_unary")


def test_a_detector_that_fails_is_said_plainly_never_a_traceback(monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("interpreter failed")
    monkeypatch.setattr(P, "find_people", broken)
    at = upload(start(), "broken.png", canvas(320, 240, seed=11))
    assert any("could not run" in w.value and "whole photo" in w.value for w in at.warning)
    assert figure(at, "skeleton_unary")


def inside(pt, box) -> bool:
    return box["x0"] <= pt[0] <= box["x1"] and box["y0"] <= pt[1] <= box["y1"]


def innermost(pt, boxes) -> int | None:
    """The smallest box holding the point (a number inside a box nested in another reads as
    the inner box's), or None."""
    holding = [j for j, b in enumerate(boxes) if inside(pt, b)]
    return min(holding, key=lambda j: (boxes[j]["x1"] - boxes[j]["x0"]) * (boxes[j]["y1"] - boxes[j]["y0"]),
               default=None)


def test_picking_number_k_crops_the_person_whose_box_is_labelled_k(group):
    """The picker a learner can trust: every number sits inside its own box and no other (or,
    for a box nested in another, inside the inner one only); each
    box is tight around one real person (its refined landmarks); clicking number k (the marker's
    own customdata) frames the crop on the person inside box k; the list tells people apart."""
    rgb, gts = group
    at = upload(start(), "group.png", rgb)
    fig = figure(at, "photo_box")
    boxes = [s for s in fig["layout"]["shapes"] if str(s.get("name", "")).startswith("person")]
    (numbers,) = [t for t in fig["data"] if t.get("name") == "people"]
    people = listed(rgb)
    assert len(boxes) == len(people) >= len(gts)                       # everyone the detector finds is listed
    for k, box in enumerate(boxes):
        pt = (arr(numbers["x"])[k], arr(numbers["y"])[k])
        assert numbers["text"][k] == str(k + 1) and box["name"] == f"person {k + 1}"
        assert innermost(pt, boxes) == k                                # the number is read as box k's
        tight = P.outline(people[k])
        assert (box["x0"], box["y0"], box["x1"], box["y1"]) == pytest.approx(tight)
        area = (tight[2] - tight[0]) * (tight[3] - tight[1])
        assert area < 0.8 * people[k].side ** 2                          # tighter than the detector's square
        assert sum(1 for gt in gts if inside(gt[:2], box)) <= 1          # never two real people in one box
    for gt in gts:                                                       # each real person has a box
        assert any(inside(gt[:2], b) for b in boxes)
    labels = [person_select(at).format_func(i) for i in range(len(people))]
    assert len({lab.split(" · ", 1)[1].replace("most prominent · ", "") for lab in labels}) == len(labels)
    # each real person's first box in the list (a weaker detection may nest inside a real one)
    for k in sorted({min(j for j, b in enumerate(boxes) if inside(gt[:2], b)) for gt in gts}):
        # the click on number k, as the chart sends it back, picks person k
        action = photos.selection_action({"points": [{"customdata": list(numbers["customdata"][k])}], "box": []})
        assert action == ("pick", k)
        person_select(at).set_value(k)                                   # what the click's callback does
        rerun(at)
        rect = crop_rect(figure(at, "photo_box"))
        centre = ((rect["x0"] + rect["x1"]) / 2, (rect["y0"] + rect["y1"]) / 2)
        box = [s for s in figure(at, "photo_box")["layout"]["shapes"] if s.get("name") == f"person {k + 1}"][0]
        assert inside(centre, box), (k, centre, box)
        gt = next(gt for gt in gts if inside(gt[:2], box))
        assert np.hypot(centre[0] - gt[0], centre[1] - gt[1]) < 0.25 * gt[2]   # the crop is that person
