"""Face tracker on synthetic trajectories: ids stay with people, misses stay covered."""

from __future__ import annotations

import numpy as np
import pytest

from faceskin.faces import Face
from faceskin.tracking import FaceTracker

SIZE = 60.0


def face_at(cx: float, cy: float, score: float = 0.9, who: str = "", size: float = SIZE) -> Face:
    return Face(box=np.array([cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2]), score=score, source=who)


def jitter(rng: np.random.Generator, amount: float = 2.0) -> tuple[float, float]:
    return tuple(rng.normal(0, amount, 2))


def test_every_face_gets_an_id_whatever_its_score():
    tracker = FaceTracker()
    faces = [face_at(100, 100, score=0.95), face_at(300, 100, score=0.2)]
    tracks = tracker.update(faces)
    assert [f.track_id for f in faces] == [1, 2]
    assert [t.id for t in tracks] == [1, 2]


def test_two_faces_crossing_keep_their_ids():
    """A walks right, B walks left a little lower; at the crossing they overlap heavily."""
    from faceskin.detect import box_iou

    rng = np.random.default_rng(0)
    tracker = FaceTracker()
    ids_a, ids_b, crossing_iou = set(), set(), 0.0
    for i in range(41):
        ax, bx = 40 + 8 * i, 360 - 8 * i
        a = face_at(ax + jitter(rng)[0], 100 + jitter(rng)[1])
        b = face_at(bx + jitter(rng)[0], 112 + jitter(rng)[1])
        crossing_iou = max(crossing_iou, float(box_iou(a.box, b.box)[0, 0]))
        tracker.update([b, a] if i % 2 else [a, b])  # input order must not matter
        ids_a.add(a.track_id)
        ids_b.add(b.track_id)
    assert crossing_iou > 0.5  # they really crossed
    assert len(ids_a) == len(ids_b) == 1 and ids_a != ids_b


def test_crossing_with_the_back_face_hidden_keeps_both_ids():
    """At the crossing the detector sees only the front face for 4 frames."""
    tracker = FaceTracker()
    ids_a, ids_b = [], []
    for i in range(41):
        a = face_at(40 + 8 * i, 100)
        b = face_at(360 - 8 * i, 110)
        hidden = 18 <= i < 22
        tracker.update([a] if hidden else [a, b])
        ids_a.append(a.track_id)
        if not hidden:
            ids_b.append(b.track_id)
    assert len(set(ids_a)) == 1 and len(set(ids_b)) == 1 and ids_a[0] != ids_b[0]


def test_occluded_face_keeps_its_id_and_is_reported_as_predicted_while_missed():
    tracker = FaceTracker(max_missed=8)
    velocity = 4.0
    seen_ids = []
    for i in range(30):
        x = 100 + velocity * i
        if 10 <= i < 15:  # occluded for 5 frames
            tracks = tracker.update([])
            assert len(tracks) == 1
            t = tracks[0]
            assert t.is_missed and t.missed == i - 9 and t.face is None
            # the prediction keeps moving with the face...
            assert abs((t.predicted[0] + t.predicted[2]) / 2 - x) < 3.0
            assert np.array_equal(t.current_box, t.predicted)
            # ...and the cover box contains where the face truly is, and where it was last seen
            cover = t.cover_box()
            truth = face_at(x, 100).box
            assert cover[0] <= truth[0] and cover[1] <= truth[1] and cover[2] >= truth[2] and cover[3] >= truth[3]
            assert cover[0] <= t.box[0] and cover[2] >= t.box[2]
        else:
            f = face_at(x, 100)
            tracks = tracker.update([f])
            seen_ids.append(f.track_id)
            assert tracks[0].missed == 0 and np.array_equal(tracks[0].cover_box(), f.box)
    assert set(seen_ids) == {1}
    assert tracker.tracks[0].hits == 25 and tracker.tracks[0].age == 30


def test_missed_track_is_dropped_after_max_missed():
    tracker = FaceTracker(max_missed=3)
    tracker.update([face_at(100, 100)])
    counts = [len(tracker.update([])) for _ in range(5)]
    assert counts == [1, 1, 1, 0, 0]


def test_face_leaving_and_reentering_gets_a_fresh_id_by_default():
    tracker = FaceTracker(max_missed=5)
    first = [face_at(200 + 10 * i, 100) for i in range(10)]
    for f in first:
        tracker.update([f])
    for _ in range(20):  # out of the picture long enough for the track to expire
        tracker.update([])
    back = face_at(100, 100)
    tracker.update([back])
    assert first[0].track_id == 1 and back.track_id == 2


def test_reid_hook_gives_a_returning_face_its_old_id():
    people = {"alice": np.array([1.0, 0.1, 0.0]), "bob": np.array([0.0, 1.0, 0.2])}
    calls = []

    def embed(face, frame):
        calls.append(face.source)
        return people[face.source]

    tracker = FaceTracker(max_missed=5, reid=embed)
    for i in range(10):
        tracker.update([face_at(200 + 10 * i, 100, who="alice")])
    for _ in range(20):
        tracker.update([])
    bob = face_at(500, 300, who="bob")
    alice = face_at(100, 100, who="alice")
    tracker.update([bob, alice])
    assert alice.track_id == 1 and bob.track_id == 2
    assert calls.count("alice") < 5  # embeddings are not recomputed every frame


def test_distance_fallback_catches_fast_motion_without_overlap():
    """A small face moving 0.7 of its width per frame: IoU with the last box is 0.18."""
    tracker = FaceTracker()
    ids = []
    for i in range(12):
        f = face_at(50 + 14 * i, 100, size=20)
        tracker.update([f])
        ids.append(f.track_id)
    assert set(ids) == {1}


def test_frame_size_ends_tracks_predicted_out_of_the_picture():
    tracker = FaceTracker(max_missed=30)
    for i in range(10):
        tracker.update([face_at(560 + 10 * i, 100)], frame_size=(640, 480))
    alive = [len(tracker.update([], frame_size=(640, 480))) for _ in range(20)]
    assert alive[0] == 1 and alive[-1] == 0


def test_variable_dt_scales_the_prediction():
    tracker = FaceTracker()
    for i in range(10):
        tracker.update([face_at(100 + 5 * i, 100)])
    (t,) = tracker.update([], dt=3.0)  # a frame three nominal intervals later
    assert (t.predicted[0] + t.predicted[2]) / 2 == pytest.approx(145 + 15, abs=2.0)
