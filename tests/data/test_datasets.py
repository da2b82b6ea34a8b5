"""lab.data.datasets: the LSP / LSPET readers on the real annotation files.

The fixture holds the original joints.mat arrays and a few images; the
hand-checked coordinates below were read off renders of those images with the
joints drawn on them.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from lab.data.datasets import read_lsp, read_lspet
from lab.errors import LabError
from lab.joints import HEAD, L_ANKLE, L_HIP, L_KNEE, L_SHOULDER, NECK, R_ANKLE, R_HIP, R_KNEE, R_SHOULDER, R_WRIST

HIPS, SHOULDERS = [R_HIP, L_HIP], [R_SHOULDER, L_SHOULDER]
KNEES, ANKLES = [R_KNEE, L_KNEE], [R_ANKLE, L_ANKLE]


def raw(root, name):
    return scipy.io.loadmat(str(root / name / "joints.mat"))["joints"]


def patch(img, xy, r=1):
    """Mean colour (R, G, B) of the (2r+1)^2 patch around a joint."""
    x, y = int(round(float(xy[0]))), int(round(float(xy[1])))
    return img[y - r:y + r + 1, x - r:x + r + 1].reshape(-1, 3).astype(float).mean(0)


def assert_near(rec, joint, expected, tol=3.0):
    got = rec.coords[joint]
    assert np.abs(got - np.asarray(expected)).max() <= tol, \
        f"{rec.id} joint {joint}: {got} is not within {tol} px of {expected}"


def assert_upright_order(rec):
    y = rec.coords[:, 1]
    assert y[HEAD] < y[NECK] < y[HIPS].mean() < y[KNEES].mean() < y[ANKLES].mean()
    assert y[HEAD] < y[SHOULDERS].min() and y[SHOULDERS].max() < y[HIPS].min()


def assert_inside_image(rec, img):
    h, w = img.shape[:2]
    xy = rec.coords[rec.labelled]
    assert (xy[:, 0] >= -0.5).all() and (xy[:, 0] <= w - 0.5).all()
    assert (xy[:, 1] >= -0.5).all() and (xy[:, 1] <= h - 0.5).all()


# ------------------------------------------------------------------ LSP
def test_lsp_records_shape_and_ids(lsp, fixture_root):
    assert len(lsp) == 2000
    assert lsp[0].id == "lsp/im0001" and lsp[999].id == "lsp/im1000" and lsp[1999].id == "lsp/im2000"
    assert lsp[0].path == fixture_root / "lsp" / "images" / "im0001.jpg"
    for r in (lsp[0], lsp[1234]):
        assert r.coords.shape == (14, 2) and r.coords.dtype == np.float32
        assert r.labelled.shape == (14,) and r.labelled.dtype == bool
        assert r.visible.shape == (14,) and r.visible.dtype == np.int8


def test_lsp_all_joints_labelled_and_coords_are_matlab_minus_one(lsp, fixture_root):
    j = raw(fixture_root, "lsp")                           # (3, 14, 2000): x, y, flag
    coords = np.stack([r.coords for r in lsp])             # (2000, 14, 2)
    assert all(r.labelled.all() for r in lsp)
    np.testing.assert_allclose(coords, np.transpose(j[:2], (2, 1, 0)) - 1.0, atol=1e-4)


def test_lsp_flag_one_means_occluded(lsp, fixture_root):
    flag = raw(fixture_root, "lsp")[2].T                    # (2000, 14), 1 = occluded
    vis = np.stack([r.visible for r in lsp])
    assert set(np.unique(vis)) == {0, 1}
    np.testing.assert_array_equal(vis == 0, flag > 0.5)
    assert (vis == 0).sum() == (flag > 0.5).sum() > 0
    # im0014's right ankle is flagged occluded in the file: still labelled, real coordinate.
    r = lsp[13]
    assert flag[13, R_ANKLE] == 1
    assert r.visible[R_ANKLE] == 0 and r.labelled[R_ANKLE] and (r.coords[R_ANKLE] > 0).all()
    # im0001 has no occluded joint.
    assert (lsp[0].visible == 1).all()


def test_lsp_im0001_joints_on_the_runner(lsp):
    """A runner facing the camera (70 x 160): checked by eye on a render."""
    r = lsp[0]
    img = r.image()
    assert img.shape == (160, 70, 3) and img.dtype == np.uint8
    assert_inside_image(r, img)
    assert_near(r, HEAD, (38, 15))
    assert_near(r, NECK, (37, 35))
    assert_near(r, R_ANKLE, (29, 142))
    assert_near(r, L_ANKLE, (42, 132))
    assert_near(r, R_WRIST, (23.5, 52))
    assert_upright_order(r)
    # The head top is in the top eighth of the person's extent.
    ys = r.coords[:, 1]
    assert r.coords[HEAD, 1] - ys.min() <= (ys.max() - ys.min()) / 8
    # Hips sit on her black shorts; the barrier behind her is light.
    for k in HIPS:
        assert patch(img, r.coords[k]).mean() < 60
    assert patch(img, (60, 90)).mean() > 150


def test_lsp_im0002_joints_on_the_footballer(lsp):
    """A footballer on grass (145 x 201)."""
    r = lsp[1]
    img = r.image()
    assert img.shape == (201, 145, 3)
    assert_inside_image(r, img)
    assert_near(r, HEAD, (82, 30))
    assert_near(r, L_HIP, (79, 95))
    assert_near(r, R_ANKLE, (27, 166))
    assert_near(r, L_SHOULDER, (98, 52.5))
    assert_upright_order(r)

    def grass(c):
        return c[1] > c[0] + 15 and c[1] > c[2] + 30
    assert grass(patch(img, (20, 120))) and grass(patch(img, (130, 150)))
    for k in (*HIPS, NECK, R_SHOULDER):
        assert not grass(patch(img, r.coords[k])), f"joint {k} samples grass"
    for k in HIPS:                                          # black shorts
        assert patch(img, r.coords[k]).mean() < 60


# ------------------------------------------------------------------ LSPET
def test_lspet_records_shape_ids_and_unknown_visibility(lspet, fixture_root):
    assert len(lspet) == 10000
    assert lspet[0].id == "lspet/im00001" and lspet[9999].id == "lspet/im10000"
    assert lspet[0].path == fixture_root / "lspet" / "images" / "im00001.jpg"
    assert all((r.visible == -1).all() for r in lspet)
    assert lspet[0].coords.dtype == np.float32 and lspet[0].labelled.dtype == bool


def test_lspet_flag_zero_means_not_labelled_and_junk_is_zeroed(lspet, fixture_root):
    j = raw(fixture_root, "lspet")                          # (14, 3, 10000): x, y, flag
    flag = j[:, 2].T > 0.5                                  # (10000, 14), 1 = annotated
    xy = np.transpose(j[:, :2], (2, 0, 1))                  # (10000, 14, 2)
    lab = np.stack([r.labelled for r in lspet])
    coords = np.stack([r.coords for r in lspet])
    # Labelled = annotated and not one of the few annotated-but-negative junk points.
    np.testing.assert_array_equal(lab, flag & (xy >= 0).all(-1))
    assert (flag & ~lab).sum() == 6                         # those junk points, e.g. im00024's head
    assert flag[23, HEAD] and not lspet[23].labelled[HEAD]
    assert (~lab).sum() > 1000
    np.testing.assert_allclose(coords[lab], xy[lab] - 1.0, atol=1e-4)
    assert (coords[~lab] == 0).all()
    # im00001: right ankle not annotated (junk y < 0 in the file), the rest are.
    r = lspet[0]
    assert j[R_ANKLE, 2, 0] == 0 and j[R_ANKLE, 1, 0] < 0
    assert not r.labelled[R_ANKLE] and r.labelled.sum() == 13
    assert (r.coords[R_ANKLE] == 0).all()
    # im00005: right hip, wrist, elbow and shoulder not annotated.
    assert np.flatnonzero(~lspet[4].labelled).tolist() == [2, 6, 7, 8]


def test_lspet_im00001_joints_on_the_gymnast(lspet):
    """A gymnast in a green leotard lying on a blue floor, right arm raised (157 x 105)."""
    r = lspet[0]
    img = r.image()
    assert img.shape == (105, 157, 3)
    assert_inside_image(r, img)
    assert_near(r, R_WRIST, (130, 13))
    assert_near(r, HEAD, (116, 52))
    assert_near(r, L_ANKLE, (22, 94))
    assert_near(r, R_SHOULDER, (93, 48))
    # Lying: legs to the left of the shoulders; the raised wrist is the highest joint.
    assert r.coords[HIPS, 0].mean() < r.coords[SHOULDERS, 0].mean()
    assert np.argmin(np.where(r.labelled, r.coords[:, 1], np.inf)) == R_WRIST
    # The torso centre is on the green leotard; the floor is blue.
    c = patch(img, r.coords[[*HIPS, *SHOULDERS]].mean(0))
    assert c[1] > c[0] + 40 and c[1] > c[2]
    floor = patch(img, (140, 100))
    assert floor[2] > floor[1] > floor[0]


def test_lspet_im00004_joints_on_the_jumper(lspet):
    """A long jumper in blue on a red track (157 x 236)."""
    r = lspet[3]
    img = r.image()
    assert img.shape == (236, 157, 3)
    assert r.labelled.all()
    assert_inside_image(r, img)
    assert_near(r, HEAD, (83, 72))
    assert_near(r, L_ANKLE, (79, 172))
    assert_near(r, R_WRIST, (10, 123))
    assert_near(r, L_KNEE, (75, 127))
    assert r.coords[HEAD, 1] < r.coords[HIPS, 1].mean() < r.coords[ANKLES, 1].mean()
    for k in HIPS:                                          # blue shorts
        c = patch(img, r.coords[k])
        assert c[2] > c[0] + 30
    track = patch(img, (10, 200))
    assert track[0] > track[2]


def test_every_fixture_image_decodes_and_holds_its_joints(fixture_records):
    for r in fixture_records:
        img = r.image()
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
        assert_inside_image(r, img)


def test_readers_are_cached_per_root(fixture_root):
    assert read_lsp(fixture_root) is read_lsp(fixture_root)
    assert read_lspet(fixture_root) is read_lspet(fixture_root)


# ------------------------------------------------------------------ bad input
def test_missing_dataset_folder_names_expected_path(tmp_path):
    root = tmp_path / "nowhere"
    with pytest.raises(LabError) as e:
        read_lsp(root)
    assert str(root / "lsp") in str(e.value) and "im0001.jpg" in str(e.value)
    with pytest.raises(LabError) as e:
        read_lspet(root)
    assert str(root / "lspet") in str(e.value)


def test_empty_images_folder(tmp_path):
    (tmp_path / "lsp" / "images").mkdir(parents=True)
    with pytest.raises(LabError, match="missing or empty"):
        read_lsp(tmp_path)


def test_missing_images_folder(tmp_path, fixture_root):
    (tmp_path / "lspet").mkdir()
    (tmp_path / "lspet" / "joints.mat").write_bytes((fixture_root / "lspet" / "joints.mat").read_bytes())
    with pytest.raises(LabError, match="images"):
        read_lspet(tmp_path)


def test_missing_joints_mat(copy_dataset):
    root = copy_dataset()
    (root / "lsp" / "joints.mat").unlink()
    with pytest.raises(LabError) as e:
        read_lsp(root)
    assert str(root / "lsp" / "joints.mat") in str(e.value)


@pytest.mark.parametrize("name", ["lsp", "lspet"])
def test_truncated_joints_mat(copy_dataset, name):
    root = copy_dataset()
    p = root / name / "joints.mat"
    data = p.read_bytes()
    p.write_bytes(data[:len(data) // 2])
    with pytest.raises(LabError, match="damaged"):
        (read_lsp if name == "lsp" else read_lspet)(root)


def test_joints_mat_that_is_not_matlab(copy_dataset):
    root = copy_dataset()
    (root / "lsp" / "joints.mat").write_bytes(b"this is not a MATLAB file\n" * 20)
    with pytest.raises(LabError, match="damaged or not a MATLAB"):
        read_lsp(root)


def test_joints_mat_without_joints_key(copy_dataset):
    root = copy_dataset()
    scipy.io.savemat(str(root / "lsp" / "joints.mat"), {"points": np.zeros((3, 14, 2000))})
    with pytest.raises(LabError, match="no 'joints'"):
        read_lsp(root)


@pytest.mark.parametrize("name,shape", [
    ("lsp", (14, 3, 2000)),          # LSPET's axis order
    ("lsp", (3, 14, 1000)),          # too few images
    ("lspet", (3, 14, 10000)),       # LSP's axis order
    ("lspet", (14, 3, 2000)),
])
def test_joints_mat_with_wrong_shape(copy_dataset, name, shape):
    root = copy_dataset()
    scipy.io.savemat(str(root / name / "joints.mat"), {"joints": np.zeros(shape)})
    with pytest.raises(LabError) as e:
        (read_lsp if name == "lsp" else read_lspet)(root)
    assert str(shape) in str(e.value)


def test_corrupt_dataset_image_names_the_file(copy_dataset):
    root = copy_dataset()
    p = root / "lsp" / "images" / "im0001.jpg"
    p.write_bytes(p.read_bytes()[:600])
    rec = read_lsp(root)[0]
    with pytest.raises(LabError) as e:
        rec.image()
    assert "im0001.jpg" in str(e.value)


def test_absent_dataset_image_is_a_lab_error(lsp):
    rec = lsp[500]                                          # not in the fixture
    assert not rec.path.exists()
    with pytest.raises(LabError, match="no file"):
        rec.image()


def test_cli_prepare_with_missing_dataset_exits_2_with_a_message(tmp_path, capsys):
    from lab.cli import main
    missing = tmp_path / "no-such-datasets"
    with pytest.raises(SystemExit) as e:
        main(["prepare", "--data", str(missing), "--out", str(tmp_path / "out.safetensors")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("pose-lab: ")
    assert str(missing) in err
    assert "Traceback" not in err
    assert not (tmp_path / "out.safetensors").exists()
