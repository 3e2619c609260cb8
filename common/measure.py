"""Efficiency measurements every paper reports: parameters, bytes, MACs, latency, peak memory.

* :func:`count_parameters` / :func:`model_size_bytes`: what the model stores.
* :func:`count_macs`: multiply-accumulates of convolutions and matrix products (linear layers,
  attention), counted at the ATen level while the model runs, so functional calls are included,
  and attributed to the module that issued them. Element-wise work (activations, normalisation,
  pooling) is not counted, as in the papers' MAC figures. Tests cross-check it against fvcore.
* :func:`measure_latency`: wall-clock time per forward pass after a warm-up; the median of repeats
  (these machines are noisy: medians and ratios, never single timings).
* :func:`peak_activation_memory`: the peak of live activation bytes when the network runs layer by
  layer in int8 (1 byte per element), as MCUNet defines peak SRAM; it follows tensor lifetimes, so
  residual branches are accounted for.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten


# ---------------------------------------------------------------------------- size
def count_parameters(model: nn.Module, *, nonzero: bool = False) -> int:
    """Number of parameters (``nonzero=True``: only those that are not exactly zero)."""
    if nonzero:
        return int(sum(int((p != 0).sum()) for p in model.parameters()))
    return int(sum(p.numel() for p in model.parameters()))


def model_size_bytes(
    model: nn.Module, *, bits: int | None = None, include_buffers: bool = False
) -> int:
    """Bytes needed to store the parameters at their dtype (or at ``bits`` per value)."""
    tensors = list(model.parameters()) + (list(model.buffers()) if include_buffers else [])
    if bits is not None:
        return int(sum(t.numel() for t in tensors) * bits + 7) // 8
    return int(sum(t.numel() * t.element_size() for t in tensors))


# ---------------------------------------------------------------------------- MACs
def _prod(xs: Any) -> int:
    out = 1
    for x in xs:
        out *= int(x)
    return out


def _conv_macs(args: tuple, out: Tensor) -> int:
    # aten.convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)
    x, w = args[0], args[1]
    transposed = bool(args[6]) if len(args) > 6 else False
    if transposed:
        # weight is (C_in, C_out / groups, k...): every input element meets C_out/groups * k weights.
        return x.numel() * w.shape[1] * _prod(w.shape[2:])
    # weight is (C_out, C_in / groups, k...): every output element takes C_in/groups * k MACs.
    return out.numel() * w.shape[1] * _prod(w.shape[2:])


def _mm_macs(a: Tensor, b: Tensor) -> int:
    return a.shape[0] * a.shape[1] * b.shape[1]


def _bmm_macs(a: Tensor, b: Tensor) -> int:
    return a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]


def _sdpa_macs(args: tuple) -> int:
    q, k, v = args[0], args[1], args[2]
    batch = _prod(q.shape[:-2])
    lq, d = q.shape[-2], q.shape[-1]
    lk, dv = k.shape[-2], v.shape[-1]
    return batch * lq * lk * (d + dv)  # Q K^T, then softmax(.) V


def _macs_of(func: Any, args: tuple, out: Any) -> int:
    packet = getattr(func, "overloadpacket", None)
    if packet in (aten.convolution, aten._convolution):
        return _conv_macs(args, out)
    if packet is aten.mm:
        return _mm_macs(args[0], args[1])
    if packet is aten.addmm:
        return _mm_macs(args[1], args[2])
    if packet is aten.bmm:
        return _bmm_macs(args[0], args[1])
    if packet is aten.baddbmm:
        return _bmm_macs(args[1], args[2])
    if packet in (
        aten._scaled_dot_product_flash_attention_for_cpu,
        aten._scaled_dot_product_flash_attention,
        aten._scaled_dot_product_efficient_attention,
        aten._scaled_dot_product_cudnn_attention,
    ):
        return _sdpa_macs(args)
    return 0


class _MacCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = [""]
        self.per_module: dict[str, int] = defaultdict(int)
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        macs = _macs_of(func, args, out)
        if macs:
            self.total += macs
            self.per_module[self.stack[-1]] += macs
        return out


@dataclass
class MacReport:
    """Total MACs and their attribution to the leaf-most module that issued them."""

    total: int
    per_module: dict[str, int] = field(default_factory=dict)


def count_macs(model: nn.Module, *inputs: Any, **kwargs: Any) -> MacReport:
    """MACs of one forward pass of ``model(*inputs, **kwargs)`` (batch size as given).

    Convolutions (incl. depthwise, grouped, transposed), ``mm``/``addmm``/``bmm`` (linear layers,
    matmuls, attention) and fused scaled-dot-product attention are counted.

    The pass runs with autograd enabled on purpose: under ``no_grad`` PyTorch swaps
    ``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer`` for fused kernels whose inner
    products would be invisible to the counter.
    """
    counter = _MacCounter()
    handles = []
    for name, module in model.named_modules():

        def pre(_m: nn.Module, _a: Any, _name: str = name) -> None:
            counter.stack.append(_name)

        def post(_m: nn.Module, _a: Any, _o: Any) -> None:
            counter.stack.pop()

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), counter:
            model(*inputs, **kwargs)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return MacReport(total=counter.total, per_module=dict(counter.per_module))


# ---------------------------------------------------------------------------- latency
@dataclass
class LatencyReport:
    median_ms: float
    p10_ms: float
    p90_ms: float
    repeats: int
    threads: int
    samples_ms: list[float] = field(default_factory=list)


@torch.inference_mode()
def measure_latency(
    model: nn.Module,
    *inputs: Tensor,
    warmup: int = 10,
    repeats: int = 50,
    threads: int | None = None,
) -> LatencyReport:
    """Median wall-clock milliseconds of ``model(*inputs)`` on the inputs' device."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    model.eval()
    sync = torch.cuda.synchronize if inputs and inputs[0].is_cuda else (lambda: None)
    try:
        for _ in range(warmup):
            model(*inputs)
        sync()
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(*inputs)
            sync()
            samples.append((time.perf_counter() - t0) * 1e3)
    finally:
        used = torch.get_num_threads()
        torch.set_num_threads(previous)
    qs = statistics.quantiles(samples, n=10) if len(samples) > 1 else [samples[0]] * 9
    return LatencyReport(
        median_ms=statistics.median(samples),
        p10_ms=qs[0],
        p90_ms=qs[-1],
        repeats=repeats,
        threads=used,
        samples_ms=samples,
    )


# ---------------------------------------------------------------------------- peak memory
# Modules and functions that a deployment engine runs in place or fuses into the producer of
# their input, so their output shares the input's buffer.
_INPLACE_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Sigmoid,
    nn.SiLU,
    nn.GELU,
    nn.Tanh,
    nn.Identity,
    nn.Dropout,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
)
_VIEW_METHODS = {
    "view",
    "reshape",
    "flatten",
    "squeeze",
    "unsqueeze",
    "contiguous",
    "relu",
    "relu_",
    "clamp",
    "clamp_",
}
_VIEW_FUNCTIONS = {
    torch.flatten,
    torch.reshape,
    torch.squeeze,
    torch.unsqueeze,
    torch.relu,
    nn.functional.relu,
    nn.functional.relu6,
    nn.functional.hardswish,
    nn.functional.dropout,
}


@dataclass
class MemoryStep:
    name: str
    op: str
    output_bytes: int
    live_bytes: int


@dataclass
class ActivationMemoryReport:
    """``peak_bytes``: max over steps of the bytes of every activation alive during that step."""

    peak_bytes: int
    peak_step: str
    steps: list[MemoryStep] = field(default_factory=list)


def peak_activation_memory(
    model: nn.Module, example: Tensor, *, bytes_per_element: int = 1
) -> ActivationMemoryReport:
    """Peak activation memory of a layer-by-layer (sequential) execution.

    The model is traced with ``torch.fx`` and run once on ``example`` (batch size 1 recommended)
    to learn every tensor's size. Executing the graph in order, a tensor is allocated when its
    producer runs and freed after its last consumer; element-wise activations, batch norm and
    reshapes reuse their input's buffer (fused or in place, as deployment engines do). At each
    step the live bytes are the input buffers still needed plus the new output, and the peak is
    their maximum. With ``bytes_per_element=1`` this is the int8 peak SRAM of MCUNet's analysis.
    """
    from torch.fx import symbolic_trace
    from torch.fx.passes.shape_prop import ShapeProp

    gm = symbolic_trace(model)
    was_training = model.training
    gm.eval()
    with torch.no_grad():
        ShapeProp(gm).propagate(example)
    model.train(was_training)
    modules = dict(gm.named_modules())

    def nbytes(node: Any) -> int:
        meta = node.meta.get("tensor_meta")
        if meta is None or not hasattr(meta, "shape"):
            return 0
        return _prod(meta.shape) * bytes_per_element

    def is_alias(node: Any) -> bool:
        if node.op == "call_module":
            return isinstance(modules[node.target], _INPLACE_MODULES)
        if node.op == "call_method":
            return node.target in _VIEW_METHODS
        if node.op == "call_function":
            return node.target in _VIEW_FUNCTIONS
        return False

    nodes = [n for n in gm.graph.nodes if n.op != "output"]
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    # Every node maps to the buffer that holds its value (aliases share their input's buffer).
    buffer_of: dict[Any, Any] = {}
    size_of: dict[Any, int] = {}
    last_use: dict[Any, int] = {}
    for n in nodes:
        tensor_inputs = [a for a in n.all_input_nodes if a in buffer_of]
        if is_alias(n) and tensor_inputs:
            buf = buffer_of[tensor_inputs[0]]
        else:
            buf = n
            size_of[buf] = nbytes(n) if n.op != "get_attr" else 0
        buffer_of[n] = buf
    for n in gm.graph.nodes:
        for a in n.all_input_nodes:
            if a in buffer_of:
                b = buffer_of[a]
                last_use[b] = max(last_use.get(b, -1), order[n])
    steps: list[MemoryStep] = []
    peak, peak_step = 0, ""
    for n in nodes:
        if n.op in ("placeholder", "get_attr") or buffer_of[n] is not n:
            continue
        i = order[n]
        live = (
            sum(size for b, size in size_of.items() if order[b] < i and last_use.get(b, -1) >= i)
            + size_of[n]
        )
        op = (
            type(modules[n.target]).__name__
            if n.op == "call_module"
            else str(getattr(n.target, "__name__", n.target))
        )
        steps.append(MemoryStep(name=n.name, op=op, output_bytes=size_of[n], live_bytes=live))
        if live > peak:
            peak, peak_step = live, n.name
    return ActivationMemoryReport(peak_bytes=peak, peak_step=peak_step, steps=steps)
