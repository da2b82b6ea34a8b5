"""lab.eval.robustness: every condition's crop keeps an exact affine, so a joint read off the
crop maps back to the original photo where it was annotated."""
import numpy as np
import pytest

from lab.data.transforms import apply_affine, invert_affine
from lab.eval import robustness as R

SIZE, MARGIN = 96, 0.3


def brightest_spot_photo(rec, xy):
    """The record's photo, black, with one white 5x5 spot at xy (a joint we can find again)."""
    rgb = np.zeros_like(rec.image())
    x, y = (int(round(v)) for v in xy)
    rgb[max(y - 2, 0):y + 3, max(x - 2, 0):x + 3] = 255
    return rgb


class Spot:
    """A record whose photo is black but for a spot at one labelled joint."""

    def __init__(self, rec, k):
        self.rec, self.k = rec, k
        self.coords, self.labelled, self.id = rec.coords, rec.labelled, rec.id

    def image(self):
        return brightest_spot_photo(self.rec, self.coords[self.k])


@pytest.mark.parametrize("condition", ["half resolution", "quarter resolution", "rotated 30", "jpeg 30"])
def test_the_spot_maps_back_to_its_joint(fixture_records, condition):
    rec = next(r for r in fixture_records if r.labelled.all())
    k = 6                                                           # the right wrist
    out = R.condition_crops([Spot(rec, k)], condition, SIZE, MARGIN)
    crop = out["images"][0].astype(float).sum(-1)                  # (S, S)
    ys, xs = np.nonzero(crop >= 0.5 * crop.max())
    w = crop[ys, xs]
    centre = np.array([(xs * w).sum() / w.sum(), (ys * w).sum() / w.sum()])
    back = apply_affine(invert_affine(out["affine"][0]), centre[None])[0]
    side = np.ptp(rec.coords[rec.labelled], 0).max()
    f = {"half resolution": 2, "quarter resolution": 4}.get(condition, 1)
    assert np.linalg.norm(back - rec.coords[k]) <= 0.02 * side + f   # within the spot's own blur


def test_rotated_crop_turns_the_joints(fixture_records):
    rec = fixture_records[0]
    plain = R.condition_crops([rec], "jpeg 30", SIZE, MARGIN)["affine"][0]
    turned = R.condition_crops([rec], "rotated 30", SIZE, MARGIN)["affine"][0]
    c = (SIZE - 1) / 2
    a = apply_affine(plain, rec.coords[rec.labelled]) - c
    b = apply_affine(turned, rec.coords[rec.labelled]) - c
    angle = np.degrees(np.arctan2(b[:, 1], b[:, 0]) - np.arctan2(a[:, 1], a[:, 0]))
    assert np.allclose((angle + 180) % 360 - 180, 30, atol=1e-6)


def test_quarter_hidden_greys_exactly_one_quadrant(fixture_records):
    out = R.condition_crops(fixture_records[:4], "quarter hidden", SIZE, MARGIN)
    h = SIZE // 2
    for crop in out["images"]:
        grey = [(crop[y:y + h, x:x + h] == R.GREY).all() for y in (0, h) for x in (0, h)]
        assert sum(grey) == 1


def test_half_resolution_loses_detail():
    rgb = (np.indices((40, 60)).sum(0) % 2 * 255).astype(np.uint8)[..., None].repeat(3, -1)   # checkerboard
    small = R.shrink(rgb, 2)
    assert small.shape == (20, 30, 3) and np.ptp(small) <= 1        # the pattern averages out


def test_an_unknown_condition_is_refused(fixture_records):
    with pytest.raises(ValueError, match="unknown condition"):
        R.condition_crops(fixture_records[:1], "upside down", SIZE, MARGIN)


def test_upload_path_frames_the_person_as_the_app_does(fixture_records):
    """The app's framing (person detector, landmarks, square_box) on whole LSP photos: the box
    holds the annotated person (most of their joints fall inside the crop)."""
    recs = [r for r in fixture_records if r.id.startswith("lsp/")][:3]
    out = R.upload_path_crops(recs, SIZE)
    assert out["images"].shape == (len(recs), SIZE, SIZE, 3)
    inside = []
    for rec, A in zip(recs, out["affine"]):
        xy = apply_affine(A, rec.coords[rec.labelled])
        inside.append(((xy >= 0) & (xy <= SIZE - 1)).all(-1).mean())
    assert np.mean(inside) >= 0.8, inside


def test_photo_rows_differences_add_up_on_screen():
    ev = {"methods": {"marginal": {"pck@0.2": {"mean": 0.74094, "limbs": 0.7081}}},
          "upload_path": {"nobody_found": 3, "methods": {"marginal": {"mean": 0.70149, "limbs": 0.68}}},
          "robustness": {"quarter resolution": {"marginal": {"mean": 0.40351, "limbs": 0.35}}}}
    rows = R.photo_rows(ev)
    assert [r["mean"] for r in rows] == [74.1, 70.1, 40.4]
    assert [r["change"] for r in rows] == [None, -4.0, -33.7]        # 70.1 - 74.1, 40.4 - 74.1
    assert rows[0]["limbs"] == 70.8 and rows[1]["condition"].startswith("Upload path")
    assert R.photo_rows({"methods": ev["methods"]}) == []
    assert R.photo_rows({"methods": {"regressor": {}}}) == []            # a model without a marginal
