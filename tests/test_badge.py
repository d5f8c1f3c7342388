"""Visible badge: drawn in its corner only, legible, sized to the frame."""

from __future__ import annotations

import numpy as np
import pytest

from faceskin.badge import Badge, add_badge


@pytest.mark.parametrize("corner", ["bottom-right", "top-left"])
def test_badge_changes_only_its_corner(corner):
    frame = np.full((360, 640, 3), 128, np.uint8)
    out = add_badge(frame, corner=corner)
    changed = np.argwhere((out != frame).any(axis=2))
    assert changed.size
    (y0, x0), (y1, x1) = changed.min(axis=0), changed.max(axis=0)
    assert (y1 - y0) < 0.15 * 360 and (x1 - x0) < 0.5 * 640
    if corner == "bottom-right":
        assert y0 > 360 / 2 and x0 > 640 / 2
    else:
        assert y1 < 360 / 2 and x1 < 640 / 2
    patch = out[y0 : y1 + 1, x0 : x1 + 1]
    assert patch.max() >= 240 and patch.min() <= 60  # white text on a dark plate


def test_badge_scales_with_the_frame_and_checks_size():
    small, big = Badge(320, 240), Badge(1920, 1080)
    assert big._plate.shape[0] > 2 * small._plate.shape[0]
    with pytest.raises(ValueError):
        small.apply(np.zeros((100, 100, 3), np.uint8))
    with pytest.raises(ValueError):
        Badge(320, 240, corner="middle")
