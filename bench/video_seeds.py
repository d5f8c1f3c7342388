"""Leaks over seeds: protect one stretch of a clip with several seeds and audit each output.

Which skins a track gets, and so whether a weakness shows, changes with the
seed and with how the painter threads interleave. One run of the full audit
(``bench/audit_checks.py --clips all``) is one draw: in session 12 a render
change passed the photo benchmark and most video runs, and leaked on the
hikers clip's fast, blurred face at close range on some seeds only. This
script cuts the frames ``--frames A:B`` of a clip into a short clip (x264 at
CRF 12, close to lossless), protects it with ``protect_video`` for each seed,
and runs ``faceskin audit`` (every frame, no fidelity readings) on each output.
It prints one row per seed, the leaked frames (numbered in the original clip)
and which recognizers matched, and the total. The default stretch is the one
that exposed that weakness: hikers frames 455-509, about 75 s a seed.

    python bench/video_seeds.py [--clip hikers_walking_group_17s] [--frames 455:510] [--seeds 0-7]

A render or pipeline change should show 0 leaked frames on every seed here
before the full audit. Needs the ``eval`` extra and ../shared/data.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("FACESKIN_SRC") or str(ROOT / "src"))

from faceskin.audit import Auditor, audit  # noqa: E402
from faceskin.video import protect_video  # noqa: E402
from faceskin.videofile import VideoWriter, open_video  # noqa: E402

DATA = Path(os.environ.get("FACESKIN_SHARED_DATA", ROOT.parent / "shared" / "data"))


def cut(src: Path, dst: Path, first: int, end: int) -> int:
    """Write frames ``first`` to ``end - 1`` of ``src`` to ``dst`` (no audio); the number written."""
    reader = open_video(src)
    n = 0
    with VideoWriter(dst, reader.width, reader.height, reader.time_base, fps=reader.fps, colour=reader.colour,
                     crf=12) as w:
        for i, frame in enumerate(reader):
            if i >= end:
                break
            if i >= first:
                w.write(frame.rgb, frame.pts)
                n += 1
    return n


def seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b) + 1)) if b else [int(a)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip", default="hikers_walking_group_17s", help="clip name under ../shared/data/videos")
    ap.add_argument("--frames", default="455:510", help="first:end frame of the stretch (end excluded)")
    ap.add_argument("--seeds", default="0-7", help="e.g. 0-7 or 1,4,9")
    ap.add_argument("--work", type=Path, default=None, help="keep the cut and the outputs here")
    args = ap.parse_args()
    src = DATA / "videos" / f"{args.clip}.mp4"
    if not src.exists():
        raise SystemExit(f"error: {src} not found (needs ../shared/data)")
    first, end = (int(v) for v in args.frames.split(":"))
    work = args.work or Path(tempfile.mkdtemp(prefix="faceskin-video-seeds-"))
    work.mkdir(parents=True, exist_ok=True)
    clip = work / f"{args.clip}_{first}_{end}.mp4"
    n = cut(src, clip, first, end)
    auditor = Auditor()
    print(f"{args.clip} frames {first}-{first + n - 1} ({n}), recognizers: {', '.join(r.name for r in auditor.panel)}")
    print()
    print("| seed | leaked frames (numbered as in the whole clip) | recognizers | skinned / all face-frames | s |")
    print("|---:|---|---|---|---:|")
    total = 0
    for seed in seeds(args.seeds):
        t0 = time.perf_counter()
        out = work / f"seed{seed}.mp4"
        report = protect_video(clip, out, seed=seed)
        result = audit(clip, out, auditor=auditor, thumbnails=False, fidelity=False)
        events = result.leak_events()
        frames = [first + e["frame"] for e in events]
        names = sorted({r for e in events for r in e["recognizers"]})
        total += len(frames)
        faces = sum(report.face_frames.values())
        print(f"| {seed} | {', '.join(map(str, frames)) or 'none'} | {', '.join(names) or '-'} | "
              f"{report.face_frames['skin']} / {faces} | {time.perf_counter() - t0:.0f} |", flush=True)
    print()
    print(f"leaked frames over all seeds: {total}")


if __name__ == "__main__":
    main()
