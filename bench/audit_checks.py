"""Does `faceskin audit` find exactly what was left bare, and what does it cost next to protecting?

1. Broken outputs (the audit must report exactly the bare frames). For each
   clip, every face is covered in every frame, except one person's face (the
   track with the largest faces), which is left bare for ``--bare``
   consecutive frames in the middle of its track. Covers: ``fill`` (the head
   filled flat with its mean colour plus per-pixel noise), ``pixelate``
   (``faceskin.fallback.cover_face``, the product's cover despite the old
   name), ``blur`` (a light blur, still recognisable: most frames must be
   reported) and ``own``: faceskin's own output of the clip (from the
   own-output run, 2.), with the person's original head put back for the
   bare frames: the issue's "skins off for 5 frames of one track", exactly.
   Faces to cover are those found by the protect pipeline's detector
   (RetinaFace + CenterFace) *or* the audit's ensemble, held for 5 frames
   after they are lost, so the only bare faces are the ones left bare on
   purpose. The audit of that output must report exactly those frames.
2. faceskin's own output (``protect_video`` defaults): leaked frames found
   by the audit, and the time of protecting vs auditing the same clip, run
   back to back in one process so both see the same machine load:
   the full audit (every frame, fidelity), the leak scan alone
   (``fidelity=False``, no thumbnails), and writing the HTML + JSON report.
3. ``--gallery-check``: the gallery attack on ../shared/data/identities
   (originals = photo 1 of each person, protected with the photo pipeline,
   gallery = every other photo), to set beside ``bench/privacy_photos.py``.

    python bench/audit_checks.py [--clips grid_talking_head_bbaf2n,group_indoor_5people_3s]
                                 [--bare 5] [--covers fill,pixelate] [--work DIR] [--skip-own] [--skip-protect]
                                 [--gallery-check] [--limit N]

Prints markdown tables. Needs the ``eval`` extra and ../shared/data.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from faceskin.audit import Auditor, audit, write_json  # noqa: E402
from faceskin.detect import FaceDetector, box_iou  # noqa: E402
from faceskin.faces import Face  # noqa: E402
from faceskin.fallback import cover_face  # noqa: E402
from faceskin.videofile import VideoWriter, open_video  # noqa: E402

DATA = Path(os.environ.get("FACESKIN_SHARED_DATA", ROOT.parent / "shared" / "data"))
DEFAULT_CLIPS = "grid_talking_head_bbaf2n,group_indoor_5people_3s"
HOLD = 5  # frames a lost face's last box stays covered


def link_tracks(per_frame: list[list[np.ndarray]], min_iou: float = 0.3, max_gap: int = 5) -> list[list[int]]:
    """Track ids for every box of every frame (greedy IoU linking)."""
    active: dict[int, tuple[int, np.ndarray]] = {}
    next_id, out = 1, []
    for i, boxes in enumerate(per_frame):
        active = {t: v for t, v in active.items() if i - v[0] <= max_gap}
        ids = [0] * len(boxes)
        if boxes and active:
            tids = list(active)
            iou = box_iou(np.array(boxes), np.array([active[t][1] for t in tids]))
            for fi, ti in sorted(np.ndindex(iou.shape), key=lambda p: -iou[p]):
                if iou[fi, ti] < min_iou or ids[fi] or tids[ti] in ids:
                    continue
                ids[fi] = tids[ti]
        for k, b in enumerate(boxes):
            if not ids[k]:
                ids[k], next_id = next_id, next_id + 1
            active[ids[k]] = (i, b)
        out.append(ids)
    return out


def flat_cover(image: np.ndarray, face: Face, rng: np.random.Generator, margin: float = 0.2) -> None:
    """The head ellipse filled with its mean colour plus noise: no identity left at any size."""
    import cv2

    from faceskin.fallback import head_region

    centre, axes = head_region(face, margin)
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.ellipse(mask, (round(centre[0]), round(centre[1])), (int(np.ceil(axes[0])), int(np.ceil(axes[1]))),
                0, 0, 360, 1, -1)
    x0, y0, x1, y1 = np.round(face.box).astype(int)
    mask[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = 1
    region = mask > 0
    if region.any():
        fill = image[region].mean(0) + rng.normal(0, 12, (int(region.sum()), 1))
        image[region] = np.clip(fill, 0, 255).astype(np.uint8)


def light_blur(image: np.ndarray, face: Face, rng: np.random.Generator, sigma: float = 0.04) -> None:
    """The face box (grown by a quarter) blurred with a Gaussian of ``sigma`` x its size: a weak,
    still recognisable protection, so a check that the audit's cover control does not hide it."""
    import cv2

    h, w = image.shape[:2]
    x0, y0, x1, y1 = face.box
    s = max(x1 - x0, y1 - y0)
    a, b = int(max(0, x0 - s / 4)), int(max(0, y0 - s / 4))
    c, d = int(min(w, x1 + s / 4)), int(min(h, y1 + s / 4))
    if c > a and d > b:
        image[b:d, a:c] = cv2.GaussianBlur(np.ascontiguousarray(image[b:d, a:c]), (0, 0), max(0.5, sigma * s))


COVERS = {"fill": flat_cover, "pixelate": lambda img, face, rng: cover_face(img, face, rng, margin=0.2),
          "blur": light_blur}


def make_broken(src: Path, dst: Path, bare: int, auditor: Auditor, cover: str) -> tuple[list[int], int]:
    """Write the covered-but-one copy; return the bare frame indices and the bare track id."""
    frames = list(open_video(src))
    pipeline = FaceDetector(rotations=(0,))
    boxes: list[list[np.ndarray]] = []
    faces: list[list[bool]] = []  # per box: a face the audit's ensemble confirms (two or more detectors)
    for f in frames:
        ensemble = auditor.video_detector.detect(f.rgb)
        found = pipeline.detect(f.rgb) + ensemble
        merged: list[np.ndarray] = []
        for face in sorted(found, key=lambda x: -x.size):
            if not merged or box_iou(face.box, np.array(merged)).max() < 0.3:
                merged.append(np.asarray(face.box, np.float64))
        boxes.append(merged)
        sure = [np.asarray(e.box, np.float64) for e in ensemble if "+" in e.source]
        faces.append([bool(sure) and box_iou(b, np.array(sure)).max() > 0.3 for b in merged])
    ids = link_tracks(boxes)
    sizes: dict[int, list[float]] = {}
    seen: dict[int, list[int]] = {}
    for i, (bs, ts, ok) in enumerate(zip(boxes, ids, faces)):
        for b, t, is_face in zip(bs, ts, ok):
            if is_face:  # frames where the box is a confirmed face: only those can be left bare
                sizes.setdefault(t, []).append(max(b[2] - b[0], b[3] - b[1]))
                seen.setdefault(t, []).append(i)
    # the person: the track with the largest median confirmed face among tracks with a long enough run of
    # confirmed frames (the largest boxes alone can be hands or rucksacks: on the hikers clip they were)
    def window(run: list[int]) -> int | None:
        return next((run[k] for k in range(max(0, len(run) // 2 - bare // 2), len(run) - bare + 1)
                     if run[k + bare - 1] - run[k] == bare - 1), None)

    candidates = [t for t in seen if len(seen[t]) >= bare + 4 and window(seen[t]) is not None]
    if not candidates:
        raise SystemExit(f"{src.name}: no track long enough to leave {bare} frames bare")
    person = max(candidates, key=lambda t: np.median(sizes[t]))
    run = seen[person]
    # `bare` consecutive confirmed frames in the middle of the track
    start = window(run)
    bare_frames = list(range(start, start + bare))
    reader = open_video(src)
    rng = np.random.default_rng(0)
    last: dict[int, tuple[int, np.ndarray]] = {}
    protected = None
    if cover == "own":
        skinned = dst.parent / f"{src.stem}.skinned.mp4"
        if not skinned.exists():
            raise SystemExit(f"{skinned}: no faceskin output to break (run without --skip-own first)")
        protected = list(open_video(skinned))
        if len(protected) != len(frames):
            raise SystemExit(f"{skinned}: {len(protected)} frames, the original has {len(frames)}")
    with VideoWriter(dst, reader.width, reader.height, reader.time_base, fps=reader.fps, colour=reader.colour) as w:
        for i, f in enumerate(frames):
            if protected is not None:
                # faceskin's own output with the person's skin taken off: the original head put back
                img = protected[i].rgb.copy()
                if i in bare_frames:
                    for b, t in zip(boxes[i], ids[i]):
                        if t == person:
                            x0, y0, x1, y1 = b
                            s = max(x1 - x0, y1 - y0)
                            a, c = int(max(0, x0 - s / 2)), int(min(img.shape[1], x1 + s / 2))
                            d, e = int(max(0, y0 - s / 2)), int(min(img.shape[0], y1 + s / 2))
                            img[d:e, a:c] = f.rgb[d:e, a:c]
                w.write(img, f.pts)
                continue
            img = f.rgb.copy()
            for b, t in zip(boxes[i], ids[i]):
                last[t] = (i, b)
            for t, (j, b) in last.items():
                if i - j > HOLD:
                    continue
                if t == person and i in bare_frames:
                    continue
                COVERS[cover](img, Face(box=b.copy(), score=1.0), rng)
            w.write(img, f.pts)
    return bare_frames, person


def broken_table(clips: list[Path], work: Path, bare: int, auditor: Auditor, cover: str) -> None:
    how = {"fill": "filled flat (mean colour + noise)", "pixelate": "covered with fallback.cover_face",
           "own": "protected by faceskin (the run in the own-output table)",
           "blur": "lightly blurred (sigma 4 % of the face: still recognisable, so most frames must be reported)"}[cover]
    print(f"\n### Broken outputs: every face {how} except one person's, bare for {bare} frames\n")
    print("| clip | frames | faces in original | bare frames (constructed) | leaked frames reported | exact | "
          "leaked faces by recognizer | audit s |")
    print("|---|---:|---:|---|---|:-:|---|---:|")
    for src in clips:
        dst = work / f"{src.stem}.broken-{cover}.mp4"
        bare_frames, _ = make_broken(src, dst, bare, auditor, cover)
        t0 = time.perf_counter()
        r = audit(src, dst, auditor=auditor, fidelity=False, thumbnails=False)
        sec = time.perf_counter() - t0
        write_json(r, work / f"{src.stem}.broken-{cover}.audit.json")
        got = r.leaked_items
        d = r.to_dict()
        by = ", ".join(f"{k} {v}" for k, v in d["leaks"]["faces_by_recognizer"].items())
        print(f"| {src.stem} | {r.items_checked} | {len(r.faces)} | {bare_frames[0]}-{bare_frames[-1]} | "
              f"{compress(got)} | {'yes' if got == bare_frames else '**no**'} | {by} | {sec:.0f} |", flush=True)


def compress(items: list[int]) -> str:
    if not items:
        return "none"
    parts, start, prev = [], items[0], items[0]
    for x in items[1:] + [None]:
        if x is not None and x == prev + 1:
            prev = x
            continue
        parts.append(f"{start}-{prev}" if prev != start else f"{start}")
        if x is not None:
            start = prev = x
    return ", ".join(parts)


def own_output_table(clips: list[Path], work: Path, auditor: Auditor, skip_protect: bool) -> None:
    from faceskin.audit_report import write_html
    from faceskin.video import VideoProtector

    print("\n### faceskin's own output: leaks found, and audit time next to protect time (same process, back to back)\n")
    print("| clip | frames | faces | unconfirmed | skinned / covered / unchanged | leaked frames | discounted faces | "
          "protect s | "
          "full audit s | (x protect) | of it: embeddings s | detection s | landmarks s | HTML + JSON s | "
          "(% of protect) |")
    print("|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    protector = None if skip_protect else VideoProtector()
    rows = []
    for src in clips:
        out = work / f"{src.stem}.skinned.mp4"
        protect_s = float("nan")
        if protector is not None:
            t0 = time.perf_counter()
            protector.run(src, out, audio=False)
            protect_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        full = audit(src, out, auditor=auditor)
        full_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        write_html(full, work / f"{src.stem}.audit.html")
        write_json(full, work / f"{src.stem}.audit.json")
        report_s = time.perf_counter() - t0
        st = full.state_counts()
        t = full.timings
        rows.append((src.stem, full))
        print(f"| {src.stem} | {full.items_checked} | {len(full.faces)} | {sum(not f.confirmed for f in full.faces)} | "
              f"{st['skinned']} / {st['covered']} / "
              f"{st['unchanged']} | {compress(full.leaked_items)} | {sum(f.weak for f in full.faces)} | "
              f"{protect_s:.1f} | {full_s:.1f} | {full_s / protect_s:.1f} | {t.get('embed', 0) + t.get('controls', 0):.1f} | "
              f"{t.get('detect', 0) + t.get('redetect', 0):.1f} | {t.get('landmarks', 0):.1f} | {report_s:.2f} | "
              f"{100 * report_s / protect_s:.1f} % |", flush=True)
    print("\n| clip | detection rate of skinned faces | jawOpen r | eyeBlink r | head-pose error yaw/pitch/roll (deg) | "
          "landmark jitter out/in | PSNR outside heads (dB) | changed pixels outside |")
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    for name, full in rows:
        f, o = full.fidelity, full.outside
        pose = f["head_pose_error_deg"]
        print(f"| {name} | {f['detection_rate_skinned']} | {f['blendshape_r']['jawOpen']} | "
              f"{f['blendshape_r']['eyeBlink']} | "
              f"{'/'.join(str(pose[k]) for k in ('yaw', 'pitch', 'roll')) if pose else '-'} | "
              f"{f['landmark_jitter']['ratio']} | {o['psnr_db']} | {o['pixels_changed']} of {o['pixels_compared']} |")


def gallery_check(work: Path, auditor: Auditor, limit: int) -> None:
    from PIL import Image

    from faceskin.protect import Protector

    people = sorted(p for p in (DATA / "identities").iterdir() if p.is_dir())
    if limit:
        people = people[:limit]
    orig, prot, gal = work / "gallery-check" / "orig", work / "gallery-check" / "prot", work / "gallery-check" / "gallery"
    for d in (orig, prot, gal):
        d.mkdir(parents=True, exist_ok=True)
    protector = Protector(seed=0)
    for person in people:
        photos = sorted(person.glob("*.jpg"))
        first = next((p for p in photos if p.stem == "1"), photos[0])
        rgb = np.asarray(Image.open(first).convert("RGB"))
        Image.fromarray(rgb).save(orig / f"{person.name}.png")
        Image.fromarray(protector.protect(rgb)[0]).save(prot / f"{person.name}.png")
        (gal / person.name).mkdir(exist_ok=True)
        for p in photos:
            link = gal / person.name / p.name
            if p != first and not link.exists():
                link.symlink_to(p)
    t0 = time.perf_counter()
    r = audit(orig, prot, auditor=auditor, gallery=gal, fidelity=False, thumbnails=False)
    write_json(r, work / "gallery-check.audit.json")
    g = r.gallery
    print(f"\n### Gallery attack on ../shared/data/identities ({len(people)} people; gallery = every other photo, "
          f"{g['faces_embedded']} faces; {time.perf_counter() - t0:.0f} s)\n")
    print("| recognizer | faces | originals identified | protected verified (of identified) | protected rank-1 | "
          "verified / all faces |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, s in g["by_recognizer"].items():
        all_rate = s["protected_verified"] / s["faces"] if s["faces"] else float("nan")
        print(f"| {name} | {s['faces']} | {s['original_identified']} | {s['protected_verified']} "
              f"({100 * (s['verification_rate'] or 0):.1f} %) | {s['protected_rank1']} "
              f"({100 * (s['rank1_rate'] or 0):.1f} %) | {100 * all_rate:.1f} % |")
    print(f"\nleak scan on the same pairs: {len(r.leaked_items)} of {r.items_checked} photos leaked")

    # the same protected photos through bench/privacy_photos.py's own method, for comparison
    bench = privacy_photos_method(people, prot, auditor)
    print("\nSame protected photos, measured the way bench/privacy_photos.py does (attacker = RetinaFace, largest "
          "face; re-ID = any of the person's other photos matches; rank-1 over all people):\n")
    print("| recognizer | re-ID | rank-1 | n |")
    print("|---|---:|---:|---:|")
    for name, (reid, rank1, n) in bench.items():
        print(f"| {name} | {100 * reid / n:.1f} % | {100 * rank1 / n:.1f} % | {n} |")


def privacy_photos_method(people: list[Path], prot: Path, auditor: Auditor) -> dict[str, tuple[int, int, int]]:
    """re-ID and rank-1 exactly as bench/privacy_photos.py computes them, on already protected photos."""
    from PIL import Image

    attacker = FaceDetector(rotations=(0,), use_centerface=False)

    def largest(img):
        faces = attacker.detect(img)
        return max(faces, key=lambda f: f.size) if faces else None

    gallery: dict[str, dict[str, list[np.ndarray]]] = {r.name: {} for r in auditor.panel}
    probes = {}
    for person in people:
        photos = sorted(person.glob("*.jpg"))
        first = next((p for p in photos if p.stem == "1"), photos[0])
        original = np.asarray(Image.open(first).convert("RGB"))
        face = largest(original)
        if face is None:
            continue
        probes[person.name] = (np.asarray(Image.open(prot / f"{person.name}.png").convert("RGB")), face)
        for p in photos:
            if p == first:
                continue
            g = np.asarray(Image.open(p).convert("RGB"))
            gf = largest(g)
            if gf is not None:
                for r in auditor.panel:
                    gallery[r.name].setdefault(person.name, []).append(r.embed(g, gf))
    out = {}
    for r in auditor.panel:
        reid = rank1 = 0
        for name, (img, face) in probes.items():
            match = [f for f in attacker.detect(img) if box_iou(f.box, face.box)[0, 0] > 0.3]
            probe = max(match, key=lambda f: f.score) if match else face
            e = r.embed(img, probe)
            sims = {}
            for other, gs in gallery[r.name].items():
                vals = [r.similarity(e, g) for g in gs]
                sims[other] = max(vals) if r.higher_is_similar else min(vals)
            reid += any(r.is_match(e, g) for g in gallery[r.name].get(name, []))
            if sims:
                best = max(sims, key=sims.get) if r.higher_is_similar else min(sims, key=sims.get)
                rank1 += best == name
        out[r.name] = (reid, rank1, len(probes))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", default=DEFAULT_CLIPS, help="comma-separated clip names (no .mp4), or 'all'")
    ap.add_argument("--bare", type=int, default=5, help="frames left bare in the broken output")
    ap.add_argument("--work", type=Path, default=Path("/tmp/faceskin-audit-checks"))
    ap.add_argument("--covers", default="fill,pixelate",
                    help="how the broken outputs cover the other faces: fill, pixelate, blur, or own (faceskin's "
                         "own output, needs the own-output run; fill,pixelate by default; '' for none)")
    ap.add_argument("--cover-tolerance", type=float, default=None,
                    help="audit with this COVER_TOLERANCE instead of the default (0 = the bare 'no closer than a "
                         "cover' rule), to measure what the tolerance discounts")
    ap.add_argument("--skip-own", action="store_true")
    ap.add_argument("--skip-protect", action="store_true", help="reuse existing *.skinned.mp4 in --work")
    ap.add_argument("--gallery-check", action="store_true")
    ap.add_argument("--limit", type=int, default=0, help="gallery check: first N identities (0 = all)")
    args = ap.parse_args()
    if not (DATA / "videos").is_dir():
        raise SystemExit(f"error: {DATA}/videos not found (the shared data is absent on a fresh clone)")
    names = ([p.stem for p in sorted((DATA / "videos").glob("*.mp4"))] if args.clips == "all"
             else args.clips.split(","))
    clips = [DATA / "videos" / f"{n}.mp4" for n in names]
    missing = [c.name for c in clips if not c.exists()]
    if missing:
        raise SystemExit(f"error: no such clip(s): {', '.join(missing)}")
    args.work.mkdir(parents=True, exist_ok=True)
    if args.cover_tolerance is not None:
        import faceskin.audit

        faceskin.audit.COVER_TOLERANCE = args.cover_tolerance
        print(f"audit cover tolerance: {args.cover_tolerance}")
    auditor = Auditor()
    rules = ", ".join(f"{x['name']} ({x['rule']})" for x in auditor.recognizer_info())
    print(f"recognizers: {rules}")
    print(f"audit detectors: {', '.join(auditor.video_detector.names)}; {os.cpu_count()} CPU cores, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    covers = [c for c in args.covers.split(",") if c]
    if not args.skip_own:  # first: the "own" broken outputs are made from these outputs
        own_output_table(clips, args.work, auditor, args.skip_protect)
    for cover in covers:
        broken_table(clips, args.work, args.bare, auditor, cover)
    if args.gallery_check:
        gallery_check(args.work, auditor, args.limit)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
