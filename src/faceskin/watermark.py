"""Invisible watermark that says "faceskin altered this" and survives re-encoding.

Why not an off-the-shelf DWT-DCT mark (``invisible-watermark``)? That package
pulls ``opencv-python`` and ``torch``, fixes its block grid to the image size
(so a 0.5x resize or a crop to the face loses it), and spreads one payload over
the whole frame (so a mark confined to faces cannot be found without knowing
where the faces were). ``bench/watermark_robustness.py`` measures it next to
this scheme.

The scheme (all parameters below are part of the format: changing one is a new
``SCHEME_VERSION``):

* **Cells.** The luma is cut into 8 px square cells anchored at the image
  origin. Each cell's *mean* carries one bit by quantisation index
  modulation: the mean is moved to the nearest point of the lattice
  ``dither + bit*STEP/2 + k*STEP``. A cell mean is the DC term that JPEG,
  H.264 and downscaling keep best, and QIM is blind to the host, so the
  picture itself adds no noise to the decision.
* **Where.** Each skinned face box, grown about its centre to at least
  ``MIN_REGION_PX`` (two tiles) so that small faces still hold whole
  payloads in robust 8 px cells; or, with ``whole_frame``, every cell.
* **Smooth change.** The per-cell change is spread by bilinear interpolation
  between cell centres (a few fixed-point passes keep each cell mean on
  target), so there are no block edges to see; the change is grey (equal in
  R, G, B), changing luma only.
* **Tiles.** 8x8 cells form a tile holding each of 64 *slots* once: 16 sync
  slots with a fixed bit pattern and 48 code bits (24-bit run id, CRC-24 over
  the tool tag + scheme version + run id). The cell-to-slot map and the
  dither come from a fixed key, so the mark's presence and its CRC are
  specific to faceskin ("tool id" = key + tag inside the CRC).
* **Decoding.** Soft values ``cos(2*pi*(mean - dither)/STEP)`` are summed
  per slot. Where the mark lies is found from the sync slots alone
  (sliding 8x8-cell windows whose sync correlation is high), so the face boxes
  are not needed; the code bits are then read from those cells and from the
  whole frame, each at a list of cell sizes (the scale search: a 0.5x resize
  turns 8 px cells into 4 px ones). Up to ``CHASE_BITS`` least reliable bits
  are flipped to find a CRC match (Chase decoding).
* **False positives.** A result is "present" only if the CRC-24 matches
  and the code bits are more reliable than unmarked content usually gives
  (``MIN_RELIABILITY``; the localisation uses only sync slots, so it biases
  neither test). One decode makes at most 6 cell sizes x 2 regions x 8 Chase
  patterns = 96 CRC trials, so a random match has probability <= 96 / 2**24
  (about 6e-6) per file; ``bench/watermark_robustness.py --false-positives``
  counts false hits on real photos and video. (Pooling frames of a static
  video repeats the same evidence and inflates the reliability score, so
  there the CRC alone is the guard.)

Limits: a marked region must hold at least one tile (64 px at the embedding
scale) to carry a payload alone; several faces and several video frames are
pooled. Rotation, crops that are not multiples of the cell size, and resizes
far from the searched factors break the grid. The mark says "faceskin, run
<id>" and nothing else; it is not signed (anyone with this code can write it),
which is why the signed C2PA manifest is the primary label.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import cv2
import numpy as np

#: Bumped whenever a constant below changes meaning; part of the CRC input.
SCHEME_VERSION = 1
TOOL_TAG = b"faceskin"
#: QIM step in luma levels. Larger survives more compression, costs more PSNR.
STEP = 12.0
#: Cell side in pixels.
CELL = 8
#: Smallest side of the area marked around one face (two tiles).
MIN_REGION_PX = 128
TILE = 8  # cells per tile side
RUN_ID_BITS = 24
CRC_BITS = 24
SYNC_SLOTS = 16
CODE_BITS = RUN_ID_BITS + CRC_BITS
SLOTS = SYNC_SLOTS + CODE_BITS  # == TILE * TILE
#: Period of the dither pattern in cells (a multiple of TILE).
DITHER_PERIOD = 32
#: Sliding-window sync z-score above which cells count as marked.
LOCAL_Z = 3.0
#: Mean normalised |soft sum| of the code bits needed to call a mark present;
#: a single unmarked image gives about 0.8-1.0 (mean of a half-normal).
MIN_RELIABILITY = 1.6
CHASE_BITS = 3
#: Cell sizes (pixels of the image being decoded) the decoder tries: the
#: 8 px cells after a resize by 1, 0.75, 2/3, 0.5, 1.5 and 2.
DECODE_CELL_SIZES = (8.0, 6.0, 16 / 3, 4.0, 12.0, 16.0)
_EMBED_PASSES = 4
_GROW = 3
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

def _key_stream(label: bytes, count: int) -> np.ndarray:
    """``count`` uint32 values from SHA-256 in counter mode.

    The slot map, sync bits and dither are part of the mark's format, so they
    come from a hash rather than NumPy's generators, whose streams may change
    between NumPy versions and would make old marks unreadable.
    """
    out = bytearray()
    block = 0
    while len(out) < 4 * count:
        out += hashlib.sha256(TOOL_TAG + b"/wm/v1/" + label + block.to_bytes(4, "big")).digest()
        block += 1
    return np.frombuffer(bytes(out[: 4 * count]), dtype=">u4").astype(np.uint64)


#: slot index of each cell within a tile (TILE x TILE), a keyed permutation.
_SLOT_OF_CELL = np.argsort(_key_stream(b"slots", SLOTS), kind="stable").reshape(TILE, TILE)
_SYNC_BITS = (np.argsort(_key_stream(b"sync", SYNC_SLOTS), kind="stable") % 2).astype(np.uint8)
_DITHER = (_key_stream(b"dither", DITHER_PERIOD * DITHER_PERIOD).astype(np.float64) / 2.0**32 * STEP).astype(
    np.float32
).reshape(DITHER_PERIOD, DITHER_PERIOD)


class WatermarkError(ValueError):
    """A payload or argument the watermark cannot carry (a bug in the caller, not the user's)."""


def _crc24(data: bytes) -> int:
    """OpenPGP CRC-24 (RFC 4880): 24 check bits make a random match a 1-in-16.7M event."""
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def _check_value(run_id: int) -> int:
    return _crc24(TOOL_TAG + bytes([SCHEME_VERSION]) + run_id.to_bytes(3, "big"))


def code_bits(run_id: int) -> np.ndarray:
    """The 48 code bits (run id then CRC, most significant first) for ``run_id``."""
    if not 0 <= run_id < (1 << RUN_ID_BITS):
        raise WatermarkError(f"run id must be in [0, 2**{RUN_ID_BITS}), got {run_id}")
    word = (run_id << CRC_BITS) | _check_value(run_id)
    return np.array([(word >> (CODE_BITS - 1 - i)) & 1 for i in range(CODE_BITS)], dtype=np.uint8)


def _run_id_if_valid(bits: np.ndarray) -> int | None:
    word = 0
    for b in bits:
        word = (word << 1) | int(b)
    run_id, crc = word >> CRC_BITS, word & ((1 << CRC_BITS) - 1)
    return run_id if _check_value(run_id) == crc else None


def new_run_id() -> int:
    """A random run id: links outputs of one run without saying anything about its inputs."""
    return int.from_bytes(np.random.default_rng().bytes(3), "big")


def _slot_bits(run_id: int) -> np.ndarray:
    return np.concatenate([_SYNC_BITS, code_bits(run_id)])


def _grid_maps(rows: int, cols: int, origin: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray]:
    """Slot index and dither of the rows x cols cells starting at cell ``origin`` of the image grid."""
    r0, c0 = origin
    r = (np.arange(r0, r0 + rows) % DITHER_PERIOD)[:, None]
    c = (np.arange(c0, c0 + cols) % DITHER_PERIOD)[None, :]
    return _SLOT_OF_CELL[r % TILE, c % TILE], _DITHER[r, c]


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ _LUMA


def _cell_means(plane: np.ndarray, cell: int) -> np.ndarray:
    rows, cols = plane.shape[0] // cell, plane.shape[1] // cell
    return plane[: rows * cell, : cols * cell].reshape(rows, cell, cols, cell).mean(axis=(1, 3))


def _spread(change: np.ndarray, cell: int, shape: tuple[int, int]) -> np.ndarray:
    """Per-cell change -> smooth per-pixel field (bilinear between cell centres)."""
    rows, cols = change.shape
    smooth = cv2.resize(change, (cols * cell, rows * cell), interpolation=cv2.INTER_LINEAR)
    out = np.zeros(shape, dtype=np.float32)
    out[: rows * cell, : cols * cell] = smooth
    return out


def _mark_cells(rgb_f: np.ndarray, mask: np.ndarray, cell: int, bits: np.ndarray,
                origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """QIM-embed into the cells where ``mask`` is true; ``rgb_f`` is float RGB covering exactly the
    mask's cells (plus any remainder pixels), whose first cell is cell ``origin`` of the full grid."""
    rows, cols = mask.shape
    slot, dither = _grid_maps(rows, cols, origin)
    want_bit = bits[slot]
    luma = rgb_f @ _LUMA
    means = _cell_means(luma, cell)
    offset = dither + want_bit * (STEP / 2)
    target = offset + np.round((means - offset) / STEP) * STEP
    # Keep targets reachable: a lattice point outside [2, 253] cannot be hit
    # through clipping, so take the neighbouring one inside the range.
    target = np.where(target > 253.0, target - STEP, target)
    target = np.where(target < 2.0, target + STEP, target)
    field = np.zeros((rows, cols), dtype=np.float32)
    h, w = luma.shape
    for _ in range(_EMBED_PASSES):
        out = np.clip(rgb_f + _spread(field, cell, (h, w))[..., None], 0.0, 255.0)
        error = np.where(mask, target - _cell_means(out @ _LUMA, cell), 0.0).astype(np.float32)
        field += error
    return np.clip(rgb_f + _spread(field, cell, (h, w))[..., None], 0.0, 255.0)


def mark_region(box: Sequence[float], shape: tuple[int, ...]) -> tuple[float, float, float, float]:
    """The area marked for one face: its box, grown about its centre to at least ``MIN_REGION_PX``.

    A payload needs a whole tile (64 px); small faces (a crowd, a wide shot)
    therefore carry the mark in the pixels around them too, which keeps the
    robust 8 px cells instead of shrinking cells until compression erases them.
    """
    h, w = shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half_w = max(x1 - x0, MIN_REGION_PX) / 2
    half_h = max(y1 - y0, MIN_REGION_PX) / 2
    return max(0.0, cx - half_w), max(0.0, cy - half_h), min(float(w), cx + half_w), min(float(h), cy + half_h)


def _box_mask(rows: int, cols: int, cell: float, box: Sequence[float]) -> np.ndarray:
    """Cells whose centre lies inside ``box`` (x0, y0, x1, y1 in pixels)."""
    centres_y = (np.arange(rows) + 0.5) * cell
    centres_x = (np.arange(cols) + 0.5) * cell
    x0, y0, x1, y1 = box
    return ((centres_y >= y0) & (centres_y < y1))[:, None] & ((centres_x >= x0) & (centres_x < x1))[None, :]


def embed(
    rgb: np.ndarray,
    run_id: int,
    boxes: Iterable[Sequence[float]] = (),
    *,
    whole_frame: bool = False,
) -> np.ndarray:
    """Return a copy of ``rgb`` marked around each face box (x0, y0, x1, y1), or everywhere.

    Boxes are the skinned face regions in pixels of ``rgb``; each is grown to
    at least ``MIN_REGION_PX`` (see :func:`mark_region`). ``whole_frame``
    marks every cell instead. With neither, the image is returned unchanged
    (a copy), since there is nothing that needs labelling.
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise WatermarkError("embed expects an RGB uint8 image (H, W, 3)")
    h, w = rgb.shape[:2]
    rows, cols = h // CELL, w // CELL
    if whole_frame:
        mask = np.ones((rows, cols), dtype=bool)
    else:
        mask = np.zeros((rows, cols), dtype=bool)
        for box in boxes:
            mask |= _box_mask(rows, cols, CELL, mark_region(box, rgb.shape))
    out = rgb.copy()
    if not mask.any():
        return out
    # Work on the cells around the marked ones only (one spare cell each side
    # takes the smooth spread's overhang): a face in a 4K frame costs what
    # the face costs.
    hit_rows, hit_cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    r0, r1 = max(0, hit_rows[0] - 1), min(rows, hit_rows[-1] + 2)
    c0, c1 = max(0, hit_cols[0] - 1), min(cols, hit_cols[-1] + 2)
    y0, y1, x0, x1 = r0 * CELL, r1 * CELL, c0 * CELL, c1 * CELL
    marked = _mark_cells(rgb[y0:y1, x0:x1].astype(np.float32), mask[r0:r1, c0:c1], CELL, _slot_bits(run_id), (r0, c0))
    out[y0:y1, x0:x1] = np.round(marked).astype(np.uint8)
    return out


@dataclass
class SlotEvidence:
    """Per-slot soft sums pooled over cells (and over frames, for video)."""

    sums: np.ndarray = field(default_factory=lambda: np.zeros(SLOTS))
    counts: np.ndarray = field(default_factory=lambda: np.zeros(SLOTS))

    def add(self, other: "SlotEvidence") -> None:
        self.sums += other.sums
        self.counts += other.counts


@dataclass(frozen=True)
class WatermarkResult:
    """What :func:`decode` found; ``present`` is the only field to act on."""

    present: bool
    run_id: int | None
    reliability: float  # mean normalised |soft sum| of the code bits (unmarked ~0.8)
    cell_size: float | None  # effective cell size (px) of the winning hypothesis
    region: str | None  # "located" (sync-found cells) or "frame"
    code_bits: tuple[int, ...] | None  # hard decisions before error correction

    def to_dict(self) -> dict:
        return {
            "present": self.present,
            "run_id": None if self.run_id is None else f"{self.run_id:06x}",
            "reliability": round(self.reliability, 3),
            "cell_size": None if self.cell_size is None else round(self.cell_size, 3),
            "region": self.region,
        }


def _soft_cells(luma: np.ndarray, cell_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Soft value and slot of every cell, for cells of ``cell_size`` received pixels."""
    h, w = luma.shape
    rows, cols = int(h / cell_size), int(w / cell_size)
    if rows < 1 or cols < 1:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.int64)
    if float(cell_size).is_integer():
        c = int(cell_size)
        means = _cell_means(luma, c)
    else:
        # INTER_AREA averages each output pixel's exact footprint: the means
        # of fractional cells, the same grid the embedder used before rescaling.
        crop = luma[: int(rows * cell_size), : int(cols * cell_size)]
        means = cv2.resize(crop, (cols, rows), interpolation=cv2.INTER_AREA)
    slot, dither = _grid_maps(rows, cols)
    soft = np.cos((2 * np.pi / STEP) * (means - dither)).astype(np.float32)
    return soft, slot


def _sync_sign() -> np.ndarray:
    """+1/-1 expected soft sign per slot for sync slots, 0 for code slots."""
    sign = np.zeros(SLOTS, dtype=np.float32)
    sign[:SYNC_SLOTS] = 1.0 - 2.0 * _SYNC_BITS
    return sign


def _located_mask(soft: np.ndarray, slot: np.ndarray) -> np.ndarray:
    """Cells inside some TILE x TILE window whose sync slots correlate strongly."""
    sync = soft * _sync_sign()[slot]
    window = cv2.boxFilter(sync, -1, (TILE, TILE), normalize=False, borderType=cv2.BORDER_CONSTANT)
    count = cv2.boxFilter((slot < SYNC_SLOTS).astype(np.float32), -1, (TILE, TILE), normalize=False,
                          borderType=cv2.BORDER_CONSTANT)
    z = window / np.sqrt(np.maximum(count, 1.0) / 2.0)
    hot = (z > LOCAL_Z).astype(np.uint8)
    # Grow window centres by a few cells, not by a whole window: a window
    # half over a face is already hot, so a full-window growth would pull
    # in a ring of unmarked cells that dilutes every slot.
    return cv2.dilate(hot, np.ones((_GROW, _GROW), np.uint8)).astype(bool)


def _evidence(soft: np.ndarray, slot: np.ndarray, mask: np.ndarray | None) -> SlotEvidence:
    if mask is not None:
        soft, slot = soft[mask], slot[mask]
    return SlotEvidence(
        sums=np.bincount(slot.ravel(), weights=soft.ravel(), minlength=SLOTS).astype(np.float64),
        counts=np.bincount(slot.ravel(), minlength=SLOTS).astype(np.float64),
    )


def hypotheses(rgb: np.ndarray, cell_sizes: Sequence[float] = DECODE_CELL_SIZES) -> dict[tuple[float, str], SlotEvidence]:
    """Slot evidence of one image for every (cell size, region) hypothesis the decoder tries.

    Exposed so that video verification can pool evidence over frames before
    deciding (see :func:`decide`).
    """
    luma = _luma(rgb)
    out: dict[tuple[float, str], SlotEvidence] = {}
    for cell_size in cell_sizes:
        soft, slot = _soft_cells(luma, cell_size)
        if soft.size == 0:
            continue
        out[(cell_size, "frame")] = _evidence(soft, slot, None)
        located = _located_mask(soft, slot)
        if located.any():
            out[(cell_size, "located")] = _evidence(soft, slot, located)
    return out


def _read_code(evidence: SlotEvidence) -> tuple[int | None, float, np.ndarray]:
    sums, counts = evidence.sums[SYNC_SLOTS:], evidence.counts[SYNC_SLOTS:]
    if np.any(counts == 0):
        return None, 0.0, (sums < 0).astype(np.uint8)
    normalised = sums / np.sqrt(counts / 2.0)
    reliability = float(np.mean(np.abs(normalised)))
    hard = (sums < 0).astype(np.uint8)
    weakest = np.argsort(np.abs(normalised))[:CHASE_BITS]
    for pattern in range(1 << CHASE_BITS):
        trial = hard.copy()
        for k in range(CHASE_BITS):
            if pattern >> k & 1:
                trial[weakest[k]] ^= 1
        run_id = _run_id_if_valid(trial)
        if run_id is not None:
            return run_id, reliability, hard
    return None, reliability, hard


def decide(evidence: dict[tuple[float, str], SlotEvidence]) -> WatermarkResult:
    """Best hypothesis: a CRC match with reliability over ``MIN_RELIABILITY``, else absent."""
    best: WatermarkResult | None = None
    for (cell_size, region), ev in evidence.items():
        run_id, reliability, hard = _read_code(ev)
        candidate = WatermarkResult(
            present=run_id is not None and reliability >= MIN_RELIABILITY,
            run_id=run_id if reliability >= MIN_RELIABILITY else None,
            reliability=reliability,
            cell_size=cell_size,
            region=region,
            code_bits=tuple(int(b) for b in hard),
        )
        if best is None or (candidate.present, candidate.reliability) > (best.present, best.reliability):
            best = candidate
    if best is None:
        return WatermarkResult(False, None, 0.0, None, None, None)
    if not best.present:
        return WatermarkResult(False, None, best.reliability, None, None, None)
    return best


def decode(images: np.ndarray | Sequence[np.ndarray]) -> WatermarkResult:
    """Look for the mark in one RGB image, or pool the evidence of several frames of one video."""
    frames = [images] if isinstance(images, np.ndarray) else list(images)
    pooled: dict[tuple[float, str], SlotEvidence] = {}
    for frame in frames:
        for key, ev in hypotheses(frame).items():
            pooled.setdefault(key, SlotEvidence()).add(ev)
    return decide(pooled)


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB between two uint8 images, optionally over a pixel mask."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    if mask is not None:
        diff = diff[mask]
    mse = float(np.mean(diff**2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)
