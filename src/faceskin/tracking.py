"""Multi-face tracking across video frames: stable ids and coverage through detector misses.

Why tracks at all: per-frame detection flickers. A face the detector misses for
two frames would otherwise reach the output unprotected for two frames, and the
skin would restart (new donor, new smoothing state) every time it comes back.
A track carries the face through short misses and gives every stage a stable id
to hang per-person state on.

Why our own ByteTrack-style tracker rather than ``supervision.ByteTrack``:

* supervision requires ``opencv-python``, the second OpenCV this project must
  not install (it would shadow mediapipe's ``opencv-contrib-python``).
* Its ByteTrack returns only the tracks matched in the current frame. Fail
  closed needs the opposite: tracks that were *missed* must still be reported,
  with a predicted box, so the pipeline covers them (``Track.cover_box``).
* It drops detections that start no track (low score, or unconfirmed); here
  every face handed in gets a ``track_id``, because every detected face is
  protected whatever its score.
* Faces per frame are few (<~50): greedy IoU matching on Kalman-predicted boxes
  is as good as Hungarian here and needs no scipy/lap dependency.

Algorithm (ByteTrack's two-stage association plus a distance fallback):

1. Every live track predicts its box for this frame with a constant-velocity
   Kalman filter over (cx, cy, w, h) whose noise scales with face size.
2. High-score faces are matched to all tracks by IoU (greedy, best first).
3. Low-score faces are matched to the tracks still free, at a stricter IoU:
   a weak detection is trusted only where a track already expects a face.
4. Faces still free are matched to free tracks whose predicted centre lies
   within ``max_center_shift`` face sizes: fast motion at low frame rates can
   leave zero overlap between prediction and detection.
5. Remaining faces start new tracks (possibly re-identified, below); tracks
   not matched count a miss and stay reported until ``max_missed`` misses.

Re-identification policy (a face leaving and re-entering): by default a face
that comes back after its track expired gets a **fresh id**; the lead decides
what skin a fresh id gets. A ``reid`` hook can be given: a function
``(face, frame) -> embedding | None``. It is called for faces about to start a
track and, every ``reid_refresh`` hits, for a track's own face. A new face
whose embedding matches (cosine >= ``reid_threshold``) a track that expired
within ``reid_memory`` frames, or a live track that is currently missed, takes
over that id instead of a new one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from faceskin.detect import box_iou
from faceskin.faces import Face

Embedder = Callable[[Face, np.ndarray | None], np.ndarray | None]


def _box_to_state(box: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64)
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0])


def _state_to_box(z: np.ndarray) -> np.ndarray:
    cx, cy, w, h = z[:4]
    w, h = max(w, 1.0), max(h, 1.0)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


class _BoxKalman:
    """Constant-velocity Kalman filter over (cx, cy, w, h) and their velocities.

    Noise is proportional to the face's size (as in ByteTrack/DeepSORT), so the
    same settings track a 20 px face and a 500 px face; ``dt`` is in frames.
    """

    POSITION_WEIGHT = 1.0 / 20
    VELOCITY_WEIGHT = 1.0 / 160

    def __init__(self, box: np.ndarray) -> None:
        z = _box_to_state(box)
        self.mean = np.concatenate([z, np.zeros(4)])
        s = max(z[2], z[3])
        std = np.array([2 * self.POSITION_WEIGHT * s] * 4 + [10 * self.VELOCITY_WEIGHT * s] * 4)
        self.cov = np.diag(std**2)

    def predict(self, dt: float = 1.0) -> np.ndarray:
        F = np.eye(8)
        F[:4, 4:] = dt * np.eye(4)
        s = max(self.mean[2], self.mean[3], 1.0)
        q = np.array([self.POSITION_WEIGHT * s] * 4 + [self.VELOCITY_WEIGHT * s] * 4) * max(dt, 1e-3)
        self.mean = F @ self.mean
        self.cov = F @ self.cov @ F.T + np.diag(q**2)
        return _state_to_box(self.mean)

    def update(self, box: np.ndarray) -> None:
        z = _box_to_state(box)
        s = max(z[2], z[3], 1.0)
        R = np.diag(np.full(4, self.POSITION_WEIGHT * s) ** 2)
        H = np.hstack([np.eye(4), np.zeros((4, 4))])
        S = H @ self.cov @ H.T + R
        K = np.linalg.solve(S, H @ self.cov).T
        self.mean = self.mean + K @ (z - H @ self.mean)
        self.cov = (np.eye(8) - K @ H) @ self.cov

    def position_std(self) -> np.ndarray:
        """Standard deviation of (cx, cy, w, h): how unsure the prediction is."""
        return np.sqrt(np.diag(self.cov)[:4])


@dataclass
class Track:
    """One person's face over time, as the pipeline sees it in the current frame.

    ``box`` is the last detected box; ``predicted`` the Kalman prediction for the
    current frame (made before this frame's detections were matched);
    ``missed`` counts frames since the face was last detected (0 = detected
    now, then ``face`` is that detection); ``age`` counts frames since the track
    began, ``hits`` the frames it was detected in.
    """

    id: int
    box: np.ndarray
    predicted: np.ndarray
    missed: int = 0
    age: int = 1
    hits: int = 1
    face: Face | None = None
    embedding: np.ndarray | None = None
    _kalman: _BoxKalman = field(repr=False, default=None)  # type: ignore[assignment]

    @property
    def is_missed(self) -> bool:
        return self.missed > 0

    @property
    def current_box(self) -> np.ndarray:
        """Where the face is this frame: the detection if any, else the prediction."""
        return self.box if self.missed == 0 else self.predicted

    def cover_box(self, k: float = 2.0) -> np.ndarray:
        """A box that should contain the face even when it was not detected (fail closed).

        For a detected face it is the detection. For a missed one it is the union
        of the last detected box (the face may have stopped) and the prediction
        grown by ``k`` standard deviations of the filter's uncertainty (it may
        have kept moving); the uncertainty grows with every missed frame.
        """
        if self.missed == 0:
            return self.box.copy()
        sx, sy, sw, sh = self._kalman.position_std()
        grown = self.predicted + k * np.array([-(sx + sw / 2), -(sy + sh / 2), sx + sw / 2, sy + sh / 2])
        return np.concatenate([np.minimum(grown[:2], self.box[:2]), np.maximum(grown[2:], self.box[2:])])


def _greedy_match(score: np.ndarray, threshold: float, higher_is_better: bool = True) -> list[tuple[int, int]]:
    """Pairs (row, col) taken best-first while both are free and the score passes."""
    if score.size == 0:
        return []
    flat = np.argsort(-score if higher_is_better else score, axis=None, kind="stable")
    rows, cols = np.unravel_index(flat, score.shape)
    used_r, used_c, pairs = set(), set(), []
    for r, c in zip(rows.tolist(), cols.tolist()):
        value = score[r, c]
        if (value < threshold) if higher_is_better else (value > threshold):
            break
        if r in used_r or c in used_c:
            continue
        used_r.add(r)
        used_c.add(c)
        pairs.append((r, c))
    return pairs


def _unit(v: np.ndarray | None) -> np.ndarray | None:
    if v is None:
        return None
    v = np.asarray(v, dtype=np.float64).ravel()
    n = np.linalg.norm(v)
    return v / n if n > 0 else None


class FaceTracker:
    """Assigns ``track_id`` to faces frame by frame; see the module docstring for the method.

    ``max_missed``: frames a track survives undetected (reported with a
    prediction all that time). ``high_score``: detections at or above it match
    first and against every track. ``match_iou`` / ``low_score_iou``: minimum
    IoU with a predicted box for high / low score faces. ``max_center_shift``:
    the distance fallback's gate, in face sizes. ``min_hits``: detections
    before :meth:`is_confirmed` says a track is more than a one-off.
    """

    def __init__(
        self,
        max_missed: int = 15,
        *,
        high_score: float = 0.6,
        match_iou: float = 0.2,
        low_score_iou: float = 0.5,
        max_center_shift: float = 0.75,
        min_hits: int = 2,
        reid: Embedder | None = None,
        reid_threshold: float = 0.6,
        reid_memory: int = 300,
        reid_refresh: int = 15,
    ) -> None:
        self.max_missed = max_missed
        self.high_score = high_score
        self.match_iou = match_iou
        self.low_score_iou = low_score_iou
        self.max_center_shift = max_center_shift
        self.min_hits = min_hits
        self.reid = reid
        self.reid_threshold = reid_threshold
        self.reid_memory = reid_memory
        self.reid_refresh = reid_refresh
        self.tracks: list[Track] = []
        self._expired: list[tuple[int, Track]] = []  # (frame it expired, track) for re-identification
        self._next_id = 1
        self.frame = 0

    def is_confirmed(self, track: Track) -> bool:
        return track.hits >= self.min_hits

    def update(
        self,
        faces: Sequence[Face],
        dt: float = 1.0,
        frame: np.ndarray | None = None,
        frame_size: tuple[int, int] | None = None,
    ) -> list[Track]:
        """Match this frame's faces to tracks; sets ``face.track_id`` on every face.

        ``dt`` is the time since the previous frame in frames (for variable
        frame rate: seconds * nominal fps). ``frame`` is handed to the ``reid``
        hook only. With ``frame_size`` (w, h), a missed track whose prediction
        has left the picture ends early. Returns every live track by id, the
        missed ones included.
        """
        self.frame += 1
        for t in self.tracks:
            t.predicted = t._kalman.predict(dt)
            t.face = None

        free_faces = list(range(len(faces)))
        free_tracks = list(range(len(self.tracks)))
        matches: list[tuple[int, int]] = []

        def match_by_iou(face_idx: list[int], threshold: float) -> None:
            if not face_idx or not free_tracks:
                return
            detected = np.array([faces[i].box for i in face_idx])
            iou = box_iou(detected, np.array([self.tracks[j].predicted for j in free_tracks]))
            for r, c in _greedy_match(iou, threshold):
                matches.append((face_idx[r], free_tracks[c]))
            taken_f = {m[0] for m in matches}
            taken_t = {m[1] for m in matches}
            free_faces[:] = [i for i in free_faces if i not in taken_f]
            free_tracks[:] = [j for j in free_tracks if j not in taken_t]

        match_by_iou([i for i in free_faces if faces[i].score >= self.high_score], self.match_iou)
        match_by_iou([i for i in free_faces if faces[i].score < self.high_score], self.low_score_iou)
        if free_faces and free_tracks:
            shift = np.array(
                [
                    [
                        np.linalg.norm(_box_to_state(faces[i].box)[:2] - _box_to_state(self.tracks[j].predicted)[:2])
                        / max(faces[i].size, self.tracks[j].predicted[2] - self.tracks[j].predicted[0], 1.0)
                        for j in free_tracks
                    ]
                    for i in free_faces
                ]
            )
            for r, c in _greedy_match(shift, self.max_center_shift, higher_is_better=False):
                matches.append((free_faces[r], free_tracks[c]))
            taken_f = {m[0] for m in matches}
            taken_t = {m[1] for m in matches}
            free_faces = [i for i in free_faces if i not in taken_f]
            free_tracks = [j for j in free_tracks if j not in taken_t]

        for fi, tj in matches:
            self._hit(self.tracks[tj], faces[fi], frame)
        for tj in free_tracks:
            t = self.tracks[tj]
            t.missed += 1
            t.age += 1
        for fi in free_faces:
            self._start(faces[fi], frame)

        alive = []
        for t in self.tracks:
            left_picture = t.missed > 0 and frame_size is not None and _outside(t.predicted, frame_size)
            gone = t.missed > self.max_missed or left_picture
            if gone:
                self._expired.append((self.frame, t))
            else:
                alive.append(t)
        self.tracks = alive
        self._expired = [(f, t) for f, t in self._expired if self.frame - f <= self.reid_memory]
        return sorted(self.tracks, key=lambda t: t.id)

    def _hit(self, track: Track, face: Face, frame: np.ndarray | None) -> None:
        track._kalman.update(face.box)
        track.box = np.asarray(face.box, dtype=np.float64).copy()
        track.face = face
        track.missed = 0
        track.age += 1
        track.hits += 1
        face.track_id = track.id
        if self.reid is not None and track.hits % self.reid_refresh == 0:
            emb = _unit(self.reid(face, frame))
            if emb is not None:
                track.embedding = emb if track.embedding is None else _unit(track.embedding + emb)

    def _start(self, face: Face, frame: np.ndarray | None) -> None:
        box = np.asarray(face.box, dtype=np.float64).copy()
        emb = _unit(self.reid(face, frame)) if self.reid is not None else None
        previous = self._reidentify(emb) if emb is not None else None
        kalman = _BoxKalman(box)
        if previous is not None:
            track = previous
            track.box, track.predicted, track._kalman = box, box.copy(), kalman
            track.missed, track.face = 0, face
            track.age += 1
            track.hits += 1
            track.embedding = _unit(track.embedding + emb)
            self.tracks = [t for t in self.tracks if t is not track]
            self._expired = [(f, t) for f, t in self._expired if t is not track]
        else:
            track = Track(id=self._next_id, box=box, predicted=box.copy(), face=face, embedding=emb, _kalman=kalman)
            self._next_id += 1
        face.track_id = track.id
        self.tracks.append(track)

    def _reidentify(self, emb: np.ndarray) -> Track | None:
        candidates = [t for _, t in self._expired] + [t for t in self.tracks if t.missed > 0]
        best, best_sim = None, self.reid_threshold
        for t in candidates:
            if t.embedding is None:
                continue
            sim = float(t.embedding @ emb)
            if sim >= best_sim:
                best, best_sim = t, sim
        return best


def _outside(box: np.ndarray, frame_size: tuple[int, int]) -> bool:
    w, h = frame_size
    return box[2] <= 0 or box[3] <= 0 or box[0] >= w or box[1] >= h
