"""The spatial model against the paper's equation, written out independently:

    marginal_A(x) = exp( sum_{v in N(A)} log( sum_d SoftPlus(W_{A|v})[d] ReLU(u_v)(x - d)
                                              + SoftPlus(b_{v->A}) ) )

with the kernel indexed by displacement d = (dx, dy): entry [dy + H - 1, dx + H - 1]
weighs "A sits (dx, dy) from v".
"""

import numpy as np
import pytest
import torch

from lab.config import SpatialConfig
from lab.data.codec import HeatmapCodec
from lab.joints import L_KNEE, NAMES, NECK, R_ANKLE, R_KNEE, K
from lab.models import graph
from lab.models.spatial import SpatialModel, convolve_direct, convolve_fft, displacement_histograms, fft_len


def softplus(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


def reference_marginal(unary: np.ndarray, prior_logit: np.ndarray, bias_logit: np.ndarray,
                       edges) -> np.ndarray:
    """The equation with explicit loops over edges and displacements (float64 numpy).

    unary (B, K, H, W); prior_logit (E, 2H-1, 2W-1); bias_logit (E,).
    """
    B, Kj, H, W = unary.shape
    relu = np.maximum(unary, 0.0)
    log_sum = np.zeros((B, Kj, H, W))
    for e, (a, v) in enumerate(edges):
        prior = softplus(prior_logit[e])
        msg = np.zeros((B, H, W))
        for dy in range(-(H - 1), H):
            for dx in range(-(W - 1), W):
                w = prior[dy + H - 1, dx + W - 1]
                # msg(x, y) += w * u_v(x - dx, y - dy) wherever (x - dx, y - dy) is inside
                ys, xs = slice(max(dy, 0), H + min(dy, 0)), slice(max(dx, 0), W + min(dx, 0))
                ys_src, xs_src = slice(max(-dy, 0), H + min(-dy, 0)), slice(max(-dx, 0), W + min(-dx, 0))
                msg[:, ys, xs] += w * relu[:, v, ys_src, xs_src]
        msg += softplus(bias_logit[e])
        log_sum[:, a] += np.log(msg)
    return np.exp(log_sum)


def random_model(graph_name: str, size: int, mode: str, seed: int = 0,
                 dtype=torch.float64) -> SpatialModel:
    m = SpatialModel(SpatialConfig(graph=graph_name, heatmap_size=size, use_fft=mode)).to(dtype)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        m.prior_logit.copy_(torch.randn(m.prior_logit.shape, generator=g, dtype=dtype) * 2 - 1)
        m.bias_logit.copy_(torch.randn(m.bias_logit.shape, generator=g, dtype=dtype) - 2)
    return m


# ------------------------------------------------------------------ the equation
@pytest.mark.parametrize("graph_name", ["tree", "full"])
@pytest.mark.parametrize("mode", ["fft", "direct"])
def test_forward_matches_reference_equation(graph_name, mode):
    size = 8
    m = random_model(graph_name, size, mode)
    assert m.use_fft() == (mode == "fft")
    g = torch.Generator().manual_seed(1)
    unary = torch.randn(2, K, size, size, generator=g, dtype=torch.float64)   # both signs
    assert (unary < 0).any() and (unary > 0).any()
    got = m(unary).detach().numpy()
    want = reference_marginal(unary.numpy(), m.prior_logit.detach().numpy(),
                              m.bias_logit.detach().numpy(), m.edges)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=0)
    # log_marginal is the log of the same thing
    np.testing.assert_allclose(m.log_marginal(unary).detach().numpy(), np.log(want), rtol=0, atol=1e-9)


def test_negative_unaries_send_only_the_bias():
    """ReLU(u_v): a joint whose unary is all negative contributes exactly log SoftPlus(b)."""
    m = random_model("tree", 6, "direct")
    unary = -torch.rand(1, K, 6, 6, dtype=torch.float64) - 0.1
    logm = torch.log(m.messages(unary))[0]                      # (E, H, W)
    want = torch.log(m.bias())[:, None, None].expand_as(logm)
    torch.testing.assert_close(logm, want, rtol=0, atol=1e-12)


def test_auto_mode_picks_fft_for_large_kernels():
    assert SpatialModel(SpatialConfig(heatmap_size=32)).use_fft()          # 63 x 63
    assert not SpatialModel(SpatialConfig(heatmap_size=4)).use_fft()       # 7 x 7


# ------------------------------------------------------------------ FFT vs direct
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 2e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("hw,k", [((32, 32), 63), ((7, 7), 13), ((13, 9), 25), ((11, 11), 5),
                                  ((5, 5), 9), ((3, 17), 33)])
def test_fft_equals_direct(hw, k, dtype, tol):
    g = torch.Generator().manual_seed(hash((hw, k)) % 1000)
    u = torch.rand(2, 3, *hw, generator=g, dtype=torch.float64).to(dtype)
    ker = torch.rand(3, k, k, generator=g, dtype=torch.float64).to(dtype)
    d, f = convolve_direct(u, ker), convolve_fft(u, ker)
    assert d.shape == f.shape == u.shape and f.dtype == dtype
    scale = d.abs().max().item()
    torch.testing.assert_close(f, d, rtol=0, atol=tol * scale)


def test_shared_source_maps_equal_one_map_per_edge():
    """Edges that leave the same joint share that joint's transform: same result as
    convolving each edge's own copy."""
    g = torch.Generator().manual_seed(5)
    u = torch.rand(2, 4, 12, 12, generator=g, dtype=torch.float64)               # 4 joints
    src = torch.tensor([0, 2, 2, 3, 0])                                            # 5 edges
    ker = torch.rand(5, 23, 23, generator=g, dtype=torch.float64)
    want = convolve_direct(u[:, src], ker)
    for conv in (convolve_direct, convolve_fft):
        torch.testing.assert_close(conv(u, ker, src), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n,k", [(48, 95), (32, 63), (11, 5), (3, 33), (13, 25)])
def test_fft_length_is_the_shortest_exact_one(n, k):
    """fft_len pads to about n + k/2 (48 x 48 maps with 95 x 95 priors: 96 points, not 144):
    a circular convolution of that length equals the linear one on the 'same' window, and
    one point shorter than the bound aliases into it (1-D, positive values)."""
    g = torch.Generator().manual_seed(n * k)
    u, ker = torch.rand(n, generator=g, dtype=torch.float64) + 0.5, torch.rand(k, generator=g, dtype=torch.float64) + 0.5
    c = (k - 1) // 2
    linear = torch.tensor(np.convolve(u.numpy(), ker.numpy()))[c:c + n]

    def circular(length):
        full = torch.fft.irfft(torch.fft.rfft(u, length) * torch.fft.rfft(ker, length), length)
        return full[(c + torch.arange(n)) % length]
    bound = max(n + k - 1 - c, n + c)
    assert bound <= fft_len(n, k) <= 1.25 * bound
    torch.testing.assert_close(circular(fft_len(n, k)), linear, rtol=0, atol=1e-12)
    assert not torch.allclose(circular(bound - 1), linear)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fft_equals_direct_through_the_model(dtype):
    """The real size: 32 x 32 heatmaps, 63 x 63 priors (the full graph only in float32:
    196 direct 63 x 63 convolutions in float64 take seconds on a CPU)."""
    unary = torch.randn(1, K, 32, 32, generator=torch.Generator().manual_seed(3), dtype=dtype)
    for graph_name in ("tree", "full") if dtype == torch.float32 else ("tree",):
        fft = random_model(graph_name, 32, "fft", dtype=dtype)
        direct = random_model(graph_name, 32, "direct", dtype=dtype)
        a, b = fft.log_marginal(unary), direct.log_marginal(unary)
        tol = 1e-4 if dtype == torch.float32 else 1e-10
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("conv", [convolve_direct, convolve_fft])
@pytest.mark.parametrize("dx,dy", [(0, 0), (3, -2), (-5, 4), (7, 0), (0, -7)])
def test_delta_prior_shifts_peak_by_its_displacement(conv, dx, dy):
    H = 16
    u = torch.zeros(1, 1, H, H, dtype=torch.float64)
    x0, y0 = 8, 7
    u[0, 0, y0, x0] = 1.0
    ker = torch.zeros(1, 2 * H - 1, 2 * H - 1, dtype=torch.float64)
    ker[0, dy + H - 1, dx + H - 1] = 1.0
    out = conv(u, ker)[0, 0]
    y, x = divmod(int(out.argmax()), H)
    assert (x, y) == (x0 + dx, y0 + dy)
    assert out[y, x].item() == pytest.approx(1.0, abs=1e-9)
    assert out.abs().sum().item() == pytest.approx(1.0, abs=1e-9)   # nothing leaked elsewhere


@pytest.mark.parametrize("mode", ["fft", "direct"])
def test_message_peaks_where_the_prior_says_A_sits(mode):
    """Edge (A=neck, v=left knee) with a prior 'A sits (dx, dy) from v': the message peaks
    at v's position + (dx, dy)."""
    H, (dx, dy) = 16, (2, -6)
    m = SpatialModel(SpatialConfig(graph="full", heatmap_size=H, use_fft=mode)).double()
    e = m.edge_index(NECK, L_KNEE)                              # a full-graph edge
    with torch.no_grad():
        m.prior_logit.fill_(-30.0)                              # SoftPlus ~ 1e-13: nearly zero
        m.prior_logit[e, dy + H - 1, dx + H - 1] = 10.0
    unary = torch.full((1, K, H, H), -1.0, dtype=torch.float64)
    unary[0, L_KNEE, 10, 5] = 1.0                               # knee at (x=5, y=10)
    msg = m.messages(unary, [e])[0, 0]
    y, x = divmod(int(msg.argmax()), H)
    assert (x, y) == (5 + dx, 10 + dy)


# ------------------------------------------------------------------ histograms
def test_histogram_of_constant_displacement_peaks_at_its_bin():
    rng = np.random.default_rng(0)
    N, size = 50, 16
    xy = rng.uniform(4, 11, (N, K, 2))
    xy[:, 1] = xy[:, 0] + [3, -2]                              # joint 1 always (+3, -2) from joint 0
    lab = np.ones((N, K), bool)
    # Unlabelled samples with another displacement must not count.
    xy[:5, 1] = xy[:5, 0] + [-4, 4]
    lab[:5, 1] = False
    c = size - 1
    for blur in (0.0, 1.0):
        h = displacement_histograms(xy, lab, [(1, 0), (0, 1)], size, blur=blur)
        assert h.shape == (2, 2 * size - 1, 2 * size - 1) and h.dtype == np.float32
        for e, (dx, dy) in enumerate([(3, -2), (-3, 2)]):
            iy, ix = np.unravel_index(h[e].argmax(), h[e].shape)
            assert (ix - c, iy - c) == (dx, dy)
            assert h[e].max() == pytest.approx(1.0)
        if blur == 0:
            assert h[0].sum() == pytest.approx(1.0)           # every sample in the one bin
            assert h[0][c + 4, c - 4] == 0


def test_histogram_of_real_data_puts_knee_above_ankle(mini):
    train = mini["train"]
    xy = HeatmapCodec().to_heatmap(torch.from_numpy(train.coords)).numpy()
    edges = graph.edges("tree")
    e = edges.index((R_KNEE, R_ANKLE))
    h = displacement_histograms(xy, train.labelled, edges, 32, blur=1.0)
    c = 31
    hist = h[e]
    above, below = hist[:c].sum(), hist[c + 1:].sum()
    assert above > 0.85 * hist.sum(), f"{NAMES[R_KNEE]} | {NAMES[R_ANKLE]}: {above} vs {below}"
    assert hist.max() == pytest.approx(1.0)
    # and the reverse edge is the mirror image: the ankle lies below the knee
    r = h[edges.index((R_ANKLE, R_KNEE))]
    np.testing.assert_allclose(r, hist[::-1, ::-1], atol=1e-6)


def test_load_histograms_sets_the_prior(mini):
    train = mini["train"]
    xy = HeatmapCodec().to_heatmap(torch.from_numpy(train.coords)).numpy()
    m = SpatialModel(SpatialConfig(graph="tree", heatmap_size=32))
    h = displacement_histograms(xy, train.labelled, m.edges, 32, blur=1.0)
    m.load_histograms(h)
    want = torch.from_numpy(h).clamp_min(1e-4)
    torch.testing.assert_close(m.prior(), want, rtol=1e-3, atol=1e-6)
    assert m.prior().min().item() >= 1e-4 * 0.99


# ------------------------------------------------------------------ step_through
@pytest.mark.parametrize("graph_name,a", [("tree", NECK), ("tree", R_ANKLE), ("full", L_KNEE)])
def test_step_through_replays_forward(graph_name, a):
    m = random_model(graph_name, 8, "auto", seed=4)
    unary = torch.randn(1, K, 8, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    steps = m.step_through(unary, a)
    vs = graph.neighbours(m.edges, a)
    assert len(steps) == len(vs) == sum(1 for t, _ in m.edges if t == a)
    assert steps[0]["v"] == a                                   # self edge first
    assert [s["v"] for s in steps] == vs
    running = torch.zeros(8, 8, dtype=torch.float64)
    for s in steps:
        assert s["edge"] == m.edge_index(a, s["v"])
        torch.testing.assert_close(s["unary_v"], unary[0, s["v"]])
        torch.testing.assert_close(s["message"], m.messages(unary, [s["edge"]])[0, 0].detach())
        running = running + torch.log(s["message"])
        torch.testing.assert_close(s["log_sum"], running, rtol=0, atol=1e-12)
        torch.testing.assert_close(s["marginal"], torch.exp(running))
    torch.testing.assert_close(steps[-1]["marginal"], m(unary)[0, a].detach(), rtol=1e-10, atol=0)


# ------------------------------------------------------------------ graph
def test_graph_edges():
    tree, full = graph.edges("tree"), graph.edges("full")
    assert len(tree) == 14 + 2 * 13 == 40
    assert len(full) == 14 * 14 == 196
    assert len(set(tree)) == len(tree) and set(tree) <= set(full)
    assert all((a, a) in tree for a in range(K))
    assert all((v, a) in tree for a, v in tree)                # both directions of each limb
    assert tree == sorted(tree)
    with pytest.raises(ValueError):
        graph.edges("chain")


def test_graph_neighbours_order():
    tree = graph.edges("tree")
    from lab.joints import HEAD, L_HIP, L_SHOULDER, R_HIP, R_SHOULDER
    assert graph.neighbours(tree, NECK) == [NECK, R_HIP, L_HIP, R_SHOULDER, L_SHOULDER, HEAD]
    assert graph.neighbours(tree, R_ANKLE) == [R_ANKLE, R_KNEE]
    assert graph.neighbours(tree, HEAD) == [HEAD, NECK]
    full = graph.edges("full")
    assert graph.neighbours(full, 5) == [5] + [v for v in range(K) if v != 5]


@pytest.mark.parametrize("size,blur", [(3, 1.0), (8, 3.0), (32, 1.0), (16, 2.5)])
def test_histogram_blur_keeps_shape_and_matches_a_2d_gaussian(size, blur):
    """Blur is a separable Gaussian of std `blur`, truncated at 3 ceil(blur), for any size
    (also when the truncated Gaussian is wider than the histogram)."""
    k, c = 2 * size - 1, size - 1
    xy = np.zeros((1, 2, 2))
    xy[0, 1] = [1, -1]
    h = displacement_histograms(xy, np.ones((1, 2), bool), [(1, 0)], size, blur=blur)
    assert h.shape == (1, k, k)
    rad = 3 * int(np.ceil(blur))
    r = np.arange(-rad, rad + 1)
    g = np.exp(-r ** 2 / (2 * blur ** 2))
    g /= g.sum()
    want = np.zeros((k, k))
    for iy in range(k):
        for ix in range(k):
            dy, dx = iy - (c - 1), ix - (c + 1)          # offset from the sample's bin (dx=1, dy=-1)
            if abs(dy) <= rad and abs(dx) <= rad:
                want[iy, ix] = g[dy + rad] * g[dx + rad]
    np.testing.assert_allclose(h[0], want / want.max(), rtol=1e-5, atol=1e-7)


def test_self_edges_stay_a_single_bin_while_pairs_are_blurred():
    """A joint is always exactly where it is: p(A | A) is one bin at zero displacement."""
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 31, (50, 2, 2))
    h = displacement_histograms(xy, np.ones((50, 2), bool), [(0, 0), (1, 0)], 32, blur=3.0)
    c = 31
    assert h[0, c, c] == 1.0 and np.count_nonzero(h[0]) == 1
    assert np.count_nonzero(h[1]) > 50 * 9                    # the pair's samples spread by the blur


# ------------------------------------------------------------------ edges switched off
def reference_masked(unary: np.ndarray, prior_logit, bias_logit, edges, drop) -> np.ndarray:
    """The log-marginal of the equation with the messages of `drop` left out: the loop of
    `reference_marginal` over the kept edges only."""
    keep = [e for e, ed in enumerate(edges) if ed not in set(drop)]
    return np.log(reference_marginal(unary, prior_logit[keep], bias_logit[keep], [edges[e] for e in keep]))


@pytest.mark.parametrize("mode", ["fft", "direct"])
@pytest.mark.parametrize("drop", [[], [(R_KNEE, R_ANKLE)], [(R_KNEE, R_ANKLE), (R_ANKLE, R_KNEE), (NECK, NECK)]])
def test_masked_log_marginal_matches_the_equation_without_those_messages(mode, drop):
    size = 8
    m = random_model("tree", size, mode)
    g = torch.Generator().manual_seed(2)
    unary = torch.randn(2, K, size, size, generator=g, dtype=torch.float64)
    got = m.log_marginal_masked(unary, m.edge_mask(drop)).detach().numpy()
    want = reference_masked(unary.numpy(), m.prior_logit.detach().numpy(), m.bias_logit.detach().numpy(),
                            m.edges, drop)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    if not drop:        # nothing dropped: exactly the model's own log-marginal
        torch.testing.assert_close(m.log_marginal_masked(unary, m.edge_mask()), m.log_marginal(unary))
    # only the targets of dropped edges change
    changed = {a for a, _ in drop}
    same = [k for k in range(K) if k not in changed]
    np.testing.assert_allclose(got[:, same], m.log_marginal(unary).detach().numpy()[:, same], atol=1e-12)


def test_edge_mask_drops_exactly_the_named_edges():
    m = random_model("tree", 6, "direct")
    mask = m.edge_mask([(R_KNEE, R_ANKLE)])
    assert mask.dtype == torch.bool and mask.shape == (len(m.edges),)
    assert not mask[m.edge_index(R_KNEE, R_ANKLE)] and int((~mask).sum()) == 1
    assert mask[m.edge_index(R_ANKLE, R_KNEE)]                  # the other direction stays
    all_off = m.log_marginal_masked(torch.rand(1, K, 6, 6, dtype=torch.float64), torch.zeros(len(m.edges), dtype=bool))
    assert (all_off == 0).all()


def test_the_prior_spectrum_is_reused_only_while_the_weights_stay():
    """Inference reuses the priors' FFTs; an optimiser step or a new state invalidates them,
    and with gradients on they are recomputed so the priors still learn."""
    sp = random_model("tree", 16, "fft")
    unary = torch.randn(2, K, 16, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        first = sp.log_marginal(unary)
        assert sp.prior_spectrum(16, 16) is sp.prior_spectrum(16, 16)            # cached
    opt = torch.optim.SGD(sp.parameters(), lr=0.5)
    loss = sp.log_marginal(unary).mean()
    loss.backward()
    assert sp.prior_logit.grad is not None and sp.prior_logit.grad.abs().sum() > 0
    opt.step()                                                                   # in place: a new version
    with torch.no_grad():
        after = sp.log_marginal(unary)
        fresh = random_model("tree", 16, "fft")
        fresh.load_state_dict(sp.state_dict())
        torch.testing.assert_close(after, fresh.log_marginal(unary))
        direct = random_model("tree", 16, "direct")
        direct.load_state_dict(sp.state_dict())
        torch.testing.assert_close(after, direct.log_marginal(unary), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(first, after)
