"""Which skin each person gets.

Skins come from the built-in set shipped with the package (cleaned donor
textures of synthetic, non-existent people) or from donor photos the user
supplies. Two rules from the prototype: a skin should fit the person's skin
tone (the biggest naturalness win), and no two people in one output may share
a skin (recognisers "see" the donor, so shared skins would link them).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Iterable

import numpy as np

from faceskin import regions
from faceskin.donor import Donor, to_lab
from faceskin.faces import Face


def measure_tone(image: np.ndarray, face: Face) -> tuple[float, float, float] | None:
    """Median L, a, b of the person's cheek skin (None without landmarks)."""
    if face.landmarks is None:
        return None
    L = face.landmarks
    h, w = image.shape[:2]
    # cheeks: below the eyes, beside the nose
    pts = []
    for idx in ([117, 118, 101, 36, 205, 187, 123], [346, 347, 330, 266, 425, 411, 352]):
        pts.append(L[idx, :2])
    x0, y0 = np.floor(np.vstack(pts).min(0)).astype(int)
    x1, y1 = np.ceil(np.vstack(pts).max(0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    local = L.copy()
    local[:, 0] -= x0
    local[:, 1] -= y0
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    import cv2

    for idx in ([117, 118, 101, 36, 205, 187, 123], [346, 347, 330, 266, 425, 411, 352]):
        cv2.fillPoly(mask, [np.round(local[idx, :2]).astype(np.int32)], 255)
    lab = to_lab(image[y0:y1, x0:x1])
    px = lab[mask > 0]
    if len(px) < 4:
        return None
    return tuple(float(x) for x in np.median(px, 0))


def builtin_skins() -> list[Donor]:
    """The skins shipped inside the package (``faceskin/skins/*.skin``)."""
    folder = resources.files("faceskin") / "skins"
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".skin"):
            out.append(Donor.from_bytes(entry.read_bytes()))
    return out


class SkinLibrary:
    """A set of skins and the policy for handing them out."""

    def __init__(self, skins: Iterable[Donor], seed: int | None = None, candidates: int = 3):
        self.skins = list(skins)
        if not self.skins:
            raise ValueError("the skin library is empty")
        self.rng = np.random.default_rng(seed)
        self.candidates = candidates

    @classmethod
    def builtin(cls, seed: int | None = None) -> "SkinLibrary":
        return cls(builtin_skins(), seed=seed)

    def by_id(self, skin_id: str) -> Donor:
        for s in self.skins:
            if s.skin_id == skin_id:
                return s
        raise KeyError(skin_id)

    def choose(self, tone: tuple[float, float, float] | None, exclude: set[str] = frozenset()) -> Donor:
        """A skin near ``tone``, drawn at random among the closest few, never one in ``exclude``."""
        pool = [s for s in self.skins if s.skin_id not in exclude] or list(self.skins)
        if tone is None:
            return pool[int(self.rng.integers(len(pool)))]
        t = np.array(tone)
        # lightness matters most for plausibility; yellow-blue next; red-green least
        d = [float(np.sum(((np.array(s.tone) - t) * np.array([1.0, 0.6, 0.9])) ** 2)) for s in pool]
        order = np.argsort(d)[: max(1, self.candidates)]
        return pool[int(order[int(self.rng.integers(len(order)))])]


def skins_from_photos(paths: Iterable[Path], detector, landmarker) -> list[Donor]:
    """Build donor skins from photos of consenting (or synthetic) people."""
    from faceskin.donor import build_donor
    from faceskin.imagefile import read_image
    from faceskin.errors import InputError

    out = []
    for p in paths:
        img = read_image(p).rgb
        faces = detector.detect(img)
        if not faces:
            raise InputError(f"{p}: no face found in the donor photo")
        face = max(faces, key=lambda f: f.size)
        if not landmarker.fit(img, face):
            raise InputError(f"{p}: could not fit landmarks to the donor face")
        out.append(build_donor(img, face, skin_id=f"photo-{Path(p).stem}", source=str(p)))
    return out
