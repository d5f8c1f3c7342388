"""The fail-closed cover for faces a skin cannot protect well.

Used for tiny faces, extreme poses, landmark failures and any render error.
It covers the whole head region (face box grown up to the hairline and out to
the ears) with the colour around the head plus a fine grain of noise: nothing
of the face is kept, not even its coarse layout, so neither a recogniser nor a
de-pixelation model has anything of the person to work with.

Why not a mosaic: a 5-block mosaic keeps the face's colour layout (dark hair
and eyes, light cheeks), and at any size recognisers match that about as well
as the audit's own identity-free mosaic of the face, so whether a cover
"leaks" was a coin toss. Covers re-drawn on the original frames of faces the
audit had counted (three noise seeds each): on 169-254 px selfie faces the
mosaic leaked in 8 of 21 draws, a flat fill with a 2 px grain (std 24) in 1;
on 26-38 px group faces the earlier small-face fill, whose noise came in
blocks the size of eyes and mouth, leaked in 29 of 42 draws, the 2 px grain
(std 16) in 2. Noise at the scale of the features makes random face-like
blobs; a grain far finer does not. Through the video pipeline the group clip
went from 26 to 10 leaked frames (all dlib, on 32-37 px covers).
"""

from __future__ import annotations

import cv2
import numpy as np

from faceskin.faces import Face

GRAIN = 2  # px: side of one noise grain, far below a face feature at any face size
GRAIN_NOISE = 16.0  # luminance noise (std, 0-255) of the grain; a little colour noise on top
FLAT_BELOW, FULL_GRAIN_FROM = 40.0, 96.0  # face size (px): flat fill below, full grain above, a ramp between


def head_region(face: Face, margin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Centre and semi-axes of an ellipse covering the head, not just the face box."""
    x0, y0, x1, y1 = face.box
    if face.landmarks is not None:
        lx0, ly0 = face.landmarks[:, :2].min(0)
        lx1, ly1 = face.landmarks[:, :2].max(0)
        x0, y0, x1, y1 = min(x0, lx0), min(y0, ly0), max(x1, lx1), max(y1, ly1)
    w, h = x1 - x0, y1 - y0
    s = max(w, h)
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2 - 0.12 * h])
    axes = np.array([0.5 * max(w, 0.8 * s) * 1.45, 0.5 * h * 1.75]) * (1 + margin)
    return centre, axes


UNDER_COVER = "under another face's cover"
MAX_COVERED_SHARE = 0.5  # a skin with more of its box than this under another face's cover is covered too


def covered_share(face: Face, covers: list[Face], margin: float = 0.0) -> float:
    """The largest share of ``face``'s box that lies under the head ellipse of one of ``covers``."""
    x0, y0, x1, y1 = (float(v) for v in face.box)
    t = (np.arange(16) + 0.5) / 16  # the box sampled on a 16 x 16 grid
    xs, ys = np.meshgrid(x0 + t * (x1 - x0), y0 + t * (y1 - y0))
    share = 0.0
    for c in covers:
        centre, axes = head_region(c, margin)
        inside = ((xs - centre[0]) / max(axes[0], 1e-9)) ** 2 + ((ys - centre[1]) / max(axes[1], 1e-9)) ** 2 <= 1.0
        share = max(share, float(inside.mean()))
    return share


def skins_under_covers(skins: dict, covers: list[Face], margin: float = 0.0,
                       max_share: float = MAX_COVERED_SHARE) -> set:
    """The keys of ``skins`` (key -> skinned face) to cover as well, given the faces to be ``covers``.

    Why: a skin was judged alone, before the covers were painted; half a skin under a
    neighbour's cover is a mix no self-check saw. On the hikers clip a ghost track's cover
    over a fast, close face's upper half left a skin that ArcFace and FaceNet matched
    (FaceNet 0.70 against 0.60) while SFace and dlib had passed the whole skin. A skin taken
    off is one more cover, which may reach over another skin: this repeats until none is
    left under a cover, whatever the faces' order.
    """
    covers, under = list(covers), set()
    while True:
        more = [k for k, f in skins.items() if k not in under and covered_share(f, covers, margin) > max_share]
        if not more:
            return under
        under.update(more)
        covers += [skins[k] for k in more]


def cover_face(image: np.ndarray, face: Face, rng: np.random.Generator | None = None, margin: float = 0.0) -> None:
    """Fill the head region of ``face`` in ``image`` with the colour around it plus a fine grain (in place)."""
    rng = rng or np.random.default_rng()
    h, w = image.shape[:2]
    centre, axes = head_region(face, margin)
    x0 = int(max(0, np.floor(centre[0] - axes[0])))
    x1 = int(min(w, np.ceil(centre[0] + axes[0]) + 1))
    y0 = int(max(0, np.floor(centre[1] - axes[1])))
    y1 = int(min(h, np.ceil(centre[1] + axes[1]) + 1))
    if x1 <= x0 or y1 <= y0:
        return
    roi = image[y0:y1, x0:x1]
    rw, rh = x1 - x0, y1 - y0
    mask = np.zeros((rh, rw), np.uint8)
    cv2.ellipse(mask, (int(round(centre[0] - x0)), int(round(centre[1] - y0))),
                (int(np.ceil(axes[0])), int(np.ceil(axes[1]))), 0, 0, 360, 255, -1)
    # the detected box itself is always fully covered, whatever the ellipse does at the frame edge
    bx0, by0, bx1, by1 = np.round(face.box).astype(int)
    mask[max(0, by0 - y0):max(0, by1 - y0), max(0, bx0 - x0):max(0, bx1 - x0)] = 255
    # the colour around the head (the ROI's corners), not the face's own: even the mean colour
    # of a small face is most of what is left of it (skin tone, hair)
    around = roi[mask == 0]
    colour = (around if len(around) >= 8 else roi.reshape(-1, roi.shape[-1])).astype(np.float32).mean(0)
    gh, gw = -(-rh // GRAIN), -(-rw // GRAIN)
    # On small faces even a fine grain is texture a recognizer reads: dlib matched 32-37 px group
    # faces to their grain covers (distance 0.42-0.56) more closely than to a flat fill (0.64).
    strength = GRAIN_NOISE * float(np.clip((face.size - FLAT_BELOW) / (FULL_GRAIN_FROM - FLAT_BELOW), 0.0, 1.0))
    noise = rng.normal(0, 1, (gh, gw))[..., None] * strength + rng.normal(0, 1, (gh, gw, 3)) * (strength / 3)
    grain = np.repeat(np.repeat(noise, GRAIN, axis=0), GRAIN, axis=1)[:rh, :rw]
    fill = np.clip(colour + grain, 0, 255).astype(np.uint8)
    m = (mask > 0)[..., None]
    roi[:] = np.where(m, fill, roi)
