"""Shared by the tests of lab.train.runs: tiny run settings and the limits (K, queue
length) of this process, set for one test and restored afterwards.

Tiny on purpose (shared two-core CPU): the small configuration, 48 training crops in
batches of 16, 16 validation crops, one or two epochs.
"""
import pytest

from lab.train import runs


@pytest.fixture
def limits():
    """`limits(max_running, max_queued)` for one test; the process's own come back afterwards."""
    old = (runs.LIMITS.max_running, runs.LIMITS.max_queued)
    yield runs.configure
    runs.configure(*old)


@pytest.fixture
def tiny():
    """`tiny(**settings)`: RunSettings of a tiny detector-only run on the mini set (2 epochs)."""
    def make(**kw) -> runs.RunSettings:
        base = dict(cache="mini", epochs=2, train_size=48, val_size=16, batch_size=16, spatial=False)
        base.update(kw)
        return runs.RunSettings(**base)
    return make
