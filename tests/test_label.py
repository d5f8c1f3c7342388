"""C2PA labelling: every format signs and validates, tampering shows, nothing of the source leaks."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from faceskin.errors import FaceskinError
from faceskin.keys import (
    CHAIN_FILE,
    KEY_FILE,
    ROOT_FILE,
    SigningMaterialError,
    load_signing_material,
    make_signing_chain,
)
from faceskin.label import (
    ASSERTION_LABEL,
    DIGITAL_SOURCE_TYPE,
    Alteration,
    LabelError,
    Labeller,
    build_manifest,
    read_manifest,
)

ALTERATION = Alteration(faces_replaced=2, skin_ids=("s015", "s012"), faces_obscured=1,
                        watermark_run_id=0xABC123, watermark_scope="faces")


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory) -> Path:
    return make_signing_chain(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def material(keys_dir):
    return load_signing_material(keys_dir=keys_dir)


@pytest.fixture(scope="session")
def labeller(material):
    return Labeller(material)


def write_image(path: Path, rgb: np.ndarray) -> Path:
    Image.fromarray(rgb).save(path)
    return path


def write_video(path: Path, rgb: np.ndarray, frames: int = 6) -> Path:
    h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.roll(rgb[:h, :w], i, axis=1)), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="session")
def small_rgb(astronaut) -> np.ndarray:
    return np.ascontiguousarray(astronaut[::2, ::2])


def make_output(tmp_path: Path, suffix: str, rgb: np.ndarray) -> Path:
    path = tmp_path / f"out{suffix}"
    return write_video(path, rgb) if suffix in (".mp4", ".mov") else write_image(path, rgb)


def flip_byte_outside_manifest(path: Path) -> None:
    """Flip one bit in the content (far from the manifest, which c2pa puts near the start or end)."""
    data = bytearray(path.read_bytes())
    start = data.find(b"c2pa")
    assert start >= 0
    pos = len(data) * 3 // 4 if start < len(data) // 2 else len(data) // 4
    data[pos] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif", ".mp4", ".mov"])
def test_every_format_is_labelled_validates_and_detects_tampering(tmp_path, labeller, material, small_rgb, suffix):
    out = make_output(tmp_path, suffix, small_rgb)
    store = labeller.label_file(out, ALTERATION)

    report = read_manifest(out)
    assert report.state == "valid" and not report.failures
    assert report.by_faceskin
    assert report.actions == ["c2pa.created", "c2pa.edited"]
    assert set(report.digital_source_types) == {DIGITAL_SOURCE_TYPE}
    assert report.alteration["faces_replaced"] == 2
    assert report.alteration["skin_ids"] == ["s012", "s015"]
    assert report.alteration["watermark"]["run_id"] == "abc123"
    assert not report.has_ingredients and not report.has_thumbnail
    # With the root of `keys init` as trust anchor the signer is trusted too.
    assert read_manifest(out, material.trust_anchor_pem).state == "trusted"

    # The manifest carries no picture: no JPEG/PNG/WebP data, no thumbnail or ingredient boxes.
    for marker in (b"\xff\xd8\xff", b"\x89PNG", b"WEBPVP8", b"c2pa.thumbnail", b"ingredient", b"out" + suffix.encode()):
        assert marker not in store, marker
    assert len(store) < 16_000

    flip_byte_outside_manifest(out)
    tampered = read_manifest(out)
    assert tampered.state == "invalid" and tampered.tampered
    assert any(code.endswith("Hash.mismatch") for code in tampered.failures)


def test_output_holds_one_picture_only(tmp_path, labeller, small_rgb):
    """A thumbnail or ingredient would show up as a second JPEG/PNG image inside the file."""
    jpg = make_output(tmp_path, ".jpg", small_rgb)
    png = make_output(tmp_path, ".png", small_rgb)
    labeller.label_file(jpg, ALTERATION)
    labeller.label_file(png, ALTERATION)
    assert jpg.read_bytes().count(b"\xff\xd8\xff") == 1
    assert png.read_bytes().count(b"\x89PNG\r\n\x1a\n") == 1


def test_damaged_manifest_is_unreadable_and_counts_as_tampered(tmp_path, labeller, small_rgb):
    out = make_output(tmp_path, ".jpg", small_rgb)
    labeller.label_file(out, ALTERATION)
    data = bytearray(out.read_bytes())
    data[data.find(b"jumb") + 40] ^= 0xFF
    out.write_bytes(bytes(data))
    report = read_manifest(out)
    assert report.state in ("invalid", "unreadable") and report.tampered


def test_label_into_new_file_leaves_source_untouched_and_no_temp(tmp_path, labeller, small_rgb):
    src = make_output(tmp_path, ".png", small_rgb)
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    dest = tmp_path / "labelled.png"
    labeller.label_file(src, ALTERATION, dest)
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before
    assert read_manifest(src).state == "absent"
    assert read_manifest(dest).by_faceskin
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labelled.png", "out.png"]


def test_failed_signing_leaves_nothing_behind(tmp_path, labeller):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(LabelError, match="broken.jpg"):
        labeller.label_file(bad, ALTERATION)
    assert bad.read_bytes() == b"not a jpeg at all"
    assert [p.name for p in tmp_path.iterdir()] == ["broken.jpg"]


def test_unsupported_container_is_an_error(tmp_path, labeller):
    mkv = tmp_path / "out.mkv"
    mkv.write_bytes(b"\x1a\x45\xdf\xa3")
    with pytest.raises(LabelError, match="--no-label"):
        labeller.label_file(mkv, ALTERATION)


def test_unlabelled_file_reports_absent(tmp_path, small_rgb):
    assert read_manifest(make_output(tmp_path, ".jpg", small_rgb)).state == "absent"


def test_manifest_definition_says_what_was_done_and_nothing_about_the_source():
    manifest = build_manifest(ALTERATION)
    assert "ingredients" not in manifest and "title" not in manifest and "thumbnail" not in manifest
    actions = manifest["assertions"][0]["data"]["actions"]
    edited = [a for a in actions if a["action"] == "c2pa.edited"][0]
    assert edited["digitalSourceType"] == DIGITAL_SOURCE_TYPE
    assert edited["softwareAgent"]["name"] == "faceskin"
    custom = [a for a in manifest["assertions"] if a["label"] == ASSERTION_LABEL][0]["data"]
    assert custom["faces_replaced"] == 2 and custom["faces_obscured"] == 1


def test_alteration_from_face_outcomes_counts_tracks_once():
    from faceskin.faces import FaceOutcome

    photo = [FaceOutcome([0, 0, 9, 9], 0.9, "skin", skin_id="s012"),
             FaceOutcome([20, 0, 29, 9], 0.9, "fallback", reason="profile")]
    alt = Alteration.from_outcomes(photo, watermark_run_id=7, watermark_scope="faces")
    assert (alt.faces_replaced, alt.faces_obscured, tuple(alt.skin_ids)) == (1, 1, ("s012",))
    video = [FaceOutcome([0, 0, 9, 9], 0.9, "skin", skin_id="s012", track_id=t % 2) for t in range(10)]
    video.append(FaceOutcome([0, 0, 9, 9], 0.9, "fallback", track_id=1))
    video.append(FaceOutcome([0, 0, 9, 9], 0.9, "fallback", track_id=5))
    alt = Alteration.from_outcomes(video)
    assert (alt.faces_replaced, alt.faces_obscured) == (2, 1)


def test_donor_file_names_stay_out_of_the_manifest():
    manifest = build_manifest(Alteration(4, ("s012", "syn042", "photo-jane_doe_2019", "c-3f9a2b1c")))
    custom = [a for a in manifest["assertions"] if a["label"] == ASSERTION_LABEL][0]["data"]
    assert custom["skin_ids"] == ["custom", "s012", "syn042"]  # the default set's ids are named, as built-ins
    assert "jane" not in str(manifest)


# ----------------------------------------------------------------------------- keys
def test_keys_init_writes_chain_key_and_root_with_private_permissions(tmp_path):
    folder = make_signing_chain(tmp_path / "k")
    assert (folder / KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert (folder / CHAIN_FILE).read_bytes().count(b"BEGIN CERTIFICATE") == 2  # leaf + intermediate
    assert (folder / ROOT_FILE).read_bytes().count(b"BEGIN CERTIFICATE") == 1
    with pytest.raises(SigningMaterialError, match="--force"):
        make_signing_chain(folder)
    make_signing_chain(folder, force=True)


def test_missing_signing_material_is_a_user_error(tmp_path):
    with pytest.raises(SigningMaterialError, match="keys init") as info:
        load_signing_material(keys_dir=tmp_path / "nowhere")
    assert isinstance(info.value, FaceskinError)
    with pytest.raises(SigningMaterialError, match="both"):
        load_signing_material(cert=tmp_path / "c.pem")


def self_signed_cert(key_path: Path, out: Path) -> Path:
    """What users typically make with one openssl command, and what C2PA refuses."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "me")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    out.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return out


def test_own_certificate_and_key_are_checked(tmp_path, keys_dir):
    other = make_signing_chain(tmp_path / "other")
    with pytest.raises(SigningMaterialError, match="does not match"):
        load_signing_material(keys_dir / CHAIN_FILE, other / KEY_FILE)
    with pytest.raises(SigningMaterialError, match="self-signed"):
        load_signing_material(self_signed_cert(keys_dir / KEY_FILE, tmp_path / "self.pem"), keys_dir / KEY_FILE)
    with pytest.raises(SigningMaterialError, match="not a PEM"):
        load_signing_material(keys_dir / CHAIN_FILE, keys_dir / ROOT_FILE)
    own = load_signing_material(keys_dir / CHAIN_FILE, keys_dir / KEY_FILE)
    assert own.trust_anchor_pem is None


def test_keys_dir_default_follows_environment(monkeypatch, tmp_path):
    from faceskin.keys import default_keys_dir

    monkeypatch.delenv("FACESKIN_KEYS_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_keys_dir() == tmp_path / "faceskin" / "keys"
    monkeypatch.setenv("FACESKIN_KEYS_DIR", str(tmp_path / "x"))
    assert default_keys_dir() == tmp_path / "x"


def test_local_trust_anchor_is_the_keys_init_root(keys_dir, tmp_path):
    from faceskin.keys import local_trust_anchor

    assert local_trust_anchor(keys_dir) == (keys_dir / ROOT_FILE).read_bytes()
    assert local_trust_anchor(tmp_path / "none") is None


def test_labelled_file_keeps_its_permissions(tmp_path, labeller, small_rgb):
    out = make_output(tmp_path, ".jpg", small_rgb)
    out.chmod(0o640)
    labeller.label_file(out, ALTERATION)
    assert out.stat().st_mode & 0o777 == 0o640
