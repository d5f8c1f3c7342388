"""Triangle rasterisation into per-pixel triangle ids and barycentric weights.

Rendering the skin as one dense lookup (triangle id + barycentrics -> texture
coordinate -> ``cv2.remap``) is an order of magnitude faster in Python than
warping 898 triangles one by one, and gives the same map for the geometric
warp of the person's own eyes and mouth.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Raster:
    tri: np.ndarray  # (H, W) int32, -1 where no triangle covers the pixel
    bary: np.ndarray  # (H, W, 3) float32 barycentric weights (valid where tri >= 0)
    origin: tuple[int, int]  # (x0, y0) of this raster in image pixels

    @property
    def mask(self) -> np.ndarray:
        return self.tri >= 0

    def interpolate(self, values: np.ndarray, triangles: np.ndarray) -> np.ndarray:
        """Per-pixel interpolation of per-vertex ``values`` (V, C); zeros outside the mesh."""
        h, w = self.tri.shape
        out = np.zeros((h, w, values.shape[1]), np.float32)
        m = self.mask
        t = triangles[self.tri[m]]  # (P, 3)
        b = self.bary[m]  # (P, 3)
        out[m] = np.einsum("pk,pkc->pc", b, values[t].astype(np.float32))
        return out


def rasterize(
    points: np.ndarray,
    triangles: np.ndarray,
    size: tuple[int, int],
    origin: tuple[int, int] = (0, 0),
    depth: np.ndarray | None = None,
    visible: np.ndarray | None = None,
) -> Raster:
    """Rasterise 2-D triangles into a (h, w) = ``size`` window whose top-left is ``origin``.

    ``depth`` (per vertex, larger = farther) orders triangles far to near, so
    near triangles win where a turned head folds the mesh over itself.
    ``visible`` (per triangle, bool) drops back faces, so the far side of a
    turned face is never smeared over the near side.
    """
    h, w = size
    pts = np.asarray(points[:, :2], np.float64) - np.asarray(origin, np.float64)
    tri_pts = pts[triangles]  # (T, 3, 2)
    e1 = tri_pts[:, 1] - tri_pts[:, 0]
    e2 = tri_pts[:, 2] - tri_pts[:, 0]
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    keep = np.abs(area) > 1e-9
    if visible is not None:
        keep &= np.asarray(visible, bool)
    order = np.nonzero(keep)[0]
    if depth is not None:
        d = np.asarray(depth)[triangles[order]].mean(1)
        order = order[np.argsort(-d, kind="stable")]
    # Triangle ids go into a 32-bit image (id + 1, 0 = empty); fixed-point coordinates
    # (shift=4) keep sub-pixel accuracy without anti-aliasing that would blend ids.
    ids = np.zeros((h, w), np.int32)
    fp = np.round(tri_pts * 16).astype(np.int32)
    for t in order:
        cv2.fillConvexPoly(ids, fp[t], int(t) + 1, lineType=cv2.LINE_8, shift=4)
    tri = ids - 1
    bary = np.zeros((h, w, 3), np.float32)
    m = tri >= 0
    if m.any():
        ys, xs = np.nonzero(m)
        t = tri[m]
        p = np.stack([xs + 0.0, ys + 0.0], 1)
        a, b, c = tri_pts[t, 0], tri_pts[t, 1], tri_pts[t, 2]
        v0, v1, v2 = b - a, c - a, p - a
        den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
        den = np.where(np.abs(den) < 1e-12, 1e-12, den)
        l1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
        l2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
        l0 = 1.0 - l1 - l2
        # no clipping: a pixel the scan converter gives to a triangle may lie a hair outside it,
        # and affine extrapolation is exactly right there, where clipping would shift it
        bary[m] = np.stack([l0, l1, l2], 1)
    return Raster(tri=tri, bary=bary, origin=origin)
