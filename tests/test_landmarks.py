import numpy as np
import pytest

from faceskin.faces import Face
from faceskin.landmarks import head_angles


def test_landmarks_sit_on_the_face(astronaut_face):
    f = astronaut_face
    assert f.landmarks.shape == (478, 3)
    x0, y0, x1, y1 = f.box
    inner = f.landmarks[[1, 33, 263, 13], :2]  # nose tip, eye corners, lip centre
    assert ((inner[:, 0] > x0) & (inner[:, 0] < x1) & (inner[:, 1] > y0) & (inner[:, 1] < y1)).all()
    assert f.landmarks[33, 0] < f.landmarks[263, 0], "subject's right eye is on the image left"
    assert set(["jawOpen", "eyeBlinkLeft", "mouthSmileLeft"]) <= set(f.blendshapes)
    assert f.blendshapes["mouthSmileLeft"] > 0.3, "the astronaut is smiling"
    yaw, pitch, roll = head_angles(f)
    assert abs(yaw) < 20 and abs(roll) < 15


@pytest.mark.parametrize("k", [1, 2])
def test_landmarks_follow_a_rotated_face(astronaut, astronaut_face, detector, landmarker, k):
    rotated = np.ascontiguousarray(np.rot90(astronaut, k))
    face = max(detector.detect(rotated), key=lambda f: f.size)
    assert landmarker.fit(rotated, face)
    h, w = astronaut.shape[:2]
    # map the upright fit into the rotated frame and compare
    x, y = astronaut_face.landmarks[:, 0], astronaut_face.landmarks[:, 1]
    expected = np.stack([y, w - x], 1) if k == 1 else np.stack([w - x, h - y], 1)
    err = np.linalg.norm(face.landmarks[:, :2] - expected, axis=1)
    assert np.median(err) < 0.03 * astronaut_face.size


def test_fit_fails_cleanly_without_a_face(landmarker):
    blank = np.full((300, 300, 3), 128, np.uint8)
    face = Face(box=np.array([100.0, 100, 200, 200]), score=0.9)
    assert landmarker.fit(blank, face) is False
    assert face.landmarks is None
