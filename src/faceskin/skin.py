"""Rendering a donor skin onto a person's face.

What each step is for:
- geometry: the identity-bearing layout (eye spacing, brow height, nose and
  mouth size) moves toward the donor's, which the prototype showed matters as
  much as texture; the face outline stays, so the head still fits.
- the person's own pixels are warped along with that geometry, and their eye
  openings and inner mouth are kept, so gaze, blinks, teeth and tongue stay real.
- shading: the output is the person's low-frequency shading and white balance
  (estimated from their skin only, not brows/lips/hair) plus the donor's
  detail layer, so there is no colour cast from the donor's lighting and no
  seam against the neck.
- border: alpha ramps to zero at the mesh outline over a width proportional
  to the face, so the edge is invisible at any face size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from faceskin import regions
from faceskin.donor import DETAIL_SIGMA, Donor, from_lab, masked_blur, to_lab, triangle_facing
from faceskin.faces import Face
from faceskin.mesh import canonical_mesh


@dataclass
class SkinSettings:
    geometry: float = 0.7  # 0 = keep the person's proportions, 1 = the donor's
    detail_gain: float = 1.0  # strength of the donor's texture detail
    shading_sigma: float = DETAIL_SIGMA  # target shading low-pass, fraction of face size
    feather: float = 0.08  # border ramp width, fraction of face size
    max_yaw: float = 60.0  # degrees; beyond this the skin is not trusted (fallback)


def face_scale(landmarks: np.ndarray) -> float:
    """Face size in pixels that is stable under yaw: forehead-to-chin distance."""
    return float(np.linalg.norm(landmarks[10, :2] - landmarks[152, :2]))


_ANCHORS = regions.FACE_OVAL + [168, 6, 197, 195, 5, 4]


def similarity_3d(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity (scale, R, t) with dst ~ s R src + t (Umeyama)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[2, 2] = -1
    r = u @ d @ vt
    s = float(np.trace(np.diag(sig) @ d) / max((a**2).sum() / len(src), 1e-12))
    return s, r, mu_d - s * r @ mu_s


def _region_similarity(points: np.ndarray, target: np.ndarray, idx: list[int], amount: float) -> None:
    """Move ``points[idx]`` so their centroid and size go ``amount`` of the way to ``target[idx]``'s.

    Only centroid and scale change, never the shape, so the person's blink or
    smile (the shape) is kept while the feature's position and size change.
    """
    p, q = points[idx, :2], target[idx, :2]
    cp, cq = p.mean(0), q.mean(0)
    sp = np.sqrt(((p - cp) ** 2).sum(1).mean())
    sq = np.sqrt(((q - cq) ** 2).sum(1).mean())
    scale = 1.0 + amount * (sq / max(sp, 1e-6) - 1.0)
    points[idx, :2] = cp + amount * (cq - cp) + (p - cp) * scale


def morph_toward(target: np.ndarray, donor: np.ndarray, amount: float) -> np.ndarray:
    """Target landmarks with identity-bearing geometry moved toward the donor's."""
    s, r, t = similarity_3d(donor[_ANCHORS], target[_ANCHORS])
    aligned = (s * (r @ donor.T)).T + t
    out = target.copy()
    out[:468, :2] += amount * (aligned[:468, :2] - target[:468, :2])
    # features: position and size only (keeps the person's expression shape)
    for eye, iris in ((regions.RIGHT_EYE, regions.RIGHT_IRIS), (regions.LEFT_EYE, regions.LEFT_IRIS)):
        out[eye + iris] = target[eye + iris]
        _region_similarity(out, aligned, eye + iris, amount)
    lips = sorted(set(regions.LIPS_OUTER + regions.LIPS_INNER))
    out[lips] = target[lips]
    _region_similarity(out, aligned, lips, amount)
    # the outline stays: it is what fits the head, hair and neck around it
    out[regions.FACE_OVAL] = target[regions.FACE_OVAL]
    return _smooth_offsets(target, out)


def _mesh_neighbours() -> list[np.ndarray]:
    tris = canonical_mesh().triangles
    nb: list[set] = [set() for _ in range(468)]
    for a, b, c in tris:
        nb[a] |= {b, c}
        nb[b] |= {a, c}
        nb[c] |= {a, b}
    return [np.array(sorted(n)) for n in nb]


_NEIGHBOURS: list[np.ndarray] | None = None


def _smooth_offsets(target: np.ndarray, moved: np.ndarray, iterations: int = 4) -> np.ndarray:
    """Laplacian smoothing of the displacement field, outline pinned: no fold-overs."""
    global _NEIGHBOURS
    if _NEIGHBOURS is None:
        _NEIGHBOURS = _mesh_neighbours()
    off = moved[:468, :2] - target[:468, :2]
    pinned = np.zeros(468, bool)
    pinned[regions.FACE_OVAL] = True
    for _ in range(iterations):
        avg = np.array([off[n].mean(0) for n in _NEIGHBOURS])
        off = np.where(pinned[:, None], off, 0.5 * off + 0.5 * avg)
    out = moved.copy()
    out[:468, :2] = target[:468, :2] + off
    # iris points follow the eye they sit in
    for eye, iris in ((regions.RIGHT_EYE, regions.RIGHT_IRIS), (regions.LEFT_EYE, regions.LEFT_IRIS)):
        out[iris, :2] += off[eye].mean(0) - (moved[eye, :2] - target[eye, :2]).mean(0)
    return out


def render_skin(image: np.ndarray, face: Face, donor: Donor, settings: SkinSettings | None = None) -> None:
    """Paint ``donor``'s skin onto ``face`` in ``image`` (modified in place)."""
    from faceskin.raster import rasterize

    st = settings or SkinSettings()
    mesh = canonical_mesh()
    L = np.asarray(face.landmarks, np.float64)
    L2 = morph_toward(L, donor.landmarks, st.geometry)
    fs = face_scale(L)
    h, w = image.shape[:2]
    pts = np.vstack([L[:468, :2], L2[:468, :2]])
    pad = 4
    x0, y0 = np.floor(pts.min(0)).astype(int) - pad
    x1, y1 = np.ceil(pts.max(0)).astype(int) + pad
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 4 or y1 - y0 < 4:
        raise ValueError("face outside the image")
    visible = triangle_facing(L2[:468], mesh.triangles) > 0.0
    r = rasterize(L2[:468], mesh.triangles, (y1 - y0, x1 - x0), (x0, y0), depth=L2[:468, 2], visible=visible)
    inside = r.mask
    src = r.interpolate(L[:468, :2], mesh.triangles)
    uv = r.interpolate(mesh.uv * donor.texture.shape[0], mesh.triangles)
    gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    mx = np.where(inside, src[..., 0], gx)
    my = np.where(inside, src[..., 1], gy)
    warped = cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    detail = cv2.remap(donor.detail, uv[..., 0], uv[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    # The person's skin only: no eyes, brows, lips, nostrils, nor hair/glasses over the skin.
    local = L2.copy()
    local[:, 0] -= x0
    local[:, 1] -= y0
    shape = (y1 - y0, x1 - x0)
    features = regions.polygon_mask(shape, local, [*regions.EYES, *regions.BROWS, regions.LIPS_OUTER, *regions.NOSTRILS])
    k = max(3, int(fs * 0.04) | 1)
    features = cv2.dilate(features, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    lab = to_lab(warped)
    skin = inside & (features == 0)
    if skin.sum() > 20:
        med = np.median(lab[skin], 0)
        mad = np.median(np.abs(lab[skin] - med), 0) * 1.4826 + 1e-3
        skin &= np.abs(lab[..., 0] - med[0]) < max(18.0, 3.5 * mad[0])
    if skin.sum() < 20:
        skin = inside
    low = masked_blur(lab, skin.astype(np.float32), max(1.0, st.shading_sigma * fs))
    out_lab = low + st.detail_gain * detail
    skin_rgb = from_lab(out_lab)

    # alpha: feathered inside the outline, holes for the person's eyes and inner mouth
    feather = max(2.0, st.feather * fs)
    dist = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3)
    alpha = np.clip(dist / feather, 0, 1)
    alpha = alpha * alpha * (3 - 2 * alpha)
    holes = regions.polygon_mask(shape, local, [*regions.EYES, regions.LIPS_INNER]).astype(np.float32) / 255
    hs = max(0.6, fs * 0.006)
    holes = cv2.GaussianBlur(holes, (0, 0), hs)
    alpha *= 1 - np.clip(holes * 1.3, 0, 1)
    base = np.where(inside[..., None], warped, image[y0:y1, x0:x1])
    a = alpha[..., None]
    image[y0:y1, x0:x1] = np.clip(base * (1 - a) + skin_rgb * a + 0.5, 0, 255).astype(np.uint8)
