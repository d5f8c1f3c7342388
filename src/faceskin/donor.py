"""Donor skins: a donor face unwrapped into the canonical mesh's UV space, cleaned once.

The prototype's worst faults came from pasting donor pixels that were not
skin: hair over the forehead and temples, background at the face edge,
shadows from the donor's lighting, and smeared triangles on the donor's far
side. A donor is therefore unwrapped once, every texel that is not clearly
skin (or a legitimate feature: brows, lips, eyes) is replaced from the
mirrored side of the face or synthesised from the surrounding skin, and only
then used. Rendering later takes only the donor's *detail* (texture relative
to its own low-frequency shading), so the donor's lighting never travels.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from faceskin import regions
from faceskin.faces import Face
from faceskin.mesh import canonical_mesh
from faceskin.raster import rasterize

UV_SIZE = 384
DETAIL_SIGMA = 0.05  # low-pass sigma as a fraction of the face width (UV side here, face width in render)


def to_lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def from_lab(lab: np.ndarray) -> np.ndarray:
    rgb = cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def masked_blur(img: np.ndarray, mask: np.ndarray, sigma: float, coarse: bool = False) -> np.ndarray:
    """Normalised convolution: a Gaussian blur that only averages pixels where ``mask`` > 0.

    ``coarse``: for a wide blur, work at a lower resolution (what is left after a
    blur of ``sigma`` has no detail a grid of sigma/3 cannot hold): several times
    faster, for the per-frame shading of a skin.
    """
    m = mask.astype(np.float32)
    if m.max() > 1:
        m /= 255.0
    f = int(sigma // 3)
    h, w = m.shape[:2]
    if coarse and f >= 2 and min(h, w) >= 4 * f:
        size = (max(1, round(w / f)), max(1, round(h / f)))
        small = masked_blur(cv2.resize(img, size, interpolation=cv2.INTER_AREA),
                            cv2.resize(m, size, interpolation=cv2.INTER_AREA), sigma / f)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    k = int(2 * round(3 * sigma) + 1)
    num = cv2.GaussianBlur(img * (m[..., None] if img.ndim == 3 else m), (k, k), sigma, borderType=cv2.BORDER_REPLICATE)
    den = cv2.GaussianBlur(m, (k, k), sigma, borderType=cv2.BORDER_REPLICATE)
    den = np.maximum(den, 1e-4)
    return num / (den[..., None] if img.ndim == 3 else den)


def triangle_facing(landmarks: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Per-triangle cosine between its normal and the camera axis (1 = facing, <= 0 = hidden)."""
    p = landmarks[:, :3].astype(np.float64)
    a, b, c = p[triangles[:, 0]], p[triangles[:, 1]], p[triangles[:, 2]]
    n = np.cross(b - a, c - a)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)
    # MediaPipe's triangles wind clockwise in image coordinates (y down) when facing,
    # and z grows away from the camera, so a facing normal points to -z.
    return -n[:, 2]


def feature_mask_uv(size: int) -> np.ndarray:
    """UV-space mask of brows, eyes, lips and nostrils: non-skin colours that are legitimate."""
    m = canonical_mesh()
    uv = np.zeros((478, 2))
    uv[:468] = m.uv * size
    loops = [*regions.EYES, *regions.BROWS, regions.LIPS_OUTER, *regions.NOSTRILS]
    mask = regions.polygon_mask((size, size), uv, loops)
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))


@dataclass
class Donor:
    """A cleaned donor skin: UV texture (RGB uint8, fully filled) and the donor's face shape."""

    skin_id: str
    texture: np.ndarray  # (UV_SIZE, UV_SIZE, 3) uint8 RGB
    landmarks: np.ndarray  # (478, 3) donor landmarks, donor-image pixels (shape reference)
    source: str = ""
    tone: tuple[float, float, float] = (0.0, 0.0, 0.0)  # median skin L, a, b
    fill_fraction: float = 0.0  # share of the face's texels that had to be synthesised
    _detail: dict | None = field(default=None, repr=False)
    _upper_lip: float | None = field(default=None, repr=False)  # faceskin.library.skin_upper_lip, once measured

    def detail(self, sigma: float = DETAIL_SIGMA) -> np.ndarray:
        """Texture minus its own low-frequency shading (LAB): the donor's identity detail.

        ``sigma`` is a fraction of the face size, the same one the renderer
        uses for the person's shading, so the two bands meet exactly: nothing
        between them is lost (waxy skin) or counted twice.
        """
        cached = self._detail.get(sigma) if self._detail is not None else None
        if cached is None:
            lab = to_lab(self.texture)
            s = self.texture.shape[0]
            # Directional light in the donor photo shows up as a left-right asymmetry of the
            # smooth shading; faces are nearly symmetric, so remove the antisymmetric part.
            smooth = cv2.GaussianBlur(lab, (0, 0), 0.03 * s)
            lab = lab - 0.5 * (smooth - smooth[:, ::-1])
            # in UV space the forehead-to-chin distance spans 0.85 of the texture
            low = masked_blur(lab, np.ones((s, s), np.float32), sigma * 0.85 * s)
            cached = (lab - low).astype(np.float32)
            if self._detail is None:
                self._detail = {}
            self._detail[sigma] = cached
        return cached

    # ---- persistence: a donor is a few tens of kB (JPEG texture + landmarks)
    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(self.texture).save(buf, "JPEG", quality=95)
        out = io.BytesIO()
        np.savez_compressed(
            out,
            texture_jpeg=np.frombuffer(buf.getvalue(), np.uint8),
            landmarks=self.landmarks.astype(np.float32),
            meta=np.array([self.skin_id, self.source]),
            tone=np.array(self.tone, np.float32),
        )
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Donor":
        z = np.load(io.BytesIO(data), allow_pickle=False)
        tex = np.array(Image.open(io.BytesIO(z["texture_jpeg"].tobytes())).convert("RGB"))
        skin_id, source = (str(x) for x in z["meta"])
        return cls(skin_id=skin_id, texture=tex, landmarks=z["landmarks"].astype(np.float64), source=source,
                   tone=tuple(float(x) for x in z["tone"]))

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: str | Path) -> "Donor":
        return cls.from_bytes(Path(path).read_bytes())


def unwrap(image: np.ndarray, face: Face, size: int = UV_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Texture (RGB), per-texel facing (cosine to the camera) and in-image mask of ``face`` in UV space."""
    mesh = canonical_mesh()
    r = rasterize(mesh.uv * size, mesh.triangles, (size, size))
    src = r.interpolate(face.landmarks[:468, :2], mesh.triangles)
    tex = cv2.remap(image, src[..., 0], src[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    tri_facing = triangle_facing(face.landmarks[:468], mesh.triangles)
    facing = np.full((size, size), -1.0, np.float32)
    facing[r.mask] = tri_facing[r.tri[r.mask]]
    facing = np.where(r.mask, cv2.GaussianBlur(facing, (0, 0), 3.0), -1.0)
    h, w = image.shape[:2]
    inside = (src[..., 0] >= 0) & (src[..., 0] < w - 1) & (src[..., 1] >= 0) & (src[..., 1] < h - 1)
    return tex, facing, inside & r.mask


def skin_deviation(lab: np.ndarray, valid: np.ndarray, features: np.ndarray) -> tuple[np.ndarray, tuple]:
    """How far each texel is from the donor's skin colour, in robust units (0 = typical skin).

    Hair, background and hard shadows score high; brows, lips and eyes are
    features and score 0 so they are kept.
    """
    s = lab.shape[0]
    core = valid & (features == 0)
    yy, xx = np.mgrid[0:s, 0:s] / s
    # statistics from cheeks and nose, where hair and background never reach
    central = core & (np.abs(xx - 0.5) < 0.3) & (yy > 0.35) & (yy < 0.8)
    sample = lab[central] if central.sum() > 50 else lab[core]
    med = np.median(sample, 0)
    mad = np.median(np.abs(sample - med), 0) * 1.4826 + 1e-3
    dl = (lab[..., 0] - med[0]) / max(5.0, 3.0 * mad[0])
    dl = np.where(dl < 0, -dl, dl * 0.6)  # darker than skin (hair, shadow) is the usual culprit
    dab = np.linalg.norm(lab[..., 1:] - med[1:], axis=-1) / max(4.0, 3.0 * float(np.linalg.norm(mad[1:])))
    dev = np.maximum(dl, dab)
    dev = np.where(features > 0, 0.0, dev)
    return dev.astype(np.float32), tuple(float(x) for x in med)


def build_donor(image: np.ndarray, face: Face, skin_id: str | None = None, source: str = "") -> Donor:
    """Unwrap and clean a donor face whose landmarks are fitted (``face.landmarks`` set)."""
    if face.landmarks is None:
        raise ValueError("donor face has no landmarks")
    size = UV_SIZE
    tex, facing, inside = unwrap(image, face, size)
    lab = to_lab(tex)
    features = feature_mask_uv(size)
    dev, tone = skin_deviation(lab, inside & (facing > 0.1), features)
    # texel quality: seen face-on, inside the photo, and skin-coloured (or a feature)
    # Hair and background reach the top of the forehead and the edge of the face: there even
    # a mild departure from skin colour is treated as not-skin.
    ring = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3) < size * 0.06
    yy = np.arange(size)[:, None] / size
    risky = ring | (yy < 0.24)
    threshold = np.where(risky, 0.55, 1.0)
    q = np.clip(facing, 0, 1) * inside - 2.0 * np.clip(dev - threshold, 0, None)
    q = cv2.erode(q, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))  # grow bad areas a little
    qm = q[:, ::-1]
    mesh_mask = inside | inside[:, ::-1]
    # 1) take the mirrored texel where the other side of the face is clearly better
    use_mirror = (qm > q + 0.25) & mesh_mask
    lab = np.where(use_mirror[..., None], lab[:, ::-1], lab)
    q = np.where(use_mirror, qm, q)
    good = q > 0.08
    # 2) what is still missing: smooth skin from the surrounding good texels
    gf = good.astype(np.float32)
    near = masked_blur(lab, gf, size * 0.03)
    far = masked_blur(lab, gf, size * 0.12)
    cover = cv2.GaussianBlur(gf, (0, 0), size * 0.03)
    fill = np.where((cover > 0.15)[..., None], near, far)
    face_area = max(1, int(mesh_mask.sum()))
    fill_fraction = float((~good & mesh_mask).sum()) / face_area
    lab = np.where(good[..., None], lab, fill)
    # soften the boundary between original and filled texels
    edge = cv2.GaussianBlur(gf, (0, 0), 2.5)
    lab = lab * edge[..., None] + cv2.GaussianBlur(lab, (0, 0), 2.5) * (1 - edge[..., None])
    tex_rgb = from_lab(lab)
    if skin_id is None:
        skin_id = "donor-" + hashlib.sha256(tex_rgb.tobytes()).hexdigest()[:10]
    return Donor(skin_id=skin_id, texture=tex_rgb, landmarks=face.landmarks.copy(), source=source, tone=tone,
                 fill_fraction=fill_fraction)
