import numpy as np

from faceskin.mesh import canonical_mesh


def test_canonical_mesh_topology():
    m = canonical_mesh()
    assert m.vertices.shape == (468, 3)
    assert m.uv.shape == (468, 2)
    assert m.triangles.shape == (898, 3)
    assert m.triangles.min() == 0 and m.triangles.max() == 467
    assert (m.uv >= 0).all() and (m.uv <= 1).all()


def test_uv_layout_is_upright_and_mirror_symmetric():
    m = canonical_mesh()
    assert m.uv[10, 1] < m.uv[1, 1] < m.uv[152, 1], "forehead above nose tip above chin"
    mirrored = m.uv.copy()
    mirrored[:, 0] = 1 - mirrored[:, 0]
    d = np.linalg.norm(m.uv[:, None] - mirrored[None], axis=2).min(1)
    assert d.max() < 0.01
