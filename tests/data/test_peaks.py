"""lab.data.targets.second_peak / peak_competition: finding false-positive candidates."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lab.data.targets import STRONG_SECOND_PEAK, gaussian_targets, peak_competition, second_peak


def two_bumps(p1, p2, h2, size=16, sigma=1.0):
    xy = torch.tensor([[p1, p2]], dtype=torch.float64)
    g = gaussian_targets(xy, torch.ones(1, 2, dtype=torch.bool), size, sigma)[0]
    return g[0] + h2 * g[1]


def test_second_peak_finds_both_bumps_and_their_ratio():
    h = two_bumps((3, 4), (11, 12), 0.6)
    sp = second_peak(h)
    assert sp["first"] == (3, 4) and sp["second"] == (11, 12)
    assert sp["ratio"] == pytest.approx(0.6, abs=1e-6)
    assert sp["ratio"] >= STRONG_SECOND_PEAK
    # the same map as numpy, and shifted by a negative constant (ReLU clips the floor)
    assert second_peak(h.numpy())["second"] == (11, 12)


def test_shoulders_of_the_first_peak_are_not_a_second_peak():
    h = two_bumps((8, 8), (8, 8), 0.0, sigma=2.0)        # one wide bump
    sp = second_peak(h, min_distance=2)
    assert sp["second"] is None and sp["ratio"] == 0.0
    # a flat / negative map has no peaks to compare
    assert second_peak(-torch.ones(5, 5))["ratio"] == 0.0


def test_min_distance_is_chebyshev_and_respected():
    h = torch.zeros(9, 9)
    h[4, 4], h[4, 6], h[1, 1] = 1.0, 0.9, 0.5
    assert second_peak(h, min_distance=1)["second"] == (6, 4)
    assert second_peak(h, min_distance=2)["second"] == (1, 1)   # (6, 4) is 2 away: too close


def test_log_space_reads_a_log_map():
    h = two_bumps((3, 4), (11, 12), 0.25)
    sp = second_peak(torch.log(h.clamp_min(1e-12)), log_space=True)
    assert sp["second"] == (11, 12) and sp["ratio"] == pytest.approx(0.25, rel=1e-6)
    assert sp["first_value"] == pytest.approx(1.0)


def test_peak_competition_measures_suppression():
    unary = two_bumps((3, 4), (11, 12), 0.8)
    # the marginal keeps the first bump and cuts the second to 1/10 of it
    marginal = two_bumps((3, 4), (11, 12), 0.1) + 1e-6
    pc = peak_competition(unary, torch.log(marginal))
    assert pc["unary_ratio"] == pytest.approx(0.8, abs=1e-6)
    assert pc["marginal_ratio"] == pytest.approx(0.1, abs=1e-3)
    assert pc["change"] == pytest.approx(0.7, abs=1e-3)
    # a marginal that prefers the second bump: ratio > 1, change capped below
    swapped = peak_competition(unary, torch.log(two_bumps((11, 12), (3, 4), 0.5) + 1e-6))
    assert swapped["marginal_ratio"] == pytest.approx(2.0, rel=1e-3)
    assert swapped["change"] == pytest.approx(0.8 - 1.0, abs=1e-3)
    # no second peak: nothing to compare
    one = peak_competition(two_bumps((5, 5), (5, 5), 0.0), torch.zeros(16, 16))
    assert one["second"] is None and math.isnan(one["marginal_ratio"]) and one["change"] == 0.0
