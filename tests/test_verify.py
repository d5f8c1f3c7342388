"""`faceskin verify` verdicts: labelled, tampered, other label, watermark only, none."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from faceskin import watermark as wm
from faceskin.errors import InputError
from faceskin.keys import load_signing_material, make_signing_chain
from faceskin.label import Alteration, Labeller
from faceskin.verify import LABELLED, NONE, OTHER_LABEL, TAMPERED, WATERMARK_ONLY, describe, verify_file

RUN_ID = 0x00F00D


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    return load_signing_material(keys_dir=make_signing_chain(tmp_path_factory.mktemp("keys")))


@pytest.fixture(scope="module")
def face_box(astronaut, detector):
    return tuple(float(v) for v in detector.detect(astronaut)[0].box)


@pytest.fixture()
def labelled_jpeg(tmp_path, astronaut, face_box, material) -> Path:
    out = tmp_path / "photo.skinned.jpg"
    Image.fromarray(wm.embed(astronaut, RUN_ID, [face_box])).save(out, quality=90)
    Labeller(material).label_file(out, Alteration(1, ("s012",), watermark_run_id=RUN_ID, watermark_scope="faces"))
    return out


def test_labelled_output_verifies(labelled_jpeg, material):
    result = verify_file(labelled_jpeg)
    assert result.verdict == LABELLED
    assert result.watermark.present and result.watermark_matches_manifest is True
    assert "1 face(s) replaced" in result.message and "not in a trust list" in result.message
    trusted = verify_file(labelled_jpeg, trust_anchor_pem=material.trust_anchor_pem)
    assert trusted.verdict == LABELLED and "signer trusted" in trusted.message
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["verdict"] == "labelled" and payload["watermark"]["run_id"] == f"{RUN_ID:06x}"
    assert describe(result)[0].startswith(f"{labelled_jpeg}: LABELLED")


def test_byte_flipped_output_is_tampered(labelled_jpeg):
    data = bytearray(labelled_jpeg.read_bytes())
    data[len(data) * 3 // 4] ^= 0x01
    labelled_jpeg.write_bytes(bytes(data))
    result = verify_file(labelled_jpeg)
    assert result.verdict == TAMPERED
    assert "manifest invalid or tampered" in result.message and result.manifest.tampered


def test_stripped_metadata_leaves_the_watermark(labelled_jpeg, tmp_path):
    """What a platform does on upload: decode, downscale, re-encode without metadata."""
    uploaded = tmp_path / "uploaded.jpg"
    image = Image.open(labelled_jpeg)
    image.resize((image.width // 2, image.height // 2), Image.BILINEAR).save(uploaded, quality=75)
    result = verify_file(uploaded)
    assert result.manifest.state == "absent"
    assert result.verdict == WATERMARK_ONLY and f"{RUN_ID:06x}" in result.message


def test_untouched_photo_has_no_label(tmp_path, astronaut):
    plain = tmp_path / "plain.png"
    Image.fromarray(astronaut).save(plain)
    result = verify_file(plain)
    assert result.verdict == NONE and not result.watermark.present


def test_other_tools_credentials_are_not_taken_for_faceskin(tmp_path, astronaut, material):
    import c2pa

    from faceskin.keys import signing_algorithm
    from faceskin.label import _context

    src, out = tmp_path / "in.png", tmp_path / "other.png"
    Image.fromarray(astronaut).save(src)
    manifest = {
        "claim_generator_info": [{"name": "some editor", "version": "1"}],
        "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [
            {"action": "c2pa.created", "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"}
        ]}}],
    }
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(
        alg=signing_algorithm(material).encode(), sign_cert=material.chain_pem,
        private_key=material.key_pem, ta_url=None))
    with c2pa.Builder(manifest, _context()) as builder:
        builder.sign_file(src, out, signer)
    result = verify_file(out)
    assert result.verdict == OTHER_LABEL and "some editor" in result.message
    from faceskin.imagefile import metadata_leaks

    assert metadata_leaks(out) == ["other blocks: caBX"]  # only faceskin's own manifest is taken as clean


def test_labelled_video_verifies_and_tampering_shows(tmp_path, astronaut, face_box, material):
    out = tmp_path / "clip.skinned.mp4"
    frame = wm.embed(astronaut, RUN_ID, [face_box])
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = frame.shape[1], frame.shape[0], "yuv420p"
        stream.options = {"crf": "23"}
        for _ in range(10):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    Labeller(material).label_file(out, Alteration(1, ("s012",), watermark_run_id=RUN_ID))
    result = verify_file(out)
    assert result.verdict == LABELLED and result.watermark.present

    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0x01
    out.write_bytes(bytes(data))
    assert verify_file(out).verdict == TAMPERED


def test_missing_file_and_folder_are_user_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        verify_file(tmp_path / "nope.jpg")
    with pytest.raises(InputError, match="folder"):
        verify_file(tmp_path)


def _write_clip(path: Path, frames: list[np.ndarray], crf: int = 23) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.options = {"crf": str(crf), "preset": "ultrafast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_video_watermark_is_found_where_the_faces_appear_late(tmp_path, astronaut, face_box):
    """Faces only in the last fifth of a clip: the frames checked are spread over all of it."""
    import cv2

    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    box = [v / 2 for v in face_box]
    rng = np.random.default_rng(0)
    plain = [np.clip(small.astype(int) + rng.integers(-3, 4, small.shape), 0, 255).astype(np.uint8) for _ in range(150)]
    marked = plain[:120] + [wm.embed(f, RUN_ID, [box]) for f in plain[120:]]
    result = verify_file(_write_clip(tmp_path / "late.mp4", marked))
    assert result.verdict == WATERMARK_ONLY and result.watermark.run_id == RUN_ID
    frames = result.watermark_frames
    assert frames["marked"] >= 2 and frames["checked"] <= 48
    assert f"{frames['marked']} of {frames['checked']} checked frames" in describe(result)[-1]
    unmarked = verify_file(_write_clip(tmp_path / "plain.mp4", plain))
    assert unmarked.verdict == NONE and not unmarked.watermark.present
    assert unmarked.watermark_frames["checked"] == 38  # every ceil(150 / 48) = 4th frame, over the whole clip


def test_finisher_claims_a_watermark_only_where_it_put_one(tmp_path, astronaut, face_box):
    from faceskin.keys import CHAIN_FILE, KEY_FILE
    from faceskin.label import read_manifest
    from faceskin.publish import Finisher, LabelOptions

    keys = make_signing_chain(tmp_path / "keys")
    finisher = Finisher(LabelOptions(sign_cert=str(keys / CHAIN_FILE), sign_key=str(keys / KEY_FILE)))
    for name, boxes in (("face.png", [face_box]), ("wall.png", [])):
        staged, final = tmp_path / f"staged-{name}", tmp_path / name
        Image.fromarray(finisher.mark(astronaut, boxes)).save(staged)
        finisher.finish(staged, final, [])
    claimed = (read_manifest(tmp_path / "face.png").alteration or {}).get("watermark")
    assert claimed and claimed["run_id"] == f"{finisher.run_id:06x}"
    assert "watermark" not in (read_manifest(tmp_path / "wall.png").alteration or {})
    assert verify_file(tmp_path / "face.png").watermark_matches_manifest is True
