"""A statistical face model whose samples are skins that belong to nobody.

Why a model rather than donor photos: a donor photo is one face, even when
that face was generated, and recognizers "see" the donor in every output it
is put on. A linear model fitted on many faces gives an unlimited supply of
new identities, each a weighted blend of all the training faces, so none
reproduces any one of them (``bench/skin_collisions.py`` checks this with the
recognizer panel).

What the model is, and why each part:

- shape: the 478 MediaPipe landmarks, aligned by generalised Procrustes
  analysis in 3-D (pose and size removed, so head turns do not become
  "identity"), then PCA. Face proportions carry much of what recognizers use.
- texture: the cleaned UV texture (``faceskin.donor``) in CIELAB, with the
  donor photo's left-right lighting removed, then PCA at low resolution
  (L at 128 x 128, a and b at 64 x 64 texels). That band holds what makes a
  face a particular face; chroma needs less resolution than lightness, as in
  every image codec.
- joint: a combined PCA of the shape and texture coefficients (as in active
  appearance models), so traits that come together in real faces (a broad
  jaw with beard shadow, say) are sampled together.
- detail: a PCA sample is smooth, because the average of many faces is. Each
  sample therefore gets a high-frequency layer (pores, fine lines, brow
  hairs: everything finer than the PCA grid) blended from the training
  faces nearest to it in model space, so the detail fits its apparent age
  and sex. It is never one face's detail: at least ``DETAIL_NEIGHBOURS``
  faces contribute and none weighs more than ``MAX_DETAIL_WEIGHT``. A plain
  average of unrelated textures cancels out and looks blurry, so the blend's
  local contrast is restored to the contributors' average.
- every training face is also used mirrored, which doubles the data and
  makes the model left-right symmetric.

Samples are drawn from a seed, so a seed names a skin for good, as long as
the model file is the same (``SkinModel.version`` is a hash of its bases).
Training and the curated default set: ``tools/train_skin_model.py``.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from faceskin import models, regions
from faceskin.donor import UV_SIZE, Donor, feature_mask_uv, from_lab, masked_blur, skin_deviation, to_lab
from faceskin.mesh import canonical_mesh

MODEL_FILE = "skinmodel.npz"
L_RES, AB_RES = 128, 64  # PCA grid of lightness and of chroma (texels per side)
DETAIL_NEIGHBOURS = 8  # training faces blended into each sample's detail layer
MAX_DETAIL_WEIGHT = 0.25  # no single training face gives more than this share of the detail
DETAIL_MASK_RES = 96  # where each training face's detail is real (not synthesised), stored at this size
DETAIL_GAIN = 4.0  # JPEG levels per L unit in the stored detail layers
SAMPLE_LIMIT = 2.5  # standard deviations: coefficients are clipped here (no caricatures)
FACE_HEIGHT = 320.0  # model frame: forehead (10) to chin (152) distance, in "pixels"


@dataclass
class TrainingFace:
    """One cleaned donor of the training set (texture as ``build_donor`` makes it)."""

    name: str
    texture: np.ndarray  # (UV_SIZE, UV_SIZE, 3) uint8 RGB
    landmarks: np.ndarray  # (478, 3) in the source image's pixels
    original: np.ndarray | None = None  # (UV_SIZE, UV_SIZE) bool: texels as photographed, not synthesised
    measures: dict = field(default_factory=dict)  # gate measurements (pose, expression, fill)


@dataclass
class SkinSample:
    """A drawn identity: texture and shape, and how it was made."""

    seed: int
    texture: np.ndarray  # (UV_SIZE, UV_SIZE, 3) uint8 RGB
    landmarks: np.ndarray  # (478, 3) model frame, frontal
    z: np.ndarray  # standardised joint coefficients
    detail_from: list[tuple[int, bool, float]]  # (training face, mirrored, weight) of the detail layer

    @property
    def tone(self) -> tuple[float, float, float]:
        return texture_tone(self.texture)

    def donor(self, skin_id: str) -> Donor:
        return Donor(skin_id=skin_id, texture=self.texture, landmarks=self.landmarks.astype(np.float64),
                     source=f"skinmodel seed {self.seed}", tone=self.tone)


# ----------------------------------------------------------------- geometry helpers


def similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity (scale, rotation, translation) with dst ~ s R src + t (Umeyama), no reflection."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.eye(src.shape[1])
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1, -1] = -1
    r = u @ d @ vt
    s = float(np.trace(np.diag(sig) @ d) / max((a**2).sum() / len(src), 1e-12))
    return s, r, mu_d - s * r @ mu_s


def _apply(points: np.ndarray, s: float, r: np.ndarray, t: np.ndarray) -> np.ndarray:
    return s * points @ r.T + t


@cache
def frontal_reference() -> np.ndarray:
    """The canonical mesh in image conventions (x right, y down, z away from the camera), face height 1."""
    v = canonical_mesh().vertices.astype(np.float64)
    ref = np.stack([v[:, 0], -v[:, 1], -v[:, 2]], 1)
    if ref[33, 0] > ref[263, 0]:  # the subject's right eye (33) is on the image's left
        ref[:, 0] *= -1
    ref -= ref.mean(0)
    return ref / np.linalg.norm(ref[10, :2] - ref[152, :2])


def frontalize(landmarks: np.ndarray, height: float = FACE_HEIGHT) -> np.ndarray:
    """Landmarks turned to face the camera, centred at the origin, forehead-to-chin = ``height``."""
    lm = np.asarray(landmarks, np.float64)
    s, r, t = similarity(lm[:468], frontal_reference() * height)
    return _apply(lm, s, r, t)


@cache
def mirror_permutation() -> np.ndarray:
    """Index map of the 478 landmarks under a left-right mirror (468 mesh points + both irises)."""
    ref = frontal_reference()
    mirrored = ref * np.array([-1.0, 1.0, 1.0])
    perm = np.argmin(((mirrored[:, None] - ref[None]) ** 2).sum(-1), 1)
    # iris points: centre to centre, and the four rim points by position around the centre
    right, left = np.array(regions.RIGHT_IRIS), np.array(regions.LEFT_IRIS)
    return np.concatenate([perm, left, right])


def mirror_shape(shape: np.ndarray) -> np.ndarray:
    """A frontal shape (centred at x = 0) mirrored left-right, with point identities swapped to match."""
    perm = mirror_permutation()
    m = shape * np.array([-1.0, 1.0, 1.0])
    out = m[perm]
    # iris rims: match each mirrored rim point to the nearest rim point of the other eye's rim
    for a, b in ((regions.RIGHT_IRIS, regions.LEFT_IRIS), (regions.LEFT_IRIS, regions.RIGHT_IRIS)):
        src = m[b[1:]]  # mirrored rim of the other eye now sits where eye ``a`` is
        dst = shape[a[1:]]
        order = [int(np.argmin(((src - p) ** 2).sum(1))) for p in dst]
        if len(set(order)) == len(order):
            out[a[1:]] = src[order]
    return out


# ----------------------------------------------------------------- texture helpers


def symmetric_lighting(lab: np.ndarray) -> np.ndarray:
    """Remove the antisymmetric part of the smooth shading (light from one side), as ``Donor.detail`` does."""
    smooth = cv2.GaussianBlur(lab, (0, 0), 0.03 * lab.shape[0])
    return (lab - 0.5 * (smooth - smooth[:, ::-1])).astype(np.float32)


@cache
def mesh_mask(size: int, grow: int = 0) -> np.ndarray:
    """Texels of the UV texture the canonical mesh covers (grown by ``grow`` texels)."""
    from faceskin.raster import rasterize

    m = canonical_mesh()
    mask = rasterize(m.uv * size, m.triangles, (size, size)).mask.astype(np.uint8)
    if grow:
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    return mask.astype(bool)


def fill_outside(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Continue ``img`` smoothly beyond ``mask`` (the texture around the mesh is only ever blurred into it)."""
    s = mask.shape[0]
    m = mask.astype(np.float32)
    near = masked_blur(img, m, s * 0.03)
    far = masked_blur(img, m, s * 0.15)
    cover = cv2.GaussianBlur(m, (0, 0), s * 0.03)
    fill = np.where((cover > 0.15)[..., None] if img.ndim == 3 else cover > 0.15, near, far)
    return np.where(mask[..., None] if img.ndim == 3 else mask, img, fill).astype(np.float32)


def high_pass(lightness: np.ndarray) -> np.ndarray:
    """Lightness detail finer than the PCA grid: exactly what the low-resolution texture cannot hold."""
    low = cv2.resize(cv2.resize(lightness, (L_RES, L_RES), interpolation=cv2.INTER_AREA), lightness.shape[::-1],
                     interpolation=cv2.INTER_CUBIC)
    return (lightness - low).astype(np.float32)


@cache
def _features(size: int) -> np.ndarray:
    return feature_mask_uv(size)


def lab_tone(lab: np.ndarray) -> tuple[float, float, float]:
    """Median L, a, b of the skin on the cheeks and nose (the measure ``build_donor`` records as tone)."""
    s = lab.shape[0]
    _, tone = skin_deviation(lab, mesh_mask(s), _features(s))
    return tone


def texture_tone(texture: np.ndarray) -> tuple[float, float, float]:
    return lab_tone(to_lab(texture))


def _encode_detail(detail: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.clip(128 + DETAIL_GAIN * detail + 0.5, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _decode_detail(data: bytes) -> np.ndarray:
    return (np.asarray(Image.open(io.BytesIO(data)), np.float32) - 128.0) / DETAIL_GAIN


def _quantise(basis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows as int8 with one scale each: a quarter of float32's size, invisible in the textures."""
    scale = np.maximum(np.abs(basis).max(1), 1e-12) / 127.0
    return np.round(basis / scale[:, None]).astype(np.int8), scale.astype(np.float32)


# ----------------------------------------------------------------- the model


class SkinModel:
    """Shape and texture PCA with a joint coefficient space, and a bank of detail layers."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        a = arrays
        self.shape_mean = a["shape_mean"].astype(np.float64)
        self.shape_basis = a["shape_basis"].astype(np.float64)
        self.tex_mean = a["tex_mean"].astype(np.float64)
        self.tex_basis = a["tex_basis_q"].astype(np.float32) * a["tex_basis_scale"][:, None]
        self.joint_basis = a["joint_basis"].astype(np.float64)
        self.joint_sd = a["joint_sd"].astype(np.float64)
        self.shape_weight = float(a["shape_weight"])
        self.train_z = a["train_z"].astype(np.float64)  # (2N, K): faces, then their mirrors
        self.train_names = [str(n) for n in a["train_names"]]
        offsets = a["detail_offsets"]
        blob = a["detail_blob"].tobytes()
        self._detail_bytes = [blob[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
        self.detail_masks = a["detail_masks"]  # (N, DETAIL_MASK_RES, DETAIL_MASK_RES) uint8
        self.nearest_training = a["nearest_training"].astype(np.float64)  # each face's distance to its nearest other
        self.tone_limits = a["tone_limits"].astype(np.float64)  # hue low, hue high (degrees), chroma low
        self.extras = {k: v for k, v in a.items() if k.startswith("default_")}
        self.version = str(a["version"])
        self._l_mask = mesh_mask(L_RES, 3)
        self._ab_mask = mesh_mask(AB_RES, 2)

    # ---- persistence
    @classmethod
    def load(cls, path: str | Path | None = None) -> "SkinModel":
        if path is None:
            return default_model()
        with np.load(path, allow_pickle=False) as z:
            return cls({k: z[k] for k in z.files})

    # ---- dimensions
    @property
    def n_shape(self) -> int:
        return self.shape_basis.shape[0]

    @property
    def n_joint(self) -> int:
        return self.joint_sd.shape[0]

    @property
    def n_training(self) -> int:
        return len(self.train_names)

    # ---- synthesis
    def coefficients(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shape and texture PCA coefficients of standardised joint coefficients ``z``."""
        joint = (np.asarray(z, np.float64) * self.joint_sd) @ self.joint_basis
        return joint[: self.n_shape] / self.shape_weight, joint[self.n_shape:]

    def shape(self, z: np.ndarray) -> np.ndarray:
        b_s, _ = self.coefficients(z)
        return (self.shape_mean + b_s @ self.shape_basis).reshape(478, 3)

    def smooth_lab(self, z: np.ndarray) -> np.ndarray:
        """The PCA part of the texture, upsampled to UV_SIZE (LAB, float32)."""
        _, b_t = self.coefficients(z)
        vec = (self.tex_mean + b_t @ self.tex_basis).astype(np.float32)
        n_l = int(self._l_mask.sum())
        n_ab = int(self._ab_mask.sum())
        lum = np.zeros((L_RES, L_RES), np.float32)
        lum[self._l_mask] = vec[:n_l]
        ab = np.zeros((AB_RES, AB_RES, 2), np.float32)
        ab[self._ab_mask, 0] = vec[n_l:n_l + n_ab]
        ab[self._ab_mask, 1] = vec[n_l + n_ab:]
        lum = fill_outside(lum, self._l_mask)
        ab = fill_outside(ab, self._ab_mask)
        size = (UV_SIZE, UV_SIZE)
        return np.dstack([cv2.resize(lum, size, interpolation=cv2.INTER_CUBIC),
                          cv2.resize(ab, size, interpolation=cv2.INTER_CUBIC)]).astype(np.float32)

    def detail_layer(self, index: int, mirrored: bool) -> tuple[np.ndarray, np.ndarray]:
        """A training face's detail layer and where it is real (1) rather than synthesised (0)."""
        d = _decode_detail(self._detail_bytes[index])
        m = cv2.resize(self.detail_masks[index].astype(np.float32) / 255.0, d.shape[::-1], interpolation=cv2.INTER_LINEAR)
        return (d[:, ::-1], m[:, ::-1]) if mirrored else (d, m)

    def detail_contributors(self, z: np.ndarray) -> list[tuple[int, bool, float]]:
        """The training faces (index, mirrored, weight) whose detail a sample at ``z`` gets.

        Nearest in the leading joint components (where age, sex and beard
        live), one entry per face (a face and its mirror are the same
        person), weights falling off with distance and capped.
        """
        lead = min(20, self.n_joint)
        d = np.linalg.norm(self.train_z[:, :lead] - np.asarray(z)[:lead], axis=1)
        n = self.n_training
        chosen: list[tuple[int, bool, float]] = []
        seen: set[int] = set()
        for j in np.argsort(d):
            face = int(j % n)
            if face in seen:
                continue
            seen.add(face)
            chosen.append((face, bool(j >= n), float(d[j])))
            if len(chosen) == DETAIL_NEIGHBOURS:
                break
        tau = max(chosen[-1][2], 1e-6)
        w = np.exp(-0.5 * (np.array([c[2] for c in chosen]) / tau) ** 2)
        w = capped_weights(w, MAX_DETAIL_WEIGHT)
        return [(f, m, float(wi)) for (f, m, _), wi in zip(chosen, w)]

    def detail(self, contributors: list[tuple[int, bool, float]]) -> np.ndarray:
        """Blend of the contributors' detail layers, its local contrast restored to theirs.

        Per texel only faces whose detail there is real count; where fewer
        than about three do, the detail fades out rather than come from one face.
        """
        blend = np.zeros((UV_SIZE, UV_SIZE), np.float32)
        energy = np.zeros_like(blend)
        cover = np.zeros_like(blend)
        cover2 = np.zeros_like(blend)
        for face, mirrored, w in contributors:
            d, m = self.detail_layer(face, mirrored)
            blend += w * d  # stored already multiplied by m
            energy += w * d * d / np.maximum(m, 0.05)
            cover += w * m
            cover2 += (w * m) ** 2
        sigma = 4.0
        target = cv2.GaussianBlur(energy / np.maximum(cover, 1e-3), (0, 0), sigma)
        have = cv2.GaussianBlur(blend * blend, (0, 0), sigma)
        gain = np.clip(np.sqrt(target / np.maximum(have, 1e-3)), 1.0, 3.0)
        n_eff = cover**2 / np.maximum(cover2, 1e-9)
        fade = np.clip(n_eff - 2.0, 0.0, 1.0)
        return blend * gain * cv2.GaussianBlur(fade, (0, 0), 2.0)

    def texture(self, z: np.ndarray, contributors: list[tuple[int, bool, float]] | None = None) -> np.ndarray:
        lab = self.smooth_lab(z)
        lab[..., 0] += self.detail(contributors if contributors is not None else self.detail_contributors(z))
        return from_lab(lab)

    def draw_z(self, seed: int) -> np.ndarray:
        """Standardised joint coefficients for ``seed``: clipped normal, redrawn until plausible.

        Redrawn (from the same seed's stream, so still reproducible) when the
        skin colour falls outside the training faces' range of hue and
        saturation (grey, green or purple skin), or when the sample lies
        closer to a training face than 60 % of the typical distance between
        a training face and its nearest neighbour. The second hardly ever
        happens in 40+ dimensions, but it is checked, not hoped.
        """
        rng = np.random.default_rng([0x5C1, int(seed)])
        floor = 0.6 * float(np.median(self.nearest_training))
        for _ in range(200):
            z = np.clip(rng.standard_normal(self.n_joint), -SAMPLE_LIMIT, SAMPLE_LIMIT)
            if self.nearest_training_distance(z) >= floor and self.plausible_tone(lab_tone(self.smooth_lab(z))):
                return z
        raise RuntimeError(f"no plausible sample for seed {seed}")  # pragma: no cover - never seen

    def plausible_tone(self, tone) -> bool:
        hue = math.degrees(math.atan2(tone[2], tone[1]))
        hue_lo, hue_hi, chroma_lo = self.tone_limits
        return hue_lo <= hue <= hue_hi and math.hypot(tone[1], tone[2]) >= chroma_lo

    def nearest_training_distance(self, z: np.ndarray) -> float:
        return float(np.linalg.norm(self.train_z - np.asarray(z), axis=1).min())

    def sample(self, seed: int) -> SkinSample:
        z = self.draw_z(seed)
        contributors = self.detail_contributors(z)
        return SkinSample(seed=int(seed), texture=self.texture(z, contributors), landmarks=self.shape(z), z=z,
                          detail_from=contributors)

    def summary(self) -> str:
        return (f"skin model {self.version}: {self.n_training} training faces (+ mirrors), "
                f"{self.n_shape} shape / {self.tex_basis.shape[0]} texture / {self.n_joint} joint components")


def capped_weights(w: np.ndarray, cap: float) -> np.ndarray:
    """Normalise ``w`` to sum 1 with no entry above ``cap`` (excess spread over the others in proportion)."""
    w = np.asarray(w, np.float64) / np.sum(w)
    if cap * len(w) < 1.0:
        raise ValueError(f"{len(w)} weights cannot all stay under {cap}")
    for _ in range(len(w)):
        over = w > cap + 1e-12
        if not over.any():
            break
        excess = float((w[over] - cap).sum())
        w[over] = cap
        free = ~over & (w < cap)
        w[free] += excess * w[free] / w[free].sum()
    return w


@cache
def default_model() -> SkinModel:
    """The trained model shipped in ``faceskin/models`` (loaded once per process)."""
    path = models.path(MODEL_FILE)
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: the skin model is missing; build it with tools/train_skin_model.py")
    return SkinModel.load(path)


# ----------------------------------------------------------------- fitting


def _pca(x: np.ndarray, keep: float, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, basis (K, D) and standard deviations of ``x`` (N, D) keeping ``keep`` of the variance."""
    mean = x.mean(0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    var = s**2 / max(len(x) - 1, 1)
    k = int(np.searchsorted(np.cumsum(var) / var.sum(), keep) + 1)
    k = max(1, min(k, limit, len(var)))
    return mean, vt[:k], np.sqrt(var[:k])


def align_shapes(landmarks: np.ndarray, iterations: int = 5) -> np.ndarray:
    """Generalised Procrustes analysis (3-D similarity on the 468 mesh points), result frontal."""
    shapes = np.array([frontalize(lm) for lm in landmarks])
    for _ in range(iterations):
        mean = frontalize(shapes.mean(0))
        shapes = np.array([_apply(s, *similarity(s[:468], mean[:468])) for s in shapes])
    return shapes


def real_detail_mask(face: TrainingFace) -> np.ndarray:
    """Soft mask (0..1) of texels whose fine detail is photographed, away from seams with synthesised ones."""
    real = mesh_mask(UV_SIZE) if face.original is None else face.original & mesh_mask(UV_SIZE)
    real = cv2.erode(real.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))
    return cv2.GaussianBlur(real.astype(np.float32), (0, 0), 2.0)


def texture_vector(lab: np.ndarray) -> np.ndarray:
    """The PCA's view of a UV texture: L at L_RES, a and b at AB_RES, mesh texels only."""
    lum = cv2.resize(lab[..., 0], (L_RES, L_RES), interpolation=cv2.INTER_AREA)
    ab = cv2.resize(lab[..., 1:], (AB_RES, AB_RES), interpolation=cv2.INTER_AREA)
    return np.concatenate([lum[mesh_mask(L_RES, 3)], ab[mesh_mask(AB_RES, 2)][:, 0], ab[mesh_mask(AB_RES, 2)][:, 1]])


def fit(faces: list[TrainingFace], shape_limit: int = 30, texture_limit: int = 80, joint_limit: int = 60,
        keep: float = 0.98) -> "FittedModel":
    """Fit the model to cleaned training donors (see tools/train_skin_model.py)."""
    if len(faces) < DETAIL_NEIGHBOURS + 2:
        raise ValueError(f"{len(faces)} training faces are too few")
    n = len(faces)
    # shape: faces, then mirrors
    aligned = align_shapes(np.stack([f.landmarks for f in faces]).astype(np.float64))
    mirrored = np.array([mirror_shape(s) for s in aligned])
    mean_shape = frontalize(np.concatenate([aligned, mirrored]).mean(0))
    shapes = np.array([_apply(s, *similarity(s[:468], mean_shape[:468])) for s in np.concatenate([aligned, mirrored])])
    s_mean, s_basis, s_sd = _pca(shapes.reshape(2 * n, -1), keep, shape_limit)
    b_s = (shapes.reshape(2 * n, -1) - s_mean) @ s_basis.T
    # texture
    labs = [symmetric_lighting(to_lab(f.texture)) for f in faces]
    tones = np.array([lab_tone(lab) for lab in labs])
    hue = np.degrees(np.arctan2(tones[:, 2], tones[:, 1]))
    tone_limits = np.array([np.percentile(hue, 2), np.percentile(hue, 98),
                            np.percentile(np.hypot(tones[:, 1], tones[:, 2]), 3)], np.float32)
    vectors = np.array([texture_vector(lab) for lab in labs] + [texture_vector(lab[:, ::-1]) for lab in labs])
    t_mean, t_basis, t_sd = _pca(vectors, keep, texture_limit)
    b_t = (vectors - t_mean) @ t_basis.T
    # joint, shape weighted so both have the same total variance
    w = float(np.sqrt((t_sd**2).sum() / (s_sd**2).sum()))
    joint = np.hstack([w * b_s, b_t])
    _, j_basis, j_sd = _pca(joint, keep, joint_limit)
    train_z = (joint @ j_basis.T) / j_sd
    dist = np.linalg.norm(train_z[:, None] - train_z[None], axis=-1)
    for i in range(n):  # a face and its own mirror are the same face
        dist[i, i + n] = dist[i + n, i] = np.inf
    np.fill_diagonal(dist, np.inf)
    masks = [real_detail_mask(f) for f in faces]
    detail = [_encode_detail(high_pass(lab[..., 0]) * m) for lab, m in zip(labs, masks)]
    small_masks = np.array([cv2.resize(m, (DETAIL_MASK_RES, DETAIL_MASK_RES), interpolation=cv2.INTER_AREA)
                            for m in masks])
    offsets = np.cumsum([0] + [len(b) for b in detail]).astype(np.int64)
    q, scale = _quantise(t_basis)
    digest = hashlib.sha256(q.tobytes() + j_basis.astype(np.float32).tobytes()).hexdigest()[:12]
    arrays = {
        "version": np.array(f"1-{digest}"),
        "shape_mean": s_mean.astype(np.float32), "shape_basis": s_basis.astype(np.float32),
        "tex_mean": t_mean.astype(np.float32), "tex_basis_q": q, "tex_basis_scale": scale,
        "joint_basis": j_basis.astype(np.float32), "joint_sd": j_sd.astype(np.float32),
        "shape_weight": np.array(w, np.float32), "train_z": train_z.astype(np.float32),
        "train_names": np.array([f.name for f in faces]),
        "nearest_training": dist.min(1).astype(np.float32), "tone_limits": tone_limits,
        "detail_blob": np.frombuffer(b"".join(detail), np.uint8), "detail_offsets": offsets,
        "detail_masks": np.round(255 * small_masks).astype(np.uint8),
    }
    return FittedModel(arrays)


class FittedModel(SkinModel):
    """A model fresh from ``fit``: it can be saved, and given a curated default set."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        super().__init__(arrays)
        self._arrays = dict(arrays)

    def arrays(self) -> dict[str, np.ndarray]:
        return dict(self._arrays)

    def set_extra(self, name: str, value: np.ndarray) -> None:
        if not name.startswith("default_"):
            raise ValueError("extra arrays are named default_*")
        self._arrays[name] = value
        self.extras[name] = value

    def save(self, fh) -> None:
        np.savez_compressed(fh, **self._arrays)


# ----------------------------------------------------------------- describing a skin

ATTRIBUTES = ("L", "a", "b", "ita", "width_ratio", "beard_shadow", "fine_detail")


def _disc_values(img: np.ndarray, centres: np.ndarray, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    inside = np.zeros(img.shape[:2], bool)
    for cx, cy in centres:
        inside |= (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2
    return img[inside]


def skin_attributes(texture: np.ndarray, landmarks: np.ndarray) -> dict[str, float]:
    """Measurable traits of a skin, for listing and choosing (measurements, not claims about a person).

    tone L, a, b (cheek skin, as ``measure_tone`` measures a person); ITA, the
    dermatological skin-colour angle; width_ratio, cheekbone width over
    forehead-to-chin height; beard_shadow, how much darker the upper lip and
    chin are than the cheeks (L units); fine_detail, the RMS of the texture
    finer than the PCA grid on cheeks and forehead (pores, lines: grows with
    age and with stubble).
    """
    lab = to_lab(texture)
    L, a, b = lab_tone(lab)
    uv = canonical_mesh().uv * texture.shape[0]
    cheeks = uv[[205, 425]]
    beard = uv[[164, 0, 17, 200, 175]]
    r = texture.shape[0] * 0.025
    shadow = float(np.median(_disc_values(lab[..., 0], cheeks, r)) - np.median(_disc_values(lab[..., 0], beard, r)))
    fine = high_pass(lab[..., 0])
    detail = float(np.sqrt(np.mean(_disc_values(fine, uv[[205, 425, 151]], texture.shape[0] * 0.05) ** 2)))
    f = frontalize(landmarks)
    width = float(abs(f[454, 0] - f[234, 0]) / max(abs(f[152, 1] - f[10, 1]), 1e-6))
    return {"L": L, "a": a, "b": b, "ita": math.degrees(math.atan2(L - 50.0, b)), "width_ratio": width,
            "beard_shadow": shadow, "fine_detail": detail}


# ----------------------------------------------------------------- viewing a skin

PORTRAIT_BACKGROUND = (118, 118, 118)


def portrait(texture: np.ndarray, landmarks: np.ndarray, size: int = 256,
             background: tuple[int, int, int] = PORTRAIT_BACKGROUND) -> tuple[np.ndarray, np.ndarray]:
    """A frontal face image of a skin (texture on its own shape), and the five detector keypoints.

    Used for previews and contact sheets, and to show a skin to the
    recognizer panel: the keypoints (eye centres, nose tip, mouth corners,
    image-left first, as ``faceskin.detect`` gives them) are exact, so no
    detector is needed. The mesh ends at the hairline and jaw, so the face
    sits on a plain background without hair.
    """
    from faceskin.raster import rasterize
    from faceskin.donor import triangle_facing

    mesh = canonical_mesh()
    pts = frontalize(landmarks, height=0.74 * size)
    pts[:, 0] += size / 2 - pts[:468, 0].mean()
    pts[:, 1] += size * 0.53 - pts[:468, 1].mean()
    visible = triangle_facing(pts[:468], mesh.triangles) > 0.0
    r = rasterize(pts[:468], mesh.triangles, (size, size), depth=pts[:468, 2], visible=visible)
    uv = r.interpolate(mesh.uv * texture.shape[0], mesh.triangles)
    face = cv2.remap(texture, uv[..., 0], uv[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = r.mask.astype(np.uint8)
    alpha = np.clip(cv2.distanceTransform(inside, cv2.DIST_L2, 3) / max(2.0, 0.025 * size), 0, 1)[..., None]
    out = np.empty((size, size, 3), np.float32)
    out[:] = background
    out = out * (1 - alpha) + face.astype(np.float32) * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), keypoints(pts)


def keypoints(landmarks: np.ndarray) -> np.ndarray:
    """The detector's five points from 478 landmarks: eye centres (irises), nose tip, mouth corners."""
    lm = np.asarray(landmarks)[:, :2]
    return np.array([lm[468], lm[473], lm[1], lm[61], lm[291]], np.float64)
