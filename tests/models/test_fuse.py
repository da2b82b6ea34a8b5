"""Folding BatchNorm into the convolutions (the app's inference path) keeps the function:
the shipped models give the same heatmaps and coordinates on real crops, with no BN left."""
import copy

import torch

from lab.data.cache import MINI_PATH, PoseCache
from lab.infer import POSE_WEIGHTS, REGRESSOR_WEIGHTS
from lab.models import io
from lab.models.fuse import count_batchnorm, fold_batchnorm
from lab.models.predict import to_input


def _crops(n=4):
    images, _, _ = PoseCache(MINI_PATH)["val"].subset(n).tensors()
    return to_input(images)                                         # (n, 3, S, S) in [0, 1]


def test_folded_pose_model_matches_the_saved_one():
    model, _ = io.load(POSE_WEIGHTS)
    folded = fold_batchnorm(copy.deepcopy(model))
    assert count_batchnorm(model) > 0 and count_batchnorm(folded) == 0
    x = _crops()
    with torch.no_grad():
        a, b = model(x), folded(x)
    assert torch.allclose(a["unary"], b["unary"], atol=1e-4)
    assert torch.allclose(a["log_marginal"], b["log_marginal"], atol=1e-3)
    peak = lambda t: t.flatten(2).argmax(-1)                        # noqa: E731  (B, K)
    assert torch.equal(peak(a["log_marginal"]), peak(b["log_marginal"]))


def test_folded_regressor_matches_the_saved_one():
    model, _ = io.load(REGRESSOR_WEIGHTS)
    folded = fold_batchnorm(copy.deepcopy(model))
    assert count_batchnorm(folded) == 0
    x = _crops()
    with torch.no_grad():
        assert torch.allclose(model(x), folded(x), atol=1e-4)
