"""Shared fixtures.

`fixture_root` is a tiny copy of the datasets in the standard layout
(tests/fixtures/datasets, made by tests/fixtures/make_fixtures.py): the full,
original joints.mat files but only a handful of images, so every reader runs
on real annotations on a machine without ../shared/datasets.

Tests marked `@pytest.mark.dataset` need the full datasets
(`lab.config.data_root()`) and are skipped when they are absent.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIXTURE_ROOT = FIXTURES / "datasets"

# Images present in the fixture (the readers open images lazily; records
# whose image is absent may be used for their annotations only).
FIXTURE_LSP_IMAGES = ("lsp/im0001", "lsp/im0002", "lsp/im1001", "lsp/im1002")
FIXTURE_LSPET_IMAGES = ("lspet/im00001", "lspet/im00002", "lspet/im00004", "lspet/im00005")


def full_data_root() -> Path | None:
    """The full datasets, if this machine has them."""
    from lab.config import data_root
    root = data_root()
    ok = all((root / n / "joints.mat").is_file() and (root / n / "images").is_dir()
             for n in ("lsp", "lspet"))
    return root if ok else None


def pytest_collection_modifyitems(config, items):
    if full_data_root() is not None:
        return
    skip = pytest.mark.skip(reason="needs the full datasets (lab.config.data_root() is absent)")
    for item in items:
        if "dataset" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def fixture_root() -> Path:
    assert (FIXTURE_ROOT / "lsp" / "joints.mat").is_file(), \
        "tests/fixtures/datasets is missing: run tests/fixtures/make_fixtures.py"
    return FIXTURE_ROOT


@pytest.fixture(scope="session")
def real_root() -> Path:
    root = full_data_root()
    if root is None:
        pytest.skip("needs the full datasets (lab.config.data_root() is absent)")
    return root


@pytest.fixture(scope="session")
def lsp(fixture_root):
    """All 2000 LSP records (annotations real; images only for FIXTURE_LSP_IMAGES)."""
    from lab.data.datasets import read_lsp
    return read_lsp(fixture_root)


@pytest.fixture(scope="session")
def lspet(fixture_root):
    """All 10000 LSPET records (annotations real; images only for FIXTURE_LSPET_IMAGES)."""
    from lab.data.datasets import read_lspet
    return read_lspet(fixture_root)


@pytest.fixture(scope="session")
def by_id(lsp, lspet):
    """id -> PoseRecord over both datasets."""
    return {r.id: r for r in (*lsp, *lspet)}


@pytest.fixture(scope="session")
def fixture_records(by_id):
    """The records whose images are in the fixture, LSP first."""
    return [by_id[i] for i in (*FIXTURE_LSP_IMAGES, *FIXTURE_LSPET_IMAGES)]


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def copy_dataset(tmp_path, fixture_root):
    """Factory: a writable copy of the fixture dataset under tmp_path (a fresh path per
    test, so the readers' lru_cache never serves another test's files)."""
    import shutil

    def make(name: str = "data") -> Path:
        dst = tmp_path / name
        shutil.copytree(fixture_root, dst)
        for p in dst.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        return dst
    return make


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One torch thread per test module: on two shared cores, intra-op threads
    fighting a training job or each other are far slower than one."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def mini():
    """The bundled mini set (900 train / 100 val LSP training crops)."""
    from lab.data.cache import MINI_PATH, PoseCache
    return PoseCache(MINI_PATH)
