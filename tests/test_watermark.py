"""Invisible watermark: found blind after JPEG q75 and 0.5x resize, never found where it was not put."""

from __future__ import annotations

import io

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from faceskin import watermark as wm

RUN_ID = 0x3C5A01


def jpeg(rgb: np.ndarray, quality: int = 75) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def half(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (w // 2, h // 2), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def face_box(astronaut, detector):
    faces = detector.detect(astronaut)
    assert faces, "the astronaut's face must be detected"
    return tuple(float(v) for v in faces[0].box)


@pytest.fixture(scope="module")
def marked(astronaut, face_box):
    return wm.embed(astronaut, RUN_ID, [face_box])


@pytest.mark.parametrize("attack", [lambda x: x, jpeg, half, lambda x: jpeg(half(x))],
                         ids=["none", "jpeg75", "resize0.5", "resize0.5+jpeg75"])
def test_face_mark_is_found_blind_after_attacks(marked, attack):
    result = wm.decode(attack(marked))
    assert result.present
    assert result.run_id == RUN_ID


def test_unmarked_photo_has_no_mark(astronaut):
    for image in (astronaut, jpeg(astronaut), half(astronaut)):
        result = wm.decode(image)
        assert not result.present and result.run_id is None


def test_mark_stays_near_the_face_and_costs_little(astronaut, marked, face_box):
    region = wm.mark_region(face_box, astronaut.shape)
    x0, y0, x1, y1 = (int(round(v)) for v in region)
    inside = np.zeros(astronaut.shape[:2], dtype=bool)
    inside[y0:y1, x0:x1] = True
    assert wm.psnr(astronaut, marked, inside) > 34.0
    # The smooth spread reaches at most one cell past the marked cells.
    far = np.ones_like(inside)
    far[max(0, y0 - 2 * wm.CELL) : y1 + 2 * wm.CELL, max(0, x0 - 2 * wm.CELL) : x1 + 2 * wm.CELL] = False
    assert np.array_equal(astronaut[far], marked[far])
    # Grey change: luma moves, colour differences stay within rounding.
    diff = marked.astype(int) - astronaut.astype(int)
    unclipped = (astronaut > 8).all(axis=2) & (astronaut < 247).all(axis=2)
    assert np.abs(diff[..., 0] - diff[..., 1])[unclipped].max() <= 1


def test_small_face_is_marked_in_a_larger_region():
    region = wm.mark_region((100, 100, 120, 124), (480, 640, 3))
    assert region[2] - region[0] == wm.MIN_REGION_PX and region[3] - region[1] == wm.MIN_REGION_PX
    assert wm.mark_region((0, 0, 20, 20), (480, 640, 3))[:2] == (0.0, 0.0)  # clipped to the frame


def textured_frame(seed: int, size=(256, 320)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(size[0] // 16, size[1] // 16, 3), dtype=np.uint8)
    smooth = cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    return np.clip(smooth.astype(int) + rng.integers(-6, 7, size=smooth.shape), 0, 255).astype(np.uint8)


def test_whole_frame_mark_survives_h264_crf28():
    frame = textured_frame(1)
    marked = wm.embed(frame, RUN_ID, whole_frame=True)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = frame.shape[1], frame.shape[0], "yuv420p"
        stream.options = {"crf": "28"}
        for packet in stream.encode(av.VideoFrame.from_ndarray(marked, format="rgb24")):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    buf.seek(0)
    with av.open(buf) as inp:
        decoded = next(inp.decode(video=0)).to_ndarray(format="rgb24")
    result = wm.decode(decoded)
    assert result.present and result.run_id == RUN_ID
    assert not wm.decode(frame).present


def test_frames_too_noisy_alone_are_read_when_pooled():
    """Per-cell noise (sigma 2 levels, like heavy compression) defeats single frames, not six together."""
    rng = np.random.default_rng(0)
    noisy = []
    for seed in range(6):
        frame = wm.embed(textured_frame(seed), RUN_ID, [(100, 60, 180, 160)]).astype(float)
        cell_noise = rng.normal(0.0, 2.0, (frame.shape[0] // wm.CELL, frame.shape[1] // wm.CELL))
        frame += np.kron(cell_noise, np.ones((wm.CELL, wm.CELL)))[..., None]
        noisy.append(np.clip(np.round(frame), 0, 255).astype(np.uint8))
    assert sum(wm.decode(f).present for f in noisy) < len(noisy)
    pooled = wm.decode(noisy)
    assert pooled.present and pooled.run_id == RUN_ID


def test_nothing_to_mark_returns_an_identical_copy(astronaut):
    out = wm.embed(astronaut, RUN_ID)
    assert out is not astronaut and np.array_equal(out, astronaut)


def test_payload_round_trip_and_range():
    for run_id in (0, 1, RUN_ID, (1 << wm.RUN_ID_BITS) - 1):
        assert wm._run_id_if_valid(wm.code_bits(run_id)) == run_id
    bits = wm.code_bits(RUN_ID)
    bits[5] ^= 1
    assert wm._run_id_if_valid(bits) is None
    with pytest.raises(wm.WatermarkError):
        wm.code_bits(1 << wm.RUN_ID_BITS)
    assert 0 <= wm.new_run_id() < (1 << wm.RUN_ID_BITS)


def test_rejects_non_rgb_uint8():
    with pytest.raises(wm.WatermarkError):
        wm.embed(np.zeros((64, 64), np.uint8), RUN_ID, whole_frame=True)


def test_mark_format_is_pinned():
    """Slot map, sync bits, dither and CRC define the format: changing them orphans every published mark.

    If this fails on purpose, bump SCHEME_VERSION and keep a decoder for the old one.
    """
    import hashlib

    layout = (wm._SLOT_OF_CELL.astype("<i8").tobytes() + wm._SYNC_BITS.tobytes()
              + wm._DITHER.astype("<f4").tobytes())
    assert hashlib.sha256(layout).hexdigest()[:16] == "7ddc27211dc58071"
    assert "".join(map(str, wm.code_bits(RUN_ID))) == "001111000101101000000001011001100010010100100000"
