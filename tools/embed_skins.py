"""Embed the portrait of every default skin with the self-check's SFace: the skin choice's second cue.

Run from the repository root after the default set or SFace changes (no shared data needed):

    python tools/embed_skins.py [--out src/faceskin/models/skin_embeddings.npz]

Each default skin's frontal portrait (``faceskin.library.preview``) is found
by the detector, fitted by the landmarker and embedded by SFace exactly as
the identity self-check embeds a face. The file stores the skin ids, the unit
embeddings (float32) and the sha256 of the skin model and the SFace model they
were made with, so a library never uses embeddings of other skins or another
network (it falls back to tone alone then; a test fails too).

Why: how much a skin still resembles the person after rendering varies a lot
from skin to skin (self-check similarity 0.10-0.68 over 12 tone-matched skins
on one face), and the skin's own portrait predicts it: Spearman rho 0.48
(median over 40 London faces). Trying the skins least like the person first
lowered the first render's similarity from 0.34 (a random tone-matched skin,
mean) to 0.29, and 58 % of first picks passed the 0.3 limit.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from faceskin import models  # noqa: E402
from faceskin.library import default_skins, skin_portrait_embedding  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "src" / "faceskin" / "models" / "skin_embeddings.npz")
    args = ap.parse_args()
    skins = default_skins()
    ids, vectors = [], []
    for s in skins:
        e = skin_portrait_embedding(s)
        if e is None:
            print(f"{s.skin_id}: no face found on its portrait; left out (the choice treats it as unknown)")
            continue
        ids.append(s.skin_id)
        vectors.append(e.astype(np.float32))
    # both files were loaded through models.path above, which refuses any but the listed sha256
    sha = {n: models.SHA256[n] for n in ("skinmodel.npz", "sface_int8_pruned.onnx")}
    tmp = args.out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, ids=np.array(ids), sface=np.stack(vectors),
                        skinmodel_sha256=np.array(sha["skinmodel.npz"]),
                        sface_sha256=np.array(sha["sface_int8_pruned.onnx"]))
    os.replace(tmp, args.out)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"{len(ids)} of {len(skins)} skins embedded -> {args.out}\nsha256 {digest} "
          "(put it in faceskin/models/__init__.py and MODELS.md)")


if __name__ == "__main__":
    main()
