"""How well each panel recognizer identifies the *unprotected* shared identities, at its threshold.

The privacy benchmark asks "does photo 1, once protected, still match any
other photo of that person?". That question only means something if, on the
original photos, the answer is almost always yes (re-ID >= 95 %) and a chance
match with a stranger is rare. This script measures both, with the threshold
each recognizer documents, so the privacy numbers can be read against them.

Columns (all on unprotected photos, the largest confident face per photo):

- genuine match: same person, different photos, every pair.
- false match: different people, every pair.
- re-ID: per person, photo 1 against their other photos; a person counts
  when ANY of those matches (the privacy benchmark's definition).
- chance re-ID: the same rule, photo 1 against all photos of another
  person, averaged over all ordered pairs of people: the floor a perfect
  protection reaches through chance matches alone.
- rank-1: photo 1 against a gallery of every other photo of every person;
  correct when the most similar one is the same person.
- thr@FMR 0.1 %: the threshold that would give a 0.1 % false match rate
  here, to compare with the documented one; a second table repeats the
  rates at that threshold.

Usage: python bench/recognizer_thresholds.py [--data DIR] [--recognizers dlib,sface]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from faceskin.detect import FaceDetector
from faceskin.faces import Face
from faceskin.recognizers import RecognizerUnavailable, load_panel


def default_data_dir() -> Path:
    env = os.environ.get("FACESKIN_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "../shared/data"


def load_photos(identities: Path) -> list[tuple[str, str, np.ndarray]]:
    """(person, photo name, RGB image), people sorted, photo 1 first in each person's list."""
    photos = []
    for person in sorted(p for p in identities.iterdir() if p.is_dir()):
        files = sorted(person.glob("*.jpg"), key=lambda f: (int(f.stem) if f.stem.isdigit() else 1 << 30, f.stem))
        for f in files:
            with Image.open(f) as im:
                photos.append((person.name, f.name, np.asarray(ImageOps.exif_transpose(im).convert("RGB"))))
    return photos


def subject_face(found: list[Face]) -> Face:
    """The photo's subject: the largest confident face.

    Plain "largest" picks RetinaFace's low-score (0.6-0.73) false positives on
    the neck and chest, which are bigger than the real face, in 4 of the
    London portraits; confident detections here score >= 0.99.
    """
    confident = [f for f in found if f.score >= SUBJECT_MIN_SCORE] or found
    return max(confident, key=lambda f: f.width * f.height)


SUBJECT_MIN_SCORE = 0.9


def score_matrix(rec, embeddings: np.ndarray) -> np.ndarray:
    """Pairwise scores oriented so that larger always means more alike (distances are negated)."""
    if rec.higher_is_similar:
        unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
        return unit @ unit.T
    return -np.linalg.norm(embeddings[:, None] - embeddings[None], axis=2)


def measure(rec, embeddings: np.ndarray, people: np.ndarray, is_first: np.ndarray,
            threshold: float | None = None) -> dict:
    s = score_matrix(rec, embeddings)
    threshold = rec.threshold if threshold is None else threshold
    thr = threshold if rec.higher_is_similar else -threshold
    match = s >= thr
    n = len(people)
    same = people[:, None] == people[None, :]
    upper = np.triu(np.ones((n, n), bool), 1)
    genuine, impostor = same & upper, ~same & upper

    names = list(dict.fromkeys(people))
    first = {p: int(np.flatnonzero(is_first & (people == p))[0]) for p in names if (is_first & (people == p)).any()}
    probes = [p for p in names if p in first and (people == p).sum() > 1]
    reid = {p: bool(match[first[p], (people == p) & (np.arange(n) != first[p])].any()) for p in probes}
    chance = [match[first[p], people == q].any() for p in probes for q in names if q != p]
    rank1 = []
    for p in probes:
        row = s[first[p]].copy()
        row[first[p]] = -np.inf
        rank1.append(people[int(np.argmax(row))] == p)
    imp_scores = s[impostor]
    thr_fmr = np.quantile(imp_scores, 0.999)
    return {
        "genuine": match[genuine].mean(),
        "n_genuine": int(genuine.sum()),
        "false": match[impostor].mean(),
        "n_impostor": int(impostor.sum()),
        "reid": np.mean(list(reid.values())),
        "reid_by_person": reid,
        "chance": float(np.mean(chance)),
        "rank1": float(np.mean(rank1)),
        "n_probes": len(probes),
        "thr_fmr": float(thr_fmr if rec.higher_is_similar else -thr_fmr),
        "genuine_median": float(np.median(s[genuine]) if rec.higher_is_similar else -np.median(s[genuine])),
    }


def group_of(person: str) -> str:
    return person.split("_")[0] if person.startswith(("london", "meds")) else person


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=default_data_dir(), help="shared data folder (holds identities/)")
    ap.add_argument("--recognizers", default=None, help="comma-separated names (default: every installed one)")
    args = ap.parse_args()

    identities = args.data / "identities"
    if not identities.is_dir():
        print(f"error: {identities} not found (set --data or FACESKIN_SHARED_DATA)", file=sys.stderr)
        return 2
    try:
        panel = load_panel(args.recognizers.split(",") if args.recognizers else None)
    except (RecognizerUnavailable, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    photos = load_photos(identities)
    detector = FaceDetector(rotations=(0,))
    kept, faces, missed = [], [], []
    for person, name, image in photos:
        found = detector.detect(image)
        if not found:
            missed.append(f"{person}/{name}")
            continue
        faces.append(subject_face(found))
        kept.append((person, name, image))
    t_detect = time.perf_counter() - t0
    people = np.array([p for p, _, _ in kept])
    is_first = np.array([n == "1.jpg" for _, n, _ in kept])

    print(f"{len(photos)} photos of {len(set(p for p, _, _ in photos))} people; "
          f"no face found in {len(missed)}{': ' + ', '.join(missed) if missed else ''}; detection {t_detect:.0f} s\n")
    print("| recognizer | threshold | genuine match | false match | re-ID (any) | chance re-ID | rank-1 "
          "| thr@FMR 0.1 % | genuine median | embed ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    results, at_fmr = {}, {}
    for rec in panel:
        t = time.perf_counter()
        emb = np.stack([rec.embed(image, face) for (_, _, image), face in zip(kept, faces)]).astype(np.float64)
        ms = (time.perf_counter() - t) / len(kept) * 1000
        r = results[rec.name] = measure(rec, emb, people, is_first)
        at_fmr[rec.name] = measure(rec, emb, people, is_first, threshold=round(r["thr_fmr"], 3))
        rule = f"{'cos >=' if rec.higher_is_similar else 'dist <='} {rec.threshold}"
        print(f"| {rec.name} | {rule} | {r['genuine']:.1%} ({r['n_genuine']}) | {r['false']:.2%} ({r['n_impostor']}) "
              f"| {r['reid']:.1%} ({r['n_probes']}) | {r['chance']:.2%} | {r['rank1']:.1%} | {r['thr_fmr']:.3f} "
              f"| {r['genuine_median']:.3f} | {ms:.0f} |")

    print("\nthe same at the threshold that gives 0.1 % false matches on these pairs:\n")
    print("| recognizer | threshold | genuine match | false match | re-ID (any) | chance re-ID |")
    print("|---|---|---|---|---|---|")
    for rec in panel:
        r = at_fmr[rec.name]
        rule = f"{'cos >=' if rec.higher_is_similar else 'dist <='} {results[rec.name]['thr_fmr']:.3f}"
        print(f"| {rec.name} | {rule} | {r['genuine']:.1%} | {r['false']:.2%} | {r['reid']:.1%} | {r['chance']:.2%} |")

    groups = sorted({group_of(p) for p in people})
    print("\nre-ID (any) by group:\n")
    print("| recognizer | " + " | ".join(groups) + " |")
    print("|---|" + "---|" * len(groups))
    for name, r in results.items():
        cells = []
        for g in groups:
            vals = [v for p, v in r["reid_by_person"].items() if group_of(p) == g]
            cells.append(f"{np.mean(vals):.0%} ({len(vals)})" if vals else "-")
        print(f"| {name} | " + " | ".join(cells) + " |")
    misses = sorted({p for r in results.values() for p, v in r["reid_by_person"].items() if not v})
    if misses:
        print("\nnot re-identified by at least one recognizer: " + ", ".join(
            f"{p} ({','.join(n for n, r in results.items() if not r['reid_by_person'][p])})" for p in misses))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
