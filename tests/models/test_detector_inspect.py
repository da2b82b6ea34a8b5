"""lab.models.detector.strongest_channels."""
import torch

from lab.models.detector import strongest_channels


def test_strongest_channels_orders_by_mean_activation():
    f = torch.zeros(5, 4, 4)
    f[3] = 2.0
    f[1] = 1.0
    f[4, 0, 0] = 16.0          # mean 1.0: ties with channel 1, lower index first
    assert strongest_channels(f, 3) == [3, 1, 4]
    assert strongest_channels(f, 99) == [3, 1, 4, 0, 2]
    assert strongest_channels(f, 0) == []
