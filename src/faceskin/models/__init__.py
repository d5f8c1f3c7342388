"""Vendored model files, resolved offline from the installed package.

Every file here is listed in MODELS.md with its licence, source package,
version and sha256; ``path`` refuses a file whose hash does not match, so a
corrupted or swapped weight file fails loudly instead of detecting nothing.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent

SHA256 = {
    "retinaface_mnet025.onnx": "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5",
    "centerface_dynamic.onnx": "1ca4633cd80618fff81a6270123960ab56e21903d81ba815f8c8152d9cd11659",
    "face_landmarker.task": "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
    "sface_int8_pruned.onnx": "487a139eb85ccd5ff30aef7d0add7f12d2bb7abb90c5f08a7f481b452a660e00",
    "skinmodel.npz": "b382e0e7f17518f25f8bc413dd36f125b40a5aad6410229c2455395c225ae875",
    "skin_embeddings.npz": "bacbd104a75a5eda9c0437fcf318857d63cb2249ed17eb325f98c070fa447d84",
}


class ModelFileError(RuntimeError):
    pass


@cache
def path(name: str) -> Path:
    p = HERE / name
    if not p.is_file():
        raise ModelFileError(f"model file {name} is missing from the faceskin installation")
    want = SHA256.get(name)
    if want is not None:
        got = hashlib.sha256(p.read_bytes()).hexdigest()
        if got != want:
            raise ModelFileError(f"model file {name} is corrupt (sha256 {got[:12]}..., expected {want[:12]}...)")
    return p
