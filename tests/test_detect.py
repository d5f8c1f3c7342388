import cv2
import numpy as np
import pytest

from faceskin.detect import FaceDetector, box_iou, merge_faces
from faceskin.faces import Face

ASTRONAUT_FACE = np.array([178, 57, 273, 177])  # measured once; RetinaFace box on the astronaut


def test_finds_the_astronaut(astronaut, detector):
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    assert box_iou(faces[0].box, ASTRONAUT_FACE)[0, 0] > 0.7
    kp = faces[0].keypoints
    assert kp.shape == (5, 2)
    assert kp[0, 0] < kp[1, 0], "keypoint 0 is the eye on the image left"
    assert kp[:2, 1].mean() < kp[2, 1] < kp[3:, 1].mean(), "eyes above nose above mouth"


@pytest.mark.parametrize("k", [1, 2, 3])
def test_rotated_faces_map_back_to_the_rotated_image(astronaut, detector, k):
    rotated = np.ascontiguousarray(np.rot90(astronaut, k))
    faces = detector.detect(rotated)
    assert len(faces) == 1
    # the same face box, rotated the same way
    h, w = astronaut.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    x0, y0, x1, y1 = ASTRONAUT_FACE
    mask[y0:y1, x0:x1] = 1
    ys, xs = np.nonzero(np.rot90(mask, k))
    expected = np.array([xs.min(), ys.min(), xs.max(), ys.max()])
    assert box_iou(faces[0].box, expected)[0, 0] > 0.6


def test_small_face_is_found(astronaut):
    face = astronaut[40:200, 160:290]
    canvas = np.full((480, 640, 3), 120, np.uint8)
    small = cv2.resize(face, (26, 32), interpolation=cv2.INTER_AREA)  # ~20 px face
    canvas[200:232, 300:326] = small
    faces = FaceDetector(rotations=(0,)).detect(canvas)
    assert faces, "a ~20 px face must be detected"
    assert box_iou(faces[0].box, np.array([300, 200, 326, 232]))[0, 0] > 0.2


def test_no_faces_in_plain_image():
    rng = np.random.default_rng(0)
    img = (rng.random((240, 320, 3)) * 30 + 100).astype(np.uint8)
    assert FaceDetector().detect(img) == []


def test_merge_collapses_nested_boxes_on_one_head():
    tight = Face(box=np.array([100, 100, 200, 220.0]), score=0.99)
    loose = Face(box=np.array([80, 60, 230, 240.0]), score=0.9)  # IoU < 0.5 but contains the tight box
    other = Face(box=np.array([400, 100, 500, 220.0]), score=0.8)
    kept = merge_faces([loose, tight, other])
    assert [f.score for f in kept] == [0.99, 0.8]


@pytest.mark.parametrize("scale, within", [(0.15, 0.03), (0.2, 0.02), (0.3, 0.02), (0.5, 0.02)])
def test_find_again_brings_the_face_to_one_scale(astronaut, detector, scale, within):
    """find_again (the self-check's attacker-style look) detects on its crop resized so the face is
    ~145 px: on the astronaut shrunk to an 18-60 px face it finds the face and puts the five points
    within 2 % of the face size of where they are at full size (3 % at 18 px). At native size it missed the 18 px
    face and was off by 3-4 % at 24 and 60 px, which moves SFace on a skin by several hundredths."""
    from faceskin.detect import find_again

    (full,) = [f for f in detector.retina.detect(astronaut) if f.score > 0.6]
    small = cv2.resize(astronaut, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640, 3), 120, np.uint8)
    canvas[: small.shape[0], : small.shape[1]] = small
    found = find_again(detector.retina, canvas, full.box * scale)
    assert found is not None, f"a {full.size * scale:.0f} px face is not found again"
    error = np.abs(found.keypoints - full.keypoints * scale).mean() / (full.size * scale)
    assert error < within, error
