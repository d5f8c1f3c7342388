"""Tests for reading photos and writing clean, faithful, atomic outputs.

Inputs are built in tmp_path from a small crop of skimage's astronaut, so every
case is explicit about what the file contains and the suite runs in seconds.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from skimage.data import astronaut

from faceskin import imagefile
from faceskin.errors import FaceskinError, InputError, OutputError
from faceskin.imagefile import (
    DEFAULT_MAX_PIXELS,
    LoadedImage,
    iter_image_files,
    metadata_leaks,
    output_format,
    read_image,
    strip_report,
    write_image,
)

ORIENTATION = 0x0112
MAKER_NOTE = 0x927C
BODY_SERIAL = 0xA431
EXIF_IFD = 0x8769
GPS_IFD = 0x8825


@pytest.fixture(scope="module")
def upright() -> np.ndarray:
    """96x128 RGB, deliberately not square so a wrong rotation changes the shape."""
    return np.ascontiguousarray(astronaut()[:384:4, :512:4])


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# ----------------------------------------------------------------- file builders


def identifying_exif(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0110] = "Canon EOS R5"  # Model
    exif[0x0131] = "Firmware 1.8.1"  # Software
    exif[0x0132] = "2023:07:14 10:11:12"  # DateTime
    exif[0x013B] = "Jane Doe"  # Artist
    if orientation is not None:
        exif[ORIENTATION] = orientation
    sub = exif.get_ifd(EXIF_IFD)
    sub[BODY_SERIAL] = "012345678901"
    sub[0x9003] = "2023:07:14 10:11:12"  # DateTimeOriginal
    sub[MAKER_NOTE] = b"Canon maker note with an embedded preview" * 4
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "N"
    gps[2] = (52.0, 31.0, 12.0)
    gps[3] = "E"
    gps[4] = (13.0, 24.0, 36.0)
    return exif


def with_exif_thumbnail(exif_bytes: bytes, thumbnail_jpeg: bytes) -> bytes:
    """Append an IFD1 holding a JPEG thumbnail, which Pillow cannot write itself."""
    assert exif_bytes[:6] == b"Exif\x00\x00"
    tiff = bytearray(exif_bytes[6:])
    endian = "<" if tiff[:2] == b"II" else ">"
    ifd0 = struct.unpack(endian + "I", tiff[4:8])[0]
    count = struct.unpack(endian + "H", tiff[ifd0 : ifd0 + 2])[0]
    next_ptr = ifd0 + 2 + 12 * count
    ifd1 = len(tiff)
    tiff[next_ptr : next_ptr + 4] = struct.pack(endian + "I", ifd1)
    thumb_at = ifd1 + 2 + 2 * 12 + 4
    tiff += struct.pack(endian + "H", 2)
    tiff += struct.pack(endian + "HHII", 0x0201, 4, 1, thumb_at)
    tiff += struct.pack(endian + "HHII", 0x0202, 4, 1, len(thumbnail_jpeg))
    tiff += struct.pack(endian + "I", 0)
    tiff += thumbnail_jpeg
    return b"Exif\x00\x00" + bytes(tiff)


def insert_jpeg_segment(data: bytes, marker: int, payload: bytes) -> bytes:
    """Insert an APPn/COM segment right after SOI."""
    segment = bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + segment + data[2:]


XMP_PLAIN = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/">'
    b"<dc:creator>Jane Doe</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>"
)
# Pillow honours an XMP orientation too, so this one goes with EXIF orientation 6.
XMP_ROTATED = XMP_PLAIN.replace(
    b'xmlns:dc="http://purl.org/dc/elements/1.1/">',
    b'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6">',
)
XMP_FACE_REGIONS = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/">'
    b"<mwg-rs:Regions><mwg-rs:Name>Jane Doe</mwg-rs:Name></mwg-rs:Regions>"
    b"</rdf:Description></rdf:RDF></x:xmpmeta>"
)
IPTC_APP13 = b"Photoshop 3.0\x00" + b"8BIM\x04\x04\x00\x00" + struct.pack(">I", 12) + b"\x1c\x02\x50\x00\x08Jane Doe"


def leaky_jpeg(path: Path, pixels: np.ndarray, *, orientation: int | None = None, xmp: bytes = XMP_PLAIN) -> Path:
    """A JPEG with everything that must not leak: GPS, serials, maker note, thumbnail, XMP, IPTC, comment, trailer."""
    thumb = Image.fromarray(pixels).resize((32, 24))
    buf = _jpeg_bytes(thumb)
    exif = with_exif_thumbnail(identifying_exif(orientation).tobytes(), buf)
    out = _jpeg_bytes(Image.fromarray(pixels), exif=exif, xmp=xmp, comment=b"shot at 12 Main Street")
    out = insert_jpeg_segment(out, 0xED, IPTC_APP13)
    out += b"\x00\x00\x00\x18ftypmp42 appended motion-photo video"
    path.write_bytes(out)
    return path


def _jpeg_bytes(image: Image.Image, **params) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=95, **params)
    return buf.getvalue()


def png_bytes(width: int, height: int, bit_depth: int, raw_rows: bytes) -> bytes:
    """A truecolour PNG written by hand, for what Pillow will not write (48-bit, lying headers)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw_rows)) + chunk(b"IEND", b"")


def png16_rgb(path: Path, rgb16: np.ndarray) -> Path:
    """A 48-bit PNG, which Pillow can read but not write."""
    height, width, _ = rgb16.shape
    big = rgb16.astype(">u2")
    path.write_bytes(png_bytes(width, height, 16, b"".join(b"\x00" + big[row].tobytes() for row in range(height))))
    return path


# ------------------------------------------------------------------ metadata


def test_strip_report_sees_everything_the_leaky_jpeg_carries(tmp_path, upright):
    report = strip_report(leaky_jpeg(tmp_path / "in.jpg", upright))
    assert {"Make", "Model", "BodySerialNumber", "Artist", "DateTime"} <= set(report["exif"])
    assert {"GPSLatitude", "GPSLongitude"} <= set(report["gps"])
    assert report["exif_thumbnail"] and report["maker_note"]
    assert report["xmp"] and report["iptc"]
    assert report["comments"] == ["shot at 12 Main Street"]
    assert report["trailing_bytes"] > 0
    assert len(metadata_leaks(report)) >= 8


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_output_carries_no_identifying_metadata(tmp_path, upright, suffix):
    loaded = read_image(leaky_jpeg(tmp_path / "in.jpg", upright))
    out = write_image(tmp_path / f"out{suffix}", loaded.rgb, loaded)
    report = strip_report(out)
    assert metadata_leaks(report) == []
    assert report["exif"] == [] and report["gps"] == [] and not report["xmp"]
    assert mean_abs_diff(read_image(out).rgb, upright) < 8


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_keep_metadata_carries_exif_and_xmp_but_not_previews(tmp_path, upright, suffix):
    sideways = np.ascontiguousarray(np.rot90(upright, 1))
    loaded = read_image(leaky_jpeg(tmp_path / "in.jpg", sideways, orientation=6, xmp=XMP_ROTATED))
    assert loaded.rgb.shape == upright.shape
    out = write_image(tmp_path / f"out{suffix}", loaded.rgb, loaded, keep_metadata=True)
    report = strip_report(out)
    kept = set(report["exif"]) | set(report["tiff_tags"])
    assert {"Make", "Model", "BodySerialNumber", "DateTimeOriginal"} <= kept
    assert {"GPSLatitude", "GPSLongitude"} <= set(report["gps"])
    assert report["xmp"]
    # Anything that could hold the unprotected picture, or re-rotate it, is gone.
    assert "Orientation" not in kept
    assert not report["exif_thumbnail"] and not report["maker_note"]
    assert not report["iptc"] and report["comments"] == [] and report["trailing_bytes"] == 0
    assert b"tiff:Orientation" not in loaded.xmp and b"Jane Doe" in loaded.xmp
    assert read_image(out).rgb.shape == upright.shape


def test_xmp_with_face_regions_is_never_kept(tmp_path, upright):
    loaded = read_image(leaky_jpeg(tmp_path / "in.jpg", upright, xmp=XMP_FACE_REGIONS))
    assert loaded.xmp is None
    assert any("face regions" in w for w in loaded.warnings)
    out = write_image(tmp_path / "out.jpg", loaded.rgb, loaded, keep_metadata=True)
    assert not strip_report(out)["xmp"]


def test_icc_profile_is_kept(tmp_path, upright):
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "in.jpg"
    Image.fromarray(upright).save(src, icc_profile=srgb)
    loaded = read_image(src)
    assert loaded.icc_profile == srgb
    for suffix in (".jpg", ".png", ".webp", ".tif"):
        out = write_image(tmp_path / f"out{suffix}", loaded.rgb, loaded)
        with Image.open(out) as im:
            assert im.info.get("icc_profile") == srgb, suffix


# --------------------------------------------------------------- orientation


def test_exif_orientation_6_is_applied_to_pixels(tmp_path, upright):
    stored = np.ascontiguousarray(np.rot90(upright, 1))  # camera held sideways
    src = tmp_path / "rotated.jpg"
    Image.fromarray(stored).save(src, quality=95, exif=identifying_exif(orientation=6))
    loaded = read_image(src)
    assert loaded.rgb.shape == upright.shape
    assert mean_abs_diff(loaded.rgb, upright) < 4
    assert mean_abs_diff(loaded.rgb, upright[::-1, ::-1]) > 20  # not the 180-degree answer
    out = write_image(tmp_path / "out.jpg", loaded.rgb, loaded, keep_metadata=True)
    with Image.open(out) as im:
        assert im.size == (upright.shape[1], upright.shape[0])
        assert ORIENTATION not in im.getexif()


# ----------------------------------------------------------- pixel formats


def test_rgb_jpeg_reads_as_writeable_uint8_rgb(tmp_path, upright):
    src = tmp_path / "in.jpg"
    Image.fromarray(upright).save(src, quality=95)
    loaded = read_image(src)
    assert isinstance(loaded, LoadedImage)
    assert loaded.format == "JPEG" and loaded.source_mode == "RGB"
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.shape == upright.shape
    assert loaded.rgb.flags.writeable and loaded.alpha is None
    assert (loaded.width, loaded.height) == (128, 96)
    assert not loaded.grayscale and loaded.bit_depth == 8 and loaded.warnings == []


def test_grayscale_stays_grayscale(tmp_path, upright):
    gray = np.asarray(Image.fromarray(upright).convert("L"))
    src = tmp_path / "gray.png"
    Image.fromarray(gray).save(src)
    loaded = read_image(src)
    assert loaded.grayscale and loaded.source_mode == "L"
    assert np.array_equal(loaded.rgb[..., 0], gray) and np.array_equal(loaded.rgb[..., 2], gray)
    out = write_image(tmp_path / "out.png", loaded.rgb, loaded)
    with Image.open(out) as im:
        assert im.mode == "L"
        assert np.array_equal(np.asarray(im), gray)
    with Image.open(write_image(tmp_path / "out.webp", loaded.rgb, loaded)) as im:
        assert im.mode == "RGB"  # WebP has no grayscale


def test_grayscale_with_alpha(tmp_path, upright):
    gray = np.asarray(Image.fromarray(upright).convert("L"))
    alpha = np.tile(np.linspace(0, 255, 128).astype(np.uint8), (96, 1))
    src = tmp_path / "la.png"
    Image.merge("LA", (Image.fromarray(gray), Image.fromarray(alpha))).save(src)
    loaded = read_image(src)
    assert loaded.grayscale and np.array_equal(loaded.alpha, alpha)
    with Image.open(write_image(tmp_path / "out.png", loaded.rgb, loaded)) as im:
        assert im.mode == "LA"
        assert np.array_equal(np.asarray(im)[..., 1], alpha)


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path, upright):
    src = tmp_path / "cmyk.jpg"
    Image.fromarray(upright).convert("CMYK").save(src, quality=95)
    loaded = read_image(src)
    assert loaded.source_mode == "CMYK" and not loaded.grayscale
    assert loaded.rgb.shape == upright.shape
    assert mean_abs_diff(loaded.rgb, upright) < 6
    with Image.open(write_image(tmp_path / "out.jpg", loaded.rgb, loaded)) as im:
        assert im.mode == "RGB"


GHOSTSCRIPT_CMYK = Path("/usr/share/color/icc/ghostscript/default_cmyk.icc")


@pytest.mark.skipif(not GHOSTSCRIPT_CMYK.is_file(), reason="needs a CMYK ICC profile (Debian's ghostscript package)")
def test_cmyk_jpeg_with_profile_converts_through_it(tmp_path, upright):
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(str(GHOSTSCRIPT_CMYK))
    cmyk = ImageCms.profileToProfile(
        Image.fromarray(upright), ImageCms.createProfile("sRGB"), profile, outputMode="CMYK"
    )
    src = tmp_path / "cmyk.jpg"
    cmyk.save(src, quality=95, icc_profile=GHOSTSCRIPT_CMYK.read_bytes())
    loaded = read_image(src)
    naive = np.asarray(Image.open(src).convert("RGB"))
    assert loaded.warnings == [] and loaded.icc_profile is None  # the result is plain sRGB
    assert mean_abs_diff(loaded.rgb, upright) < 0.7 * mean_abs_diff(naive, upright)


def test_cmyk_with_unusable_profile_falls_back_with_warning(tmp_path, upright):
    from PIL import ImageCms

    rgb_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "cmyk.jpg"
    Image.fromarray(upright).convert("CMYK").save(src, quality=95, icc_profile=rgb_profile)
    loaded = read_image(src)
    assert any("CMYK colour profile unusable" in w for w in loaded.warnings)
    assert mean_abs_diff(loaded.rgb, upright) < 6


def test_multi_picture_jpeg_keeps_only_the_main_picture(tmp_path, upright):
    """Phones store depth and gain maps as extra MPF pictures: they must not survive."""
    src = tmp_path / "phone.jpg"
    depth = Image.fromarray(upright[::-1].copy())
    Image.fromarray(upright).save(src, format="MPO", save_all=True, append_images=[depth], quality=95)
    assert strip_report(src)["trailing_bytes"] > 0
    loaded = read_image(src)
    assert loaded.format == "JPEG" and loaded.frames == 2 and loaded.warnings == []
    assert mean_abs_diff(loaded.rgb, upright) < 4
    out = write_image(tmp_path / "out.jpg", loaded.rgb, loaded)
    assert metadata_leaks(out) == []


def test_large_image_is_converted_in_strips(tmp_path, monkeypatch):
    """Strip conversion must stitch exactly; tiny strips make the seams many."""
    monkeypatch.setattr(imagefile, "_STRIP_PIXELS", 1000)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (97, 131, 4), dtype=np.uint8)
    src = tmp_path / "noise.png"
    Image.fromarray(pixels).save(src)
    loaded = read_image(src)
    assert np.array_equal(loaded.rgb, pixels[..., :3]) and np.array_equal(loaded.alpha, pixels[..., 3])


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_grayscale_round_trips_as_16bit(tmp_path, upright, suffix):
    gray8 = np.asarray(Image.fromarray(upright).convert("L")).astype(np.uint16)
    gray16 = gray8 * 257 + (np.arange(gray8.size).reshape(gray8.shape) % 97).astype(np.uint16)
    src = tmp_path / f"deep{suffix}"
    Image.fromarray(gray16).save(src)
    loaded = read_image(src)
    assert loaded.bit_depth == 16 and loaded.grayscale
    expected8 = np.round(gray16 / 257).astype(np.uint8)
    assert np.array_equal(loaded.rgb[..., 1], expected8)
    out = write_image(tmp_path / f"out{suffix}", loaded.rgb, loaded)
    with Image.open(out) as im:
        assert im.mode.startswith("I;16")
        assert np.array_equal(np.asarray(im).astype(np.uint32), expected8.astype(np.uint32) * 257)
    with Image.open(write_image(tmp_path / "out.jpg", loaded.rgb, loaded)) as im:
        assert im.mode == "L"


def test_16bit_colour_png_reads_at_8bit_with_warning(tmp_path, upright):
    rgb16 = upright.astype(np.uint16) * 257
    loaded = read_image(png16_rgb(tmp_path / "deep.png", rgb16))
    assert loaded.bit_depth == 16 and not loaded.grayscale
    assert np.array_equal(loaded.rgb, upright)
    assert any("16-bit colour" in w for w in loaded.warnings)


def test_rgba_png_keeps_alpha(tmp_path, upright):
    alpha = np.tile(np.linspace(0, 255, 96).astype(np.uint8)[:, None], (1, 128))
    src = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([upright, alpha])).save(src)
    loaded = read_image(src)
    assert np.array_equal(loaded.rgb, upright) and np.array_equal(loaded.alpha, alpha)
    for suffix in (".png", ".tif"):
        with Image.open(write_image(tmp_path / f"out{suffix}", loaded.rgb, loaded)) as im:
            assert im.mode == "RGBA"
            assert np.array_equal(np.asarray(im), np.dstack([upright, alpha])), suffix
    with Image.open(write_image(tmp_path / "out.webp", loaded.rgb, loaded)) as im:
        assert im.mode == "RGBA"
        assert np.abs(np.asarray(im)[..., 3].astype(int) - alpha).max() <= 2
    with Image.open(write_image(tmp_path / "out.jpg", loaded.rgb, loaded)) as im:
        assert im.mode == "RGB"  # JPEG: alpha dropped, the colour pixels are kept


def test_palette_png(tmp_path, upright):
    palette = Image.fromarray(upright).quantize(64)
    src = tmp_path / "palette.png"
    palette.save(src)
    loaded = read_image(src)
    assert loaded.source_mode == "P" and loaded.alpha is None
    assert np.array_equal(loaded.rgb, np.asarray(palette.convert("RGB")))
    with Image.open(write_image(tmp_path / "out.png", loaded.rgb, loaded)) as im:
        assert im.mode == "RGB"


def test_palette_png_with_transparent_index_gets_alpha(tmp_path, upright):
    palette = Image.fromarray(upright).quantize(64)
    src = tmp_path / "palette.png"
    palette.save(src, transparency=0)
    loaded = read_image(src)
    index = np.asarray(palette)
    assert loaded.alpha is not None
    assert np.array_equal(loaded.alpha == 0, index == 0)


def test_webp_lossy_and_lossless_round_trip(tmp_path, upright):
    lossy = tmp_path / "lossy.webp"
    Image.fromarray(upright).save(lossy, quality=90)
    loaded = read_image(lossy)
    assert loaded.format == "WEBP" and not loaded.encoder_hints["lossless"]
    assert mean_abs_diff(loaded.rgb, upright) < 6

    lossless = tmp_path / "lossless.webp"
    Image.fromarray(upright).save(lossless, lossless=True)
    loaded = read_image(lossless)
    assert np.array_equal(loaded.rgb, upright)
    out = write_image(tmp_path / "out.webp", loaded.rgb, loaded)
    assert np.array_equal(read_image(out).rgb, upright)  # lossless in, lossless out


def test_tiff_round_trip_drops_descriptive_tags(tmp_path, upright):
    src = tmp_path / "in.tif"
    tags = {
        271: "Nikon",  # Make
        272: "D850",  # Model
        305: "Capture One",  # Software
        306: "2023:07:14 10:11:12",  # DateTime
        315: "Jane Doe",  # Artist
        270: "Jane at home",  # ImageDescription
    }
    Image.fromarray(upright).save(src, compression="tiff_adobe_deflate", tiffinfo=tags)
    assert {"Make", "Model", "Artist", "ImageDescription"} <= set(strip_report(src)["tiff_tags"])
    loaded = read_image(src)
    assert loaded.format == "TIFF" and np.array_equal(loaded.rgb, upright)
    out = write_image(tmp_path / "out.tiff", loaded.rgb, loaded)
    assert metadata_leaks(out) == []
    with Image.open(out) as im:
        assert im.info["compression"] == "tiff_adobe_deflate"
        assert np.array_equal(np.asarray(im), upright)


def test_multipage_tiff_keeps_first_page_with_warning(tmp_path, upright):
    src = tmp_path / "pages.tif"
    Image.fromarray(upright).save(src, save_all=True, append_images=[Image.fromarray(upright[::-1].copy())])
    loaded = read_image(src)
    assert loaded.frames == 2
    assert np.array_equal(loaded.rgb, upright)
    assert any("2 frames" in w for w in loaded.warnings)
    out = write_image(tmp_path / "out.tif", loaded.rgb, loaded)
    assert strip_report(out)["frames"] == 1


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p: p.write_bytes(p.with_name("good.jpg").read_bytes()[:1500]), "corrupt"),
        (lambda p: p.write_text("this is not a picture\n"), "not a JPEG, PNG, WebP or TIFF"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "folder"),
    ],
    ids=["truncated", "text", "empty", "missing", "directory"],
)
def test_bad_input_is_one_line_input_error_naming_the_file(tmp_path, upright, make, words):
    Image.fromarray(upright).save(tmp_path / "good.jpg", quality=95)
    bad = tmp_path / "bad.jpg"
    make(bad)
    with pytest.raises(InputError) as info:
        read_image(bad)
    message = str(info.value)
    assert str(bad) in message and words in message
    assert "\n" not in message
    assert isinstance(info.value, FaceskinError)


def test_corrupt_png_data_is_input_error(tmp_path, upright):
    src = tmp_path / "in.png"
    Image.fromarray(upright).save(src)
    data = bytearray(src.read_bytes())
    data[60:200] = bytes(140)  # smash the compressed pixel data, keep the header
    src.write_bytes(bytes(data))
    with pytest.raises(InputError, match="in.png"):
        read_image(src)


def test_unsupported_format_is_input_error(tmp_path, upright):
    src = tmp_path / "in.gif"
    Image.fromarray(upright).save(src)
    with pytest.raises(InputError, match="not a JPEG, PNG, WebP or TIFF"):
        read_image(src)


def test_pixel_limit_refuses_before_decoding(tmp_path, upright):
    src = tmp_path / "in.png"
    Image.fromarray(upright).save(src)
    with pytest.raises(InputError, match="megapixels"):
        read_image(src, max_pixels=1000)
    assert read_image(src, max_pixels=None).rgb.shape == upright.shape


def test_decompression_bomb_header_is_input_error_not_a_decode(tmp_path):
    """A 60000x60000 PNG header in a tiny file: refused from the header alone."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bytes(60000, 60000, 8, b"\x00" * 1000))
    with pytest.raises(InputError, match=r"bomb\.png.*3600 megapixels"):
        read_image(bomb)
    assert DEFAULT_MAX_PIXELS >= 100_000_000


def test_pillow_global_limit_is_replaced_and_restored(tmp_path, upright, monkeypatch, recwarn):
    """Pillow's own guard (89 MP warning, 179 MP error) must not fire below our limit."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    src = tmp_path / "in.png"
    Image.fromarray(upright).save(src)
    assert read_image(src).rgb.shape == upright.shape
    assert Image.MAX_IMAGE_PIXELS == 100
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]


# ----------------------------------------------------------------- writing


def test_unknown_output_suffix_is_input_error(tmp_path, upright):
    src = tmp_path / "in.png"
    Image.fromarray(upright).save(src)
    loaded = read_image(src)
    with pytest.raises(InputError, match=r"\.bmp"):
        write_image(tmp_path / "out.bmp", loaded.rgb, loaded)
    assert output_format("A.JPEG") == "JPEG" and output_format("b.TiF") == "TIFF"


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_failed_save_leaves_nothing_behind(tmp_path, upright, monkeypatch, failure):
    src = tmp_path / "in.png"
    Image.fromarray(upright).save(src)
    loaded = read_image(src)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    previous = out_dir / "kept.png"
    previous.write_bytes(b"an older result")

    def failing_save(self, fp, *args, **kwargs):
        fp.write(b"half an image")
        raise failure

    monkeypatch.setattr(Image.Image, "save", failing_save)
    expected = OutputError if isinstance(failure, OSError) else KeyboardInterrupt
    for name in ("new.png", "kept.png"):
        with pytest.raises(expected):
            write_image(out_dir / name, loaded.rgb, loaded)
    assert sorted(p.name for p in out_dir.iterdir()) == ["kept.png"]
    assert previous.read_bytes() == b"an older result"


def test_written_file_has_ordinary_permissions(tmp_path, upright):
    src = tmp_path / "in.png"
    Image.fromarray(upright).save(src)
    loaded = read_image(src)
    out = write_image(tmp_path / "out.png", loaded.rgb, loaded)
    assert out.stat().st_mode & 0o777 == src.stat().st_mode & 0o777


def test_refuses_to_overwrite_the_input(tmp_path, upright):
    src = tmp_path / "in.jpg"
    Image.fromarray(upright).save(src)
    before = src.read_bytes()
    loaded = read_image(src)
    link = tmp_path / "link.jpg"
    link.symlink_to(src)
    hard = tmp_path / "hard.jpg"
    hard.hardlink_to(src)
    for target in (src, tmp_path / "." / "in.jpg", link, hard):
        with pytest.raises(OutputError, match="input"):
            write_image(target, loaded.rgb, loaded)
    assert src.read_bytes() == before


def test_missing_output_folder_is_output_error(tmp_path, upright):
    src = tmp_path / "in.png"
    Image.fromarray(upright).save(src)
    loaded = read_image(src)
    with pytest.raises(OutputError, match="does not exist"):
        write_image(tmp_path / "nope" / "out.png", loaded.rgb, loaded)
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(OutputError, match="folder"):
        write_image(tmp_path / "dir.png", loaded.rgb, loaded)


def test_write_uses_the_processed_pixels(tmp_path, upright):
    src = tmp_path / "in.png"
    Image.fromarray(upright).save(src)
    loaded = read_image(src)
    processed = 255 - loaded.rgb
    out = write_image(tmp_path / "out.png", processed, loaded)
    assert np.array_equal(read_image(out).rgb, processed)
    with pytest.raises(ValueError):
        write_image(tmp_path / "bad.png", processed.astype(np.float32), loaded)


def test_failed_encoder_is_output_error(tmp_path, monkeypatch):
    """WebP cannot hold more than 16383 pixels a side: a user-fixable output problem."""
    wide = np.zeros((2, 17000, 3), np.uint8)
    src = tmp_path / "wide.png"
    Image.fromarray(wide).save(src)
    loaded = read_image(src)
    with pytest.raises(OutputError, match="out.webp"):
        write_image(tmp_path / "out.webp", loaded.rgb, loaded)
    assert [p.name for p in tmp_path.iterdir()] == ["wide.png"]


# ------------------------------------------------------------------- folders


def test_iter_image_files_lists_supported_files_sorted_non_recursive(tmp_path):
    for name in ("b.png", "a.JPG", "c.webp", "d.tiff", "notes.txt", ".hidden.jpg", "._a.jpg", "e.gif"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "z.jpg").write_bytes(b"x")
    (tmp_path / "folder.jpg").mkdir()
    assert [p.name for p in iter_image_files(tmp_path)] == ["a.JPG", "b.png", "c.webp", "d.tiff"]
    with pytest.raises(InputError, match="no such folder"):
        iter_image_files(tmp_path / "missing")
    with pytest.raises(InputError, match="not a folder"):
        iter_image_files(tmp_path / "b.png")


def test_temp_files_are_not_listed_as_inputs(tmp_path, upright, monkeypatch):
    """A temp file left by a killed run must not be picked up by the next batch."""
    seen: list[list[str]] = []
    real_save = Image.Image.save

    def spying_save(self, fp, *args, **kwargs):
        seen.append([p.name for p in iter_image_files(tmp_path)])
        return real_save(self, fp, *args, **kwargs)

    src = tmp_path / "in.png"
    Image.fromarray(upright).save(src)
    loaded = read_image(src)
    monkeypatch.setattr(Image.Image, "save", spying_save)
    write_image(tmp_path / "out.png", loaded.rgb, loaded)
    assert seen == [["in.png"]]  # the temp file existed but was not listed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.png"]


def test_png_text_chunks_are_not_copied(tmp_path, upright):
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Doe")
    info.add_itxt("Description", "at home", zip=True)
    src = tmp_path / "in.png"
    Image.fromarray(upright).save(src, pnginfo=info)
    assert set(strip_report(src)["text"]) == {"Author", "Description"}
    loaded = read_image(src)
    for keep in (False, True):
        out = write_image(tmp_path / f"out{keep}.png", loaded.rgb, loaded, keep_metadata=keep)
        assert strip_report(out)["text"] == []


def test_module_constants_are_consistent():
    assert set(imagefile.FORMAT_BY_SUFFIX.values()) == {"JPEG", "PNG", "WEBP", "TIFF"}


def test_gray_with_transparent_value_gets_alpha(tmp_path, upright):
    gray = np.asarray(Image.fromarray(upright).convert("L"))
    key = int(gray[0, 0])
    src = tmp_path / "trns.png"
    Image.fromarray(gray).save(src, transparency=key)
    loaded = read_image(src)
    assert loaded.grayscale
    assert np.array_equal(loaded.alpha == 0, gray == key)


def test_bilevel_and_float_images(tmp_path, upright):
    gray = Image.fromarray(upright).convert("L")
    bilevel = tmp_path / "bw.png"
    gray.convert("1").save(bilevel)
    loaded = read_image(bilevel)
    assert loaded.grayscale and set(np.unique(loaded.rgb)) <= {0, 255}
    floats = tmp_path / "float.tif"
    Image.fromarray(np.asarray(gray).astype(np.float32)).save(floats)
    with pytest.raises(InputError, match="floating-point"):
        read_image(floats)
