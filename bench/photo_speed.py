"""Time per face for a 640x480 photo, one core, by stage: where the photo pipeline spends it.

The photo issue's goal is a median of at most 150 ms per face on one core for
a 640x480 photo. ``bench/privacy_photos.py`` prints a time per face too, but
on the shared 1024 px photos and under whatever else runs; this script puts
each London face (photo 1) on a 640x480 canvas, pins every library to one
thread, loads the models first, and prints the median of each stage over the
photos, with ``protect`` (the whole ``Protector.protect`` call) beside the
sum of its parts:

* detect: the detector ensemble (RetinaFace at 0/90/180/270 deg + CenterFace);
* landmarks: MediaPipe FaceLandmarker on the face crop;
* render: one ``render_skin`` at the first settings;
* check: one identity self-check of that render (SFace, plus dlib when
  installed and SFace passes);
* protect: everything, including the skin choice and any escalation;
* with ``--unchecked``, also ``protect, unchecked``: the same photos with the
  identity self-check and the expression check switched off
  (``ProtectOptions(identity_check=False, expression_tolerance=None)``), so
  one render per face. Not a setting to protect anyone with (re-ID goes up:
  the first render alone does not hide most people); it measures what
  detection, landmarks and one skin cost: the floor under any verifier.

    OMP_NUM_THREADS=1 python bench/photo_speed.py [--limit 40] [--unchecked]

Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
os.environ.setdefault("GLOG_minloglevel", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("FACESKIN_SRC") or str(ROOT / "src"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from faceskin.detect import FaceDetector  # noqa: E402
from faceskin.identity_check import IdentityCheck  # noqa: E402
from faceskin.landmarks import Landmarker  # noqa: E402
from faceskin.library import SkinLibrary, measure_tone  # noqa: E402
from faceskin.protect import ProtectOptions, Protector  # noqa: E402
from faceskin.skin import SkinSettings, keypoints_from_landmarks, render_skin  # noqa: E402

DATA = Path(os.environ.get("FACESKIN_SHARED_DATA", ROOT.parent / "shared" / "data"))


def canvas_640x480(path: Path) -> np.ndarray:
    """The photo scaled to 480 px high and centred on a 640x480 canvas (cropped if wider)."""
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    h, w = img.shape[:2]
    img = cv2.resize(img, (round(w * 480 / h), 480), interpolation=cv2.INTER_AREA)
    out = np.full((480, 640, 3), 200, np.uint8)
    w = img.shape[1]
    if w >= 640:
        out[:] = img[:, (w - 640) // 2:(w - 640) // 2 + 640]
    else:
        out[:, (640 - w) // 2:(640 - w) // 2 + w] = img
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=40, help="London people to time (photo 1 each)")
    ap.add_argument("--unchecked", action="store_true",
                    help="also time protect without the self-checks (cost floor, not a safe setting)")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    people = sorted(p for p in (DATA / "identities").glob("london_*") if p.is_dir())[: args.limit]
    if not people:
        raise SystemExit(f"error: no London identities under {DATA}")
    detector, landmarker = FaceDetector(threads=1), Landmarker()
    check = IdentityCheck(threads=1)
    library = SkinLibrary.default(seed=0)
    protector = Protector(detector=detector, landmarker=landmarker, library=library, seed=0)
    protector.check = check
    unchecked = None
    if args.unchecked:
        unchecked = Protector(detector=detector, landmarker=landmarker, library=library, seed=0,
                              options=ProtectOptions(identity_check=False, expression_tolerance=None))
    names = ("detect", "landmarks", "render", "check", "protect") + (("unchecked",) if unchecked else ())
    times: dict[str, list[float]] = {k: [] for k in names}
    for skin in library.skins:  # draw every skin once (and its detail layer): as a long-running process has
        skin.donor().detail(SkinSettings().shading_sigma)
    protector.protect(canvas_640x480(people[0] / "1.jpg"))  # warm up
    faces_total = 0
    for person in people:
        img = canvas_640x480(person / "1.jpg")
        t = time.perf_counter()
        faces = detector.detect(img)
        times["detect"].append(time.perf_counter() - t)
        if not faces:
            continue
        face = max(faces, key=lambda f: f.size)
        t = time.perf_counter()
        ok = landmarker.fit(img, face)
        times["landmarks"].append(time.perf_counter() - t)
        if ok:
            skin = library.choose(measure_tone(img, face))
            out = img.copy()
            t = time.perf_counter()
            moved = render_skin(out, face, skin)
            times["render"].append(time.perf_counter() - t)
            t = time.perf_counter()
            ref = check.reference(img, keypoints_from_landmarks(face.landmarks))
            check.similarity_to(ref, out, keypoints_from_landmarks(moved))
            times["check"].append(time.perf_counter() - t)
        t = time.perf_counter()
        _, report = protector.protect(img)
        times["protect"].append((time.perf_counter() - t) / max(1, len(report.faces)))
        faces_total += len(report.faces)
        if unchecked is not None:
            t = time.perf_counter()
            _, report = unchecked.protect(img)
            times["unchecked"].append((time.perf_counter() - t) / max(1, len(report.faces)))
    print(f"{len(people)} photos at 640x480, {faces_total} faces, one thread; median ms (p90)\n")
    print("| stage | median ms | p90 ms |\n|---|---|---|")
    for k, v in times.items():
        if v:
            label = {"protect": "protect, per face", "unchecked": "protect, unchecked, per face"}.get(k, k)
            print(f"| {label} | {1000 * np.median(v):.0f} | {1000 * np.percentile(v, 90):.0f} |")


if __name__ == "__main__":
    main()
