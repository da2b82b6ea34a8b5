"""Shared fixtures for the model tests. One torch thread: the machine is shared
with long training jobs, and intra-op threads fighting for two cores are far
slower than one."""
import pytest
import torch

from lab.data.cache import MINI_PATH, PoseCache


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def mini():
    return PoseCache(MINI_PATH)
