"""Watermark robustness benchmark: does the faceskin mark survive social-media re-encoding?

For each photo (skimage's astronaut, plus ../shared/data photos when present)
the mark is embedded in the detected face boxes ("faces") and in the whole
frame ("frame"); then each attack is applied and the decoder runs blind (no
boxes, no scale given). Reported per attack:

* bit acc: fraction of the 48 code bits right before error correction, read
  at the true cell size from the cells the decoder located itself (face mode)
  or from the whole frame (frame mode); 0.5 is chance;
* detected: share of images where ``decode`` says present *with the right run
  id* (a wrong run id never occurred; it would count as a miss);
* PSNR of the embedding, over the face boxes and over the whole image.

Videos: the first frames of shared clips are marked in every detected face,
encoded with H.264 CRF 28 (PyAV, libx264, yuv420p) and decoded per frame and
pooled over all frames, as ``faceskin verify`` does.

Protected videos (``--protected-videos N``, default 1): clips go through
faceskin's own video pipeline (``protect_video`` with ``Finisher.mark`` as
the frame hook, exactly what ``faceskin protect`` does; default CRF 18
output), and the mark is read back from the output's frames, then again after
an H.264 CRF 28 re-encode of the output. Clips: the tests' generated one (the
astronaut's head sliding over a background, 240x160, 20 frames) and the first
N GRID talking heads (360x288, 75 frames). Reported: per-frame bit accuracy
(frames with a protected face only), frames that decode alone, the verdict of
``faceskin verify``'s video decoder (:func:`faceskin.verify.decode_video`),
the PSNR of the embedding over the marked regions and the whole frame, and
the hook's cost per frame. ``--skip-photos`` runs only this part.

``--false-positives`` decodes unmarked photos and video frames (and their
JPEG q75 versions) and counts any "present": the rate must be ~0.

``--baseline`` adds invisible-watermark's DWT-DCT (``imwatermark.maxDct``,
48 bits, whole frame) when that package is installed; only its pure-numpy
module is loaded, so torch is not needed.

    python bench/watermark_robustness.py [--limit N] [--videos N] [--frames N] [--protected-videos N]
    python bench/watermark_robustness.py --skip-photos --protected-videos 1
    python bench/watermark_robustness.py --false-positives [--limit N]

Photos here are originals, not skinned outputs: the mark sits on whatever is
inside the boxes, and skins are face texture like the originals.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

os.environ.setdefault("GLOG_minloglevel", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from faceskin import watermark as wm  # noqa: E402
from faceskin.detect import FaceDetector  # noqa: E402

DATA = Path(os.environ.get("FACESKIN_SHARED_DATA", ROOT.parent / "shared" / "data"))
RUN_ID = 0x5A17C3


# --------------------------------------------------------------------------- attacks
def jpeg(rgb: np.ndarray, quality: int = 75) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def resize(rgb: np.ndarray, scale: float = 0.5) -> np.ndarray:
    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def h264_frames(frames: list[np.ndarray], crf: int = 28, fps: int = 25) -> list[np.ndarray]:
    """Encode and decode frames with libx264 yuv420p at ``crf`` (preset medium)."""
    h, w = frames[0].shape[0] // 2 * 2, frames[0].shape[1] // 2 * 2
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium"}
        for f in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[:h, :w]), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    buf.seek(0)
    with av.open(buf) as inp:
        return [f.to_ndarray(format="rgb24") for f in inp.decode(video=0)]


def h264(rgb: np.ndarray) -> np.ndarray:
    return h264_frames([rgb])[0]


ATTACKS = {
    "none": (lambda x: x, 1.0),
    "JPEG q75": (jpeg, 1.0),
    "resize 0.5x": (resize, 0.5),
    "H.264 CRF 28": (h264, 1.0),
    "resize 0.5x + JPEG q75": (lambda x: jpeg(resize(x)), 0.5),
}


# --------------------------------------------------------------------------- data
def photos(limit: int, every_photo: bool = False) -> list[tuple[str, np.ndarray]]:
    """Astronaut plus up to ``limit`` shared photos: half real people (photo 1 each), half synthetic.

    ``every_photo`` takes every photo of every person instead (for the false-positive count).
    """
    from skimage import data as skdata

    out = [("astronaut", np.ascontiguousarray(skdata.astronaut()))]
    if (DATA / "identities").is_dir():
        people = sorted(p for p in (DATA / "identities").iterdir() if p.is_dir())
        synthetic = sorted((DATA / "synthetic").glob("*.jpg"))
        if every_photo:
            files = sorted((DATA / "identities").glob("*/*.jpg")) + synthetic
        else:
            files = [sorted(p.glob("*.jpg"))[0] for p in people[: limit // 2]] + synthetic[: limit - limit // 2]
        for f in files:
            out.append((f"{f.parent.name}/{f.name}", np.asarray(Image.open(f).convert("RGB"))))
    return out


def video_frames(path: Path, count: int) -> list[np.ndarray]:
    frames = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(format="rgb24"))
            if len(frames) >= count:
                break
    return frames


def boxes_of(detector: FaceDetector, rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
    return [tuple(map(float, f.box)) for f in detector.detect(rgb)]


def box_pixels(shape: tuple[int, ...], boxes) -> np.ndarray:
    mask = np.zeros(shape[:2], dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask[max(0, int(y0)) : int(np.ceil(y1)), max(0, int(x0)) : int(np.ceil(x1))] = True
    return mask


# --------------------------------------------------------------------------- measuring
def raw_bit_accuracy(rgb: np.ndarray, cell_size: float, located: bool) -> float:
    """Code-bit accuracy before error correction at the true cell size (0.5 = chance)."""
    soft, slot = wm._soft_cells(wm._luma(rgb), cell_size)
    if soft.size == 0:
        return 0.5
    mask = wm._located_mask(soft, slot) if located else None
    if mask is not None and not mask.any():
        return 0.5
    ev = wm._evidence(soft, slot, mask)
    sums, counts = ev.sums[wm.SYNC_SLOTS :], ev.counts[wm.SYNC_SLOTS :]
    hard = (sums < 0).astype(np.uint8)
    right = (hard == wm.code_bits(RUN_ID)) & (counts > 0)
    return float(np.mean(right | ((counts == 0) & (np.arange(len(hard)) % 2 == 0))))  # empty slot: coin flip


def detected(result: wm.WatermarkResult) -> bool:
    if result.present and result.run_id != RUN_ID:
        print(f"  !! wrong run id {result.run_id:06x}", file=sys.stderr)
    return result.present and result.run_id == RUN_ID


def load_baseline():
    """invisible-watermark's DWT-DCT embedder, without importing torch via its package __init__."""
    spec = importlib.util.find_spec("imwatermark")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "maxDct.py"
    mod_spec = importlib.util.spec_from_file_location("_imwatermark_maxdct", path)
    module = importlib.util.module_from_spec(mod_spec)
    try:
        mod_spec.loader.exec_module(module)
    except ImportError as exc:  # PyWavelets missing
        print(f"baseline skipped: {exc}", file=sys.stderr)
        return None
    return module.EmbedMaxDct


def baseline_accuracy(embedder_cls, rgb: np.ndarray, attack) -> tuple[float, float]:
    bits = list(wm.code_bits(RUN_ID))
    enc = embedder_cls(watermarks=bits, wmLen=len(bits), scales=[0, 36, 36], block=4)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    marked = cv2.cvtColor(np.clip(enc.encode(bgr), 0, 255).astype(np.uint8), cv2.COLOR_BGR2RGB)
    attacked = attack(marked)
    dec = embedder_cls(watermarks=[], wmLen=len(bits), scales=[0, 36, 36], block=4)
    got = np.array(dec.decode(cv2.cvtColor(attacked, cv2.COLOR_RGB2BGR)), dtype=np.uint8)
    return float(np.mean(got == np.array(bits))), wm.psnr(rgb, marked)


# --------------------------------------------------------------------------- runs
def robustness(args) -> None:
    if args.skip_photos:
        protected_videos(args)
        return
    detector = FaceDetector()
    items = photos(args.limit)
    rows: dict[tuple[str, str], list] = {}
    psnr_face, psnr_face_img, psnr_frame = [], [], []
    face_sizes = []
    baseline = load_baseline() if args.baseline else None
    base_rows: dict[str, list] = {}
    t0 = time.time()
    used = 0
    for name, rgb in items:
        boxes = boxes_of(detector, rgb)
        if not boxes:
            continue
        used += 1
        face_sizes += [b[3] - b[1] for b in boxes]
        marked = {"faces": wm.embed(rgb, RUN_ID, boxes), "frame": wm.embed(rgb, RUN_ID, boxes, whole_frame=True)}
        regions = [wm.mark_region(b, rgb.shape) for b in boxes]
        psnr_face.append(wm.psnr(rgb, marked["faces"], box_pixels(rgb.shape, regions)))
        psnr_face_img.append(wm.psnr(rgb, marked["faces"]))
        psnr_frame.append(wm.psnr(rgb, marked["frame"]))
        for mode, image in marked.items():
            for attack, (fn, scale) in ATTACKS.items():
                attacked = fn(image)
                acc = raw_bit_accuracy(attacked, wm.CELL * scale, located=(mode == "faces"))
                rows.setdefault((mode, attack), []).append((acc, detected(wm.decode(attacked))))
        if baseline is not None:
            for attack, (fn, _scale) in ATTACKS.items():
                base_rows.setdefault(attack, []).append(baseline_accuracy(baseline, rgb, fn))
    print(f"\n{used} photos with faces ({len(face_sizes)} faces, median face height "
          f"{np.median(face_sizes):.0f} px), {time.time() - t0:.0f} s\n")
    print("| mark | attack | bit acc (mean) | bit acc (min) | detected |")
    print("|---|---|---|---|---|")
    for (mode, attack), vals in rows.items():
        accs = np.array([v[0] for v in vals])
        det = np.mean([v[1] for v in vals])
        print(f"| {mode} | {attack} | {accs.mean():.3f} | {accs.min():.3f} | {det:.0%} |")
    print("\n| embedding cost | PSNR mean (dB) | PSNR min (dB) |")
    print("|---|---|---|")
    for label, vals in (("faces mark, inside marked regions", psnr_face),
                        ("faces mark, whole image", psnr_face_img),
                        ("whole-frame mark, whole image", psnr_frame)):
        print(f"| {label} | {np.mean(vals):.1f} | {np.min(vals):.1f} |")
    if base_rows:
        print("\nBaseline: invisible-watermark DWT-DCT (maxDct, U+V scale 36, 48 bits, whole frame)\n")
        print("| attack | bit acc (mean) | bit acc (min) | PSNR mean (dB) |")
        print("|---|---|---|---|")
        for attack, vals in base_rows.items():
            accs = np.array([v[0] for v in vals])
            print(f"| {attack} | {accs.mean():.3f} | {accs.min():.3f} | {np.mean([v[1] for v in vals]):.1f} |")
    if args.videos:
        videos(args, detector)
    protected_videos(args)


def videos(args, detector: FaceDetector) -> None:
    clips = sorted((DATA / "videos").glob("*.mp4"))
    if not clips:
        print("\n(no shared videos: video table skipped)")
        return
    # Spread the picks over the kinds of clip: talking heads, group, selfie, hikers.
    picks = [c for c in clips if not c.name.startswith("grid_")] + [c for c in clips if c.name.startswith("grid_")]
    print(f"\nVideo: first {args.frames} frames, faces marked, H.264 CRF 28, decoded blind\n")
    print("| clip | size | median face px | frames detected (per frame) | pooled over frames | bit acc (mean) |")
    print("|---|---|---|---|---|---|")
    for clip in picks[: args.videos]:
        frames = video_frames(clip, args.frames)
        marked, sizes = [], []
        for f in frames:
            boxes = boxes_of(detector, f)
            sizes += [b[3] - b[1] for b in boxes]
            marked.append(wm.embed(f, RUN_ID, boxes))
        decoded = h264_frames(marked)
        per_frame = [detected(wm.decode(f)) for f in decoded]
        pooled = detected(wm.decode(decoded))
        accs = [raw_bit_accuracy(f, wm.CELL, located=True) for f in decoded]
        h, w = frames[0].shape[:2]
        print(f"| {clip.stem} | {w}x{h} | {np.median(sizes) if sizes else 0:.0f} | "
              f"{np.mean(per_frame):.0%} | {'yes' if pooled else 'no'} | {np.mean(accs):.3f} |")


def generated_clip(path: Path, frames: int = 20) -> Path:
    """The tests' clip (tests/test_video.py): the astronaut's head sliding right over a texture."""
    from skimage import data as skdata

    w, h, scale, step = 240, 160, 0.6, 3
    crop = cv2.resize(skdata.astronaut()[20:220, 130:320], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    y, x = np.mgrid[0:h, 0:w]
    background = np.stack([(x * 0.5 + 40) % 256, (y * 0.7 + 60) % 256, 90 + 30 * np.sin(x / 9.0)], -1).astype(np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "18"}
        for i in range(frames):
            img = background.copy()
            img[20 : 20 + crop.shape[0], 10 + step * i : 10 + step * i + crop.shape[1]] = crop
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


class RecordingHook:
    """``Finisher.mark`` as the video frame hook, recording what the mark costs in PSNR and time."""

    def __init__(self, finisher) -> None:
        self.finisher = finisher
        self.face_frames: list[bool] = []
        self.sq_region = self.n_region = self.sq_frame = self.n_frame = 0.0
        self.seconds = 0.0

    def __call__(self, rgb: np.ndarray, boxes) -> np.ndarray:
        boxes = list(boxes)
        t0 = time.perf_counter()
        out = self.finisher.mark(rgb, boxes)
        self.seconds += time.perf_counter() - t0
        self.face_frames.append(bool(boxes))
        sq = (out.astype(np.float64) - rgb.astype(np.float64)) ** 2
        mask = box_pixels(rgb.shape, [wm.mark_region(b, rgb.shape) for b in boxes])
        self.sq_region += float(sq[mask].sum())
        self.n_region += float(mask.sum()) * 3
        self.sq_frame += float(sq.sum())
        self.n_frame += float(sq.size)
        return out

    @staticmethod
    def _psnr(sq: float, n: float) -> float:
        return float("inf") if sq == 0 else 10 * np.log10(255.0**2 / (sq / n))

    @property
    def psnr_region(self) -> float:
        return self._psnr(self.sq_region, self.n_region)

    @property
    def psnr_frame(self) -> float:
        return self._psnr(self.sq_frame, self.n_frame)


def mark_cost_640x480(repeats: int = 50) -> float:
    """Milliseconds per ``Finisher.mark`` (watermark, no badge) on a 640x480 frame with one face."""
    from skimage import data as skdata

    from faceskin.publish import Finisher, LabelOptions

    frame = cv2.resize(skdata.astronaut(), (640, 480), interpolation=cv2.INTER_AREA)
    box = (230.0, 40.0, 370.0, 200.0)  # the astronaut's face box (x 180-270, y 57-177 of 512) scaled, grown
    finisher = Finisher(LabelOptions(label=False))
    finisher.mark(frame, [box])
    t0 = time.perf_counter()
    for _ in range(repeats):
        finisher.mark(frame, [box])
    return (time.perf_counter() - t0) / repeats * 1000


def protected_videos(args) -> None:
    """Watermark read back from faceskin-protected videos, before and after an H.264 CRF 28 re-encode."""
    import tempfile

    from faceskin.publish import Finisher, LabelOptions
    from faceskin.verify import decode_video
    from faceskin.video import protect_video
    from faceskin.videofile import open_video

    if args.protected_videos <= 0:
        return
    work = Path(tempfile.mkdtemp(prefix="wm-bench-"))
    clips = [("generated astronaut (tests)", generated_clip(work / "generated.mp4"))]
    grid = sorted((DATA / "videos").glob("grid_talking_head_*.mp4"))
    clips += [(c.stem, c) for c in grid[: args.protected_videos]]
    if not grid:
        print("\n(no shared GRID clips: only the generated clip)")
    rows = []
    for name, clip in clips:
        finisher = Finisher(LabelOptions(label=False))
        finisher.run_id = RUN_ID
        hook = RecordingHook(finisher)
        out = work / f"{clip.stem}.protected.mp4"
        t0 = time.perf_counter()
        report = protect_video(clip, out, seed=0, audio=False, frame_hook=hook)
        seconds = time.perf_counter() - t0
        frames = [f.rgb for f in open_video(out)]
        reencoded = h264_frames(frames, crf=28)
        reencoded_path = work / f"{clip.stem}.crf28.mp4"
        with av.open(str(reencoded_path), "w") as c:  # written as a file so verify's decoder reads it
            stream = c.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = reencoded[0].shape[1], reencoded[0].shape[0], "yuv420p"
            stream.options = {"crf": "0", "preset": "ultrafast"}  # lossless: the CRF 28 damage, nothing more
            for f in reencoded:
                for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                    c.mux(packet)
            for packet in stream.encode():
                c.mux(packet)
        face = [i for i, has in enumerate(hook.face_frames) if has]
        h, w = frames[0].shape[:2]
        for attack, images, path in (("none (faceskin output, CRF 18)", frames, out),
                                     ("H.264 CRF 28 re-encode", reencoded, reencoded_path)):
            accs = [raw_bit_accuracy(images[i], wm.CELL, located=True) for i in face if i < len(images)]
            alone = [detected(wm.decode(images[i])) for i in face if i < len(images)]
            result, counts = decode_video(path)
            rows.append((name, f"{w}x{h}", f"{len(face)}/{len(frames)}", attack,
                         np.mean(accs) if accs else float("nan"), np.min(accs) if accs else float("nan"),
                         np.mean(alone) if alone else 0.0, detected(result), counts,
                         hook.psnr_region, hook.psnr_frame, hook.seconds / max(1, report.frames) * 1000, seconds))
    print("\nProtected videos: faceskin's video pipeline with the watermark hook, read back blind\n")
    print("| clip | size | face frames | attack | bit acc (mean) | bit acc (min) | frames detected alone | "
          "verify decoder | PSNR marked regions (dB) | PSNR frame (dB) | hook ms/frame | protect s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (name, size, ff, attack, acc, acc_min, alone, ok, counts, pr, pf, ms, secs) in rows:
        verdict = f"{'found' if ok else 'MISSED'} ({counts['marked']}/{counts['checked']} frames)"
        print(f"| {name} | {size} | {ff} | {attack} | {acc:.3f} | {acc_min:.3f} | {alone:.0%} | {verdict} | "
              f"{pr:.1f} | {pf:.1f} | {ms:.1f} | {secs:.1f} |")
    print(f"\nFinisher.mark (watermark, one face, no badge) at 640x480: {mark_cost_640x480():.1f} ms/frame")


def false_positives(args) -> None:
    items = photos(args.limit, every_photo=True)
    tested = hits = 0
    worst = 0.0
    t0 = time.time()
    images = [(n, x) for n, x in items] + [(n + " (JPEG q75)", jpeg(x)) for n, x in items]
    for clip in sorted((DATA / "videos").glob("*.mp4")) if (DATA / "videos").is_dir() else []:
        frames = video_frames(clip, 30)
        images += [(f"{clip.stem}#{i}", f) for i, f in enumerate(frames[::10])]
        images.append((f"{clip.stem} pooled 30 frames", frames))
    for name, image in images:
        result = wm.decode(image)
        tested += 1
        worst = max(worst, result.reliability)
        if result.present:
            hits += 1
            print(f"  false positive: {name} run {result.run_id:06x} rel {result.reliability:.2f}", file=sys.stderr)
    print(f"\n| unmarked inputs decoded | false 'present' | max code reliability (threshold {wm.MIN_RELIABILITY}) | time |")
    print("|---|---|---|---|")
    print(f"| {tested} | {hits} | {worst:.2f} | {time.time() - t0:.0f} s |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=40, help="shared photos to use (half real, half synthetic)")
    ap.add_argument("--videos", type=int, default=4, help="shared clips for the video table (0 = none)")
    ap.add_argument("--frames", type=int, default=24, help="frames per clip")
    ap.add_argument("--protected-videos", type=int, default=1,
                    help="GRID clips run through faceskin's video pipeline for the protected-video table (0 = none)")
    ap.add_argument("--skip-photos", action="store_true", help="only the protected-video table")
    ap.add_argument("--baseline", action="store_true", help="also measure invisible-watermark DWT-DCT")
    ap.add_argument("--false-positives", action="store_true",
                    help="count false detections on every unmarked shared photo, its JPEG q75 copy and video frames")
    args = ap.parse_args()
    if args.false_positives:
        false_positives(args)
    else:
        robustness(args)


if __name__ == "__main__":
    main()
