"""The plain data types every stage of the pipeline passes along.

Images are always RGB ``uint8`` arrays of shape (H, W, 3); coordinates are pixels
in that image, x to the right, y down. Keeping one convention everywhere means a
stage can be swapped without conversion code at the seams.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Face:
    """One face in one image, as the detector and later stages learned it.

    ``box`` is (x0, y0, x1, y1). ``keypoints`` are the detector's five points
    (right eye, left eye, nose tip, right mouth corner, left mouth corner, in the
    image's left-to-right order as RetinaFace emits them). ``landmarks`` (478, 3)
    and the rest are filled by the landmark stage when it succeeds; ``None``
    there is the signal for the fail-closed fallback.
    """

    box: np.ndarray
    score: float
    keypoints: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    blendshapes: dict[str, float] | None = None
    pose: np.ndarray | None = None
    track_id: int | None = None
    source: str = ""

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def size(self) -> float:
        return max(self.width, self.height)

    @property
    def center(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])


@dataclass
class FaceOutcome:
    """What was done to one face: the line of the report a user reads."""

    box: list[float]
    score: float
    method: str  # "skin" or "fallback"
    reason: str = ""
    skin_id: str | None = None
    track_id: int | None = None
    yaw_deg: float | None = None
    similarity: float | None = None  # identity self-check: SFace cosine, skinned vs original
    expression_change: float | None = None  # how far the skin's expression reads from the original's (faceskin.expression)
    # How far the skin had to go to hide the person: "default"; "stronger" (face proportions moved past
    # the skin's own); "strongest" (the skin's own eyes are painted too: gaze and blinks are not the person's).
    strength: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class ImageReport:
    """Per-image summary; ``faces`` lists every detected face, none left out."""

    path: str | None
    width: int
    height: int
    faces: list[FaceOutcome] = field(default_factory=list)
    seconds: float = 0.0
    metadata_stripped: bool = True

    @property
    def skinned(self) -> int:
        return sum(f.method == "skin" for f in self.faces)

    @property
    def fallbacks(self) -> int:
        return sum(f.method == "fallback" for f in self.faces)

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "width": self.width,
            "height": self.height,
            "faces": [f.to_dict() for f in self.faces],
            "skinned": self.skinned,
            "fallbacks": self.fallbacks,
            "seconds": round(self.seconds, 4),
            "metadata_stripped": self.metadata_stripped,
        }
