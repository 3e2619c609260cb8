"""Sparse convolutions against dense ``F.conv3d`` on the active sites (values and gradients), the
three implementations against each other, kernel-map reuse, and MAC counting."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import common.sparse.conv as conv_module
from common.sparse import (
    IMPLS,
    SparseBatchNorm,
    SparseConv3d,
    SparseReLU,
    SparseTensor,
    kernel_offsets,
    release_workspace,
    sparse_macs,
)
from tests.common.sparse.test_kmap import random_sites

SHAPE = (8, 8, 6)
TOL = {"atol": 1e-10, "rtol": 1e-8}  # float64


def sparse_input(channels: int = 3, density: float = 0.3, seed: int = 0, shape=SHAPE):
    coords = random_sites(2, shape, density, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    feats = torch.randn(len(coords), channels, generator=gen, dtype=torch.float64)
    return SparseTensor(coords, feats.requires_grad_(), batch_size=2, spatial_shape=shape)


def densify(coords: torch.Tensor, feats: torch.Tensor, shape, stride: int = 1) -> torch.Tensor:
    """``(B, C, X/s, Y/s, Z/s)`` with ``feats`` at ``coords`` (differentiable), zeros elsewhere."""
    size = [-(-n // stride) for n in shape]
    dense = feats.new_zeros(2, *size, feats.shape[1])
    cell = coords[:, 1:] // stride
    dense = dense.index_put((coords[:, 0], cell[:, 0], cell[:, 1], cell[:, 2]), feats)
    return dense.permute(0, 4, 1, 2, 3)


def at_sites(dense: torch.Tensor, coords: torch.Tensor, stride: int) -> torch.Tensor:
    """Rows of a dense ``(B, C, ...)`` grid at the sites ``coords`` (tensor stride ``stride``)."""
    cell = coords[:, 1:] // stride
    return dense.permute(0, 2, 3, 4, 1)[coords[:, 0], cell[:, 0], cell[:, 1], cell[:, 2]]


def dense_weight(conv: SparseConv3d) -> torch.Tensor:
    """``(K, Cin, Cout)`` -> ``(Cout, Cin, k, k, k)``."""
    k = conv.kernel_size
    return conv.weight.view(k, k, k, conv.in_channels, conv.out_channels).permute(4, 3, 0, 1, 2)


def make_conv(impl: str, seed: int = 0, **kwargs) -> SparseConv3d:
    torch.manual_seed(seed)
    return SparseConv3d(impl=impl, **kwargs).double()


def check_against_dense(convs: list[SparseConv3d], dense_args: list[dict], x: SparseTensor) -> None:
    """Runs the sparse stack and the dense one (each dense output masked to the sparse output's
    sites, the sparse semantics), and compares outputs and input / weight gradients."""
    y = x
    sites = []
    for conv in convs:
        y = conv(y)
        sites.append((y.coords, y.stride))
    gen = torch.Generator().manual_seed(7)
    grad_y = torch.randn(y.feats.shape, generator=gen, dtype=torch.float64)
    params = [x.feats] + [p for c in convs for p in (c.weight, c.bias) if p is not None]
    sparse_grads = torch.autograd.grad(y.feats, params, grad_y)

    d = densify(x.coords, x.feats, x.spatial_shape)
    for conv, args, (coords, stride) in zip(convs, dense_args, sites, strict=True):
        d = F.conv3d(d, dense_weight(conv), conv.bias, **args)
        ones = torch.ones(len(coords), 1, dtype=torch.float64)
        mask = densify(coords, ones, x.spatial_shape, stride)
        assert mask.shape[2:] == d.shape[2:]
        d = d * mask
    dense_out = at_sites(d, *sites[-1])
    torch.testing.assert_close(y.feats, dense_out, **TOL)
    dense_grads = torch.autograd.grad(dense_out, params, grad_y)
    for got, want in zip(sparse_grads, dense_grads, strict=True):
        torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bias", [False, True])
def test_submanifold_equals_dense_conv(impl: str, bias: bool) -> None:
    x = sparse_input()
    conv = make_conv(impl, in_channels=3, out_channels=4, bias=bias)
    if bias:
        nn.init.normal_(conv.bias)
    y = conv(x)
    assert torch.equal(y.coords, x.coords) and y.stride == 1
    dense = F.conv3d(densify(x.coords, x.feats, SHAPE), dense_weight(conv), conv.bias, padding=1)
    torch.testing.assert_close(y.feats, at_sites(dense, x.coords, 1), **TOL)
    check_against_dense([conv], [{"padding": 1}], x)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kernel", [2, 3])
def test_strided_equals_dense_conv(impl: str, kernel: int) -> None:
    x = sparse_input()
    conv = make_conv(impl, in_channels=3, out_channels=5, kernel_size=kernel, stride=2)
    y = conv(x)
    assert y.stride == 2 and (y.coords[:, 1:] % 2 == 0).all()
    check_against_dense([conv], [{"stride": 2, "padding": 1 if kernel == 3 else 0}], x)


@pytest.mark.parametrize("impl", IMPLS)
def test_stacked_strided_convs_reach_stride_4(impl: str) -> None:
    x = sparse_input(shape=(12, 12, 8), density=0.2)
    convs = [
        make_conv(impl, 1, in_channels=3, out_channels=4, kernel_size=2, stride=2),
        make_conv(impl, 2, in_channels=4, out_channels=4),  # submanifold at stride 2
        make_conv(impl, 3, in_channels=4, out_channels=2, kernel_size=3, stride=2),
        make_conv(impl, 4, in_channels=2, out_channels=3),  # submanifold at stride 4
    ]
    args = [{"stride": 2}, {"padding": 1}, {"stride": 2, "padding": 1}, {"padding": 1}]
    y = nn.Sequential(*convs)(x)
    assert y.stride == 4 and (y.coords[:, 1:] % 4 == 0).all() and len(y.coords) > 10
    check_against_dense(convs, args, x)


@pytest.mark.parametrize("impl", IMPLS)
def test_regular_stride_1_conv_dilates_and_equals_dense(impl: str) -> None:
    x = sparse_input(density=0.1)
    conv = make_conv(impl, in_channels=3, out_channels=2, submanifold=False)
    y = conv(x)
    assert len(y.coords) > len(x.coords)
    assert y.cache is not x.cache  # a new site set starts a new cache
    dense = F.conv3d(densify(x.coords, x.feats, SHAPE), dense_weight(conv), padding=1)
    torch.testing.assert_close(y.feats, at_sites(dense, y.coords, 1), **TOL)
    # Outside the dilated sites the dense output is exactly zero.
    mask = densify(y.coords, torch.ones(len(y.coords), 1, dtype=torch.float64), SHAPE)
    assert (dense * (1 - mask)).abs().max() == 0


def test_implementations_agree_on_outputs_and_gradients() -> None:
    """A small network (convs, norm, ReLU, residual, downsampling) in float32, per impl."""

    def net(impl: str) -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(
            SparseConv3d(in_channels=3, out_channels=8, impl=impl),
            SparseBatchNorm(8),
            SparseReLU(),
            SparseConv3d(in_channels=8, out_channels=8, impl=impl, bias=True),
            SparseConv3d(in_channels=8, out_channels=8, kernel_size=2, stride=2, impl=impl),
            SparseConv3d(in_channels=8, out_channels=4, impl=impl),
        )

    results = {}
    for impl in IMPLS:
        x = sparse_input(density=0.4)
        x = x.replace(x.feats.detach().float().requires_grad_())
        model = net(impl)
        y = model(x)
        gen = torch.Generator().manual_seed(1)
        (y.feats * torch.randn(y.feats.shape, generator=gen)).sum().backward()
        results[impl] = (y, x.feats.grad, [p.grad for p in model.parameters()])
    ref_y, ref_gx, ref_gw = results["naive"]
    for impl in ("reuse", "optimized"):
        y, gx, gw = results[impl]
        assert torch.equal(y.coords, ref_y.coords)
        torch.testing.assert_close(y.feats, ref_y.feats, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(gx, ref_gx, atol=1e-5, rtol=1e-5)
        for a, b in zip(gw, ref_gw, strict=True):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("impl", ["reuse", "optimized"])
def test_gradcheck(impl: str) -> None:
    x = sparse_input(channels=2, density=0.3, shape=(4, 4, 3))
    conv = make_conv(impl, in_channels=2, out_channels=2)
    down = make_conv(impl, in_channels=2, out_channels=2, kernel_size=3, stride=2)

    def fn(feats: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
        y = torch.func.functional_call(conv, {"weight": w1}, (x.replace(feats),))
        return torch.func.functional_call(down, {"weight": w2}, (y,)).feats

    inputs = (x.feats.detach().requires_grad_(), conv.weight.detach(), down.weight.detach())
    inputs = tuple(t.clone().requires_grad_() for t in inputs)
    assert torch.autograd.gradcheck(fn, inputs)


def test_optimized_is_deterministic_and_survives_a_released_workspace() -> None:
    x = sparse_input(density=0.5)
    conv = make_conv("optimized", in_channels=3, out_channels=3)
    outs = []
    for _ in range(2):
        y = conv(x.replace(x.feats.detach().requires_grad_()))
        y.feats.sum().backward()
        outs.append((y.feats.detach(), conv.weight.grad.clone()))
        conv.weight.grad = None
        release_workspace()
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])


@pytest.mark.parametrize("impl", IMPLS)
def test_kernel_map_reuse(impl: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"fast": 0, "naive": 0}

    def counting(name, fn):
        def wrapper(*args):
            calls[name] += 1
            return fn(*args)

        return wrapper

    monkeypatch.setattr(
        conv_module, "build_kernel_map", counting("fast", conv_module.build_kernel_map)
    )
    monkeypatch.setattr(
        conv_module, "build_kernel_map_naive", counting("naive", conv_module.build_kernel_map_naive)
    )
    x = sparse_input()
    model = nn.Sequential(
        make_conv(impl, in_channels=3, out_channels=4),
        SparseReLU(),
        make_conv(impl, in_channels=4, out_channels=4),
        make_conv(impl, in_channels=4, out_channels=4, kernel_size=2, stride=2),
        make_conv(impl, in_channels=4, out_channels=4),
        make_conv(impl, in_channels=4, out_channels=4),
    )
    y = model(x)
    assert y.cache is x.cache
    if impl == "naive":
        assert calls == {"fast": 0, "naive": 5}  # every layer rebuilds its map
        assert x.cache == {}
    else:
        # One map per (tensor stride, kernel, stride): stride-1 submanifold, the downsampling,
        # stride-2 submanifold.
        assert calls == {"fast": 3, "naive": 0}
        assert {k for k in x.cache if k[0] == "kmap"} == {
            ("kmap", 1, 3, 1, True),
            ("kmap", 1, 2, 2, False),
            ("kmap", 2, 3, 1, True),
        }
        model(x)  # same input again: everything comes from the cache
        assert calls["fast"] == 3


def test_cache_is_not_trusted_for_other_sites() -> None:
    """A tensor that shares a cache but has other sites gets its own (correct) map."""
    a, b = sparse_input(seed=0), sparse_input(seed=5)
    b_shared = SparseTensor(b.coords, b.feats, batch_size=2, spatial_shape=SHAPE, cache=a.cache)
    conv = make_conv("optimized", in_channels=3, out_channels=2)
    conv(a)
    torch.testing.assert_close(conv(b_shared).feats, conv(b).feats, **TOL)


def test_sparse_macs_counts_pairs_on_active_sites() -> None:
    x = sparse_input(channels=3, density=0.15)
    model = nn.Sequential(
        make_conv("optimized", in_channels=3, out_channels=8),
        make_conv("optimized", in_channels=8, out_channels=6, kernel_size=2, stride=2),
    )
    assert sparse_macs(model) == 0  # nothing run yet
    model(x)
    kmaps = [v[2] for k, v in x.cache.items() if k[0] == "kmap"]
    by_layer = {(m.in_channels, m.out_channels): m for m in model}
    expected = 0
    for kmap, (cin, cout) in zip(kmaps, [(3, 8), (8, 6)], strict=True):
        assert sum(kmap.pairs_per_offset) == by_layer[(cin, cout)].last_pairs
        expected += sum(kmap.pairs_per_offset) * cin * cout
    assert sparse_macs(model) == expected
    dense_macs = 2 * 8 * 8 * 6 * 27 * 3 * 8 + 2 * 4 * 4 * 3 * 8 * 8 * 6
    assert 0 < expected < dense_macs / 3


def test_init_matches_dense_conv_bounds() -> None:
    conv = SparseConv3d(in_channels=16, out_channels=32, bias=True)
    bound = 1 / (27 * 16) ** 0.5
    assert conv.weight.shape == (27, 16, 32)
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.9 * bound
    assert conv.bias.abs().max() <= bound


def test_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="impl must be one of"):
        SparseConv3d(in_channels=1, out_channels=1, impl="fast")
    with pytest.raises(ValueError, match="submanifold convolution has stride 1"):
        SparseConv3d(in_channels=1, out_channels=1, stride=2, submanifold=True)
    with pytest.raises(ValueError, match="expected 4 input channels"):
        SparseConv3d(in_channels=4, out_channels=1)(sparse_input(channels=3))
    assert kernel_offsets(3).shape == (27, 3)


def test_scatter_matrices_are_the_one_hot_pair_matrices() -> None:
    """The CSR matrices of the optimized path have a one at (out_idx[p], p), resp. (in_idx[p], p),
    and list a row's pairs in offset order (what a stable argsort of the rows gives)."""
    from common.sparse.conv import _fused_plan
    from common.sparse.kmap import build_kernel_map, downsample_coords

    coords = random_sites(2, SHAPE, 0.4)
    down = downsample_coords(coords, 1, 2)
    for kmap, identity in [
        (build_kernel_map(coords, coords, kernel_offsets(3)), 13),
        (build_kernel_map(coords, down, kernel_offsets(3)), None),
    ]:
        plan = _fused_plan(kmap, identity)
        assert plan.num_pairs == kmap.num_pairs - (0 if identity is None else len(coords))
        for which, count in [("out_idx", plan.num_out), ("in_idx", plan.num_in)]:
            rows = torch.cat([getattr(seg, which) for seg in plan.segments])
            assert torch.equal(rows, torch.cat([getattr(c, which) for c in plan.chunks]))
            matrix = plan.scatter(which, torch.float64)
            one_hot = torch.zeros(count, plan.num_pairs, dtype=torch.float64)
            one_hot[rows, torch.arange(plan.num_pairs)] = 1
            assert torch.equal(matrix.to_dense(), one_hot)
            assert torch.equal(matrix.col_indices().long(), torch.argsort(rows, stable=True))


def test_optimized_works_in_inference_mode_then_training() -> None:
    """The scratch buffer first allocated under ``torch.inference_mode`` must still be writable
    by a later training step."""
    release_workspace()
    conv = make_conv("optimized", in_channels=3, out_channels=3)
    with torch.inference_mode():
        expected = conv(sparse_input(density=0.5)).feats.clone()
    x = sparse_input(density=0.5)
    y = conv(x)
    y.feats.sum().backward()
    torch.testing.assert_close(y.feats.detach(), expected, **TOL)
    assert x.feats.grad is not None and conv.weight.grad is not None
