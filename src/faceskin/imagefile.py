"""Reading photos into RGB arrays and writing protected results back without leaks.

Everything between these two functions works on upright RGB ``uint8`` arrays;
this module owns the messy part of the boundary: the four supported formats
(JPEG, PNG, WebP, TIFF), their pixel modes, EXIF orientation, colour profiles,
identifying metadata, huge files and half-written outputs.

Decisions (the CLI and the docs rely on these):

* **Orientation.** The EXIF orientation (or, lacking one, XMP ``tiff:Orientation``,
  as Pillow reads it) is applied to the pixels on read, so the pipeline sees the
  picture upright and the output needs no orientation tag.
* **Metadata.** Outputs carry no EXIF, XMP, IPTC/Photoshop blocks, GPS, maker
  notes, thumbnails, comments, PNG text chunks, descriptive TIFF tags or data
  appended after the image, because any of them can identify the person, the
  camera or the place. ``keep_metadata=True`` carries the source EXIF and XMP
  over, still without the EXIF thumbnail and maker notes (both can hold an
  unprotected preview of the faces) and without XMP that holds face regions,
  person names or preview images (dropped whole, with a warning).
* **Colour profile.** The ICC profile is kept: it describes how the numbers map
  to colours, so dropping it visibly shifts colours of wide-gamut (e.g. phone
  Display P3) photos, and it says at most which vendor's profile was used,
  nothing about the person. CMYK inputs are converted to sRGB on read (through
  their profile when they have one) and written as RGB without a profile.
* **Pixel formats.** Grayscale (``1``, ``L``, ``LA``, ``I;16``, ``I``) is handed to
  the pipeline as RGB and written back as grayscale (WebP, which has no grayscale,
  gets RGB). 16-bit grayscale is processed at 8 bits and written back as 16-bit
  PNG/TIFF with every value scaled by 257, so the container stays 16-bit but the
  precision is 8-bit; keeping the original low bits was rejected because inside
  a face they would carry the unprotected picture's residue. 16-bit colour is
  decoded by Pillow to 8 bits and written as 8-bit (a warning says so). Palette
  images are written as truecolour, alpha is kept and re-attached where the output
  format has it; JPEG output simply drops it.
* **Several frames.** Only the first frame (page) is read and written, with a
  warning; multi-picture JPEGs (MPO: phone depth or gain maps) keep only the main
  picture, silently, as every viewer shows only that one.
* **Size.** Images above ``DEFAULT_MAX_PIXELS`` (configurable per call) are
  refused with an :class:`InputError` before decoding, which is also the guard
  against decompression bombs. Reading holds at most two full copies at once
  (decoded image plus result; Pillow keeps RGB at 4 bytes a pixel): a 100 MP
  JPEG reads in about 2 s with a peak of about 0.8 GB above the interpreter.
* **Writing.** Outputs are written to a temporary file (``.<name>.*.faceskin-tmp``)
  in the destination folder and renamed over the final name, so an interrupted
  run never leaves a half-written file under the final name; an existing output
  is replaced, the input never (:class:`OutputError`). JPEG and lossy WebP use
  ``quality`` (95); a JPEG source's chroma subsampling and progressive mode,
  a WebP source's losslessness and a TIFF source's lossless compression are
  repeated when the output has the same format. TIFF is otherwise LZW, and
  uncompressed when metadata is kept (Pillow's compressed TIFF writer cannot
  store the EXIF and GPS directories).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import struct
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import ExifTags, Image, ImageOps, PngImagePlugin, TiffTags

from .errors import InputError, OutputError

try:  # LittleCMS is optional in Pillow builds; without it CMYK converts naively.
    from PIL import ImageCms
except ImportError:  # pragma: no cover - depends on the Pillow build
    ImageCms = None  # type: ignore[assignment]

#: Refuse images with more pixels than this (200 MP: above today's 100-150 MP
#: cameras, and about 600 MB per RGB copy). Pass ``max_pixels`` to change it.
DEFAULT_MAX_PIXELS = 200_000_000

#: Output format for each supported file suffix (lower case).
FORMAT_BY_SUFFIX = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
SUPPORTED_SUFFIXES = frozenset(FORMAT_BY_SUFFIX)

# Pillow plugins tried on read: restricting them keeps a rename trick (a GIF or a
# PSD called .jpg) from reaching decoders nobody tests here.
_READ_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF")
_ALPHA_FORMATS = frozenset({"PNG", "WEBP", "TIFF"})
_GRAY_FORMATS = frozenset({"JPEG", "PNG", "TIFF"})
_SIXTEEN_BIT_FORMATS = frozenset({"PNG", "TIFF"})
# TIFF compressions written back as found; anything else becomes LZW (lossless,
# read by everything).
_TIFF_COMPRESSIONS = frozenset({"raw", "tiff_lzw", "tiff_adobe_deflate", "tiff_deflate", "packbits"})

# Pillow's decompression-bomb limit is a process-wide global; it is lifted only
# while this module opens a file (which then applies its own limit), under a lock
# so concurrent reads do not restore it in the wrong order.
_PILLOW_LIMIT_LOCK = threading.Lock()


@dataclass
class LoadedImage:
    """A decoded photo plus what is needed to write a faithful, clean copy.

    ``rgb`` is upright (EXIF orientation applied). ``exif`` and ``xmp`` are
    already sanitised (no orientation, thumbnail, maker notes, face regions) and
    are written only when the caller asks to keep metadata.
    """

    path: Path
    rgb: np.ndarray  # (H, W, 3) uint8
    alpha: np.ndarray | None  # (H, W) uint8, or None when the file has no alpha
    format: str  # "JPEG", "PNG", "WEBP" or "TIFF"
    source_mode: str  # Pillow mode of the first frame as decoded, e.g. "RGB", "I;16", "CMYK"
    grayscale: bool  # write back as grayscale where the format allows
    bit_depth: int  # bits per channel in the file: 8 or 16
    icc_profile: bytes | None  # describes ``rgb`` (or its gray) and is always written
    exif: bytes | None = None  # sanitised source EXIF, written only with keep_metadata
    xmp: bytes | None = None  # sanitised source XMP, written only with keep_metadata
    dpi: tuple[float, float] | None = None
    frames: int = 1
    encoder_hints: dict[str, Any] = field(default_factory=dict)  # used when writing the same format
    warnings: list[str] = field(default_factory=list)

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])


# --------------------------------------------------------------------------- read


def read_image(path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Decode the first frame of a JPEG/PNG/WebP/TIFF file into an upright RGB array.

    Every way a user's file can be wrong (missing, a folder, empty, not an
    image, truncated, too large, an unsupported pixel format) raises
    :class:`InputError` with one line naming the file. ``max_pixels=None``
    disables the size limit.
    """
    path = Path(path)
    _check_readable_file(path)
    with _open_without_pillow_limit(path) as im:
        pixels = im.width * im.height
        if max_pixels is not None and pixels > max_pixels:
            raise InputError(
                f"cannot read {path}: {im.width}x{im.height} is {pixels / 1e6:.0f} megapixels, "
                f"above the limit of {max_pixels / 1e6:.0f} megapixels"
            )
        fmt = "JPEG" if im.format == "MPO" else str(im.format)
        frames = int(getattr(im, "n_frames", 1) or 1)
        warnings: list[str] = []
        if frames > 1 and im.format != "MPO":
            warnings.append(f"{path}: has {frames} frames; only the first is processed and written")
        bit_depth = _stored_bit_depth(path, im)

        _decode(path, im)
        _apply_orientation(path, im, warnings)

        source_mode = im.mode
        icc = im.info.get("icc_profile") or None
        exif = _sanitised_exif(im, path, warnings)
        xmp = _sanitised_xmp(im.info.get("xmp"), path, warnings)
        hints = _encoder_hints(path, fmt, im)
        dpi = _dpi(im.info.get("dpi"))
        rgb, alpha, grayscale, icc = _to_rgb_and_alpha(path, im, icc, warnings)
    if bit_depth == 16 and not grayscale:
        warnings.append(f"{path}: 16-bit colour is processed and written as 8-bit colour")
    return LoadedImage(
        path=path,
        rgb=rgb,
        alpha=alpha,
        format=fmt,
        source_mode=source_mode,
        grayscale=grayscale,
        bit_depth=bit_depth,
        icc_profile=icc,
        exif=exif,
        xmp=xmp,
        dpi=dpi,
        frames=frames,
        encoder_hints=hints,
        warnings=warnings,
    )


def _check_readable_file(path: Path) -> None:
    """Turn the filesystem's reasons into words before Pillow turns them into tracebacks."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"cannot read {path}: no such file") from None
    except PermissionError:
        raise InputError(f"cannot read {path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if path.is_dir():
        raise InputError(f"cannot read {path}: it is a folder, not an image file")
    if not path.is_file():
        raise InputError(f"cannot read {path}: not a regular file")
    if st.st_size == 0:
        raise InputError(f"cannot read {path}: the file is empty")


@contextlib.contextmanager
def _open_without_pillow_limit(path: Path):
    """Open lazily (header only) with Pillow's own pixel limit lifted; ours applies instead.

    Pillow warns above 89 MP and refuses above 179 MP, process-wide; our
    configurable limit replaces it so 100 MP photos work without a stray warning.
    """
    try:
        with _PILLOW_LIMIT_LOCK:
            saved = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                im = Image.open(path, formats=_READ_FORMATS)
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except Image.UnidentifiedImageError:
        raise InputError(f"cannot read {path}: not a JPEG, PNG, WebP or TIFF image") from None
    except Image.DecompressionBombError as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    except PermissionError:
        raise InputError(f"cannot read {path}: permission denied") from None
    except Exception as exc:  # noqa: BLE001 - any parser failure on a user file is bad input
        raise InputError(f"cannot read {path}: corrupt image header ({_reason(exc)})") from exc
    try:
        yield im
    finally:
        im.close()


def _decode(path: Path, im: Image.Image) -> None:
    """Decode the pixels; truncated or corrupt data is the file's fault, not ours."""
    try:
        im.load()
    except MemoryError:
        raise InputError(f"cannot read {path}: not enough memory to decode {im.width}x{im.height}") from None
    except Exception as exc:  # noqa: BLE001 - decoders raise many types on bad data
        raise InputError(f"cannot read {path}: corrupt or truncated image data ({_reason(exc)})") from exc


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:200]


def _apply_orientation(path: Path, im: Image.Image, warnings: list[str]) -> None:
    """Rotate pixels upright in place (no extra copy when already upright)."""
    try:
        ImageOps.exif_transpose(im, in_place=True)
    except Exception as exc:  # noqa: BLE001 - a broken EXIF block should not lose the photo
        warnings.append(f"{path}: EXIF is unreadable ({_reason(exc)}); orientation not applied")


def _stored_bit_depth(path: Path, im: Image.Image) -> int:
    """Bits per channel as stored, which Pillow hides for 16-bit colour (it decodes to 8)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        return 16
    if im.format == "PNG":
        with contextlib.suppress(OSError), open(path, "rb") as fh:
            header = fh.read(25)
            if len(header) == 25 and header[24] == 16:
                return 16
    if im.format == "TIFF":
        bits = getattr(im, "tag_v2", {}).get(258)
        if isinstance(bits, tuple) and bits and max(bits) == 16:
            return 16
        if bits == 16:
            return 16
    return 8


# Pixels are converted in horizontal strips of about this many pixels, so
# reading holds the decoded image plus the result and never a third full copy
# (np.asarray on a whole Pillow image would add two: tobytes' pieces and join).
_STRIP_PIXELS = 1 << 22

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_Converter = Any  # Callable[[Image.Image], tuple[np.ndarray, np.ndarray | None]]


def _to_rgb_and_alpha(
    path: Path, im: Image.Image, icc: bytes | None, warnings: list[str]
) -> tuple[np.ndarray, np.ndarray | None, bool, bytes | None]:
    """Map every supported Pillow mode to (rgb, alpha, grayscale, icc for the result)."""
    mode = im.mode
    has_transparency = "transparency" in im.info
    if mode in _SIXTEEN_BIT_MODES:
        return *_fill(im, _sixteen_to_gray8, has_alpha=False), True, icc
    if mode == "F":
        raise InputError(f"cannot read {path}: floating-point images are not supported")
    if mode in ("1", "L") and not has_transparency:
        return *_fill(im, _gray, has_alpha=False), True, icc
    if mode in ("1", "L", "LA", "La"):
        return *_fill(im, _gray_alpha, has_alpha=True), True, icc
    if mode == "CMYK":
        return *_fill(im, _cmyk_converter(path, icc, warnings), has_alpha=False), False, None
    if mode in ("RGBA", "RGBa", "PA") or (mode in ("RGB", "P") and has_transparency):
        return *_fill(im, _rgba, has_alpha=True), False, icc
    if mode in ("RGB", "RGBX", "P", "YCbCr", "HSV"):
        return *_fill(im, _rgb, has_alpha=False), False, icc
    raise InputError(f"cannot read {path}: pixel format {mode} is not supported")


def _fill(im: Image.Image, convert: _Converter, *, has_alpha: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Run ``convert`` strip by strip into preallocated, writeable output arrays."""
    width, height = im.size
    rgb = np.empty((height, width, 3), np.uint8)
    alpha = np.empty((height, width), np.uint8) if has_alpha else None
    rows = max(1, _STRIP_PIXELS // max(1, width))
    for y0 in range(0, height, rows):
        y1 = min(height, y0 + rows)
        part_rgb, part_alpha = convert(im.crop((0, y0, width, y1)))  # crop keeps palette and info
        rgb[y0:y1] = part_rgb  # a (h, w, 1) gray part broadcasts to three channels
        if alpha is not None:
            alpha[y0:y1] = part_alpha
    return rgb, alpha


def _sixteen_to_gray8(strip: Image.Image) -> tuple[np.ndarray, None]:
    wide = np.asarray(strip)
    if strip.mode == "I":  # 32-bit container (some TIFFs); values beyond 16 bits clip
        wide = np.clip(wide, 0, 65535)
    return (((wide.astype(np.uint32) + 128) // 257).astype(np.uint8))[..., None], None


def _gray(strip: Image.Image) -> tuple[np.ndarray, None]:
    return np.asarray(strip.convert("L") if strip.mode != "L" else strip)[..., None], None


def _gray_alpha(strip: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    la = np.asarray(strip.convert("LA"))  # L + tRNS becomes real alpha here
    return la[..., :1], la[..., 1]


def _rgba(strip: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    rgba = np.asarray(strip.convert("RGBA"))  # palette/tRNS transparency becomes alpha
    return rgba[..., :3], rgba[..., 3]


def _rgb(strip: Image.Image) -> tuple[np.ndarray, None]:
    return np.asarray(strip if strip.mode == "RGB" else strip.convert("RGB")), None


def _cmyk_converter(path: Path, icc: bytes | None, warnings: list[str]) -> _Converter:
    """Print separations become screen colours, through the file's profile when it has one.

    Pillow's plain CMYK->RGB ignores ink behaviour and looks washed out, so the
    profile is used when LittleCMS is available; the result is sRGB, which is
    what an untagged RGB file means, hence no profile is written afterwards.
    """
    if icc and ImageCms is not None:
        try:
            transform = ImageCms.buildTransform(
                ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"), "CMYK", "RGB"
            )
        except Exception as exc:  # noqa: BLE001 - a broken profile should not lose the photo
            warnings.append(f"{path}: CMYK colour profile unusable ({_reason(exc)}); colours converted approximately")
        else:
            return lambda strip: (np.asarray(ImageCms.applyTransform(strip, transform)), None)
    return lambda strip: (np.asarray(strip.convert("RGB")), None)


def _dpi(value: Any) -> tuple[float, float] | None:
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if not (0 < x < 1e6 and 0 < y < 1e6):
        return None
    return (x, y)


def _encoder_hints(path: Path, fmt: str, im: Image.Image) -> dict[str, Any]:
    """Encoder settings worth repeating when the output has the source's format."""
    hints: dict[str, Any] = {}
    if fmt == "JPEG":
        from PIL import JpegImagePlugin

        sampling = JpegImagePlugin.get_sampling(im)
        if sampling in (0, 1, 2):
            hints["subsampling"] = sampling
        if im.info.get("progressive") or im.info.get("progression"):
            hints["progressive"] = True
    elif fmt == "TIFF":
        compression = im.info.get("compression")
        if compression in _TIFF_COMPRESSIONS:
            hints["compression"] = compression
    elif fmt == "WEBP":
        # Pillow does not expose lossless-ness; the VP8L chunk is the bitstream marker.
        with contextlib.suppress(OSError), open(path, "rb") as fh:
            hints["lossless"] = b"VP8L" in fh.read(64)
    return hints


# ----------------------------------------------------------------- metadata to keep

# IFD0 tags that describe one file's layout (strips, tiles, samples...) or are
# carried elsewhere (ICC, XMP) or are dangerous to copy (thumbnails, sub-images,
# IPTC/Photoshop blocks). Only the descriptive rest is carried by keep_metadata.
_EXIF_DROP_IFD0 = frozenset(
    {
        254, 255, 256, 257, 258, 259, 262, 263, 264, 265, 266, 273, 274, 277, 278, 279,
        280, 281, 284, 290, 291, 292, 293, 317, 318, 319, 320, 321, 322, 323, 324, 325,
        330, 332, 333, 334, 336, 337, 338, 339, 340, 341, 342, 343, 344, 347, 351,
        400, 401, 402, 403, 404, 405, 512, 513, 514, 515, 517, 518, 519, 520, 521,
        529, 530, 532, 700, 33723, 34377, 34675, 37724,
    }
)
_MAKER_NOTE = 0x927C

# XMP that would undo the protection if carried: named face regions (Adobe/MWG,
# Microsoft), people named as being in the picture, embedded preview images.
_XMP_UNSAFE = re.compile(
    rb"mwg-rs:Regions|MPRI:Regions|MP:RegionInfo|PersonInImage|xmpGImg:image|xmp:Thumbnails",
)
_XMP_ORIENTATION = (
    re.compile(rb'\s*tiff:Orientation="[0-9]"'),
    re.compile(rb"<tiff:Orientation>[0-9]</tiff:Orientation>"),
)


def _sanitised_exif(im: Image.Image, path: Path, warnings: list[str]) -> bytes | None:
    """The source EXIF minus orientation, layout tags, thumbnail and maker notes."""
    try:
        source = im.getexif()
        if not len(source):
            return None
        exif = Image.Exif()
        exif.load(source.tobytes())
        for tag in [t for t in exif if t in _EXIF_DROP_IFD0]:
            del exif[tag]
        if ExifTags.IFD.Exif in exif:
            exif.get_ifd(ExifTags.IFD.Exif).pop(_MAKER_NOTE, None)
        if not len(exif):
            return None
        # IFD1 (the thumbnail) is never serialised by Exif.tobytes().
        return exif.tobytes()
    except Exception as exc:  # noqa: BLE001 - a broken EXIF block is just not kept
        warnings.append(f"{path}: EXIF is unreadable ({_reason(exc)}); it cannot be kept")
        return None


def _sanitised_xmp(xmp: Any, path: Path, warnings: list[str]) -> bytes | None:
    if not xmp:
        return None
    data = xmp.encode("utf-8") if isinstance(xmp, str) else bytes(xmp)
    if _XMP_UNSAFE.search(data):
        warnings.append(
            f"{path}: XMP holds face regions, person names or a preview image; it is never kept"
        )
        return None
    for pattern in _XMP_ORIENTATION:
        data = pattern.sub(b"", data)
    return data


# -------------------------------------------------------------------------- write


def output_format(path: str | os.PathLike[str]) -> str:
    """The format an output path asks for, so the CLI can reject a bad name before any work."""
    suffix = Path(path).suffix.lower()
    try:
        return FORMAT_BY_SUFFIX[suffix]
    except KeyError:
        known = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise InputError(
            f"cannot write {path}: unknown image type {suffix or '(no suffix)'!s}; use one of {known}"
        ) from None


def write_image(
    path: str | os.PathLike[str],
    rgb: np.ndarray,
    like: LoadedImage,
    *,
    keep_metadata: bool = False,
    quality: int = 95,
) -> Path:
    """Atomically write ``rgb`` in the format of ``path``'s suffix, shaped like the source.

    ``like`` supplies alpha, grayscale/16-bit, ICC profile and encoder hints. No
    identifying metadata is written unless ``keep_metadata`` (then the source's
    sanitised EXIF and XMP). Refuses to replace the input file. Returns the path.
    """
    final = Path(path)
    fmt = output_format(final)
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"write_image needs an (H, W, 3) uint8 array, got {rgb.dtype} {rgb.shape}")
    if like.alpha is not None and rgb.shape[:2] != like.alpha.shape:
        raise ValueError(f"image is {rgb.shape[:2]} but the source alpha is {like.alpha.shape}")
    _check_writable(final, like.path)

    image = _image_for_output(rgb, like, fmt)
    params = _save_params(fmt, image.mode, like, keep_metadata, quality)
    _atomic_save(final, image, fmt, params)
    return final


def _check_writable(final: Path, source: Path) -> None:
    if final.is_dir():
        raise OutputError(f"cannot write {final}: it is a folder")
    if not final.parent.is_dir():
        raise OutputError(f"cannot write {final}: folder {final.parent} does not exist")
    same = final.resolve() == source.resolve()
    if not same and final.exists() and source.exists():
        with contextlib.suppress(OSError):
            same = os.path.samefile(final, source)  # hard links, case-insensitive names
    if same:
        raise OutputError(f"cannot write {final}: it is the input file, which is never overwritten")


def _image_for_output(rgb: np.ndarray, like: LoadedImage, fmt: str) -> Image.Image:
    alpha = like.alpha if fmt in _ALPHA_FORMATS else None
    if like.grayscale and fmt in _GRAY_FORMATS:
        gray = Image.fromarray(rgb).convert("L")  # exact for R == G == B
        if alpha is not None:
            return Image.merge("LA", (gray, Image.fromarray(alpha)))
        if like.bit_depth == 16 and fmt in _SIXTEEN_BIT_FORMATS:
            wide = np.asarray(gray).astype(np.uint16) * np.uint16(257)
            return Image.fromarray(wide)  # mode I;16
        return gray
    image = Image.fromarray(rgb)
    if alpha is not None:
        image.putalpha(Image.fromarray(alpha))
    return image


def _icc_colour_space(icc: bytes) -> bytes:
    return icc[16:20] if len(icc) >= 20 else b""


def _save_params(fmt: str, mode: str, like: LoadedImage, keep_metadata: bool, quality: int) -> dict[str, Any]:
    params: dict[str, Any] = {}
    same_format = fmt == like.format
    if like.icc_profile:
        wanted = b"GRAY" if mode in ("L", "LA", "I;16") else b"RGB "
        if _icc_colour_space(like.icc_profile) == wanted:
            params["icc_profile"] = like.icc_profile
    if like.dpi:
        params["dpi"] = like.dpi
    exif = like.exif if keep_metadata else None
    xmp = like.xmp if keep_metadata else None

    if fmt == "JPEG":
        params["quality"] = quality
        if same_format:
            for key in ("subsampling", "progressive"):
                if key in like.encoder_hints:
                    params[key] = like.encoder_hints[key]
        if exif:
            params["exif"] = exif
        if xmp:
            params["xmp"] = xmp
    elif fmt == "PNG":
        if exif:
            params["exif"] = exif
        if xmp:
            info = PngImagePlugin.PngInfo()
            info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8", "replace"))
            params["pnginfo"] = info
    elif fmt == "WEBP":
        params["quality"] = quality
        if same_format and like.encoder_hints.get("lossless"):
            params["lossless"] = True
        if exif:
            params["exif"] = exif
        if xmp:
            params["xmp"] = xmp
    elif fmt == "TIFF":
        params["compression"] = like.encoder_hints.get("compression", "tiff_lzw") if same_format else "tiff_lzw"
        if exif or xmp:
            # Pillow's libtiff path (every compression) cannot write the Exif
            # and GPS sub-directories, so kept metadata means an uncompressed file.
            params["compression"] = "raw"
            tags = Image.Exif()
            if exif:
                tags.load(exif)
            if xmp:
                tags[700] = xmp
            params["exif"] = tags
    return params


def _atomic_save(final: Path, image: Image.Image, fmt: str, params: dict[str, Any]) -> None:
    """Write beside the target, then rename: readers see the old file or the whole new one.

    The temporary name starts with a dot so batch listings skip it, and it is
    removed on any failure, Ctrl-C included.
    """
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".faceskin-tmp", dir=final.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {final}: {exc.strerror or exc}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            image.save(fh, format=fmt, **params)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _new_file_mode())
        os.replace(tmp, final)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {final}: {exc.strerror or _reason(exc)}") from exc
        if isinstance(exc, ValueError):  # encoder limits, e.g. WebP above 16383 px
            raise OutputError(f"cannot write {final} as {fmt}: {_reason(exc)}") from exc
        raise


def _new_file_mode() -> int:
    """Permissions an ordinary new file would get (mkstemp creates 0600)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:  # Linux: read the umask without briefly changing it for every thread
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    umask = os.umask(0o077)
    os.umask(umask)
    return 0o666 & ~umask


# -------------------------------------------------------------------------- batch


def iter_image_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Files in ``folder`` (not its subfolders) with a supported suffix, sorted by name.

    Not recursive, so an output folder placed inside the input folder is never
    read back as input. Dot-files are skipped: they are our own temporary files
    and macOS ``._name.jpg`` resource forks, never photos. Content is checked
    only when each file is read.
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"cannot read folder {folder}: no such folder")
    if not folder.is_dir():
        raise InputError(f"cannot read folder {folder}: it is a file, not a folder")
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        raise InputError(f"cannot read folder {folder}: {exc.strerror or exc}") from None
    return sorted(
        (p for p in entries if p.suffix.lower() in SUPPORTED_SUFFIXES and not p.name.startswith(".") and p.is_file()),
        key=lambda p: p.name,
    )


# -------------------------------------------------------------------------- audit

# Blocks that only describe the pixels; everything else a file carries is
# reported by metadata_leaks().
_JPEG_HARMLESS = frozenset({"APP0 JFIF", "APP2 ICC_PROFILE", "APP14 Adobe"})
_PNG_HARMLESS = frozenset(
    {"IHDR", "PLTE", "IDAT", "IEND", "tRNS", "iCCP", "sRGB", "gAMA", "cHRM", "pHYs", "sBIT", "bKGD"}
    | {"acTL", "fcTL", "fdAT"}  # animation control; frames themselves are counted
)
_WEBP_HARMLESS = frozenset({"VP8 ", "VP8L", "VP8X", "ALPH", "ICCP", "ANIM", "ANMF"})
_VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"})
# Blocks whose content the report already itemises (EXIF tags, XMP, comments, text keys).
_ITEMISED_BLOCKS = frozenset(
    {"APP1 Exif", "APP1 XMP", "APP13 Photoshop", "COM", "eXIf", "tEXt", "zTXt", "iTXt", "EXIF", "XMP "}
)
_TIFF_HARMLESS = frozenset(
    {
        254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 282, 283, 284, 296,
        317, 320, 322, 323, 324, 325, 338, 339, 340, 341, 347, 529, 530, 531, 532, 34675,
    }
)


def strip_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What metadata a file carries, read from its container rather than through Pillow's view.

    Parsing the JPEG segments, PNG chunks and WebP chunks directly means the
    audit does not share blind spots with the writer it checks. Keys:
    ``format``, ``blocks`` (container blocks in file order), ``exif`` (tag names
    in IFD0 and the Exif IFD), ``gps`` (GPS tag names), ``exif_thumbnail``,
    ``maker_note``, ``xmp``, ``iptc``, ``icc``, ``comments``, ``text`` (PNG text
    keys), ``tiff_tags`` (non-layout TIFF tag names), ``frames``,
    ``trailing_bytes`` (data after the image's end, e.g. appended videos),
    ``c2pa`` (None, or whose C2PA manifest the file carries: "faceskin"/"other").
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot audit {path}: {exc.strerror or exc}") from None
    report: dict[str, Any] = {
        "format": None,
        "blocks": [],
        "exif": [],
        "gps": [],
        "exif_thumbnail": False,
        "maker_note": False,
        "xmp": False,
        "iptc": False,
        "icc": False,
        "comments": [],
        "text": [],
        "tiff_tags": [],
        "frames": 1,
        "trailing_bytes": 0,
    }
    if data[:2] == b"\xff\xd8":
        report["format"] = "JPEG"
        _scan_jpeg(data, report)
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        report["format"] = "PNG"
        _scan_png(data, report)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        report["format"] = "WEBP"
        _scan_webp(data, report)
    elif data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        report["format"] = "TIFF"
        _scan_tiff(path, report)
    else:
        raise InputError(f"cannot audit {path}: not a JPEG, PNG, WebP or TIFF file")
    report["c2pa"] = _c2pa_origin(path) if any(_is_c2pa_block(b) for b in report["blocks"]) else None
    return report


def _is_c2pa_block(block: str) -> bool:
    """JPEG APP11 JUMBF ("JP" + box), PNG caBX and WebP C2PA chunks: where C2PA puts its manifest store."""
    return block.startswith("APP11 JP") or block in ("caBX", "C2PA")


def _c2pa_origin(path: Path) -> str:
    """"faceskin" when the file's manifest is faceskin's own label, else "other".

    faceskin's manifest says what was altered and by which tool, with no
    thumbnail, ingredient or anything of the source (see :mod:`faceskin.label`),
    so it is the label the output is meant to carry, not a leak. Any other
    manifest (a camera's, an editor's, one that cannot be read) may describe
    the source, the device or the author.
    """
    from faceskin.label import read_manifest

    try:
        m = read_manifest(path)
    except Exception:  # noqa: BLE001 - an unreadable store is judged as foreign, never as clean
        return "other"
    return "faceskin" if m.by_faceskin and not m.has_ingredients and not m.has_thumbnail else "other"


def metadata_leaks(report_or_path: dict[str, Any] | str | os.PathLike[str]) -> list[str]:
    """Human-readable list of everything identifying in a file; empty means clean.

    The ICC profile is not listed (see the module docstring for why it is kept),
    nor faceskin's own C2PA label (see :func:`_c2pa_origin`). Video files
    (by suffix) are audited by :func:`faceskin.videofile.video_metadata_leaks`.
    """
    if not isinstance(report_or_path, dict) and Path(report_or_path).suffix.lower() in _VIDEO_SUFFIXES:
        from faceskin.videofile import video_metadata_leaks

        return video_metadata_leaks(report_or_path)
    r = report_or_path if isinstance(report_or_path, dict) else strip_report(report_or_path)
    leaks: list[str] = []
    if r["exif"]:
        leaks.append("EXIF tags: " + ", ".join(r["exif"]))
    if r["gps"]:
        leaks.append("GPS tags: " + ", ".join(r["gps"]))
    for key, what in (
        ("exif_thumbnail", "EXIF thumbnail"),
        ("maker_note", "maker note"),
        ("xmp", "XMP"),
        ("iptc", "IPTC/Photoshop block"),
    ):
        if r[key]:
            leaks.append(what)
    if r["comments"]:
        leaks.append(f"{len(r['comments'])} comment(s)")
    if r["text"]:
        leaks.append("text chunks: " + ", ".join(r["text"]))
    if r["tiff_tags"]:
        leaks.append("TIFF tags: " + ", ".join(r["tiff_tags"]))
    if r["frames"] > 1:
        leaks.append(f"{r['frames']} frames/pages")
    if r["trailing_bytes"]:
        leaks.append(f"{r['trailing_bytes']} bytes after the image end")
    if r["format"] != "TIFF":  # TIFF metadata lives in tags, itemised above
        harmless = {"JPEG": _JPEG_HARMLESS, "PNG": _PNG_HARMLESS, "WEBP": _WEBP_HARMLESS}[r["format"]]
        unknown = [b for b in r["blocks"] if b not in harmless and b not in _ITEMISED_BLOCKS]
        if r.get("c2pa") == "faceskin":
            unknown = [b for b in unknown if not _is_c2pa_block(b)]
        if unknown:
            leaks.append("other blocks: " + ", ".join(unknown))
    return leaks


def _exif_into_report(exif_bytes: bytes, report: dict[str, Any]) -> None:
    exif = Image.Exif()
    try:
        exif.load(exif_bytes)
    except Exception:  # noqa: BLE001 - an unparsable EXIF block still counts as present
        report["exif"].append("(unparsable EXIF)")
        return
    names = [_tag_name(t) for t in exif if t not in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo)]
    if ExifTags.IFD.Exif in exif:
        sub = exif.get_ifd(ExifTags.IFD.Exif)
        names += [_tag_name(t) for t in sub]
        report["maker_note"] = report["maker_note"] or _MAKER_NOTE in sub
    if ExifTags.IFD.GPSInfo in exif:
        report["gps"] += [ExifTags.GPSTAGS.get(t, str(t)) for t in exif.get_ifd(ExifTags.IFD.GPSInfo)]
        if not report["gps"]:
            report["gps"].append("(empty GPS IFD)")
    report["exif"] += sorted(set(names))
    with contextlib.suppress(Exception):
        if exif.get_ifd(ExifTags.IFD.IFD1):
            report["exif_thumbnail"] = True


def _tag_name(tag: int) -> str:
    return ExifTags.TAGS.get(tag) or TiffTags.lookup(tag).name or str(tag)


def _scan_jpeg(data: bytes, report: dict[str, Any]) -> None:
    pos = 2
    n = len(data)
    while pos + 1 < n:
        if data[pos] != 0xFF:
            pos = data.find(b"\xff", pos)  # garbage between segments: find the next marker
            if pos < 0:
                return
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # EOI: anything after it was appended (MPF images, videos...)
            report["trailing_bytes"] = n - (pos + 2)
            return
        if marker in (0x00, 0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if pos + 4 > n:
            return
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        _classify_jpeg_segment(marker, data[pos + 4 : pos + 2 + length], report)
        pos += 2 + length
        if marker == 0xDA:  # SOS: skip entropy-coded data (FF is stuffed as FF00 there)
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= n:
                    return
                following = data[pos + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    pos += 2
                    continue
                break


def _classify_jpeg_segment(marker: int, payload: bytes, report: dict[str, Any]) -> None:
    if marker == 0xFE:
        report["blocks"].append("COM")
        report["comments"].append(payload.decode("latin-1"))
        return
    if not 0xE0 <= marker <= 0xEF:
        return  # tables, frame and scan headers: pixel data only
    app = f"APP{marker - 0xE0}"
    if marker == 0xE1 and payload.startswith(b"Exif\x00"):
        report["blocks"].append("APP1 Exif")
        _exif_into_report(payload, report)
    elif marker == 0xE1 and payload.startswith((b"http://ns.adobe.com/xap/1.0/", b"http://ns.adobe.com/xmp/")):
        report["blocks"].append("APP1 XMP")
        report["xmp"] = True
    elif marker == 0xE2 and payload.startswith(b"ICC_PROFILE\x00"):
        report["blocks"].append("APP2 ICC_PROFILE")
        report["icc"] = True
    elif marker == 0xED:
        report["blocks"].append("APP13 Photoshop")
        report["iptc"] = True
    else:
        ident = payload.split(b"\x00", 1)[0][:24].decode("latin-1", "replace")
        report["blocks"].append(f"{app} {ident}".strip())


def _scan_png(data: bytes, report: dict[str, Any]) -> None:
    pos = 8
    n = len(data)
    frames = 0
    while pos + 8 <= n:
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        payload = data[pos + 8 : pos + 8 + length]
        report["blocks"].append(ctype.decode("latin-1"))
        if ctype in (b"tEXt", b"zTXt", b"iTXt"):
            key = payload.split(b"\x00", 1)[0].decode("latin-1")
            if key == "XML:com.adobe.xmp":
                report["xmp"] = True
            elif key.startswith("Raw profile type exif"):
                report["exif"].append("(EXIF in text chunk)")
            else:
                report["text"].append(key)
        elif ctype == b"eXIf":
            _exif_into_report(b"Exif\x00\x00" + payload, report)
        elif ctype == b"iCCP":
            report["icc"] = True
        elif ctype == b"fcTL":
            frames += 1
        pos += 12 + length
        if ctype == b"IEND":
            report["trailing_bytes"] = max(0, n - pos)
            break
    report["frames"] = max(1, frames)


def _scan_webp(data: bytes, report: dict[str, Any]) -> None:
    riff_end = min(len(data), 8 + struct.unpack("<I", data[4:8])[0])
    pos = 12
    frames = 0
    while pos + 8 <= riff_end:
        ctype, length = struct.unpack("<4sI", data[pos : pos + 8])
        payload = data[pos + 8 : pos + 8 + length]
        report["blocks"].append(ctype.decode("latin-1"))
        if ctype == b"EXIF":
            _exif_into_report(payload if payload.startswith(b"Exif") else b"Exif\x00\x00" + payload, report)
        elif ctype == b"XMP ":
            report["xmp"] = True
        elif ctype == b"ICCP":
            report["icc"] = True
        elif ctype == b"ANMF":
            frames += 1
        pos += 8 + length + (length & 1)
    report["frames"] = max(1, frames)
    report["trailing_bytes"] = max(0, len(data) - riff_end)


def _scan_tiff(path: Path, report: dict[str, Any]) -> None:
    """TIFF keeps metadata as tags of each page, so every page's tags are checked."""
    with _open_without_pillow_limit(path) as im:
        frames = int(getattr(im, "n_frames", 1) or 1)
        report["frames"] = frames
        for index in range(frames):
            im.seek(index)
            report["blocks"].append(f"IFD{index}")
            exif = im.getexif()
            for tag in im.tag_v2:
                if tag == 34675:
                    report["icc"] = True
                elif tag in _TIFF_HARMLESS:
                    continue
                elif tag == ExifTags.IFD.Exif:
                    sub = exif.get_ifd(ExifTags.IFD.Exif)
                    report["exif"] += [_tag_name(t) for t in sub] or ["(empty Exif IFD)"]
                    report["maker_note"] = report["maker_note"] or _MAKER_NOTE in sub
                elif tag == ExifTags.IFD.GPSInfo:
                    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
                    report["gps"] += [ExifTags.GPSTAGS.get(t, str(t)) for t in gps] or ["(empty GPS IFD)"]
                elif tag == 700:
                    report["xmp"] = True
                elif tag in (33723, 34377):
                    report["iptc"] = True
                else:
                    report["tiff_tags"].append(_tag_name(tag))
    for key in ("exif", "gps", "tiff_tags"):
        report[key] = sorted(set(report[key]))
