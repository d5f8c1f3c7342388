"""The `faceskin` command on real faces: what a user types and sees."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from faceskin.cli import app
from faceskin.imagefile import metadata_leaks

runner = CliRunner()


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    from faceskin.keys import make_signing_chain

    folder = tmp_path_factory.mktemp("keys")
    make_signing_chain(folder, force=True)
    return folder


@pytest.fixture()
def env(keys, monkeypatch):
    monkeypatch.setenv("FACESKIN_KEYS_DIR", str(keys))


@pytest.fixture()
def gps_jpeg(tmp_path, astronaut):
    """The astronaut with GPS, camera make/model/serial and a comment in its metadata."""
    img = Image.fromarray(astronaut)
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0110] = "Model X"
    exif[0xA431] = "SERIAL123456"
    gps = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    exif[0x8825] = gps
    path = tmp_path / "with_gps.jpg"
    img.save(path, exif=exif.tobytes(), comment=b"taken at home")
    assert any("GPS" in leak or "gps" in leak.lower() for leak in metadata_leaks(path))
    return path


def run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def test_protect_example_is_skinned_labelled_and_clean(env, gps_jpeg, tmp_path):
    out = tmp_path / "out.jpg"
    report = tmp_path / "report.json"
    before = gps_jpeg.read_bytes()
    code, text = run("protect", gps_jpeg, "-o", out, "--report", report, "--seed", 1)
    assert code == 0, text
    assert "1 skinned" in text
    assert gps_jpeg.read_bytes() == before, "input untouched"
    assert metadata_leaks(out) == []  # faceskin's own C2PA label is not a leak
    faces = json.loads(report.read_text())["images"][0]["faces"]
    assert faces[0]["method"] == "skin" and faces[0]["skin_id"]
    assert faces[0]["strength"] in ("default", "stronger", "strongest")
    assert ("with the skin's own eyes" in text) == (faces[0]["strength"] == "strongest")
    code, text = run("verify", out)
    assert code == 0 and "labelled by faceskin" in text.lower()


def test_a_face_wearing_the_skins_own_eyes_is_said_so(env, astronaut, tmp_path, monkeypatch):
    # the strongest rung paints the skin's eyes: the person's gaze and blinks are gone, and the user is told
    import faceskin.protect as p

    monkeypatch.setattr(p, "strength_name", lambda settings: "strongest")
    src = tmp_path / "a.png"
    Image.fromarray(astronaut).save(src)
    code, text = run("protect", src, "-o", tmp_path / "o.png", "--report", tmp_path / "r.json", "--seed", 1)
    assert code == 0, text
    assert "1 with the skin's own eyes (gaze and blinks not the person's)" in text
    assert json.loads((tmp_path / "r.json").read_text())["images"][0]["faces"][0]["strength"] == "strongest"


def test_keep_metadata_keeps_exif(env, gps_jpeg, tmp_path):
    out = tmp_path / "kept.jpg"
    code, text = run("protect", gps_jpeg, "-o", out, "--keep-metadata", "--no-label")
    assert code == 0, text
    assert Image.open(out).getexif().get(0x010F) == "PhoneMaker"


def test_missing_signing_keys_is_an_error_not_a_silent_skip(tmp_path, monkeypatch, astronaut):
    monkeypatch.setenv("FACESKIN_KEYS_DIR", str(tmp_path / "nokeys"))
    src = tmp_path / "a.jpg"
    Image.fromarray(astronaut).save(src)
    code, text = run("protect", src, "-o", tmp_path / "o.jpg")
    assert code == 2 and "keys init" in text and "Traceback" not in text
    assert not (tmp_path / "o.jpg").exists()


@pytest.mark.parametrize("content,name,expect", [
    (None, "missing.jpg", "no such file"),
    (b"", "empty.jpg", "empty.jpg"),
    (b"this is not an image at all", "text.jpg", "text.jpg"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01", "truncated.jpg", "truncated.jpg"),
])
def test_bad_input_gives_one_line_and_exit_2(env, tmp_path, content, name, expect):
    src = tmp_path / name
    if content is not None:
        src.write_bytes(content)
    code, text = run("protect", src, "-o", tmp_path / "o.jpg")
    assert code == 2, text
    assert expect in text and "Traceback" not in text
    assert len(text.strip().splitlines()) <= 2  # rich may wrap one long line
    assert not (tmp_path / "o.jpg").exists()


def test_empty_folder_and_unknown_output_suffix_are_errors(env, tmp_path, astronaut):
    (tmp_path / "empty").mkdir()
    code, text = run("protect", tmp_path / "empty")
    assert code == 2 and "no supported photos" in text
    src = tmp_path / "a.jpg"
    Image.fromarray(astronaut).save(src)
    code, text = run("protect", src, "-o", tmp_path / "a.bmpx")
    assert code == 2 and "Traceback" not in text


def test_zero_faces_is_said_plainly_and_exits_0(env, tmp_path):
    src = tmp_path / "wall.png"
    Image.fromarray(np.full((120, 160, 3), 200, np.uint8)).save(src)
    code, text = run("protect", src, "-o", tmp_path / "wall.out.png")
    assert code == 0 and "no faces found" in text
    assert (tmp_path / "wall.out.png").exists()


def test_a_folder_of_photos_in_one_call(env, tmp_path, astronaut):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(astronaut).save(folder / "one.jpg")
    Image.fromarray(astronaut[:, ::-1]).save(folder / "two.png")
    code, text = run("protect", folder, "-o", tmp_path / "out", "--no-label")
    assert code == 0, text
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["one.jpg", "two.png"]


def test_skins_list_and_keys_init_twice(tmp_path):
    code, text = run("skins", "list")
    assert code == 0 and text.strip()
    code, _ = run("keys", "init", "--dir", tmp_path / "k")
    assert code == 0
    code, text = run("keys", "init", "--dir", tmp_path / "k")
    assert code == 0 and "already exist" in text


def test_audit_passes_a_protected_photo_and_fails_an_unprotected_copy(env, tmp_path, astronaut):
    src = tmp_path / "a.jpg"
    Image.fromarray(astronaut).save(src, quality=95)
    out = tmp_path / "a.out.jpg"
    assert run("protect", src, "-o", out, "--seed", 2)[0] == 0
    code, text = run("audit", src, out, "--html", tmp_path / "r.html", "--json", tmp_path / "r.json")
    assert code == 0, text
    assert "No leak" in text and (tmp_path / "r.html").stat().st_size > 1000
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(src.read_bytes())
    code, text = run("audit", src, copy, "--html", tmp_path / "r2.html")
    assert code == 1, text


# ---------------------------------------------------------------- the skin library


@pytest.fixture()
def astronaut_jpg(tmp_path, astronaut):
    path = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut).save(path, quality=95)
    return path


def test_skins_list_shows_the_default_set(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESKIN_DATA_DIR", str(tmp_path / "data"))
    code, text = run("skins", "list")
    assert code == 0, text
    rows = [line.split("\t") for line in text.splitlines() if line.startswith("syn")]
    assert len(rows) >= 100
    assert {r[2] for r in rows} >= {"light", "medium", "dark"}
    code, text = run("skins", "list", "--tone", "dark")
    assert code == 0 and all(line.split("\t")[2] == "dark" for line in text.splitlines() if line.startswith("syn"))
    assert run("skins", "list", "--tone", "green")[0] == 2


def test_skins_show_and_sheet_write_pictures(tmp_path):
    code, text = run("skins", "show", "syn002", "-o", tmp_path / "p.jpg", "--size", "160")
    assert code == 0 and "seed" in text, text
    assert Image.open(tmp_path / "p.jpg").size == (160, 160)
    code, text = run("skins", "sheet", "-o", tmp_path / "s.png", "--count", "4", "--columns", "2", "--size", "96")
    assert code == 0, text
    assert Image.open(tmp_path / "s.png").size == (2 * 96, 2 * (96 + 16))
    assert run("skins", "sheet", "-o", tmp_path / "s.txt", "--count", "2")[0] == 2


def _skins_in(report):
    return [f.get("skin_id") for f in json.loads(report.read_text())["images"][0]["faces"]]


def test_protect_names_the_skin_and_skin_choice_options(astronaut_jpg, tmp_path):
    """--skin forces an id; --skin-seed repeats draws; --key keeps the person's skin across files."""
    out, rep = tmp_path / "o.jpg", tmp_path / "r.json"
    code, text = run("protect", astronaut_jpg, "-o", out, "--no-label", "--skin", "syn010", "--report", rep)
    assert code == 0 and "syn010" in text, text
    assert _skins_in(rep) == ["syn010"]
    picks = []
    for _ in range(2):
        assert run("protect", astronaut_jpg, "-o", out, "--no-label", "--skin-seed", "4", "--report", rep)[0] == 0
        picks.append(_skins_in(rep))
    assert picks[0] == picks[1] and picks[0][0].startswith("syn")
    # keyed: the same person in another file (recompressed) gets the same skin, whatever the seed
    other = tmp_path / "other.jpg"
    Image.open(astronaut_jpg).save(other, quality=70)
    keyed = []
    for src, seed in ((astronaut_jpg, 1), (other, 2)):
        code, text = run("protect", src, "-o", out, "--no-label", "--key", "series secret", "--skin-seed", seed,
                         "--report", rep)
        assert code == 0, text
        keyed.append(_skins_in(rep))
    assert keyed[0] == keyed[1]
    assert run("protect", astronaut_jpg, "-o", out, "--no-label", "--skin", "nobody")[0] == 2


def test_skins_add_refuses_two_faces_and_expired_consent_blocks_use(tmp_path, monkeypatch, astronaut, astronaut_jpg):
    import datetime as dt

    from faceskin.consent import ConsentStore, skin_from_photo
    from faceskin.detect import FaceDetector
    from faceskin.landmarks import Landmarker

    monkeypatch.setenv("FACESKIN_DATA_DIR", str(tmp_path / "data"))
    two = tmp_path / "two.jpg"
    Image.fromarray(np.hstack([astronaut, astronaut])).save(two)
    code, text = run("skins", "add", two, "--consent", "yes", "--who", "A", "--expires", "2031-01-01")
    assert code == 2 and "2 faces" in text, text
    code, text = run("skins", "add", astronaut_jpg, "--consent", "yes", "--who", "A", "--expires", "2020-01-01")
    assert code == 2 and "expiry" in text, text
    assert not (tmp_path / "data" / "skins").exists() or not any((tmp_path / "data" / "skins").iterdir())
    # a skin whose consent has run out is refused wherever it is asked for
    donor = skin_from_photo(astronaut, FaceDetector(), Landmarker())
    skin, _ = ConsentStore().add(donor, astronaut_jpg.read_bytes(), who="A", statement="yes", scope="tests",
                                 granted=dt.date(2020, 1, 1), expires=dt.date(2020, 6, 1))
    code, text = run("protect", astronaut_jpg, "-o", tmp_path / "o.jpg", "--no-label", "--skin", skin.skin_id)
    assert code == 2 and "expired" in text, text
    code, text = run("skins", "list")
    assert f"{skin.skin_id}\t-\tconsented" in text and "EXPIRED" in text
    assert run("skins", "remove", skin.skin_id)[0] == 0
    assert run("skins", "remove", skin.skin_id)[0] == 2


def test_skins_add_then_protect_with_the_consented_skin(tmp_path, monkeypatch, astronaut_jpg):
    monkeypatch.setenv("FACESKIN_DATA_DIR", str(tmp_path / "data"))
    # the "consenting person": a portrait of a default skin (one face; the astronaut wearing her own
    # face would rightly fail the identity self-check)
    photo = tmp_path / "volunteer.jpg"
    assert run("skins", "show", "syn050", "-o", photo, "--size", "384")[0] == 0
    code, text = run("skins", "add", photo, "--consent", "I, E. C., agree.", "--who", "E. C.",
                     "--scope", "tests", "--date", "2026-01-01", "--expires", "2099-01-01")
    assert code == 0, text
    skin_id = next(w for w in text.split() if w.startswith("c-"))
    record = json.loads((tmp_path / "data" / "skins" / f"{skin_id}.consent.json").read_text())
    assert record["who"] == "E. C." and record["scope"] == "tests" and record["expires"] == "2099-01-01"
    # accepted by id (the self-check may still send the face to the fallback: then no skin is named)
    rep = tmp_path / "r.json"
    code, text = run("protect", astronaut_jpg, "-o", tmp_path / "o.jpg", "--no-label", "--skin", skin_id,
                     "--report", rep)
    assert code == 0, text
    assert _skins_in(rep) in ([skin_id], [None])
    # rendered and named in the report (self-check off, so the outcome does not depend on it)
    from faceskin.library import SkinLibrary
    from faceskin.protect import ProtectOptions, Protector

    protector = Protector(library=SkinLibrary.default(seed=0),
                          options=ProtectOptions(force_skin_id=skin_id, identity_check=False))
    _, report = protector.protect(np.asarray(Image.open(astronaut_jpg).convert("RGB")))
    assert [(f.method, f.skin_id) for f in report.faces] == [("skin", skin_id)]


# --- video: labelled, watermarked, badged -------------------------------------------

from test_video import moving_frames  # noqa: E402,F401 - fixture: the astronaut's head sliding right
from test_videofile import make_clip  # noqa: E402


def test_protected_video_is_labelled_watermarked_and_badged(env, tmp_path, moving_frames):  # noqa: F811
    from faceskin.label import read_manifest
    from faceskin.verify import verify_file
    from faceskin.videofile import open_video

    tags = {"location": "+48.8577+002.2950/", "make": "Apple", "model": "iPhone 12",
            "creation_time": "2020-01-01T00:00:00Z"}
    src = make_clip(tmp_path / "v.mov", frames=moving_frames[:8], pts=[40 * i for i in range(8)], audio=False,
                    metadata=tags)
    caught = " ".join(metadata_leaks(src))
    assert all(k in caught for k in ("location", "make", "model", "creation_time")), caught
    out = tmp_path / "v.out.mov"  # QuickTime keeps make/model tags, so the crafted input has all four
    code, text = run("protect", src, "-o", out, "--badge", "--seed", 1, "--preset", "ultrafast")
    assert code == 0, text
    assert metadata_leaks(out) == []  # tags stripped; faceskin's own C2PA manifest is not a leak
    code, text = run("verify", out)
    assert code == 0 and "labelled by faceskin" in text.lower() and "watermark: present" in text, text

    alteration = read_manifest(out).alteration
    assert alteration["visible_badge"] is True and alteration["watermark"]["scope"] == "faces"
    result = verify_file(out)
    assert result.watermark.present and result.watermark_matches_manifest is True
    assert f"{result.watermark.run_id:06x}" == alteration["watermark"]["run_id"]

    # The badge sits bottom right, where the clip has only background; top right is background too.
    frames = [f.rgb for f in open_video(out)]
    assert len(frames) == 8
    for got, sent in zip(frames, moving_frames):
        diff = np.abs(got.astype(int) - sent.astype(int))
        assert diff[-14:-6, -40:-8].mean() > 15, "no visible badge"
        assert diff[:20, -40:].mean() < 6, "away from face and badge the frame is unchanged"

    flipped = bytearray(out.read_bytes())
    flipped[len(flipped) // 2] ^= 0x01
    tampered = tmp_path / "v.tampered.mov"
    tampered.write_bytes(bytes(flipped))
    code, text = run("verify", tampered)
    assert code == 1 and "TAMPERED" in text, text


def test_protected_video_without_badge_verifies_and_keeps_its_corners(env, tmp_path, moving_frames):  # noqa: F811
    src = make_clip(tmp_path / "n.mov", frames=moving_frames[:6], pts=[40 * i for i in range(6)], audio=False)
    out = tmp_path / "n.out.mov"
    code, text = run("protect", src, "-o", out, "--seed", 2, "--preset", "ultrafast")
    assert code == 0, text
    code, text = run("verify", "--json", out)
    payload = json.loads(text)[0]
    assert code == 0 and payload["verdict"] == "labelled" and payload["watermark"]["present"], text
    assert payload["manifest"]["alteration"]["visible_badge"] is False
    from faceskin.videofile import open_video

    for got, sent in zip((f.rgb for f in open_video(out)), moving_frames):
        assert np.abs(got[-14:-6, -40:-8].astype(int) - sent[-14:-6, -40:-8]).mean() < 6
