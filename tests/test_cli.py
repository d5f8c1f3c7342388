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
    assert metadata_leaks(out) == [] or all("C2PA" in x or "APP11" in x for x in metadata_leaks(out))
    faces = json.loads(report.read_text())["images"][0]["faces"]
    assert faces[0]["method"] == "skin" and faces[0]["skin_id"]
    code, text = run("verify", out)
    assert code == 0 and "labelled by faceskin" in text.lower()


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
