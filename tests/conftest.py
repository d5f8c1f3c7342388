"""Shared fixtures: real faces from public-domain images that wheels ship, and the models loaded once."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("GLOG_minloglevel", "2")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FACESKIN_SHARED_DATA", ROOT.parent / "shared" / "data"))


def shared_data_or_skip() -> Path:
    if not (SHARED_DATA / "identities").is_dir():
        pytest.skip(f"needs the shared face data at {SHARED_DATA} (absent on a fresh clone)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="session")
def detector():
    from faceskin.detect import FaceDetector

    return FaceDetector()


@pytest.fixture(scope="session")
def landmarker():
    from faceskin.landmarks import Landmarker

    return Landmarker()


@pytest.fixture(scope="session")
def library():
    from faceskin.library import SkinLibrary

    return SkinLibrary.builtin(seed=0)


@pytest.fixture()
def protector(detector, landmarker, library):
    from faceskin.protect import Protector

    return Protector(detector=detector, landmarker=landmarker, library=library, seed=0)


@pytest.fixture(scope="session")
def astronaut_face(astronaut, detector, landmarker):
    faces = detector.detect(astronaut)
    face = max(faces, key=lambda f: f.size)
    assert landmarker.fit(astronaut, face)
    return face
