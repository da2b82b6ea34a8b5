"""lab.data.cache: make_sample, the safetensors cache and the bundled mini set."""
from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from lab.config import DataConfig
from lab.data.cache import FORMAT, MINI_PATH, PoseCache, build, make_sample
from lab.data.images import decode_jpeg
from lab.data.transforms import apply_affine, invert_affine
from lab.errors import LabError

CFG = DataConfig()          # the shipped settings: 128 px crops, margin 0.3


@pytest.fixture(scope="module")
def split_records_(fixture_records):
    """A few fixture records per split, LSP and LSPET mixed."""
    return {"train": fixture_records[:2] + fixture_records[4:6], "val": [fixture_records[6], fixture_records[2]],
            "test": [fixture_records[3], fixture_records[7]]}


@pytest.fixture(scope="module")
def built(split_records_, tmp_path_factory):
    out = tmp_path_factory.mktemp("cache") / "tiny.safetensors"
    stats = build(split_records_, CFG, out, log=None)
    return out, stats


# ------------------------------------------------------------------ make_sample
def test_make_sample_crops_the_person(fixture_records):
    for rec in fixture_records:
        s = make_sample(rec, CFG)
        assert s.id == rec.id
        assert s.image.shape == (128, 128, 3) and s.image.dtype == np.uint8
        assert s.coords.shape == (14, 2) and s.coords.dtype == np.float32
        assert s.affine.shape == (2, 3) and s.affine.dtype == np.float64
        np.testing.assert_array_equal(s.labelled, rec.labelled)
        np.testing.assert_array_equal(s.visible, rec.visible)
        # Labelled joints: the exact affine image of the original coordinates, inside the crop,
        # and the labelled extent fills 1 / (1 + margin) of the crop side.
        xy = apply_affine(s.affine, rec.coords.astype(np.float64))
        np.testing.assert_allclose(s.coords[rec.labelled], xy[rec.labelled], atol=1e-4)
        lab = s.coords[rec.labelled]
        assert (lab > 0).all() and (lab < 127).all()
        assert (lab.max(0) - lab.min(0)).max() == pytest.approx(128 / 1.3, rel=1e-4)
        # Unlabelled joints are zeroed.
        assert (s.coords[~rec.labelled] == 0).all()
        # Crop -> original is exact.
        np.testing.assert_allclose(apply_affine(invert_affine(s.affine), xy), rec.coords, atol=1e-9)


def test_make_sample_content_follows_the_joints(by_id):
    """LSP im0002: the footballer's black shorts stay under the hip joints in the crop."""
    s = make_sample(by_id["lsp/im0002"], CFG)
    for k in (2, 3):
        x, y = np.round(s.coords[k]).astype(int)
        assert s.image[y - 1:y + 2, x - 1:x + 2].mean() < 70


# ------------------------------------------------------------------ build / read
def test_build_writes_a_file_and_reports(built, split_records_):
    out, stats = built
    assert out.is_file() and out.stat().st_size == stats["bytes"] > 0
    assert stats["counts"] == {k: len(v) for k, v in split_records_.items()}
    assert not out.with_suffix(".tmp").exists()


def test_cache_reads_back_exactly_what_make_sample_gives(built, split_records_):
    out, _ = built
    cache = PoseCache(out)
    assert cache.meta["format"] == FORMAT
    assert cache.data == CFG
    assert sorted(cache.splits) == sorted(split_records_)
    for split, recs in split_records_.items():
        cs = cache[split]
        assert len(cs) == len(recs) and cs.ids == [r.id for r in recs]
        for i, rec in enumerate(recs):
            s = make_sample(rec, CFG)
            np.testing.assert_array_equal(cs.coords[i], s.coords)
            np.testing.assert_array_equal(cs.labelled[i], s.labelled)
            np.testing.assert_array_equal(cs.visible[i], s.visible)
            np.testing.assert_array_equal(cs.affine[i], s.affine)
            assert cs.affine[i].dtype == np.float64 and cs.labelled.dtype == bool
            diff = np.abs(cs.images[i].astype(int) - s.image.astype(int)).mean()
            assert diff < 4, f"{rec.id}: JPEG differs by {diff:.2f} levels on average"
            got = cs.sample(i)
            assert got.id == rec.id and got.image.shape == (128, 128, 3)


def test_cached_split_tensors_and_subset(built):
    cache = PoseCache(built[0])
    cs = cache["train"]
    images, coords, lab = cs.tensors()
    assert tuple(images.shape) == (4, 3, 128, 128) and str(images.dtype) == "torch.uint8"
    assert tuple(coords.shape) == (4, 14, 2) and tuple(lab.shape) == (4, 14)
    np.testing.assert_array_equal(images.permute(0, 2, 3, 1).numpy(), cs.images)
    sub = cs.subset(2)
    assert len(sub) == 2 and sub.ids == cs.ids[:2]
    np.testing.assert_array_equal(sub.images, cs.images[:2])
    np.testing.assert_array_equal(sub.affine, cs.affine[:2])
    assert sub.jpeg(1) == cs.jpeg(1)
    assert len(cs.subset(0)) == 4 and len(cs.subset(99)) == 4


def test_build_is_deterministic(split_records_, tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    build(split_records_, CFG, a, log=None)
    build(split_records_, CFG, b, log=None)
    assert a.read_bytes() == b.read_bytes()


def test_build_settings_are_recorded(split_records_, tmp_path):
    cfg = DataConfig(crop_size=64, margin=0.5, seed=3)
    out = tmp_path / "c.safetensors"
    build({"val": split_records_["val"]}, cfg, out, quality=70, source="unit test", log=None)
    cache = PoseCache(out)
    assert cache.data == cfg and cache.meta["quality"] == 70 and cache.meta["source"] == "unit test"
    assert cache["val"].images.shape == (2, 64, 64, 3)
    with pytest.raises(LabError, match="no split 'train'"):
        cache["train"]


# ------------------------------------------------------------------ damaged caches
def test_missing_cache(tmp_path):
    with pytest.raises(LabError) as e:
        PoseCache(tmp_path / "nope.safetensors")
    assert "nope.safetensors" in str(e.value) and "prepare" in str(e.value)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "header"])
def test_damaged_cache(built, tmp_path, damage):
    data = built[0].read_bytes()
    bad = {"truncate": data[: len(data) // 2], "garbage": b"\x00\x01junk" * 1000, "empty": b"",
           "header": data[:8] + b"{not json" + data[17:]}[damage]
    p = tmp_path / "bad.safetensors"
    p.write_bytes(bad)
    with pytest.raises(LabError, match="not a readable pose-lab cache"):
        PoseCache(p)


def test_cache_with_damaged_jpeg_payload(built, tmp_path):
    """Sizes intact (safetensors loads it) but the JPEG bytes zeroed: decoding is a LabError."""
    data = bytearray(built[0].read_bytes())
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    start, end = header["train/jpeg"]["data_offsets"]
    data[8 + n + start:8 + n + end] = bytes(end - start)
    p = tmp_path / "zeroed.safetensors"
    p.write_bytes(bytes(data))
    cs = PoseCache(p)["train"]
    assert len(cs) == 4
    with pytest.raises(LabError, match="damaged"):
        cs.images
    with pytest.raises(LabError, match="damaged"):
        decode_jpeg(cs.jpeg(0))


def test_safetensors_that_is_not_a_pose_lab_cache(tmp_path):
    p = tmp_path / "weights.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(p))          # no metadata at all
    with pytest.raises(LabError, match="not a readable pose-lab cache"):
        PoseCache(p)
    save_file({"w": np.zeros(3, np.float32)}, str(p),
              metadata={"pose_lab": json.dumps({"format": "pose-lab-cache/0"})})
    with pytest.raises(LabError, match="format"):
        PoseCache(p)


# ------------------------------------------------------------------ the bundled mini set
@pytest.fixture(scope="module")
def mini():
    assert MINI_PATH.is_file(), f"bundled mini set missing at {MINI_PATH}"
    return PoseCache(MINI_PATH)


def test_mini_has_train_900_val_100_and_the_heldout_protocol_val(mini, lsp, lspet):
    assert sorted(mini.splits) == ["heldout", "train", "val"]
    assert len(mini["train"]) == 900 and len(mini["val"]) == 100
    # heldout: exactly the standard protocol's validation split (never trained on)
    from lab.data.splits import val_indices
    train = [*lspet, *lsp[:1000]]
    want = [train[i].id for i in val_indices(len(train), mini.data.val_fraction, mini.data.seed)]
    assert mini["heldout"].ids == want and len(want) == 550
    assert not any(i.startswith("lsp/im") and int(i[6:]) > 1000 for i in want)   # never a test image
    assert mini.data.crop_size == 128
    for name in ("train", "val"):
        cs = mini[name]
        assert cs.coords.shape == (len(cs), 14, 2) and cs.affine.shape == (len(cs), 2, 3)
        assert cs.labelled.all()                                   # LSP: every joint labelled
        assert set(np.unique(cs.visible)) <= {0, 1}


def test_mini_uses_only_lsp_training_images(mini):
    train, val = mini["train"].ids, mini["val"].ids
    allowed = {f"lsp/im{i:04d}" for i in range(1, 1001)}
    assert set(train) | set(val) == allowed                    # all of im0001-im1000 ...
    assert not set(train) & set(val)                           # ... each once
    assert len(set(train)) == 900 and len(set(val)) == 100
    for i in train + val:                                      # never a test image
        assert i.startswith("lsp/im") and 1 <= int(i[6:]) <= 1000
    assert protocol_ok(mini)


def protocol_ok(mini) -> bool:
    return all(m in mini.meta["source"] for m in ("heldout", "train/val"))


def test_mini_matches_the_current_crop_code(mini, by_id):
    """Samples whose source image is in the fixture equal make_sample today."""
    checked = 0
    for name in ("train", "val"):
        cs = mini[name]
        for rid in ("lsp/im0001", "lsp/im0002"):
            if rid in cs.ids:
                i = cs.ids.index(rid)
                s = make_sample(by_id[rid], mini.data)
                np.testing.assert_array_equal(cs.coords[i], s.coords)
                np.testing.assert_array_equal(cs.affine[i], s.affine)
                assert np.abs(decode_jpeg(cs.jpeg(i)).astype(int) - s.image).mean() < 4
                checked += 1
    assert checked == 2


# ------------------------------------------------------------------ context (the everyday recipe)
CONTEXT = DataConfig(crop_size=96, sigma=0.75, context=1.5)        # 96-px crops inside 144-px images


@pytest.fixture(scope="module")
def built_context(split_records_, tmp_path_factory):
    out = tmp_path_factory.mktemp("cache") / "context.safetensors"
    build(split_records_, CONTEXT, out, log=None)
    return PoseCache(out)


def test_a_context_cache_holds_the_crop_at_its_centre(built_context, split_records_):
    """images / coords / affine are the crop (what eval and the app see), exactly; the stored
    image around it is the same photo at the same scale."""
    crop_only = DataConfig(crop_size=96, sigma=0.75)
    assert CONTEXT.context_pad == 24 and CONTEXT.stored_size == 144
    cs = built_context["val"]
    for i, rec in enumerate(split_records_["val"]):
        s = make_sample(rec, crop_only)
        np.testing.assert_allclose(cs.coords[i], s.coords, atol=1e-4)
        np.testing.assert_allclose(cs.affine[i], s.affine, atol=1e-9)
        assert cs.images[i].shape == (96, 96, 3)
        assert np.abs(cs.images[i].astype(int) - s.image.astype(int)).mean() < 4
    images, coords, _ = cs.context_tensors()
    assert tuple(images.shape[-2:]) == (144, 144)
    np.testing.assert_allclose(coords.numpy() - 24, cs.coords, atol=1e-5)


def test_a_context_subset_keeps_its_frame(built_context):
    sub = built_context["train"].subset(2)
    assert sub.pad == 24 and sub.images.shape == (2, 96, 96, 3)
    assert sub.context_tensors()[0].shape[-1] == 144
