import numpy as np
import pytest

from adbench.arguments import make_windows, parse_windows
from adbench.errors import ConfigError
from adbench.windows import Window, scan_windows


def test_default_window_and_anchors():
    w = Window()
    assert (w.low, w.high) == (3.3, 3.7)
    assert np.allclose(w.anchors, (3.2, 3.8))
    assert np.isclose(w.interpolation_weight(3.2), 1.0) and np.isclose(w.interpolation_weight(3.8), 0.0)
    assert np.isclose(w.interpolation_weight(3.5), 0.5)


def test_sidebands():
    w = Window()
    m = np.array([3.0, 3.15, 3.3, 3.5, 3.69, 3.7, 3.85, 4.5])
    assert w.in_sr(m).tolist() == [False, False, True, True, True, False, False, False]
    assert w.in_sidebands(m).tolist() == [True, True, False, False, False, True, True, True]
    assert w.in_sidebands(m, 0.2).tolist() == [False, True, False, False, False, True, True, False]
    assert w.lower_sideband(m, 0.2).sum() == 1 and w.upper_sideband(m, 0.2).sum() == 2


def test_scan():
    windows = scan_windows(3.0, 4.2, 0.4, 0.2)
    assert [w.name for w in windows] == ["3.00-3.40", "3.20-3.60", "3.40-3.80", "3.60-4.00", "3.80-4.20"]
    assert len(scan_windows(3.0, 4.2, 0.4)) == 3
    assert [w.name for w in make_windows(parse_windows(None, "3.0,4.2,0.4,0.2"))] == [w.name for w in windows]


@pytest.mark.parametrize("text", ["3.3", "a,b", "3.7,3.3"])
def test_bad_sr(text):
    with pytest.raises(ConfigError):
        parse_windows(text, None)


@pytest.mark.parametrize("text", ["3.0,4.0", "3.0,3.2,0.4", "3,4,0,1"])
def test_bad_scan(text):
    with pytest.raises(ConfigError):
        parse_windows(None, text)


def test_anchor_offset_moves_the_anchors_and_may_not_enter_the_sr():
    assert np.allclose(Window(anchor_offset=0.0).anchors, (3.3, 3.7))
    assert np.allclose(Window(anchor_offset=0.5).anchors, (3.1, 3.9))
    for bad in (-0.1, float("nan"), "0", True):
        with pytest.raises(ConfigError, match="anchor_offset"):
            Window(anchor_offset=bad)
