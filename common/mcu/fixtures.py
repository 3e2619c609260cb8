"""Small random int8 graphs for tests: every supported operator, random weights and scales."""

from __future__ import annotations

import numpy as np

from common.mcu.graph import Graph, Op, Tensor


class GraphBuilder:
    """Append operators to a graph with random (seeded) weights and output quantization."""

    def __init__(self, shape: tuple[int, int, int, int], *, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.g = Graph(tensors={}, ops=[], inputs=["input"], outputs=[])
        self._act("input", shape)
        self.last = "input"
        self.n = 0

    def _act(
        self, name: str, shape: tuple[int, ...], scale: float | None = None, zp: int | None = None
    ) -> str:
        scale = float(self.rng.uniform(0.01, 0.1)) if scale is None else scale
        zp = int(self.rng.integers(-20, 20)) if zp is None else zp
        self.g.tensors[name] = Tensor(
            name, tuple(shape), "int8", np.array([scale], np.float32), np.array([zp])
        )
        return name

    def _const(
        self, name: str, data: np.ndarray, scale: np.ndarray, dtype: str, dim: int = 0
    ) -> str:
        self.g.tensors[name] = Tensor(
            name,
            data.shape,
            dtype,
            scale.astype(np.float32),
            np.zeros(scale.size, np.int64),
            data,
            dim,
        )
        return name

    def _name(self, kind: str) -> str:
        self.n += 1
        return f"{kind}_{self.n}"

    def conv(
        self,
        out_c: int,
        k: int,
        stride: int = 1,
        padding: str = "same",
        activation: str = "relu6",
        depthwise: bool = False,
    ) -> str:
        from common.mcu.graph import conv_output_size

        x = self.g.tensors[self.last]
        _, h, w, c = x.shape
        name = self._name("dw" if depthwise else "conv")
        if depthwise:
            out_c = c
            wq = self.rng.integers(-127, 128, size=(1, k, k, c)).astype(np.int8)
            dim = 3
        else:
            wq = self.rng.integers(-127, 128, size=(out_c, k, k, c)).astype(np.int8)
            dim = 0
        ws = self.rng.uniform(0.001, 0.02, size=out_c)
        wt = self._const(f"{name}/w", wq, ws, "int8", dim)
        bias = self.rng.integers(-2000, 2000, size=out_c).astype(np.int32)
        bt = self._const(f"{name}/b", bias, x.s * ws, "int32")
        oh, _ = conv_output_size(h, k, stride, padding)
        ow, _ = conv_output_size(w, k, stride, padding)
        out = self._act(f"{name}/out", (1, oh, ow, out_c))
        kind = "depthwise_conv2d" if depthwise else "conv2d"
        opts = {"stride": (stride, stride), "padding": padding, "activation": activation}
        if depthwise:
            opts["depth_multiplier"] = 1
        self.g.ops.append(Op(kind, [self.last, wt, bt], [out], opts, name))
        self.last = out
        return out

    def add(
        self, other: str, activation: str = "none", *, first: bool = True, fit: bool = False
    ) -> str:
        """``last + other`` (``other + last`` unless ``first``) with TF-Lite broadcasting: the
        output has the operands' broadcast shape; ``fit``: its scale 1.5 x the larger input
        scale (the sums rarely saturate), else random."""
        name = self._name("add")
        a, b = self.g.tensors[self.last], self.g.tensors[other]
        shape = tuple(int(v) for v in np.broadcast_shapes(a.shape, b.shape))
        out = self._act(f"{name}/out", shape, 1.5 * max(a.s, b.s) if fit else None)
        operands = [self.last, other] if first else [other, self.last]
        self.g.ops.append(Op("add", operands, [out], {"activation": activation}, name))
        self.last = out
        return out

    def constant(self, shape: tuple[int, ...]) -> str:
        """A random int8 constant quantized per tensor (an ADD operand); ``last`` is unchanged."""
        name = self._name("const")
        data = self.rng.integers(-128, 128, size=shape).astype(np.int8)
        scale = float(self.rng.uniform(0.01, 0.1))
        zp = int(self.rng.integers(-20, 20))
        self.g.tensors[name] = Tensor(
            name, tuple(shape), "int8", np.array([scale], np.float32), np.array([zp]), data
        )
        return name

    def pool(self, kind: str, k: int | tuple[int, int], stride: int, padding: str = "valid") -> str:
        from common.mcu.graph import conv_output_size

        x = self.g.tensors[self.last]
        name = self._name(kind)
        kh, kw = (k, k) if isinstance(k, int) else k
        oh, _ = conv_output_size(x.shape[1], kh, stride, padding)
        ow, _ = conv_output_size(x.shape[2], kw, stride, padding)
        out = self._act(f"{name}/out", (1, oh, ow, x.shape[3]), x.s, x.zp)  # pools keep the scale
        self.g.ops.append(
            Op(
                kind,
                [self.last],
                [out],
                {
                    "stride": (stride, stride),
                    "padding": padding,
                    "filter": (kh, kw),
                    "activation": "none",
                },
                name,
            )
        )
        self.last = out
        return out

    def pad(self, top: int, bottom: int, left: int, right: int) -> str:
        x = self.g.tensors[self.last]
        name = self._name("pad")
        out = self._act(
            f"{name}/out",
            (1, x.shape[1] + top + bottom, x.shape[2] + left + right, x.shape[3]),
            x.s,
            x.zp,
        )
        self.g.ops.append(
            Op("pad", [self.last], [out], {"paddings": ((top, bottom), (left, right))}, name)
        )
        self.last = out
        return out

    def reshape(self, shape: tuple[int, ...]) -> str:
        x = self.g.tensors[self.last]
        name = self._name("reshape")
        out = self._act(f"{name}/out", shape, x.s, x.zp)
        self.g.ops.append(Op("reshape", [self.last], [out], {}, name))
        self.last = out
        return out

    def fc(self, out_f: int, activation: str = "none") -> str:
        x = self.g.tensors[self.last]
        name = self._name("fc")
        n_in = int(np.prod(x.shape[1:]))
        wq = self.rng.integers(-127, 128, size=(out_f, n_in)).astype(np.int8)
        ws = np.array([self.rng.uniform(0.001, 0.02)])
        wt = self._const(f"{name}/w", wq, ws, "int8")
        bt = self._const(
            f"{name}/b",
            self.rng.integers(-2000, 2000, size=out_f).astype(np.int32),
            x.s * ws,
            "int32",
        )
        out = self._act(f"{name}/out", (1, out_f))
        self.g.ops.append(
            Op("fully_connected", [self.last, wt, bt], [out], {"activation": activation}, name)
        )
        self.last = out
        return out

    def softmax(self, beta: float = 1.0) -> str:
        x = self.g.tensors[self.last]
        name = self._name("softmax")
        out = self._act(f"{name}/out", x.shape, 1.0 / 256.0, -128)  # TF-Lite's fixed output qparams
        self.g.ops.append(Op("softmax", [self.last], [out], {"beta": beta}, name))
        self.last = out
        return out

    def build(self) -> Graph:
        self.g.outputs = [self.last]
        self.g.validate()
        return self.g


def random_graph(seed: int = 0, size: int = 12) -> Graph:
    """A MobileNetV2-like chain covering every operator but softmax."""
    b = GraphBuilder((1, size, size, 3), seed=seed)
    b.conv(8, 3, stride=2)  # stem
    skip = b.conv(8, 3, depthwise=True, activation="relu")
    b.conv(8, 1, activation="none")
    b.add(skip)
    b.conv(16, 1)
    b.conv(16, 5, stride=2, depthwise=True)
    b.pad(1, 0, 0, 1)
    b.pool("max_pool2d", 2, 1)
    b.pool("avg_pool2d", 2, 2, padding="same")
    x = b.g.tensors[b.last]
    b.reshape((1, int(np.prod(x.shape[1:]))))
    b.fc(10)
    return b.build()


def broadcast_graph(seed: int = 41) -> Graph:
    """ADD with TF-Lite broadcasting and constant operands: a feature map plus its global average
    pool (small operand first), plus constants per channel, of the whole shape (first: the
    in-place rule must not pick it), of rank 1, per row, per column of one channel (an add per
    element), and a row vector plus a column vector (the output larger than both operands)."""
    b = GraphBuilder((1, 6, 6, 5), seed=seed)
    x = b.conv(5, 3, activation="relu")  # 6x6x5
    pooled = b.pool("avg_pool2d", 6, 1)  # 1x1x5
    b.last = x
    b.add(pooled, first=False, fit=True)
    b.add(b.constant((1, 1, 1, 5)), fit=True)
    b.add(b.constant((1, 6, 6, 5)), first=False, fit=True)
    b.add(b.constant((5,)), activation="relu6", fit=True)
    b.add(b.constant((1, 6, 1, 5)), fit=True)
    b.add(b.constant((1, 1, 6, 1)), activation="relu", fit=True)
    b.pool("avg_pool2d", (1, 6), 1)  # 6x1x5
    b.add(b.constant((1, 1, 6, 5)), first=False, fit=True)  # 6x6x5
    b.conv(4, 1)
    return b.build()
