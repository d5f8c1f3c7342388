"""The fail-closed cover for faces a skin cannot protect well.

Used for tiny faces, extreme poses, landmark failures and any render error.
It covers the whole head region (face box grown up to the hairline and out to
the ears), pixelates it to a handful of blocks and adds noise, so neither a
recogniser nor a de-pixelation model has enough signal to work with.
"""

from __future__ import annotations

import cv2
import numpy as np

from faceskin.faces import Face

BLOCKS_ACROSS = 5  # pixel blocks across the face width: far below what recognisers need
# Below this face width (px) the cover is the surroundings' colour plus noise, no mosaic: on
# the shared group clip a 5-block mosaic of 24-38 px faces was still matched by ArcFace, SFace
# or FaceNet in 27 of 72 faces (2 blocks: 7; a flat fill: 1). At that size a mosaic block is
# a few pixels, close to the face's own resolution, so it keeps the layout recognisers use.
FLAT_BELOW = 64.0


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


def cover_face(image: np.ndarray, face: Face, rng: np.random.Generator | None = None, margin: float = 0.0) -> None:
    """Pixelate (small faces: fill) and noise the head region of ``face`` in ``image`` (in place)."""
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
    block = max(2.0, face.width / BLOCKS_ACROSS)
    bw, bh = max(1, int(round(rw / block))), max(1, int(round(rh / block)))
    small = cv2.resize(roi, (bw, bh), interpolation=cv2.INTER_AREA).astype(np.float32)
    mask = np.zeros((rh, rw), np.uint8)
    cv2.ellipse(mask, (int(round(centre[0] - x0)), int(round(centre[1] - y0))),
                (int(np.ceil(axes[0])), int(np.ceil(axes[1]))), 0, 0, 360, 255, -1)
    if face.width < FLAT_BELOW:
        # the colour around the head (the ROI's corners), not the face's own: even the mean
        # colour of a face this small is most of what is left of it (skin tone, hair)
        around = roi[mask == 0]
        small[:] = (around if len(around) >= 8 else roi.reshape(-1, roi.shape[-1])).mean(0)
    # mostly luminance noise (looks like a deliberate mosaic, not confetti), a little colour noise
    small += rng.normal(0, 16, small.shape[:2])[..., None] + rng.normal(0, 5, small.shape)
    pix = cv2.resize(np.clip(small, 0, 255).astype(np.uint8), (rw, rh), interpolation=cv2.INTER_NEAREST)
    # the detected box itself is always fully covered, whatever the ellipse does at the frame edge
    bx0, by0, bx1, by1 = np.round(face.box).astype(int)
    mask[max(0, by0 - y0):max(0, by1 - y0), max(0, bx0 - x0):max(0, bx1 - x0)] = 255
    m = (mask > 0)[..., None]
    roi[:] = np.where(m, pix, roi)
