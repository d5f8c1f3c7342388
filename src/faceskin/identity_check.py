"""The built-in self-check: after a skin is painted, does the face still look like the person?

A skin that fits a face well can still leave too much of the person (face
outline, shading, proportions) for a recognizer. So every skinned face is
embedded with SFace (vendored, Apache-2.0) before and after, and if the two
are still closer than ``limit`` the protector escalates: another skin, then
stronger geometry, then the fallback. The limit sits well below SFace's own
match threshold (0.363) because an attacker compares with *other* photos of
the person, which the tool never sees; the margin is what covers that gap.

Where dlib's network is installed (the ``eval`` extra, CC0 weights) it is
asked too: on the shared selfie clip a 200 px skin that SFace passed at 0.25
was still within dlib's 0.6 match distance (0.54-0.60) for 45 frames. The
check then reports ``limit + (DLIB_LIMIT - distance)`` when that is higher
than SFace's similarity, so a face dlib would still match counts as not
hidden and escalation ranks skins by the worse of the two opinions.

The audit and the privacy benchmark still use the independent panel
(dlib, FaceNet, ArcFace); SFace's figures there (and dlib's, where the
second opinion is on) are no longer independent of this check, and the
reports say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from faceskin import models
from faceskin.recognizers import ARCFACE_TEMPLATE_112, align_crop

DEFAULT_LIMIT = 0.3  # measured: skins at <= 0.3 were re-identified by no recognizer of the panel on 60 London pairs
DLIB_LIMIT = 0.63  # dlib distance a skin must reach (its match threshold is 0.6; the margin covers other photos)
# Below SMALL_FACE_PX the limit drops, by up to SMALL_FACE_MARGIN at 40 px (the smallest skinned face):
# there a few pixels of alignment move SFace's similarity a lot. One skin on one 44-54 px hiker face
# scored 0.06-0.35 from frame to frame, and the audit (aligning on its own detectors' keypoints)
# found it at 0.37-0.41 on two frames between checks that had passed.
SMALL_FACE_PX, SMALL_FACE_MARGIN = 64.0, 0.08


def _second_opinion():
    """dlib's recognizer when installed, else None (the core install has SFace only)."""
    try:
        from faceskin.recognizers import DlibResNet

        return DlibResNet()
    except Exception:  # noqa: BLE001 - missing package or weights: SFace alone
        return None


def _face(keypoints: np.ndarray):
    """A bare face around five keypoints: all dlib's aligner needs."""
    from faceskin.faces import Face

    kp = np.asarray(keypoints, np.float64)
    return Face(box=np.r_[kp.min(0), kp.max(0)], score=1.0, keypoints=kp)


@dataclass
class Reference:
    """The person's own face in one original frame, embedded once for every skin tried on it.

    Choosing a skin compares several renders with the same original, and a
    failed check is retried at stronger geometry on the same frame: the
    original's embeddings are the same each time, so they are computed once
    (dlib's only when a comparison needs it). Same numbers as embedding it anew.
    """

    image: np.ndarray
    keypoints: np.ndarray
    sface: np.ndarray
    dlib: np.ndarray | None = None
    dlib_distance: float | None = None  # dlib's distance in the latest comparison that asked it


class IdentityCheck:
    def __init__(self, limit: float = DEFAULT_LIMIT, threads: int = 0, second_opinion: bool = True):
        self.limit = limit
        self.dlib = _second_opinion() if second_opinion else None
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = threads
        # idle workers must not spin: the pipeline's other threads need those cores
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # The model's int8 weights are dequantized by DequantizeLinear nodes that onnxruntime keeps
        # (for quantized kernels this CPU path has none) and runs on every call, which also stops
        # it fusing the batch norms into the convolutions. Folding them once at load gives the same
        # embedding (to 1e-6) in 29 instead of 46 ms per face.
        opts.add_session_config_entry("session.disable_quant_qdq", "1")
        self._sess = ort.InferenceSession(str(models.path("sface_int8_pruned.onnx")), opts,
                                          providers=["CPUExecutionProvider"])

    def limit_for(self, size: float) -> float:
        """The limit for a face of ``size`` px: lower for small faces (see ``SMALL_FACE_PX``)."""
        short = min(max((SMALL_FACE_PX - float(size)) / (SMALL_FACE_PX - 40.0), 0.0), 1.0)
        return self.limit - SMALL_FACE_MARGIN * short

    def embed(self, image: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
        crop = align_crop(image, np.asarray(keypoints, np.float64), ARCFACE_TEMPLATE_112, 112)
        x = crop.transpose(2, 0, 1)[None].astype(np.float32)
        e = self._sess.run(None, {"data": x})[0].ravel()
        return e / max(float(np.linalg.norm(e)), 1e-12)

    def similarity_as_detected(self, ref: Reference, original: np.ndarray, protected: np.ndarray,
                               keypoints: np.ndarray) -> float:
        """SFace similarity of ``protected``, aligned on ``keypoints`` (a detector's), to the closer
        of the original's two embeddings: ``original`` (aligned on a detector's points) and
        ``ref``'s (on the landmarker's).

        Which points an attacker finds on the original moves SFace by up to 0.07 on 150-250 px
        selfie and hikers skins; the closer of two embeddings already made costs nothing more."""
        e = self.embed(protected, keypoints)
        return float(max(original @ e, ref.sface @ e))

    def reference(self, original: np.ndarray, keypoints: np.ndarray) -> Reference:
        """The original face, to compare any number of renders with (:meth:`similarity_to`)."""
        keypoints = np.asarray(keypoints, np.float64)
        return Reference(original, keypoints, self.embed(original, keypoints))

    def similarity(self, original: np.ndarray, protected: np.ndarray, keypoints_before: np.ndarray,
                   keypoints_after: np.ndarray) -> float:
        """Cosine similarity of the face before and after (the skin may have moved its features),
        raised above ``limit`` when dlib's second opinion still matches (see the module docstring)."""
        return self.similarity_to(self.reference(original, keypoints_before), protected, keypoints_after)

    def similarity_to(self, ref: Reference, protected: np.ndarray, keypoints_after: np.ndarray,
                      second_opinion: bool = True) -> float:
        """:meth:`similarity` against an original embedded beforehand (``ref`` keeps dlib's embedding);
        ``second_opinion=False``: SFace alone (a quarter of the cost, for a check on every frame)."""
        sim = float(ref.sface @ self.embed(protected, keypoints_after))
        if not second_opinion or sim > self.limit:
            return sim  # already not hidden: dlib's opinion would not change that, and it costs ~2 x 80 ms
        return max(sim, self.second_opinion(ref, protected, keypoints_after))

    def second_opinion(self, ref: Reference, protected: np.ndarray, keypoints_after: np.ndarray) -> float:
        """dlib's opinion on the same scale as SFace's similarity, ``limit + (DLIB_LIMIT - distance)``
        (over the limit while dlib still matches); -1 without dlib.

        Separate from :meth:`similarity_to` so that a caller with cheaper looks to take (SFace on
        a detector's points) asks dlib, at ~80 ms a face, only once those have passed."""
        if self.dlib is None:
            return -1.0
        if ref.dlib is None:
            ref.dlib = self.dlib.embed(ref.image, _face(ref.keypoints))
        d = ref.dlib_distance = self.dlib.similarity(ref.dlib, self.dlib.embed(protected, _face(keypoints_after)))
        return self.limit + (DLIB_LIMIT - d)
