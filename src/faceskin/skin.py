"""Rendering a donor skin onto a person's face.

What each step is for:
- geometry: the identity-bearing layout (eye spacing, brow height, nose and
  mouth size) moves toward the donor's, which the prototype showed matters as
  much as texture; the face outline stays, so the head still fits.
- the person's own pixels are warped along with that geometry, and their eye
  openings and inner mouth are kept, so gaze, blinks, teeth and tongue stay real.
- shading: the output's lightness is the person's low-frequency shading
  (estimated from their skin only, not brows/lips/hair) plus the donor's
  detail layer; its colour is the person's own, pixel by pixel, so there is
  no colour cast from the donor's lighting, lips stay lip-red, and there is
  no seam against the neck.
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
    geometry: float = 1.2  # 0 = keep the person's proportions, 1 = the donor's, >1 past the donor (away from the person)
    detail_gain: float = 1.0  # strength of the donor's texture detail
    shading_sigma: float = 0.2  # the person's shading is kept below this scale (fraction of face size)
    feather: float = 0.08  # border ramp width, fraction of face size
    max_yaw: float = 60.0  # degrees; beyond this the skin is not trusted (fallback)
    outline: float = 1.0  # how far the face outline follows the donor's, relative to ``geometry``
    head_margin: float = 0.45  # the head around the face is warped smoothly out to this fraction of face size
    keep_eyes: bool = True  # the person's own eye openings (gaze, blinks)
    keep_mouth: bool = True  # the person's own inner mouth (teeth, tongue)
    chroma_detail: float = 0.0  # share of the skin's fine colour taken from the donor (the rest is the person's)
    lid_detail: float = 1.0  # share of the donor's detail kept on the eyelids (see LID_REACH; 0.3 reads blinks better)
    keep_lips: bool = False  # the person's own lips (their outline is the person's anyway: the mouth is never scaled)
    # Share of the donor's mid-scale shading kept above the nose tip: the band between DETAIL_SIGMA
    # and shading_sigma (socket shadows, the haze around brows, folds), where a donor's own lighting
    # and age show, laid over the person's real shading. Rendered once with the pipeline's first
    # skin on 204 London faces, taking 70 % of it out cleared most dark sockets and brow smudges,
    # MediaPipe's blink r went 0.84 -> 0.88, and the self-check did not move (mean similarity 0.364
    # both, dlib distance 0.689 -> 0.691). Pores, lines and brow hairs (finer) stay whole, and so
    # does the band from the mouth down (see render_skin).
    mid_detail: float = 0.3
    # Share of the donor's detail kept on the forehead (above the brows, ramped in over FOREHEAD_RAMP):
    # the model's skins carry their training faces' forehead folds, which on the contact sheet made
    # young faces look lined and old. Rendered once with the pipeline's first skin on 204 London
    # faces (with a chroma rule since withdrawn), 0.4 against 1.0: self-check pass rate 0.27 against 0.26,
    # mean SFace similarity 0.357 against 0.354, dlib distance 0.697 against 0.699: the forehead
    # is mostly outside the recognizers' aligned crops. Privacy bench, run beside the same code
    # without it: re-ID 0.9 / 0 / 0 / 0 % (dlib / FaceNet / SFace / ArcFace; 1.8 / 0 / 0 / 0.9
    # without), jawOpen / smile / blink r 0.903 / 0.982 / 0.905 (0.897 / 0.982 / 0.908).
    forehead_detail: float = 0.4
    # How far (CIELAB chroma units, soft limit) the donor's colour detail may move a pixel's colour,
    # where it is used (the brows; the whole skin at STRONGER and STRONGEST, ``chroma_detail``).
    # The model's skins carry their training faces' blush, lighting casts and eye colour in that
    # layer: orange brows (syn012), red cheeks and blue eyes (syn067 at STRONGEST) on the contact
    # sheet. The recognizers hardly use the strong part: three skins each on 40 London faces, at
    # STRONGER the self-check passed 42 % of renders without a limit, 41 % with a limit of 3 and
    # 42 % with 6 (at STRONGEST 62 / 59 / 59 %); without the donor's colour at all, 32 % (53 %).
    # At STRONGEST the skin's own eyes keep their colour (an iris colour is no cast, and it hides:
    # syn010 on the astronaut 0.285 unlimited, 0.309 limited, 0.274 with the eyes left whole; over
    # the 40 faces the pass rate there is then 61 %, and 42 % at STRONGER with this limit of 4).
    # The lips keep theirs at every rung: limited, the stronger rungs' lips lost 2-2.5 units of red
    # (a*) on three London faces, and `faceskin audit` read GRID lip motion worse (jawOpen r 0.77
    # and 0.80 on lbbc2a and lwbsza, 0.99 and 0.96 with the lips whole, 0.95-0.99 and 0.88-0.92
    # in the two runs before the limit).
    chroma_limit: float | None = 4.0


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


# Each expressive feature: its points, the points whose position says where the feature
# sits (landmarks an expression hardly moves), and whether its size may change.
# Eye corners stay put in a blink; an eye is moved, not scaled, and no neighbour's
# falloff reshapes it: scaling it toward the donor's width read as a change of openness
# (London photos, first skin: blink r against the originals 0.82 -> 0.90, self-check
# similarity 0.308 -> 0.307, at STRONGER 0.287 -> 0.272). Brows ride
# with their eye (a raised brow is expression) and take the donor's width. The mouth is
# placed by the middle of its upper lip (attached to the skull, unlike the corners a smile
# pulls or the lower lip the jaw drops) and never scaled, because a smile is mostly a wider mouth.
_FEATURES = (
    (regions.RIGHT_EYE + regions.RIGHT_IRIS, [33, 133], False),
    (regions.LEFT_EYE + regions.LEFT_IRIS, [362, 263], False),
    (regions.RIGHT_BROW, [33, 133], True),
    (regions.LEFT_BROW, [362, 263], True),
    (sorted(set(regions.LIPS_OUTER + regions.LIPS_INNER)), [0, 37, 267], False),
)
_UPPER_LIP, _LOWER_LIP = 13, 14  # inner lip midpoints: their gap is how far the jaw is open
_MOUTH_LINE = [61, 291, 13]  # below this line the jaw moves when the mouth opens
_CHIN = 152
_NOSE_TIP = 1
_BROW_TOPS = [105, 66, 334, 296]  # above the line through these the forehead begins
FOREHEAD_RAMP = 0.08  # face sizes over which forehead_detail takes over above the brows


def _down(landmarks: np.ndarray) -> np.ndarray:
    """Unit vector from the top of the forehead to the chin: the face's own "down" in the image."""
    top, chin = landmarks[10, :2], landmarks[_CHIN, :2]
    return (chin - top) / max(float(np.linalg.norm(chin - top)), 1e-6)


def _jaw_weight(points: np.ndarray, down: np.ndarray) -> np.ndarray:
    """0 above the mouth, rising to 1 at the chin: how much a vertex moves with the jaw."""
    y = points[:, :2] @ down
    top, chin = y[_MOUTH_LINE].mean(), y[_CHIN]
    return np.clip((y - top) / max(chin - top, 1e-6), 0.0, 1.0) ** 0.8


def with_jaw_of(donor: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The donor's landmarks with its jaw opened or closed as far as the target's.

    Identity geometry moves the target toward the donor; if the donor's mouth
    is closed and the target's open, "toward the donor" would also close the
    target's jaw and take its speech away. Opening the donor's jaw first keeps
    the jaw the target's expression.
    """
    down_t, fs_t = _down(target), face_scale(target)
    down_d, fs_d = _down(donor), face_scale(donor)
    gap = lambda L, d: float((L[_LOWER_LIP, :2] - L[_UPPER_LIP, :2]) @ d)  # noqa: E731
    delta = gap(target, down_t) / fs_t * fs_d - gap(donor, down_d)
    out = donor.copy()
    out[:, :2] += _jaw_weight(donor, down_d)[:, None] * delta * down_d
    return out


def morph_toward(target: np.ndarray, donor: np.ndarray, amount: float, outline: float = 0.0) -> np.ndarray:
    """Target landmarks with identity-bearing geometry moved toward the donor's.

    Eyes, brows and mouth, and the skin around them, only move (and brows
    scale) as a whole, placed by landmarks an expression hardly moves: their
    *shape* is the person's expression (a smile, a frown, a blink) and must
    stay the person's, or the donor's expression would be pasted on. The
    donor's jaw is first opened as far as the person's (:func:`with_jaw_of`).
    The rest of the mesh (nose, cheeks, forehead, chin) takes the donor's
    shape vertex by vertex. ``outline`` (times ``amount``) lets the face
    outline follow too; the head around it is then warped to match.
    """
    donor = with_jaw_of(donor, target)
    s, r, t = similarity_3d(donor[_ANCHORS], target[_ANCHORS])
    aligned = (s * (r @ donor.T)).T + t
    fs = face_scale(target)
    pts = target[:, :2]
    per_vertex = amount * (aligned[:, :2] - pts)
    blended = np.zeros_like(per_vertex)
    weight = np.zeros(len(pts))
    own = []  # each feature's own points follow only that feature (a brow's falloff must not scale an eye)
    eye_shift = _eye_limits(pts, aligned[:, :2], amount)
    for idx, anchor, scales in _FEATURES:
        p = pts[idx]
        cp, cq = pts[anchor].mean(0), aligned[anchor, :2].mean(0) + eye_shift.get(tuple(anchor), 0.0)
        scale = 1.0
        if scales:
            wp = np.linalg.norm(pts[anchor[0]] - pts[anchor[1]])
            wq = np.linalg.norm(aligned[anchor[0], :2] - aligned[anchor[1], :2])
            scale = 1.0 + amount * (wq / max(wp, 1e-6) - 1.0)
        moved = cp + amount * (cq - cp) + (pts - cp) * scale
        centre = p.mean(0)
        r0 = np.linalg.norm(p - centre, axis=1).max() * 1.1
        r1 = r0 + 0.1 * fs
        w = np.clip((r1 - np.linalg.norm(pts - centre, axis=1)) / (r1 - r0), 0.0, 1.0)
        w[idx] = 1.0
        own.append((idx, moved[idx] - p))
        blended += w[:, None] * (moved - pts)
        weight += w
    share = np.clip(weight, 0.0, 1.0)
    disp = per_vertex * (1 - share)[:, None] + blended / np.maximum(weight, 1.0)[:, None] * share[:, None]
    for idx, d in own:
        disp[idx] = d
    out = target.copy()
    out[:, :2] = pts + disp
    oval = regions.FACE_OVAL
    out[oval, :2] = target[oval, :2] + (outline * amount * _outline_weight(target))[:, None] * (
        aligned[oval, :2] - target[oval, :2])
    # From the nose tip down nothing moves up or down the face, only across it. How far the
    # mouth and chin sit below the nose is how open the jaw looks: moving them toward the
    # donor's read as speech or a closed mouth (London photos, first skin: MediaPipe's jawOpen r
    # 0.46 -> 0.57 and smile r 0.87 -> 0.95 against the originals with this pinned; the
    # self-check similarity did not rise: 0.311 -> 0.308 on 30 faces). The nose tip is pinned
    # too: when it took a longer nose's length it came down toward a mouth that stayed put
    # (GRID lbax4n, syn015: nose to chin 0.52 -> 0.46 of face height) and MediaPipe read a
    # wide-open mouth as closed (jawOpen 0.47 -> 0.06 at STRONGER; over 56 GRID frames r
    # 0.84 -> 0.92 at the default settings, 0.50 -> 0.72 at STRONGER). Moving the mouth and chin
    # down with it instead kept the jaw (0.93 / 0.83) but made the face longer and the mouth
    # narrower for its face, and smiles were read as gone (London smile r 0.95 -> 0.83).
    # Widths (jaw, mouth position across, the nose's own) still move.
    down = _down(target)
    from_nose = np.clip(((target[:, :2] - target[_NOSE_TIP, :2]) @ down) / (0.1 * fs) + 1.0, 0.0, 1.0)
    d = out[:, :2] - target[:, :2]
    out[:, :2] = target[:, :2] + d - (from_nose * (d @ down))[:, None] * down
    return _smooth_offsets(target, out)


# How far the distance between the eyes may move toward the donor's: a fraction of the person's.
# A skin with wide-set eyes (syn045: 0.63 of face height apart, the median skin 0.53) took a
# person's eyes 29 % further apart at STRONGER, and MediaPipe then read their open mouth as far
# less open (GRID jawOpen r 0.73, a sixth of the opening kept; 0.90 with the eyes left alone):
# the same lip gap on a wider face. Capped at 6 %: that skin keeps r 0.88 at STRONGER and 0.94 at
# the default settings (0.89 before), and on the shared photos no recognizer re-identifies more
# (re-ID 0 % for all four, rank-1 0.9 / 5.4 / 16.2 / 31.5 % against 1.8 / 5.4 / 16.2 / 35.1,
# fallbacks 0.9 % both), while jawOpen r 0.49 -> 0.55, smile 0.95 -> 0.96, blink 0.83 -> 0.83.
# The eyes' height on the face did the same to closed mouths: a skin whose eyes sit higher
# (syn009, syn028: 13 % of the eye distance on the astronaut at STRONGER) moved the person's eyes
# up, and MediaPipe read the mouth, now further below them, as open (London photos with closed
# mouths, jawOpen 0.02-0.04: 0.17-0.20 on the skin). Rendering each London photo with the skin the
# pipeline chose (200 faces, one render each), jawOpen r against the originals was 0.63 with the
# spacing capped at 6 % and the height free, 0.86 with the height kept, 0.91 with the spacing
# capped at 3 % too, 0.93 with the eyes not moved at all; the self-check's SFace similarity rose
# 0.265 -> 0.279 -> 0.286 -> 0.291 (mean), so more skins escalate. With 3 % and the height kept,
# `python bench/privacy_photos.py --skins default --methods original,skin`: re-ID 0 % for all
# four recognizers, rank-1 0 / 4.5 / 10.8 / 39.6 % (dlib / FaceNet / SFace / ArcFace; before
# 0.9 / 5.4 / 16.2 / 31.5), fallbacks 1.8 % (0.9), detected 98.2 % (99.1), jawOpen r 0.78 (0.55:
# the escalated skins move more), smile 0.95 (0.96), blink 0.81 (0.83); GRID (`faceskin audit` of
# the 8 clips, `bench/audit_checks.py`) jawOpen r 0.92-0.98 on all eight, 0 leaked frames.
EYE_SPACING_CAP = 0.03
EYE_HEIGHT_CAP = 0.0  # fraction of the distance between the eyes
# The donor's fine detail on the eyelids (creases, lashes' shadows, its own lid folds) made
# MediaPipe misread how far the person's eyes were closed: on 120 London faces eyeBlink r against
# the originals was 0.83 with the full detail, 0.90 with half the detail everywhere. Around the eye
# openings, out to LID_REACH of the face size and fading, only ``lid_detail`` of it is kept (0.3:
# r 0.89; the lids keep the person's own low-frequency shading, as the whole skin does). Not the
# default: the person's eyes then show more, and on GRID the per-frame self-check withdrew the
# skin from 36-40 % of the face-frames of six clips (2.7 % with the full detail); on the shared
# photos it kept re-ID at 0 % and fallbacks at 0.9 % while blink r rose 0.83 -> 0.87.
LID_REACH = 0.06


def _eye_limits(pts: np.ndarray, aligned: np.ndarray, amount: float) -> dict[tuple, np.ndarray]:
    """Shifts of the donor's eye positions (by eye anchor) that keep the distance between the
    eyes within ``EYE_SPACING_CAP`` of the person's once moved ``amount`` of the way, and the
    eyes' height on the face (along its own "down") within ``EYE_HEIGHT_CAP`` of that distance;
    the brows ride along (same anchors). The eyes still move together, across the face."""
    if amount <= 0:
        return {}
    right, left = _FEATURES[0][1], _FEATURES[1][1]
    cp_r, cp_l = pts[right].mean(0), pts[left].mean(0)
    cq_r, cq_l = aligned[right].mean(0), aligned[left].mean(0)
    sep = cp_l - cp_r
    d = float(np.linalg.norm(sep))
    if d < 1e-6:
        return {}
    u = sep / d
    shift_l, shift_r = np.zeros(2), np.zeros(2)
    change = amount * float(((cq_l - cp_l) - (cq_r - cp_r)) @ u)
    allowed = float(np.clip(change, -EYE_SPACING_CAP * d, EYE_SPACING_CAP * d))
    if allowed != change:
        c = (allowed - change) / 2.0 / amount * u
        shift_l, shift_r = shift_l + c, shift_r - c
    down = _down(pts)
    rise = amount * float(((cq_l - cp_l) + (cq_r - cp_r)) @ down) / 2.0
    kept = float(np.clip(rise, -EYE_HEIGHT_CAP * d, EYE_HEIGHT_CAP * d))
    if kept != rise:
        c = (kept - rise) / amount * down
        shift_l, shift_r = shift_l + c, shift_r + c
    if not shift_l.any() and not shift_r.any():
        return {}
    return {tuple(left): shift_l, tuple(right): shift_r}


def _outline_weight(target: np.ndarray) -> np.ndarray:
    """How far each outline vertex may follow the donor's: fully from the eyes down, fading to
    nothing at the top of the forehead. Up there the outline is the hairline: moving it paints
    skin over hair or drags hair over the skin, with a hard edge where the head warp meets the
    untouched hair; the jaw and cheek line, which carry the identity, still move."""
    top, down = target[10, :2], _down(target)
    y = (target[regions.FACE_OVAL, :2] - top) @ down
    eyes = float((target[[33, 263], :2] - top).mean(0) @ down)
    t = np.clip(y / max(eyes, 1e-6), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _mesh_neighbours() -> np.ndarray:
    """Row-normalised adjacency of the mesh vertices: ``A @ x`` is each vertex's neighbour mean."""
    tris = canonical_mesh().triangles
    a = np.zeros((468, 468))
    for u, v in ((0, 1), (1, 2), (2, 0)):
        a[tris[:, u], tris[:, v]] = 1.0
        a[tris[:, v], tris[:, u]] = 1.0
    return a / np.maximum(a.sum(1, keepdims=True), 1.0)


_NEIGHBOURS = None


def _smooth_offsets(target: np.ndarray, moved: np.ndarray, iterations: int = 4) -> np.ndarray:
    """Laplacian smoothing of the displacement field, outline and features pinned: no fold-overs."""
    global _NEIGHBOURS
    if _NEIGHBOURS is None:
        _NEIGHBOURS = _mesh_neighbours()
    off = moved[:468, :2] - target[:468, :2]
    pinned = np.zeros(468, bool)
    pinned[regions.FACE_OVAL] = True
    for idx, _, _ in _FEATURES:  # their motion is already smooth (a similarity); smoothing would reshape them
        pinned[[i for i in idx if i < 468]] = True
    for _ in range(iterations):
        avg = _NEIGHBOURS @ off
        off = np.where(pinned[:, None], off, 0.5 * off + 0.5 * avg)
    out = moved.copy()
    out[:468, :2] = target[:468, :2] + off
    # iris points follow the eye they sit in
    for eye, iris in ((regions.RIGHT_EYE, regions.RIGHT_IRIS), (regions.LEFT_EYE, regions.LEFT_IRIS)):
        out[iris, :2] += off[eye].mean(0) - (moved[eye, :2] - target[eye, :2]).mean(0)
    return out


def _sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All squared distances between rows of ``a`` and ``b``, as one matrix product."""
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T, 0.0)


def _tps_kernel(r2: np.ndarray) -> np.ndarray:
    return np.where(r2 > 0, 0.5 * r2 * np.log(np.maximum(r2, 1e-12)), 0.0)


def head_warp(roi, at: np.ndarray, disp: np.ndarray, image_size, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Dense displacement (dx, dy) over ``roi``: ``disp`` at mesh points ``at``, zero at the ROI border.

    A thin-plate spline through the outline's displacement and a fixed frame,
    evaluated on a coarse grid and upsampled: smooth, cheap, and exactly zero
    where the warp region meets the untouched image.
    """
    x0, y0, x1, y1 = roi
    oval = regions.FACE_OVAL
    ctrl = [at[oval]]
    vals = [disp[oval]]
    inner = np.arange(0, 468, 9)
    ctrl.append(at[inner])
    vals.append(disp[inner])
    n_border = 10
    bx = np.linspace(x0, x1 - 1, n_border)
    by = np.linspace(y0, y1 - 1, n_border)
    border = np.vstack([np.stack([bx, np.full_like(bx, y0)], 1), np.stack([bx, np.full_like(bx, y1 - 1)], 1),
                        np.stack([np.full_like(by, x0), by], 1), np.stack([np.full_like(by, x1 - 1), by], 1)])
    ctrl.append(border)
    vals.append(np.zeros_like(border))
    c = np.vstack(ctrl) / scale
    v = np.vstack(vals)
    n = len(c)
    k = _tps_kernel(_sq_distances(c, c)) + np.eye(n) * 1e-3
    p = np.hstack([np.ones((n, 1)), c])
    a = np.zeros((n + 3, n + 3))
    a[:n, :n], a[:n, n:], a[n:, :n] = k, p, p.T
    rhs = np.zeros((n + 3, 2))
    rhs[:n] = v
    coef = np.linalg.solve(a, rhs)  # square and regularised (the 1e-3 ridge): no need for an SVD
    step = max(4.0, scale / 32)
    gw, gh = int(np.ceil((x1 - x0) / step)) + 1, int(np.ceil((y1 - y0) / step)) + 1
    gx, gy = np.meshgrid(np.linspace(x0, x1 - 1, gw), np.linspace(y0, y1 - 1, gh))
    g = np.stack([gx.ravel(), gy.ravel()], 1) / scale
    kg = _tps_kernel(_sq_distances(g, c))
    d = kg @ coef[:n] + np.hstack([np.ones((len(g), 1)), g]) @ coef[n:]
    dx = cv2.resize(d[:, 0].reshape(gh, gw).astype(np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    dy = cv2.resize(d[:, 1].reshape(gh, gw).astype(np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    # fade to exactly zero at the ROI edge (the spline is only approximately zero between anchors)
    fy = np.minimum(np.arange(y1 - y0), np.arange(y1 - y0)[::-1])[:, None]
    fx = np.minimum(np.arange(x1 - x0), np.arange(x1 - x0)[::-1])[None, :]
    ramp = np.clip(np.minimum(fx, fy) / max(2.0, 0.08 * scale), 0, 1).astype(np.float32)
    return dx * ramp, dy * ramp


# Escalation steps when a skin still resembles the person (see protect.Protector._attempts).
STRONGER = SkinSettings(geometry=1.6, outline=1.5, shading_sigma=0.25, chroma_detail=1.0)
# STRONGEST keeps the donor's whole mid band, and with it black sockets around the donor's eyes: with
# 30 % of it (as the other rungs) the privacy bench fell back on 5.4 % of faces instead of 1.8 %, and
# 94.6 % of protected photos still showed a face (goal 98 %). The faces that reach this rung are the
# hardest to hide, and the band is part of what hides them. For the same reason it keeps the forehead's whole detail.
STRONGEST = SkinSettings(geometry=2.0, outline=2.0, shading_sigma=0.4, detail_gain=1.3, keep_eyes=False, chroma_detail=1.0,
                         mid_detail=1.0, forehead_detail=1.0)


def keypoints_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """The detector's five points (image-left eye first) derived from the dense mesh."""
    L = landmarks
    return np.array([
        L[regions.RIGHT_EYE, :2].mean(0), L[regions.LEFT_EYE, :2].mean(0), L[1, :2], L[61, :2], L[291, :2],
    ])


def landmark_gap(face: Face) -> float | None:
    """How far the mesh's five points lie from the detector's, on average, as a share of the face size.

    Why: a mesh fitted to a motion-blurred face can sit beside it, and a skin
    painted there leaves part of the person bare. On 248 shared photos the gap
    is 0.016 at the median and 0.106 at most; on a fast, blurred 185 px face of
    the hikers clip it reached 0.34, and that frame leaked. None without both sets of points.
    """
    if face.landmarks is None or face.keypoints is None:
        return None
    points = keypoints_from_landmarks(face.landmarks)
    return float(np.linalg.norm(points - np.asarray(face.keypoints, np.float64)[:5, :2], axis=1).mean() / max(face.size, 1.0))


def _limit_chroma(detail: np.ndarray, share: np.ndarray, st: SkinSettings, shape, local: np.ndarray, k: int) -> None:
    """Soft-limit (tanh) the donor's colour detail in ``detail`` (LAB, in place) to ``st.chroma_limit``
    wherever ``share`` of it is used; the lips, and at STRONGEST the skin's own eyes, keep it whole:
    a lip or iris colour is no cast, the eyes' hides, and pale lips read as another mouth."""
    used = share[..., 0] > 1e-3
    rows, cols = np.flatnonzero(used.any(1)), np.flatnonzero(used.any(0))
    if not len(rows):
        return
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1  # only where the donor's colour is used
    ab = detail[y0:y1, x0:x1, 1:]
    m = np.float32(st.chroma_limit)
    size = np.sqrt(ab[..., 0] * ab[..., 0] + ab[..., 1] * ab[..., 1]) + np.float32(1e-6)
    factor = m * np.tanh(size / m) / size
    whole = regions.polygon_mask(shape, local, [regions.LIPS_OUTER] + ([] if st.keep_eyes else [*regions.EYES]))
    whole = cv2.GaussianBlur(whole.astype(np.float32) / 255, (0, 0), max(1.0, k / 4))[y0:y1, x0:x1]
    factor += whole * (1 - factor)
    ab *= factor[..., None]


def render_skin(image: np.ndarray, face: Face, donor: Donor, settings: SkinSettings | None = None) -> np.ndarray:
    """Paint ``donor``'s skin onto ``face`` in ``image`` (modified in place); returns the moved landmarks."""
    from faceskin.raster import rasterize

    st = settings or SkinSettings()
    mesh = canonical_mesh()
    L = np.asarray(face.landmarks, np.float64)
    L2 = morph_toward(L, donor.landmarks, st.geometry, st.outline)
    fs = face_scale(L)
    h, w = image.shape[:2]
    pts = np.vstack([L[:468, :2], L2[:468, :2]])
    moves_outline = bool(np.abs(L2[regions.FACE_OVAL, :2] - L[regions.FACE_OVAL, :2]).max() > 0.25)
    pad = int(np.ceil(st.head_margin * fs)) if moves_outline else 4
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
    if moves_outline:
        # outside the mesh, the head (hair, ears, jaw line) follows the outline smoothly
        dx, dy = head_warp((x0, y0, x1, y1), L2[:468, :2], L2[:468, :2] - L[:468, :2], (w, h), fs)
        gx, gy = gx - dx, gy - dy
    mx = np.where(inside, src[..., 0], gx)
    my = np.where(inside, src[..., 1], gy)
    warped = cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    detail = cv2.remap(donor.detail(st.shading_sigma), uv[..., 0], uv[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # each pixel's height down the face (the face's own up-down axis), for the bands that vary with it
    down = _down(L2)
    y = (np.arange(x0, x1, dtype=np.float32)[None, :] * np.float32(down[0])
         + np.arange(y0, y1, dtype=np.float32)[:, None] * np.float32(down[1]))
    if st.mid_detail != 1.0 and st.shading_sigma > DETAIL_SIGMA:
        fine = cv2.remap(donor.detail(DETAIL_SIGMA), uv[..., 0], uv[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # the lower face keeps the band whole: there its shading is how the lips and chin read
        # (less of it opened closed mouths: london_010 under syn009, jawOpen 0.04 -> 0.09)
        top, bottom = float(L2[_NOSE_TIP, :2] @ down), float(L2[_MOUTH_LINE, :2].mean(0) @ down)
        t = np.clip((y - top) / max(bottom - top, 1e-6), 0, 1)[..., None]
        keep = np.float32(st.mid_detail) + np.float32(1 - st.mid_detail) * t
        detail = fine + keep * (detail - fine)
    if st.forehead_detail != 1.0:
        brow_line = float(L2[_BROW_TOPS, :2].mean(0) @ down)
        up = np.clip((brow_line - y) / (FOREHEAD_RAMP * fs), 0, 1)[..., None]
        detail = detail * (1 - np.float32(1 - st.forehead_detail) * up)

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
    low = masked_blur(lab, skin.astype(np.float32), max(1.0, st.shading_sigma * fs), coarse=True)
    gain = np.float32(st.detail_gain)
    if st.lid_detail < 1.0:
        lids = regions.polygon_mask(shape, local, [*regions.EYES]).astype(np.float32) / 255
        r_lid = max(3, int(fs * LID_REACH) | 1)
        lids = cv2.dilate(lids, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r_lid + 1, 2 * r_lid + 1)))
        lids = cv2.GaussianBlur(lids, (0, 0), r_lid / 2)
        gain = (st.detail_gain * (1.0 - (1.0 - st.lid_detail) * lids))[..., None]
    out_lab = low + gain * detail
    # the donor's detail is not zero-mean over the person's skin: keep the person's brightness
    out_lab[..., 0] += float(lab[..., 0][skin].mean() - out_lab[..., 0][skin].mean())
    # Colour is the person's own at every pixel: in the person's skin, colour hardly varies
    # with lightness (measured on London faces: slope of a, b against L in the detail band
    # ~0.01), so their a, b carry over to the donor's lightness unchanged. A donor's colour
    # detail brings the casts of its lighting (grey-green sockets, pale lips).
    # Only the brows take the donor's colour, as they are the donor's: the person's own brows look
    # better but carry identity (self-check similarity 0.29 -> 0.49 on 30 London faces).
    brows = regions.polygon_mask(shape, local, [*regions.BROWS]).astype(np.float32) / 255
    brows = cv2.GaussianBlur(cv2.dilate(brows, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))),
                             (0, 0), k / 2)[..., None]
    c = st.chroma_detail + (1 - st.chroma_detail) * brows
    if st.chroma_limit:
        _limit_chroma(detail, c, st, shape, local, k)
    out_lab[..., 1:] = c * (low[..., 1:] + detail[..., 1:]) + (1 - c) * lab[..., 1:]
    skin_rgb = from_lab(out_lab)

    # alpha: feathered inside the outline, holes for the person's eyes and inner mouth
    feather = max(2.0, st.feather * fs)
    dist = cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 3)
    alpha = np.clip(dist / feather, 0, 1)
    alpha = alpha * alpha * (3 - 2 * alpha)
    kept = ([*regions.EYES] if st.keep_eyes else []) + ([regions.LIPS_INNER] if st.keep_mouth else [])
    kept += [regions.LIPS_OUTER] if st.keep_lips else []
    holes = regions.polygon_mask(shape, local, kept).astype(np.float32) / 255
    hs = max(0.6, fs * 0.006)
    # grow the openings by the blur radius first, so even a narrowed eye stays fully the person's
    kk = 2 * int(np.ceil(2 * hs)) + 1
    holes = cv2.dilate(holes, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kk, kk)))
    holes = cv2.GaussianBlur(holes, (0, 0), hs)
    alpha *= 1 - np.clip(holes * 1.3, 0, 1)
    base = np.where(inside[..., None], warped, image[y0:y1, x0:x1])
    a = alpha[..., None]
    image[y0:y1, x0:x1] = np.clip(base * (1 - a) + skin_rgb * a + 0.5, 0, 255).astype(np.uint8)
    return L2
