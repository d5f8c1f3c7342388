"""What `faceskin protect --audit` costs next to protecting: protect, leak scan and report, back to back.

The issue asks that the audit report add at most 20 % to protect time. This
prints, per input, the three parts measured in one process one after the
other (so they see the same load on a shared machine):

* protect: the video pipeline (``VideoProtector.run``) or the photo pipeline
  (``Protector.protect`` + write), models already loaded;
* scan: ``faceskin.audit.audit`` on (input, output), every frame, fidelity
  included, models already loaded: what ``--audit`` adds before it can
  publish;
* report: ``write_html`` (the two matplotlib plots and the thumbnails) plus
  ``write_json``.

``--profile`` adds the scan's top functions by own time (cProfile) and the
scan's own per-stage timings. ``FACESKIN_SRC=DIR`` times another copy of the
package (e.g. the code before a change) with the same script.

    python bench/audit_overhead.py [--clips grid_talking_head_bbaf2n,group_indoor_5people_3s]
                                   [--photos 4] [--work DIR] [--profile]

Needs the ``eval`` extra and ../shared/data.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("FACESKIN_SRC") or str(ROOT / "src"))

from faceskin.audit import Auditor, audit, write_json  # noqa: E402
from faceskin.audit_report import write_html  # noqa: E402

DATA = Path(os.environ.get("FACESKIN_SHARED_DATA", ROOT.parent / "shared" / "data"))
DEFAULT_CLIPS = "grid_talking_head_bbaf2n,group_indoor_5people_3s"


def make_protector():
    """The product's default protector; the legacy donor set when the skin model's default set is not built."""
    from faceskin.library import SkinLibrary
    from faceskin.protect import Protector

    try:
        return Protector(seed=0), "default skins"
    except (FileNotFoundError, KeyError) as exc:
        print(f"(default skin set unavailable: {exc}; protecting with the built-in donor skins)", flush=True)
        return Protector(library=SkinLibrary.builtin(seed=0), seed=0), "built-in donor skins"


def timed(fn, profile: cProfile.Profile | None = None):
    t0 = time.perf_counter()
    if profile is not None:
        profile.enable()
    try:
        out = fn()
    finally:
        if profile is not None:
            profile.disable()
    return out, time.perf_counter() - t0


def row(name: str, units: str, result, protect_s: float, scan_s: float, report_s: float) -> str:
    return (f"| {name} | {units} | {len(result.faces)} | {protect_s:.1f} | {scan_s:.1f} | {scan_s / protect_s:.1f}x | "
            f"{report_s:.2f} | {100 * report_s / protect_s:.1f} % | {100 * (scan_s + report_s) / protect_s:.0f} % | "
            f"{len(result.leaked_items)} |")


def stages(result) -> str:
    t = result.timings
    keys = ["decode", "detect", "redetect", "embed", "controls", "landmarks", "psnr", "thumbnails"]
    keys += sorted(k for k in t if k.startswith("embed_"))
    return ", ".join(f"{k} {t[k]:.1f}" for k in keys if k in t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", default=DEFAULT_CLIPS)
    ap.add_argument("--photos", type=int, default=4, help="first photo of this many people of the identities")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="audit-overhead-"))
    work.mkdir(parents=True, exist_ok=True)
    import faceskin

    print(f"package: {Path(faceskin.__file__).parent}; cores: {os.cpu_count()}; "
          f"load average at start: {' '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)
    auditor = Auditor()
    protector, skins = make_protector()
    from faceskin.video import VideoProtector, for_video

    video = VideoProtector(for_video(make_protector()[0]), seed=0)  # for_video adapts in place: a second one
    lines, notes = [], []
    profiles: list[tuple[str, cProfile.Profile]] = []
    for name in [c for c in args.clips.split(",") if c]:
        src = DATA / "videos" / f"{name}.mp4"
        out = work / f"{name}.skinned.mp4"
        rep, protect_s = timed(lambda: video.run(src, out, audio=False))
        prof = cProfile.Profile() if args.profile else None
        result, scan_s = timed(lambda: audit(src, out, auditor=auditor), prof)
        _, report_s = timed(lambda: (write_html(result, work / f"{name}.audit.html"),
                                     write_json(result, work / f"{name}.audit.json")))
        lines.append(row(name, f"{result.items_checked} frames", result, protect_s, scan_s, report_s))
        notes.append(f"{name}: {stages(result)}")
        if prof is not None:
            profiles.append((name, prof))
        print(lines[-1], flush=True)

    if args.photos:
        from faceskin.imagefile import iter_image_files, read_image, write_image

        people = sorted(p for p in (DATA / "identities").iterdir() if p.is_dir())[: args.photos]
        pairs = []
        protect_s = scan_s = report_s = 0.0
        results = []
        for person in people:
            src = iter_image_files(person)[0]
            dst = work / f"{person.name}-{src.name}"

            def protect_one():
                loaded = read_image(src)
                rgb, _ = protector.protect(loaded.rgb, path=str(src))
                write_image(dst, rgb, loaded, keep_metadata=False, quality=92)

            _, s = timed(protect_one)
            protect_s += s
            prof = cProfile.Profile() if args.profile else None
            result, s = timed(lambda: audit(src, dst, auditor=auditor), prof)
            scan_s += s
            _, s = timed(lambda: (write_html(result, dst.with_suffix(".audit.html")),
                                  write_json(result, dst.with_suffix(".audit.json"))))
            report_s += s
            results.append(result)
            pairs.append(src)
        merged = results[0]
        for r in results[1:]:
            merged.faces += r.faces
        lines.append(row(f"{len(pairs)} identity photos", f"{len(pairs)} photos", merged, protect_s, scan_s,
                         report_s))
        print(lines[-1], flush=True)

    print(f"\nload average at end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}; protected with {skins}\n")
    print("| input | checked | faces | protect s | scan s | scan / protect | report s | report / protect | "
          "scan + report / protect | leaked frames or photos |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for line in lines:
        print(line)
    print("\nscan stages (s; embed_* are summed over the recognizers' threads):")
    for n in notes:
        print("  " + n)
    for name, prof in profiles:
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(12)
        print(f"\n#### {name}: scan profile, top functions by own time\n")
        print("\n".join(line for line in buf.getvalue().splitlines() if line.strip())[:4000])


if __name__ == "__main__":
    main()
