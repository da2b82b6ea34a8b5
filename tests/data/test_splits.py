"""lab.data.splits: the standard protocol and the seeded validation split.

The fixture holds the full annotation files, so the protocol's counts can be
checked without the images; the `dataset` tests repeat them on the real root.
"""
from __future__ import annotations

import numpy as np
import pytest

from lab.data.splits import protocol_train, split_records, val_indices


# ------------------------------------------------------------------ val_indices
def test_val_indices_size_sorted_unique_in_range():
    idx = val_indices(11000, 0.05, seed=0)
    assert len(idx) == 550
    assert (np.diff(idx) > 0).all()                         # sorted, no repeats
    assert idx.min() >= 0 and idx.max() < 11000
    assert len(val_indices(10, 0.25, 0)) == 2               # round(2.5) == 2 (banker's)
    assert len(val_indices(10, 0.26, 0)) == 3
    assert len(val_indices(100, 0.0, 0)) == 0
    assert len(val_indices(100, 1.0, 0)) == 100


def test_val_indices_deterministic_per_seed():
    a, b = val_indices(11000, 0.05, 7), val_indices(11000, 0.05, 7)
    np.testing.assert_array_equal(a, b)
    c = val_indices(11000, 0.05, 8)
    assert not np.array_equal(a, c)
    # Spread over the whole list, not a block at one end.
    assert a.min() < 1000 and a.max() > 10000


# ------------------------------------------------------------------ protocol
def check_protocol(root):
    train = split_records(root, "train")
    val = split_records(root, "val")
    test = split_records(root, "test")
    assert (len(train), len(val), len(test)) == (10450, 550, 1000)

    ids = {s: [r.id for r in recs] for s, recs in (("train", train), ("val", val), ("test", test))}
    sets = {s: set(v) for s, v in ids.items()}
    assert all(len(sets[s]) == len(ids[s]) for s in sets)   # no duplicates
    # Test = LSP im1001-im2000, in order.
    assert ids["test"] == [f"lsp/im{i:04d}" for i in range(1001, 2001)]
    # Train + val = all LSPET + LSP im0001-im1000, disjoint, and disjoint from test.
    expected = {f"lspet/im{i:05d}" for i in range(1, 10001)} | {f"lsp/im{i:04d}" for i in range(1, 1001)}
    assert sets["train"] | sets["val"] == expected
    assert not sets["train"] & sets["val"]
    assert not sets["test"] & (sets["train"] | sets["val"])
    # Validation draws from both datasets.
    assert any(i.startswith("lsp/") for i in ids["val"]) and any(i.startswith("lspet/") for i in ids["val"])
    return ids


def test_protocol_counts_on_fixture_annotations(fixture_root):
    check_protocol(fixture_root)


@pytest.mark.dataset
def test_protocol_counts_on_real_dataset(real_root):
    ids = check_protocol(real_root)
    # And every image of the protocol exists on disk.
    for s in ("train", "val", "test"):
        for r in split_records(real_root, s)[::500]:
            assert r.path.is_file()
    assert len(ids["test"]) == 1000


def test_protocol_train_order(fixture_root):
    train = protocol_train(fixture_root)
    assert len(train) == 11000
    assert train[0].id == "lspet/im00001" and train[9999].id == "lspet/im10000"
    assert train[10000].id == "lsp/im0001" and train[-1].id == "lsp/im1000"


def test_val_is_the_seeded_part_of_protocol_train(fixture_root):
    train = protocol_train(fixture_root)
    val = split_records(fixture_root, "val", 0.05, seed=3)
    assert [r.id for r in val] == [train[i].id for i in val_indices(11000, 0.05, 3)]


def test_splits_deterministic_for_a_seed(fixture_root):
    a = [r.id for r in split_records(fixture_root, "val", 0.05, seed=0)]
    b = [r.id for r in split_records(fixture_root, "val", 0.05, seed=0)]
    c = [r.id for r in split_records(fixture_root, "val", 0.05, seed=1)]
    assert a == b and a != c
    # The test split ignores the seed and the fraction.
    t0 = [r.id for r in split_records(fixture_root, "test", 0.05, seed=0)]
    t1 = [r.id for r in split_records(fixture_root, "test", 0.2, seed=9)]
    assert t0 == t1


def test_val_fraction_changes_sizes(fixture_root):
    val = split_records(fixture_root, "val", 0.1, seed=0)
    train = split_records(fixture_root, "train", 0.1, seed=0)
    assert (len(train), len(val)) == (9900, 1100)


def test_unknown_split(fixture_root):
    with pytest.raises(ValueError, match="unknown split"):
        split_records(fixture_root, "validation")
