"""Random int8 models and malformed files for the MCU engine, written with the TF-Lite schema
directly (:mod:`common.mcu.tflite_writer`, not the project's exporter).

:func:`random_model` draws a small network from a seed: convolutions 1x1 / 3x3 / 5x5 / 7x7 with
strides 1-2 and SAME / VALID padding, depthwise convolutions with odd kernels, residual ADDs,
broadcast ADDs (``[1, H, W, C] + [1, 1, 1, C]``, from a global pool or a constant), ADDs with a
constant operand, max / average pools, explicit PAD, RESHAPE, FULLY_CONNECTED and SOFTMAX, each
with random quantization (per-channel weight scales, activation scales and zero points chosen so
that outputs use the int8 range rather than saturate). :func:`malformed_files` derives broken
files from valid ones: empty, random bytes, truncated, single bit flips, a tensor made enormous.

:func:`run` (``python -m common.mcu fuzz``) deploys every model on every engine and compares each
with TF-Lite Micro on the file itself, and runs the deploy command on every malformed file in a
fresh process (a crash there would show as a signal, not an exit code), then prints a summary.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from common.mcu.tflite_writer import (
    BOP,
    I8,
    I32,
    OperatorSpec,
    TensorSpec,
    add_options,
    conv_options,
    depthwise_options,
    fc_options,
    pool_options,
    reshape_options,
    softmax_options,
    write_tflite,
)

__all__ = ["FuzzModel", "malformed_files", "random_model"]

ACT = fb.ActivationFunctionType
PAD = fb.Padding
_ACTS = {"none": ACT.NONE, "relu": ACT.RELU, "relu6": ACT.RELU6}


@dataclass
class FuzzModel:
    """One random model: its file, its input shape and a one-line description of its layers."""

    seed: int
    data: bytes
    input_shape: tuple[int, int, int, int]
    layers: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        return " -> ".join(self.layers)


class _Net:
    """A chain of activations with random quantization, serialised by :func:`write_tflite`."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, int, int, int]) -> None:
        self.rng = rng
        self.tensors: list[TensorSpec] = []
        self.ops: list[OperatorSpec] = []
        self.layers: list[str] = []
        self.n = 0
        self.input = self._act(shape, scale=float(rng.uniform(0.005, 0.05)),
                               zp=int(rng.integers(-128, 128)), signature=True)  # fmt: skip
        self.x = self.input

    # -- tensors ---------------------------------------------------------------------------
    def _name(self, kind: str) -> str:
        self.n += 1
        return f"model/{kind}_{self.n}"

    def _act(
        self,
        shape: tuple[int, ...],
        *,
        scale: float,
        zp: int,
        signature: bool = False,
        kind: str = "act",
    ) -> str:
        name = self._name(kind)
        self.tensors.append(
            TensorSpec(name, tuple(shape), I8, (scale,), (zp,), signature=signature)
        )
        return name

    def _const(
        self,
        data: np.ndarray,
        type_: int,
        scale: tuple[float, ...] | None = None,
        dim: int = 0,
        kind: str = "const",
    ) -> str:
        name = self._name(kind)
        zp = None if scale is None else (0,) * len(scale)
        self.tensors.append(
            TensorSpec(name, tuple(data.shape), type_, scale, zp, dim, data.tobytes())
        )
        return name

    def spec(self, name: str) -> TensorSpec:
        return next(t for t in self.tensors if t.name == name)

    def quant(self, name: str) -> tuple[float, int]:
        t = self.spec(name)
        assert t.scale is not None and t.zero_point is not None
        return t.scale[0], t.zero_point[0]

    def _activation(self) -> tuple[str, int]:
        name = str(self.rng.choice(["none", "relu", "relu6"]))
        return name, _ACTS[name]

    def _out_scale(self, acc_scale: float, k: int) -> float:
        # |x - zp| ~ 60 and |w| ~ 70 on average: the accumulator's spread ~ 60 * 70 * sqrt(k);
        # aim the output's at ~40 int8 steps, with a random factor either way.
        spread = 60.0 * 70.0 * np.sqrt(k) * acc_scale
        return float(spread / 40.0 * np.exp(self.rng.normal(0.0, 0.5)))

    # -- layers ----------------------------------------------------------------------------
    def conv(self, k: int, stride: int, padding: str, cout: int, depthwise: bool = False) -> None:
        rng = self.rng
        _, h, w, c = self.spec(self.x).shape
        in_s, _ = self.quant(self.x)
        cout = c if depthwise else cout
        wshape = (1, k, k, c) if depthwise else (cout, k, k, c)
        weights = rng.integers(-127, 128, size=wshape).astype(np.int8)
        w_s = rng.uniform(0.002, 0.02, size=cout)
        kk = k * k if depthwise else k * k * c
        spread = 60.0 * 70.0 * np.sqrt(kk)
        bias = rng.normal(0.0, spread / 4.0, size=cout).round().astype("<i4")
        wt = self._const(weights, I8, tuple(float(s) for s in w_s), 3 if depthwise else 0, "w")
        bt = self._const(bias, I32, tuple(float(in_s * s) for s in w_s), 0, "b")
        if padding == "same":
            oh, ow = -(-h // stride), -(-w // stride)
        else:
            oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
        act_name, act = self._activation()
        out = self._act((1, oh, ow, cout), scale=self._out_scale(in_s * float(w_s.mean()), kk),
                        zp=int(rng.integers(-40, 40)))  # fmt: skip
        pad = PAD.SAME if padding == "same" else PAD.VALID
        if depthwise:
            op = OperatorSpec(BOP.DEPTHWISE_CONV_2D, 3, [self.x, wt, bt], [out],
                              fb.BuiltinOptions.DepthwiseConv2DOptions,
                              depthwise_options(stride, pad, act))  # fmt: skip
        else:
            op = OperatorSpec(BOP.CONV_2D, 3, [self.x, wt, bt], [out],
                              fb.BuiltinOptions.Conv2DOptions, conv_options(stride, pad, act))  # fmt: skip
        self.ops.append(op)
        kind = "dw" if depthwise else "conv"
        self.layers.append(f"{kind}{k}x{k}/{stride} {padding} {act_name} -> {oh}x{ow}x{cout}")
        self.x = out

    def add(self, other: str, label: str) -> None:
        """``self.x + other`` (TF-Lite broadcasting), a new output quantization."""
        s1, _ = self.quant(self.x)
        s2, _ = self.quant(other)
        shape = np.broadcast_shapes(self.spec(self.x).shape, self.spec(other).shape)
        act_name, act = self._activation()
        out = self._act(shape, scale=float(max(s1, s2) * self.rng.uniform(1.0, 2.0)),
                        zp=int(self.rng.integers(-30, 30)))  # fmt: skip
        operands = [self.x, other] if self.rng.random() < 0.5 else [other, self.x]
        self.ops.append(OperatorSpec(BOP.ADD, 2, operands, [out], fb.BuiltinOptions.AddOptions,
                                     add_options(act)))  # fmt: skip
        self.layers.append(f"add({label}) {act_name}")
        self.x = out

    def residual(self) -> None:
        skip = self.x
        c = self.spec(skip).shape[3]
        self.conv(1, 1, "same", c)
        self.add(skip, "residual")

    def broadcast_pool(self) -> None:
        """Squeeze-style: a global average pool of ``x`` added back to ``x``."""
        skip = self.x
        self.pool("avg", None, 1, "valid")
        pooled = self.x
        self.x = skip
        self.add(pooled, "broadcast 1x1xC")

    def constant_operand(self) -> None:
        _, h, w, c = self.spec(self.x).shape
        shape = (1, 1, 1, c) if self.rng.random() < 0.5 else (1, h, w, c)
        data = self.rng.integers(-128, 128, size=shape).astype(np.int8)
        s, _ = self.quant(self.x)
        name = self._name("const")
        self.tensors.append(TensorSpec(name, shape, I8, (float(s * self.rng.uniform(0.5, 2.0)),),
                                       (int(self.rng.integers(-20, 20)),), 0, data.tobytes()))  # fmt: skip
        self.add(name, f"constant {'x'.join(map(str, shape[1:]))}")

    def pool(self, kind: str, k: int | None, stride: int, padding: str) -> None:
        """Max / average pool; ``k=None`` pools the whole plane. Keeps the input quantization."""
        _, h, w, c = self.spec(self.x).shape
        fh, fw = (h, w) if k is None else (k, k)
        if padding == "same":
            oh, ow = -(-h // stride), -(-w // stride)
        else:
            oh, ow = (h - fh) // stride + 1, (w - fw) // stride + 1
        s, zp = self.quant(self.x)
        out = self._act((1, oh, ow, c), scale=s, zp=zp)
        builtin = BOP.MAX_POOL_2D if kind == "max" else BOP.AVERAGE_POOL_2D
        pad = PAD.SAME if padding == "same" else PAD.VALID
        self.ops.append(OperatorSpec(builtin, 2, [self.x], [out], fb.BuiltinOptions.Pool2DOptions,
                                     pool_options((fh, fw), stride, pad)))  # fmt: skip
        size = "global" if k is None else f"{k}x{k}/{stride} {padding}"
        self.layers.append(f"{kind}pool {size} -> {oh}x{ow}x{c}")
        self.x = out

    def pad(self) -> None:
        _, h, w, c = self.spec(self.x).shape
        t, b, left, r = (int(v) for v in self.rng.integers(0, 3, size=4))
        if t + b + left + r == 0:
            b = 1
        paddings = np.array([[0, 0], [t, b], [left, r], [0, 0]], "<i4")
        pt = self._const(paddings, I32, kind="paddings")
        s, zp = self.quant(self.x)
        out = self._act((1, h + t + b, w + left + r, c), scale=s, zp=zp)
        self.ops.append(OperatorSpec(BOP.PAD, 1, [self.x, pt], [out]))
        self.layers.append(f"pad {t},{b},{left},{r}")
        self.x = out

    def head(self, classes: int, softmax: bool) -> None:
        shape = self.spec(self.x).shape
        n = int(np.prod(shape))
        if n > 1024:
            self.pool("avg", None, 1, "valid")
            shape = self.spec(self.x).shape
            n = int(np.prod(shape))
        s, zp = self.quant(self.x)
        st = self._const(np.array([-1, n], "<i4"), I32, kind="shape")
        flat = self._act((1, n), scale=s, zp=zp)
        self.ops.append(OperatorSpec(BOP.RESHAPE, 1, [self.x, st], [flat],
                                     fb.BuiltinOptions.ReshapeOptions, reshape_options((-1, n))))  # fmt: skip
        self.layers.append(f"reshape 1x{n}")
        self.x = flat
        w = self.rng.integers(-127, 128, size=(classes, n)).astype(np.int8)
        w_s = float(self.rng.uniform(0.002, 0.02))
        spread = 60.0 * 70.0 * np.sqrt(n)
        bias = self.rng.normal(0.0, spread / 4.0, size=classes).round().astype("<i4")
        wt = self._const(w, I8, (w_s,), kind="fc_w")
        bt = self._const(bias, I32, (s * w_s,), kind="fc_b")
        act_name, act = ("none", ACT.NONE) if softmax else self._activation()
        # Before a softmax the logits' scale is drawn directly (a few units of spread), so that
        # the probabilities are not all one-hot.
        scale = float(self.rng.uniform(0.01, 0.06)) if softmax else self._out_scale(s * w_s, n)
        out = self._act((1, classes), scale=scale, zp=int(self.rng.integers(-20, 20)))
        self.ops.append(OperatorSpec(BOP.FULLY_CONNECTED, 4, [self.x, wt, bt], [out],
                                     fb.BuiltinOptions.FullyConnectedOptions, fc_options(act)))  # fmt: skip
        self.layers.append(f"fc {n}->{classes} {act_name}")
        self.x = out
        if softmax:
            probs = self._act((1, classes), scale=1.0 / 256.0, zp=-128)
            self.ops.append(OperatorSpec(BOP.SOFTMAX, 1, [self.x], [probs],
                                         fb.BuiltinOptions.SoftmaxOptions,
                                         softmax_options(float(self.rng.choice([0.5, 1.0])))))  # fmt: skip
            self.layers.append("softmax")
            self.x = probs

    def write(self, order_seed: int) -> bytes:
        self.spec(self.x).signature = True
        return write_tflite(self.tensors, self.ops, [self.input], [self.x], order_seed=order_seed)


def random_model(seed: int) -> FuzzModel:
    """A random int8 network of 2-6 layers plus an optional classifier head (see the module doc)."""
    rng = np.random.default_rng(seed)
    size = int(rng.choice([8, 12, 16, 20, 24, 32]))
    shape = (1, size, size, int(rng.choice([1, 3, 4, 8])))
    net = _Net(rng, shape)
    kinds = ["conv", "conv", "depthwise", "depthwise", "residual", "broadcast", "constant",
             "maxpool", "avgpool", "pad"]  # fmt: skip
    for _ in range(int(rng.integers(2, 7))):
        _, h, w, _ = net.spec(net.x).shape
        kind = str(rng.choice(kinds))
        if kind in ("conv", "depthwise"):
            ks = [1, 3, 5, 7] if kind == "conv" else [3, 5, 7]
            k = int(rng.choice([k for k in ks if k <= min(h, w)] or [1]))
            k = 3 if kind == "depthwise" and k == 1 else k
            stride = int(rng.choice([1, 2])) if min(h, w) >= 4 else 1
            padding = str(rng.choice(["same", "valid"])) if min(h, w) >= k else "same"
            cout = int(rng.choice([4, 8, 12, 16, 24]))
            net.conv(k, stride, padding, cout, depthwise=kind == "depthwise")
        elif kind == "residual":
            net.residual()
        elif kind == "broadcast" and h * w > 1:
            net.broadcast_pool()
        elif kind == "constant":
            net.constant_operand()
        elif kind in ("maxpool", "avgpool") and min(h, w) >= 2:
            k = int(rng.choice([2, 3])) if min(h, w) >= 3 else 2
            stride = int(rng.choice([1, 2]))
            net.pool(kind[:3], k, stride, str(rng.choice(["same", "valid"])))
        elif kind == "pad":
            net.pad()
    if rng.random() < 0.7:
        net.head(int(rng.choice([2, 5, 10])), softmax=bool(rng.random() < 0.6))
    return FuzzModel(seed, net.write(order_seed=seed), shape, net.layers)


def malformed_files(valid: list[bytes], n: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """``n`` broken files ``(kind, bytes)`` made from the ``valid`` ones: empty, random bytes,
    truncated, one bit flipped, a tensor shape made enormous (cycled in that order)."""
    rng = np.random.default_rng(seed)
    out: list[tuple[str, bytes]] = []
    kinds = ["empty", "random", "truncated", "bitflip", "bitflip", "bitflip", "enormous"]
    for i in range(n):
        kind = kinds[i % len(kinds)]
        src = valid[int(rng.integers(len(valid)))]
        if kind == "empty":
            data = b""
        elif kind == "random":
            data = rng.integers(0, 256, size=int(rng.integers(1, 4096)), dtype=np.uint8).tobytes()
            if rng.random() < 0.5:  # random bytes behind a valid file identifier
                data = data[:4].ljust(4, b"\0") + b"TFL3" + data[8:]
        elif kind == "truncated":
            data = src[: int(rng.integers(1, len(src)))]
        elif kind == "bitflip":
            buf = bytearray(src)
            bit = int(rng.integers(len(buf) * 8))
            buf[bit // 8] ^= 1 << (bit % 8)
            data = bytes(buf)
        else:
            data = _enormous(src, rng)
        out.append((kind, data))
    return out


def _enormous(src: bytes, rng: np.random.Generator) -> bytes:
    """``src`` with one activation tensor's height made 2^20 (the file stays well formed)."""
    import flatbuffers

    m = fb.ModelT.InitFromObj(fb.Model.GetRootAs(src, 0))
    sub = m.subgraphs[0]
    consts = {i for i, t in enumerate(sub.tensors) if m.buffers[t.buffer].data is not None}
    acts = [i for i, t in enumerate(sub.tensors) if i not in consts and len(t.shape) == 4]
    t = sub.tensors[int(rng.choice(acts))]
    t.shape = np.array([1, 1 << 20, *list(t.shape)[2:]], dtype=np.int32)
    b = flatbuffers.Builder(len(src) + 1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


# --- the harness ------------------------------------------------------------------------------


@dataclass
class FuzzReport:
    """What :func:`run` saw (``summary()`` prints it)."""

    models: int = 0
    accepted: int = 0
    bitexact_host: int = 0
    emulated: int = 0
    bitexact_m7: int = 0
    refusals: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    memory: list[dict[str, Any]] = field(default_factory=list)
    malformed: dict[str, dict[str, int]] = field(default_factory=dict)
    malformed_bad: list[str] = field(default_factory=list)
    malformed_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures and not self.malformed_bad

    def metrics(self) -> dict[str, float]:
        """The campaign's counts, rates and times as metrics."""
        n_bad = sum(sum(v.values()) for v in self.malformed.values())
        outcome = {
            o: sum(v.get(o, 0) for v in self.malformed.values()) for o in ("refused", "deployed")
        }
        mem = [m for m in self.memory if m["tflm"] == m["tflm"] and m["tflm"] > 0]  # not NaN
        ratio = [m["tinyengine"] / m["tflm"] for m in mem]
        t = self.malformed_seconds
        m = {
            "fuzz/models": float(self.models),
            "fuzz/accepted": float(self.accepted),
            "fuzz/refused": float(self.models - self.accepted - len(self.failures)),
            "fuzz/failed": float(len(self.failures)),
            "fuzz/bitexact_host": float(self.bitexact_host),
            "fuzz/emulated": float(self.emulated),
            "fuzz/bitexact_m7": float(self.bitexact_m7),
            "fuzz/malformed": float(n_bad),
            "fuzz/malformed_refused": float(outcome["refused"]),
            "fuzz/malformed_deployed": float(outcome["deployed"]),
            "fuzz/malformed_bad": float(len(self.malformed_bad)),
            "fuzz/seconds": float(self.seconds),
        }
        if self.accepted:
            m["fuzz/bitexact_host_fraction"] = self.bitexact_host / self.accepted
        if n_bad:
            m["fuzz/malformed_clean_fraction"] = (n_bad - len(self.malformed_bad)) / n_bad
            m["fuzz/malformed_median_s"] = float(np.median(t))
            m["fuzz/malformed_max_s"] = float(np.max(t))
        if mem:
            m["fuzz/sram_models"] = float(len(mem))
            m["fuzz/sram_le_tflm"] = float(sum(r <= 1.0 for r in ratio))
            m["fuzz/sram_ratio_median"] = float(np.median(ratio))
            m["fuzz/sram_ratio_max"] = float(np.max(ratio))
            m["fuzz/scratch_extends"] = float(sum(x["scratch"] > 0 for x in mem))
        return m

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-able data (:meth:`from_dict` reads it back)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FuzzReport:
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})

    @classmethod
    def merged(cls, parts: list[FuzzReport]) -> FuzzReport:
        """One report of campaigns run one after the other (counts and times added, lists
        joined, outcome counts summed per reason and kind)."""
        out = cls()
        for p in parts:
            for f in dataclasses.fields(cls):
                a, b = getattr(out, f.name), getattr(p, f.name)
                if isinstance(a, list):
                    a.extend(b)
                elif isinstance(a, dict):
                    for k, v in b.items():
                        if isinstance(v, dict):
                            inner = a.setdefault(k, {})
                            for kk, vv in v.items():
                                inner[kk] = inner.get(kk, 0) + vv
                        else:
                            a[k] = a.get(k, 0) + v
                else:
                    setattr(out, f.name, a + b)
        return out

    def summary(self) -> str:
        lines = [f"random models: {self.models}, accepted {self.accepted}, refused "
                 f"{self.models - self.accepted - len(self.failures)}, failed "
                 f"{len(self.failures)}"]  # fmt: skip
        if self.accepted:
            lines.append(
                f"  bit-exact with TF-Lite Micro on the host, every engine: "
                f"{self.bitexact_host}/{self.accepted}; on the Cortex-M7 (sample): "
                f"{self.bitexact_m7}/{self.emulated}"
            )
        for reason, n in sorted(self.refusals.items(), key=lambda kv: -kv[1]):
            lines.append(f"  refused x{n}: {reason}")
        lines += [f"  FAILED {f}" for f in self.failures]
        if self.memory:
            same = sum(m["tflm_plan"] == m["tflm"] for m in self.memory)
            lines.append(
                f"  our TF-Lite Micro plan equals the interpreter's arena head on "
                f"{same}/{len(self.memory)} models"
            )
            over = [m for m in self.memory if m["tinyengine"] > m["tflm"]]
            numbers = self.metrics()
            lines.append(
                f"  SRAM for activations: TinyEngine-style arena <= TF-Lite Micro's arena on "
                f"{numbers.get('fuzz/sram_le_tflm', 0):.0f}/{numbers.get('fuzz/sram_models', 0):.0f}"
                " models"
            )
            for m in over:
                lines.append(
                    f"    seed {m['seed']:.0f}: ours {m['tinyengine']:.0f} B (scratch "
                    f"{m['scratch']:.0f} B{', ' + m['scratch_kind'] if m['scratch_kind'] else ''}"
                    f") vs TF-Lite Micro {m['tflm']:.0f} B"
                )
        if self.malformed:
            n = sum(sum(v.values()) for v in self.malformed.values())
            t = np.asarray(self.malformed_seconds or [0.0])
            lines.append(
                f"malformed files: {n}, {np.median(t):.2f} s median / {t.max():.2f} s max each"
            )
            for kind, outcomes in sorted(self.malformed.items()):
                parts = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
                lines.append(f"  {kind}: {parts}")
            lines += [f"  BAD {b}" for b in self.malformed_bad]
        lines.append(f"{'OK' if self.ok else 'FAILED'} in {self.seconds:.0f} s")
        return "\n".join(lines)


def _refusal(exc: BaseException) -> str:
    """A refusal's reason without the per-model details (indices, shapes), for counting."""
    import re

    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = re.sub(r"^\S+\.tflite: ", "", text)
    text = re.sub(r"operator \d+", "operator N", text)
    return re.sub(r"\[[^\]]*\]|\(\d[^)]*\)|\d+", "#", text)[:160]


def accept(model: FuzzModel):  # -> Graph
    """Validate and import ``model``'s file: the graph, or the refusal
    (:class:`~common.mcu.validate.ModelFormatError`, naming what the engine cannot run)."""
    from common.mcu.tflite_io import import_tflite
    from common.mcu.validate import validate_tflite

    validate_tflite(model.data, source=f"fuzz{model.seed}.tflite")
    return import_tflite(model.data)


def check_model(
    model: FuzzModel, out_dir, *, inputs: int = 3, emulate: bool = False
) -> dict[str, float]:
    """Deploy one random model on every engine (host, and the Cortex-M7 when ``emulate``),
    checking each against TF-Lite Micro on the file; returns :func:`deploy`'s measurements.
    Raises the importer's refusal, or :class:`~common.mcu.deploy.MismatchError` on a wrong output."""
    from common.mcu.deploy import DeployOptions, deploy

    g = accept(model)
    rng = np.random.default_rng(model.seed + 1)
    xs = [rng.integers(-128, 128, size=model.input_shape).astype(np.int8) for _ in range(inputs)]
    options = DeployOptions(emulate=emulate, time_limit_s=120.0)
    return deploy(g, out_dir, xs, options, name=f"fuzz{model.seed}", log=lambda s: None,
                  source=model.data)  # fmt: skip


def scratch_ops(g, out_dir) -> list[tuple[int, str, int]]:  # g: Graph
    """The operators whose kernel scratch extends the per-layer TinyEngine-style arena past the
    activations (``(index, kind, bytes)``, largest first; see
    :func:`common.mcu.planning.place_scratch`)."""
    from common.mcu.codegen import CodegenOptions, generate

    return generate(g, out_dir, CodegenOptions(kernels="specialized")).scratch_ops


def check_malformed(data: bytes, work, timeout: float = 300.0) -> tuple[str, str, float]:
    """Run ``python -m common.mcu deploy`` on ``data`` in a fresh process (host only): returns
    ``(outcome, stderr, seconds)``, outcome one of ``refused`` (exit 2, one line, nothing
    written), ``deployed`` (the flip left a valid model: exit 0, checked bit for bit),
    or a description of what went wrong."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    work = Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    path, out = work / "model.tflite", work / "out"
    path.write_bytes(data)
    cmd = [sys.executable, "-m", "common.mcu", "deploy", str(path), "--out", str(out),
           "--no-emulate"]  # fmt: skip
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                              cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"hang (> {timeout:.0f} s)", "", time.perf_counter() - t0
    seconds = time.perf_counter() - t0
    err = proc.stderr.strip()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if proc.returncode == 0:
        return "deployed", err, seconds
    if proc.returncode < 0:
        return f"killed by signal {-proc.returncode}", err, seconds
    if "Traceback" in err:
        return f"traceback (exit {proc.returncode})", err, seconds
    if proc.returncode != 2:
        return f"exit {proc.returncode}", err, seconds
    if len(lines) != 1:
        return f"{len(lines)} lines on stderr", err, seconds
    if out.exists():
        return "refused but left an output folder", err, seconds
    return "refused", err, seconds


def run(
    n_models: int,
    n_malformed: int,
    *,
    seed: int = 0,
    emulate_every: int = 20,
    inputs: int = 3,
    index0: int = 0,
    work=None,
    log=print,
) -> FuzzReport:
    """The fuzz campaign: ``n_models`` random models from ``seed`` on (every ``emulate_every``-th
    also on the emulated Cortex-M7, counting from ``index0``, the campaign index of the first, so
    a campaign run in parts samples the same models; 0: none) and ``n_malformed`` broken files
    derived from them.

    A model counts as refused only when the validator or the importer refuses it (by reason);
    anything that goes wrong once it is accepted (a mismatch, a crash, a ``ValueError`` of the
    code generator) is a failure."""
    import shutil
    import tempfile
    import time
    from pathlib import Path

    from common.mcu.graph import UnsupportedOperatorError
    from common.mcu.toolchain import ToolchainMissingError
    from common.mcu.validate import ModelFormatError

    rep = FuzzReport()
    t0 = time.perf_counter()
    root = Path(work) if work is not None else Path(tempfile.mkdtemp(prefix="mcu_fuzz_"))
    root.mkdir(parents=True, exist_ok=True)
    valid: list[bytes] = []
    try:
        for i in range(n_models):
            model = random_model(seed + i)
            valid.append(model.data)
            rep.models += 1
            emulate = emulate_every > 0 and (index0 + i) % emulate_every == 0
            out = root / f"model_{model.seed}"
            try:  # only the validator and the importer may refuse a model
                g = accept(model)
            except (ModelFormatError, UnsupportedOperatorError) as exc:
                reason = _refusal(exc)
                rep.refusals[reason] = rep.refusals.get(reason, 0) + 1
                log(f"seed {model.seed}: refused: {exc}")
                continue
            try:
                m = check_model(model, out, inputs=inputs, emulate=emulate)
                over = scratch_ops(g, out / "scratch")
            except ToolchainMissingError:  # not a finding: the caller says how to install it
                raise
            except Exception as exc:  # a wrong output or a crash in an accepted model: the finding
                rep.failures.append(f"seed {model.seed} ({model.description}): "
                                    f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}")  # fmt: skip
                log(f"seed {model.seed}: FAILED: {type(exc).__name__}: {exc}")
                continue
            finally:
                shutil.rmtree(out, ignore_errors=True)
            rep.accepted += 1
            rep.bitexact_host += int(m.get("bitexact", 0.0) == 1.0)
            if emulate:
                rep.emulated += 1
                rep.bitexact_m7 += int(m.get("bitexact", 0.0) == 1.0)
            rep.memory.append({
                "seed": float(model.seed),
                "tflm": m.get("tflm/arena_head_bytes", float("nan")),
                "tflm_plan": m.get("tflm/plan_bytes", float("nan")),
                "tinyengine": m.get("tinyengine/arena_bytes", float("nan")),
                "activation": m.get("tinyengine/activation_bytes", float("nan")),
                "scratch": m.get("tinyengine/scratch_bytes", float("nan")),
                "scratch_kind": over[0][1] if over else "",
            })  # fmt: skip
            log(f"seed {model.seed}: bit-exact ({model.description})")
        if n_malformed and not valid:
            valid = [random_model(seed).data]
        for j, (kind, data) in enumerate(malformed_files(valid, n_malformed, seed)):
            outcome, err, seconds = check_malformed(data, root / f"bad_{j}")
            shutil.rmtree(root / f"bad_{j}", ignore_errors=True)
            rep.malformed_seconds.append(seconds)
            per = rep.malformed.setdefault(kind, {})
            per[outcome] = per.get(outcome, 0) + 1
            if outcome not in ("refused", "deployed"):
                rep.malformed_bad.append(f"{kind} #{j}: {outcome}: {err[-300:]}")
            log(f"malformed {j} ({kind}): {outcome} in {seconds:.1f} s: {err[:160]}")
    finally:
        if work is None:
            shutil.rmtree(root, ignore_errors=True)
    rep.seconds = time.perf_counter() - t0
    return rep
