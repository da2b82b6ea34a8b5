"""The spatial model's helpers for looking inside: kernels, a prior placed at a pixel,
and learned-vs-histogram comparison."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lab.config import SpatialConfig
from lab.joints import L_KNEE, NECK, R_ANKLE, R_KNEE
from lab.models.spatial import SpatialModel, compare_with_histogram, convolve_direct


def random_model(graph_name="tree", size=8, seed=0):
    m = SpatialModel(SpatialConfig(graph=graph_name, heatmap_size=size, use_fft="direct")).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        m.prior_logit.copy_(torch.randn(m.prior_logit.shape, generator=g, dtype=torch.float64) * 2 - 1)
    return m


def test_kernel_is_the_edges_prior():
    m = random_model()
    e = m.edge_index(R_KNEE, R_ANKLE)
    np.testing.assert_allclose(m.kernel(R_KNEE, R_ANKLE), m.prior()[e].detach().numpy())
    k1 = m.kernel(R_KNEE, R_ANKLE, peak_one=True)
    assert k1.max() == pytest.approx(1.0)
    np.testing.assert_allclose(k1 * m.prior()[e].max().item(), m.prior()[e].detach().numpy(), rtol=1e-12)
    with pytest.raises(ValueError):
        m.kernel(R_ANKLE, NECK)                      # not an edge of the tree
    assert list(m.offsets()) == list(range(-7, 8))


@pytest.mark.parametrize("xy", [(0, 0), (3, 5), (7, 2), (7, 7)])
@pytest.mark.parametrize("edge", [(R_KNEE, R_ANKLE), (L_KNEE, L_KNEE), (NECK, NECK)])
def test_prior_at_is_the_message_of_a_one_hot_unary(xy, edge):
    """prior_at(A, v, p) = the convolution of p(A|v) with a delta at p: exactly the message
    v sends A (without the bias) when v's unary is a single 1 at p."""
    m = random_model(seed=3)
    a, v = edge
    size = m.cfg.heatmap_size
    delta = torch.zeros(1, 1, size, size, dtype=torch.float64)
    delta[0, 0, xy[1], xy[0]] = 1.0
    want = convolve_direct(delta, m.prior()[[m.edge_index(a, v)]].detach())[0, 0].numpy()
    np.testing.assert_allclose(m.prior_at(a, v, xy), want, rtol=1e-12, atol=1e-15)
    # and by the displacement convention: A at v + (dx, dy) reads kernel[dy + H-1, dx + H-1]
    got = m.prior_at(a, v, xy)
    k = m.kernel(a, v)
    x, y = size - 1, 0
    assert got[y, x] == pytest.approx(k[y - xy[1] + size - 1, x - xy[0] + size - 1])


def test_prior_at_rounds_subpixel_positions():
    m = random_model(seed=1)
    np.testing.assert_array_equal(m.prior_at(R_KNEE, R_ANKLE, (2.4, 5.6)), m.prior_at(R_KNEE, R_ANKLE, (2, 6)))


def test_compare_with_histogram_scales_both_to_peak_one():
    rng = np.random.default_rng(0)
    h = rng.random((5, 5))
    out = compare_with_histogram(3.0 * h, h / h.max())
    np.testing.assert_allclose(out["learned"], out["histogram"])
    np.testing.assert_allclose(out["difference"], 0, atol=1e-12)
    assert out["learned"].max() == pytest.approx(1.0)
