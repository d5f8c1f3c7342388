import numpy as np
import pytest

from faceskin.fallback import GRAIN, cover_face, head_region


def test_cover_hides_the_whole_head(astronaut, astronaut_face):
    out = astronaut.copy()
    cover_face(out, astronaut_face, np.random.default_rng(0))
    x0, y0, x1, y1 = np.round(astronaut_face.box).astype(int)
    # every pixel of the detected box is replaced, by a fine grain and not by blocks the size of a feature
    assert (np.abs(out[y0:y1, x0:x1].astype(int) - astronaut[y0:y1, x0:x1]).max(2) > 0).mean() > 0.97
    row = out[(y0 + y1) // 2, x0:x1].astype(int)
    assert np.count_nonzero(np.abs(np.diff(row, axis=0)).max(1)) >= (x1 - x0) / GRAIN - 3
    # the cover reaches above the brows towards the hairline
    centre, axes = head_region(astronaut_face)
    assert centre[1] - axes[1] < y0


def test_cover_leaves_far_pixels_alone(astronaut, astronaut_face):
    out = astronaut.copy()
    cover_face(out, astronaut_face)
    assert np.array_equal(out[400:, :100], astronaut[400:, :100])


def test_cover_at_the_image_edge_does_not_crash(astronaut, detector):
    crop = np.ascontiguousarray(astronaut[60:, 200:])  # face cut by the left and top borders
    faces = detector.detect(crop)
    assert faces
    out = crop.copy()
    for f in faces:
        cover_face(out, f)
    x0, y0, x1, y1 = np.round(faces[0].box).astype(int)
    assert (out[y0:y1, x0:x1] != crop[y0:y1, x0:x1]).any(2).mean() > 0.95


@pytest.mark.parametrize("side", [128, 512])
def test_the_cover_keeps_nothing_of_the_face_layout(astronaut, detector, side):
    # a mosaic keeps the face's layout (dark eyes and hair, light cheeks) at the scale a recognizer
    # sees it, at any face size; the cover must carry nothing of the face but noise around the
    # colour of its surroundings
    import cv2

    img = np.ascontiguousarray(cv2.resize(astronaut, (side, side), interpolation=cv2.INTER_AREA))
    face = max(detector.detect(img), key=lambda f: f.size)
    x0, y0, x1, y1 = np.round(face.box).astype(int)
    orig = img[y0:y1, x0:x1].astype(float).mean(2)
    layout, level = [], []
    for seed in range(8):
        out = img.copy()
        cover_face(out, face, np.random.default_rng(seed))
        covered = out[y0:y1, x0:x1].astype(float).mean(2)
        layout.append(np.corrcoef(orig.ravel(), covered.ravel())[0, 1])
        # coarse layout: the cover blurred to 5 blocks across is one level (the grain averages out)
        coarse = cv2.resize(covered, (5, 5), interpolation=cv2.INTER_AREA)
        level.append(coarse.std())
    assert abs(np.mean(layout)) < 0.15  # noise only: no correlation with the face left
    assert np.mean(level) < 8.0 and orig.std() > 30  # a 5-block mosaic with block noise: ~16 and more


def test_small_faces_get_a_flat_fill_large_ones_a_grain():
    # a grain on a small face is texture at feature scale for a recognizer: below FLAT_BELOW the
    # cover is flat, from FULL_GRAIN_FROM on it has the full grain
    from faceskin.faces import Face
    from faceskin.fallback import FLAT_BELOW, FULL_GRAIN_FROM, GRAIN_NOISE, cover_face

    for size, expect in ((FLAT_BELOW - 10, (0.0, 1.0)), (FULL_GRAIN_FROM + 20, (0.7 * GRAIN_NOISE, 1.3 * GRAIN_NOISE))):
        img = np.full((400, 400, 3), 100, np.uint8)
        c = 200
        cover_face(img, Face(box=np.array([c - size / 2, c - size / 2, c + size / 2, c + size / 2]), score=1.0),
                   np.random.default_rng(0))
        inner = img[int(c - size / 4):int(c + size / 4), int(c - size / 4):int(c + size / 4)].astype(float).mean(2)
        assert expect[0] <= inner.std() <= expect[1], (size, inner.std())


def test_skins_under_covers_reach_a_fixed_point():
    """A, B, C in a row, C covered: C's cover reaches over more than half of B, so B is covered;
    B's cover then reaches over more than half of A (C's over only a part), so A is covered too.
    D, far off, keeps its skin, and with C's cover gone nothing is taken off."""
    from faceskin.faces import Face
    from faceskin.fallback import covered_share, skins_under_covers

    box = lambda x: Face(box=np.array([x, 100, x + 60, 160], np.float64), score=0.9)  # noqa: E731
    a, b, c, d = box(60), box(100), box(120), box(400)
    assert covered_share(a, [c]) <= 0.5 < covered_share(a, [b])
    assert skins_under_covers({"a": a, "b": b, "d": d}, [c]) == {"a", "b"}
    assert skins_under_covers({"a": a, "b": b, "d": d}, []) == set()
    assert skins_under_covers({"d": d}, [c]) == set()
