"""Before/after contact sheet for the README, from the CC BY London set only.

    python tools/contact_sheet.py [--people 8] [--out docs/contact_sheet.jpg]

Never uses meds_* or Obama photos (see ../shared/data/README.md). Each pair is
original | protected, cropped to the head; smiling photos are included so
expression transfer is visible.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

os.environ.setdefault("GLOG_minloglevel", "2")

from faceskin.detect import FaceDetector  # noqa: E402
from faceskin.protect import Protector  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACESKIN_SHARED_DATA", ROOT.parent / "shared" / "data"))


def crop(img, face, size=(300, 360)):
    x0, y0, x1, y1 = face.box
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - 0.08 * h
    half_w, half_h = 0.95 * w, 0.95 * w * size[1] / size[0]
    X0, Y0 = int(max(0, cx - half_w)), int(max(0, cy - half_h))
    X1, Y1 = int(min(img.shape[1], cx + half_w)), int(min(img.shape[0], cy + half_h))
    return cv2.resize(img[Y0:Y1, X0:X1], size, interpolation=cv2.INTER_AREA)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=8)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "contact_sheet.jpg")
    ap.add_argument("--skins", choices=["default", "legacy"], default="default",
                    help="the model's default set, or the older cleaned donor skins")
    args = ap.parse_args()
    people = sorted(p for p in (DATA / "identities").glob("london_*") if p.is_dir())
    rng = np.random.default_rng(args.seed)
    chosen = [people[i] for i in sorted(rng.choice(len(people), args.people, replace=False))]
    library = None
    if args.skins == "legacy":
        from faceskin.library import SkinLibrary, builtin_skins

        library = SkinLibrary(builtin_skins(), seed=args.seed)
    protector = Protector(detector=FaceDetector(), library=library, seed=args.seed)
    tiles = []
    for i, person in enumerate(chosen):
        img = np.array(Image.open(person / ("2.jpg" if i % 2 else "1.jpg")).convert("RGB"))
        out, report = protector.protect(img)
        face = max(protector.detector.detect(img), key=lambda f: f.score * f.size)
        methods = ", ".join(f.method if f.method == "fallback" else f.skin_id for f in report.faces)
        pair = Image.fromarray(np.hstack([crop(img, face), crop(out, face)]))
        ImageDraw.Draw(pair).text((306, 4), methods, fill=(255, 255, 255))
        tiles.append(np.array(pair))
    rows = [np.hstack(tiles[i:i + 2]) for i in range(0, len(tiles), 2)]
    sheet = np.vstack(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(args.out, quality=88)
    print(f"wrote {args.out} ({len(tiles)} people: original | protected)")


if __name__ == "__main__":
    main()
