"""lab.people: finding people before framing, on real fixture photos and composites made here.

The composites paste fixture photos (LSP and LSPET, each with one annotated person) at
different scales onto one canvas, so the ground truth of every person is known:
lab.data.transforms.person_box of its joints, moved and scaled with the photo.
"""
from __future__ import annotations

import numpy as np
import pytest
from people_util import canvas, covers, paste
from PIL import Image

from lab import people as P
from lab.data.transforms import apply_affine, box_affine, crop_image, person_box
from lab.resources import SAMPLES

# Fixture photos the detector finds at their native size (LSP training half and LSPET).
PHOTOS = ("lsp/im0001", "lsp/im0002", "lspet/im00002", "lspet/im00005")


def matches(person: P.Person, gt, centre_tol: float = 0.12, scale_tol: float = 0.2) -> bool:
    """The person's framing (square_box) is close to the ground-truth square: after `refine` the
    framing errors are ~4% (centre) and ~6% (side) in the median on training photos."""
    cx, cy, side = P.square_box(person)
    return (np.hypot(cx - gt[0], cy - gt[1]) < centre_tol * gt[2]
            and abs(np.log(side / gt[2])) < np.log(1 + scale_tol))


def found(rgb, people, gt) -> P.Person | None:
    """The detected person whose refined framing matches `gt`, refined; None if nobody."""
    for p in people:
        if covers(p, gt):
            q = P.refine(rgb, p)
            if matches(q, gt):
                return q
    return None


@pytest.fixture(scope="module")
def photos(by_id):
    return [by_id[i] for i in PHOTOS]


# ------------------------------------------------------------------ one person
@pytest.mark.parametrize("rid", PHOTOS)
def test_one_real_photo_is_framed_like_training(by_id, rid):
    rec = by_id[rid]
    rgb = rec.image()
    people = P.find_people(rgb)
    assert len(people) >= 1
    gt = person_box(rec.coords, rec.labelled, 0.3)
    best = P.most_prominent(people)
    assert covers(best, gt)
    # the detector alone frames within the training augmentation's reach (scale +-25%, shift 8%)...
    cx, cy, side = P.square_box(best)
    assert np.hypot(cx - gt[0], cy - gt[1]) < 0.4 * gt[2] and 0.6 < side / gt[2] < 1.5
    # ... and its pose landmarks frame like the annotation
    best = P.refine(rgb, best)
    assert best.joints.shape == (14, 2) and best.presence > 0.5
    assert matches(best, gt), (P.square_box(best), gt)
    assert not P.cut_by_edge(best, rgb.shape) and not P.too_small(best)
    assert P.person_warnings(best, rgb.shape) == []


def test_boxes_are_in_original_pixels(by_id):
    """The same photo at twice the size gives boxes twice as large, at twice the coordinates."""
    rgb = by_id["lsp/im0002"].image()
    big = np.asarray(Image.fromarray(rgb).resize((rgb.shape[1] * 2, rgb.shape[0] * 2), Image.BILINEAR))
    a, b = P.find_people(rgb)[0], P.find_people(big)[0]
    ca, cb = np.array(P.square_box(a)), np.array(P.square_box(b))
    np.testing.assert_allclose(cb, 2 * ca + [0.5, 0.5, 0], rtol=0.08, atol=4)


def test_nobody_in_a_plain_photo():
    rgb = canvas(800, 600)
    assert P.find_people(rgb) == []
    assert P.most_prominent([]) is None
    assert "draw a box" in P.no_people_message(rgb.shape)


# ------------------------------------------------------------------ several people
@pytest.mark.parametrize("layout", [
    # (photo index, person square side, x0, y0) on a 1200 x 900 canvas
    [(0, 560, 20, 40), (3, 200, 700, 450)],
    [(1, 480, 10, 300), (2, 300, 520, 40), (3, 180, 740, 570)],
])
def test_composite_every_person_found_and_each_pick_its_own_crop(photos, layout):
    rgb = canvas(1200, 900, seed=len(layout))
    gts = [paste(rgb, photos[i], side, x0, y0) for i, side, x0, y0 in layout]
    people = P.find_people(rgb)
    picks = []
    for gt in gts:
        hit = [p for p in people if covers(p, gt)]
        assert hit, f"person at {np.round(gt)} not found among {[np.round(p.box) for p in people]}"
        picks.append(hit[0])
    assert len({id(p) for p in picks}) == len(gts)                       # one detection per person
    # the default pick is the largest person
    assert P.most_prominent(people) is picks[int(np.argmax([g[2] for g in gts]))]
    picks = [P.refine(rgb, p) for p in picks]
    for p, gt in zip(picks, gts):
        assert matches(p, gt), (P.square_box(p), gt)
    # each pick gives its own crop, centred on its own person
    crops = []
    for p, gt in zip(picks, gts):
        crop, A = P.crop_person(rgb, p, 128)
        assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
        centre = apply_affine(A, np.array(gt[:2]))                       # ground-truth centre in the crop
        assert np.all(np.abs(centre - 63.5) < 0.25 * 128)
        crops.append(crop.astype(np.int16))
    for i in range(len(crops)):
        for j in range(i + 1, len(crops)):
            assert np.abs(crops[i] - crops[j]).mean() > 10


# ------------------------------------------------------------------ small, distant, cut
def test_distant_person_in_a_4000x3000_photo_cropped_from_original_pixels(photos):
    """A person 13% of the long side is found by the tiles; the crop is resampled from the
    original pixels, so it is sharper than a crop taken from the detector's downscaled copy."""
    rgb = canvas(4000, 3000)
    gt = paste(rgb, photos[1], 560, 2900, 1900)
    person = found(rgb, P.find_people(rgb), gt)
    assert person is not None and not P.too_small(person) and not P.cut_by_edge(person, rgb.shape)
    crop, A = P.crop_person(rgb, person, 128)
    small = np.asarray(Image.fromarray(rgb).resize((400, 300), Image.BOX))   # a 10x smaller copy
    box = P.square_box(person)
    from_small = crop_image(small, box_affine((box[0] / 10, box[1] / 10, box[2] / 10), 128), 128)
    sharp = lambda im: np.abs(np.diff(im.astype(np.float64), axis=1)).mean()
    assert sharp(crop) > 1.3 * sharp(from_small)


def test_tiny_person_in_a_large_photo_is_reported_plainly(photos):
    """A person 2% of a 4000 x 3000 photo's long side is below what the detector resolves:
    nothing matches, and the message says how small is too small."""
    rgb = canvas(4000, 3000)
    gt = paste(rgb, photos[1], 80, 1800, 1400)
    assert found(rgb, P.find_people(rgb), gt) is None
    msg = P.no_people_message(rgb.shape)
    assert f"{P.MIN_DETECTABLE_SIDE * 4000:.0f} px" in msg


def test_small_photo_person_is_found_but_flagged_too_small(photos):
    rgb = canvas(150, 150)
    gt = paste(rgb, photos[1], 56, 40, 30)
    person = found(rgb, P.find_people(rgb), gt)
    assert person is not None and P.too_small(person)
    assert any("small" in w for w in P.person_warnings(person, rgb.shape))


def test_person_cut_by_the_edge(by_id):
    rec = by_id["lsp/im0002"]
    rgb = rec.image()
    cut = rgb[: int(rec.coords[[2, 3], 1].mean()) + 5]                      # keep down to the hips
    people = P.find_people(cut)
    assert people and P.cut_by_edge(people[0], cut.shape)                 # from the detector alone
    assert any("cut off" in w for w in P.person_warnings(people[0], cut.shape))
    assert P.cut_by_edge(P.refine(cut, people[0]), cut.shape)            # from the landmarks
    whole = P.find_people(rgb)[0]
    assert not P.cut_by_edge(whole, rgb.shape) and not P.cut_by_edge(P.refine(rgb, whole), rgb.shape)


def test_head_and_shoulders_portrait_is_cut():
    rgb = np.asarray(Image.open(SAMPLES / "astronaut.jpg").convert("RGB"))
    people = P.find_people(rgb)
    assert people and P.cut_by_edge(people[0], rgb.shape)


# ------------------------------------------------------------------ API details
def test_square_box_margin_and_bad_input(photos):
    p = P.find_people(photos[0].image())[0]
    cx, cy, side = P.square_box(p)
    cx2, cy2, side2 = P.square_box(p, margin=0.6)
    assert (cx2, cy2) == (cx, cy) and side2 == pytest.approx(side * 1.6 / 1.3)
    from lab.errors import LabError
    with pytest.raises(LabError):
        P.find_people(np.zeros((10, 10), np.uint8))


def test_square_from_a_drawn_box_matches_the_training_convention(by_id):
    rec = by_id["lsp/im0002"]
    pts = rec.coords[rec.labelled]
    drawn = (*pts.max(0), *pts.min(0))                      # corners in either order
    np.testing.assert_allclose(P.square_from_box(drawn), person_box(rec.coords, rec.labelled, 0.3))


def test_crop_is_the_same_as_cropping_the_whole_photo(by_id):
    """crop_person hands crop_image only the region under the box: same pixels, less work."""
    rgb = np.asarray(Image.fromarray(by_id["lsp/im0002"].image()).resize((1450, 2010), Image.BILINEAR))
    p = P.find_people(rgb)[0]
    crop, A = P.crop_person(rgb, p, 128)
    np.testing.assert_array_equal(crop, crop_image(rgb, box_affine(P.square_box(p), 128), 128))
    np.testing.assert_allclose(A, box_affine(P.square_box(p), 128))


def test_anchors_match_the_model():
    a = P.ssd_anchors()
    assert a.shape == (2254, 2) and a.min() > 0 and a.max() < 1
    assert P.model_path().name == "pose_detection.tflite"


def test_box_warnings_for_a_hand_drawn_box():
    shape = (300, 400, 3)
    assert P.box_warnings((200, 150, 200), shape) == []
    assert any("small" in w for w in P.box_warnings((200, 150, 40), shape))
    assert any("past the photo's edge" in w for w in P.box_warnings((20, 150, 200), shape))


def test_the_package_ships_the_detector_weights_with_their_licence(monkeypatch, tmp_path):
    """The two MediaPipe models travel inside the package (lab/assets/mediapipe), unchanged
    (SHA-256), with their Apache-2.0 licence: nothing is fetched, at setup or at run time."""
    import hashlib
    import subprocess

    from lab.resources import MEDIAPIPE
    monkeypatch.delenv(P.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail(f"nothing may be downloaded: {a}"))
    for name, (_, sha) in P.MODELS.items():
        assert P.model_path(name) == MEDIAPIPE / f"{name}.tflite"
        assert hashlib.sha256(P.model_path(name).read_bytes()).hexdigest() == sha
    assert P.fetch_weights() == MEDIAPIPE                   # `python -m lab.people fetch`: a check, no download
    assert "Apache License" in (MEDIAPIPE / "LICENSE").read_text()
    assert "Apache" in (MEDIAPIPE / "README.md").read_text()
    # an explicit folder still wins (a teacher's own copies)
    (tmp_path / "pose_detection.tflite").write_bytes(b"x")
    monkeypatch.setenv(P.WEIGHTS_ENV, str(tmp_path))
    assert P.model_path() == tmp_path / "pose_detection.tflite"


def test_label_points_sit_inside_their_own_box_and_no_other():
    """Three overlapping boxes, as a batter, catcher and umpire give: box 2's top-left corner
    lies inside box 1, so a number there would label the wrong person."""
    boxes = [(100, 100, 300, 500), (250, 80, 420, 460), (380, 60, 560, 520)]
    for k, (x, y) in enumerate(P.label_points(boxes)):
        x0, y0, x1, y1 = boxes[k]
        assert x0 <= x <= x1 and y0 <= y <= y1
        for j, (a0, b0, a1, b1) in enumerate(boxes):
            if j != k:
                assert not (a0 <= x <= a1 and b0 <= y <= b1), (k, j)


def test_outline_is_tight_around_the_refined_joints_and_describe_tells_people_apart():
    person = P.Person(box=(0, 0, 400, 400), score=0.9)
    assert P.outline(person) == (0, 0, 400, 400)                 # not refined: the detector's square
    joints = np.array([[150 + 10 * (k % 3), 100 + 20 * k] for k in range(14)], float)
    x0, y0, x1, y1 = P.outline(P.Person(box=(0, 0, 400, 400), score=0.9, joints=joints))
    assert x0 < 150 and x1 > 170 and y0 < 100 and y1 > 360 and (x1 - x0) < 120
    words = P.describe([(0, 0, 100, 300), (400, 50, 520, 250), (800, 0, 900, 500)], (600, 1000, 3))
    assert words[0].startswith("left, 300 px tall") and words[1].startswith("centre, 200 px")
    assert words[2].startswith("right, 500 px tall (83% of the photo's height)")


def test_distinct_drops_a_second_detection_of_one_body_but_keeps_overlapping_people():
    body = np.array([[100 + 5 * k, 50 + 30 * k] for k in range(14)], float)
    batter = P.Person(box=(0, 0, 600, 600), score=0.9, joints=body)
    again = P.Person(box=(40, 40, 500, 500), score=0.7, joints=body + 3.0)          # same body, another tile
    crouched = body * [1.0, 0.5] + [60, 200]                                        # inside the batter's box
    catcher = P.Person(box=(20, 150, 400, 500), score=0.8, joints=crouched)
    assert P.distinct([batter, again, catcher]) == [batter, catcher]


def test_a_box_nested_in_another_gets_its_number_in_no_smaller_box():
    big, small = (0, 0, 400, 600), (100, 200, 220, 380)       # a child standing in front of an adult
    (bx, by), (sx, sy) = P.label_points([big, small])
    assert not (100 <= bx <= 220 and 200 <= by <= 380)         # the adult's number is not on the child
    assert 100 <= sx <= 220 and 200 <= sy <= 380               # the child's is inside the child's box
