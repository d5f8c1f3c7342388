import numpy as np

from faceskin.library import SkinLibrary, builtin_skins, measure_tone


def test_builtin_skins_load_with_provenance():
    skins = builtin_skins()
    assert len(skins) >= 12
    assert len({s.skin_id for s in skins}) == len(skins)
    assert all(s.source.startswith("synthetic/") for s in skins)


def test_choice_fits_tone_and_never_repeats_within_an_image():
    lib = SkinLibrary(builtin_skins(), seed=1, candidates=1)
    darkest = min(lib.skins, key=lambda s: s.tone[0])
    assert lib.choose(darkest.tone).skin_id == darkest.skin_id
    second = lib.choose(darkest.tone, exclude={darkest.skin_id})
    assert second.skin_id != darkest.skin_id


def test_seeded_choice_is_reproducible():
    a = [SkinLibrary(builtin_skins(), seed=7).choose((60, 10, 15)).skin_id for _ in range(3)]
    assert len(set(a)) == 1


def test_measure_tone_on_real_face(astronaut, astronaut_face):
    L, a, b = measure_tone(astronaut, astronaut_face)
    assert 40 < L < 90 and 0 < a < 35 and 0 < b < 40
