"""`faceskin verify`: was this file altered by faceskin, and is its label intact?

Two independent signals are combined into one verdict:

* the C2PA manifest (:func:`faceskin.label.read_manifest`): strong (signed,
  binds every byte of the content) but lost whenever a platform strips
  metadata;
* the invisible watermark (:func:`faceskin.watermark.decode`): weak evidence
  (says "faceskin" and a run id, nothing signed) but survives re-encoding,
  resizing and metadata stripping.

Verdicts, in order of precedence:

``labelled``       an intact manifest written by faceskin;
``tampered``       a manifest is there but fails validation: the content or
                   the manifest changed after signing, or it cannot be parsed
                   (the issue's "manifest invalid or tampered");
``other_label``    an intact manifest from another tool, no faceskin claim;
``watermark_only`` no usable manifest, but the faceskin watermark is present
                   (typical after upload to a platform that strips metadata);
``none``           neither.

A tampered file whose watermark is still present stays ``tampered`` (the
watermark is reported alongside): a broken signature is the fact a reader must
see first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .label import ManifestReport, read_manifest
from .watermark import WatermarkResult, decode

LABELLED = "labelled"
TAMPERED = "tampered"
OTHER_LABEL = "other_label"
WATERMARK_ONLY = "watermark_only"
NONE = "none"

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"})
#: Video frames pooled for the watermark decision (spread over the clip's start).
VIDEO_FRAMES = 24
#: Take every n-th frame so the pooled frames differ (motion, encoder noise).
VIDEO_FRAME_STRIDE = 5


@dataclass
class Verification:
    """The verdict for one file plus both pieces of evidence; ``to_dict`` is the JSON output."""

    path: Path
    verdict: str
    message: str
    manifest: ManifestReport
    watermark: WatermarkResult | None
    watermark_error: str | None = None
    watermark_matches_manifest: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "verdict": self.verdict,
            "message": self.message,
            "manifest": self.manifest.to_dict(),
            "watermark": None if self.watermark is None else self.watermark.to_dict(),
            "watermark_error": self.watermark_error,
            "watermark_matches_manifest": self.watermark_matches_manifest,
        }


def verify_file(
    path: str | os.PathLike[str],
    *,
    trust_anchor_pem: bytes | None = None,
    check_watermark: bool = True,
) -> Verification:
    """Read the manifest and decode the watermark of an image or video file.

    ``trust_anchor_pem`` (e.g. the root written by ``faceskin keys init``)
    lets one's own outputs show as "trusted" rather than merely "valid".
    Raises :class:`InputError` only when the file cannot be read at all; a
    damaged picture still gets a verdict from its manifest.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give a file")
    manifest = read_manifest(path, trust_anchor_pem)
    watermark: WatermarkResult | None = None
    watermark_error: str | None = None
    if check_watermark:
        try:
            watermark = decode(_frames_for_watermark(path))
        except InputError as exc:
            watermark_error = str(exc)
    return _judge(path, manifest, watermark, watermark_error)


def _frames_for_watermark(path: Path) -> np.ndarray | list[np.ndarray]:
    if path.suffix.lower() in VIDEO_SUFFIXES:
        from .videofile import open_video

        frames: list[np.ndarray] = []
        for frame in open_video(path):
            if frame.index % VIDEO_FRAME_STRIDE == 0:
                frames.append(frame.rgb)
                if len(frames) >= VIDEO_FRAMES:
                    break
        if not frames:
            raise InputError(f"{path}: no video frames to check for a watermark")
        return frames
    from .imagefile import read_image

    return read_image(path).rgb


def _judge(
    path: Path, manifest: ManifestReport, watermark: WatermarkResult | None, watermark_error: str | None
) -> Verification:
    marked = watermark is not None and watermark.present
    matches: bool | None = None
    claimed = ((manifest.alteration or {}).get("watermark") or {}).get("run_id")
    if marked and claimed is not None:
        matches = claimed == f"{watermark.run_id:06x}"  # type: ignore[union-attr]

    if manifest.intact and manifest.by_faceskin:
        alt = manifest.alteration or {}
        trust = "signer trusted" if manifest.state == "trusted" else "signer not in a trust list, e.g. a self-issued key"
        signer = (manifest.signer or {}).get("common_name") or "unknown signer"
        verdict, message = LABELLED, (
            f"labelled by faceskin: {alt.get('faces_replaced', '?')} face(s) replaced; "
            f"content credentials intact, signed by '{signer}'; {trust}"
        )
        if matches is False:
            message += "; the watermark carries a different run id than the manifest"
    elif manifest.state in ("invalid", "unreadable"):
        why = ", ".join(manifest.failures) or manifest.error or "validation failed"
        what = "content or manifest changed after signing" if manifest.tampered else "manifest invalid"
        verdict, message = TAMPERED, f"manifest invalid or tampered: {what} ({why})"
        if marked:
            message += "; faceskin watermark present"
    elif manifest.intact:
        verdict, message = OTHER_LABEL, f"content credentials from {manifest.generator or 'another tool'}, not faceskin"
        if marked:
            message += "; faceskin watermark present"
    elif marked:
        verdict, message = WATERMARK_ONLY, (
            f"faceskin watermark present (run {watermark.run_id:06x}) but no content credentials: "  # type: ignore[union-attr]
            "altered by faceskin, metadata stripped since"
        )
    else:
        verdict, message = NONE, "no faceskin label: no content credentials and no faceskin watermark found"
        if watermark_error:
            message += f" (watermark not checked: {watermark_error})"
    return Verification(
        path=path,
        verdict=verdict,
        message=message,
        manifest=manifest,
        watermark=watermark,
        watermark_error=watermark_error,
        watermark_matches_manifest=matches,
    )


def describe(result: Verification) -> list[str]:
    """Human-readable lines for the CLI: the verdict first, then the evidence."""
    lines = [f"{result.path}: {result.verdict.upper()} - {result.message}"]
    m = result.manifest
    if m.state != "absent":
        lines.append(f"  manifest: {m.state}; generator {m.generator or '?'}; actions {', '.join(m.actions) or '-'}")
        if m.alteration:
            skins = ", ".join(m.alteration.get("skin_ids", [])) or "-"
            lines.append(f"  faces replaced: {m.alteration.get('faces_replaced')}; skins: {skins}")
    w = result.watermark
    if w is not None:
        state = f"present, run {w.run_id:06x}" if w.present else "not found"
        lines.append(f"  watermark: {state}")
    elif result.watermark_error:
        lines.append(f"  watermark: not checked ({result.watermark_error})")
    return lines


__all__ = [
    "LABELLED",
    "NONE",
    "OTHER_LABEL",
    "TAMPERED",
    "WATERMARK_ONLY",
    "Verification",
    "describe",
    "verify_file",
]
