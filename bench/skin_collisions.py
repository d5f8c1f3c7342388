"""Do the default skins collide with each other, with the model's training faces, or with real people?

    python bench/skin_collisions.py [--limit N] [--cache DIR] [--recognizers dlib,facenet,sface]

Needs the ``eval`` extra (the recognizer panel) and ../shared/data. Prints
markdown tables. ``--cache`` keeps the embeddings of the reference photos
(about 0.9 s a photo to detect and embed) between runs.

How a skin is shown to the recognizers, and why:

- its *portrait*: ``skinmodel.portrait``, the texture on the skin's own
  frontal shape, with exact keypoints. The calibration row shows this keeps
  identity: portraits of training textures match their own source photo.
- *worn*: the skin put on a person by ``skin.render_skin`` with default
  settings (the host is scikit-image's astronaut, public domain). That is
  how skins are used.

Checks:

- training faces: every skin's portrait against every photo in
  ``synthetic/`` (the model's training source, so this asks whether the
  model reproduces its data).
- real people: every portrait against every photo in ``identities/``.
- pairs of skins: skin A's portrait against skin B worn, and B's portrait
  against A worn; the pair collides if either matches. The "self" column
  (A's portrait against A worn) shows the comparison can see a skin's
  identity through the wearer, so a low pair rate means the skins really
  differ. Two portraits compared directly (both hairless faces on grey) are
  reported too, for information: in that setting even different real faces
  match far more often than in photos (calibration row), so it is not the bar.

A match is the recognizer's own rule (``recognizers``: dlib distance <= 0.6,
FaceNet cosine >= 0.6, SFace >= 0.363, ArcFace >= 0.32). "closest" is the
highest similarity (lowest distance for dlib) seen.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

os.environ.setdefault("GLOG_minloglevel", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from faceskin.faces import Face  # noqa: E402

DATA = Path(os.environ.get("FACESKIN_SHARED_DATA", ROOT.parent / "shared" / "data"))
REQUIRED = ("dlib", "facenet", "sface")  # the bar; ArcFace (non-commercial weights) is reported when installed


class CollisionProtocol:
    """The recognizer panel, the host that wears skins, and the comparisons of this benchmark."""

    def __init__(self, names: list[str] | None = None):
        from skimage import data

        from faceskin.detect import FaceDetector
        from faceskin.landmarks import Landmarker
        from faceskin.recognizers import load_panel

        self.panel = load_panel(names)
        self.detector = FaceDetector(rotations=(0,))
        self.landmarker = Landmarker()
        self.host = np.ascontiguousarray(data.astronaut())
        self.host_face = self._largest(self.host)
        if self.host_face is None or not self.landmarker.fit(self.host, self.host_face):
            raise RuntimeError("the host photo has no usable face")

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.panel]

    def _largest(self, img: np.ndarray) -> Face | None:
        faces = self.detector.detect(img)
        return max(faces, key=lambda f: f.size) if faces else None

    def embed(self, img: np.ndarray, face: Face) -> dict[str, np.ndarray]:
        return {r.name: np.asarray(r.embed(img, face), np.float32) for r in self.panel}

    def portrait_image(self, texture: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, Face]:
        """The portrait a skin is shown as, and its face (exact keypoints, no detector)."""
        from faceskin.skinmodel import portrait

        img, kp = portrait(texture, landmarks, 256)
        x0, y0 = kp.min(0) - 0.6 * np.ptp(kp[:, 0])
        x1, y1 = kp.max(0) + 0.6 * np.ptp(kp[:, 0])
        return img, Face(box=np.array([x0, y0, x1, y1]), score=1.0, keypoints=kp)

    def portrait(self, texture: np.ndarray, landmarks: np.ndarray) -> dict[str, np.ndarray]:
        return self.embed(*self.portrait_image(texture, landmarks))

    def worn(self, donor) -> dict[str, np.ndarray] | None:
        from faceskin.skin import render_skin

        out = self.host.copy()
        render_skin(out, self.host_face, donor)
        face = self._largest(out)
        return None if face is None else self.embed(out, face)

    def photos(self, paths: list[Path], cache: Path | None = None) -> tuple[dict[str, np.ndarray], list[Path]]:
        """Embeddings of the largest face in each photo (photos without a face are left out)."""
        key = hashlib.sha256(("|".join(self.names) + "|" + "|".join(
            f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in paths)).encode()).hexdigest()[:16]
        if cache is not None and (cache / f"photos-{key}.npz").is_file():
            z = np.load(cache / f"photos-{key}.npz", allow_pickle=False)
            return {n: z[n] for n in self.names}, [Path(p) for p in z["paths"]]
        out: dict[str, list] = {n: [] for n in self.names}
        kept = []
        for p in paths:
            img = np.array(Image.open(p).convert("RGB"))
            face = self._largest(img)
            if face is None:
                continue
            for n, v in self.embed(img, face).items():
                out[n].append(v)
            kept.append(p)
        arrays = {n: np.array(v) for n, v in out.items()}
        if cache is not None:
            cache.mkdir(parents=True, exist_ok=True)
            np.savez(cache / f"photos-{key}.npz", paths=np.array([str(p) for p in kept]), **arrays)
        return arrays, kept

    def recognizer(self, name: str):
        return next(r for r in self.panel if r.name == name)


def similarities(rec, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Matrix of the recognizer's similarity (cosine, or dlib's distance) between rows of ``a`` and ``b``."""
    a = np.atleast_2d(np.asarray(a, np.float64))
    b = np.atleast_2d(np.asarray(b, np.float64))
    if rec.higher_is_similar:
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        return a @ b.T
    return np.linalg.norm(a[:, None] - b[None], axis=-1)


def matches(rec, sims: np.ndarray) -> np.ndarray:
    return sims >= rec.threshold if rec.higher_is_similar else sims <= rec.threshold


def closest(rec, sims: np.ndarray) -> float:
    if sims.size == 0:
        return float("nan")
    return float(sims.max() if rec.higher_is_similar else sims.min())


def reference_photos() -> tuple[list[Path], list[Path]]:
    synthetic = sorted((DATA / "synthetic").glob("*.jpg"))
    identities = sorted((DATA / "identities").glob("*/*.jpg"))
    return synthetic, identities


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="check only the first N default skins")
    ap.add_argument("--cache", type=Path, default=None, help="folder for reference photo embeddings")
    ap.add_argument("--recognizers", default=None, help="comma-separated names (default: every installed one)")
    args = ap.parse_args()
    if not (DATA / "synthetic").is_dir() or not (DATA / "identities").is_dir():
        raise SystemExit(f"error: {DATA} has no synthetic/ and identities/ (needs ../shared/data)")

    from faceskin.library import default_skins
    from faceskin.skinmodel import default_model

    t0 = time.perf_counter()
    proto = CollisionProtocol(args.recognizers.split(",") if args.recognizers else None)
    skins = default_skins()[: args.limit]
    model = default_model()
    portraits, worn = [], []
    for s in skins:
        sample = model.sample(s.seed)
        portraits.append(proto.portrait(sample.texture, sample.landmarks))
        w = proto.worn(sample.donor(s.skin_id))
        if w is None:
            raise SystemExit(f"error: the host wearing {s.skin_id} is no longer detected")
        worn.append(w)
    synthetic, identities = reference_photos()
    syn, syn_paths = proto.photos(synthetic, args.cache)
    ids, id_paths = proto.photos(identities, args.cache)
    # calibration: training textures' portraits vs their own source photo and vs the other photos
    calib = calibration(proto, model, syn, syn_paths)
    n = len(skins)
    off = ~np.eye(n, dtype=bool)
    print(f"{n} default skins (model {model.version}), recognizers: {', '.join(proto.names)}; "
          f"{len(syn_paths)} training-source photos, {len(id_paths)} photos of {len({p.parent for p in id_paths})} "
          f"real people; host: skimage astronaut\n")
    print("| recognizer | threshold | skin pairs matching (portrait vs worn, either way) | closest pair "
          "| skins matching a training face | closest | skins matching a real person | closest "
          "| self: portrait vs own skin worn | portrait vs portrait pairs (info) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    worst_any = np.zeros((n, n), bool)
    for rec in proto.panel:
        P = np.array([p[rec.name] for p in portraits])
        W = np.array([w[rec.name] for w in worn])
        pw = similarities(rec, P, W)
        pair_hit = matches(rec, pw) | matches(rec, pw).T
        worst_any |= pair_hit & off
        pair_sims = np.where(off, pw, np.nan)
        best_pair = closest(rec, pair_sims[~np.isnan(pair_sims)])
        s_syn = similarities(rec, P, syn[rec.name])
        s_ids = similarities(rec, P, ids[rec.name])
        pp = similarities(rec, P, P)[np.triu_indices(n, 1)]
        self_rate = float(np.mean(np.diag(matches(rec, pw))))
        flag = "" if rec.name in REQUIRED else " (extra)"
        print(f"| {rec.name}{flag} | {rec.threshold} | {int(np.triu(pair_hit, 1).sum())} / {n * (n - 1) // 2} "
              f"| {best_pair:.3f} | {int(matches(rec, s_syn).any(1).sum())} / {n} | {closest(rec, s_syn):.3f} "
              f"| {int(matches(rec, s_ids).any(1).sum())} / {n} | {closest(rec, s_ids):.3f} | {self_rate:.0%} "
              f"| {int(matches(rec, pp).sum())} / {pp.size} |")
    print(f"\nAny recognizer: {int(np.triu(worst_any, 1).sum())} colliding skin pairs; "
          f"skin ids unique: {len({s.skin_id for s in skins}) == n}.\n")
    print("Calibration (training-texture portraits, the same rendering as the skins'):\n")
    print("| recognizer | portrait matches its own source photo | portrait matches another training photo (pairs) "
          "| portrait vs portrait, different faces (pairs) |")
    print("|---|---|---|---|")
    for name, (own, other, pp) in calib.items():
        print(f"| {name} | {own:.0%} | {other:.2%} | {pp:.2%} |")
    print()
    keyed_continuity(proto, skins, identities, args.cache)
    print(f"\n[{time.perf_counter() - t0:.0f} s]")


def keyed_continuity(proto: CollisionProtocol, skins, paths: list[Path], cache: Path | None) -> None:
    """With --key: how often two photos of one person get the same skin, and two people do."""
    from faceskin.library import SkinLibrary, measure_tone, person_descriptor

    key = hashlib.sha256(("keyed|" + "|".join(str(p) for p in paths)).encode()).hexdigest()[:16]
    file = cache / f"descriptors-{key}.npz" if cache is not None else None
    if file is not None and file.is_file():
        z = np.load(file, allow_pickle=False)
        people, descs, tones = list(z["people"]), z["descs"], z["tones"]
    else:
        people, descs, tones = [], [], []
        for p in paths:
            img = np.array(Image.open(p).convert("RGB"))
            face = proto._largest(img)
            if face is None or not proto.landmarker.fit(img, face):
                continue
            people.append(p.parent.name)
            descs.append(person_descriptor(img, face))
            tones.append(measure_tone(img, face) or (np.nan,) * 3)
        descs, tones = np.array(descs), np.array(tones)
        if file is not None:
            np.savez(file, people=np.array(people), descs=descs, tones=tones)
    people = np.array(people)
    same = people[:, None] == people[None]
    pairs = np.triu(np.ones_like(same), 1)
    print("Keyed choice (--key): the same skin for two photos of one person, and for two different people "
          f"({len(people)} photos of {len(set(people))} people; SFace descriptor, keyed directions)\n")
    print("| tone band | same person, same skin | different people, same skin | chance (1 / skins considered) |")
    print("|---|---|---|---|")
    for band in (12, 30, len(skins)):
        lib = SkinLibrary(skins, key=b"benchmark key", tone_band=band)
        chosen = np.array([lib.pick(tuple(t), frozenset(), d).skin_id for t, d in zip(tones, descs)])
        eq = chosen[:, None] == chosen[None]
        print(f"| {band if band < len(skins) else 'all'} | {eq[same & pairs].mean():.0%} "
              f"| {eq[~same & pairs].mean():.1%} | {1 / band:.1%} |")


def calibration(proto: CollisionProtocol, model, syn: dict, syn_paths: list[Path], count: int = 40) -> dict:
    """How the portrait rendering behaves on real (training) faces: rates per recognizer."""
    from faceskin.skinmodel import TrainingFace  # noqa: F401 - documents what the cached faces are

    sys.path.insert(0, str(ROOT / "tools"))
    from train_skin_model import rebuild_training_faces

    faces = rebuild_training_faces(model, count)
    by_name = {p.name: i for i, p in enumerate(syn_paths)}
    faces = [f for f in faces if f.name in by_name]
    out = {}
    embs = [proto.portrait(f.texture, f.landmarks) for f in faces]
    for rec in proto.panel:
        P = np.array([e[rec.name] for e in embs])
        s = similarities(rec, P, syn[rec.name])
        own = np.array([by_name[f.name] for f in faces])
        hit = matches(rec, s)
        own_rate = float(np.mean(hit[np.arange(len(faces)), own]))
        mask = np.ones_like(hit)
        mask[np.arange(len(faces)), own] = False
        pp = matches(rec, similarities(rec, P, P))[np.triu_indices(len(faces), 1)]
        out[rec.name] = (own_rate, float(hit[mask].mean()), float(pp.mean()))
    return out


if __name__ == "__main__":
    main()
