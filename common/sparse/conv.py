"""Sparse 3-D convolution in pure PyTorch, trainable on CPU, with three implementations.

A sparse convolution computes outputs only at a set of output sites from inputs only at the
active input sites: ``y[o] = sum_k sum_{i: c_i = c_o + d_k} x[i] @ W[k]`` (cross-correlation,
like ``F.conv3d``), ``d_k`` the kernel offsets times the tensor stride (:mod:`.kmap`).

* **Submanifold** (stride 1, the default there; Graham et al., 2018): the output sites are the
  input sites, so the active set does not dilate layer after layer; on the active sites it equals
  a dense ``conv3d(padding=k // 2)`` applied to the grid with zeros elsewhere.
* **Strided** (stride ``s`` > 1): the output sites are ``floor(c / (t s)) * (t s)`` of the input
  sites (:func:`~.kmap.downsample_coords`, ``t`` the input tensor stride), the output tensor stride
  ``t s``; inputs are read at ``out + d * t`` for ``d`` in ``{0, 1}^3`` (kernel 2) or
  ``{-1, 0, 1}^3`` (kernel 3), which equals a dense ``conv3d(kernel 2, stride 2)`` or
  ``conv3d(kernel 3, stride 2, padding 1)`` at the output sites.
* **Regular** stride 1 (``submanifold=False``): the output sites are every grid site within
  reach of an input site (the active set dilates); it starts a new site set, so the output tensor
  gets a new cache.

Coordinates are ``[batch, x, y, z]`` in stride-1 voxel units (:class:`~.tensor.SparseTensor`).
Weights are ``(K, C_in, C_out)`` with ``K`` in the order of :func:`~.kmap.kernel_offsets` (x
slowest), i.e. ``W[k] = dense_weight[:, :, kx, ky, kz].T`` for a dense ``(C_out, C_in, kx, ky, kz)``
weight.

The implementations (``impl``), each a step of the kernel optimisations of TorchSparse (Tang,
Liu et al., MLSys 2022), which grew out of Fast-LiDARNet's "sparse convolution kernel optimization"
(Liu et al., ICRA 2021) and SPVNAS (Tang et al., ECCV 2020):

* ``"naive"``: the kernel map is rebuilt by the dict-based builder at every call, then one
  gather -> matmul -> scatter-add per offset. What a first implementation would write.
* ``"reuse"``: kernel-map reuse: the vectorised map is built once per (tensor stride, kernel size,
  stride) and cached in ``x.cache``, so consecutive layers at the same stride share it; still one
  gather -> matmul -> scatter-add per offset through autograd.
* ``"optimized"``: reuse plus fused gather/scatter (TorchSparse's grouped gather-matmul-scatter):
  one gather of all pairs into a ``(P, C_in)`` buffer, one matmul per offset on slices of it, one
  scatter of the ``(P, C_out)`` products, in a hand-written autograd function whose backward is
  the same three steps transposed; the centre offset of a submanifold convolution is the identity
  map and is a plain matmul with no gather or scatter. See :class:`_FusedSparseConv` for the CPU
  specifics (a reused workspace, scatter as a CSR sparse-dense product).

All three are deterministic on CPU and give the same results up to float rounding.
"""

from __future__ import annotations

import math
import threading
import warnings
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from common.sparse.kmap import (
    KernelMap,
    build_kernel_map,
    build_kernel_map_naive,
    downsample_coords,
    kernel_offsets,
    pack,
    unpack,
)
from common.sparse.tensor import SparseTensor

__all__ = [
    "IMPLS",
    "SparseBatchNorm",
    "SparseConv3d",
    "SparseReLU",
    "release_workspace",
    "sparse_macs",
]

IMPLS = ("naive", "reuse", "optimized")


# ---------------------------------------------------------------------------------------------
# "naive" and "reuse": one gather -> matmul -> scatter-add per offset, through autograd.


def _conv_per_offset(feats: Tensor, weight: Tensor, kmap: KernelMap) -> Tensor:
    """``(N, C_in)`` -> ``(M, C_out)``, one gather / matmul / scatter-add per kernel offset."""
    out = feats.new_zeros(kmap.num_out, weight.shape[2])
    start = 0
    for k, n in enumerate(kmap.pairs_per_offset):
        if n:
            in_k, out_k = kmap.in_idx[start : start + n], kmap.out_idx[start : start + n]
            out.index_add_(0, out_k, feats.index_select(0, in_k) @ weight[k])  # (n, C_out)
        start += n
    return out


# ---------------------------------------------------------------------------------------------
# "optimized": fused gather / per-offset matmul / scatter in one autograd function.


_WORKSPACE = threading.local()


def _workspace(numel: int, dtype: torch.dtype) -> Tensor:
    """A flat scratch buffer of at least ``numel`` elements, reused across calls (per thread).

    Why: a freshly allocated buffer of tens of MB is first-touched page by page (glibc serves
    allocations over 32 MB with a new ``mmap``), which on CPU cost more than the gather that fills
    it (81 MB: 21 ms to allocate and fill vs 4-8 ms into an existing buffer). Nothing written here
    outlives the call that wrote it: only the convolution's inputs are saved for backward.
    """
    buffers: dict[torch.dtype, Tensor] = _WORKSPACE.__dict__.setdefault("buffers", {})
    buf = buffers.get(dtype)
    if buf is None or buf.numel() < numel:
        buffers.pop(dtype, None)  # free the old one before allocating the larger one
        # Always a normal tensor, even when first asked for under torch.inference_mode: an
        # inference tensor could not be written by a later call outside it (e.g. training).
        with torch.inference_mode(False):
            buf = buffers[dtype] = torch.empty(numel, dtype=dtype)
    return buf[:numel]


def release_workspace() -> None:
    """Frees this thread's scratch buffers of the optimized convolution (they are kept between
    calls and grow to the largest ``pairs x (C_in + C_out)`` seen)."""
    _WORKSPACE.__dict__.pop("buffers", None)


class _Segment(NamedTuple):
    """The pairs of one offset ``k``: rows ``[start, stop)`` of the fused buffers."""

    k: int
    start: int
    stop: int
    in_idx: Tensor  # (stop - start,) view into the kernel map
    out_idx: Tensor


def _scatter_structure(
    segments: list[_Segment], chunks: list[_Segment], which: str, num_rows: int, num_pairs: int
) -> tuple[Tensor, Tensor]:
    """CSR ``(crow, col)`` of the ``(num_rows, Q)`` 0/1 matrix with a one at ``(row[p], p)``
    (``row`` = the pairs' ``out_idx`` or ``in_idx``): multiplying it by ``(Q, C)`` sums the rows
    of each output (input) site, a deterministic scatter-add.

    A counting sort, one offset at a time: within an offset a site occurs at most once, so each
    offset's pairs go to the next free slot of their rows; a row lists its pairs in offset order,
    as a stable ``argsort`` would, 2-3x faster.
    """
    counts = sum(torch.bincount(getattr(c, which), minlength=num_rows) for c in chunks)
    crow = torch.zeros(num_rows + 1, dtype=torch.int64)
    crow[1:] = counts.cumsum(0)
    index_dtype = torch.int32 if max(num_pairs, num_rows) < 2**31 else torch.int64
    next_slot = crow[:-1].clone()  # (num_rows,)
    col = torch.empty(num_pairs, dtype=index_dtype)
    for seg in segments:
        rows = getattr(seg, which)
        col.index_put_(
            (next_slot.index_select(0, rows),), torch.arange(seg.start, seg.stop, dtype=index_dtype)
        )
        next_slot.index_add_(0, rows, torch.ones(rows.numel(), dtype=torch.int64))
    return crow.to(index_dtype), col


@dataclass
class _FusedPlan:
    """What the fused convolution needs from a kernel map, derived once per map.

    The fused buffers hold the ``Q`` pairs of every non-identity offset in the map's order;
    ``segments`` are its offsets, ``chunks`` its runs of consecutive map pairs (``k = -1``): all
    pairs, or the two runs around a skipped identity offset. Their indices are views of the map's,
    so the plan copies none.
    """

    segments: list[_Segment]
    chunks: list[_Segment]
    num_pairs: int  # Q
    identity: int | None  # offset whose pairs are (i, i) for every site, or None
    num_in: int
    num_out: int
    _matrices: dict[Any, Any]

    def gather(self, src: Tensor, which: str, out: Tensor) -> None:
        """``out[p] = src[pair p's in_idx (which="in_idx") or out_idx]``, ``out`` ``(Q, C)``."""
        for c in self.chunks:
            torch.index_select(src, 0, getattr(c, which), out=out[c.start : c.stop])

    def scatter(self, which: str, dtype: torch.dtype) -> Tensor:
        """The 0/1 CSR matrix that sums the ``Q`` pair rows into the outputs (``"out_idx"``,
        ``(M, Q)``, forward) or into the inputs (``"in_idx"``, ``(N, Q)``, backward), built on
        first use (inference never builds the backward one)."""
        num_rows = self.num_out if which == "out_idx" else self.num_in
        if which not in self._matrices:
            self._matrices[which] = _scatter_structure(
                self.segments, self.chunks, which, num_rows, self.num_pairs
            )
        if (which, dtype) not in self._matrices:
            crow, col = self._matrices[which]
            with warnings.catch_warnings():  # "sparse CSR support is in beta": we rely on matmul
                warnings.simplefilter("ignore", UserWarning)
                self._matrices[which, dtype] = torch.sparse_csr_tensor(
                    crow,
                    col,
                    torch.ones(col.numel(), dtype=dtype),
                    size=(num_rows, self.num_pairs),
                    check_invariants=False,
                )
        return self._matrices[which, dtype]


def _fused_plan(kmap: KernelMap, identity: int | None) -> _FusedPlan:
    if identity is not None and not (
        kmap.num_in == kmap.num_out == kmap.pairs_per_offset[identity]
    ):
        identity = None  # not a submanifold map after all: gather that offset too
    key = f"fused:{identity}"
    if key not in kmap.derived:
        segments: list[_Segment] = []
        start = pos = 0  # in the map's pairs / in the fused buffers
        for k, n in enumerate(kmap.pairs_per_offset):
            if n and k != identity:
                in_k, out_k = kmap.in_idx[start : start + n], kmap.out_idx[start : start + n]
                segments.append(_Segment(k, pos, pos + n, in_k, out_k))
                pos += n
            start += n
        # Runs of map pairs that are contiguous in the buffers: all of them, or the two around
        # the identity offset [skip_start, skip_stop).
        skip_start = skip_stop = 0
        if identity is not None:
            skip_start = sum(kmap.pairs_per_offset[:identity])
            skip_stop = skip_start + kmap.pairs_per_offset[identity]
        chunks = [
            _Segment(-1, q, q + (b - a), kmap.in_idx[a:b], kmap.out_idx[a:b])
            for q, a, b in [(0, 0, skip_start), (skip_start, skip_stop, kmap.num_pairs)]
            if b > a
        ]
        kmap.derived[key] = _FusedPlan(
            segments=segments,
            chunks=chunks,
            num_pairs=pos,
            identity=identity,
            num_in=kmap.num_in,
            num_out=kmap.num_out,
            _matrices={},
        )
    return kmap.derived[key]


class _FusedSparseConv(torch.autograd.Function):
    """Fused gather -> per-offset matmul -> scatter, forward and backward.

    Why this layout on CPU (measured on 16 LiDAR-like scans x 8000 sites, 13 pairs per site,
    16 -> 16 channels, 2 cores):

    * one ``index_select`` of all ``Q`` non-identity pairs into a ``(Q, C_in)`` buffer and
      ``K - 1`` matmuls writing slices of one ``(Q, C_out)`` buffer: the work of the per-offset
      loop without its ``2 (K - 1)`` fresh allocations and autograd nodes. The buffers are reused
      across calls (:func:`_workspace`): filling a fresh 81 MB buffer cost 21 ms, an existing one
      4-8 ms.
    * the scatter-add is a product with a constant 0/1 CSR matrix (sparse-dense matmul, 3-7 ms
      for 1.3M rows, where ``index_add_`` took 24 ms), deterministic (one thread sums a row, in a
      fixed order). Its structure is built once per kernel map (a counting sort, ~17 ms) and
      shared by the layers that share the map.
    * rejected: a batched matmul over offsets padded to one size (TorchSparse's grouping on GPU):
      the per-offset matmuls already run at memory speed (8 ms for 1.3M x 16 x 16) and padding
      only adds rows; an im2col layout (gather all ``K`` neighbours of each output, one GEMM):
      sites use 13 of the 27 offsets, so it would move and multiply twice the data.

    Backward recomputes the gathered inputs (one more ``index_select``) instead of saving them,
    so the convolution keeps only its input for backward, as a dense conv does. Its input
    gradient is the transposed product: gather ``grad_out`` by the pairs' outputs, multiply by
    ``W[k].T``, scatter to the inputs with the CSR matrix of the inputs.
    """

    @staticmethod
    def forward(ctx: Any, feats: Tensor, weight: Tensor, plan: _FusedPlan) -> Tensor:
        feats = feats.contiguous()
        ctx.save_for_backward(feats, weight)
        ctx.plan = plan
        c_in, c_out = weight.shape[1], weight.shape[2]
        q = plan.num_pairs
        out = None
        if q:
            buf = _workspace(q * (c_in + c_out), feats.dtype)
            gathered = buf[: q * c_in].view(q, c_in)  # (Q, C_in)
            products = buf[q * c_in :].view(q, c_out)  # (Q, C_out)
            plan.gather(feats, "in_idx", gathered)
            for k, a, b, _, _ in plan.segments:
                torch.mm(gathered[a:b], weight[k], out=products[a:b])
            out = torch.sparse.mm(plan.scatter("out_idx", feats.dtype), products)  # (M, C_out)
        if plan.identity is not None:
            centre = weight[plan.identity]
            out = feats @ centre if out is None else out.addmm_(feats, centre)
        return feats.new_zeros(plan.num_out, c_out) if out is None else out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        feats, weight = ctx.saved_tensors
        plan: _FusedPlan = ctx.plan
        need_feats, need_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_out = grad_out.contiguous()  # (M, C_out)
        c_in, c_out = weight.shape[1], weight.shape[2]
        q = plan.num_pairs
        grad_feats = None
        grad_weight = torch.zeros_like(weight) if need_weight else None
        if q:
            buf = _workspace(q * (c_in + c_out), feats.dtype)
            gathered = buf[: q * c_in].view(q, c_in)  # (Q, C_in)
            grad_products = buf[q * c_in :].view(q, c_out)  # (Q, C_out)
            plan.gather(grad_out, "out_idx", grad_products)
            if need_weight:
                plan.gather(feats, "in_idx", gathered)
                for k, a, b, _, _ in plan.segments:
                    torch.mm(gathered[a:b].t(), grad_products[a:b], out=grad_weight[k])
            if need_feats:
                for k, a, b, _, _ in plan.segments:  # reuse the gather buffer for d(gathered)
                    torch.mm(grad_products[a:b], weight[k].t(), out=gathered[a:b])
                scatter_in = plan.scatter("in_idx", feats.dtype)
                grad_feats = torch.sparse.mm(scatter_in, gathered)  # (N, C_in)
        if plan.identity is not None:
            centre = weight[plan.identity]
            if need_weight:
                torch.mm(feats.t(), grad_out, out=grad_weight[plan.identity])
            if need_feats:
                grad_feats = (
                    grad_out @ centre.t()
                    if grad_feats is None
                    else grad_feats.addmm_(grad_out, centre.t())
                )
        if need_feats and grad_feats is None:
            grad_feats = feats.new_zeros(plan.num_in, c_in)
        return grad_feats, grad_weight, None


# ---------------------------------------------------------------------------------------------
# Output sites and kernel maps, cached per input.


def _dilate_coords(coords: Tensor, offsets: Tensor, spatial_shape: tuple[int, int, int]) -> Tensor:
    """Output sites of a regular stride-1 convolution: every in-grid ``c - d`` (sorted)."""
    shifted = coords[None, :, 1:] - offsets[:, None, :]  # (K, N, 3)
    batch = coords[None, :, :1].expand(offsets.shape[0], -1, 1)
    cand = torch.cat([batch, shifted], dim=2).reshape(-1, 4)
    inside = ((cand[:, 1:] >= 0) & (cand[:, 1:] < torch.tensor(spatial_shape))).all(dim=1)
    return unpack(torch.unique(pack(cand[inside])))


class SparseConv3d(nn.Module):
    """Sparse 3-D convolution on a :class:`~.tensor.SparseTensor` (see the module doc).

    Args:
        in_channels: input feature channels.
        out_channels: output feature channels.
        kernel_size: kernel edge length (3: centred ``{-1, 0, 1}``; 2: ``{0, 1}``).
        stride: 1, or the downsampling factor (output tensor stride = input tensor stride x this).
        bias: add a learned bias.
        submanifold: output sites = input sites; defaults to True at stride 1 (must not be True
            at a larger stride).
        impl: ``"naive"``, ``"reuse"`` or ``"optimized"`` (see the module doc).

    Attributes:
        last_pairs: ``(in, out)`` pairs of the last forward; its MACs were
            ``last_pairs * in_channels * out_channels``.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        bias: bool = False,
        submanifold: bool | None = None,
        impl: str = "optimized",
    ) -> None:
        super().__init__()
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        if kernel_size < 1:
            raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
        if submanifold is None:
            submanifold = stride == 1
        if submanifold and stride != 1:
            raise ValueError(f"a submanifold convolution has stride 1, got stride {stride}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        self.submanifold, self.impl = submanifold, impl
        self.kernel_volume = kernel_size**3
        self.weight = nn.Parameter(torch.empty(self.kernel_volume, in_channels, out_channels))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.last_pairs = 0
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform in ``+-1/sqrt(fan_in)``, ``fan_in = K * C_in``: ``nn.Conv3d``'s default
        (kaiming uniform with ``a = sqrt(5)``), which ``init.kaiming_uniform_`` cannot compute
        from a ``(K, C_in, C_out)`` shape."""
        bound = 1.0 / math.sqrt(self.kernel_volume * self.in_channels)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"kernel_size={self.kernel_size}, stride={self.stride}, "
            f"submanifold={self.submanifold}, bias={self.bias is not None}, impl={self.impl!r}"
        )

    def forward(self, x: SparseTensor) -> SparseTensor:
        if x.num_channels != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got {x.num_channels}")
        out_coords, out_stride, cache = self._output_sites(x)
        kmap = self._kernel_map(x, out_coords)
        self.last_pairs = kmap.num_pairs
        if self.impl == "optimized":
            centre = self.kernel_volume // 2
            identity = centre if self.submanifold and self.kernel_size % 2 == 1 else None
            feats = _FusedSparseConv.apply(x.feats, self.weight, _fused_plan(kmap, identity))
        else:
            feats = _conv_per_offset(x.feats, self.weight, kmap)
        if self.bias is not None:
            feats = feats + self.bias
        return SparseTensor(
            out_coords,
            feats,
            stride=out_stride,
            batch_size=x.batch_size,
            spatial_shape=x.spatial_shape,
            cache=cache,
        )

    def _output_sites(self, x: SparseTensor) -> tuple[Tensor, int, dict[Any, Any]]:
        """Output coordinates, their tensor stride, and the cache the output tensor carries."""
        if self.submanifold:
            return x.coords, x.stride, x.cache
        if self.stride == 1:  # regular: a new, dilated site set, hence a new cache
            offsets = kernel_offsets(self.kernel_size, x.stride)
            return _dilate_coords(x.coords, offsets, x.spatial_shape), x.stride, {}
        out_stride = x.stride * self.stride
        if self.impl == "naive":
            return downsample_coords(x.coords, x.stride, self.stride), out_stride, x.cache
        key = ("coords", out_stride)
        hit = x.cache.get(key)
        if hit is None or hit[0] is not x.coords:
            out = downsample_coords(x.coords, x.stride, self.stride)
            if hit is None:
                x.cache[key] = (x.coords, out)
            return out, out_stride, x.cache
        return hit[1], out_stride, x.cache

    def _kernel_map(self, x: SparseTensor, out_coords: Tensor) -> KernelMap:
        offsets = kernel_offsets(self.kernel_size, x.stride)
        if self.impl == "naive":
            return build_kernel_map_naive(x.coords, out_coords, offsets)
        key = ("kmap", x.stride, self.kernel_size, self.stride, self.submanifold)
        hit = x.cache.get(key)
        # The same key on other sites (a tensor built by hand with a shared cache, or the output
        # of a regular convolution): build the map but leave the cached one alone.
        if hit is not None and hit[0] is x.coords and hit[1] is out_coords:
            return hit[2]
        kmap = build_kernel_map(x.coords, out_coords, offsets)
        if hit is None:
            x.cache[key] = (x.coords, out_coords, kmap)
        return kmap


def sparse_macs(model: nn.Module) -> int:
    """Multiply-accumulates of the last forward of every :class:`SparseConv3d` in ``model``,
    counted on the ``(in, out)`` pairs of active sites only."""
    return sum(
        m.last_pairs * m.in_channels * m.out_channels
        for m in model.modules()
        if isinstance(m, SparseConv3d)
    )


class SparseBatchNorm(nn.BatchNorm1d):
    """``BatchNorm1d`` over the features of the active sites (statistics over all sites of the
    batch, as in MinkowskiEngine and TorchSparse)."""

    def forward(self, x: SparseTensor) -> SparseTensor:  # type: ignore[override]
        return x.replace(super().forward(x.feats))


class SparseReLU(nn.Module):
    """ReLU on the features of the active sites."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: SparseTensor) -> SparseTensor:
        return x.replace(F.relu(x.feats, inplace=self.inplace))
