"""PyTorch CNN -> int8 graph, with TF-Lite's post-training quantization recipe.

Steps (what TF-Lite's converter does for an int8 model, here without TensorFlow):

1. trace the model with ``torch.fx`` and fold every BatchNorm into the convolution before it;
2. fuse ReLU / ReLU6 into the convolution, linear layer or add that produces their input;
3. calibrate: run the float model on sample inputs and record the range of every activation;
4. quantize: activations asymmetric per-tensor int8 from the calibrated ranges, weights symmetric
   per-channel int8 (per-tensor for fully connected layers), biases int32 with scale
   ``input_scale * weight_scale``; pools and reshapes keep their input's quantization.

PyTorch pads convolutions symmetrically, TF-Lite's SAME pads ``total // 2`` before: a stride-1
"same" convolution maps to SAME, any other padded convolution to an explicit PAD (with the input's
zero point, i.e. the value 0) and a VALID convolution. A flatten of a spatial NCHW tensor is
converted to NHWC order by permuting the next fully connected layer's weights. Anything else
raises :class:`~common.mcu.graph.UnsupportedOperatorError` naming the module or function.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.fx import GraphModule, Interpreter, Node, symbolic_trace

from common.mcu.graph import Graph, Op, Tensor, UnsupportedOperatorError, conv_output_size
from common.mcu.quant import choose_qparams, quantize_per_channel

_ACT_MODULES = {nn.ReLU: "relu", nn.ReLU6: "relu6"}
_PASS_MODULES = (nn.Dropout, nn.Identity)


def _act_kind(gm: GraphModule, node: Node) -> str | None:
    if node.op == "call_module":
        m = gm.get_submodule(node.target)
        for cls, name in _ACT_MODULES.items():
            if type(m) is cls:
                return name
        if isinstance(m, nn.Hardtanh) and m.min_val == 0.0 and m.max_val == 6.0:
            return "relu6"
    if node.op == "call_function":
        if node.target in (torch.relu, nn.functional.relu):
            return "relu"
        if node.target is nn.functional.relu6:
            return "relu6"
    if node.op == "call_method" and node.target == "relu":
        return "relu"
    return None


def _is_pass(gm: GraphModule, node: Node) -> bool:
    if node.op == "call_module" and isinstance(gm.get_submodule(node.target), _PASS_MODULES):
        return True
    return node.op == "call_function" and node.target is nn.functional.dropout


def _is_flatten(node: Node) -> bool:
    """``torch.flatten(x, 1)``, ``x.flatten(1)``, ``x.view(n, -1)``, ``x.reshape(n, -1)``."""
    if node.op == "call_function" and node.target is torch.flatten:
        return True
    return node.op == "call_method" and node.target in ("flatten", "view", "reshape")


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> GraphModule:
    """Trace ``model`` and fold each BatchNorm2d that directly follows a Conv2d into it."""
    gm = symbolic_trace(copy.deepcopy(model).eval())
    modules = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], nn.BatchNorm2d):
            continue
        prev = node.args[0]
        if not (
            isinstance(prev, Node)
            and prev.op == "call_module"
            and isinstance(modules[prev.target], nn.Conv2d)
        ):
            raise UnsupportedOperatorError(
                f"BatchNorm2d {node.target!r} does not follow a convolution"
            )
        if len(prev.users) != 1:
            raise UnsupportedOperatorError(
                f"convolution {prev.target!r} feeds more than its BatchNorm"
            )
        conv, bn = modules[prev.target], modules[node.target]
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
        node.replace_all_uses_with(prev)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm


class _RangeRecorder(Interpreter):
    def __init__(self, gm: GraphModule) -> None:
        super().__init__(gm)
        self.ranges: dict[str, tuple[float, float]] = {}

    def run_node(self, n: Node) -> Any:
        out = super().run_node(n)
        if isinstance(out, torch.Tensor) and out.is_floating_point():
            lo, hi = float(out.min()), float(out.max())
            if n.name in self.ranges:
                a, b = self.ranges[n.name]
                lo, hi = min(lo, a), max(hi, b)
            self.ranges[n.name] = (lo, hi)
        return out


@torch.no_grad()
def calibrate(gm: GraphModule, samples: Iterable[torch.Tensor]) -> dict[str, tuple[float, float]]:
    """Min/max of every node output over ``samples`` (batches of NCHW float inputs)."""
    rec = _RangeRecorder(gm)
    for x in samples:
        rec.run(x)
    return rec.ranges


def convert(model: nn.Module, samples: Iterable[torch.Tensor], *, name: str = "model") -> Graph:
    """Quantize ``model`` (eval mode, NCHW float input) into an int8 :class:`Graph`.

    Args:
        model: a CNN built from Conv2d (+BatchNorm2d) / ReLU / ReLU6 / Linear / residual adds /
            pooling / flatten / dropout, e.g. torchvision's MobileNetV2 or the LeNets.
        samples: calibration batches (a few hundred images are plenty).
        name: prefix of tensor names.
    """
    samples = list(samples)
    gm = fold_batchnorm(model)
    ranges = calibrate(gm, samples)
    modules = dict(gm.named_modules())
    nodes = list(gm.graph.nodes)
    g = Graph(tensors={}, ops=[], inputs=[], outputs=[])
    # value name of each fx node, and which nodes are fused into their producer
    value: dict[Node, str] = {}
    layout_chw: dict[str, tuple[int, int, int]] = {}  # flattened tensors that came from (C, H, W)
    fused: set[Node] = set()

    def act_tensor(tname: str, shape: tuple[int, ...], rng: tuple[float, float]) -> str:
        scale, zp = choose_qparams(*rng)
        g.tensors[tname] = Tensor(
            tname,
            tuple(int(v) for v in shape),
            "int8",
            np.array([scale], np.float32),
            np.array([zp]),
        )
        return tname

    def same_q(tname: str, shape: tuple[int, ...], like: str) -> str:
        src = g.tensors[like]
        g.tensors[tname] = Tensor(
            tname, tuple(int(v) for v in shape), "int8", src.scale.copy(), src.zero_point.copy()
        )
        return tname

    def fused_activation(node: Node) -> tuple[str, Node]:
        """If ``node``'s only user is ReLU/ReLU6, fuse it: returns (activation, last node)."""
        users = list(node.users)
        if len(users) == 1:
            kind = _act_kind(gm, users[0])
            if kind is not None:
                fused.add(users[0])
                return kind, users[0]
        return "none", node

    def nhwc(t: torch.Tensor) -> tuple[int, ...]:
        return (t.shape[0], t.shape[2], t.shape[3], t.shape[1]) if t.ndim == 4 else tuple(t.shape)

    shapes: dict[Node, torch.Size] = {}

    class _Shapes(Interpreter):
        def run_node(self, n: Node) -> Any:
            out = super().run_node(n)
            if isinstance(out, torch.Tensor):
                shapes[n] = out.shape
            return out

    with torch.no_grad():
        _Shapes(gm).run(samples[0][:1])

    def shape_of(n: Node) -> tuple[int, ...]:
        s = shapes[n]
        return (1, s[2], s[3], s[1]) if len(s) == 4 else (1, *s[1:])

    for node in nodes:
        if node.op == "placeholder":
            value[node] = act_tensor(f"{name}/input", shape_of(node), ranges[node.name])
            g.inputs.append(value[node])
            continue
        if node.op == "output":
            g.outputs = [value[node.args[0]]]
            continue
        if node.op == "get_attr" or node in fused:
            if node in fused:
                continue
            raise UnsupportedOperatorError(f"constant tensors ({node.target!r}) are not supported")
        if _is_pass(gm, node):
            value[node] = value[node.args[0]]
            continue
        mod = modules.get(node.target) if node.op == "call_module" else None
        if isinstance(mod, nn.Conv2d):
            x = value[node.args[0]]
            act, last = fused_activation(node)
            w = mod.weight.detach().numpy()  # (O, I/groups, kh, kw)
            kh, kw = mod.kernel_size
            stride = mod.stride
            ph, pw = mod.padding if isinstance(mod.padding, tuple) else (0, 0)
            if mod.dilation != (1, 1) or isinstance(mod.padding, str):
                raise UnsupportedOperatorError(
                    f"Conv2d {node.target!r}: dilation or string padding is not supported"
                )
            depthwise = mod.groups > 1
            if depthwise and not (mod.groups == mod.in_channels == mod.out_channels):
                raise UnsupportedOperatorError(
                    f"Conv2d {node.target!r}: grouped (non-depthwise) convolution is not supported"
                )
            in_t = g.tensors[x]
            _, h, wd, _ = in_t.shape
            same = (
                stride == (1, 1)
                and (ph, pw) == ((kh - 1) // 2, (kw - 1) // 2)
                and kh % 2 == 1
                and kw % 2 == 1
            )
            if (ph or pw) and not same:
                padded = same_q(
                    f"{name}/{node.name}/pad", (1, h + 2 * ph, wd + 2 * pw, in_t.shape[3]), x
                )
                g.ops.append(
                    Op("pad", [x], [padded], {"paddings": ((ph, ph), (pw, pw))}, f"{node.name}_pad")
                )
                x, h, wd = padded, h + 2 * ph, wd + 2 * pw
            padding = "same" if same else "valid"
            oh, _ = conv_output_size(h, kh, stride[0], padding)
            ow, _ = conv_output_size(wd, kw, stride[1], padding)
            out = act_tensor(
                f"{name}/{node.name}", (1, oh, ow, mod.out_channels), ranges[last.name]
            )
            if depthwise:
                wq, ws = quantize_per_channel(
                    w[:, 0].transpose(1, 2, 0)[None], axis=3
                )  # (1, kh, kw, C)
                dim = 3
            else:
                wq, ws = quantize_per_channel(w.transpose(0, 2, 3, 1), axis=0)  # (O, kh, kw, I)
                dim = 0
            bias = (
                mod.bias.detach().numpy()
                if mod.bias is not None
                else np.zeros(mod.out_channels, np.float32)
            )
            bq = np.round(bias / (in_t.s * ws.astype(np.float64))).astype(np.int32)
            wn, bn = f"{name}/{node.name}/weight", f"{name}/{node.name}/bias"
            g.tensors[wn] = Tensor(wn, wq.shape, "int8", ws, np.zeros(ws.size, np.int64), wq, dim)
            g.tensors[bn] = Tensor(
                bn,
                bq.shape,
                "int32",
                (in_t.s * ws).astype(np.float32),
                np.zeros(ws.size, np.int64),
                bq,
            )
            kind = "depthwise_conv2d" if depthwise else "conv2d"
            opts = {"stride": tuple(stride), "padding": padding, "activation": act}
            if depthwise:
                opts["depth_multiplier"] = 1
            g.ops.append(Op(kind, [x, wn, bn], [out], opts, node.name))
            value[node] = value[last] = out
        elif isinstance(mod, nn.Linear):
            x = value[node.args[0]]
            act, last = fused_activation(node)
            in_t = g.tensors[x]
            w = mod.weight.detach().numpy()
            if x in layout_chw:  # flattened from NCHW in PyTorch but from NHWC here
                c, h, wd = layout_chw[x]
                w = w.reshape(w.shape[0], c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
            absmax = float(np.abs(w).max()) or 1.0
            ws = np.array([absmax / 127.0], np.float32)
            wq = np.clip(np.round(w / ws[0]), -127, 127).astype(np.int8)
            bias = (
                mod.bias.detach().numpy()
                if mod.bias is not None
                else np.zeros(w.shape[0], np.float32)
            )
            bq = np.round(bias / (in_t.s * float(ws[0]))).astype(np.int32)
            wn, bn = f"{name}/{node.name}/weight", f"{name}/{node.name}/bias"
            g.tensors[wn] = Tensor(wn, wq.shape, "int8", ws, np.zeros(1, np.int64), wq)
            g.tensors[bn] = Tensor(
                bn, bq.shape, "int32", (in_t.s * ws).astype(np.float32), np.zeros(1, np.int64), bq
            )
            out = act_tensor(f"{name}/{node.name}", (1, w.shape[0]), ranges[last.name])
            g.ops.append(Op("fully_connected", [x, wn, bn], [out], {"activation": act}, node.name))
            value[node] = value[last] = out
        elif node.op == "call_function" and node.target in (operator.add, torch.add):
            a, b = (value[n] for n in node.args[:2])
            act, last = fused_activation(node)
            out = act_tensor(f"{name}/{node.name}", g.tensors[a].shape, ranges[last.name])
            g.ops.append(Op("add", [a, b], [out], {"activation": act}, node.name))
            value[node] = value[last] = out
        elif isinstance(mod, (nn.AdaptiveAvgPool2d, nn.AvgPool2d, nn.MaxPool2d)) or (
            node.op == "call_function"
            and node.target
            in (
                nn.functional.adaptive_avg_pool2d,
                nn.functional.max_pool2d,
                nn.functional.avg_pool2d,
            )
        ):
            x = value[node.args[0]]
            in_t = g.tensors[x]
            _, h, wd, c = in_t.shape
            if (
                isinstance(mod, nn.AdaptiveAvgPool2d)
                or node.target is nn.functional.adaptive_avg_pool2d
            ):
                size = mod.output_size if mod is not None else node.args[1]
                size = (size, size) if isinstance(size, int) else tuple(size)
                if size != (1, 1):
                    raise UnsupportedOperatorError(
                        f"{node.target}: adaptive pooling to {size} (only (1, 1)) is not supported"
                    )
                kind, k, s = "avg_pool2d", (h, wd), (h, wd)
            else:
                src = mod if mod is not None else None
                if src is None:
                    raise UnsupportedOperatorError(
                        f"functional pooling {node.target} is not supported; use the module"
                    )
                k = (
                    src.kernel_size
                    if isinstance(src.kernel_size, tuple)
                    else (src.kernel_size, src.kernel_size)
                )
                s = src.stride if isinstance(src.stride, tuple) else (src.stride, src.stride)
                p = src.padding if isinstance(src.padding, tuple) else (src.padding, src.padding)
                if p != (0, 0) or getattr(src, "ceil_mode", False):
                    raise UnsupportedOperatorError(
                        f"pooling {node.target!r} with padding or ceil_mode is not supported"
                    )
                kind = "max_pool2d" if isinstance(src, nn.MaxPool2d) else "avg_pool2d"
            oh, _ = conv_output_size(h, k[0], s[0], "valid")
            ow, _ = conv_output_size(wd, k[1], s[1], "valid")
            out = same_q(f"{name}/{node.name}", (1, oh, ow, c), x)
            g.ops.append(
                Op(
                    kind,
                    [x],
                    [out],
                    {
                        "stride": tuple(s),
                        "padding": "valid",
                        "filter": tuple(k),
                        "activation": "none",
                    },
                    node.name,
                )
            )
            value[node] = out
        elif _is_flatten(node) or (mod is not None and isinstance(mod, nn.Flatten)):
            x = value[node.args[0]]
            in_t = g.tensors[x]
            n_el = int(np.prod(in_t.shape[1:]))
            out = same_q(f"{name}/{node.name}", (1, n_el), x)
            g.ops.append(Op("reshape", [x], [out], {}, node.name))
            if len(in_t.shape) == 4 and in_t.shape[1] * in_t.shape[2] > 1:
                layout_chw[out] = (in_t.shape[3], in_t.shape[1], in_t.shape[2])
            value[node] = out
        elif _act_kind(gm, node) is not None:
            raise UnsupportedOperatorError(
                f"{node.name}: an activation that does not follow a conv, linear or add is not supported"
            )
        else:
            what = (
                type(mod).__name__
                if mod is not None
                else getattr(node.target, "__name__", str(node.target))
            )
            raise UnsupportedOperatorError(
                f"{node.name}: {what} is not supported by the int8 converter"
            )
    g.validate()
    return g


def quantize_input(g: Graph, x: torch.Tensor) -> np.ndarray:
    """A float NCHW image batch (normalised as for the float model) -> the int8 NHWC input."""
    t = g.tensors[g.inputs[0]]
    q = np.round(x.permute(0, 2, 3, 1).numpy() / t.s) + t.zp
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize(g: Graph, name: str, q: np.ndarray) -> np.ndarray:
    t = g.tensors[name]
    return (q.astype(np.float32) - t.zp) * t.s
