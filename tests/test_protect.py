import numpy as np
import pytest

from faceskin import protect_image
from faceskin.faces import Face
from faceskin.protect import Protector


def test_astronaut_gets_a_skin(astronaut, protector):
    before = astronaut.copy()
    out, report = protector.protect(astronaut)
    assert np.array_equal(astronaut, before), "input array must not be modified"
    assert len(report.faces) == 1
    f = report.faces[0]
    assert f.method == "skin" and f.skin_id
    assert not np.array_equal(out, astronaut)
    # the skinned face is still a face
    assert protector.detector.detect(out)


def test_landmark_failure_falls_back_to_cover(astronaut, protector, monkeypatch):
    monkeypatch.setattr(protector.landmarker, "fit", lambda image, face: False)
    out, report = protector.protect(astronaut)
    assert [f.method for f in report.faces] == ["fallback"]
    assert report.faces[0].reason == "no landmarks"
    x0, y0, x1, y1 = np.round(protector.detector.detect(astronaut)[0].box).astype(int)
    assert (out[y0:y1, x0:x1] != astronaut[y0:y1, x0:x1]).any(2).mean() > 0.97


def test_render_error_falls_back_too(astronaut, protector, monkeypatch):
    import faceskin.protect as p

    def boom(*a, **k):
        raise RuntimeError("simulated")

    monkeypatch.setattr(p, "render_skin", boom)
    out, report = protector.protect(astronaut)
    assert report.faces[0].method == "fallback"
    assert "simulated" in report.faces[0].reason


def test_tiny_face_falls_back(astronaut, protector):
    import cv2

    canvas = np.full((300, 300, 3), 110, np.uint8)
    canvas[100:130, 100:124] = cv2.resize(astronaut[40:200, 160:290], (24, 30), interpolation=cv2.INTER_AREA)
    out, report = protector.protect(canvas)
    assert report.faces and all(f.method == "fallback" for f in report.faces)
    assert "too small" in report.faces[0].reason


def test_no_faces_is_a_plain_no_op(protector):
    img = np.full((200, 300, 3), 90, np.uint8)
    out, report = protector.protect(img)
    assert report.faces == []
    assert np.array_equal(out, img)


def test_two_people_never_share_a_skin(astronaut, protector):
    two = np.ascontiguousarray(np.hstack([astronaut, astronaut[:, ::-1]]))
    out, report = protector.protect(two)
    skins = [f.skin_id for f in report.faces if f.method == "skin"]
    assert len(skins) == 2 and len(set(skins)) == 2


def test_one_call_api(astronaut):
    out, report = protect_image(astronaut)
    assert out.shape == astronaut.shape and report.skinned == 1


def test_skinned_face_no_longer_matches(astronaut, protector):
    recognizers = pytest.importorskip("faceskin.recognizers")
    names = [n for n in ("sface", "dlib") if n in recognizers.available()]
    if not names:
        pytest.skip("no recognizer of the eval extra installed")
    panel = recognizers.load_panel(names)
    face = protector.detector.detect(astronaut)[0]
    out, _ = protector.protect(astronaut)
    new_face = protector.detector.detect(out)[0]
    for r in panel:
        a, b = r.embed(astronaut, face), r.embed(out, new_face)
        assert r.is_match(a, r.embed(astronaut[:, :].copy(), face)), f"{r.name} sanity"
        assert not r.is_match(a, b), f"{r.name} still matches the skinned astronaut"


def test_escalation_strengthens_the_skin_that_hid_the_person_best(astronaut, protector, monkeypatch):
    # a self-check that only the second skin, made stronger, passes: the ladder must find it
    import faceskin.protect as p
    from faceskin.skin import STRONGER

    painted = []
    real_render = p.render_skin

    def render(image, face, skin, settings=None):
        painted.append((skin.skin_id, settings))
        return real_render(image, face, skin, settings)

    class Check:
        limit = 0.3

        def similarity(self, *args):
            skin_id, settings = painted[-1]
            order = list(dict.fromkeys(s for s, _ in painted))
            base = {0: 0.6, 1: 0.4}.get(order.index(skin_id), 0.7)
            return base - (0.15 if settings is STRONGER else 0.0)

    monkeypatch.setattr(p, "render_skin", render)
    monkeypatch.setattr(protector, "check", Check())
    out, report = protector.protect(astronaut)
    face = max(report.faces, key=lambda f: (f.box[2] - f.box[0]))
    second = list(dict.fromkeys(s for s, _ in painted))[1]
    assert face.method == "skin" and face.skin_id == second
    assert painted[-1] == (second, STRONGER)
    assert face.similarity == pytest.approx(0.25)
