import numpy as np
import pytest

from conftest import shared_data_or_skip
from faceskin.donor import to_lab
from faceskin.skinmodel import (
    DETAIL_NEIGHBOURS,
    MAX_DETAIL_WEIGHT,
    TrainingFace,
    capped_weights,
    default_model,
    fit,
    frontalize,
    high_pass,
    mesh_mask,
    mirror_shape,
    portrait,
    skin_attributes,
    texture_tone,
)


@pytest.fixture(scope="module")
def model():
    return default_model()


@pytest.fixture(scope="module")
def samples(model):
    return [model.sample(s) for s in (11, 12, 13)]


def test_a_seed_names_one_skin(model, samples):
    again = model.sample(11)
    assert np.array_equal(again.texture, samples[0].texture)
    assert np.array_equal(again.landmarks, samples[0].landmarks)
    a, b = samples[0], samples[1]
    assert np.abs(a.texture.astype(int) - b.texture.astype(int)).mean() > 3
    assert np.abs(a.landmarks - b.landmarks).mean() > 1


def test_samples_are_far_from_every_training_face_in_model_space(model, samples):
    # the nearest training face is farther than most training faces are from their own nearest neighbour
    floor = 0.6 * np.median(model.nearest_training)
    for s in samples:
        assert model.nearest_training_distance(s.z) >= floor


def test_detail_is_a_capped_blend_of_several_training_faces(model, samples):
    for s in samples:
        faces = [f for f, _, _ in s.detail_from]
        weights = np.array([w for _, _, w in s.detail_from])
        assert len(set(faces)) == len(faces) == DETAIL_NEIGHBOURS
        assert weights.max() <= MAX_DETAIL_WEIGHT + 1e-9
        assert abs(weights.sum() - 1) < 1e-9


def test_capped_weights_spread_the_excess():
    w = capped_weights(np.array([10.0, 1, 1, 1, 1]), 0.3)
    assert abs(w.sum() - 1) < 1e-12 and w.max() <= 0.3 + 1e-12
    assert np.all(np.diff(w[1:]) == 0)
    with pytest.raises(ValueError):
        capped_weights(np.ones(2), 0.3)


def test_samples_are_sharp_not_blurry(model, samples):
    """Fine texture (finer than the PCA grid) is as strong as a typical training face's."""
    mask = mesh_mask(samples[0].texture.shape[0], 0)
    stored = [model.detail_layer(i, False) for i in range(0, model.n_training, 15)]
    typical = np.median([np.sqrt(np.mean(d[m > 0.9] ** 2)) for d, m in stored])
    for s in samples:
        fine = high_pass(to_lab(s.texture)[..., 0])
        assert np.sqrt(np.mean(fine[mask] ** 2)) > 0.6 * typical


def test_skin_tones_are_plausible(model, samples):
    for s in samples:
        L, a, b = s.tone
        assert 15 < L < 90
        assert model.plausible_tone((L, a, b))


def test_portrait_shows_a_detectable_face_at_the_returned_keypoints(samples, detector):
    img, kp = portrait(samples[0].texture, samples[0].landmarks, 256)
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    faces = detector.detect(img)
    assert faces, "the portrait must look like a face to the detector"
    best = max(faces, key=lambda f: f.size)
    assert np.abs(best.keypoints - kp).max() < 0.1 * 256
    assert kp[0, 0] < kp[1, 0] and kp[3, 0] < kp[4, 0]  # image-left eye and mouth corner first


def test_frontalize_removes_pose_and_mirror_is_an_involution(samples):
    lm = samples[0].landmarks
    angle = np.radians(20)
    rot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    turned = 0.5 * lm @ rot.T + np.array([300.0, 200.0, 10.0])
    np.testing.assert_allclose(frontalize(turned), frontalize(lm), atol=1e-6)
    f = frontalize(lm)
    np.testing.assert_allclose(mirror_shape(mirror_shape(f)), f, atol=1e-9)


def test_attributes_are_measured(samples):
    attrs = skin_attributes(samples[0].texture, samples[0].landmarks)
    assert attrs["L"] == pytest.approx(texture_tone(samples[0].texture)[0])
    assert 0.6 < attrs["width_ratio"] < 1.3
    assert attrs["fine_detail"] > 0


def test_fit_recovers_its_training_faces(model):
    """A model fitted on 10 faces reproduces them (texture and shape) from their coefficients."""
    faces = []
    for seed in range(10):
        s = model.sample(100 + seed)
        lm = s.landmarks * 1.3 + np.array([400.0, 380.0, 0.0])  # training landmarks are in image pixels
        faces.append(TrainingFace(name=f"f{seed}", texture=s.texture, landmarks=lm))
    small = fit(faces, keep=0.9999)
    assert small.n_training == 10
    z = small.train_z[3]
    lab = to_lab(small.texture(z))
    want = to_lab(faces[3].texture)
    mask = mesh_mask(lab.shape[0], 0)
    # low-resolution PCA plus its own (capped) detail: close, not identical
    assert np.abs(lab[..., 1:] - want[..., 1:])[mask].mean() < 2.0
    assert np.abs(lab[..., 0] - want[..., 0])[mask].mean() < 4.0
    shape = small.shape(z)
    np.testing.assert_allclose(frontalize(shape), frontalize(faces[3].landmarks), atol=0.5)


def test_samples_copy_no_training_face(model, samples, detector, landmarker):
    """Pixels and a recognizer: each sample against the training photos nearest to it in model space."""
    from PIL import Image

    from faceskin.donor import build_donor
    from faceskin.faces import Face
    from faceskin.identity_check import IdentityCheck

    data = shared_data_or_skip()
    check = IdentityCheck()
    for s in samples[:2]:
        d = np.linalg.norm(model.train_z[: model.n_training] - s.z, axis=1)
        for i in np.argsort(d)[:2]:
            photo = np.array(Image.open(data / "synthetic" / model.train_names[i]).convert("RGB"))
            face = max(detector.detect(photo), key=lambda f: f.size)
            assert landmarker.fit(photo, face)
            train = build_donor(photo, face)
            mask = mesh_mask(s.texture.shape[0], 0)
            diff = np.linalg.norm(to_lab(s.texture) - to_lab(train.texture), axis=-1)[mask]
            assert np.median(diff) > 5.0, "texture too close to a training face"
            img, kp = portrait(s.texture, s.landmarks, 256)
            sim = float(check.embed(img, kp) @ check.embed(photo, face.keypoints))
            assert sim < 0.363, f"sample matches training face {model.train_names[i]} (SFace {sim:.2f})"
            assert isinstance(face, Face)
