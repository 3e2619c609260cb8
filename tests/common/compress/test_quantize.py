from __future__ import annotations

import pytest
import torch

from common.compress import (
    KMeansQuantConfig,
    MagnitudePruneConfig,
    bake_,
    kmeans_quantize_,
    prune_,
    quantized_layers,
)
from common.compress.kmeans import init_centroids, kmeans_1d, wcss
from common.models import create_model


@pytest.mark.parametrize("init", ["linear", "density", "random"])
def test_kmeans_improves_on_its_initialisation(init: str) -> None:
    x = torch.randn(5000)
    c0 = init_centroids(x, 8, init, generator=torch.Generator().manual_seed(0))
    from common.compress.kmeans import assign

    c, a = kmeans_1d(x, 8, init=init)
    assert c.shape == (8,) and torch.all(c[1:] >= c[:-1])
    assert wcss(x, c, a) <= wcss(x, c0.float(), assign(x, c0)) + 1e-6


def test_linear_init_spans_the_range() -> None:
    x = torch.tensor([-2.0, 0.0, 0.1, 4.0])
    assert init_centroids(x, 4, "linear").tolist() == pytest.approx([-2.0, 0.0, 2.0, 4.0])


@pytest.mark.parametrize("bits", [1, 2, 3, 5])
def test_quantized_layer_has_at_most_2_pow_bits_values(bits: int) -> None:
    model = create_model("lenet300")
    masks, _ = prune_(model, MagnitudePruneConfig("density", 0.3))
    kmeans_quantize_(model, KMeansQuantConfig(fc_bits=bits), masks=masks)
    for name, module in [("ip1", model.ip1), ("ip2", model.ip2), ("ip3", model.ip3)]:
        values = torch.unique(module.weight.detach())
        assert values.numel() <= 2**bits, name  # the zero of pruned weights counts as one code
        assert torch.equal(module.weight != 0, masks[name])


def test_unpruned_layer_uses_every_code_for_clusters() -> None:
    model = create_model("lenet300")
    report = kmeans_quantize_(model, KMeansQuantConfig(fc_bits=2))
    assert [r.clusters for r in report.layers] == [4, 4, 4]
    assert all(
        torch.unique(m.weight.detach()).numel() <= 4 for m in (model.ip1, model.ip2, model.ip3)
    )


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_centroid_gradient_is_the_sum_of_its_weights_gradients(mode: str) -> None:
    """Eq. 3: dL/dC_k = sum over the weights of cluster k (``mean`` divides it by the cluster size)."""
    torch.manual_seed(0)
    model = create_model("lenet300")
    masks, _ = prune_(model, MagnitudePruneConfig("density", 0.5))
    kmeans_quantize_(model, KMeansQuantConfig(fc_bits=3, centroid_grad=mode), masks=masks)
    x = torch.randn(8, 1, 28, 28)
    # Gradient w.r.t. the effective weight, computed separately as a reference.
    w = model.ip1.weight.detach().clone().requires_grad_(True)
    ref_out = torch.nn.functional.linear(x.flatten(1), w, model.ip1.bias)
    ref_loss = (model.ip3(model.relu(model.ip2(model.relu(ref_out))))).square().mean()
    ref_loss.backward()
    loss = model(x).square().mean()
    loss.backward()
    shared = quantized_layers(model)["ip1"]
    codes = shared.codes
    expected = torch.zeros(shared.centroids.numel())
    expected.index_add_(0, (codes[codes > 0] - 1).flatten(), w.grad[codes > 0].flatten())
    if mode == "mean":
        expected /= torch.bincount(
            (codes[codes > 0] - 1).flatten(), minlength=expected.numel()
        ).clamp(min=1)
    assert torch.allclose(shared.centroids.grad, expected, atol=1e-6)


def test_fine_tuning_moves_centroids_not_codes() -> None:
    torch.manual_seed(0)
    model = create_model("lenet300")
    masks, _ = prune_(model, MagnitudePruneConfig("density", 0.5))
    kmeans_quantize_(model, KMeansQuantConfig(fc_bits=4), masks=masks)
    shared = quantized_layers(model)["ip2"]
    codes, before = shared.codes.clone(), shared.centroids.detach().clone()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(torch.randn(4, 1, 28, 28)).sum().backward()
    opt.step()
    assert torch.equal(shared.codes, codes) and not torch.equal(shared.centroids.detach(), before)
    assert torch.unique(model.ip2.weight.detach()).numel() <= 16
    bake_(model)
    assert not quantized_layers(model) and model.ip2.weight.requires_grad
    assert torch.unique(model.ip2.weight.detach()).numel() <= 16


def test_bits_per_layer_type_and_override() -> None:
    model = create_model("lenet5")
    report = kmeans_quantize_(model, KMeansQuantConfig(conv_bits=8, fc_bits=5, layers={"ip2": 3}))
    assert {r.name: r.bits for r in report.layers} == {"conv1": 8, "conv2": 8, "ip1": 5, "ip2": 3}
