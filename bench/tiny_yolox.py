"""A tiny YOLOX-layout detector for stress runs: input `images` [1,3,96,96], output `output`
[1,189,85] (the 12x12, 6x6 and 3x3 grids of strides 8/16/32), fixed pseudo-random weights. It finds
nothing meaningful; it exists so that a WebGPU run on llvmpipe takes a fraction of a second.
Usage: /usr/bin/python3 bench/tiny_yolox.py OUT.onnx (needs Debian's python3-onnx)."""
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save

rng = np.random.default_rng(7)
nodes, inits, parts = [], [], []
for s in (8, 16, 32):
    w = (rng.standard_normal((85, 3, s, s)) * 0.01).astype(np.float32)
    inits.append(numpy_helper.from_array(w, f"w{s}"))
    inits.append(numpy_helper.from_array(np.array([1, 85, -1], np.int64), f"shape{s}"))
    nodes.append(helper.make_node("Conv", ["images", f"w{s}"], [f"c{s}"], kernel_shape=[s, s], strides=[s, s]))
    nodes.append(helper.make_node("Reshape", [f"c{s}", f"shape{s}"], [f"r{s}"]))
    parts.append(f"r{s}")
nodes.append(helper.make_node("Concat", parts, ["cat"], axis=2))
nodes.append(helper.make_node("Transpose", ["cat"], ["output"], perm=[0, 2, 1]))
graph = helper.make_graph(
    nodes, "tiny_yolox",
    [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 96, 96])],
    [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 189, 85])],
    inits,
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
model.ir_version = 7
save(model, sys.argv[1])
