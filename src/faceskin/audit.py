"""The audit: what could someone with today's face recognizers still learn from a protected file?

``faceskin audit original protected`` answers that on the user's own file
instead of asking them to trust a benchmark. It never looks at how the file
was protected; it compares the two files as an attacker who also had the
original would, which is the strictest test there is:

* **Leak scan** (every frame by default). Faces are found in the ORIGINAL by a
  detector ensemble that the protect pipeline does not use in this form
  (:class:`AuditDetector`: CenterFace at full resolution, RetinaFace at another
  scale, MediaPipe's BlazeFace). For each face, the same place in the
  protected frame is embedded by every recognizer of the panel
  (:mod:`faceskin.recognizers`) and compared with the original face's
  embedding. A skin may sit a few pixels off the original face, so the
  protected face is re-detected near the original box and its keypoints used
  when found. A face *leaks* when any recognizer still says "same person"; a
  frame leaks when any of its faces does. Faces are linked across frames by
  box overlap into tracks, for per-person figures.
* **Gallery attack** (``gallery=DIR``): photos of the people (subfolders are
  identities; photos directly in DIR are one identity). Per recognizer: the
  share of protected faces still verified as, and ranked first as, the
  person their original face is identified as.
* **Linkability** (``link_with=OTHER``): whether the skins in this output and
  in another protected output are recognised as the same person.
* **Fidelity**: detection rate of skinned faces, expression agreement
  (blendshapes), head-pose error, landmark jitter, and the PSNR of everything
  outside the head regions.

A match is evidence only where the recognizer could tell people apart, so
by default four controls decide which matches are counted (``strict=True``
counts every match, the literal rule above):

* *no closer than a cover*: the original face is at least as close (within
  :data:`COVER_TOLERANCE`) to an identity-free cover of itself (a plain
  5-block mosaic, the face filled with its mean colour, or the head filled
  with the colour around it, flat or with a noise grain) as to the protected
  face, so the protection is no more recognisable than a cover (at small
  sizes recognizers match such covers: they see colour, layout and the
  clothing and background around the head there);
* *closer to another person*: the protected face is at least as close to the
  original of someone else seen in the same frame as to its own original, so
  the recognizer cannot single this person out under these conditions;
* *nothing left*: the protected face box is blank, neither the face's detail
  nor its coarse layout is there (:func:`blank_face`: a flat fill, with or
  without grain), so whatever a recognizer matches lies around the box;
* *unconfirmed detection*: a face only one detector of the ensemble reports,
  unless it is small (under :data:`CONFIRM_MIN_PX` px) and scored at least
  :data:`CONFIRM_SCORE`: real faces of 40 px and more are found by two or
  more detectors, while single reports were sky, clothing, hands and lamps
  on the shared clips; distant faces, though, are often found by one
  detector only, with high scores. Unchanged places on unconfirmed
  detections are shown in the report for a person to check.

The cover and person controls are relative and a bare face is never blank,
so a face left bare (identical to its original) always counts. Discounted matches are not hidden: the JSON and the page list them, and the
verdict says how many there were.

Each face in the protected file is also classed from its pixels alone:
``unchanged`` (the original's fine detail is still there: see
:func:`detail_correlation`), ``covered`` (the detail is gone: a mosaic, a
flat fill or a blur, or no detector nor the landmarker finds a face there any
more: a fall-back cover) or ``skinned`` (changed, and still a face). Those
classes feed the fall-back share and the fidelity figures; the leak verdict
does not depend on them.

``faceskin protect --audit`` runs the same audit on each output before it is
published (:class:`AuditGate`): a leaking output never appears under its
final name.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import math
import os
import sys
import tempfile
import threading
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from faceskin import models
from faceskin.detect import (
    CenterFaceDetector,
    FaceDetector,
    RetinaFaceDetector,
    box_iou,
    box_overlap_of_smaller,
)
from faceskin.errors import FaceskinError, InputError, OutputError
from faceskin.faces import Face
from faceskin.fallback import head_region

os.environ.setdefault("GLOG_minloglevel", "2")

AUDIT_VERSION = 1

#: A protected face is classed unchanged when its pixels differ from the
#: original's by less than this (mean absolute difference over the inner face
#: box, 0-255), or when its fine detail still correlates with the original's
#: at UNCHANGED_DETAIL or more (re-encoding moves pixels by several levels but
#: keeps the detail; see ``detail_correlation``).
UNCHANGED_LEVELS = 2.0
UNCHANGED_DETAIL = 0.8
#: A changed face where at least this share of neighbouring pixels are equal
#: (and 0.25 more than in the original) has lost its detail: classed covered.
COVERED_FLAT = 0.5
#: Head regions excluded from the outside-faces PSNR: ``fallback.head_region``
#: grown by this fraction (the protect pipeline's covers grow by 0.1).
OUTSIDE_MARGIN = 0.3
#: A face reported by one detector only is confirmed when smaller than CONFIRM_MIN_PX
#: (box side) and scored CONFIRM_SCORE or more: on the shared clips the larger single
#: reports were sky, clothing and rocks, the weaker small ones hands and lamps, while
#: distant real faces (10-15 px) scored 0.85-0.97.
CONFIRM_MIN_PX = 40
CONFIRM_SCORE = 0.8
#: Original embeddings kept per track as "other people" for the impostor control.
IMPOSTOR_SAMPLES = 4
#: Blocks across the face in the control mosaic (as in ``faceskin.fallback``).
MOSAIC_BLOCKS = 5
#: How much closer (in :func:`closeness`) than the closest identity-free cover a protected face must be
#: to count: covers differing only in their extent or grain scored up to 0.07 (SFace, 0.30-0.36 on one
#: 47 px group face) apart, so a protection within this of a cover is no more recognisable than one.
COVER_TOLERANCE = 0.03
#: A protected face box is blank (nothing of the face is left in it) when its coarse layout, the grey
#: blurred by BLANK_SIGMA of the box side, varies by at most BLANK_LEVELS (0-255) and by at most
#: BLANK_SHARE of the original's. Faces vary by 30-50 levels at that scale (eyes, brows, mouth, shading),
#: a 5-block mosaic or a blur keeps almost all of it; a flat fill, with or without the 2 px grain of a
#: fall-back cover, varies by under 2.
BLANK_SIGMA = 1 / 12
BLANK_LEVELS = 3.0
BLANK_SHARE = 0.1
#: Two covers can meet inside one box (neighbours in a crowd: on the shared hikers clip a 15 px face
#: lay under its own cover and the edge of the next person's). Such a box is blank too when two flat
#: colours explain it by the same measure, each fills one connected region, the smaller one reaches the
#: box's edge (a cover comes in from outside; an eye or mouth left bare lies inside), and neither is the
#: original left in place: its grey differs from the original's by at least BLANK_COPY_LEVELS on average
#: (a bare mouth on a 12 px face differed by 8 after one JPEG encode at quality 75; the neighbour's cover
#: on that hikers face by 24, covers over the astronaut's face by 40-80).
BLANK_COPY_LEVELS = 15.0
BLANK_CONNECTED = 0.9
#: Thumbnails kept for leaked faces (the rest are counted, not shown).
MAX_LEAK_THUMBNAILS = 24
#: Leaked faces listed one by one in the JSON (the rest are counted).
MAX_FACE_DETAILS = 500
#: Embeddings kept per track for the linkability comparison.
LINK_SAMPLES = 12
#: Share of sampled face pairs that must match for two tracks to count as linked.
LINK_SHARE = 0.5

LIMITS = (
    ("Only faces are protected and tested: hair, ears, body, clothing, tattoos, gait, voice, "
     "background and context can still identify a person and are not covered."),
    ("The results hold for the recognizers in this panel at their stated thresholds, not for every "
     "recognizer that exists or will exist."),
    ("The attacker modelled here holds the original file; one holding only other photos of the "
     "person (the gallery attack) has less to go on."),
    ("Faces no detector of the ensemble finds in the original (very small, heavily blurred, "
     "turned away) are not tested."),
    ("Skinned / covered / unchanged are read from the pixels and are estimates; the leak verdict does "
     "not depend on them."),
)


ProgressCallback = Callable[[int, "int | None"], None]


# ---------------------------------------------------------------- independent detection


class BlazeFaceDetector:
    """MediaPipe's short-range BlazeFace, read from the vendored ``face_landmarker.task`` bundle.

    A third, unrelated network (trained by Google on selfie-range faces) for
    the audit's ensemble; it adds nothing to download. It gives six points
    (eyes, nose tip, mouth centre, ears); the mouth corners the recognizers
    align on are placed from the mouth centre, and the box is raised to the
    brow like RetinaFace's so the two detectors' boxes agree.
    """

    name = "blazeface"

    def __init__(self, threshold: float = 0.5):
        from mediapipe.tasks.python import BaseOptions, vision

        from faceskin.landmarks import _quiet_stderr, _silence_mediapipe_del

        with zipfile.ZipFile(models.path("face_landmarker.task")) as bundle:
            model = bundle.read("face_detector.tflite")
        opts = vision.FaceDetectorOptions(base_options=BaseOptions(model_asset_buffer=model),
                                          min_detection_confidence=threshold)
        with _quiet_stderr():
            self._det = vision.FaceDetector.create_from_options(opts)
        _silence_mediapipe_del(vision.FaceDetector)
        self._quiet = _quiet_stderr
        self._warm = False
        self._lock = threading.Lock()
        register = getattr(threading, "_register_atexit", None)
        if register is not None:
            register(self.close)

    def close(self) -> None:
        det, self._det = getattr(self, "_det", None), None
        if det is not None:
            with contextlib.suppress(Exception):
                det.close()

    def detect(self, image: np.ndarray) -> list[Face]:
        import mediapipe as mp

        h, w = image.shape[:2]
        with self._lock:
            if self._det is None:
                raise RuntimeError("BlazeFace detector is closed")
            with contextlib.nullcontext() if self._warm else self._quiet():
                res = self._det.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)))
            self._warm = True
        faces = []
        for d in res.detections:
            kp = np.array([[k.x * w, k.y * h] for k in d.keypoints[:4]], dtype=np.float64)
            if len(kp) < 4:
                continue
            eyes = kp[:2] if kp[0, 0] <= kp[1, 0] else kp[1::-1]
            across = eyes[1] - eyes[0]
            eye_mid = eyes.mean(0)
            # BlazeFace's mouth point is the lower lip's centre; corners sit higher (fitted on the astronaut).
            mouth = eye_mid + 0.78 * (kp[3] - eye_mid)
            five = np.array([eyes[0], eyes[1], kp[2], mouth - 0.415 * across, mouth + 0.415 * across])
            b = d.bounding_box
            box = np.array([b.origin_x, b.origin_y - 0.25 * b.height, b.origin_x + b.width, b.origin_y + b.height],
                           dtype=np.float64)
            box = np.clip(box, 0, [w, h, w, h])
            faces.append(Face(box=box, score=float(d.categories[0].score), keypoints=five, source=self.name))
        return faces


# Which detector's box and keypoints represent a face found by several: RetinaFace's
# keypoints are the ones the recognizers' alignment was checked with.
_PRIORITY = {"retinaface": 3, "centerface": 2, "blazeface": 1}


class AuditDetector:
    """The audit's detector ensemble, kept unlike the protect pipeline's on purpose.

    faceskin protects video with RetinaFace at native resolution (photos add
    CenterFace at 960 px and turned passes). An audit that looked with the
    same eyes would share its blind spots, so here CenterFace runs at full
    resolution (up to 1920 px), RetinaFace at 1.5x (0.75x for frames already
    over 1280 px) and BlazeFace as a third opinion. ``rotations`` adds turned
    RetinaFace passes (photos only: video frames are upright).
    """

    def __init__(self, rotations: Sequence[int] = (0,), min_size: float = 8.0):
        self.center = CenterFaceDetector(max_side=1920)
        self.retina = RetinaFaceDetector(threshold=0.6)
        self.blaze = BlazeFaceDetector()
        turned = tuple(r for r in rotations if r % 360)
        self.turned = FaceDetector(rotations=turned, use_centerface=False) if turned else None
        self.min_size = min_size

    @property
    def names(self) -> list[str]:
        return ["centerface (full resolution)", "retinaface (rescaled)", "blazeface"] + (
            ["retinaface (turned)"] if self.turned else [])

    @staticmethod
    def retina_scale(height: int, width: int) -> float:
        return 1.5 if max(height, width) * 1.5 <= 1920 else 0.75

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces of the ensemble; ``Face.source`` lists the detectors that found each one ("a+b")."""
        h, w = image.shape[:2]
        found = self.center.detect(image)
        found += self.retina.detect_scaled(image, self.retina_scale(h, w))
        found += self.blaze.detect(image)
        if self.turned is not None:
            for f in self.turned.detect(image):
                f.source = "retinaface"
                found.append(f)
        found = [f for f in found if f.size >= self.min_size]
        for f in found:
            f.box = np.clip(np.asarray(f.box, np.float64), 0, [w, h, w, h])
        if not found:
            return []
        from faceskin.detect import merge_faces

        kept = merge_faces(found)
        owner = self.owners(kept, found)
        out = []
        for i, k in enumerate(kept):
            members = [f for f, o in zip(found, owner) if o == i] or [k]
            best = max(members, key=lambda f: (_PRIORITY.get(f.source.split("@")[0], 0), f.score))
            sources = sorted({f.source.split("@")[0] for f in members})
            out.append(Face(box=best.box.copy(), score=max(f.score for f in members),
                            keypoints=None if best.keypoints is None else np.asarray(best.keypoints, np.float64).copy(),
                            source="+".join(sources)))
        return out

    @staticmethod
    def owners(kept: Sequence[Face], found: Sequence[Face]) -> list[int]:
        """For each raw detection, the index of the merged face it belongs to (-1: none).

        A detection belongs to the merged face it overlaps best (IoU), among
        those it overlaps by IoU 0.3 or is 70 % inside: one detector's one box
        is evidence for one face, never for two. Counting it for every face it
        touched confirmed a false detection on the selfie clip (frame 215: a
        374 px RetinaFace box on an orange jacket under a face cut by the top
        edge) with the BlazeFace box of the face above it (IoU 0.58 with that
        face, 0.31 with the jacket box); the jacket, unchanged in the output,
        then "leaked" to all four recognizers. Found alone, it is what the
        confirmation rule already sets aside: a large face one detector reports.
        """
        if not kept or not found:
            return [-1] * len(found)
        kb = np.array([k.box for k in kept], np.float64)
        owner = []
        for f in found:
            iou = box_iou(f.box, kb)[0]
            same = (iou >= 0.3) | (box_overlap_of_smaller(f.box, kb)[0] >= 0.7)
            owner.append(int(np.argmax(np.where(same, iou, -1.0))) if same.any() else -1)
        return owner

    def redetect(self, image: np.ndarray, near: Face, min_iou: float = 0.4) -> Face | None:
        """The face in ``image`` at ``near``'s place, if a detector still finds one there.

        Runs RetinaFace on a crop around the box scaled so the face is about
        140 px, so small faces are found as reliably as large ones.
        """
        h, w = image.shape[:2]
        x0, y0, x1, y1 = near.box
        side = max(x1 - x0, y1 - y0, 4.0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        half = 1.1 * side
        a, b = int(max(0, math.floor(cx - half))), int(max(0, math.floor(cy - half)))
        c, d = int(min(w, math.ceil(cx + half))), int(min(h, math.ceil(cy + half)))
        if c - a < 8 or d - b < 8:
            return None
        scale = 320.0 / max(c - a, d - b)
        crop = np.ascontiguousarray(image[b:d, a:c])
        faces = self.retina.detect_scaled(crop, scale)
        best, best_iou = None, min_iou
        for f in faces:
            f.box = np.asarray(f.box, np.float64) + [a, b, a, b]
            f.keypoints = np.asarray(f.keypoints, np.float64) + [a, b]
            iou = float(box_iou(f.box, near.box)[0, 0])
            if iou >= best_iou:
                best, best_iou = f, iou
        return best


# ---------------------------------------------------------------- per-face records


@dataclass
class FaceCheck:
    """One original face and what the panel made of the protected file at its place."""

    item: int  # frame index (video) or pair index (photos)
    time: float | None  # seconds (video)
    file: str | None  # photo file name (photos)
    track: int
    box: tuple[float, float, float, float]
    score: float
    found_by: str  # detectors that found it, "a+b"
    redetected: bool  # a face was found at this place in the protected file
    state: str  # "unchanged", "covered" or "skinned"
    similarity: dict[str, float]  # recognizer -> similarity (or distance) original vs protected
    matched: tuple[str, ...]  # recognizers that still match
    discounted: dict[str, str] = field(default_factory=dict)  # of ``matched``: "cover" / "blank" / "other person"
    confirmed: bool = True  # False: a large face only one detector reports
    leaked: bool = False  # the match that counts (see the module docstring)
    cover_similarity: dict[str, float] = field(default_factory=dict)  # matched recognizer -> closest cover control

    @property
    def weak(self) -> bool:
        """Matched, but every match was discounted: reported, not counted."""
        return bool(self.matched) and not self.leaked

    @property
    def counted(self) -> tuple[str, ...]:
        return tuple(r for r in self.matched if r not in self.discounted)

    @property
    def size(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


@dataclass
class Thumbnail:
    """A small JPEG of the PROTECTED frame around one face (originals are never shown)."""

    item: int
    time: float | None
    file: str | None
    track: int
    why: str  # "leak", "worst" (the track's closest call) or "sample"
    state: str
    matched: tuple[str, ...]
    jpeg_base64: str


@dataclass
class _TrackAcc:
    """Running state of one track while frames stream past."""

    track_id: int
    last_item: int = -1
    last_box: np.ndarray | None = None
    worst_closeness: float = -math.inf
    prev_landmarks: list = field(default_factory=list)  # [(item, size, in (468,2), out (468,2))] last two
    link_embeddings: dict[str, list[np.ndarray]] = field(default_factory=lambda: defaultdict(list))
    link_seen: int = 0
    samples_seen: int = 0


def closeness(recognizer, value: float) -> float:
    """How far past its threshold a similarity is: 1 = identical, 0 = at threshold, < 0 = no match.

    Puts cosine similarities and dlib's distance on one scale so "the worst
    face of a track" means the same thing for every recognizer.
    """
    t = recognizer.threshold
    if recognizer.higher_is_similar:
        return (value - t) / max(1e-9, 1 - t)
    return (t - value) / max(1e-9, t)


# ---------------------------------------------------------------- result


@dataclass
class AuditResult:
    """Everything the audit measured; ``to_dict`` is the JSON report, ``leaked`` the gate."""

    original: str
    protected: str
    media: str  # "video", "photo" or "photos"
    recognizers: list[dict]
    detectors: list[str]
    frame_step: int = 1
    strict: bool = False
    items_total: int = 0  # frames (video) or photo pairs
    items_checked: int = 0
    fps: float | None = None
    faces: list[FaceCheck] = field(default_factory=list)
    thumbnails: list[Thumbnail] = field(default_factory=list)
    outside: dict = field(default_factory=dict)
    fidelity: dict = field(default_factory=dict)
    gallery: dict | None = None
    linkability: dict | None = None
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    # ----- the verdict

    @property
    def leaked(self) -> bool:
        return any(f.leaked for f in self.faces)

    @property
    def leaked_items(self) -> list[int]:
        return sorted({f.item for f in self.faces if f.leaked})

    @property
    def unit(self) -> str:
        return "frame" if self.media == "video" else "photo"

    def leak_events(self) -> list[dict]:
        """One entry per leaked frame (or photo): when, which tracks, which recognizers."""
        by_item: dict[int, list[FaceCheck]] = defaultdict(list)
        for f in self.faces:
            if f.leaked:
                by_item[f.item].append(f)
        events = []
        for item in sorted(by_item):
            fs = by_item[item]
            e = {self.unit: item, "tracks": sorted({f.track for f in fs}),
                 "recognizers": sorted({r for f in fs for r in f.matched}),
                 "counted_recognizers": sorted({r for f in fs for r in f.counted})}
            if fs[0].time is not None:
                e["time"] = round(fs[0].time, 3)
                e["timestamp"] = format_time(fs[0].time)
            if fs[0].file is not None:
                e["file"] = fs[0].file
            events.append(e)
        return events

    def leak_runs(self) -> list[dict]:
        """Leaked frames grouped into runs of consecutive checked frames: what a reader scans (video)."""
        runs: list[dict] = []
        for e in self.leak_events():
            last = runs[-1] if runs else None
            if last is not None and e["frame"] - last["last_frame"] == self.frame_step:
                last["last_frame"] = e["frame"]
                last["frames"] += 1
                last["end_time"], last["end"] = e.get("time"), e.get("timestamp")
                last["tracks"] = sorted(set(last["tracks"]) | set(e["tracks"]))
                last["recognizers"] = sorted(set(last["recognizers"]) | set(e["counted_recognizers"]))
            else:
                runs.append({"first_frame": e["frame"], "last_frame": e["frame"], "frames": 1,
                             "start_time": e.get("time"), "start": e.get("timestamp"),
                             "end_time": e.get("time"), "end": e.get("timestamp"),
                             "tracks": list(e["tracks"]), "recognizers": list(e["counted_recognizers"])})
        return runs

    def verdict(self) -> str:
        """The report's first line, in words a non-specialist can act on."""
        names = [r["name"] for r in self.recognizers]
        sampled = (f" (every {ordinal(self.frame_step)} frame checked)" if self.frame_step > 1 and self.media == "video"
                   else "")
        if not self.faces:
            return (f"No faces were found in the original ({self.items_checked} {self.unit}s checked{sampled}), "
                    "so there was nothing to test.")
        if not self.leaked:
            weak = sum(f.weak for f in self.faces)
            note = (f" ({weak} face{'s' if weak != 1 else ''} matched only by recognizers that match an "
                    "identity-free cover of the same face as closely, or another person, or where nothing of "
                    "the face is left, or on an unconfirmed "
                    "detection: not counted)" if weak else "")
            return (f"No leak found: none of the {len(names)} recognizers ({', '.join(names)}) recognised any of the "
                    f"{len(self.faces)} faces in {self.items_checked} {self.unit}s{sampled} of the protected file "
                    f"as the original person{note}.")
        items = self.leaked_items
        leaked = [f for f in self.faces if f.leaked]
        if self.media == "video":
            times = [f.time for f in leaked if f.time is not None]
            where = f" between {format_time(min(times))} and {format_time(max(times))}" if times else ""
            what = f"in {len(items)} of {self.items_checked} frames{where}{sampled}"
        else:
            what = f"in {len(items)} of {self.items_checked} photos"
        weak = sum(f.weak for f in self.faces)
        doubt = (f" A further {weak} match{'es were' if weak != 1 else ' was'} discounted (see the report)."
                 if weak else "")
        return (f"LEAK: {what}, at least one recognizer still recognises a face in the protected file as the "
                f"original person ({len(leaked)} face{'s' if len(leaked) != 1 else ''}).{doubt}")

    # ----- summaries

    def track_summaries(self) -> list[dict]:
        by_track: dict[int, list[FaceCheck]] = defaultdict(list)
        for f in self.faces:
            by_track[f.track].append(f)
        names = [r["name"] for r in self.recognizers]
        higher = {r["name"]: r["higher_is_similar"] for r in self.recognizers}
        out = []
        for tid in sorted(by_track):
            fs = by_track[tid]
            worst = {}
            for n in names:
                vals = [(f.similarity[n], f) for f in fs if n in f.similarity]
                if not vals:
                    continue
                v, f = max(vals, key=lambda p: p[0]) if higher[n] else min(vals, key=lambda p: p[0])
                worst[n] = {"similarity": round(v, 4), self.unit: f.item}
                if f.time is not None:
                    worst[n]["time"] = round(f.time, 3)
            states = defaultdict(int)
            for f in fs:
                states[f.state] += 1
            d = {"track": tid, "faces": len(fs), "leaked_faces": sum(f.leaked for f in fs),
                 f"first_{self.unit}": fs[0].item, f"last_{self.unit}": fs[-1].item,
                 "states": dict(states), "worst_similarity": worst,
                 "median_face_px": round(float(np.median([f.size for f in fs])), 1)}
            if fs[0].time is not None:
                d["first_time"], d["last_time"] = round(fs[0].time, 3), round(fs[-1].time, 3)
            if fs[0].file is not None:
                d["file"] = fs[0].file
            out.append(d)
        return out

    def face_detail(self, f: FaceCheck) -> dict:
        """One face as the JSON lists it: enough to see why it counted (size, state, each figure vs threshold)."""
        d = {self.unit: f.item, "track": f.track, "box": list(f.box), "size_px": round(f.size, 1),
             "found_by": f.found_by, "state": f.state, "redetected": f.redetected,
             "similarity": f.similarity, "matched": list(f.matched), "counted": list(f.counted),
             "discounted": f.discounted, "closest_cover_similarity": f.cover_similarity}
        if f.time is not None:
            d["time"] = round(f.time, 3)
        if f.file is not None:
            d["file"] = f.file
        return d

    def state_counts(self) -> dict[str, int]:
        counts = {"skinned": 0, "covered": 0, "unchanged": 0}
        for f in self.faces:
            counts[f.state] += 1
        return counts

    def to_dict(self) -> dict:
        names = [r["name"] for r in self.recognizers]
        events = self.leak_events()
        by_rec = {n: sum(f.leaked and n in f.counted for f in self.faces) for n in names}
        discounted = {why: {n: sum(f.discounted.get(n) == why for f in self.faces) for n in names}
                      for why in ("cover", "blank", "other person")}
        bare_unresolved = [f for f in self.faces if f.state == "unchanged" and not f.leaked]
        states = self.state_counts()
        n = len(self.faces)
        return {
            "tool": "faceskin",
            "report": "audit",
            "version": AUDIT_VERSION,
            "original": self.original,
            "protected": self.protected,
            "media": self.media,
            "verdict": {"leaked": self.leaked, "sentence": self.verdict()},
            "settings": {"frame_step": self.frame_step, "strict": self.strict, "recognizers": self.recognizers,
                         "detectors": self.detectors, "unchanged_levels": UNCHANGED_LEVELS,
                         "unchanged_detail_correlation": UNCHANGED_DETAIL,
                         "covered_flat": COVERED_FLAT, "outside_margin": OUTSIDE_MARGIN,
                         "confirm_min_px": CONFIRM_MIN_PX, "confirm_score": CONFIRM_SCORE,
                         "cover_tolerance": COVER_TOLERANCE, "blank_levels": BLANK_LEVELS,
                         "blank_share": BLANK_SHARE, "blank_sigma": round(BLANK_SIGMA, 4)},
            f"{self.unit}s": {"total": self.items_total, "checked": self.items_checked,
                              "with_faces": len({f.item for f in self.faces})},
            "fps": self.fps,
            "faces": {"total": n, **states,
                      "fallback_share": round(states["covered"] / n, 4) if n else None,
                      "unconfirmed_detections": sum(not f.confirmed for f in self.faces)},
            "leaks": {f"{self.unit}s": len(events), "faces": sum(f.leaked for f in self.faces),
                      "faces_by_recognizer": by_rec, f"leaked_{self.unit}s": events,
                      **({"leaked_runs": self.leak_runs()} if self.media == "video" else {}),
                      "weak_faces": sum(f.weak for f in self.faces),
                      "matches_discounted": discounted,
                      "matched_unconfirmed_faces": sum(bool(f.matched) and not f.confirmed for f in self.faces),
                      "unchanged_not_counted": len(bare_unresolved),
                      "leaked_face_details": [self.face_detail(f) for f in self.faces if f.leaked][:MAX_FACE_DETAILS]},
            "tracks": self.track_summaries(),
            "gallery": self.gallery,
            "linkability": self.linkability,
            "fidelity": {**self.fidelity, "outside_faces": self.outside},
            "limits": list(LIMITS),
            "warnings": self.warnings,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "seconds": round(self.seconds, 3),
        }


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def format_time(seconds: float) -> str:
    m, s = divmod(max(0.0, seconds), 60)
    return f"{int(m)}:{s:06.3f}"


# ---------------------------------------------------------------- gallery


@dataclass
class Gallery:
    """Embedded photos of known people: ``identities[i]`` is the person of row i of every matrix."""

    path: str
    identities: list[str]
    embeddings: dict[str, np.ndarray]  # recognizer -> (N, D)
    photos: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def people(self) -> list[str]:
        return sorted(set(self.identities))


def load_gallery(path: str | os.PathLike, detector: AuditDetector, panel) -> Gallery:
    """Embed the largest face of every photo in ``path`` (subfolders = people; loose photos = one person)."""
    from faceskin.imagefile import iter_image_files, read_image

    root = Path(path)
    if not root.is_dir():
        raise InputError(f"gallery {root}: not a folder (give a folder of photos, or one subfolder per person)")
    entries: list[tuple[str, Path]] = [(root.name or "gallery", p) for p in iter_image_files(root)]
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        entries += [(sub.name, p) for p in iter_image_files(sub)]
    if not entries:
        raise InputError(f"gallery {root}: no photos found (jpg, png, webp, tif)")
    identities: list[str] = []
    vectors: dict[str, list[np.ndarray]] = {r.name: [] for r in panel}
    skipped = []
    for person, p in entries:
        img = read_image(p).rgb
        faces = detector.detect(img)
        if not faces:
            skipped.append(str(p.relative_to(root)))
            continue
        face = max(faces, key=lambda f: f.size)
        identities.append(person)
        for r in panel:
            vectors[r.name].append(np.asarray(r.embed(img, face), np.float64))
    if not identities:
        raise InputError(f"gallery {root}: no face found in any of its {len(entries)} photos")
    return Gallery(str(root), identities, {k: np.stack(v) for k, v in vectors.items()}, len(entries), skipped)


def _scores(recognizer, e: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The recognizer's similarity of ``e`` to every row (cosine or euclidean, as the panel documents)."""
    e = np.asarray(e, np.float64).ravel()
    if recognizer.higher_is_similar:
        m = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        return m @ (e / max(np.linalg.norm(e), 1e-12))
    return np.linalg.norm(matrix - e, axis=1)


class _GalleryAttack:
    """Per recognizer: is each original face known to the gallery, and is its protected face still?"""

    def __init__(self, gallery: Gallery, panel):
        self.gallery = gallery
        self.panel = panel
        self.ids = np.array(gallery.identities)
        self.people = gallery.people
        self.counts = {r.name: defaultdict(int) for r in panel}
        self.track_hits: dict[str, dict[int, list[bool]]] = {r.name: defaultdict(lambda: [False, False])
                                                              for r in panel}

    def _per_person(self, r, e) -> dict[str, float]:
        s = _scores(r, e, self.gallery.embeddings[r.name])
        best = {}
        for person in self.people:
            vals = s[self.ids == person]
            best[person] = float(vals.max() if r.higher_is_similar else vals.min())
        return best

    def _ranked_first(self, r, scores: dict[str, float]) -> str:
        return max(scores, key=scores.get) if r.higher_is_similar else min(scores, key=scores.get)

    def _passes(self, r, value: float) -> bool:
        return value >= r.threshold if r.higher_is_similar else value <= r.threshold

    def add(self, r, track: int, e_original: np.ndarray, e_protected: np.ndarray) -> None:
        c = self.counts[r.name]
        c["faces"] += 1
        orig = self._per_person(r, e_original)
        who = self._ranked_first(r, orig)
        if not self._passes(r, orig[who]):
            return  # the original face is not one of the gallery's people for this recognizer
        c["original_identified"] += 1
        prot = self._per_person(r, e_protected)
        verified = self._passes(r, prot[who])
        first = self._ranked_first(r, prot) == who
        c["protected_verified"] += verified
        c["protected_rank1"] += first
        hit = self.track_hits[r.name][track]
        hit[0] = hit[0] or verified
        hit[1] = True

    def summary(self) -> dict:
        per = {}
        several = len(self.people) >= 2
        for r in self.panel:
            c = self.counts[r.name]
            known = c["original_identified"]
            tracks = self.track_hits[r.name]
            per[r.name] = {
                "faces": c["faces"],
                "original_identified": known,
                "protected_verified": c["protected_verified"],
                "verification_rate": round(c["protected_verified"] / known, 4) if known else None,
                "protected_rank1": c["protected_rank1"] if several else None,
                "rank1_rate": round(c["protected_rank1"] / known, 4) if known and several else None,
                "tracks_known": sum(1 for v in tracks.values() if v[1]),
                "tracks_verified_in_any_face": sum(1 for v in tracks.values() if v[0]),
            }
        return {"path": self.gallery.path, "people": len(self.people), "photos": self.gallery.photos,
                "faces_embedded": len(self.gallery.identities), "photos_without_face": self.gallery.skipped,
                "rank1_meaningful": several, "by_recognizer": per}


# ---------------------------------------------------------------- the auditor


def _grow(box, frac: float, w: int, h: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    s = max(x1 - x0, y1 - y0)
    return (int(max(0, math.floor(x0 - frac * s))), int(max(0, math.floor(y0 - frac * s))),
            int(min(w, math.ceil(x1 + frac * s))), int(min(h, math.ceil(y1 + frac * s))))


def flat_share(gray: np.ndarray) -> float:
    """Share of neighbouring pixel pairs with exactly equal grey: ~0.1-0.3 on faces, ~0.8+ on a mosaic or fill."""
    g = gray.astype(np.int16)
    pairs = [np.abs(np.diff(g, axis=1)), np.abs(np.diff(g, axis=0))]
    n = sum(p.size for p in pairs)
    return float(sum(int((p == 0).sum()) for p in pairs) / n) if n else 0.0


def _layout(gray: np.ndarray) -> np.ndarray:
    """The coarse layout of a grey crop (or of a residual): blurred by BLANK_SIGMA of its longer side."""
    return cv2.GaussianBlur(gray.astype(np.float32), (0, 0), max(1.0, BLANK_SIGMA * max(gray.shape)))


def _layout_std(gray: np.ndarray) -> float:
    """How much the coarse layout of a grey crop varies: its standard deviation."""
    return float(_layout(gray).std())


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _two_colours(crop: np.ndarray, smooth: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(labels 0/1, grey residual) of the closest two-colour picture of an RGB crop (2-means, deterministic).

    ``smooth``: the pixels are labelled on the crop blurred by this sigma (the residual is still
    the crop's own): the covers' noise grain (fallback.GRAIN_NOISE, std 16) is as strong as the
    difference between two covers that sample the same surroundings, and labelled pixel by pixel
    it scatters specks of each fill over the other."""
    h, w = crop.shape[:2]
    x = crop.reshape(-1, 3).astype(np.float32)
    y = cv2.GaussianBlur(crop.astype(np.float32), (0, 0), smooth).reshape(-1, 3) if smooth > 0 else x
    d = y - y.mean(0)
    _, _, vt = np.linalg.svd(d, full_matrices=False)
    along = d @ vt[0]
    labels = (along > (along.min() + along.max()) / 2).astype(np.int64)  # split the colour range in half
    centres = np.zeros((2, 3), np.float32)
    for _ in range(20):
        for j in (0, 1):
            if (labels == j).any():
                centres[j] = y[labels == j].mean(0)
        new = np.argmin(((y[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
    for j in (0, 1):
        if (labels == j).any():
            centres[j] = x[labels == j].mean(0)
    return labels.reshape(h, w), ((x - centres[labels]) @ _LUMA).reshape(h, w)


def _two_covers(go: np.ndarray, gp: np.ndarray, pa: np.ndarray, limit: float) -> bool:
    """Whether two flat fills, neither of them the original left in place, explain a protected box."""
    # labelled at half the layout scale: grain-sized specks are no detail (a 56-95 px astronaut
    # under his cover and a neighbour's, both grained, was read as specks in 8 draws of 9)
    labels, residual = _two_colours(pa, BLANK_SIGMA * max(pa.shape[:2]) / 2)
    if _layout_rms(residual) > limit:
        return False
    smaller = int((labels == 1).sum() < (labels == 0).sum())
    edge = np.ones(labels.shape, bool)
    edge[1:-1, 1:-1] = False
    for j in (0, 1):
        region = labels == j
        if not region.any():
            continue
        _, _, stats, _ = cv2.connectedComponentsWithStats(region.astype(np.uint8), connectivity=8)
        if stats[1:, cv2.CC_STAT_AREA].max() < BLANK_CONNECTED * region.sum():
            return False  # specks: detail, not a fill
        if j == smaller and not (region & edge).any():
            return False  # a patch inside the face (an eye, the mouth), not a neighbour's cover reaching in
        if np.abs(gp[region].astype(np.float32) - go[region]).mean() < BLANK_COPY_LEVELS:
            return False  # part of the original, left bare
    return True


def _layout_rms(residual: np.ndarray) -> float:
    """How far a grey residual strays from zero at the layout scale."""
    r = _layout(residual)
    return float(np.sqrt((r * r).mean()))


def blank_face(original: np.ndarray, protected: np.ndarray, box) -> bool:
    """True when the protected face box holds nothing of the face: neither its detail nor its layout.

    Why it decides a match: a recognizer that still "recognises" such a box
    sees only what lies around it (hair, clothing, background: the limits
    the report states), and no control can price that in. On the shared
    hikers clip SFace and FaceNet matched flat-filled 23-40 px faces, and
    their scores moved by up to 0.2 with the seed of a cover's noise grain
    alone. A box is compared whole, so a fill that misses part of the face
    (a bare chin, one eye) is not blank. Two fills that meet in the box
    (the person's cover and a neighbour's) are blank when neither region
    is the original left in place (see :data:`BLANK_COPY_LEVELS`).
    """
    h, w = original.shape[:2]
    x0, y0, x1, y1 = box
    a, b = int(max(0, math.floor(x0))), int(max(0, math.floor(y0)))
    c, d = int(min(w, math.ceil(x1))), int(min(h, math.ceil(y1)))
    if c - a < 4 or d - b < 4:
        return False
    pa = np.ascontiguousarray(protected[b:d, a:c])
    go = cv2.cvtColor(np.ascontiguousarray(original[b:d, a:c]), cv2.COLOR_RGB2GRAY)
    gp = cv2.cvtColor(pa, cv2.COLOR_RGB2GRAY)
    limit = min(BLANK_LEVELS, BLANK_SHARE * _layout_std(go))
    if _layout_std(gp) <= limit:
        return True
    return _two_covers(go, gp, pa, limit)


def classify_face(original: np.ndarray, protected: np.ndarray, box) -> str:
    """``unchanged``, ``covered`` or ``changed``, from the pixels of the inner face box.

    ``covered`` means the fine detail is gone: a mosaic, a flat fill or a
    strong blur leaves most neighbouring pixels equal, which no face (real or
    skinned) does. A ``changed`` face becomes ``skinned`` or ``covered``
    depending on whether a face can still be found there (see ``_Scan._face``).
    """
    h, w = original.shape[:2]
    x0, y0, x1, y1 = box
    # the inner face: box shrunk by 15 % per side, so hair and background edges do not count
    dx, dy = 0.15 * (x1 - x0), 0.15 * (y1 - y0)
    a, b = int(max(0, round(x0 + dx))), int(max(0, round(y0 + dy)))
    c, d = int(min(w, round(x1 - dx))), int(min(h, round(y1 - dy)))
    if c - a < 3 or d - b < 3:
        a, b, c, d = int(max(0, x0)), int(max(0, y0)), int(min(w, math.ceil(x1))), int(min(h, math.ceil(y1)))
    if c <= a or d <= b:
        return "unchanged"
    oa, pa = original[b:d, a:c], protected[b:d, a:c]
    if np.abs(oa.astype(np.int16) - pa).mean() < UNCHANGED_LEVELS:
        return "unchanged"
    go = cv2.cvtColor(np.ascontiguousarray(oa), cv2.COLOR_RGB2GRAY)
    gp = cv2.cvtColor(np.ascontiguousarray(pa), cv2.COLOR_RGB2GRAY)
    if detail_correlation(go, gp) >= UNCHANGED_DETAIL:
        return "unchanged"
    if flat_share(gp) >= COVERED_FLAT and flat_share(gp) >= flat_share(go) + 0.25:
        return "covered"
    return "changed"


def detail_correlation(a: np.ndarray, b: np.ndarray, sigma: float = 2.0) -> float:
    """Correlation of the fine detail (grey minus its blur) of two crops: ~1 for one face re-encoded.

    A skin keeps the original's shading and the positions of eyes and mouth,
    so the coarse picture correlates; its skin texture, wrinkles and edges
    come from the donor, so the fine detail does not (0.0-0.5 on the shared
    clips, against 0.96 for an untouched face after two H.264 encodes).
    """
    fa, fb = a.astype(np.float32), b.astype(np.float32)
    ha = fa - cv2.GaussianBlur(fa, (0, 0), sigma)
    hb = fb - cv2.GaussianBlur(fb, (0, 0), sigma)
    den = math.sqrt(float((ha * ha).sum()) * float((hb * hb).sum()))
    return float((ha * hb).sum() / den) if den > 1e-6 else 0.0


def mosaic(image: np.ndarray, box, blocks: int = MOSAIC_BLOCKS) -> np.ndarray:
    """A copy of ``image`` with the face box (grown by a quarter) pixelated to ``blocks`` blocks across."""
    h, w = image.shape[:2]
    out = image.copy()
    x0, y0, x1, y1 = _grow(box, 0.25, w, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return out
    block = max(2.0, (box[2] - box[0]) / blocks)
    bw, bh = max(1, round((x1 - x0) / block)), max(1, round((y1 - y0) / block))
    small = cv2.resize(out[y0:y1, x0:x1], (bw, bh), interpolation=cv2.INTER_AREA)
    out[y0:y1, x0:x1] = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
    return out


def flat_fill(image: np.ndarray, box) -> np.ndarray:
    """A copy of ``image`` with the face box (grown by a quarter) filled with its mean colour."""
    h, w = image.shape[:2]
    out = image.copy()
    x0, y0, x1, y1 = _grow(box, 0.25, w, h)
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = out[y0:y1, x0:x1].reshape(-1, 3).mean(0).round().astype(np.uint8)
    return out


def surround_fill(image: np.ndarray, box, grain: bool = False) -> np.ndarray:
    """A copy of ``image`` with the head around the face box filled with the colour around the head.

    Identity-free by construction: no pixel from inside the head ellipse (the
    box widened to the ears and raised to the hairline) goes into it, only
    the mean of what lies just outside it (hair, background, collar), plus
    with ``grain`` a fixed noise grain: the make of a fall-back cover.
    """
    h, w = image.shape[:2]
    face = Face(box=np.asarray(box, np.float64), score=1.0)
    (cx, cy), (ax, ay) = head_region(face)
    rx0, ry0 = int(max(0, math.floor(cx - ax))), int(max(0, math.floor(cy - ay)))
    rx1, ry1 = int(min(w, math.ceil(cx + ax) + 1)), int(min(h, math.ceil(cy + ay) + 1))
    if rx1 - rx0 < 2 or ry1 - ry0 < 2:
        return image.copy()
    inside = head_mask(image.shape, [face], margin=0.0)  # the cover's head ellipse, box included
    window = np.zeros_like(inside)
    window[ry0:ry1, rx0:rx1] = True
    around = image[window & ~inside]
    if len(around) < 8:
        return flat_fill(image, box)
    out = image.copy()
    colour = around.astype(np.float32).mean(0)
    if grain:
        # a fixed 2 px grain of noise (std 16), as fall-back covers of faces over ~40 px carry
        # (faceskin.fallback): at 15-17 px FaceNet matched such grain more closely than a flat fill
        rng = np.random.default_rng(0)
        gh, gw = -(-h // 2), -(-w // 2)
        noise = np.repeat(np.repeat(rng.normal(0, 16.0, (gh, gw, 1)), 2, axis=0), 2, axis=1)[:h, :w]
        out[inside] = np.clip(colour + noise[inside], 0, 255).astype(np.uint8)
    else:
        out[inside] = colour.round().astype(np.uint8)
    return out


def head_mask(shape: tuple[int, int], faces: Sequence[Face], margin: float = OUTSIDE_MARGIN) -> np.ndarray:
    """True inside the (grown) head ellipse of any face: the part of a frame protection may change."""
    mask = np.zeros(shape[:2], np.uint8)
    for f in faces:
        centre, axes = head_region(f, margin)
        cv2.ellipse(mask, (round(centre[0]), round(centre[1])), (math.ceil(axes[0]), math.ceil(axes[1])),
                    0, 0, 360, 1, -1)
        x0, y0, x1, y1 = _grow(f.box, margin / 2, shape[1], shape[0])
        mask[y0:y1, x0:x1] = 1
    return mask.astype(bool)


def psnr_from_mse(mse: float) -> float:
    return math.inf if mse <= 0 else 10 * math.log10(255.0 ** 2 / mse)


def _pearson(a: Sequence[float], b: Sequence[float]) -> float | None:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return None
    return round(float(np.corrcoef(a, b)[0, 1]), 4)


def _thumbnail(image: np.ndarray, box, height: int = 112) -> str:
    from PIL import Image

    h, w = image.shape[:2]
    x0, y0, x1, y1 = _grow(box, 0.35, w, h)
    crop = image[y0:y1, x0:x1]
    if crop.size == 0:
        crop = image
    scale = height / crop.shape[0]
    crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), height),
                      interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    buf = io.BytesIO()
    Image.fromarray(crop).save(buf, format="JPEG", quality=82)
    return base64.b64encode(buf.getvalue()).decode("ascii")


class _IouLinker:
    """Links faces across frames by box overlap: enough to say "the same person" for per-track figures."""

    def __init__(self, min_iou: float = 0.3, max_gap: int = 10):
        self.min_iou = min_iou
        self.max_gap = max_gap
        self.active: dict[int, tuple[int, np.ndarray]] = {}
        self.next_id = 1

    def assign(self, item: int, boxes: Sequence[np.ndarray]) -> list[int]:
        self.active = {t: v for t, v in self.active.items() if item - v[0] <= self.max_gap}
        ids = [0] * len(boxes)
        if boxes and self.active:
            tids = list(self.active)
            iou = box_iou(np.array(boxes), np.array([self.active[t][1] for t in tids]))
            used_f, used_t = set(), set()
            for fi, ti in sorted(np.ndindex(iou.shape), key=lambda p: -iou[p]):
                if iou[fi, ti] < self.min_iou:
                    break
                if fi in used_f or ti in used_t:
                    continue
                ids[fi] = tids[ti]
                used_f.add(fi)
                used_t.add(ti)
        for i, b in enumerate(boxes):
            if not ids[i]:
                ids[i] = self.next_id
                self.next_id += 1
            self.active[ids[i]] = (item, np.asarray(b, np.float64))
        return ids

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


class Auditor:
    """Holds the models once (detectors, landmarker, recognizer panel) and audits any number of pairs."""

    def __init__(self, recognizers=None, landmarker=None, rotations: Sequence[int] | None = None):
        from faceskin.landmarks import Landmarker
        from faceskin.recognizers import RecognizerUnavailable, load_panel

        try:
            if recognizers is None or all(isinstance(r, str) for r in recognizers):
                self.panel = load_panel(list(recognizers) if recognizers is not None else None)
            else:
                self.panel = list(recognizers)
        except RecognizerUnavailable as exc:
            raise FaceskinError(f"the audit needs face recognizers: {exc}") from None
        except ValueError as exc:
            raise FaceskinError(str(exc)) from None
        if not self.panel:
            raise FaceskinError("the audit needs at least one recognizer")
        self.video_detector = AuditDetector(rotations=(0,))
        self._photo_detector: AuditDetector | None = None
        self._photo_rotations = tuple(rotations) if rotations is not None else (0, 90, 180, 270)
        self.landmarker = landmarker or Landmarker()
        self._pool = None

    def map_panel(self, fn: Callable) -> list:
        """``fn(recognizer)`` for every recognizer of the panel, side by side.

        The networks release the GIL and each runs on one thread
        (``recognizers._ort_session``), so the panel spreads over the cores
        instead of each network spreading thinly over all of them. Each
        recognizer is used by one thread at a time.
        """
        if len(self.panel) == 1 or (os.cpu_count() or 1) == 1:
            return [fn(rec) for rec in self.panel]
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=len(self.panel), thread_name_prefix="faceskin-audit")
        return list(self._pool.map(fn, self.panel))

    @property
    def photo_detector(self) -> AuditDetector:
        if self._photo_detector is None:
            turned = tuple(r for r in self._photo_rotations if r % 360)
            det = AuditDetector(rotations=(0,))
            if turned:
                det.turned = FaceDetector(rotations=turned, use_centerface=False)
            # share the heavy models with the video ensemble
            det.center, det.retina, det.blaze = (self.video_detector.center, self.video_detector.retina,
                                                 self.video_detector.blaze)
            self._photo_detector = det
        return self._photo_detector

    def recognizer_info(self) -> list[dict]:
        return [{"name": r.name, "threshold": r.threshold, "higher_is_similar": r.higher_is_similar,
                 "rule": (f"cosine >= {r.threshold}" if r.higher_is_similar else f"distance <= {r.threshold}")}
                for r in self.panel]


class _Scan:
    """One audit in progress: feeds (original, protected) images through the measurements."""

    def __init__(self, auditor: Auditor, result: AuditResult, detector: AuditDetector,
                 gallery: Gallery | None, thumbnails: bool, fidelity: bool = True, link: bool = False):
        self.a = auditor
        self.r = result
        self.detector = detector
        self.attack = _GalleryAttack(gallery, auditor.panel) if gallery is not None else None
        self.thumbs = thumbnails
        self.do_fidelity = fidelity
        self.keep_links = link
        self.linker = _IouLinker(max_gap=max(10, 5 * result.frame_step))
        self.tracks: dict[int, _TrackAcc] = {}
        # impostor control: recent original embeddings per track, and which tracks shared a frame
        self.originals: dict[int, dict[str, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
        self.together: dict[int, set[int]] = defaultdict(set)
        self.rng = np.random.default_rng(0)
        self.t = defaultdict(float)
        # fidelity accumulators
        self.jaw: tuple[list, list] = ([], [])
        self.blink: tuple[list, list] = ([], [])
        self.pose_err: list[tuple[float, float, float]] = []
        self.skinned = self.skinned_found = 0
        self.fits = self.fit_fail = 0
        self.jitter_in: list[float] = []
        self.jitter_out: list[float] = []
        # outside-faces PSNR accumulators
        self.sse = 0
        self.values = 0
        self.changed = 0
        self.frame_psnr_min = math.inf
        self.frames_changed_outside = 0
        self.leak_thumbs = 0
        self.bare_thumbs = 0
        self.track_thumbs: dict[int, dict[str, Thumbnail]] = defaultdict(dict)

    # ----- per image

    def image(self, item: int, time_s: float | None, file: str | None, orig: np.ndarray, prot: np.ndarray,
              separate_tracks: bool = False) -> None:
        t0 = time.perf_counter()
        faces = self.detector.detect(orig)
        self.t["detect"] += time.perf_counter() - t0
        if separate_tracks:
            ids = [self.linker.new_id() for _ in faces]
        else:
            ids = self.linker.assign(item, [f.box for f in faces])
        for tid in ids:  # faces seen together are different people: each other's impostors
            self.together[tid].update(t for t in ids if t != tid)
        looks = []
        for face, tid in zip(faces, ids):
            face.track_id = tid
            looks.append(self._look(orig, prot, face))
        pairs = self._embed_frame(orig, prot, faces, looks)
        for face, look, p in zip(faces, looks, pairs):
            self._face(item, time_s, file, orig, prot, face, look, p)
        t0 = time.perf_counter()
        self._outside(orig, prot, faces)
        self.t["psnr"] += time.perf_counter() - t0

    def _look(self, orig: np.ndarray, prot: np.ndarray, face: Face) -> tuple[bool, Face | None, Face, str]:
        """(identical, re-detected face, probe, pixel state) of one face: what the embeddings need."""
        h, w = orig.shape[:2]
        t0 = time.perf_counter()
        x0, y0, x1, y1 = _grow(face.box, 0.75, w, h)
        identical = np.array_equal(orig[y0:y1, x0:x1], prot[y0:y1, x0:x1])
        again = None if identical else self.detector.redetect(prot, face)
        probe = again or Face(box=face.box.copy(), score=face.score, keypoints=face.keypoints.copy())
        state = "unchanged" if identical else classify_face(orig, prot, face.box)
        self.t["redetect"] += time.perf_counter() - t0
        return identical, again, probe, state

    def _embed_frame(self, orig: np.ndarray, prot: np.ndarray, faces: list[Face], looks: list) -> list[dict]:
        """Per face, recognizer -> (original embedding, protected embedding), the whole frame at once.

        Every face of the frame goes to each recognizer in one call (a batch
        where the network takes one) and the recognizers run side by side;
        the numbers are those of one ``embed`` per face. A face identical to
        its original is embedded once.
        """
        if not faces:
            return []
        items = [(orig, f) for f in faces] + [(prot, look[2]) for look in looks if not look[0]]

        def run(rec):
            t1 = time.perf_counter()
            out = rec.embed_many(items)
            return out, time.perf_counter() - t1

        t0 = time.perf_counter()
        done = self.a.map_panel(run)
        self.t["embed"] += time.perf_counter() - t0
        pairs: list[dict] = [{} for _ in faces]
        for rec, (embs, spent) in zip(self.a.panel, done):
            self.t[f"embed_{rec.name}"] += spent
            k = len(faces)
            for i, look in enumerate(looks):
                ea = embs[i]
                if look[0]:
                    eb = ea
                else:
                    eb, k = embs[k], k + 1
                pairs[i][rec.name] = (ea, eb)
        return pairs

    def _outside(self, orig: np.ndarray, prot: np.ndarray, faces: list[Face]) -> None:
        mask = head_mask(orig.shape, faces)
        diff = orig.astype(np.int32) - prot.astype(np.int32)
        diff[mask] = 0
        sse = int(np.einsum("ijk,ijk->", diff, diff, dtype=np.int64))
        values = int((~mask).sum()) * orig.shape[2]
        self.sse += sse
        self.values += values
        changed = int(np.count_nonzero(diff.any(axis=2)))
        self.changed += changed
        if changed:
            self.frames_changed_outside += 1
        if values:
            self.frame_psnr_min = min(self.frame_psnr_min, psnr_from_mse(sse / values))

    def _face(self, item: int, time_s, file, orig: np.ndarray, prot: np.ndarray, face: Face, look: tuple,
              pairs: dict) -> None:
        tid = face.track_id
        acc = self.tracks.setdefault(tid, _TrackAcc(tid))
        identical, again, probe, state = look
        fitted_protected = None
        if state == "changed":
            # a face is left there if the detector or, failing that, the landmarker still finds one
            t0 = time.perf_counter()
            if again is None:
                fitted_protected = self._fit(prot, probe)
            state = "skinned" if again is not None or fitted_protected is not None else "covered"
            self.t["landmarks"] += time.perf_counter() - t0

        t0 = time.perf_counter()
        sims, matched = {}, []
        for rec in self.a.panel:
            ea, eb = pairs[rec.name]
            sims[rec.name] = round(float(rec.similarity(ea, eb)), 5)
            if rec.is_match(ea, eb):
                matched.append(rec.name)
        covers: dict[str, float] = {}
        discounted = self._discounted(orig, prot, face, probe, matched, pairs, covers) if matched else {}
        for rec in self.a.panel:
            bank = self.originals[tid][rec.name]
            bank.append(pairs[rec.name][0])
            del bank[:-IMPOSTOR_SAMPLES]
        self.t["controls"] += time.perf_counter() - t0
        confirmed = "+" in face.source or (face.size < CONFIRM_MIN_PX and face.score >= CONFIRM_SCORE)
        if self.r.strict:
            leaked = bool(matched)
        else:
            leaked = confirmed and any(m not in discounted for m in matched)

        t0 = time.perf_counter()
        fitted_original = self._fit(orig, face) if self.do_fidelity and state == "skinned" else None
        if self.do_fidelity and state == "skinned":
            self._fidelity(acc, item, orig, prot, face, probe, again is not None, fitted_original, fitted_protected)
        self.t["landmarks"] += time.perf_counter() - t0

        check = FaceCheck(item=item, time=time_s, file=file, track=tid,
                          box=tuple(round(float(v), 1) for v in face.box), score=round(face.score, 3),
                          found_by=face.source, redetected=again is not None or identical, state=state,
                          similarity=sims, matched=tuple(matched), discounted=discounted, confirmed=confirmed,
                          leaked=leaked, cover_similarity=covers)
        self.r.faces.append(check)

        if self.attack is not None and (confirmed or self.r.strict):
            # as in the leak count, a face only one detector reports is no face of the person's: on the
            # shared photos such detections (identical in both files) were "verified" as someone by dlib
            t0 = time.perf_counter()
            for rec in self.a.panel:
                self.attack.add(rec, tid, *pairs[rec.name])
            self.t["gallery"] += time.perf_counter() - t0
        if self.keep_links and state == "skinned":
            acc.link_seen += 1
            for rec in self.a.panel:
                _reservoir(acc.link_embeddings[rec.name], pairs[rec.name][1], acc.link_seen, self.rng)
        if self.thumbs:
            t0 = time.perf_counter()
            self._thumbnails(acc, check, prot, probe)
            self.t["thumbnails"] += time.perf_counter() - t0

    def _discounted(self, orig: np.ndarray, prot: np.ndarray, face: Face, probe: Face, matched: list[str],
                    pairs: dict, covers: dict[str, float] | None = None) -> dict[str, str]:
        """The matching recognizers whose match is no evidence of identity here, and why.

        Both controls are relative, so a bare face (identical to its
        original) is never discounted. "other person": the protected face is
        at least as close to the original of someone seen in the same frame
        (so not this person, and under the same camera, light and size) as
        to its own. "cover": the original face is at least as close, within
        :data:`COVER_TOLERANCE`, to an identity-free cover of itself (a plain
        5-block mosaic, the face box filled with its mean colour, or the head
        filled with the colour around it: :func:`surround_fill`) as to the
        protected face: the protection is no more recognisable than a cover,
        and at that size or blur the recognizer sees colour, layout and what
        surrounds the head, not identity. "blank": nothing of the face is left
        in the protected face box (:func:`blank_face`, at the original's box
        and where the face was looked for), so the match comes from around it.

        ``covers`` receives, per recognizer tested against the covers, the
        similarity of the original to its closest cover: the figure a
        reader compares a counted match with.
        """
        out: dict[str, str] = {}
        by_name = {rec.name: rec for rec in self.a.panel}
        others = self.together.get(face.track_id, set())
        for rec in self.a.panel:
            if rec.name not in matched:
                continue
            ea, eb = pairs[rec.name]
            own = closeness(rec, rec.similarity(ea, eb))
            if any(closeness(rec, rec.similarity(eb, e)) >= own for t in others for e in self.originals[t][rec.name]):
                out[rec.name] = "other person"
        looked = (face,) if probe is face else (face, probe)
        if any(m not in out for m in matched) and all(blank_face(orig, prot, f.box) for f in looked):
            for m in matched:
                out.setdefault(m, "blank")
        # a face identical to its original (closeness 1) can never be discounted by the mosaic: skip the embedding
        rest = [m for m in matched if m not in out
                and closeness(by_name[m], by_name[m].similarity(*pairs[m])) < 1 - 1e-6]
        if not rest:
            return out
        controls = [mosaic(orig, face.box), flat_fill(orig, face.box), surround_fill(orig, face.box),
                    surround_fill(orig, face.box, grain=True)]

        def test(rec) -> tuple[bool, float | None]:
            """(discounted, similarity to the closest cover tried); each cover only when the ones before did not discount."""
            if rec.name not in rest:
                return False, None
            ea, eb = pairs[rec.name]
            own = closeness(rec, rec.similarity(ea, eb))
            best = None
            for c in controls:
                v = rec.similarity(ea, rec.embed(c, face))
                best = v if best is None else (max(best, v) if rec.higher_is_similar else min(best, v))
                if closeness(rec, v) + COVER_TOLERANCE >= own:
                    return True, best
            return False, best

        for rec, (hit, best) in zip(self.a.panel, self.a.map_panel(test)):
            if best is not None and covers is not None:
                covers[rec.name] = round(float(best), 5)
            if hit:
                out[rec.name] = "cover"
        return out

    def _fit(self, image: np.ndarray, face: Face) -> Face | None:
        f = Face(box=np.asarray(face.box, np.float64).copy(), score=face.score,
                 keypoints=None if face.keypoints is None else face.keypoints.copy())
        return f if self.a.landmarker.fit(image, f) else None

    def _fidelity(self, acc: _TrackAcc, item: int, orig, prot, face: Face, probe: Face, found: bool,
                  a: Face | None, b: Face | None) -> None:
        from faceskin.landmarks import head_angles

        self.skinned += 1
        self.skinned_found += found
        b = b or self._fit(prot, probe)
        self.fits += 1
        if a is None or b is None:
            self.fit_fail += 1
            acc.prev_landmarks = []
            return
        if a.blendshapes and b.blendshapes:
            self.jaw[0].append(a.blendshapes.get("jawOpen", 0.0))
            self.jaw[1].append(b.blendshapes.get("jawOpen", 0.0))
            self.blink[0].append((a.blendshapes.get("eyeBlinkLeft", 0.0) + a.blendshapes.get("eyeBlinkRight", 0.0)) / 2)
            self.blink[1].append((b.blendshapes.get("eyeBlinkLeft", 0.0) + b.blendshapes.get("eyeBlinkRight", 0.0)) / 2)
        ya, yb = head_angles(a), head_angles(b)
        self.pose_err.append(tuple(abs((p - q + 180) % 360 - 180) for p, q in zip(ya, yb)))
        # jitter: second difference of landmark positions over three consecutive checked frames
        step = self.r.frame_step
        hist = [p for p in acc.prev_landmarks if item - p[0] <= 2 * step]
        hist.append((item, face.size, a.landmarks[:468, :2].copy(), b.landmarks[:468, :2].copy()))
        if len(hist) == 3 and hist[1][0] - hist[0][0] == step and hist[2][0] - hist[1][0] == step:
            size = max(hist[1][1], 1.0)
            for k, out in ((2, self.jitter_in), (3, self.jitter_out)):
                acc2 = hist[2][k] - 2 * hist[1][k] + hist[0][k]
                out.append(float(np.sqrt((acc2 ** 2).sum(1).mean())) / size)
        acc.prev_landmarks = hist[-2:]

    def _thumbnails(self, acc: _TrackAcc, check: FaceCheck, prot: np.ndarray, probe: Face) -> None:
        close = max(closeness(rec, check.similarity[rec.name]) for rec in self.a.panel)

        def make(why: str) -> Thumbnail:
            return Thumbnail(check.item, check.time, check.file, check.track, why, check.state, check.matched,
                             _thumbnail(prot, probe.box))

        if check.leaked and self.leak_thumbs < MAX_LEAK_THUMBNAILS:
            self.r.thumbnails.append(make("leak"))
            self.leak_thumbs += 1
        elif check.state == "unchanged" and self.bare_thumbs < MAX_LEAK_THUMBNAILS // 2:
            # unprotected-looking yet unrecognisable: shown so a reader can tell a missed tiny face from sky
            self.r.thumbnails.append(make("unchanged"))
            self.bare_thumbs += 1
        kept = self.track_thumbs[acc.track_id]
        if close > acc.worst_closeness:
            acc.worst_closeness = close
            kept["worst"] = make("worst")
        acc.samples_seen += 1
        # two samples per track, uniformly over its faces (reservoir sampling)
        slot = acc.samples_seen - 1 if acc.samples_seen <= 2 else int(self.rng.integers(acc.samples_seen))
        if slot < 2:
            kept[f"sample{slot}"] = make("sample")

    # ----- end of scan

    def finish(self) -> None:
        r = self.r
        for tid in sorted(self.track_thumbs):
            kept = self.track_thumbs[tid]
            r.thumbnails += [kept[k] for k in ("worst", "sample0", "sample1") if k in kept]
        mse = self.sse / self.values if self.values else 0.0
        psnr = psnr_from_mse(mse)
        r.outside = {
            "psnr_db": "inf" if math.isinf(psnr) else round(psnr, 3),
            "mse": round(mse, 6),
            "sum_squared_error": self.sse,
            "values_compared": self.values,
            "pixels_compared": self.values // 3,
            "pixels_changed": self.changed,
            "frames_with_changes": self.frames_changed_outside,
            "worst_frame_psnr_db": ("inf" if math.isinf(self.frame_psnr_min) else round(self.frame_psnr_min, 3)),
            "margin": OUTSIDE_MARGIN,
        }
        jit_in = float(np.mean(self.jitter_in)) if self.jitter_in else None
        jit_out = float(np.mean(self.jitter_out)) if self.jitter_out else None
        pose = np.array(self.pose_err) if self.pose_err else None
        r.fidelity = {
            "skinned_faces": self.skinned,
            "detection_rate_skinned": round(self.skinned_found / self.skinned, 4) if self.skinned else None,
            "landmark_fits": self.fits,
            "landmark_fit_failures": self.fit_fail,
            "blendshape_r": {"jawOpen": _pearson(*self.jaw), "eyeBlink": _pearson(*self.blink)},
            "blendshape_pairs": len(self.jaw[0]),
            "blendshape_mean_abs_error": {
                "jawOpen": round(float(np.mean(np.abs(np.subtract(*self.jaw)))), 4) if self.jaw[0] else None,
                "eyeBlink": round(float(np.mean(np.abs(np.subtract(*self.blink)))), 4) if self.blink[0] else None},
            "head_pose_error_deg": ({k: round(float(v), 2) for k, v in zip(("yaw", "pitch", "roll"), pose.mean(0))}
                                    if pose is not None else None),
            "landmark_jitter": {"input": None if jit_in is None else round(jit_in, 5),
                                "output": None if jit_out is None else round(jit_out, 5),
                                "ratio": round(jit_out / jit_in, 3) if jit_in and jit_out is not None else None,
                                "triples": len(self.jitter_in)},
        }
        if self.attack is not None:
            r.gallery = self.attack.summary()
        r.timings.update(self.t)


def _reservoir(bucket: list, value, seen: int, rng: np.random.Generator, size: int = LINK_SAMPLES) -> None:
    if len(bucket) < size:
        bucket.append(value)
    else:
        j = int(rng.integers(seen))
        if j < size:
            bucket[j] = value


# ---------------------------------------------------------------- inputs


def _kind(path: Path) -> str:
    from faceskin.imagefile import SUPPORTED_SUFFIXES

    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        return "folder"
    return "photo" if path.suffix.lower() in SUPPORTED_SUFFIXES else "video"


def _pairs_in_folders(original: Path, protected: Path, warnings: list[str]) -> list[tuple[Path, Path]]:
    from faceskin.imagefile import iter_image_files

    orig = {p.name: p for p in iter_image_files(original)}
    prot = {p.name: p for p in iter_image_files(protected)}
    names = sorted(orig.keys() & prot.keys())
    if not names:
        raise InputError(f"{original} and {protected}: no photo file names in common (folders are matched by name)")
    missing = sorted(orig.keys() - prot.keys())
    if missing:
        warnings.append(f"{len(missing)} photo(s) of {original} have no protected counterpart and were not audited: "
                        + ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else ""))
    extra = sorted(prot.keys() - orig.keys())
    if extra:
        warnings.append(f"{len(extra)} photo(s) in {protected} have no original and were not audited")
    return [(orig[n], prot[n]) for n in names]


def _same_size(a: np.ndarray, b: np.ndarray, pa, pb) -> None:
    if a.shape != b.shape:
        raise InputError(f"{pb}: {b.shape[1]}x{b.shape[0]} but {pa} is {a.shape[1]}x{a.shape[0]}; "
                         "the audit compares a file with its protected copy of the same size")


def _video_pairs(original: Path, protected: Path, warnings: list[str]) -> Iterator[tuple]:
    """Frames of both videos side by side, aligned by index, checked for equal timing."""
    from faceskin.videofile import open_video

    ra, rb = open_video(original), open_video(protected)
    if (ra.width, ra.height) != (rb.width, rb.height):
        raise InputError(f"{protected}: {rb.width}x{rb.height} but {original} is {ra.width}x{ra.height}; "
                         "the audit compares a video with its protected copy of the same size")
    if ra.frame_count and rb.frame_count and ra.frame_count != rb.frame_count:
        raise InputError(f"{protected}: has {rb.frame_count} frames but {original} has {ra.frame_count}; "
                         "the audit needs the same frames in both")
    half_frame = 0.5 / ra.fps if ra.fps else 0.02
    off = 0
    ib = iter(rb)
    count = 0
    for fa in ra:
        fb = next(ib, None)
        if fb is None:
            raise InputError(f"{protected}: ends after {fa.index} frames, before {original} does; "
                             "the audit needs the same frames in both")
        if abs(fa.time - fb.time) > half_frame:
            off += 1
        count += 1
        yield fa, fb
    if next(ib, None) is not None:
        raise InputError(f"{protected}: has more frames than {original} ({count}); "
                         "the audit needs the same frames in both")
    if off:
        warnings.append(f"{off} frame(s) have different timestamps in the two videos; frames were paired by order")


# ---------------------------------------------------------------- linkability


def _link_groups(auditor: Auditor, path: Path, detector_for: Callable[[str], AuditDetector],
                 max_frames: int = 60) -> dict[int, dict[str, list[np.ndarray]]]:
    """Sampled face embeddings of another protected output, grouped by track (video) or face (photos)."""
    from faceskin.imagefile import iter_image_files, read_image
    from faceskin.videofile import open_video

    kind = _kind(path)
    groups: dict[int, _TrackAcc] = {}
    rng = np.random.default_rng(1)
    linker = _IouLinker()

    def add(img: np.ndarray, item: int, faces: list[Face], ids: list[int]) -> None:
        for f, tid in zip(faces, ids):
            acc = groups.setdefault(tid, _TrackAcc(tid))
            acc.link_seen += 1
            for rec in auditor.panel:
                _reservoir(acc.link_embeddings[rec.name], rec.embed(img, f), acc.link_seen, rng)

    if kind == "video":
        reader = open_video(path)
        stride = max(1, (reader.frame_count or max_frames * 5) // max_frames)
        det = detector_for("video")
        for frame in reader:
            if frame.index % stride:
                continue
            faces = det.detect(frame.rgb)
            add(frame.rgb, frame.index, faces, linker.assign(frame.index // stride, [f.box for f in faces]))
    else:
        files = iter_image_files(path) if kind == "folder" else [path]
        det = detector_for("photo")
        for i, p in enumerate(files[:max_frames]):
            img = read_image(p).rgb
            faces = det.detect(img)
            add(img, i, faces, [linker.new_id() for _ in faces])
    return {t: dict(acc.link_embeddings) for t, acc in groups.items()}


def _link_pairs(panel, a: dict[int, dict], b: dict[int, dict], same: bool) -> list[dict]:
    """Group pairs whose sampled faces mostly match, per recognizer."""
    out = []
    for ta, ea in a.items():
        for tb, eb in b.items():
            if same and tb <= ta:
                continue
            linked = {}
            for rec in panel:
                xs, ys = ea.get(rec.name, []), eb.get(rec.name, [])
                if not xs or not ys:
                    continue
                hits = [rec.is_match(x, y) for x in xs for y in ys]
                share = sum(hits) / len(hits)
                if share >= LINK_SHARE:
                    linked[rec.name] = round(share, 3)
            if linked:
                out.append({"this": ta, "other": tb, "recognizers": linked})
    return out


KEY_EXPLANATION = (
    "Without --key faceskin draws skins afresh on every run, so one person gets unrelated faces in "
    "different files. With --key (or a forced --skin) the same person gets the same skin in every file: "
    "useful for a series, but then anyone can tell that those files show the same person (not who they are)."
)


def linkability(auditor: Auditor, scan: _Scan, other: Path) -> dict:
    t0 = time.perf_counter()
    ours = {t: dict(acc.link_embeddings) for t, acc in scan.tracks.items() if acc.link_seen}

    def detector_for(kind: str) -> AuditDetector:
        return auditor.video_detector if kind == "video" else auditor.photo_detector

    theirs = _link_groups(auditor, other, detector_for)
    across = _link_pairs(auditor.panel, ours, theirs, same=False)
    within = _link_pairs(auditor.panel, ours, ours, same=True)
    linked = bool(across)
    if not ours:
        sentence = "No skinned face in this output to compare."
    elif not theirs:
        sentence = f"No face found in {other} to compare with."
    elif linked:
        sentence = (f"Linkable: {len(across)} face group(s) here and in {other.name} wear skins the recognizers "
                    "call the same person. That is expected with --key or --skin; otherwise the same skin was drawn "
                    "by chance.")
    else:
        sentence = f"Not linkable: no skin here is recognised as the same person as any face in {other.name}."
    scan.t["linkability"] += time.perf_counter() - t0
    return {"other": str(other), "linkable": linked, "sentence": sentence, "pairs": across,
            "groups_here": len(ours), "groups_other": len(theirs), "within_this_output": within,
            "samples_per_group": LINK_SAMPLES, "share_needed": LINK_SHARE, "key": KEY_EXPLANATION}


# ---------------------------------------------------------------- public API


def audit(
    original_path: str | os.PathLike,
    protected_path: str | os.PathLike,
    *,
    gallery: str | os.PathLike | Gallery | None = None,
    recognizers=None,
    frame_step: int = 1,
    thumbnails: bool = True,
    link_with: str | os.PathLike | None = None,
    fidelity: bool = True,
    strict: bool = False,
    auditor: Auditor | None = None,
    progress: ProgressCallback | None = None,
) -> AuditResult:
    """Audit a protected photo, folder of photos or video against its original.

    ``gallery``: folder of photos of the people (one subfolder per person) for
    the gallery attack, or a :class:`Gallery` from :func:`load_gallery`
    (embedded once, reused across audits). ``recognizers``: names (default: every installed one)
    or Recognizer objects. ``frame_step``: check every Nth video frame (default
    every frame; the verdict then says so). ``link_with``: another protected
    output to test for linkability. ``fidelity=False`` skips the landmark
    fits. ``strict=True`` counts every match as a leak, without the controls
    of the module docstring. Raises :class:`FaceskinError` for the user's
    mistakes.
    """
    if int(frame_step) < 1:
        raise FaceskinError(f"frame step must be 1 or more, not {frame_step}")
    started = time.perf_counter()
    a, b = Path(original_path), Path(protected_path)
    ka, kb = _kind(a), _kind(b)
    if ka != kb:
        raise InputError(f"{a} is a {ka} but {b} is a {kb}; audit a file against its protected copy of the same kind")
    if a.resolve() == b.resolve():
        raise InputError(f"{a}: the original and the protected file are the same file")
    auditor = auditor or Auditor(recognizers)
    media = {"folder": "photos", "photo": "photo", "video": "video"}[ka]
    detector = auditor.video_detector if media == "video" else auditor.photo_detector
    result = AuditResult(original=str(a), protected=str(b), media=media, recognizers=auditor.recognizer_info(),
                         detectors=detector.names, frame_step=int(frame_step) if media == "video" else 1,
                         strict=strict)
    g = gallery if isinstance(gallery, Gallery) or gallery is None else None
    if gallery is not None and g is None:
        t0 = time.perf_counter()
        g = load_gallery(gallery, auditor.photo_detector, auditor.panel)
        result.timings["gallery_load"] = time.perf_counter() - t0
    scan = _Scan(auditor, result, detector, g, thumbnails, fidelity=fidelity, link=link_with is not None)
    if media == "video":
        from faceskin.videofile import open_video

        total = open_video(a).frame_count
        t0 = time.perf_counter()
        for fa, fb in _video_pairs(a, b, result.warnings):
            result.items_total += 1
            if fa.index % result.frame_step == 0:
                scan.t["decode"] += time.perf_counter() - t0
                result.items_checked += 1
                scan.image(fa.index, fa.time, None, fa.rgb, fb.rgb)
                if progress is not None:
                    progress(fa.index + 1, total)
            else:
                scan.t["decode"] += time.perf_counter() - t0
            t0 = time.perf_counter()
        result.fps = open_video(a).fps
    else:
        from faceskin.imagefile import read_image

        pairs = _pairs_in_folders(a, b, result.warnings) if media == "photos" else [(a, b)]
        for i, (pa, pb) in enumerate(pairs):
            t0 = time.perf_counter()
            ia, ib = read_image(pa), read_image(pb)
            _same_size(ia.rgb, ib.rgb, pa, pb)
            scan.t["decode"] += time.perf_counter() - t0
            result.items_total += 1
            result.items_checked += 1
            scan.image(i, None, pa.name, ia.rgb, ib.rgb, separate_tracks=True)
            if progress is not None:
                progress(i + 1, len(pairs))
    if link_with is not None:
        result.linkability = linkability(auditor, scan, Path(link_with))
    scan.finish()
    result.seconds = time.perf_counter() - started
    return result


def audit_pairs(pairs: Sequence[tuple[str | os.PathLike, str | os.PathLike]], **kwargs) -> list[AuditResult]:
    """Audit several (original, protected) pairs with one set of models (what ``protect --audit`` needs)."""
    auditor = kwargs.pop("auditor", None) or Auditor(kwargs.pop("recognizers", None))
    kwargs.pop("recognizers", None)
    return [audit(a, b, auditor=auditor, **kwargs) for a, b in pairs]


# ---------------------------------------------------------------- writing


def _atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    if not path.parent.exists():
        raise OutputError(f"cannot write {path}: folder {path.parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".faceskin-tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise


def write_json(result: AuditResult, path: str | os.PathLike) -> None:
    """The JSON report, written atomically."""
    _atomic_write_text(Path(path), json.dumps(result.to_dict(), indent=2) + "\n")


def default_report_path(protected: str | os.PathLike, suffix: str = ".audit.html") -> Path:
    """``clip.skinned.audit.html`` beside the protected file (or folder)."""
    p = Path(protected)
    return p.with_name(p.name + suffix) if p.is_dir() else p.with_name(p.stem + suffix)


def run_audit_cli(
    original: str | os.PathLike,
    protected: str | os.PathLike,
    html_out: str | os.PathLike | None,
    json_out: str | os.PathLike | None,
    gallery: str | os.PathLike | None,
    quiet: bool,
    *,
    link_with: str | os.PathLike | None = None,
    frame_step: int = 1,
    recognizers: Sequence[str] | None = None,
    strict: bool = False,
    auditor: Auditor | None = None,
) -> int:
    """What ``faceskin audit`` and ``protect --audit`` run: audit, write reports, print the verdict.

    Returns the exit code: 0 no leak, 1 leak found (so it can gate a
    pipeline), 2 a user error (printed as one ``error:`` line on stderr).
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    err = Console(stderr=True, highlight=False)
    try:
        for out in (html_out, json_out):  # fail before a long audit, not after it
            if out is not None and not Path(out).parent.is_dir():
                raise OutputError(f"cannot write {out}: folder {Path(out).parent} does not exist")
        with Progress(TextColumn("auditing {task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=err, disable=quiet or not err.is_terminal, transient=True) as bar:
            task = bar.add_task(Path(protected).name, total=None)
            result = audit(original, protected, gallery=gallery, recognizers=recognizers, frame_step=frame_step,
                           link_with=link_with, strict=strict, auditor=auditor,
                           progress=lambda done, total: bar.update(task, completed=done, total=total))
        written = []
        if html_out is not None:  # first, so the JSON holds the time the page took
            from faceskin.audit_report import write_html

            write_html(result, html_out)
            written.append(str(html_out))
        if json_out is not None:
            write_json(result, json_out)
            written.append(str(json_out))
    except FaceskinError as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print("[bold red]error:[/] interrupted; no partial report was left under the final name", soft_wrap=True)
        return 130
    if result.leaked:
        # a leak is never silent, not even with --quiet
        err.print(f"[bold red]{result.verdict()}[/]", soft_wrap=True)
        events = result.leak_events()
        shown = ", ".join(e.get("timestamp") or e.get("file") or str(e.get(result.unit)) for e in events[:12])
        err.print(f"leaked {result.unit}s: {shown}{' ...' if len(events) > 12 else ''}", soft_wrap=True)
    elif not quiet:
        print(result.verdict())
    if written and not quiet:
        print("report: " + ", ".join(written))
    return 1 if result.leaked else 0


# ---------------------------------------------------------------- protect --audit


def leaked_path(final: str | os.PathLike) -> Path:
    """``clip.skinned.leaked.mp4``: where a leaking output is kept for inspection, never the final name."""
    p = Path(final)
    return p.with_name(f"{p.stem}.leaked{p.suffix}")


class AuditGate:
    """``faceskin protect --audit``: audit each output before it may appear under its final name.

    The protect step writes to a staging name (the labeller's, or a hidden
    one of ours when there is no label); :meth:`check` audits that file
    against the input. A clean output is then published under its final
    name; a leaking one only under :func:`leaked_path`, with the verdict and
    the report path printed, so that a pipeline gated on the exit code never
    picks it up and a person can still look at it. The audit is the same as
    ``faceskin audit`` (its own detectors on the original, every frame):
    what the protect run believes it did is not evidence.

    ``report``: None writes a report only for a leaking output (beside the
    kept file: without a leak there is nothing to inspect); a folder gets
    ``<output stem>.audit.html`` and ``.audit.json`` per output; a file name
    (one output only) gets the HTML there and the JSON beside it.
    """

    def __init__(self, report: str | os.PathLike | None = None, *, outputs: int = 1,
                 auditor: Auditor | None = None, say: Callable[[str], None] = print,
                 alarm: Callable[[str], None] | None = None):
        self.report = Path(report) if report is not None else None
        named_file = self.report is not None and self.report.suffix.lower() in (".html", ".htm", ".json")
        self.report_is_dir = self.report is not None and (self.report.is_dir() or not named_file)
        if self.report is not None:
            if outputs > 1 and not self.report_is_dir:
                raise InputError(f"--audit-report {self.report}: several outputs need a report folder, not a file")
            if self.report.exists() and not self.report.is_dir() and self.report_is_dir:
                raise InputError(f"--audit-report {self.report}: not a folder")
            if not self.report.parent.is_dir():
                raise InputError(f"--audit-report {self.report}: folder {self.report.parent} does not exist")
        # the models load before any protecting: a missing recognizer fails the run at once
        self.auditor = auditor or Auditor()
        self.say = say
        self.alarm = alarm or (lambda s: print(s, file=sys.stderr))
        self.leaked: list[Path] = []
        self.results: list[AuditResult] = []

    def staging_path(self, staged: Path, final: Path) -> Path:
        """``staged`` if it is already not the final name, else a hidden name beside it."""
        staged, final = Path(staged), Path(final)
        if staged != final:
            return staged
        return final.with_name(f".{final.stem}.unaudited{final.suffix}")

    def report_paths(self, final: Path, target: Path) -> tuple[Path | None, Path | None]:
        if self.report is None:
            return default_report_path(target), default_report_path(target, ".audit.json")
        if self.report_is_dir:
            self.report.mkdir(exist_ok=True)
            return self.report / f"{final.stem}.audit.html", self.report / f"{final.stem}.audit.json"
        if self.report.suffix.lower() == ".json":
            return self.report.with_suffix(".html"), self.report
        return self.report, self.report.with_suffix(".json")

    def check(self, original: str | os.PathLike, staged: str | os.PathLike, final: str | os.PathLike,
              progress: ProgressCallback | None = None) -> Path:
        """Audit ``staged`` against ``original``; the name it may be published under (final or leaked).

        On any exception the staged file is removed: an output that was not
        audited is never left behind to be mistaken for one that was.
        """
        staged, final = Path(staged), Path(final)
        try:
            result = audit(original, staged, auditor=self.auditor, progress=progress)
            target = leaked_path(final) if result.leaked else final
            result.protected = str(target)  # the staging name is gone by the time anyone reads the report
            html_out = json_out = None
            if result.leaked or self.report is not None:
                from faceskin.audit_report import write_html

                html_out, json_out = self.report_paths(final, target)
                write_html(result, html_out)
                write_json(result, json_out)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(staged)
            raise
        self.results.append(result)
        if result.leaked:
            self.leaked.append(target)
            self.alarm(f"{final}: {result.verdict()}")
            self.alarm(f"not published under {final.name}; kept for inspection as {target}; "
                       f"report: {html_out} (and {json_out.name})")
        else:
            self.say(f"{final}: audit: {result.verdict()}" + (f" report: {html_out}" if html_out else ""))
        return target

    @staticmethod
    def settle(staged: str | os.PathLike, target: str | os.PathLike) -> None:
        """Move ``staged`` to ``target`` if nothing else did (the labeller moves it; without labels nobody does)."""
        staged, target = Path(staged), Path(target)
        if staged != target and staged.exists():
            os.replace(staged, target)


def main(argv: Sequence[str] | None = None) -> int:  # pragma: no cover - convenience for `python -m`
    import argparse

    ap = argparse.ArgumentParser(prog="python -m faceskin.audit", description=__doc__.split("\n\n")[0])
    ap.add_argument("original")
    ap.add_argument("protected")
    ap.add_argument("--html")
    ap.add_argument("--json")
    ap.add_argument("--gallery")
    ap.add_argument("--link-with")
    ap.add_argument("--frame-step", type=int, default=1)
    ap.add_argument("--strict", action="store_true")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    return run_audit_cli(args.original, args.protected, args.html, args.json, args.gallery, args.quiet,
                         link_with=args.link_with, frame_step=args.frame_step, strict=args.strict)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
