"""Train faceskin's statistical skin model on ../shared/data/synthetic (faces of non-existent people, MIT).

Run from the repository root (needs ../shared/data and, for the curation, the ``eval`` extra):

    python tools/train_skin_model.py [--cache /tmp/skin-donors.npz] [--count 100] [--jobs 2]
    python tools/train_skin_model.py --curate-only --count 100 --jobs 2 --embeddings /tmp/skin-emb
                                                        # re-curate the default set of the shipped model

Every synthetic face that passes a quality gate (one clear face, near frontal,
neutral expression, eyes open, little texture that had to be synthesised) is
unwrapped and cleaned by ``faceskin.donor.build_donor``; the cleaned UV
textures and landmarks are then fitted by ``faceskin.skinmodel.fit``.
``--cache`` keeps the unwrapped donors between runs (they take minutes to
make and the model seconds to fit). The images themselves never enter the
repository: only the fitted model does.

Then the default set is curated: seeds are drawn in order, and a sample is
kept only if no recognizer of the panel matches its portrait to any photo in
synthetic/ or identities/ (it must belong to nobody, including the people
faceskin is measured on), and if it does not collide with a skin already
kept (``bench/skin_collisions.py``'s pair rule). Skin-tone groups get equal
quotas so dark and light skins are equally well served. The curation's
rejection counts are stored with the set, because the shipped set passes by
construction and only the rejection rate says how often random samples fail.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

os.environ.setdefault("GLOG_minloglevel", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from faceskin.skinmodel import ATTRIBUTES, FittedModel, TrainingFace, fit, skin_attributes  # noqa: E402

DATA = Path(os.environ.get("FACESKIN_SHARED_DATA", ROOT.parent / "shared" / "data"))

# The quality gate. Expression and pose limits keep smiles, open mouths and
# turned heads (whose far side is synthesised) out of the model; a donor whose
# cleaning had to invent more than this share of the face is mostly guesswork.
MAX_YAW, MAX_PITCH = 15.0, 20.0
MAX_EXPRESSION, MAX_BLINK = 0.5, 0.5
MAX_FILL = 0.25
MIN_FACE_PX = 150
MIN_CHROMA = 7.0  # skin colour saturation (a, b): below this the image is monochrome or grey paint

# Faces the gate above lets through that are not usable skin, found by looking at the
# training contact sheet (``--sheet``). Names are files of ../shared/data/synthetic.
EXCLUDED = {
    "104.jpg": "cracked-paint texture",
    "188.jpg": "metallic blue paint, not skin",
    "196.jpg": "eyeglasses",
    "208.jpg": "eyeglasses, red stage light",
    "211.jpg": "half the face in hard shadow",
    "242.jpg": "eyeglasses",
    "271.jpg": "sunglasses",
}


def unwrap_all(paths: list[Path]) -> list[TrainingFace]:
    """Every face that has one clear face with landmarks, unwrapped and cleaned, with its gate measurements."""
    from faceskin.detect import FaceDetector
    from faceskin.donor import build_donor, to_lab, unwrap
    from faceskin.landmarks import Landmarker, head_angles

    detector, landmarker = FaceDetector(rotations=(0,)), Landmarker()
    out: list[TrainingFace] = []
    for p in paths:
        img = np.array(Image.open(p).convert("RGB"))
        faces = sorted(detector.detect(img), key=lambda f: -f.size)
        if not faces or (len(faces) > 1 and faces[1].size > 0.3 * faces[0].size):
            print(f"{p.name}: skipped (no face or several faces)")
            continue
        f = faces[0]
        if not landmarker.fit(img, f):
            print(f"{p.name}: skipped (no landmarks)")
            continue
        yaw, pitch, _ = head_angles(f)
        b = f.blendshapes or {}
        d = build_donor(img, f, skin_id=p.stem, source=f"synthetic/{p.name}")
        # texels the cleaning kept as photographed: only these carry real detail (the rest was synthesised)
        raw, facing, inside = unwrap(img, f)
        delta = np.linalg.norm(to_lab(raw) - to_lab(d.texture), axis=-1)
        original = (delta < 3.0) & inside & (facing > 0.1)
        out.append(TrainingFace(
            name=p.name, texture=d.texture, landmarks=d.landmarks.astype(np.float32), original=original,
            measures={"size": f.size, "yaw": yaw, "pitch": pitch, "fill": d.fill_fraction,
                      "expression": max(b.get("jawOpen", 0), b.get("mouthSmileLeft", 0), b.get("mouthSmileRight", 0)),
                      "blink": max(b.get("eyeBlinkLeft", 0), b.get("eyeBlinkRight", 0))}))
    return out


def gate(faces: list[TrainingFace]) -> list[TrainingFace]:
    from faceskin.skinmodel import texture_tone

    kept, rejected = [], {}
    for f in faces:
        m = f.measures
        _, a, b = texture_tone(f.texture)
        why = ("excluded by hand" if f.name in EXCLUDED else
               "face too small" if m["size"] < MIN_FACE_PX else
               "turned head" if abs(m["yaw"]) > MAX_YAW or abs(m["pitch"]) > MAX_PITCH else
               "expression" if m["expression"] > MAX_EXPRESSION or m["blink"] > MAX_BLINK else
               "too much synthesised texture" if m["fill"] > MAX_FILL else
               "monochrome or grey skin" if np.hypot(a, b) < MIN_CHROMA else None)
        if why is None:
            kept.append(f)
        else:
            rejected[why] = rejected.get(why, 0) + 1
    why = ", ".join(f"{k}: {v}" for k, v in sorted(rejected.items(), key=lambda kv: -kv[1]))
    print(f"{len(kept)} of {len(faces)} unwrapped faces pass the quality gate (rejected: {why or 'none'})")
    return kept


MEASURES = ("size", "yaw", "pitch", "fill", "expression", "blink")


def save_cache(path: Path, faces: list[TrainingFace]) -> None:
    np.savez_compressed(path, names=np.array([f.name for f in faces]),
                        textures=np.stack([f.texture for f in faces]),
                        landmarks=np.stack([f.landmarks for f in faces]),
                        original=np.packbits(np.stack([f.original for f in faces]), axis=-1),
                        measures=np.array([[f.measures[k] for k in MEASURES] for f in faces], np.float32))


def load_cache(path: Path) -> list[TrainingFace]:
    z = np.load(path, allow_pickle=False)
    original = np.unpackbits(z["original"], axis=-1).astype(bool)
    return [TrainingFace(name=str(n), texture=t, landmarks=lm, original=o, measures=dict(zip(MEASURES, map(float, m))))
            for n, t, lm, o, m in zip(z["names"], z["textures"], z["landmarks"], original, z["measures"])]


def rebuild_training_faces(model, count: int | None = None) -> list[TrainingFace]:
    """The first ``count`` training faces of ``model``, unwrapped again from their photos."""
    paths = [DATA / "synthetic" / name for name in model.train_names[:count]]
    return unwrap_all([p for p in paths if p.is_file()])


# ---- curation: screening each seed is independent of the others (and parallel); choosing is sequential

_SCREEN: dict = {}
RECOGNIZER_ORDER = ("sface", "dlib", "arcface", "facenet")  # cheapest and most often matching first


def _screen_init(out_path: str, cache: str | None) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from skin_collisions import CollisionProtocol, reference_photos

    with np.load(out_path, allow_pickle=False) as z:
        model = FittedModel({k: z[k] for k in z.files if not k.startswith("default_")})
    proto = CollisionProtocol()
    synthetic, identities = reference_photos()
    c = Path(cache) if cache else None
    _SCREEN.update(model=model, proto=proto,
                   refs={"training face": proto.photos(synthetic, c)[0], "real person": proto.photos(identities, c)[0]},
                   order=sorted(proto.panel, key=lambda r: RECOGNIZER_ORDER.index(r.name)
                                if r.name in RECOGNIZER_ORDER else len(RECOGNIZER_ORDER)))


def screen(seed: int) -> dict:
    """One seed against the references: why it is rejected, or its portrait and worn embeddings."""
    from skin_collisions import matches, similarities

    from faceskin.library import tone_group

    model, proto = _SCREEN["model"], _SCREEN["proto"]
    sample = model.sample(seed)
    out = {"seed": seed, "tone": sample.tone, "group": tone_group(sample.tone), "status": "ok"}
    img, face = proto.portrait_image(sample.texture, sample.landmarks)
    p = {}
    for r in _SCREEN["order"]:
        p[r.name] = np.asarray(r.embed(img, face), np.float32)
        for what, ref in _SCREEN["refs"].items():
            if matches(r, similarities(r, p[r.name], ref[r.name])).any():
                out["status"] = what
                return out
    w = proto.worn(sample.donor("candidate"))
    if w is None:
        out["status"] = "not detected when worn"
        return out
    out.update(portrait=p, worn=w, attributes=skin_attributes(sample.texture, sample.landmarks))
    return out


def select(screened: list[dict], count: int, exhausted: bool, panel) -> tuple[list[dict], dict, int] | None:
    """The default set from screened seeds (in seed order), or None if more seeds are needed.

    Seeds are taken in order; a seed whose tone group already has its quota
    is deferred; a screened seed is kept unless it collides with a skin kept
    before it (portrait of either against the other worn, any recognizer).
    Deferred seeds top the set up only once all candidates are used
    (``exhausted``): groups the model rarely draws could not fill their quota.
    """
    from skin_collisions import matches, similarities

    from faceskin.library import TONE_GROUPS

    quota = -(-count // len(TONE_GROUPS))
    chosen: list[dict] = []
    deferred: list[dict] = []
    rejected = {"training face": 0, "real person": 0, "skin pair": 0, "not detected when worn": 0}

    def consider(c: dict) -> None:
        if c["status"] != "ok":
            rejected[c["status"]] += 1
            return
        for k in chosen:
            if any(matches(r, similarities(r, c["portrait"][r.name], k["worn"][r.name])).any()
                   or matches(r, similarities(r, k["portrait"][r.name], c["worn"][r.name])).any() for r in panel):
                rejected["skin pair"] += 1
                return
        chosen.append(c)

    drawn = 0
    for c in screened:
        if len(chosen) >= count:
            break
        drawn += 1
        if sum(k["group"] == c["group"] for k in chosen) >= quota:
            deferred.append(c)
        else:
            consider(c)
    if len(chosen) < count and not exhausted:
        return None
    for c in deferred:
        if len(chosen) >= count:
            break
        consider(c)
    return chosen, rejected, drawn


def curate(model: FittedModel, count: int, max_candidates: int, cache: Path | None = None, jobs: int = 1,
           model_path: Path | None = None) -> None:
    """Pick ``count`` seeds for the default set (see the module docstring) and store them in ``model``.

    The result depends only on the model, the references, ``count`` and
    ``max_candidates``: seeds are screened in parallel (``jobs`` processes)
    but chosen in seed order, exactly as one sequential pass would.
    """
    import multiprocessing as mp
    import tempfile

    from faceskin.library import TONE_GROUPS

    tmp = None
    if model_path is None:  # workers load the model from a file
        tmp = tempfile.NamedTemporaryFile(suffix=".npz", delete=False)
        model.save(tmp)
        tmp.close()
        model_path = Path(tmp.name)
    t0 = time.perf_counter()
    screened: list[dict] = []
    result = None
    chunk = 50 * max(1, jobs)
    ctx = mp.get_context("spawn" if jobs > 1 else "fork")
    pool = ctx.Pool(jobs, _screen_init, (str(model_path), str(cache) if cache else None)) if jobs > 1 else None
    if pool is None:
        _screen_init(str(model_path), str(cache) if cache else None)
    panel = None
    try:
        while result is None:
            seeds = range(len(screened), min(len(screened) + chunk, max_candidates))
            screened += pool.map(screen, seeds, chunksize=5) if pool is not None else [screen(s) for s in seeds]
            if panel is None:
                sys.path.insert(0, str(ROOT / "bench"))
                from faceskin.recognizers import load_panel

                panel = load_panel()
            result = select(screened, count, len(screened) >= max_candidates, panel)
            ok = sum(c["status"] == "ok" for c in screened)
            print(f"  {len(screened)} seeds screened, {ok} clear of the references "
                  f"[{time.perf_counter() - t0:.0f} s]", flush=True)
    finally:
        if pool is not None:
            pool.terminate()
        if tmp is not None:
            Path(tmp.name).unlink(missing_ok=True)
    chosen, rejected, drawn = result
    if len(chosen) < count:
        raise SystemExit(f"error: only {len(chosen)} skins pass in {max_candidates} candidates; raise --candidates")
    chosen.sort(key=lambda c: (-c["tone"][0], c["seed"]))
    model.set_extra("default_ids", np.array([f"syn{i + 1:03d}" for i in range(len(chosen))]))
    model.set_extra("default_seeds", np.array([c["seed"] for c in chosen], np.int64))
    model.set_extra("default_tones", np.array([c["tone"] for c in chosen], np.float32))
    model.set_extra("default_attribute_names", np.array(ATTRIBUTES))
    model.set_extra("default_attributes", np.array([[c["attributes"][k] for k in ATTRIBUTES] for c in chosen],
                                                   np.float32))
    examined = len(chosen) + sum(rejected.values())
    model.set_extra("default_curation_names", np.array(["candidates drawn", "examined", *rejected]))
    model.set_extra("default_curation", np.array([drawn, examined, *rejected.values()], np.int64))
    groups = {g: sum(c["group"] == g for c in chosen) for g, _ in TONE_GROUPS}
    print(f"default set: {len(chosen)} skins; {drawn} seeds drawn, {examined} examined (the rest were in tone "
          f"groups already full); rejected {rejected}; tone groups {groups}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "src" / "faceskin" / "models" / "skinmodel.npz")
    ap.add_argument("--cache", type=Path, default=None, help="keep/reuse the unwrapped training donors here")
    ap.add_argument("--count", type=int, default=100, help="skins in the curated default set")
    ap.add_argument("--candidates", type=int, default=4000, help="most seeds to try while curating")
    ap.add_argument("--embeddings", type=Path, default=None, help="folder to keep reference photo embeddings")
    ap.add_argument("--curate-only", action="store_true", help="keep the model in --out, only re-curate its set")
    ap.add_argument("--jobs", type=int, default=1, help="processes screening seeds (the result does not depend on it)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.curate_only:
        with np.load(args.out, allow_pickle=False) as z:
            model = FittedModel({k: z[k] for k in z.files if not k.startswith("default_")})
        curate(model, args.count, args.candidates, args.embeddings, args.jobs, args.out)
        write(model, args.out)
        print(f"[{time.perf_counter() - t0:.0f} s]")
        return
    if args.cache is not None and args.cache.is_file():
        faces = load_cache(args.cache)
        print(f"{len(faces)} unwrapped faces from the cache {args.cache}")
    else:
        src = DATA / "synthetic"
        if not src.is_dir():
            raise SystemExit(f"error: {src} not found (the training data lives in ../shared/data)")
        faces = unwrap_all(sorted(src.glob("*.jpg")))
        if args.cache is not None:
            save_cache(args.cache, faces)
    model = fit(gate(faces))
    print(model.summary())
    curate(model, args.count, args.candidates, args.embeddings, args.jobs)
    write(model, args.out)
    print(f"[{time.perf_counter() - t0:.0f} s]")


def write(model: FittedModel, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        model.save(fh)
    os.replace(tmp, path)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
