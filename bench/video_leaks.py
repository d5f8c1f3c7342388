"""Independent leak check for protected videos, and lip motion kept on the GRID clips.

Leaks: for every clip and every frame, CenterFace (a detector faceskin's video
pipeline does *not* use; it protects with RetinaFace) finds the faces in the
ORIGINAL frame. Each face is embedded by every recognizer of the panel
(``faceskin.recognizers.load_panel``) in the original frame and in the output
frame at the same place (same five keypoints, so the same aligned crop). A
face leaks when any recognizer still says "same person"; a frame leaks when any
of its faces does. The goal is 0 leaked frames on every clip.

Lip motion (GRID talking heads): the mouth-open blendshape (``jawOpen``) of the
MediaPipe landmarker on the input frame against the output frame, on the frames
the output is skinned (a pixelated frame has no mouth to measure); Pearson r
per clip, goal >= 0.9.

    python bench/video_leaks.py [--clips 'grid_*'] [--outputs DIR] [--every 1] [--crops DIR]

Each clip is protected with ``protect_video``'s defaults into ``--outputs``
(default /tmp/faceskin-video-leaks), then checked; an output already there with
its ``<clip>.report.json`` (``bench/video_throughput.py --keep DIR`` writes
both) is reused. ``--crops DIR`` saves
original|output crops of every leaked face for review (a CenterFace false
positive on the background is unchanged by protection and shows up as a
"leak"; look at the crops). Needs the ``eval`` extra and ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from faceskin.detect import CenterFaceDetector  # noqa: E402
from faceskin.faces import Face  # noqa: E402
from faceskin.landmarks import Landmarker  # noqa: E402
from faceskin.recognizers import load_panel  # noqa: E402
from faceskin.video import VideoProtector  # noqa: E402
from faceskin.videofile import open_video  # noqa: E402

DATA = Path(os.environ.get("FACESKIN_SHARED_DATA", ROOT.parent / "shared" / "data"))


def pearson(a: list[float], b: list[float]) -> float:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def save_crop(folder: Path, name: str, a: np.ndarray, b: np.ndarray, face: Face) -> None:
    from PIL import Image

    x0, y0, x1, y1 = np.round(face.box).astype(int)
    pad = int(0.3 * max(x1 - x0, y1 - y0))
    h, w = a.shape[:2]
    sl = (slice(max(0, y0 - pad), min(h, y1 + pad)), slice(max(0, x0 - pad), min(w, x1 + pad)))
    Image.fromarray(np.hstack([a[sl], b[sl]])).save(folder / f"{name}.png")


def check_clip(src: Path, out: Path, methods: list[str], detector, panel, landmarker, every: int,
               crops: Path | None) -> dict:
    lip = src.stem.startswith("grid_")
    frames = faces = leaked_frames = 0
    leaked_faces: Counter = Counter()  # recognizer -> faces it still matched
    leaked_at: list[int] = []
    jaw_in: list[float] = []
    jaw_out: list[float] = []
    # temporal stability on consecutive skinned frames: mean abs pixel change inside the face, in vs out
    change_in: list[float] = []
    change_out: list[float] = []
    previous = None
    small = 0
    drift = 0.0  # largest timestamp difference input/output (seconds)
    originals, outputs = iter(open_video(src)), iter(open_video(out))
    for fa in originals:
        fb = next(outputs)
        drift = max(drift, abs(fa.time - fb.time))
        assert drift < 0.5 / 25, (src, fa.index, fa.time, fb.time)  # same frame, whatever the muxer rounded
        if fa.index % every:
            continue
        frames += 1
        leaked = False
        found = detector.detect(fa.rgb)
        for face in found:
            faces += 1
            small += face.size < 24
            hit = []
            for r in panel:
                if r.is_match(r.embed(fa.rgb, face), r.embed(fb.rgb, face)):
                    hit.append(r.name)
            for name in hit:
                leaked_faces[name] += 1
            if hit:
                leaked = True
                if crops is not None:
                    save_crop(crops, f"{src.stem}_f{fa.index:04d}_{'-'.join(hit)}", fa.rgb, fb.rgb, face)
        if leaked:
            leaked_frames += 1
            leaked_at.append(fa.index)
        skinned = methods[fa.index] == "skin"
        if lip and found and skinned and previous is not None and previous[0] == fa.index - every:
            x0, y0, x1, y1 = np.round(max(found, key=lambda f: f.size).box).astype(int)
            inner = (slice(y0 + (y1 - y0) // 5, y1 - (y1 - y0) // 5), slice(x0 + (x1 - x0) // 5, x1 - (x1 - x0) // 5))
            change_in.append(float(np.abs(fa.rgb[inner].astype(int) - previous[1][inner].astype(int)).mean()))
            change_out.append(float(np.abs(fb.rgb[inner].astype(int) - previous[2][inner].astype(int)).mean()))
        previous = (fa.index, fa.rgb, fb.rgb) if skinned else None
        if lip and found and skinned:
            face = max(found, key=lambda f: f.size)
            a = Face(box=face.box.copy(), score=face.score, keypoints=face.keypoints.copy())
            b = Face(box=face.box.copy(), score=face.score, keypoints=face.keypoints.copy())
            if landmarker.fit(fa.rgb, a) and landmarker.fit(fb.rgb, b) and a.blendshapes and b.blendshapes:
                jaw_in.append(a.blendshapes["jawOpen"])
                jaw_out.append(b.blendshapes["jawOpen"])
    if next(outputs, None) is not None:
        raise AssertionError(f"{out} has more frames than {src}")
    return {
        "frames": frames, "faces": faces, "small": small, "leaked_frames": leaked_frames,
        "leaked_faces": leaked_faces, "leaked_at": leaked_at,
        "drift_ms": 1000 * drift,
        "jaw_r": pearson(jaw_in, jaw_out) if lip else None, "jaw_n": len(jaw_in),
        "change_in": float(np.mean(change_in)) if change_in else float("nan"),
        "change_out": float(np.mean(change_out)) if change_out else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", default="*", help="glob on the clip names (without .mp4)")
    ap.add_argument("--outputs", type=Path, default=Path("/tmp/faceskin-video-leaks"), help="where outputs go")
    ap.add_argument("--every", type=int, default=1, help="check every Nth frame (1 = all)")
    ap.add_argument("--crops", type=Path, help="save original|output crops of leaked faces here")
    ap.add_argument("--reuse", action="store_true",
                    help="check the outputs already in --outputs instead of protecting again (stale after a code change)")
    args = ap.parse_args()

    paths = sorted((DATA / "videos").glob(f"{args.clips}.mp4"))
    if not paths:
        sys.exit(f"no clips in {DATA / 'videos'} (the shared data is absent on a fresh clone)")
    panel = load_panel()
    detector = CenterFaceDetector()
    landmarker = Landmarker()
    outputs = args.outputs
    outputs.mkdir(parents=True, exist_ok=True)
    if args.crops:
        args.crops.mkdir(parents=True, exist_ok=True)
    skins = VideoProtector()

    print(f"independent detector: CenterFace (threshold {detector.threshold}); protection uses RetinaFace")
    print(f"recognizer panel: {', '.join(f'{r.name} ({r.threshold})' for r in panel)}; every {args.every} frame(s)\n")
    rows = []
    for src in paths:
        out, saved = outputs / f"{src.stem}.skinned.mp4", outputs / f"{src.stem}.report.json"
        if args.reuse and out.exists() and saved.exists():
            report = json.loads(saved.read_text())
        else:
            r = skins.run(src, out, audio=False)
            report = {**r.to_dict(), "frame_methods": r.frame_methods}
            saved.write_text(json.dumps(report))
        t0 = time.perf_counter()
        res = check_clip(src, out, report["frame_methods"], detector, panel, landmarker, args.every, args.crops)
        res["tracks"], res["fallback_share"] = len(report["tracks"]), report["fallback_share"]
        rows.append((src.stem, res))
        print(f"  {src.stem}: {res['leaked_frames']} leaked of {res['frames']} frames "
              f"({time.perf_counter() - t0:.0f}s) at {res['leaked_at'][:20]}", file=sys.stderr)

    names = [r.name for r in panel]
    print("| clip | tracks | fallback share | timestamp drift ms | frames checked | faces (CenterFace) "
          "| of them < 24 px | leaked frames | " + " | ".join(f"faces matched by {n}" for n in names) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(names))
    for name, r in rows:
        matched = " | ".join(str(r["leaked_faces"].get(n, 0)) for n in names)
        print(f"| {name} | {r['tracks']} | {r['fallback_share']:.1%} | {r['drift_ms']:.2f} | {r['frames']} "
              f"| {r['faces']} | {r['small']} | {r['leaked_frames']} | {matched} |")
    print(f"| **all** | | | | {sum(r['frames'] for _, r in rows)} | {sum(r['faces'] for _, r in rows)} | "
          f"{sum(r['small'] for _, r in rows)} | {sum(r['leaked_frames'] for _, r in rows)} | " + " | ".join(
              str(sum(r["leaked_faces"].get(n, 0) for _, r in rows)) for n in names) + " |")

    grid = [(n, r) for n, r in rows if r["jaw_r"] is not None]
    if grid:
        print("\nGRID lip motion: jawOpen blendshape, output vs input, on the skinned frames (goal r >= 0.9)\n")
        print("Temporal stability: mean absolute change between consecutive skinned frames inside the face")
        print("(grey levels); output close to input = no added flicker.\n")
        print("| clip | frames measured | Pearson r | frame-to-frame change, input | output |")
        print("|---|---:|---:|---:|---:|")
        for name, r in grid:
            print(f"| {name} | {r['jaw_n']} | {r['jaw_r']:.3f} | {r['change_in']:.2f} | {r['change_out']:.2f} |")
        rs = [r["jaw_r"] for _, r in grid if np.isfinite(r["jaw_r"])]
        if rs:
            print(f"| **mean / min** | | {np.mean(rs):.3f} / {np.min(rs):.3f} | | |")


if __name__ == "__main__":
    main()
