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

Videos: faceskin marks every protected face region of every frame, so the
decoder looks at up to ``VIDEO_FRAMES`` frames spread evenly over the clip
(faces may appear only late) and decodes each one alone. A run id found in
``VIDEO_VOTES`` frames ends the search early (a labelled clip costs a few
frames, not the whole clip); found in at least two frames, it is the verdict
(the majority when frames disagree), decided on the evidence of the frames
that carry it. Two independent CRC-24 matches of one id by chance are out of
reach, which a single frame's match is not when dozens of frames are tried.
Otherwise the evidence of all checked frames is pooled and decided once, which
finds a mark too weak for any single frame (heavy re-encoding, small faces).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError
from .label import ManifestReport, read_manifest
from .watermark import SlotEvidence, WatermarkResult, decide, decode, hypotheses

LABELLED = "labelled"
TAMPERED = "tampered"
OTHER_LABEL = "other_label"
WATERMARK_ONLY = "watermark_only"
NONE = "none"

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"})
#: Most video frames decoded for the watermark, spread evenly over the clip.
VIDEO_FRAMES = 48
#: Stride between checked frames when the container does not say how many frames it holds.
VIDEO_FRAME_STRIDE = 5
#: Frames agreeing on one run id that end the search early.
VIDEO_VOTES = 3


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
    #: Videos: {"checked": frames decoded, "marked": frames whose own decode found the verdict's run id}
    watermark_frames: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "verdict": self.verdict,
            "message": self.message,
            "manifest": self.manifest.to_dict(),
            "watermark": None if self.watermark is None else self.watermark.to_dict(),
            "watermark_error": self.watermark_error,
            "watermark_matches_manifest": self.watermark_matches_manifest,
            "watermark_frames": self.watermark_frames,
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
    frames: dict[str, int] | None = None
    if check_watermark:
        try:
            if path.suffix.lower() in VIDEO_SUFFIXES:
                watermark, frames = decode_video(path)
            else:
                from .imagefile import read_image

                watermark = decode(read_image(path).rgb)
        except InputError as exc:
            watermark_error = str(exc)
    result = _judge(path, manifest, watermark, watermark_error)
    result.watermark_frames = frames
    return result


def _pool(into: dict[tuple[float, str], SlotEvidence], evidence: dict[tuple[float, str], SlotEvidence]) -> None:
    for key, ev in evidence.items():
        into.setdefault(key, SlotEvidence()).add(ev)


def decode_video(path: str | os.PathLike[str]) -> tuple[WatermarkResult, dict[str, int]]:
    """The watermark of a video: per-frame decoding with a vote, pooled evidence as the fallback.

    See the module docstring for why. Returns the result and how many frames
    were decoded and carried the winning run id. Raises :class:`InputError`
    when the file cannot be decoded or has no frames.
    """
    from .videofile import open_video

    reader = open_video(path)
    total = reader.frame_count
    stride = max(1, math.ceil(total / VIDEO_FRAMES)) if total else VIDEO_FRAME_STRIDE
    pooled: dict[tuple[float, str], SlotEvidence] = {}
    by_run: dict[int, dict[tuple[float, str], SlotEvidence]] = {}
    votes: Counter[int] = Counter()
    checked = 0
    for frame in reader:
        if frame.index % stride:
            continue
        evidence = hypotheses(frame.rgb)
        _pool(pooled, evidence)
        checked += 1
        alone = decide(evidence)
        if alone.present and alone.run_id is not None:
            votes[alone.run_id] += 1
            _pool(by_run.setdefault(alone.run_id, {}), evidence)
        if checked >= VIDEO_FRAMES or (votes and votes.most_common(1)[0][1] >= VIDEO_VOTES):
            break
    if not checked:
        raise InputError(f"{path}: no video frames to check for a watermark")
    if votes:
        run_id, count = votes.most_common(1)[0]
        if count >= 2:
            result = decide(by_run[run_id])
            if result.present and result.run_id == run_id:
                return result, {"checked": checked, "marked": count}
    result = decide(pooled)
    return result, {"checked": checked, "marked": votes.get(result.run_id, 0) if result.present else 0}


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
        if result.watermark_frames:
            f = result.watermark_frames
            state += f" ({f['marked']} of {f['checked']} checked frames carry it alone)" if w.present else (
                f" in {f['checked']} checked frames")
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
    "decode_video",
    "describe",
    "verify_file",
]
