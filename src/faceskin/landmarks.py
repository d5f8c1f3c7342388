"""Dense face landmarks (MediaPipe FaceLandmarker, 478 points) fitted per detected face.

The landmarker is fed an upright, face-centred crop of each detection rather
than the whole frame: on whole frames it misses small and second faces, and
its internal detector cannot find faces rolled past ~45 degrees. The crop is
rotated by the roll the detector's eye keypoints imply, so the landmarker
always sees an upright face; the points are mapped back through the inverse
transform.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import threading

import cv2
import numpy as np

from faceskin import models
from faceskin.faces import Face

os.environ.setdefault("GLOG_minloglevel", "2")

CROP_SIZE = 256  # pixels of the square crop handed to the landmarker
CROP_SCALE = 2.0  # crop side / face box side: the landmarker's detector wants context


def roll_from_keypoints(kp: np.ndarray) -> float:
    """Angle (radians) of the line from the image-left eye to the image-right eye."""
    d = kp[1] - kp[0]
    return math.atan2(d[1], d[0])


def crop_transform(face: Face, size: int = CROP_SIZE, scale: float = CROP_SCALE) -> np.ndarray:
    """2x3 affine mapping image pixels into an upright square crop centred on the face."""
    if face.keypoints is not None:
        kp = np.asarray(face.keypoints, dtype=np.float64)
        angle = roll_from_keypoints(kp)
        # centre between eyes and mouth is steadier than the box centre under roll.
        centre = 0.5 * (kp[:2].mean(0) + kp[3:5].mean(0))
        eye_mouth = np.linalg.norm(kp[:2].mean(0) - kp[3:5].mean(0))
        extent = max(face.size, 2.6 * eye_mouth)
    else:
        angle = 0.0
        centre = face.center
        extent = face.size
    side = extent * scale
    s = size / side
    c, si = math.cos(-angle) * s, math.sin(-angle) * s
    # rotate by -angle about the centre, scale, then move centre to crop middle.
    m = np.array([[c, -si, 0.0], [si, c, 0.0]])
    m[:, 2] = np.array([size / 2, size / 2]) - m[:, :2] @ centre
    return m


@contextlib.contextmanager
def _quiet_stderr():
    """Silence MediaPipe/TFLite start-up chatter, which is written by C++ straight to fd 2."""
    try:
        fd = os.dup(2)
    except OSError:  # no usable stderr: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(fd, 2)
        os.close(fd)


def _silence_mediapipe_del(cls) -> None:
    original = cls.__del__
    if getattr(original, "_faceskin_safe", False):
        return

    def safe_del(self) -> None:
        with contextlib.suppress(Exception):
            original(self)

    safe_del._faceskin_safe = True
    cls.__del__ = safe_del


class Landmarker:
    """Fits 478 landmarks, 52 blendshapes and a head-pose matrix to detected faces.

    One MediaPipe graph per instance; calls are serialised with a lock because
    the graph is not re-entrant.
    """

    def __init__(self, min_confidence: float = 0.3):
        from mediapipe.tasks.python import BaseOptions
        from mediapipe.tasks.python import vision

        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(models.path("face_landmarker.task"))),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=2,
            min_face_detection_confidence=min_confidence,
            min_face_presence_confidence=min_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        with _quiet_stderr():
            self._lm = vision.FaceLandmarker.create_from_options(opts)
        self._lock = threading.Lock()
        self._warm = False
        # Close before interpreter teardown: MediaPipe's own __del__ runs after its
        # dispatcher thread pool is gone and prints a traceback at every exit.
        _silence_mediapipe_del(vision.FaceLandmarker)
        register = getattr(threading, "_register_atexit", atexit.register)
        register(self.close)

    def close(self) -> None:
        lm, self._lm = getattr(self, "_lm", None), None
        if lm is not None:
            with contextlib.suppress(Exception):
                lm.close()

    def fit(self, image: np.ndarray, face: Face) -> bool:
        """Fill ``face.landmarks`` etc.; return False (leaving them None) when the fit fails."""
        import mediapipe as mp

        m = crop_transform(face)
        crop = cv2.warpAffine(image, m, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        with self._lock:
            if self._lm is None:
                raise RuntimeError("landmarker is closed")
            ctx = contextlib.nullcontext() if self._warm else _quiet_stderr()
            with ctx:
                res = self._lm.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(crop)))
            self._warm = True
        if not res.face_landmarks:
            return False
        # choose the fitted face nearest the crop centre: that is the detection we asked about
        best, best_d = 0, float("inf")
        for i, lms in enumerate(res.face_landmarks):
            pts = np.array([[p.x, p.y] for p in lms])
            d = np.linalg.norm(pts.mean(0) - 0.5)
            if d < best_d:
                best, best_d = i, d
        pts = np.array([[p.x * CROP_SIZE, p.y * CROP_SIZE, p.z * CROP_SIZE] for p in res.face_landmarks[best]])
        inv = cv2.invertAffineTransform(m)
        xy = pts[:, :2] @ inv[:, :2].T + inv[:, 2]
        scale = math.sqrt(abs(np.linalg.det(inv[:, :2])))
        landmarks = np.column_stack([xy, pts[:, 2] * scale])
        # Sanity: the fit must sit on the detection, not on a neighbour's face.
        lc = landmarks[:, :2].mean(0)
        if np.linalg.norm(lc - face.center) > 0.6 * face.size:
            return False
        face.landmarks = landmarks
        if res.face_blendshapes:
            face.blendshapes = {c.category_name: float(c.score) for c in res.face_blendshapes[best]}
        if res.facial_transformation_matrixes:
            face.pose = np.asarray(res.facial_transformation_matrixes[best])
        return True


def head_angles(face: Face) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from the landmarker's pose matrix (0, 0, 0 when unknown)."""
    if face.pose is None:
        return 0.0, 0.0, 0.0
    r = np.asarray(face.pose)[:3, :3]
    r = r / np.linalg.norm(r[:, 0])
    yaw = math.degrees(math.asin(-np.clip(r[2, 0], -1, 1)))
    pitch = math.degrees(math.atan2(r[2, 1], r[2, 2]))
    roll = math.degrees(math.atan2(r[1, 0], r[0, 0]))
    return yaw, pitch, roll
