"""Finishing an output honestly: visible badge (optional), invisible watermark, signed C2PA label.

The photo and video paths both end here, so "every output is labelled" is
one code path rather than two. Signing material is loaded before any work
starts: a run that cannot label fails at once instead of after an hour of
video, and it is never skipped silently (``label=False`` is the only way).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from faceskin.errors import InputError


@dataclass
class LabelOptions:
    label: bool = True  # signed C2PA manifest
    sign_cert: str | None = None  # PEM chain; None: the keys folder made by `faceskin keys init`
    sign_key: str | None = None
    badge: bool = False  # visible "faces altered" badge, for platforms that strip metadata
    watermark: bool = True  # invisible mark in every protected face region
    watermark_frame: bool = False  # ... and over the whole frame


class Finisher:
    def __init__(self, options: LabelOptions | None = None):
        from faceskin.watermark import new_run_id

        self.options = options or LabelOptions()
        self.run_id = new_run_id()
        self.labeller = None
        self._badges: dict[tuple[int, int], object] = {}
        # Images or frames that got the invisible mark since the last ``finish``: an output with
        # no face (and no whole-frame mark) carries none, so its manifest must not claim one.
        self._marked = 0
        if self.options.label:
            from faceskin.keys import load_signing_material
            from faceskin.label import Labeller

            self.labeller = Labeller(load_signing_material(self.options.sign_cert, self.options.sign_key))

    def check_output(self, path: Path) -> None:
        """Refuse, before any work, an output whose format cannot carry a label."""
        from faceskin.label import can_label

        if self.labeller is not None and not can_label(path):
            raise InputError(f"{path}: this format cannot carry a C2PA label; use .jpg/.png/.webp/.mp4/.mov or --no-label")

    def mark(self, rgb: np.ndarray, boxes: Iterable[Sequence[float]]) -> np.ndarray:
        """Badge and watermark one image or frame (returns a new array when anything is added).

        Also the video pipeline's ``frame_hook``: called once per frame, from
        one thread, with the boxes of every protected region of that frame.
        """
        o = self.options
        if o.badge:
            from faceskin.badge import Badge

            h, w = rgb.shape[:2]
            badge = self._badges.get((w, h))
            if badge is None:
                badge = self._badges[(w, h)] = Badge(w, h)
            rgb = badge.apply(rgb)
        if o.watermark:
            from faceskin.watermark import embed

            boxes = list(boxes)
            if boxes or o.watermark_frame:
                rgb = embed(rgb, self.run_id, boxes, whole_frame=o.watermark_frame)
                self._marked += 1
        return rgb

    def staging_path(self, final: Path) -> Path:
        """Where to write before labelling: same folder and suffix, hidden name."""
        if self.labeller is None:
            return final
        return final.with_name(f".{final.stem}.unlabelled{final.suffix}")

    def finish(self, staged: Path, final: Path, outcomes, watermarked: bool = True) -> None:
        """Label ``staged`` into ``final`` atomically and remove ``staged``.

        ``watermarked`` says whether ``mark`` was applied to the pixels: the
        manifest must not claim a watermark that is not there (nor one on an
        output where ``mark`` found no region to put it in).
        """
        marked_any, self._marked = self._marked > 0, 0
        if self.labeller is None:
            return
        from faceskin.label import Alteration

        o = self.options
        marked = o.watermark and watermarked and marked_any
        try:
            alteration = Alteration.from_outcomes(
                outcomes,
                watermark_run_id=self.run_id if marked else None,
                watermark_scope=("frame" if o.watermark_frame else "faces") if marked else None,
                badge=o.badge and watermarked,
            )
            self.labeller.label_file(staged, alteration, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(staged)
