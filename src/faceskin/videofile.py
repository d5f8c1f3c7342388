"""Streaming video decode and encode: the one place faceskin touches containers and codecs.

Why streaming: an hour of 1080p is ~100k frames, ~600 GB as RGB. Frames flow
decode -> process -> encode one at a time, and audio packets are copied into the
output in file order as they are demuxed, so memory stays bounded by the codecs'
own look-ahead (tens of frames), whatever the clip length.

Decisions a caller must know:

* **Rotation is baked in.** Phone clips store landscape pixels plus a display
  matrix ("rotate" tag). Face detectors need upright faces, so every frame is
  turned upright here (rotation and any flips of the display matrix applied to
  the pixels) and the output carries the upright pixels with *no* rotation tag:
  it plays the same way everywhere, including players that ignore the tag.
  ``VideoReader.width``/``height`` are the upright dimensions.
* **Timestamps pass through.** Each output frame keeps its input pts in the input
  time base, so variable-frame-rate clips (phones) keep their timing and stay in
  sync with the untouched audio. No frame is dropped or duplicated.
* **Audio is remuxed, not re-encoded:** packets are copied byte for byte with
  their pts/dts (``audio=False`` drops them). A codec the output container
  cannot hold (FLAC in .mov) is an :class:`OutputError` before any encoding. Subtitle, data and extra video streams (GoPro GPS telemetry,
  timecode, cover art) are dropped: they can carry identifying data we cannot
  vet.
* **Metadata is stripped by default:** container tags (creation_time, location
  ISO 6709, make/model, encoder) are not copied and the muxer's own "encoder"
  tag is suppressed (bitexact; Matroska keeps a bare "Lavf" without version).
  libx264 still writes its version/settings SEI inside the video bitstream; it
  says nothing about the person or the device. ``keep_metadata=True`` copies the
  container tags.
* **Colour:** frames are converted to RGB with the input's YUV matrix and range
  (guessed as players do when untagged: BT.709 from 720 lines up, BT.601 below)
  and written back as limited-range yuv420p with the same matrix, explicitly
  tagged, with the input's primaries/transfer tags, and accurate rounding, so
  colours survive the round trip without drift. HDR (10-bit HLG/PQ) is reduced
  to 8 bits with its tags kept.
* **Odd sizes** are padded by one replicated row/column to the even size
  yuv420p requires.
* **Atomic output:** the encoder writes a hidden temp file next to the target,
  renamed over the final name only after the trailer is written. Any exception,
  KeyboardInterrupt included, deletes the temp file; nothing appears under the
  final name. (A SIGKILL can leave the hidden ``.NAME.*.partial.EXT`` behind, never
  a truncated file under the final name.)
* **Damaged input fails loudly:** decode/demux errors, a sample index pointing
  past the end of the file, or fewer decoded frames than the index promises
  raise :class:`InputError` mid-stream, and since that happens inside the
  writer's context the partial output is deleted.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import Interpolation

from faceskin.errors import InputError, OutputError

# Containers the writer accepts; all take H.264 and the common audio codecs.
OUTPUT_SUFFIXES = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}

DEFAULT_CRF = 18
DEFAULT_PRESET = "medium"

# Demuxers that open still images or text (a .txt becomes an "ANSI art video").
_NOT_VIDEO_FORMATS = {"image2", "tty", "apng"}

# FFmpeg AVColorSpace -> swscale matrix name understood by PyAV's reformat.
_MATRIX_BY_AVCOL_SPC = {1: "itu709", 4: "fcc", 5: "itu601", 6: "itu601", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}
# swscale matrix -> the AVColorSpace tag written on output.
_AVCOL_SPC_BY_MATRIX = {"itu709": 1, "fcc": 4, "itu601": 6, "smpte240m": 7, "bt2020": 9}
_AVCOL_RANGE_MPEG, _AVCOL_RANGE_JPEG = 1, 2
# swscale's default RGB<->YUV rounding darkens every channel by ~1 level per round
# trip; accurate rounding with full chroma interpolation removes that bias for
# ~1 ms per 640x480 frame, small next to H.264 encoding.
_SWS_FLAGS = int(Interpolation.BILINEAR) | int(Interpolation.ACCURATE_RND) | int(Interpolation.FULL_CHR_H_INT)
_UNSPECIFIED = 2  # AVCOL_PRI/TRC/SPC_UNSPECIFIED


@dataclass(frozen=True)
class VideoFrame:
    """One decoded frame, upright. ``pts`` is in ``time_base`` units; ``time`` in seconds."""

    index: int
    pts: int
    time_base: Fraction
    rgb: np.ndarray

    @property
    def time(self) -> float:
        return float(self.pts * self.time_base)


@dataclass(frozen=True)
class AudioInfo:
    """What the reader saw of one audio stream (it is copied, never decoded)."""

    index: int
    codec: str
    sample_rate: int
    channels: int
    time_base: Fraction


@dataclass(frozen=True)
class Colour:
    """How the input's YUV maps to RGB, and the tags to repeat on output.

    ``matrix`` is a swscale name (``itu709``, ``itu601``, ``bt2020``...);
    ``full_range`` is True for JPEG-range input; ``tagged`` says whether the
    matrix came from the file or was guessed from the frame height.
    """

    matrix: str = "itu709"
    full_range: bool = False
    primaries: int = _UNSPECIFIED
    transfer: int = _UNSPECIFIED
    tagged: bool = False


@dataclass(frozen=True)
class _Orientation:
    """Pixel operations that turn decoded pixels upright (from the display matrix).

    ``rotation`` is counter-clockwise degrees in (-180, 180] and ``mirrored``
    means a horizontal mirror applied after it, the same decomposition as
    PyAV's ``set_display_rotation(degrees, hflip=...)``.
    """

    transpose: bool = False
    flip_rows: bool = False
    flip_cols: bool = False
    rotation: int = 0
    mirrored: bool = False

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        if self.transpose:
            rgb = rgb.transpose(1, 0, 2)
        if self.flip_rows:
            rgb = rgb[::-1]
        if self.flip_cols:
            rgb = rgb[:, ::-1]
        if self.transpose or self.flip_rows or self.flip_cols:
            rgb = np.ascontiguousarray(rgb)
        return rgb


def _orientation(frame: av.VideoFrame, path: Path) -> _Orientation:
    """Read the display matrix and reduce it to transpose/flip steps.

    The matrix maps a decoded pixel (p, q) to display (a*p + c*q, b*p + d*q) with
    y down (FFmpeg's AV_PKT_DATA_DISPLAYMATRIX, 16.16 fixed point). For multiples
    of 90 degrees, with or without mirroring, [a b; c d] is a signed permutation:
    either diagonal (flips only) or anti-diagonal (transpose, then flips).
    """
    matrix = None
    for side in frame.side_data:
        if side.type == av.sidedata.sidedata.Type.DISPLAYMATRIX:
            matrix = np.frombuffer(memoryview(side), dtype="<i4")
    if matrix is None or matrix.size != 9:
        return _Orientation()
    a, b, c, d = (int(round(v / 65536)) for v in (matrix[0], matrix[1], matrix[3], matrix[4]))
    mirrored = a * d - b * c < 0
    if mirrored:  # undo the mirror (negate display x) to read the rotation alone
        a, c = -a, -c
    rotation = int(round(-np.degrees(np.arctan2(b, a))))
    rotation = 180 if rotation == -180 else rotation
    if b == 0 and c == 0 and abs(a) == 1 and abs(d) == 1:
        a = -a if mirrored else a
        return _Orientation(False, flip_rows=d < 0, flip_cols=a < 0, rotation=rotation, mirrored=mirrored)
    if a == 0 and d == 0 and abs(b) == 1 and abs(c) == 1:
        c = -c if mirrored else c
        return _Orientation(True, flip_rows=b < 0, flip_cols=c < 0, rotation=rotation, mirrored=mirrored)
    raise InputError(f"{path}: unsupported display rotation {frame.rotation} degrees (only multiples of 90)")


def _colour(frame: av.VideoFrame, height: int) -> Colour:
    matrix = _MATRIX_BY_AVCOL_SPC.get(int(frame.colorspace))
    tagged = matrix is not None
    if matrix is None:  # what players assume for untagged video
        matrix = "itu709" if height >= 720 else "itu601"
    return Colour(
        matrix=matrix,
        full_range=int(frame.color_range) == _AVCOL_RANGE_JPEG or frame.format.name.startswith("yuvj"),
        primaries=int(frame.color_primaries),
        transfer=int(frame.color_trc),
        tagged=tagged,
    )


def _reject(path: Path, why: str, err: BaseException | None = None) -> InputError:
    detail = f" ({err.strerror if isinstance(err, av.FFmpegError) and err.strerror else err})" if err else ""
    return InputError(f"{path}: {why}{detail}")


class VideoReader:
    """A probed video file. Iterate for upright RGB frames; each iteration re-reads the file.

    Opening decodes the first frame: it proves the file decodes, and the frame
    carries the display matrix (rotation) and colour tags that the header may
    not. Iterations open their own demuxer, so the reader holds no file handle
    between them.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise InputError(f"{self.path}: is a folder, not a video file")
        container = self._open()
        try:
            self._probe(container)
        finally:
            container.close()

    def _open(self) -> av.container.InputContainer:
        try:
            return av.open(str(self.path), metadata_errors="ignore")
        except av.FFmpegError as err:
            raise _reject(self.path, "not a readable media file (unknown format, truncated or corrupt)", err) from None
        except OSError as err:
            raise _reject(self.path, f"cannot read file ({err.strerror or err})") from None

    def _probe(self, container: av.container.InputContainer) -> None:
        fmt = container.format.name
        if fmt in _NOT_VIDEO_FORMATS or fmt.endswith("_pipe"):
            raise InputError(f"{self.path}: is a still image or text file ({fmt}), not a video")
        videos = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        audios = list(container.streams.audio)
        if not videos:
            if audios:
                raise InputError(f"{self.path}: audio-only file, it has no video stream")
            raise InputError(f"{self.path}: has no video stream")
        stream = videos[0]
        if stream.codec_context is None:
            raise InputError(f"{self.path}: unsupported video codec (no decoder in this FFmpeg build)")
        self._stream_index = stream.index
        self.codec: str = stream.codec_context.name
        self.time_base: Fraction = stream.time_base or Fraction(1, 90000)
        rate = stream.average_rate or stream.guessed_rate
        self.fps: float | None = float(rate) if rate else None
        self.frame_count: int | None = stream.frames or None
        if stream.duration is not None and stream.time_base:
            self.duration: float | None = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            self.duration = container.duration / av.time_base
        else:
            self.duration = None
        self.container_format: str = fmt
        self.metadata: dict[str, str] = dict(container.metadata)
        self.audio: list[AudioInfo] = [
            AudioInfo(
                index=s.index,
                codec=s.codec_context.name if s.codec_context else "unknown",
                sample_rate=s.codec_context.sample_rate if s.codec_context else 0,
                channels=s.codec_context.channels if s.codec_context else 0,
                time_base=s.time_base,
            )
            for s in audios
        ]
        self._expected_frames = self._check_index(container, stream)

        decoded = self._decode(container, stream, audio=False)
        first = next(decoded, None)
        decoded.close()
        if first is None:
            raise InputError(f"{self.path}: has no video frames")
        self._orient = _orientation(first, self.path)
        # Counter-clockwise degrees the stored pixels were turned to stand upright
        # (FFmpeg's sign: a phone's "rotate=90" tag reads -90), and whether mirrored.
        self.rotation: int = self._orient.rotation
        self.mirrored: bool = self._orient.mirrored
        coded_w, coded_h = first.width, first.height
        self.width, self.height = (coded_h, coded_w) if self._orient.transpose else (coded_w, coded_h)
        self.colour: Colour = _colour(first, coded_h)
        sar = stream.sample_aspect_ratio
        if sar and self._orient.transpose:
            sar = 1 / sar
        self.sample_aspect_ratio: Fraction | None = sar if sar and sar != 1 else None

    def _check_index(self, container: av.container.InputContainer, stream: av.video.VideoStream) -> int | None:
        """Catch truncation the demuxer would hide: MP4/MOV index every sample up front.

        A copy cut at a packet boundary otherwise just ends early without an
        error; the index still lists the lost samples. Returns how many video
        frames the index promises (None where the format has no full index).
        """
        if not container.format.name.startswith("mov"):
            return None
        size = self.path.stat().st_size
        for s in container.streams:
            entries = s.index_entries
            if len(entries) and max(e.pos + e.size for e in entries) > size:
                raise InputError(f"{self.path}: truncated (the file ends before its last frames)")
        return sum(1 for e in stream.index_entries if not e.is_discard) or None

    def _decode(
        self, container: av.container.InputContainer, stream: av.video.VideoStream, audio: bool
    ) -> Iterator[av.VideoFrame | av.Packet]:
        """Decoded video frames and (optionally) raw audio packets, in file order."""
        stream.thread_type = "AUTO"
        wanted = [stream, *container.streams.audio] if audio else [stream]
        try:
            for packet in container.demux(wanted):
                if packet.stream_index == stream.index:
                    yield from packet.decode()
                elif packet.size and packet.dts is not None:
                    yield packet
        except av.FFmpegError as err:
            raise _reject(self.path, "corrupt or truncated video, decoding failed", err) from None

    def frames(self, audio: bool = False) -> Iterator[VideoFrame | av.Packet]:
        """One pass over the file: upright :class:`VideoFrame` s, plus audio packets if asked.

        Frames are numbered from 0 and get strictly increasing pts (a missing or
        repeated pts, which encoders and muxers reject, becomes previous + 1 tick).
        Raises :class:`InputError` mid-stream on damage, including fewer frames
        than the index promised.
        """
        with self.demux(audio=audio) as items:
            yield from items

    def demux(self, audio: bool = True) -> DemuxPass:
        """An open pass whose audio streams can template a writer's (see :func:`transcode`)."""
        return DemuxPass(self, audio)

    def __iter__(self) -> Iterator[VideoFrame]:
        return self.frames(audio=False)  # type: ignore[return-value]

    def __repr__(self) -> str:
        return (
            f"VideoReader({str(self.path)!r}, {self.width}x{self.height}, {self.codec}, fps={self.fps}, "
            f"frames={self.frame_count}, rotation={self.rotation}, audio={[a.codec for a in self.audio]})"
        )


class DemuxPass:
    """One read of a video: the open container, its audio streams, and the item iterator."""

    def __init__(self, reader: VideoReader, audio: bool) -> None:
        self.reader = reader
        self.container = reader._open()
        self.video_stream = self.container.streams[reader._stream_index]
        self.audio_streams = list(self.container.streams.audio) if audio else []
        self._audio = audio

    def __iter__(self) -> Iterator[VideoFrame | av.Packet]:
        r = self.reader
        src_range = "JPEG" if r.colour.full_range else "MPEG"
        index = 0
        last_pts: int | None = None
        step = max(1, round(1 / (r.fps * r.time_base))) if r.fps else 1
        for item in r._decode(self.container, self.video_stream, self._audio):
            if isinstance(item, av.Packet):
                yield item
                continue
            pts = item.pts
            if pts is None:
                pts = 0 if last_pts is None else last_pts + step
            elif last_pts is not None and pts <= last_pts:
                pts = last_pts + 1
            rgb = item.to_ndarray(
                format="rgb24", src_colorspace=r.colour.matrix, src_color_range=src_range, interpolation=_SWS_FLAGS
            )
            yield VideoFrame(index, pts, r.time_base, r._orient.apply(rgb))
            last_pts = pts
            index += 1
        if index == 0:
            raise InputError(f"{r.path}: has no video frames")
        if r._expected_frames is not None and index < r._expected_frames:
            raise InputError(f"{r.path}: corrupt or truncated, decoded {index} of {r._expected_frames} frames")

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> DemuxPass:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_video(path: str | os.PathLike) -> VideoReader:
    """Probe ``path``; raises :class:`InputError` with one line for anything that is not a decodable video."""
    return VideoReader(path)


def _output_format(path: Path) -> str:
    fmt = OUTPUT_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        allowed = ", ".join(sorted(OUTPUT_SUFFIXES))
        raise OutputError(f"{path}: cannot write '{path.suffix or 'no extension'}' video; use one of {allowed}")
    return fmt


class VideoWriter:
    """H.264 writer with pass-through timestamps, remuxed audio and an atomic rename.

    Use as a context manager; :meth:`write` frames with their input pts (in
    ``time_base``) and :meth:`mux_audio` the demuxed audio packets in file
    order. The file appears under ``path`` only when the block exits cleanly.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        width: int,
        height: int,
        time_base: Fraction,
        *,
        fps: float | None = None,
        crf: float = DEFAULT_CRF,
        preset: str = DEFAULT_PRESET,
        audio_templates: list[av.audio.AudioStream] | tuple = (),
        colour: Colour | None = None,
        sample_aspect_ratio: Fraction | None = None,
        keep_metadata: bool = False,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self._format = _output_format(self.path)
        if not self.path.parent.is_dir():
            raise OutputError(f"{self.path}: output folder {self.path.parent} does not exist")
        if self.path.is_dir():
            raise OutputError(f"{self.path}: is a folder")
        if width < 1 or height < 1:
            raise ValueError(f"bad frame size {width}x{height}")
        self.width, self.height = width, height
        self._enc_w, self._enc_h = width + width % 2, height + height % 2
        self.time_base = Fraction(time_base)
        self.fps = fps
        self.crf, self.preset = crf, preset
        self.colour = colour or Colour(matrix="itu709" if height >= 720 else "itu601")
        self.sample_aspect_ratio = sample_aspect_ratio
        self.keep_metadata = keep_metadata
        self.metadata = dict(metadata or {})
        self._templates = list(audio_templates)
        self._container: av.container.OutputContainer | None = None
        self._tmp: Path | None = None
        self.frames_written = 0
        self.audio_packets_written = 0
        self._last_pts: int | None = None

    def __enter__(self) -> VideoWriter:
        try:
            fd, tmp = tempfile.mkstemp(
                dir=self.path.parent, prefix=f".{self.path.stem}.", suffix=f".partial{self.path.suffix}"
            )
        except OSError as err:
            raise OutputError(f"{self.path}: cannot write in {self.path.parent} ({err.strerror or err})") from None
        os.close(fd)
        self._tmp = Path(tmp)
        try:
            self._start()
        except BaseException:
            self._discard()
            raise
        return self

    def _start(self) -> None:
        options = {"fflags": "+bitexact"}  # no "encoder: Lavf..." tag
        if self._format in ("mp4", "mov"):
            options["movflags"] = "+faststart"  # index first: plays while downloading
            # the input's own clock: with the muxer's default timescale the edit list of a clip
            # whose first frame is not at 0 rounds, and every timestamp shifts a few ticks
            options["movie_timescale"] = str(self.time_base.denominator)
        self._container = av.open(str(self._tmp), "w", format=self._format, options=options)
        if self.keep_metadata:
            for key, value in self.metadata.items():
                if key not in ("major_brand", "minor_version", "compatible_brands", "encoder"):
                    self._container.metadata[key] = value

        stream = self._container.add_stream("libx264")
        stream.width, stream.height = self._enc_w, self._enc_h
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = self.time_base
        stream.time_base = self.time_base
        if self.fps:
            stream.codec_context.framerate = Fraction(self.fps).limit_denominator(100000)
        stream.codec_context.options = {"crf": str(self.crf), "preset": self.preset}
        stream.codec_context.colorspace = _AVCOL_SPC_BY_MATRIX.get(self.colour.matrix, _UNSPECIFIED)
        stream.codec_context.color_range = _AVCOL_RANGE_MPEG
        stream.codec_context.color_primaries = self.colour.primaries
        stream.codec_context.color_trc = self.colour.transfer
        if self.sample_aspect_ratio:
            stream.codec_context.sample_aspect_ratio = self.sample_aspect_ratio
        self._video = stream

        self._audio_out: dict[int, av.stream.Stream] = {}
        for template in self._templates:
            out = self._container.add_stream_from_template(template)
            out.metadata.clear()
            language = template.metadata.get("language")
            if language:
                out.metadata["language"] = language
            self._audio_out[template.index] = out
        try:
            self._container.start_encoding()  # header now: a container/codec mismatch fails before any work
        except av.FFmpegError as err:
            if self._templates:
                codecs = ", ".join(sorted({t.codec_context.name for t in self._templates}))
                raise OutputError(
                    f"{self.path}: a {self.path.suffix} file cannot hold this video's {codecs} audio "
                    f"({err.strerror or err}); write .mkv instead, or drop the audio"
                ) from None
            raise OutputError(f"{self.path}: cannot start writing ({err.strerror or err})") from None

    def write(self, rgb: np.ndarray, pts: int) -> None:
        """Encode one upright RGB frame at ``pts`` (``time_base`` units, strictly increasing)."""
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise ValueError(f"frame must be uint8 {(self.height, self.width, 3)}, got {rgb.dtype} {rgb.shape}")
        if (self._enc_w, self._enc_h) != (self.width, self.height):
            rgb = np.pad(rgb, ((0, self._enc_h - self.height), (0, self._enc_w - self.width), (0, 0)), mode="edge")
        if self._last_pts is not None and pts <= self._last_pts:
            raise ValueError(f"pts must increase: {pts} after {self._last_pts}")
        self._last_pts = int(pts)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame = frame.reformat(
            format="yuv420p", dst_colorspace=self.colour.matrix, dst_color_range="MPEG", interpolation=_SWS_FLAGS
        )
        frame.pts = int(pts)
        frame.time_base = self.time_base
        self._mux(self._video.encode(frame))
        self.frames_written += 1

    def mux_audio(self, packet: av.Packet) -> None:
        """Copy one demuxed audio packet unchanged (bytes, pts, dts, duration)."""
        out = self._audio_out.get(packet.stream_index)
        if out is None:
            return
        packet.stream = out
        self._mux([packet])
        self.audio_packets_written += 1

    def _mux(self, packets: list[av.Packet]) -> None:
        try:
            self._container.mux(packets)
        except av.FFmpegError as err:
            raise OutputError(f"{self.path}: writing failed ({err.strerror or err})") from None

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> None:
        if exc_type is not None:
            self._discard()
            return
        try:
            if self.frames_written == 0:
                raise OutputError(f"{self.path}: no frames were written")
            self._mux(self._video.encode(None))
            self._container.close()
            self._container = None
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self._tmp, 0o666 & ~umask)  # mkstemp made it owner-only
            os.replace(self._tmp, self.path)
            self._tmp = None
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # the file is being thrown away; its trailer does not matter
                pass
            self._container = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None


@dataclass
class TranscodeResult:
    """What :func:`transcode` did; ``fps`` is end-to-end frames per wall-clock second."""

    output: Path
    frames: int
    audio_packets: int
    seconds: float
    width: int
    height: int
    rotation: int
    extra: dict = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def transcode(
    in_path: str | os.PathLike,
    out_path: str | os.PathLike,
    process: Callable[[VideoFrame], np.ndarray] | None = None,
    *,
    crf: float = DEFAULT_CRF,
    preset: str = DEFAULT_PRESET,
    audio: bool = True,
    keep_metadata: bool = False,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> TranscodeResult:
    """Stream ``in_path`` through ``process`` into an H.264 file at ``out_path``.

    ``process`` gets each upright :class:`VideoFrame` and returns the RGB image
    to encode (same shape, uint8); identity when None. Audio packets are muxed
    as they are demuxed, interleaved with the video, so nothing is buffered
    beyond the encoder's look-ahead. Any exception leaves no file at ``out_path``.
    """
    in_path, out_path = Path(in_path), Path(out_path)
    _output_format(out_path)
    if _same_file(in_path, out_path) or in_path.resolve() == out_path.resolve():
        raise OutputError(f"{out_path}: output would overwrite the input")
    reader = open_video(in_path)
    started = time.perf_counter()
    with reader.demux(audio=audio) as items:
        writer = VideoWriter(
            out_path,
            reader.width,
            reader.height,
            reader.time_base,
            fps=reader.fps,
            crf=crf,
            preset=preset,
            audio_templates=items.audio_streams,
            colour=reader.colour,
            sample_aspect_ratio=reader.sample_aspect_ratio,
            keep_metadata=keep_metadata,
            metadata=reader.metadata,
        )
        with writer:
            for item in items:
                if isinstance(item, av.Packet):
                    writer.mux_audio(item)
                    continue
                rgb = item.rgb if process is None else process(item)
                writer.write(rgb, item.pts)
                if on_progress is not None:
                    on_progress(writer.frames_written, reader.frame_count)
    return TranscodeResult(
        output=out_path,
        frames=writer.frames_written,
        audio_packets=writer.audio_packets_written,
        seconds=time.perf_counter() - started,
        width=reader.width,
        height=reader.height,
        rotation=reader.rotation,
    )


# ---------------------------------------------------------------- metadata audit

#: Tag names (lower case; a prefix before "-" or ":" also counts) that say who, where, when or with what
#: device: QuickTime/MP4 udta and mdta keys as FFmpeg names them, Matroska tags.
_PRIVATE_TAGS = frozenset({
    "location", "location-eng", "creation_time", "date", "make", "model", "serial", "artist", "author",
    "title", "comment", "description", "copyright", "keywords", "album", "composer", "performer", "software",
})
_PRIVATE_PREFIXES = ("com.apple.quicktime.", "com.android.", "location", "xmp", "gps")
#: The XMP uuid box of ISO-BMFF files (and the packet's namespace, for XMP put anywhere else).
_XMP_MARKERS = (bytes.fromhex("be7acfcb97a942e89c71999491e3afac"), b"<x:xmpmeta", b"http://ns.adobe.com/xap/1.0/")
#: The C2PA manifest's uuid box; faceskin's own manifest is judged by reading it, not by its box.
_C2PA_UUID = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")


def video_metadata_leaks(path: str | os.PathLike) -> list[str]:
    """Identifying metadata in a video file: container and stream tags, XMP, and a foreign C2PA
    manifest; empty means clean.

    The audit reads tags through FFmpeg and scans the bytes for XMP so it does
    not share the writer's view of the file. A C2PA manifest is not a leak when
    it is faceskin's own (nothing of the source, no thumbnail or ingredient:
    see :mod:`faceskin.label`); any other manifest may carry the camera's, so
    it is listed.
    """
    path = Path(path)
    leaks: list[str] = []
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            tagged = [("container", dict(container.metadata))]
            tagged += [(f"stream {s.index}", dict(s.metadata)) for s in container.streams]
    except (av.FFmpegError, OSError) as exc:
        raise InputError(f"cannot audit {path}: {exc}") from None
    for where, tags in tagged:
        private = sorted(k for k in tags if k.lower() in _PRIVATE_TAGS
                         or k.lower().split("-")[0].split(":")[0] in _PRIVATE_TAGS
                         or k.lower().startswith(_PRIVATE_PREFIXES))
        if private:
            leaks.append(f"{where} tags: " + ", ".join(private))
    data = path.read_bytes()
    if any(marker in data for marker in _XMP_MARKERS):
        leaks.append("XMP")
    if _C2PA_UUID in data or b"c2pa" in data:
        from faceskin.label import read_manifest

        m = read_manifest(path)
        if m.state != "absent" and not (m.by_faceskin and not m.has_ingredients and not m.has_thumbnail):
            leaks.append(f"C2PA manifest from {m.generator or 'another tool'} (may describe the source or device)")
    return leaks
