"""MediaPipe's canonical face mesh: 468 vertices with UVs and 898 triangles.

The skin renderer maps texture triangle by triangle through this mesh, so the
topology must match the landmarker's output exactly. It is read from the
vendored ``face_landmarker.task`` (its geometry pipeline metadata protobuf)
rather than copied into the source, so the two can never drift apart.
"""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from functools import cache

import numpy as np

from faceskin import models


@dataclass(frozen=True)
class CanonicalMesh:
    vertices: np.ndarray  # (468, 3) canonical model-space positions (cm)
    uv: np.ndarray  # (468, 2) texture coordinates in [0, 1], v down
    triangles: np.ndarray  # (898, 3) vertex indices


def _varint(b: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        c = b[i]
        i += 1
        result |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return result, i


def _fields(b: bytes):
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(b, i)
        elif wire == 2:
            n, i = _varint(b, i)
            v, i = b[i : i + n], i + n
        elif wire == 5:
            v, i = b[i : i + 4], i + 4
        elif wire == 1:
            v, i = b[i : i + 8], i + 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield num, wire, v


@cache
def canonical_mesh() -> CanonicalMesh:
    with zipfile.ZipFile(models.path("face_landmarker.task")) as z:
        data = z.read("geometry_pipeline_metadata_landmarks.binarypb")
    mesh_bytes = next(v for num, wire, v in _fields(data) if num == 1 and wire == 2)
    floats: list[float] = []
    indices: list[int] = []
    for num, wire, v in _fields(mesh_bytes):
        if num == 3 and wire == 5:
            floats.append(struct.unpack("<f", v)[0])
        elif num == 3 and wire == 2:  # packed
            floats.extend(struct.unpack(f"<{len(v) // 4}f", v))
        elif num == 4 and wire == 0:
            indices.append(v)
        elif num == 4 and wire == 2:  # packed
            j = 0
            while j < len(v):
                x, j = _varint(v, j)
                indices.append(x)
    vb = np.asarray(floats, dtype=np.float32).reshape(-1, 5)
    tris = np.asarray(indices, dtype=np.int32).reshape(-1, 3)
    return CanonicalMesh(vertices=vb[:, :3].copy(), uv=vb[:, 3:5].copy(), triangles=tris)
