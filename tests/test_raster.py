import numpy as np

from faceskin.raster import rasterize


def test_two_triangles_cover_a_square_and_interpolate_exactly():
    pts = np.array([[2.0, 2.0], [12.0, 2.0], [12.0, 12.0], [2.0, 12.0]])
    tris = np.array([[0, 1, 2], [0, 2, 3]])
    r = rasterize(pts, tris, (16, 16))
    assert r.mask[3:12, 3:12].all()
    assert not r.mask[0:2].any() and not r.mask[:, 14:].any()
    # interpolating the vertex positions gives back each pixel's own position
    xy = r.interpolate(pts, tris)
    ys, xs = np.nonzero(r.mask)
    assert np.abs(xy[ys, xs, 0] - xs).max() < 1e-3
    assert np.abs(xy[ys, xs, 1] - ys).max() < 1e-3


def test_depth_order_and_culling():
    pts = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    tris = np.array([[0, 1, 2], [3, 4, 5]])
    depth = np.array([5, 5, 5, 1, 1, 1.0])  # triangle 1 is nearer
    r = rasterize(pts, tris, (12, 12), depth=depth)
    assert (r.tri[r.mask] == 1).all()
    r = rasterize(pts, tris, (12, 12), depth=depth, visible=np.array([True, False]))
    assert (r.tri[r.mask] == 0).all()
