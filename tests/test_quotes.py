"""What the lessons quote about the shipped models (`lab.quotes`): the sizes follow the
weights' own geometry, every placeholder resolves, and the sentences that describe what the
pages draw name the sizes the loaded model really has."""
from __future__ import annotations

import re

import pytest
import torch

from lab import quotes
from lab.models import io
from lab.models.spatial import convolve_direct, convolve_fft, fft_len
from lab.resources import LESSONS, PRETRAINED


def test_sizes_of_the_128_and_192_pixel_geometries():
    small = quotes.sizes({"crop_size": 128, "stride": 4, "sigma": 1.0})
    assert (small["crop"], small["half"], small["heatmap"], small["reach"], small["kernel"]) == \
        ("128", "64", "32", "31", "63")
    assert (small["linear"], small["window"], small["fft"], small["macs"]) == ("94", "63", "64", r"4\times10^{6}")
    big = quotes.sizes({"crop_size": 192, "stride": 4, "sigma": 1.5})
    assert (big["heatmap"], big["kernel"], big["linear"], big["fft"], big["sigma"]) == ("48", "95", "142", "96", "1.5")
    assert set(big) == set(quotes.SIZES)


@pytest.mark.parametrize("n", [32, 48])
def test_the_quoted_fft_length_is_exact_and_one_shorter_is_not(n):
    """Lesson 4's claim: padding to `fft` (not `linear`) keeps the kept window exact."""
    s = quotes.sizes({"crop_size": 4 * n, "stride": 4})
    k, length = int(s["kernel"]), int(s["fft"])
    assert length == fft_len(n, k) and length >= int(s["window"])
    g = torch.Generator().manual_seed(0)
    u, kern = torch.rand(1, 1, n, n, generator=g, dtype=torch.float64), torch.rand(1, k, k, generator=g, dtype=torch.float64)
    torch.testing.assert_close(convolve_fft(u, kern), convolve_direct(u, kern))


def test_fill_replaces_both_kinds_and_says_what_it_cannot_read():
    text = "{{pck:pose:marginal}} on {{size:pose:heatmap}} maps; {{size:pose:nonsense}} {{pck:nobody:unary}}"
    got = quotes.fill(text, pck=lambda m, k: 0.741 if m == "pose" else None,
                      size=lambda m, w: "48" if w == "heatmap" else None)
    assert got == "74.1% on 48 maps; (no such model) (not measured yet)"


def shipped(name: str):
    path = PRETRAINED / f"{name}.safetensors"
    if not path.is_file():
        pytest.skip("no shipped weights")
    return io.load(path)[0]


def test_every_lesson_placeholder_resolves():
    for f in sorted(LESSONS.glob("0*.md")):
        text = quotes.fill(f.read_text(encoding="utf-8"))
        assert "{{" not in text and "(no such model)" not in text, f.name


def test_the_lessons_sizes_are_the_shipped_models():
    """What lessons 1-5 say about the default model's crop, heatmaps and priors is what the
    loaded weights have (the pages draw these maps)."""
    model = shipped("pose")
    n, k = model.spatial.cfg.heatmap_size, model.spatial.cfg.kernel_size
    read = {f.name: quotes.fill(f.read_text(encoding="utf-8")) for f in LESSONS.glob("0*.md")}
    assert f"$S = {4 * n}$ for the default" in read["01_heatmaps.md"]
    assert f"${n}\\times{n}$ for the default model" in read["01_heatmaps.md"]
    assert f"${k}\\times{k}$ **convolution kernel**" in read["03_spatial_priors.md"]
    assert f"the lab pads to {fft_len(n, k)}," in read["04_message_passing.md"]
    assert re.search(rf"\${n} \+ {n - 1} = {2 * n - 1}\$", read["04_message_passing.md"])
    shipped("regressor")
    crop = io.read_meta(PRETRAINED / "regressor.safetensors")["data"]["crop_size"]
    assert f"({crop} pixels for the lab's regressor)" in read["05_regression.md"]
