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

``--false-positives`` decodes unmarked photos and video frames (and their
JPEG q75 versions) and counts any "present": the rate must be ~0.

``--baseline`` adds invisible-watermark's DWT-DCT (``imwatermark.maxDct``,
48 bits, whole frame) when that package is installed; only its pure-numpy
module is loaded, so torch is not needed.

    python bench/watermark_robustness.py [--limit N] [--videos N] [--frames N]
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
