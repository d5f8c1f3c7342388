"""Build faceskin's built-in skins from ../shared/data/synthetic (faces of non-existent people, MIT).

Run from the repository root:  python tools/build_skins.py [--count 24]
Writes src/faceskin/skins/*.skin and src/faceskin/skins/SOURCES.md. Donors are
gated for quality (frontal, neutral expression, eyes open, little texture that
had to be synthesised) and then picked to spread over skin tones.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from PIL import Image

os.environ.setdefault("GLOG_minloglevel", "2")

from faceskin.detect import FaceDetector  # noqa: E402
from faceskin.donor import build_donor  # noqa: E402
from faceskin.landmarks import Landmarker, head_angles  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACESKIN_SHARED_DATA", ROOT.parent / "shared" / "data"))


def candidates(paths, detector, landmarker):
    for p in paths:
        img = np.array(Image.open(p).convert("RGB"))
        faces = detector.detect(img)
        if len(faces) != 1:
            continue
        f = faces[0]
        if f.size < 150 or not landmarker.fit(img, f):
            continue
        yaw, pitch, roll = head_angles(f)
        b = f.blendshapes or {}
        expr = max(b.get("jawOpen", 0), b.get("mouthSmileLeft", 0), b.get("mouthSmileRight", 0))
        blink = max(b.get("eyeBlinkLeft", 0), b.get("eyeBlinkRight", 0))
        if abs(yaw) > 12 or abs(pitch) > 15 or expr > 0.45 or blink > 0.5:
            continue
        d = build_donor(img, f, skin_id=f"s{p.stem}", source=f"synthetic/{p.name}")
        if d.fill_fraction > 0.12:
            continue
        yield d, expr


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=24)
    ap.add_argument("--out", type=Path, default=ROOT / "src" / "faceskin" / "skins")
    args = ap.parse_args()
    src = DATA / "synthetic"
    if not src.is_dir():
        raise SystemExit(f"error: {src} not found (needs ../shared/data)")
    det, lm = FaceDetector(rotations=(0,)), Landmarker()
    pool = list(candidates(sorted(src.glob("*.jpg")), det, lm))
    print(f"{len(pool)} donors pass the quality gate")
    # spread over tone: sort by lightness, take evenly spaced, prefer neutral within each slot
    pool.sort(key=lambda t: t[0].tone[0])
    chosen = []
    for chunk in np.array_split(np.arange(len(pool)), min(args.count, len(pool))):
        best = min(chunk, key=lambda i: pool[i][1] + pool[i][0].fill_fraction)
        chosen.append(pool[best][0])
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("*.skin"):
        old.unlink()
    lines = ["# Built-in skins", "", "Built by `tools/build_skins.py` from ../shared/data/synthetic (SFHQ / SFHQ-T2I,",
             "MIT, (c) 2022/2024 David Beniaguev: faces of people who do not exist). See NOTICE.", "",
             "| skin id | source file | tone L a b | synthesised texels |", "|---|---|---|---|"]
    for d in chosen:
        d.save(args.out / f"{d.skin_id}.skin")
        lines.append(f"| {d.skin_id} | {d.source} | {d.tone[0]:.0f} {d.tone[1]:.0f} {d.tone[2]:.0f} | {d.fill_fraction:.1%} |")
    (args.out / "SOURCES.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {len(chosen)} skins to {args.out}")


if __name__ == "__main__":
    main()
