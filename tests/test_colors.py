"""The lab's one heatmap ramp (lab.colors): the app's Plotly scale and the live heatmap's
pixels come from the same stops."""
import numpy as np
from plotly.colors import get_colorscale, hex_to_rgb

from lab.colors import HEAT_HEX, colorize, heat_scale


def test_the_scale_is_plotlys_inferno_spelled_as_rgb():
    want = [[v, "rgb({}, {}, {})".format(*hex_to_rgb(c))] for v, c in get_colorscale("Inferno")]
    assert heat_scale() == want
    assert all(not c.startswith("#") for _, c in heat_scale())        # Streamlit rewrites #0000xx


def test_colorize_runs_through_the_same_stops():
    stops = np.linspace(0, 1, len(HEAT_HEX))
    got = colorize(stops)
    assert got.dtype == np.uint8 and got.shape == (len(HEAT_HEX), 3)
    assert np.abs(got.astype(int) - np.array([hex_to_rgb(h) for h in HEAT_HEX])).max() <= 1   # float steps
    assert (colorize(np.array([-1.0, np.nan, 2.0])) == colorize(np.array([0.0, 0.0, 1.0]))).all()
