"""Video throughput: faceskin skins against the decode+encode ceiling and against deface.

For every clip in ../shared/data/videos (and any video in examples/), in one run:

  (a) decode + encode only: ``faceskin.videofile.transcode`` with no processing,
      the same x264 settings as (c): the ceiling any per-frame work lowers;
  (b) deface 1.5 (pip, CPU), its default settings (CenterFace at full
      resolution, threshold 0.2, ellipse blur, mask scale 1.3, libx264 through
      imageio-ffmpeg), run in-process through its own ``video_detect``;
  (c) faceskin skins: ``faceskin.video.protect_video`` with its defaults;
  (d) with ``--unchecked``: the same with the identity self-check switched off
      (``ProtectOptions(identity_check=False)``). Not a setting to protect
      anyone with (the leaks the self-check catches go out); it measures what
      detection, tracking, landmarks, rendering and covers cost alone: the
      ceiling for (c) with any verifier.

Models are loaded once before timing, for all three; each figure is frames per
wall-clock second of the whole clip (open, decode, process, encode, close).
Prints markdown tables: throughput with the ratios (c)/(a) and (c)/(b), then
per-stage milliseconds per frame of (c), track counts and fallback share.

    python bench/video_throughput.py [--preset veryfast] [--crf 18] [--clips 'grid_*'] [--keep DIR] [--unchecked]

Needs deface (``pip install deface --no-deps`` plus imageio, imageio-ffmpeg,
tqdm; *not* its opencv-python: opencv-contrib-python provides cv2). The
machine has 2 cores and may be shared: the load average is printed before and
after; compare figures only within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from faceskin.protect import ProtectOptions, Protector  # noqa: E402
from faceskin.video import DEFAULT_PRESET, VideoProtector, for_video  # noqa: E402
from faceskin.videofile import DEFAULT_CRF, open_video, transcode  # noqa: E402

DATA = Path(os.environ.get("FACESKIN_SHARED_DATA", ROOT.parent / "shared" / "data"))
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"}


def clips(pattern: str) -> list[Path]:
    found = sorted((DATA / "videos").glob(f"{pattern}.mp4")) if (DATA / "videos").is_dir() else []
    found += sorted(p for p in (ROOT / "examples").glob(pattern) if p.suffix.lower() in VIDEO_SUFFIXES)
    return found


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_deface(centerface, src: Path, dst: Path) -> float:
    """deface's own video loop with its CLI defaults; returns seconds."""
    from deface.deface import video_detect

    started = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):  # its tqdm bar
        video_detect(ipath=str(src), opath=str(dst), centerface=centerface, threshold=0.2, enable_preview=False,
                     cam=False, nested=False, replacewith="blur", mask_scale=1.3, ellipse=True, draw_scores=False,
                     ffmpeg_config={"codec": "libx264"}, keep_audio=False)
    if not dst.exists():
        raise RuntimeError(f"deface wrote nothing for {src}")
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default=DEFAULT_PRESET)
    ap.add_argument("--crf", type=float, default=DEFAULT_CRF)
    ap.add_argument("--clips", default="*", help="glob on the clip names (without .mp4)")
    ap.add_argument("--keep", type=Path, help="keep faceskin's outputs in this folder (for bench/video_leaks.py)")
    ap.add_argument("--no-deface", action="store_true")
    ap.add_argument("--unchecked", action="store_true",
                    help="also time (d): skins without the identity self-check (cost floor, not a safe setting)")
    args = ap.parse_args()

    paths = clips(args.clips)
    if not paths:
        sys.exit(f"no clips: {DATA / 'videos'} is absent (fresh clone?) and examples/ has no video")
    centerface = None
    if not args.no_deface:
        try:
            from deface.centerface import CenterFace
        except ImportError:
            sys.exit("deface is not installed: pip install deface --no-deps && pip install imageio imageio-ffmpeg tqdm")
        with contextlib.redirect_stdout(io.StringIO()):
            centerface = CenterFace(in_shape=None, backend="auto")
    skins = VideoProtector()  # loads the detector, landmarker and skins before any timing
    unchecked = None
    if args.unchecked:
        unchecked = VideoProtector(for_video(Protector(options=ProtectOptions(identity_check=False))))
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)

    print(f"cores: {os.cpu_count()}, load average before: {load()}, x264 preset {args.preset}, crf {args.crf:g}\n")
    floor: list = []
    rows, stages, totals = [], [], {"frames": 0, "a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for src in paths:
            reader = open_video(src)
            a = transcode(src, tmp / "a.mp4", crf=args.crf, preset=args.preset)
            b_seconds = run_deface(centerface, src, tmp / "b.mp4") if centerface is not None else None
            out = (args.keep / f"{src.stem}.skinned.mp4") if args.keep else tmp / "c.mp4"
            r = skins.run(src, out, crf=args.crf, preset=args.preset)
            if args.keep:  # what bench/video_leaks.py --outputs needs to reuse this output
                (args.keep / f"{src.stem}.report.json").write_text(
                    json.dumps({**r.to_dict(), "frame_methods": r.frame_methods}))
            n = r.frames
            assert n == a.frames, (src, n, a.frames)
            totals["frames"] += n
            totals["a"] += a.seconds
            totals["c"] += r.seconds
            fa, fc = n / a.seconds, n / r.seconds
            fb = n / b_seconds if b_seconds else None
            if b_seconds:
                totals["b"] += b_seconds
            fd = None
            if unchecked is not None:
                d = unchecked.run(src, tmp / "d.mp4", crf=args.crf, preset=args.preset)
                totals["d"] += d.seconds
                fd = n / d.seconds
                floor.append((src.stem, {k: 1000 * v / n for k, v in d.timings.items()}, 1000 * d.seconds / n))
            rows.append((src.stem, f"{reader.width}x{reader.height}", n, fa, fb, fc, fd, len(r.tracks),
                         r.fragmentation["tracks_under_half_a_second"], r.fallback_share))
            stages.append((src.stem, {k: 1000 * v / n for k, v in r.timings.items()}, 1000 * r.seconds / n))
            print(f"  {src.stem}: a {fa:.1f}  b {fb or 0:.1f}  c {fc:.1f}" + (f"  d {fd:.1f}" if fd else "")
                  + " frames/s", file=sys.stderr)

    def ratio(x, y):
        return f"{x / y:.2f}" if x and y else "-"

    def fps(x):
        return f"{x:.1f}" if x else "-"

    extra = " | (d) unchecked fps | (d)/(a) | (d)/(b)" if unchecked is not None else ""
    print("| clip | size | frames | (a) decode+encode fps | (b) deface fps | (c) faceskin fps | (c)/(a) | (c)/(b)"
          + extra + " | tracks | tracks < 0.5 s | fallback share |")
    print("|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|" * 3 if extra else "") + "---:|---:|---:|")
    for name, size, n, fa, fb, fc, fd, tracks, short, share in rows:
        more = f" | {fps(fd)} | {ratio(fd, fa)} | {ratio(fd, fb)}" if extra else ""
        print(f"| {name} | {size} | {n} | {fps(fa)} | {fps(fb)} | {fps(fc)} | {ratio(fc, fa)} | {ratio(fc, fb)}{more} "
              f"| {tracks} | {short} | {share:.1%} |")
    n = totals["frames"]
    fa, fc = n / totals["a"], n / totals["c"]
    fb = n / totals["b"] if totals["b"] else None
    fd = n / totals["d"] if totals["d"] else None
    more = f" | {fps(fd)} | {ratio(fd, fa)} | {ratio(fd, fb)}" if extra else ""
    print(f"| **all** | | {n} | {fps(fa)} | {fps(fb)} | {fps(fc)} | {ratio(fc, fa)} | {ratio(fc, fb)}{more} | | | |")

    for title, table in (("faceskin", stages), ("(d) unchecked", floor)):
        if not table:
            continue
        keys = list(table[0][1])
        print(f"\n{title}, milliseconds per frame by stage (stages overlap on two threads: analysis | render+encode)\n")
        print("| clip | " + " | ".join(keys) + " | wall |")
        print("|---|" + "---:|" * (len(keys) + 1))
        for name, ms, wall in table:
            print(f"| {name} | " + " | ".join(f"{ms[k]:.1f}" for k in keys) + f" | {wall:.1f} |")
    print(f"\nload average after: {load()}")


if __name__ == "__main__":
    main()
