"""Reader for dlib's binary DNN serialization (the format of `net_type` files written by `serialize(file) << net`).

dlib's stream is not self-describing: the reader must know the network type, exactly like the C++ `deserialize()`
does through templates. `anet_spec()` spells out `anet_type` of dlib's `examples/dnn_face_recognition_ex.cpp` as
a flat list (top = loss, bottom = input), and `read_net()` walks it in the order dlib's `deserialize()` overloads
consume the stream:

* `add_loss_layer`: int version, loss details, subnetwork.
* `add_layer`: int version, subnetwork (recursively, so wrapper versions come top-down), then layer details,
  3 bools, x_grad, cached_output, and params_grad (version 2); the bottom `add_layer` over the input layer has
  version 2/3: input layer details, layer details, 3 bools, x_grad, cached_output, grad_final, [uint sef].
* `add_tag_layer` / `add_skip_layer`: int version, subnetwork.

Primitives follow dlib/serialize.h: integers are a control byte (size in the low nibble, 0x80 = negative)
then little-endian bytes; floats/doubles are an int64 mantissa and int16 exponent; bools are '0'/'1';
strings are a length then bytes; resizable_tensor v2 stores raw little-endian float32.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# One entry per dlib layer object, top (loss) to bottom (input).
# kinds: "loss", "layer" (add_layer over another layer), "input_layer" (add_layer over the input), "tag", "skip".


@dataclass
class Node:
    kind: str
    op: str = ""  # expected layer details type, e.g. "con", "affine", "relu", "add_prev"
    tag: int = 0  # tag id for tag/skip/add_prev
    details: dict[str, Any] = field(default_factory=dict)


def _block(n: int, stride: int) -> list[Node]:
    # block<N,affine,stride,SUB> = affine<con<N,3,3,1,1,relu<affine<con<N,3,3,stride,stride,SUB>>>>>
    return [Node("layer", "affine"), Node("layer", "con", details={"expect": (n, 3, 3, 1)}),
            Node("layer", "relu"), Node("layer", "affine"), Node("layer", "con", details={"expect": (n, 3, 3, stride)})]


def _ares(n: int) -> list[Node]:
    # relu<add_prev1<block<N,affine,1,tag1<SUB>>>>
    return [Node("layer", "relu"), Node("layer", "add_prev", tag=1), *_block(n, 1), Node("tag", tag=1)]


def _ares_down(n: int) -> list[Node]:
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUB>>>>>>>
    return [Node("layer", "relu"), Node("layer", "add_prev", tag=2), Node("layer", "avg_pool"),
            Node("skip", tag=1), Node("tag", tag=2), *_block(n, 2), Node("tag", tag=1)]


def anet_spec() -> list[Node]:
    """anet_type of dnn_face_recognition_ex.cpp, top to bottom."""
    nodes = [Node("loss", "loss_metric"), Node("layer", "fc"), Node("layer", "avg_pool")]
    nodes += _ares_down(256)  # alevel0
    nodes += _ares(256) + _ares(256) + _ares_down(256)  # alevel1
    nodes += _ares(128) + _ares(128) + _ares_down(128)  # alevel2
    nodes += _ares(64) + _ares(64) + _ares(64) + _ares_down(64)  # alevel3
    nodes += _ares(32) + _ares(32) + _ares(32)  # alevel4
    nodes += [Node("layer", "max_pool"), Node("layer", "relu"), Node("layer", "affine"),
              Node("input_layer", "con", details={"expect": (32, 7, 7, 2)})]
    return nodes


class Stream:
    """Cursor over the raw bytes with dlib's primitive decoders."""

    def __init__(self, data: bytes) -> None:
        self.buf = memoryview(data)
        self.pos = 0

    def at_eof(self) -> bool:
        return self.pos == len(self.buf)

    def byte(self) -> int:
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.buf):
            raise EOFError("dlib stream ended early")
        out = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return out

    def int(self, signed: bool = True) -> int:
        ctrl = self.byte()
        size = ctrl & 0x0F
        if ctrl & 0x70:
            raise ValueError(f"bad integer control byte 0x{ctrl:02x} at {self.pos - 1}")
        value = int.from_bytes(self.raw(size), "little") if size else 0
        if ctrl & 0x80:
            if not signed:
                raise ValueError("negative value for an unsigned integer")
            value = -value
        return value

    def uint(self) -> int:
        return self.int(signed=False)

    def real(self) -> float:
        # float_details: mantissa * 2**exponent; exponents 32000..32002 encode inf, -inf, nan in dlib.
        if self.buf[self.pos] & 0x70:
            raise ValueError("old ASCII float format is not supported")
        mantissa = self.int()
        exponent = self.int()
        specials = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
        if exponent in specials and mantissa == 0:
            return specials[exponent]
        return math.ldexp(mantissa, exponent)

    def boolean(self) -> bool:
        ch = self.byte()
        if ch not in (ord("0"), ord("1")):
            raise ValueError(f"bad bool byte {ch}")
        return ch == ord("1")

    def string(self) -> str:
        n = self.uint()
        return self.raw(n).decode("ascii")

    def tensor(self) -> np.ndarray:
        version = self.int()
        shape = tuple(self.int() for _ in range(4))
        count = int(np.prod(shape))
        if version == 2:  # raw little-endian float32
            return np.frombuffer(self.raw(4 * count), dtype="<f4").astype(np.float32).reshape(shape)
        if version == 1:  # one float_details per element
            return np.array([self.real() for _ in range(count)], dtype=np.float32).reshape(shape)
        raise ValueError(f"unexpected resizable_tensor version {version}")

    def alias(self) -> tuple[int, int, int, int]:
        if self.int() != 1:
            raise ValueError("unexpected alias_tensor version")
        return tuple(self.int() for _ in range(4))  # type: ignore[return-value]


def _take(params: np.ndarray, offset: int, shape: tuple[int, ...]) -> tuple[np.ndarray, int]:
    n = int(np.prod(shape))
    return params.reshape(-1)[offset:offset + n].reshape(shape).copy(), offset + n


def _read_details(s: Stream, node: Node) -> None:
    version = s.string()
    d = node.details
    d["version"] = version
    if node.op == "con":
        if version not in ("con_4", "con_5", "con_6"):
            raise ValueError(f"con: unsupported version {version}")
        params = s.tensor()
        d["num_filters"], d["nr"], d["nc"] = s.int(), s.int(), s.int()
        d["stride"] = (s.int(), s.int())
        d["padding"] = (s.int(), s.int())
        fshape, bshape = s.alias(), s.alias()
        for key in ("lr_mult", "wd_mult", "bias_lr_mult", "bias_wd_mult"):
            d[key] = s.real()
        use_bias = s.boolean() if version in ("con_5", "con_6") else True
        if version == "con_6" and s.boolean():
            raise ValueError("con with fused relu is not part of anet_type")
        d["weight"], off = _take(params, 0, fshape)
        d["bias"] = _take(params, off, (fshape[0],))[0] if use_bias else np.zeros(fshape[0], np.float32)
        if use_bias:
            off += fshape[0]
            assert int(np.prod(bshape)) == fshape[0]
        assert off == params.size, "con params not fully consumed"
        n, nr, nc, stride = d["expect"]
        assert (d["num_filters"], d["nr"], d["nc"], d["stride"]) == (n, nr, nc, (stride, stride)), d
    elif node.op == "affine":
        if version == "bn_con2":
            # dlib's deserialize(affine_) accepts a bn_ and freezes it: g = gamma/sqrt(var+eps), b = beta - g*mean.
            params = s.tensor()
            gshape, bshape = s.alias(), s.alias()
            s.tensor(), s.tensor()  # means, invstds: batch statistics of the last training step, unused
            running_means, running_vars = s.tensor(), s.tensor()
            s.uint(), s.uint()  # num_updates, running_stats_window_size
            for _ in range(4):
                s.real()  # learning-rate / weight-decay multipliers
            eps = s.real()
            gamma, off = _take(params, 0, (int(np.prod(gshape)),))
            beta, off = _take(params, off, (int(np.prod(bshape)),))
            assert off == params.size
            scale = (gamma.astype(np.float64) / np.sqrt(running_vars.reshape(-1).astype(np.float64) + eps))
            d["gamma"] = scale.astype(np.float32)
            d["beta"] = (beta - d["gamma"] * running_means.reshape(-1)).astype(np.float32)
        elif version in ("affine_", "affine_2"):
            params = s.tensor()
            gshape, bshape = s.alias(), s.alias()
            if s.int() != 0:
                raise ValueError("affine in FC mode is not part of anet_type")
            if version == "affine_2" and s.boolean():
                raise ValueError("disabled affine is not expected")
            d["gamma"], off = _take(params, 0, (int(np.prod(gshape)),))
            d["beta"], off = _take(params, off, (int(np.prod(bshape)),))
        else:
            raise ValueError(f"affine: unsupported version {version}")
    elif node.op == "relu":
        if version != "relu_":
            raise ValueError(f"relu: unsupported version {version}")
    elif node.op == "add_prev":
        if version != "add_prev_":
            raise ValueError(f"add_prev: unsupported version {version}")
    elif node.op in ("max_pool", "avg_pool"):
        if version != f"{node.op}_2":
            raise ValueError(f"{node.op}: unsupported version {version}")
        d["window"] = (s.int(), s.int())
        d["stride"] = (s.int(), s.int())
        d["padding"] = (s.int(), s.int())
    elif node.op == "fc":
        if version not in ("fc_2", "fc_3"):
            raise ValueError(f"fc: unsupported version {version}")
        d["num_outputs"], d["num_inputs"] = s.uint(), s.uint()
        params = s.tensor()
        wshape, _ = s.alias(), s.alias()
        if s.int() != 1:
            raise ValueError("expected fc_no_bias (FC_NO_BIAS = 1)")
        for _ in range(4):
            s.real()
        if version == "fc_3":
            s.boolean()  # use_bias: irrelevant without a bias
        d["weight"], off = _take(params, 0, (wshape[0], wshape[1]))  # [num_inputs, num_outputs]: out = x @ W
        assert off == params.size
    else:
        raise ValueError(f"unknown layer op {node.op}")


def _read_input(s: Stream) -> dict[str, Any]:
    version = s.string()
    if version != "input_rgb_image_sized":
        raise ValueError(f"unexpected input layer {version}")
    mean = [s.real(), s.real(), s.real()]
    nr, nc = s.uint(), s.uint()
    return {"mean_rgb": mean, "size": (nr, nc)}


def _read_layer_state(s: Stream, bottom: bool, version: int) -> None:
    for _ in range(3):
        s.boolean()  # this_layer_setup_called, gradient_input_is_stale, get_output_and_gradient_input_disabled
    s.tensor(), s.tensor()  # x_grad, cached_output (training state)
    if bottom:
        s.tensor()  # grad_final
        if version >= 3:
            s.uint()  # _sample_expansion_factor
    elif version == 2:
        s.tensor()  # params_grad


def read_net(data: bytes) -> tuple[dict[str, Any], list[Node]]:
    """Parse a serialized anet_type; returns (input/loss info, nodes top-to-bottom with their details)."""
    s = Stream(data)
    nodes = anet_spec()
    info: dict[str, Any] = {}

    def walk(i: int) -> None:
        node = nodes[i]
        version = s.int()
        if node.kind == "loss":
            if version != 1:
                raise ValueError("unexpected add_loss_layer version")
            loss = s.string()
            if loss != "loss_metric_2":
                raise ValueError(f"unexpected loss {loss}")
            info["loss"] = {"margin": s.real(), "dist_thresh": s.real()}
            walk(i + 1)
        elif node.kind in ("tag", "skip"):
            if version != 1:
                raise ValueError(f"unexpected {node.kind} version")
            walk(i + 1)
        elif node.kind == "layer":
            if version not in (1, 2):
                raise ValueError(f"unexpected add_layer version {version}")
            walk(i + 1)
            _read_details(s, node)
            _read_layer_state(s, bottom=False, version=version)
        elif node.kind == "input_layer":
            if version not in (2, 3):
                raise ValueError(f"unexpected bottom add_layer version {version}")
            info["input"] = _read_input(s)
            _read_details(s, node)
            _read_layer_state(s, bottom=True, version=version)
        else:
            raise ValueError(node.kind)

    walk(0)
    if not s.at_eof():
        raise ValueError(f"{len(s.buf) - s.pos} trailing bytes after the network")
    info["bytes_consumed"] = s.pos
    return info, nodes
