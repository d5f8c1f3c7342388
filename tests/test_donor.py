import numpy as np

from faceskin.donor import Donor, UV_SIZE, build_donor, to_lab
from faceskin.library import builtin_skins


def test_donor_from_a_real_face_round_trips(astronaut, astronaut_face):
    d = build_donor(astronaut, astronaut_face, skin_id="astro")
    assert d.texture.shape == (UV_SIZE, UV_SIZE, 3)
    assert d.fill_fraction < 0.3
    back = Donor.from_bytes(d.to_bytes())
    assert back.skin_id == "astro"
    assert np.abs(back.texture.astype(int) - d.texture.astype(int)).mean() < 3  # JPEG q95
    np.testing.assert_allclose(back.landmarks, d.landmarks, atol=1e-3)


def test_donor_forehead_is_skin_not_hair(astronaut, astronaut_face):
    # the astronaut's hair comes down over the temples; the cleaned texture must not carry it
    d = build_donor(astronaut, astronaut_face)
    lab = to_lab(d.texture)
    s = UV_SIZE
    forehead = lab[int(0.14 * s):int(0.22 * s), int(0.3 * s):int(0.7 * s)].reshape(-1, 3)
    assert np.abs(np.median(forehead[:, 0]) - d.tone[0]) < 15
    assert np.percentile(forehead[:, 0], 5) > d.tone[0] - 25, "no dark hair patches on the forehead"


def test_detail_layer_has_no_low_frequency_lighting():
    d = builtin_skins()[0]
    det = d.detail()
    s = det.shape[0]
    centre = det[s // 4: 3 * s // 4, s // 4: 3 * s // 4, 0]
    assert abs(float(centre.mean())) < 3.0
    assert float(centre.std()) > 1.0, "but it does carry texture"
