import numpy as np

from faceskin.fallback import cover_face, head_region


def test_cover_hides_the_whole_head(astronaut, astronaut_face):
    out = astronaut.copy()
    cover_face(out, astronaut_face, np.random.default_rng(0))
    x0, y0, x1, y1 = np.round(astronaut_face.box).astype(int)
    # every pixel of the detected box is replaced by coarse blocks
    assert (np.abs(out[y0:y1, x0:x1].astype(int) - astronaut[y0:y1, x0:x1]).max(2) > 0).mean() > 0.97
    block = astronaut_face.width / 5
    row = out[(y0 + y1) // 2, x0:x1].astype(int)
    assert np.count_nonzero(np.abs(np.diff(row, axis=0)).max(1)) <= (x1 - x0) / block + 3
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


def test_small_faces_get_a_flat_fill_not_a_mosaic(astronaut, detector):
    # a mosaic of a small face keeps its layout (dark eyes, light cheeks) at the scale a
    # recognizer sees it; the small-face cover must carry nothing of the face but its colour
    import cv2

    from faceskin.fallback import FLAT_BELOW

    small = np.ascontiguousarray(cv2.resize(astronaut, (128, 128), interpolation=cv2.INTER_AREA))
    face = max(detector.detect(small), key=lambda f: f.size)
    assert face.width < FLAT_BELOW
    x0, y0, x1, y1 = np.round(face.box).astype(int)
    orig = small[y0:y1, x0:x1].astype(float).mean(2)
    layout = []
    for seed in range(8):
        out = small.copy()
        cover_face(out, face, np.random.default_rng(seed))
        covered = out[y0:y1, x0:x1].astype(float).mean(2)
        layout.append(np.corrcoef(orig.ravel(), covered.ravel())[0, 1])
    assert abs(np.mean(layout)) < 0.15  # noise only: no correlation with the face left
