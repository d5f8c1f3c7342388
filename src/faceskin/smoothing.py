"""Temporal smoothing for per-face signals: landmarks, poses, colour statistics.

Why: landmark detectors jitter by a pixel or two per frame even on a still face,
and a skin glued to jittering landmarks shimmers. Plain averaging removes the
shimmer but makes the skin lag behind a turning head, which is worse: the real
face peeks out at the leading edge. The One Euro filter (Casiez, Roussel and
Vogel, CHI 2012) adapts its cut-off to speed: heavy smoothing when still,
almost none when moving fast.

Choices made here:

* **Timestamps, not frame counts**: every call takes the frame time in seconds,
  so variable-frame-rate clips and dropped frames are filtered correctly.
* **Scale-aware**: the speed that opens the filter is measured in face sizes per
  second (pass ``scale`` = the face's size in pixels), so one set of parameters
  behaves the same on a 40 px face and on a 600 px one.
* **Per-landmark speed**: for (N, D) arrays the speed of a landmark is the norm of
  its D-dimensional velocity, so a landmark moving diagonally is not filtered
  more than one moving along an axis.
* **Resets**: a jump larger than ``jump`` face sizes in one step (a cut, or a track
  handed to another person), a gap longer than ``max_gap`` seconds, or time going
  backwards restarts the filter at the new value instead of gliding across.
"""

from __future__ import annotations

import math

import numpy as np


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Smoothing factor of a first-order low-pass with ``cutoff`` Hz, sampled after ``dt`` s."""
    tau = 1.0 / (2 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One Euro filter for a scalar or an array (e.g. landmarks (N, 3)).

    ``min_cutoff`` (Hz): smoothing of a still signal; lower = smoother, laggier.
    ``beta`` (Hz per face size/second): how fast the cut-off opens with speed.
    ``d_cutoff`` (Hz): smoothing of the speed estimate itself.
    Defaults suit landmarks at 25-60 fps with ``scale`` set to the face size. At
    30 fps they cut jitter of 0.5 % of the face size ~3x on a still face, reach
    95 % of a sudden 0.3-face-size move in 2 frames, and trail a head moving 2
    face sizes per second by ~1.3 % of its size (tests/test_smoothing.py).
    """

    def __init__(
        self,
        min_cutoff: float = 0.3,
        beta: float = 10.0,
        d_cutoff: float = 1.0,
        *,
        jump: float = 0.5,
        max_gap: float = 0.5,
    ) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("min_cutoff and d_cutoff must be > 0 and beta >= 0")
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.jump, self.max_gap = jump, max_gap
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None
        self.resets = 0

    def __call__(self, x: np.ndarray | float, t: float, scale: float = 1.0) -> np.ndarray | float:
        """Filter the value observed at time ``t`` (seconds); ``scale`` is the face size."""
        scalar = np.ndim(x) == 0
        value = np.asarray(x, dtype=np.float64)
        out = self._step(value, float(t), max(float(scale), 1e-9))
        return float(out) if scalar else out.copy()

    def _speed(self, v: np.ndarray) -> np.ndarray:
        if v.ndim >= 2:  # per row (landmark): norm of its velocity, broadcast back over its columns
            return np.linalg.norm(v, axis=-1, keepdims=True)
        return np.abs(v)

    def _step(self, x: np.ndarray, t: float, scale: float) -> np.ndarray:
        if self._x is None or self._x.shape != x.shape:
            return self._restart(x, t, counted=self._x is not None)
        dt = t - self._t
        if dt < 0 or dt > self.max_gap:
            return self._restart(x, t)
        if dt == 0:  # same timestamp again: nothing new to integrate
            return self._x
        if np.max(self._speed(x - self._x)) / scale > self.jump:
            return self._restart(x, t)
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * self._speed(self._dx) / scale
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = t
        return self._x

    def _restart(self, x: np.ndarray, t: float, counted: bool = True) -> np.ndarray:
        self._x = x.copy()
        self._dx = np.zeros_like(x)
        self._t = t
        self.resets += counted
        return self._x


class ExponentialSmoother:
    """Time-constant exponential moving average for slowly varying statistics (skin colour).

    ``time_constant`` is in seconds: after that long a step change is 63 %
    absorbed, whatever the frame rate. Works on scalars and arrays; call
    :meth:`reset` at a cut.
    """

    def __init__(self, time_constant: float = 0.5, *, max_gap: float = 2.0) -> None:
        if time_constant <= 0:
            raise ValueError("time_constant must be > 0")
        self.time_constant, self.max_gap = time_constant, max_gap
        self.reset()

    def reset(self) -> None:
        self._y: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray | float, t: float) -> np.ndarray | float:
        scalar = np.ndim(x) == 0
        x = np.asarray(x, dtype=np.float64)
        t = float(t)
        if self._y is None or self._y.shape != x.shape or not (0 <= t - self._t <= self.max_gap):
            self._y, self._t = x.copy(), t
        else:
            weight = 1.0 - math.exp(-(t - self._t) / self.time_constant)
            self._y = self._y + weight * (x - self._y)
            self._t = t
        return float(self._y) if scalar else self._y.copy()
