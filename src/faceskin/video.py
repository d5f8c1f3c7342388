"""The video pipeline: one skin per person for the whole clip, no frame with a bare face.

Per frame: detect (every frame), track (``FaceTracker`` ids), fit landmarks to
every detected face, smooth them per track with a One Euro filter (scale-aware,
on the frame's own timestamps), render the track's skin, and cover everything
that cannot take a skin. Frames stream through a short **look-ahead buffer**
between analysis and encoding; that buffer is what makes the fail-closed rules
possible without ever showing a face:

* **Missed frames are covered.** A track the detector misses keeps being
  reported by the tracker (up to ``max_missed`` frames) and its
  ``cover_box`` (last box united with the uncertainty-grown prediction) is
  covered. When the face is found again, the gap frames still in the buffer
  also get a cover on the box interpolated between the two detections.
* **Track edges are covered.** The first and last detected frame of every
  run of detections (``edge_frames``) get the fallback cover, whatever their
  landmarks say: a face entering, leaving or being lost is the least reliable
  fit. A new track also covers its first box in the ``backfill_frames``
  frames *before* its first detection, which are still in the buffer: a face
  is usually there, undetected, a frame or two before the detector fires.
* **Never bare, optionally no popping.** With ``blend_frames`` > 0 a switch
  between skin and cover is a cross-fade that always happens on the *skinned*
  side: the cover fades in over the frames *before* the skin fails (known
  thanks to the look-ahead) and fades out over the frames after it works
  again, so the original face is never in a blend. It is off by default:
  ``bench/video_leaks.py`` found the only recognisable GRID frames (3 of ~50
  blend frames, none of the skinned or covered ones) in blends, where the
  cover washes out the donor's texture but not the person's own eyes and
  mouth that the skin keeps. Full covers are painted last, so a neighbour's
  skin or blend never paints over one.

Skin policy: a track gets its skin at its first frame with landmarks, by
measured skin tone (``SkinLibrary.choose``), never a skin held by another
live track, preferring skins not yet used in the clip. A person who comes
back after their track ended (within ``reid_seconds``) is re-identified by
the colour of their clothes and hair (:func:`appearance_signature`, the
tracker's ``reid`` hook) and gets their track, and so their skin, back unless
someone else wears it by then. Without a re-identification, a track that starts
where one ended less than ``inherit_seconds`` ago (centre within one face size,
similar size) inherits that track's skin if it is free. Anyone else gets a new
skin. ``--skin`` (``force_skin_id``) overrides all of this: one skin for all.

Threads: the caller's thread decodes and analyses (tracker, landmarks, skin
choice) while one detector thread already runs on the next frame,
``render_threads`` workers paint skins into frames in parallel (and run the
identity self-check on a track's check frames), and one encoder thread covers
and encodes. Memory is bounded by the
look-ahead (a few frames) plus a few frames in flight and the codecs' own
buffers, whatever the clip length; the output appears only when complete (see
:mod:`faceskin.videofile`), and an exception or Ctrl-C leaves nothing under
its name.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import av
import cv2
import numpy as np

from faceskin.errors import OutputError
from faceskin.detect import find_again, merge_faces
from faceskin.faces import Face
from faceskin.fallback import MAX_COVERED_SHARE, UNDER_COVER, cover_face, head_region, skins_under_covers
from faceskin.landmarks import head_angles
from faceskin.library import measure_tone, measure_upper_lip
from faceskin.protect import Protector
from faceskin.skin import STRONGER, SkinSettings, face_scale, keypoints_from_landmarks, landmark_gap, render_skin
from faceskin.smoothing import OneEuroFilter
from faceskin.tracking import FaceTracker
from faceskin.videofile import DEFAULT_CRF, VideoWriter, _output_format, _same_file, open_video

WITHDRAWN = "skin did not hide identity (self-check)"
DEFAULT_PRESET = "veryfast"  # x264 at "veryfast" is ~2x "medium" and the skins, not the encoder, set quality

ProgressCallback = Callable[[int, "int | None"], None]
#: Called on every finished frame just before it is encoded, with the boxes (x0, y0, x1, y1) of
#: every protected face region in it; returns the frame to encode (e.g. ``Finisher.mark``).
FrameHook = Callable[[np.ndarray, "list[np.ndarray]"], np.ndarray]


@dataclass
class VideoOptions:
    """Knobs of the video pipeline; defaults suit 25-60 fps footage."""

    margin: float = 0.1  # grows every fallback cover, fraction of the head size
    blend_frames: int = 0  # cross-fade length between skin and cover (0: switch; see the module docstring)
    edge_frames: int = 1  # covered frames at each end of a run of detections
    backfill_frames: int = 3  # frames before a new track's first detection that get its cover
    confident_score: float = 0.6  # a track seen once below this score is covered only backfill_frames after
    max_missed: int = 15  # frames a lost track stays covered at its predicted place
    cover_k: float = 2.0  # cover box = prediction grown by this many standard deviations
    inherit_seconds: float = 1.0  # a track starting where one just ended may take its skin
    reid: bool = True  # re-identify people coming back by clothing/hair colour (same track, same skin)
    reid_threshold: float = 0.8  # cosine of appearance signatures that counts as the same person
    reid_seconds: float = 10.0  # how long a lost person is remembered
    # One Euro filter on landmarks. Measured on GRID clip brbk7n (mouth-open r output vs input /
    # frame-to-frame change in the face, input 1.49): unsmoothed 0.944 / 2.32, (0.5, 10) 0.859 / 1.49,
    # (1.0, 40) 0.939 / 1.78: speech kept, most of the landmark jitter removed.
    min_cutoff: float = 1.0  # Hz; cut-off for a still face (lower = smoother)
    beta: float = 40.0  # how fast the cut-off opens with speed (per face size / s): lips move fast
    d_cutoff: float = 1.0  # smoothing of the filter's speed estimate (Hz)
    render_threads: int = 2  # skins painted in parallel, one frame per thread
    check_every: int = 12  # most frames between two self-checks of a track's skin (<= look-ahead, see _withdraw)
    check_every_close: int = 3  # the same while the last check passed with less than pick_headroom to spare
    # Between those checks every skinned frame gets SFace's opinion alone (2 x 29 ms a face; 0: off).
    # One skin on the selfie clip's 190-210 px face, picked at 0.20, scored 0.21-0.37 from frame to
    # frame over the next 15 frames (the face cut by the frame's top edge): no schedule of full checks
    # catches such a frame, and the audit found two of them over SFace's match threshold.
    watch_every: int = 1
    # A frame's watch may be skipped (every other frame at most) when the track's last look passed
    # with this much to spare; before that frame is encoded both neighbours' looks must have passed
    # with this much to spare too, or it is watched then (``VideoProtector._settle``). Measured per
    # frame on the selfie, group and two GRID clips (all 4 looks on every skinned frame, 400 face
    # frames): between two looks <= limit - 0.05, none of 262 middle frames was over the limit; the
    # one frame over it between two passing looks had neighbours at 0.27 and 0.28.
    watch_skip_headroom: float = 0.06
    # ...and only for faces this big or bigger. On the hikers clip a 78 px skin read 0.11, 0.36 and
    # 0.21 (the audit's SFace) on three frames in a row: the middle one skipped its watch between
    # two passing looks and was the audit's one leaked frame (0.363). On small, moving faces a few
    # pixels of mesh fit change a skin that much; of 147 selfie face-frames of 120-250 px, none
    # rose more than 0.08 over its neighbours' looks.
    watch_skip_min_px: float = 120.0
    # While a track's latest dlib distance (full checks, the pick) is under this, its watch asks
    # dlib too (2 x ~80 ms a face). SFace alone watched the frames between full checks, and on the
    # hikers clip a 70 px skin that SFace scored 0.04 came to dlib distance 0.58 (match: 0.6)
    # on one frame between two full checks that had passed (dlib's own limit there is 0.63).
    dlib_watch_below: float = 0.75
    recheck_degrees: float = 15.0  # a head turned or tilted this far since its last self-check is checked again
    recheck_scale: float = 0.25  # so is a face grown or shrunk by this fraction
    pick_candidates: int = 5  # skins tried when a track gets its skin (see VideoProtector._pick_skin)
    pick_headroom: float = 0.06  # a skin is taken at once only this far under the self-check limit
    # When no tone-near candidate has pick_headroom to spare even at STRONGER, this many skins
    # drawn from the twelve least like the person (any tone: SkinLibrary.least_alike) are tried
    # at STRONGER too, as a photo's last rung does (0: off).
    rescue_candidates: int = 4
    retry_seconds: float = 1.0  # a track whose skin failed the self-check is covered this long, then re-skinned
    small_faces_every: int = 4  # frames between detection passes at twice the size (0: none; see _detect)
    small_faces_below: float = 24.0  # px: what that pass adds (larger faces the native pass finds)
    # A skinned face with more than this share of its box under another face's cover (its head
    # ellipse) is covered too: its looks saw the skin alone (fallback.skins_under_covers). The
    # hikers skin that leaked had 0.66 of its box under a ghost track's cover. Counting the ellipse's
    # bounding box and 0.3, the group clip's skinned face-frames fell from 90 to 29 of 465.
    max_covered_share: float = MAX_COVERED_SHARE

    @property
    def lookahead(self) -> int:
        return max(self.blend_frames + self.edge_frames, self.backfill_frames, self.check_every, 1)


@dataclass
class TrackReport:
    """One track's life: which skin it wore and how each of its frames was protected."""

    track_id: int
    skin_id: str | None = None
    inherited_from: int | None = None
    returns: int = 0  # times the person came back after being lost (re-identified)
    first_frame: int = 0
    last_frame: int = 0
    detected: int = 0
    frames: Counter = field(default_factory=Counter)  # method -> frames
    reasons: Counter = field(default_factory=Counter)  # fallback reason -> frames

    def to_dict(self) -> dict:
        d = {
            "track_id": self.track_id,
            "skin_id": self.skin_id,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "detected_frames": self.detected,
            "frames": dict(self.frames),
            "fallback_reasons": dict(self.reasons),
        }
        if self.inherited_from is not None:
            d["skin_inherited_from_track"] = self.inherited_from
        if self.returns:
            d["reidentified_returns"] = self.returns
        return d


@dataclass
class VideoReport:
    """What happened to a clip; ``to_dict`` is the JSON report."""

    input: str
    output: str
    width: int = 0
    height: int = 0
    fps: float | None = None
    rotation: int = 0
    frames: int = 0
    audio_packets: int = 0
    frames_with_faces: int = 0
    tracks: list[TrackReport] = field(default_factory=list)
    face_frames: Counter = field(default_factory=Counter)  # method -> face-frames over all tracks
    extra_covers: Counter = field(default_factory=Counter)  # backfill / gap covers painted
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    watch: Counter = field(default_factory=Counter)  # skinned face-frames by how their watch went
    frame_methods: list[str] = field(default_factory=list)  # per frame: "", or the most-covered face's method
    seconds: float = 0.0
    metadata_stripped: bool = True

    @property
    def throughput(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def fallback_share(self) -> float:
        """Share of face-frames not fully skinned (covers and blends)."""
        total = sum(self.face_frames.values())
        return 1.0 - self.face_frames.get("skin", 0) / total if total else 0.0

    @property
    def fragmentation(self) -> dict:
        """Short tracks and skin hand-overs: a proxy for one person splitting into several tracks."""
        short = sum(1 for t in self.tracks if t.detected < max(2, round((self.fps or 25) * 0.5)))
        return {
            "tracks": len(self.tracks),
            "tracks_under_half_a_second": short,
            "skins_inherited": sum(1 for t in self.tracks if t.inherited_from is not None),
            "people_reidentified": sum(t.returns for t in self.tracks),
            "distinct_skins": len({t.skin_id for t in self.tracks if t.skin_id}),
        }

    def to_dict(self) -> dict:
        return {
            "input": self.input,
            "output": self.output,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "rotation": self.rotation,
            "frames": self.frames,
            "audio_packets": self.audio_packets,
            "frames_with_faces": self.frames_with_faces,
            "face_frames": dict(self.face_frames),
            "fallback_share": round(self.fallback_share, 4),
            "extra_covers": dict(self.extra_covers),
            "fragmentation": self.fragmentation,
            "skins_by_track": {str(t.track_id): t.skin_id for t in self.tracks},
            "tracks": [t.to_dict() for t in self.tracks],
            "watch": dict(self.watch),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "seconds": round(self.seconds, 3),
            "frames_per_second": round(self.throughput, 2),
            "metadata_stripped": self.metadata_stripped,
        }


# ---------------------------------------------------------------- per-frame, per-track state


@dataclass
class _Entry:
    """One track in one frame: the face to paint, and whether a skin could be used there."""

    face: Face  # smoothed-landmark face (skin), detection (fallback) or predicted box (missed)
    detected: bool
    skinnable: bool
    reason: str = ""
    first: bool = False  # the track's first frame (always covered, so never painted)
    check_since: int | None = None  # a self-check frame: the first frame since the track's previous check


@dataclass
class _Frame:
    index: int
    pts: int
    time: float
    image: np.ndarray  # skins painted in as soon as the frame is analysed
    original: np.ndarray  # the decoded frame, for the identity self-check
    entries: dict[int, _Entry] = field(default_factory=dict)
    extra: list[tuple[str, Face]] = field(default_factory=list)  # (why, region) covers
    rendered: set[int] = field(default_factory=set)  # tracks whose skin is painted in ``image``
    looks: dict[int, float] = field(default_factory=dict)  # track -> highest self-check/watch similarity here
    unwatched: set[int] = field(default_factory=set)  # skinned tracks whose watch was skipped (see _settle)
    moved: dict[int, np.ndarray] = field(default_factory=dict)  # track -> the skin's five keypoints


@dataclass
class _TrackState:
    report: TrackReport
    skin: object | None = None  # Donor
    smoother: OneEuroFilter | None = None
    last_detected: tuple[int, np.ndarray] | None = None  # (frame index, box)
    best_score: float = 0.0
    settings: SkinSettings | None = None  # the protector's, or STRONGER once the self-check asked for it
    retry_at: int = 0  # after a failed skin choice, the frame to try again (choosing costs renders)
    failure: str = ""  # why the last skin choice failed
    failed_picks: int = 0  # skin choices that found no skin hiding this person
    withdrawn: list = field(default_factory=list)  # (first, end) frames covered after a failed self-check
    repicked: int = 0  # how many of ``withdrawn`` were followed by a new skin choice
    checked: tuple[int, float, float, float] | None = None  # (frame, yaw, pitch, face scale) of the last check
    similarity: float = 0.0  # the last self-check's similarity of this track's skin to the person
    last_look: float = float("inf")  # the latest look (check or watch) at this track's skin, any frame
    dlib_distance: float = float("inf")  # dlib's latest distance between this track's skin and the person


def _reason_kind(reason: str) -> str:
    """A reason without its numbers ("face too small for a skin (31 px < 40 px)" -> "face too small for a skin")."""
    return reason.split(" (", 1)[0].split(":", 1)[0]


def _interpolate(a: np.ndarray, b: np.ndarray, f: float) -> np.ndarray:
    return (1 - f) * np.asarray(a, np.float64) + f * np.asarray(b, np.float64)


def _grow(box: np.ndarray, frac: float) -> np.ndarray:
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * frac, (y1 - y0) * frac
    return np.array([x0 - dx, y0 - dy, x1 + dx, y1 + dy])


def appearance_signature(face: Face, frame: np.ndarray | None) -> np.ndarray | None:
    """Colour signature of a person: the torso below the face and the head (hair, hat, helmet).

    Why colour and not a face embedding: within one clip people are told apart
    best by what they wear, which stays visible when the face turns away, and
    it needs no identity model in the pipeline. Hue x saturation histograms of
    the coloured pixels plus a brightness histogram of the grey ones, square
    rooted so that the cosine is the Bhattacharyya coefficient. On the shared
    selfie clip, signatures of one person's tracks agree at >= 0.86 and
    different people's at <= 0.72 (threshold 0.8).
    """
    if frame is None:
        return None
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = face.box
    fw, fh = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    parts = []
    for rx0, ry0, rx1, ry1 in ((cx - 1.1 * fw, y1 + 0.25 * fh, cx + 1.1 * fw, y1 + 1.6 * fh),  # torso
                               (x0 - 0.15 * fw, y0 - 0.35 * fh, x1 + 0.15 * fw, y1)):  # head
        a, b, c, d = int(max(0, rx0)), int(max(0, ry0)), int(min(w, rx1)), int(min(h, ry1))
        if c - a < 4 or d - b < 4:
            parts.append(np.zeros(52))
            continue
        hsv = cv2.cvtColor(np.ascontiguousarray(frame[b:d, a:c]), cv2.COLOR_RGB2HSV)
        coloured = hsv[..., 1] >= 40
        hue_sat = cv2.calcHist([hsv], [0, 1], coloured.astype(np.uint8), [12, 4], [0, 180, 40, 256]).ravel()
        grey = np.histogram(hsv[..., 2][~coloured], bins=4, range=(0, 256))[0]
        hist = np.concatenate([hue_sat, grey]).astype(np.float64)
        parts.append(np.sqrt(hist / max(hist.sum(), 1.0)))
    signature = np.concatenate(parts)
    return signature if signature.any() else None


@contextlib.contextmanager
def single_threaded_blas():
    """Run NumPy's OpenBLAS on one thread inside the block (restored after).

    Why: the pipeline already keeps both cores busy with its own threads
    (analysis, painters, encoder). OpenBLAS would add its own worker threads to
    every small solve in the skin renderer, and on a busy 2-core machine they
    spin against ours: a 131x131 least-squares solve measured 187 ms with them
    and 19 ms without. This is what ``threadpoolctl`` does, without the
    dependency; where the symbols are not found (another BLAS, no /proc) it
    does nothing.
    """
    restore = []
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and ".so" in line}
    except OSError:
        paths = set()
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "64_"),
                               ("openblas", "")):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            set_ = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                restore.append((set_, int(get())))
                set_(1)
                break
    try:
        yield
    finally:
        for set_, n in restore:
            set_(n)


def video_detector():
    """The detector for video frames: RetinaFace, upright only, at native resolution, threshold 0.4, 1 thread.

    Video frames are upright (the reader applies the display matrix), so the
    photo detector's rotated passes only cost time; tracking carries faces
    through the frames RetinaFace misses. ``bench/video_leaks.py`` checks the
    result against CenterFace, which is therefore kept out of the pipeline.
    The threshold is below the photo default (0.6) because on the shared clips
    it leaves 3 instead of 21 CenterFace faces (all under 24 px) outside every
    protected region; the extra false positives are one-off weak detections,
    which the pipeline covers only briefly (``VideoOptions.confident_score``).
    """
    from faceskin.detect import FaceDetector

    return FaceDetector(threshold=0.4, rotations=(0,), use_centerface=False, threads=1)


def for_video(protector: Protector) -> Protector:
    """Adapt a (photo) protector to video, in place: the video detector, single-threaded models.

    The video pipeline runs its stages on their own threads, so the ONNX
    sessions' intra-op threads would only compete with them for the 2 cores.
    """
    from faceskin.identity_check import IdentityCheck

    protector.detector = video_detector()
    check = getattr(protector, "check", None)
    if check is not None:
        protector.check = IdentityCheck(check.limit, threads=1)
    return protector


class VideoProtector:
    """Runs a :class:`Protector`'s models over a clip with tracking and the fail-closed rules above.

    Holds no per-clip state between calls; :meth:`run` protects one clip.
    """

    def __init__(self, protector: Protector | None = None, options: VideoOptions | None = None,
                 seed: int | None = None) -> None:
        if protector is None:
            protector = for_video(Protector(detector=video_detector(), seed=seed))
        self.protector = protector
        self.options = options or VideoOptions()
        self._timing_lock = threading.Lock()

    def _spent(self, stage: str, seconds: float) -> None:
        with self._timing_lock:
            self.timings[stage] += seconds

    # ------------------------------------------------------------ analysis (frame enters the buffer)

    def _candidates(self, state: _TrackState, image: np.ndarray, face: Face, t: float, count: int = 3) -> list:
        """Skins this track may wear, best first: an ended neighbour's (inherit), then by tone.

        Tone-chosen ones are library entries, not drawn yet (``library.by_id``
        draws one): a model skin takes ~0.1 s to draw and the first candidate
        usually fits, so the others are drawn only if they are tried.
        """
        p = self.protector
        if p.options.force_skin_id:
            return [p.library.by_id(p.options.force_skin_id)]
        live = self._worn_by_others(state)
        out = []
        for end_t, box, skin, tid in reversed(self._ended):  # inherit: a track that just ended here
            if t - end_t > self.options.inherit_seconds or skin.skin_id in live:
                continue
            size = max(box[2] - box[0], box[3] - box[1], 1.0)
            centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
            if np.linalg.norm(centre - face.center) <= size and 0.5 <= face.size / size <= 2.0:
                out.append(skin)
                break
        names = {s.skin_id for s in p.library.skins}
        fresh = names - live - self._used
        exclude = (live | self._used) if fresh else live  # unused skins first, then any not worn right now
        tone, lip = measure_tone(image, face), measure_upper_lip(image, face)
        for _ in range(max(1, count)):
            skin = p.library.pick(tone, exclude=exclude | {c.skin_id for c in out}, upper_lip=lip)
            if skin.skin_id in live or any(c.skin_id == skin.skin_id for c in out):
                break  # the library ran out (choose then ignores exclude)
            out.append(skin)
        return out

    def _worn_by_others(self, state: _TrackState) -> set[str]:
        """Skin ids worn right now by live tracks other than ``state``'s: never handed out twice at once."""
        return {s.skin.skin_id for s in self._live.values() if s.skin is not None and s is not state}

    def _pick_skin(self, st: _TrackState, image: np.ndarray, face: Face, index: int, t: float) -> str | None:
        """Give the track its skin (and settings): the candidate that hides the person best.

        A track keeps its skin for the whole clip and its self-checks
        (:meth:`_schedule_check`) re-check it, so a skin that only just passes on this frame fails
        a few frames later (another expression, another angle) and the person
        spends the clip under a cover: with the model's skins that was 66 of 75
        frames on one GRID clip. So more candidates are tried than in a photo,
        a skin is taken at once only with ``pick_headroom`` to spare, and
        otherwise the two best are tried at ``STRONGER``, then (if still none
        has that headroom) ``rescue_candidates`` skins least like the person
        of any tone, and the lowest similarity wins. Returns why none fits.

        A failed choice is tried again ``check_every`` frames later, then twice
        and four times as late: each try renders and checks up to seven skins
        (~0.5 s), and the same face in the same light mostly fails again a few
        frames on; the track is covered meanwhile.
        """
        p = self.protector
        if index < st.retry_at:
            return st.failure
        # Candidates by tone alone, not the photo path's "least like the person" order (measured, cause
        # not known: a skin must keep passing as the face moves here): on GRID lrwp9a, lbax4n and lbbc2a,
        # three seeds each, the least-alike candidates kept a skin in 45, 11 and 46 of 75 frames, the
        # tone-nearest in 73, 46 and 46-73.
        candidates = self._candidates(st, image, face, t, self.options.pick_candidates)
        if not candidates:
            return "no free skin in the library for another person"
        check = getattr(p, "check", None)
        first = p.options.first_settings(face)
        chosen = (p.library.by_id(candidates[0].skin_id), first)
        if check is not None:
            ref = check.reference(image, keypoints_from_landmarks(face.landmarks))
            limit = check.limit_for(face.size)
            good_enough = limit - self.options.pick_headroom
            tried: list[tuple[float, object, SkinSettings]] = []
            distances: list[float | None] = []  # dlib's distance for each of ``tried`` (None: not asked)

            def attempt(entry, settings) -> bool:
                trial = image.copy()
                try:
                    skin = p.library.by_id(entry.skin_id)
                    moved = render_skin(trial, face, skin, settings)
                except Exception:  # noqa: BLE001 - a skin that cannot render is simply not chosen
                    return False
                if hasattr(ref, "dlib_distance"):
                    ref.dlib_distance = None
                sim = check.similarity_to(ref, trial, keypoints_from_landmarks(moved))
                tried.append((sim, skin, settings))
                distances.append(getattr(ref, "dlib_distance", None))
                return sim <= good_enough

            if not any(attempt(c, first) for c in candidates) and first is not STRONGER:
                ranked = sorted(tried, key=lambda x: x[0])[:2]
                any(attempt(skin, STRONGER) for _, skin, _ in ranked)
            rescue = getattr(p.library, "least_alike", None)
            if (rescue is not None and not p.options.force_skin_id and self.options.rescue_candidates > 0
                    and getattr(ref, "sface", None) is not None
                    and min((x[0] for x in tried), default=np.inf) > good_enough):
                # none near the person's tone hides them with room to spare: the skins least like them
                exclude = self._worn_by_others(st) | self._used | {x[1].skin_id for x in tried}
                any(attempt(skin, STRONGER) for skin in
                    rescue(ref.sface, exclude=exclude, count=self.options.rescue_candidates))
            best = min(tried, key=lambda x: x[0]) if tried else None
            if best is None or best[0] > limit:
                return self._pick_failed(st, index, "skin render failed" if best is None else
                                         f"skin did not hide identity (self-check similarity {best[0]:.2f} > {limit:.2f})")
            chosen = best[1:]
            st.similarity = best[0]
            d = distances[tried.index(best)]
            st.dlib_distance = float("inf") if d is None else d
        st.skin, st.settings = chosen
        st.last_look = float("inf")  # a new skin: its first frames are watched
        if any(st.skin is skin for _, _, skin, _ in self._ended):
            tid = next(tid for _, _, skin, tid in self._ended if skin is st.skin)
            st.report.inherited_from = tid
            self._ended = [e for e in self._ended if e[3] != tid]
        st.report.skin_id = st.skin.skin_id
        self._used.add(st.skin.skin_id)
        return None

    def _pick_failed(self, st: _TrackState, index: int, reason: str) -> str:
        """Record a failed skin choice: the track is covered, and the choice is tried again
        ``check_every`` frames later, then twice and four times as late (see :meth:`_pick_skin`)."""
        st.skin = None
        st.retry_at = index + self.options.check_every * 2 ** min(st.failed_picks, 2)
        st.failed_picks += 1
        st.failure = reason
        return reason

    def _detect(self, rgb: np.ndarray, index: int) -> list[Face]:
        """This frame's faces; every ``small_faces_every`` frames also a pass at twice the size.

        RetinaFace finds faces from about 16 px at native resolution; the audit of
        the shared hikers clip found 9-14 px faces it never detected, so they were
        never covered. The doubled pass (four times the pixels) runs on every
        few frames only: a face it finds gets a track, and the tracker covers it
        at its predicted place for ``max_missed`` frames between passes, and
        ``backfill_frames`` before its first one.
        """
        t0 = time.perf_counter()
        detector = self.protector.detector
        faces = detector.detect(rgb)
        o = self.options
        retina = getattr(detector, "retina", None)
        if retina is not None and o.small_faces_every > 0 and index % o.small_faces_every == 0:
            small = [f for f in retina.detect_scaled(rgb, 2.0) if f.size < o.small_faces_below]
            if small:
                faces = merge_faces(faces + small)
        self._spent("detect", time.perf_counter() - t0)
        return faces

    def _analyse(self, frame, dt: float, faces: list[Face]) -> _Frame:
        """Track this frame's detected ``faces``, fit their landmarks and give new tracks a skin."""
        o, p = self.options, self.protector
        rgb = frame.rgb
        h, w = rgb.shape[:2]
        rec = _Frame(frame.index, frame.pts, frame.time, rgb.copy(), rgb)
        t1 = time.perf_counter()
        tracks = self.tracker.update(faces, dt=dt, frame=rgb, frame_size=(w, h))
        self._spent("track", time.perf_counter() - t1)

        alive = {t.id for t in tracks}
        for tid in list(self._live):
            if tid not in alive:
                st = self._live.pop(tid)
                st.smoother = None  # its state is 478 points; a long crowded clip has thousands of tracks
                if st.skin is not None and st.last_detected is not None:
                    self._ended.append((frame.time, st.last_detected[1], st.skin, tid))
        self._ended = [e for e in self._ended if frame.time - e[0] <= o.inherit_seconds]

        for track in tracks:
            st = self._live.get(track.id)
            if st is None:
                st = self._states.get(track.id)
                if st is None:
                    st = _TrackState(TrackReport(track.id, first_frame=frame.index))
                    self._states[track.id] = st
                    self.report.tracks.append(st.report)
                else:  # a person re-identified after their track ended: same track, same skin if free
                    st.report.returns += 1
                    self._ended = [e for e in self._ended if e[3] != track.id]
                    held = {x.skin.skin_id for x in self._live.values() if x.skin is not None}
                    if st.skin is not None and st.skin.skin_id in held:
                        st.skin = None  # someone else wears it now: never two people in one skin
                st.smoother = OneEuroFilter(o.min_cutoff, o.beta, o.d_cutoff)
                self._live[track.id] = st
                self._backfill(track.box, frame.index)
            if track.missed:
                if st.report.detected <= 1 and st.best_score < o.confident_score and track.missed > o.backfill_frames:
                    continue  # a one-off weak detection: covered around it, not for max_missed frames
                st.report.last_frame = frame.index
                box = track.cover_box(o.cover_k)
                rec.entries[track.id] = _Entry(Face(box=box, score=0.0, track_id=track.id), False, False,
                                               "missed by the detector (predicted region)")
                continue
            face = track.face
            st.report.last_frame = frame.index
            st.report.detected += 1
            st.best_score = max(st.best_score, face.score)
            if st.last_detected is not None and st.last_detected[0] < frame.index - 1:
                last = st.last_detected[1]
                shift = np.linalg.norm((last[:2] + last[2:]) / 2 - face.center) / max(face.size, 1.0)
                if shift <= 2.0:  # a plausible path; a re-identified person may come back anywhere
                    self._fill_gap(st.last_detected, (frame.index, face.box))
            st.last_detected = (frame.index, np.asarray(face.box, np.float64).copy())
            t3 = time.perf_counter()
            reason = p.skin_or_reason(rgb, face)
            if reason is None and st.withdrawn:
                first, end = st.withdrawn[-1]
                if frame.index < end:
                    reason = WITHDRAWN
                elif st.repicked < len(st.withdrawn):  # covered long enough: choose (and check) again
                    st.repicked, st.skin = len(st.withdrawn), None
            if reason is None:
                scale = max(face_scale(face.landmarks), 1.0)
                smoothed = st.smoother(face.landmarks, frame.time, scale=scale)
                gap = landmark_gap(replace(face, landmarks=smoothed))
                if gap is not None and gap > p.options.max_landmark_gap:
                    # the filter trails a face that moved fast: its skin would sit beside the face, so the
                    # fit of this frame is taken as it is (skin_or_reason found it on the face)
                    st.smoother.reset()
                    smoothed = st.smoother(face.landmarks, frame.time, scale=scale)
                face = replace(face, landmarks=smoothed)
                picked = st.skin is None
                if picked:
                    try:
                        reason = self._pick_skin(st, rgb, face, frame.index, frame.time)
                    except Exception as exc:  # fail closed: covered, and the run goes on (it used to end with no output)
                        reason = self._pick_failed(st, frame.index, f"skin choice failed: {type(exc).__name__}: {exc}")
            entry = _Entry(face, True, reason is None, reason or "", first=st.report.detected == 1)
            if reason is None:
                entry.check_since = self._schedule_check(st, face, frame.index, picked)
            self._spent("landmarks", time.perf_counter() - t3)
            rec.entries[track.id] = entry
        return rec

    def _schedule_check(self, st: _TrackState, face: Face, index: int, picked: bool) -> int | None:
        """Whether this skinned frame of a track gets the identity self-check; if so, the first
        frame since the track's previous check (the frames a failure withdraws).

        Why not every frame: a check embeds the original and the skinned face
        with SFace and dlib (~0.2 s a face on one core, most of the pipeline's
        work when done every few frames; the frames between get SFace's look
        alone, ``VideoOptions.watch_every``), and within a track what it measures
        hardly changes: the skin and its settings stay the same, the person is
        the same, and the skin was picked with ``pick_headroom`` under the limit
        on the track's own face (the pick is this track's first check). What
        does change it is pose and size, so a track is checked again at most
        ``check_every`` frames on, and at once when its head has turned or
        tilted by ``recheck_degrees`` or its size changed by ``recheck_scale``
        since the last check. Expression moves the similarity too, by up to
        0.12 over 12 frames on the GRID talking heads: inside the margin the
        limit keeps under the recognizers' own thresholds when the last check
        had ``pick_headroom`` to spare, but not when it only just passed (a pick
        may take such a skin when none does better): on GRID lbbc2a a skin
        checked at 0.27-0.30 on frames 0 and 12 reached SFace's own match
        threshold on frames 6-11. So while the last check passed with less
        than the headroom, the track is checked every ``check_every_close``
        frames. A failed check withdraws every frame since the previous one,
        which ``check_every <= lookahead`` keeps in the buffer.
        """
        o = self.options
        if getattr(self.protector, "check", None) is None:
            return None
        yaw, pitch, _ = head_angles(face)
        scale = max(face_scale(face.landmarks), 1.0)
        last, st.checked = st.checked, (index, yaw, pitch, scale)
        if picked:
            return None  # the pick rendered and checked this very face with this skin
        clear = st.similarity <= self.protector.check.limit_for(face.size) - o.pick_headroom
        every = o.check_every if clear else min(o.check_every, o.check_every_close)
        if last is not None and index - last[0] < every and abs(yaw - last[1]) < o.recheck_degrees \
                and abs(pitch - last[2]) < o.recheck_degrees and abs(math.log(scale / last[3])) < math.log1p(o.recheck_scale):
            st.checked = last
            return None
        return index - o.check_every + 1 if last is None else max(last[0] + 1, index - o.check_every + 1)

    def _backfill(self, box: np.ndarray, index: int) -> None:
        o = self.options
        for rec in self._pending:
            if max(index - o.backfill_frames, index - o.lookahead) <= rec.index < index:
                rec.extra.append(("backfill", Face(box=_grow(box, 0.15), score=0.0)))

    def _fill_gap(self, before: tuple[int, np.ndarray], after: tuple[int, np.ndarray]) -> None:
        (i0, b0), (i1, b1) = before, after
        for rec in self._pending:
            if max(i0, i1 - 1 - self.options.lookahead) < rec.index < i1:
                f = (rec.index - i0) / (i1 - i0)
                rec.extra.append(("gap", Face(box=_interpolate(b0, b1, f), score=0.0)))

    def _render_skins(self, rec: _Frame, after: Sequence[Future] = ()) -> None:
        """Paint this frame's skins; a failed render or self-check makes that entry a cover instead.

        On a track's self-check frames (:meth:`_schedule_check`) its skin is
        re-embedded against the original face (the protector's identity check). A failure escalates the
        track to ``STRONGER`` for good; if even that does not hide the person,
        this frame and the unchecked ones since the track's previous check are
        withdrawn (covered) and the track is covered for ``retry_seconds``.
        On every other ``watch_every``-th frame SFace alone looks at the skin
        (``VideoOptions.watch_every``); a failed look escalates the same way
        and withdraws from this frame on. With ``watch_every=1`` an even
        frame's look is skipped while the track's latest look had
        ``watch_skip_headroom`` to spare; :meth:`_settle` decides that frame
        before it is encoded.
        ``after`` are the paintings this one waits for. A frame without a
        full check waits for the previous check frame's: every escalation by a
        full check then applies from the same frame on, however the painters
        interleave. A check frame waits for every earlier frame's: a watch that
        failed on an earlier frame has then withdrawn and escalated before the
        check runs, so a failing check cannot withdraw frames back to the
        previous check that a watch had already shown good (it did, one run in
        five, when two painters took the check frame first). A watch's
        escalation is not ordered that way for later frames (waiting on every
        frame would paint one frame at a time), so a frame painted alongside it
        may still get the earlier settings: with the default ``watch_every=1``
        that frame is watched itself, so this changes how a run looks from one
        run to the next, not whether a face is hidden.
        """
        for earlier in after:
            earlier.result()
        t0 = time.perf_counter()
        check = getattr(self.protector, "check", None)
        o = self.options
        for tid, e in rec.entries.items():
            if not e.skinnable:
                continue
            if e.first and o.edge_frames > 0:
                continue  # a track's first frame is always covered: no point in painting it
            st = self._states[tid]
            if any(a <= rec.index < b for a, b in st.withdrawn):
                e.skinnable, e.reason = False, WITHDRAWN
                continue
            checking = e.check_since is not None
            watching = (not checking and check is not None and o.watch_every > 0
                        and rec.index % o.watch_every == 0)
            clear = st.last_look <= (check.limit_for(e.face.size) - o.watch_skip_headroom if check else -1.0)
            if watching and o.watch_every == 1 and rec.index % 2 == 0 and clear and e.face.size >= o.watch_skip_min_px:
                watching = False  # settled before it is encoded (_settle): its neighbours' looks decide
                rec.unwatched.add(tid)
            before = rec.image.copy() if checking or watching else None
            try:
                moved = render_skin(rec.image, e.face, st.skin, st.settings)
                rec.moved[tid] = keypoints_from_landmarks(moved)
                if checking or watching:
                    full = checking  # a watch's failure withdraws from this frame on, a check's since the last
                    # a watch asks SFace alone, and dlib too while dlib found this skin close to the person
                    second = checking or st.dlib_distance < o.dlib_watch_below
                    ref = check.reference(rec.original, keypoints_from_landmarks(e.face.landmarks))
                    limit = check.limit_for(e.face.size)
                    as_detected: list = []  # the original aligned on the detector's points, embedded once
                    sim = highest = self._look(check, rec, e, ref, rec.moved[tid], limit, second, as_detected)
                    if sim > limit and st.settings is not STRONGER:
                        st.settings = STRONGER
                        rec.image[:] = before
                        moved = render_skin(rec.image, e.face, st.skin, STRONGER)
                        rec.moved[tid] = keypoints_from_landmarks(moved)
                        sim = self._look(check, rec, e, ref, rec.moved[tid], limit, second, as_detected)
                    if getattr(ref, "dlib_distance", None) is not None:
                        st.dlib_distance = ref.dlib_distance
                    # an escalated frame's first look counts: a skipped neighbour wore the old settings
                    rec.looks[tid] = st.last_look = max(highest, sim)
                    self._count("checked" if full else "watched")
                    if full:
                        st.similarity = sim
                    if sim > limit:
                        rec.image[:] = before
                        self._withdraw(tid, e.check_since if full else rec.index, rec.index)
                        continue
                rec.rendered.add(tid)
            except Exception as exc:  # fail closed: any render problem means cover
                if before is not None:
                    rec.image[:] = before
                e.skinnable, e.reason = False, f"skin render failed: {type(exc).__name__}: {exc}"
        self._spent("render", time.perf_counter() - t0)

    def _look(self, check, rec: _Frame, e: _Entry, ref, moved_kp: np.ndarray, limit: float, second: bool,
              as_detected: list) -> float:
        """SFace (and dlib when ``second``) on the mesh's points, then (if that passes) SFace on a
        detector's, as an attacker and the audit align: the original on the points found on it,
        the skinned face on the points RetinaFace finds on the skin (its features moved). On the
        selfie clip a skin the first look passed scored 0.364 (SFace's match threshold 0.363) in
        the audit; aligning the skin on the original's points instead, a hikers skin passed and
        the audit found 0.369. The skinned face is also looked at on the original's points, where
        the person's features were: a mesh fitted to a motion-blurred face can sit beside it and
        leave part of it bare, and RetinaFace then finds the skin. On a fast 183 px hikers face
        (frame 493) the audit found SFace over its threshold where the skin on its found points scored
        0.23 and on the original's 0.33. Each skin embedding is compared with the original on
        both its mesh's and its detector's points (``IdentityCheck.similarity_as_detected``).
        ``as_detected`` keeps the original's embedding between looks."""
        sim = check.similarity_to(ref, rec.image, moved_kp, second)
        kp = e.face.keypoints
        if sim <= limit and kp is not None:
            if not as_detected:
                as_detected.append(check.embed(rec.original, kp))
            sim = max(sim, check.similarity_as_detected(ref, as_detected[0], rec.image, kp))
            retina = getattr(self.protector.detector, "retina", None)
            again = find_again(retina, rec.image, e.face.box) if retina is not None and sim <= limit else None
            if again is not None:
                sim = max(sim, check.similarity_as_detected(ref, as_detected[0], rec.image, again.keypoints))
        return sim

    def _count(self, what: str) -> None:
        with self._timing_lock:
            self.report.watch[what] += 1

    def _settle(self, rec: _Frame) -> None:
        """Decide, just before encoding, the skins whose watch was skipped on this frame.

        Four SFace embeddings per skinned face and frame were most of the
        pipeline's time. A watch is skipped on every other frame at most, when
        the track's latest look had ``watch_skip_headroom`` to spare; here,
        with both neighbouring frames painted and looked at, the skipped frame
        keeps its skin unwithheld only if both neighbours' looks passed with that
        headroom too. Otherwise (a neighbour close to the limit, escalated,
        withdrawn, not skinned, or the clip's end) it is watched now, and a
        failure withdraws it and the next ``retry_seconds`` as a watch does.
        Frames that are covered anyway (track edges) need no decision.
        """
        check = getattr(self.protector, "check", None)
        if check is None or not rec.unwatched:
            return
        o = self.options
        for tid in sorted(rec.unwatched):
            e = rec.entries.get(tid)
            if e is None or not e.skinnable or tid not in rec.rendered or self._cover_weight(tid, rec.index) >= 1.0:
                continue
            limit = check.limit_for(e.face.size)
            near = [self._by_index.get(rec.index + d) for d in (-1, 1)]
            looks = [n.looks.get(tid) if n is not None else None for n in near]
            if all(x is not None and x <= limit - o.watch_skip_headroom for x in looks):
                self._count("between passing looks")
                continue
            t0 = time.perf_counter()
            ref = check.reference(rec.original, keypoints_from_landmarks(e.face.landmarks))
            st = self._states[tid]
            sim = self._look(check, rec, e, ref, rec.moved[tid], limit, st.dlib_distance < o.dlib_watch_below, [])
            self._spent("late watch", time.perf_counter() - t0)
            self._count("watched late")
            if sim > limit:
                self._withdraw(tid, rec.index, rec.index)

    def _withdraw(self, tid: int, first: int, failed: int) -> None:
        """A look at frame ``failed`` found the track's skin still resembling the person: cover
        the track from ``first`` for ``retry_seconds`` after ``failed``.

        The window goes into the track's ``withdrawn`` (frames painted later
        see it before painting), and every analysed frame from ``first``
        through its end, or through ``failed + lookahead`` if later, is marked
        not skinned now: frames after ``failed`` may be painted already, by the
        other workers. Called while painting frame ``failed`` with ``first >=
        failed - lookahead``, or by the encoder (:meth:`_settle`) with ``first
        == failed``. Safe without a lock: the encoder waits for every paint up
        to frame + lookahead, so it cannot have passed ``first``; and
        ``check_every <= lookahead`` puts every frame since the previous check
        within reach.
        """
        o = self.options
        end = failed + max(1, round(o.retry_seconds * self._fps))
        self._states[tid].withdrawn.append((first, end))
        for j in range(first, max(end, failed + o.lookahead) + 1):
            rec = self._by_index.get(j)
            e = rec.entries.get(tid) if rec is not None else None
            if e is not None and e.skinnable:
                e.skinnable, e.reason = False, WITHDRAWN

    # ------------------------------------------------------------ output (frame leaves the buffer)

    def _entry(self, tid: int, index: int) -> _Entry | None:
        rec = self._by_index.get(index)
        return None if rec is None else rec.entries.get(tid)

    def _skin_usable(self, tid: int, index: int) -> bool:
        """Skinned, and not within ``edge_frames`` of a frame where the track was not detected."""
        e = self._entry(tid, index)
        if e is None or not e.skinnable or tid not in self._by_index[index].rendered:
            return False
        for k in range(1, self.options.edge_frames + 1):
            for j in (index - k, index + k):
                n = self._entry(tid, j)
                if n is None or not n.detected:
                    return False
        return True

    def _cover_weight(self, tid: int, index: int) -> float:
        n = self.options.blend_frames
        for d in range(n + 1):
            if not self._skin_usable(tid, index - d) or not self._skin_usable(tid, index + d):
                return 1.0 - d / (n + 1)
        return 0.0

    def _cover(self, image: np.ndarray, face: Face, weight: float = 1.0) -> None:
        margin = max(self.options.margin, self.protector.options.fallback_margin)
        if weight >= 1.0:
            cover_face(image, face, self.protector.rng, margin)
            return
        centre, axes = head_region(face, margin)
        h, w = image.shape[:2]
        x0, y0 = (max(0, int(np.floor(c - a)) - 1) for c, a in zip(centre, axes))
        x1, y1 = (min(s, int(np.ceil(c + a)) + 2) for c, a, s in zip(centre, axes, (w, h)))
        bx = np.round(face.box).astype(int)
        x0, y0 = min(x0, max(0, bx[0])), min(y0, max(0, bx[1]))
        x1, y1 = max(x1, min(w, bx[2])), max(y1, min(h, bx[3]))
        if x1 <= x0 or y1 <= y0:
            return
        roi = image[y0:y1, x0:x1]
        covered = roi.copy()
        shifted = replace(face, box=np.asarray(face.box, np.float64) - [x0, y0, x0, y0],
                          landmarks=None if face.landmarks is None else face.landmarks - [x0, y0, 0])
        cover_face(covered, shifted, self.protector.rng, margin)
        cv2.addWeighted(covered, float(weight), roi, 1.0 - float(weight), 0.0, dst=roi)

    def _finish(self, rec: _Frame) -> np.ndarray:
        t0 = time.perf_counter()
        blends, full, methods = [], [], set()
        chosen: dict[int, tuple[str, float]] = {}
        for tid, e in rec.entries.items():
            if not e.detected:
                chosen[tid] = ("predicted", 1.0)
                full.append(e.face)
            else:
                wgt = self._cover_weight(tid, rec.index)
                chosen[tid] = ("skin" if wgt <= 0.0 else "blend" if wgt < 1.0 else "fallback", wgt)
                if wgt >= 1.0:
                    full.append(e.face)
        full += [face for _, face in rec.extra]
        margin = max(self.options.margin, self.protector.options.fallback_margin)
        under = skins_under_covers({tid: rec.entries[tid].face for tid, (method, _) in chosen.items()
                                    if method in ("skin", "blend")}, full, margin, self.options.max_covered_share)
        full += [rec.entries[tid].face for tid in sorted(under)]
        for tid, e in rec.entries.items():
            method, wgt = chosen[tid]
            st = self._states[tid]
            if tid in under:
                method = "fallback"
                st.report.reasons[UNDER_COVER] += 1
            elif method == "predicted":
                st.report.reasons[e.reason] += 1
            elif method == "blend":
                blends.append((e.face, wgt))
            elif method == "fallback":
                st.report.reasons["track edge" if e.skinnable else _reason_kind(e.reason)] += 1
            st.report.frames[method] += 1
            self.report.face_frames[method] += 1
            methods.add(method)
        for why, _ in rec.extra:
            self.report.extra_covers[why] += 1
        for face, wgt in blends:
            self._cover(rec.image, face, wgt)
        # largest first: a small face inside a big one's cover then gets its own flat fill on top,
        # not the big cover's grain, which recognizers read as texture at that size (fallback.py)
        for face in sorted(full, key=lambda f: -f.size):
            self._cover(rec.image, face)
        if rec.entries:
            self.report.frames_with_faces += 1
        worst = ("predicted", "fallback", "blend", "skin")
        self.report.frame_methods.append(next((m for m in worst if m in methods), "") if rec.entries else "")
        self._spent("cover", time.perf_counter() - t0)
        return rec.image

    @staticmethod
    def _protected_boxes(rec: _Frame) -> list[np.ndarray]:
        """Every region ``_finish`` protected in this frame: each track's entry (skinned, blended,
        covered or predicted) and each extra (backfill, gap) cover.

        Read from the entries rather than from the painted methods so that a
        region counts whatever happened to it: the frame hook's watermark must
        be wherever a face was altered, including under a cover.
        """
        boxes = [np.asarray(e.face.box, np.float64) for e in rec.entries.values()]
        boxes += [np.asarray(face.box, np.float64) for _, face in rec.extra]
        return boxes

    # ------------------------------------------------------------ the clip

    def run(
        self,
        in_path: str | os.PathLike,
        out_path: str | os.PathLike,
        *,
        audio: bool = True,
        crf: float = DEFAULT_CRF,
        preset: str = DEFAULT_PRESET,
        keep_metadata: bool = False,
        progress: ProgressCallback | None = None,
        frame_hook: FrameHook | None = None,
    ) -> VideoReport:
        in_path, out_path = Path(in_path), Path(out_path)
        _output_format(out_path)
        if _same_file(in_path, out_path) or in_path.resolve() == out_path.resolve():
            raise OutputError(f"{out_path}: output would overwrite the input")
        reader = open_video(in_path)
        o = self.options
        started = time.perf_counter()
        self.report = VideoReport(str(in_path), str(out_path), reader.width, reader.height, reader.fps,
                                  reader.rotation, metadata_stripped=not keep_metadata)
        self.timings = self.report.timings
        for k in ("decode", "detect", "track", "landmarks", "render", "late watch", "cover", "encode"):
            self.timings[k] = 0.0
        if frame_hook is not None:
            self.timings["frame_hook"] = 0.0
        self.tracker = FaceTracker(
            max_missed=o.max_missed,
            reid=appearance_signature if o.reid else None,
            reid_threshold=o.reid_threshold,
            reid_memory=max(1, round(o.reid_seconds * (reader.fps or 25.0))),
        )
        self._live: dict[int, _TrackState] = {}
        self._states: dict[int, _TrackState] = {}
        self._ended: list = []
        self._used: set[str] = set()
        self._pending: deque[_Frame] = deque()  # analysed, not yet encoded
        self._by_index: dict[int, _Frame] = {}  # pending + the last few encoded (for blend look-back)
        total = reader.frame_count
        if total is None and reader.duration and reader.fps:
            total = round(reader.duration * reader.fps)
        nominal_fps = self._fps = reader.fps or 25.0
        keep_behind = o.blend_frames + o.edge_frames + 1

        with reader.demux(audio=audio) as items, single_threaded_blas():
            writer = VideoWriter(
                out_path, reader.width, reader.height, reader.time_base, fps=reader.fps, crf=crf, preset=preset,
                audio_templates=items.audio_streams, colour=reader.colour,
                sample_aspect_ratio=reader.sample_aspect_ratio, keep_metadata=keep_metadata, metadata=reader.metadata,
            )
            # Four stages: this thread decodes frame t + 1 and hands it to the detector thread,
            # then analyses frame t (tracker, landmarks, skin choice) with its detections;
            # ``render_threads`` workers paint skins, frames in parallel; one encoder thread
            # covers and encodes frame t - lookahead once every frame it may look at is painted.
            # The analysis of frame t only adds covers to frames >= t - lookahead, which the
            # encoder has not reached yet.
            detector = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faceskin-detect")
            painters = ThreadPoolExecutor(max_workers=max(1, o.render_threads), thread_name_prefix="faceskin-paint")
            encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faceskin-encode")
            painting: deque[Future] = deque()
            encoding: deque[Future] = deque()
            last_check: Future | None = None  # the painting of the latest self-check frame
            packets: list = []  # audio demuxed since the last frame was handed to the encoder

            def encode(rec: _Frame | None, packets: list, painted: list[Future]) -> None:
                for packet in packets:
                    writer.mux_audio(packet)
                for future in painted:
                    future.result()
                if rec is None:
                    return
                self._settle(rec)
                image = self._finish(rec)
                if frame_hook is not None:
                    t0 = time.perf_counter()
                    hooked = frame_hook(image, self._protected_boxes(rec))
                    if hooked.shape != image.shape or hooked.dtype != np.uint8:
                        raise ValueError(f"frame_hook returned {hooked.dtype} {hooked.shape}, "
                                         f"expected uint8 {image.shape}")
                    image = hooked
                    self._spent("frame_hook", time.perf_counter() - t0)
                t0 = time.perf_counter()
                writer.write(image, rec.pts)
                self._spent("encode", time.perf_counter() - t0)
                rec.image = None  # type: ignore[assignment]
                self._by_index.pop(rec.index - keep_behind, None)
                if progress is not None:
                    progress(writer.frames_written, total)

            def analyse(frame, dt: float, faces: Future) -> None:
                nonlocal last_check, packets
                rec = self._analyse(frame, dt, faces.result())
                self._pending.append(rec)
                self._by_index[rec.index] = rec
                checking = any(e.check_since is not None for e in rec.entries.values())
                after = list(painting) if checking else [last_check] if last_check is not None else []
                painting.append(painters.submit(self._render_skins, rec, after))
                if checking:
                    last_check = painting[-1]
                if len(self._pending) > o.lookahead:
                    submit_encode(self._pending.popleft(), packets)
                    packets = []

            def submit_encode(rec: _Frame | None, packets: list) -> None:
                while encoding and (len(encoding) > 2 or encoding[0].done()):
                    encoding.popleft().result()  # bounded backlog; re-raises a worker's error here
                encoding.append(encoder.submit(encode, rec, packets, list(painting)))
                while painting and painting[0].done():
                    painting.popleft()

            try:
                with writer:
                    last_time = None
                    detected: deque[tuple] = deque()  # (frame, dt, its detections) waiting for analysis
                    iterator = iter(items)
                    while True:
                        t0 = time.perf_counter()
                        item = next(iterator, None)
                        self._spent("decode", time.perf_counter() - t0)
                        if item is None:
                            break
                        if isinstance(item, av.Packet):
                            packets.append(item)
                            continue
                        dt = 1.0 if last_time is None else max((item.time - last_time) * nominal_fps, 1e-3)
                        last_time = item.time
                        detected.append((item, dt, detector.submit(self._detect, item.rgb, item.index)))
                        if len(detected) > 1:
                            analyse(*detected.popleft())
                    while detected:
                        analyse(*detected.popleft())
                    while self._pending:
                        submit_encode(self._pending.popleft(), packets)
                        packets = []
                    submit_encode(None, packets)
                    while encoding:
                        encoding.popleft().result()
            finally:
                # never let the writer close (or delete its temp file) under a running job
                encoder.shutdown(wait=True, cancel_futures=True)
                painters.shutdown(wait=True, cancel_futures=True)
                detector.shutdown(wait=True, cancel_futures=True)
            self.report.audio_packets = writer.audio_packets_written
            self.report.frames = writer.frames_written
        self.report.seconds = time.perf_counter() - started
        return self.report


def protect_video(
    in_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    protector: Protector | None = None,
    options: VideoOptions | None = None,
    seed: int | None = None,
    audio: bool = True,
    crf: float = DEFAULT_CRF,
    preset: str = DEFAULT_PRESET,
    keep_metadata: bool = False,
    progress: ProgressCallback | None = None,
    margin: float | None = None,
    frame_hook: FrameHook | None = None,
) -> VideoReport:
    """Put a skin on every person in a video file; the one-call API.

    Streams ``in_path`` to ``out_path`` (H.264 in .mp4/.mov/.mkv, audio copied
    byte for byte unless ``audio=False``), with every face skinned or covered
    in every frame. ``protector`` defaults to ``for_video(Protector(...))``; a
    given one is used as it is (pass it through :func:`for_video` for speed).
    ``seed`` makes skin choice and cover noise reproducible. ``margin`` grows
    every fallback cover (fraction of the head size). ``progress(done,
    total)`` is called after each encoded frame (``total`` may be None), from
    the encoder thread. ``frame_hook(rgb, boxes)`` gets every finished frame
    and the boxes of all its protected face regions, on the encoder thread, and
    returns the frame to encode: the labelling step (badge, watermark) sits
    there so that it sees each region exactly where the pipeline altered it,
    including covers added by the look-ahead. Raises :class:`~faceskin.errors.InputError` /
    :class:`~faceskin.errors.OutputError` for the user's mistakes; nothing is
    written under ``out_path`` unless the whole clip succeeded.
    """
    options = replace(options or VideoOptions())
    if margin is not None:
        options.margin = margin
    if protector is not None and seed is not None:  # the same seed, the same skins and the same noise
        protector.rng = np.random.default_rng(seed)
        protector.library.rng = np.random.default_rng(seed)
    return VideoProtector(protector, options, seed=seed).run(
        in_path, out_path, audio=audio, crf=crf, preset=preset, keep_metadata=keep_metadata, progress=progress,
        frame_hook=frame_hook,
    )
