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


def scripted_self_check(monkeypatch, module, score, limit: float = 0.3):
    """Record every skin ``module.render_skin`` paints and return ``(painted, check)``.

    ``painted`` lists (skin id, settings) in paint order; ``check`` stands in for the
    identity self-check, answering ``score(rank, settings)`` for the skin painted last, where
    ``rank`` is the order in which that skin was first painted. Tests of how a skin is chosen
    script the outcome of each try with it.
    """
    painted: list = []
    real_render = module.render_skin

    def render(image, face, skin, settings=None):
        painted.append((skin.skin_id, settings))
        return real_render(image, face, skin, settings)

    class Check:
        def limit_for(self, size):
            return self.limit

        def reference(self, *args):
            return None

        def embed(self, *args):  # the detector-aligned second look: no opinion (similarity 0)
            return np.zeros(128, np.float32)

        def similarity_as_detected(self, *args):  # the same look, whole: no opinion either
            return 0.0

        def similarity_to(self, *args, **kwargs):
            skin_id, settings = painted[-1]
            return score(first_painted(painted).index(skin_id), settings)

        def second_opinion(self, *args):  # no dlib: the scripted score is the whole verdict
            return -1.0

    Check.limit = limit
    monkeypatch.setattr(module, "render_skin", render)
    return painted, Check()


def first_painted(painted: list) -> list[str]:
    """The skin ids of ``painted`` in the order each was first tried."""
    return list(dict.fromkeys(skin_id for skin_id, _ in painted))
