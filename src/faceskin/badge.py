"""Optional visible "faces altered" badge, for platforms that strip metadata.

Content credentials vanish on upload to most social networks and the
invisible watermark needs a tool to read; a small visible label is the only
signal every viewer gets. It is opt-in (``--badge``) because it changes the
picture for everyone, and it is drawn in a corner, away from the centre where
faces usually are, at a size relative to the frame so it stays legible after
downscaling.

:class:`Badge` renders the label once per frame size, so video pays only an
alpha blend per frame.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

DEFAULT_TEXT = "faces altered"
CORNERS = ("bottom-right", "bottom-left", "top-right", "top-left")
#: Text height as a share of the frame's shorter side, with a floor for small frames.
TEXT_SHARE = 0.035
MIN_TEXT_PX = 11
#: Opacity of the dark plate behind the text.
PLATE_ALPHA = 0.6


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


class Badge:
    """A pre-rendered badge for frames of one size; :meth:`apply` blends it onto a frame."""

    def __init__(self, width: int, height: int, text: str = DEFAULT_TEXT, corner: str = "bottom-right") -> None:
        if corner not in CORNERS:
            raise ValueError(f"corner must be one of {', '.join(CORNERS)}")
        size = max(MIN_TEXT_PX, round(min(width, height) * TEXT_SHARE))
        font = _font(size)
        left, top, right, bottom = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font)
        pad = max(2, size // 3)
        bw, bh = min(width, right - left + 2 * pad), min(height, bottom - top + 2 * pad)
        plate = Image.new("L", (bw, bh), 0)
        glyphs = Image.new("L", (bw, bh), 0)
        ImageDraw.Draw(plate).rectangle((0, 0, bw - 1, bh - 1), fill=255)
        ImageDraw.Draw(glyphs).text((pad - left, pad - top), text, font=font, fill=255)
        self._plate = np.asarray(plate, dtype=np.float32)[..., None] / 255.0 * PLATE_ALPHA
        self._glyphs = np.asarray(glyphs, dtype=np.float32)[..., None] / 255.0
        margin = max(2, size // 2)
        x = width - bw - margin if corner.endswith("right") else margin
        y = height - bh - margin if corner.startswith("bottom") else margin
        self.x, self.y = max(0, x), max(0, y)
        self.width, self.height = width, height

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """Return a copy of ``rgb`` with the badge: white text on a translucent dark plate."""
        if rgb.shape[:2] != (self.height, self.width):
            raise ValueError(f"badge made for {self.width}x{self.height}, frame is {rgb.shape[1]}x{rgb.shape[0]}")
        out = rgb.copy()
        h, w = self._plate.shape[:2]
        region = out[self.y : self.y + h, self.x : self.x + w].astype(np.float32)
        region = region * (1.0 - self._plate)  # darken under the plate
        region = region * (1.0 - self._glyphs) + 255.0 * self._glyphs
        out[self.y : self.y + h, self.x : self.x + w] = np.clip(np.round(region), 0, 255).astype(np.uint8)
        return out


def add_badge(rgb: np.ndarray, text: str = DEFAULT_TEXT, corner: str = "bottom-right") -> np.ndarray:
    """One-off :class:`Badge` for a single image."""
    return Badge(rgb.shape[1], rgb.shape[0], text, corner).apply(rgb)
