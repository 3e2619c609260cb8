from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from common.measure import (
    count_macs,
    count_parameters,
    measure_latency,
    model_size_bytes,
    peak_activation_memory,
)
from common.models import MODELS, create_model, input_shape


def _fvcore_macs(model: nn.Module, x: torch.Tensor) -> int:
    """fvcore's jit-trace counter restricted to conv and matrix products (its default also counts norms)."""
    from fvcore.nn.jit_analysis import JitModelAnalysis
    from fvcore.nn.jit_handles import (
        addmm_flop_jit,
        bmm_flop_jit,
        conv_flop_jit,
        einsum_flop_jit,
        linear_flop_jit,
        matmul_flop_jit,
    )

    analysis = JitModelAnalysis(model.eval(), (x,))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.set_op_handle(
        **{
            "aten::addmm": addmm_flop_jit,
            "aten::bmm": bmm_flop_jit,
            "aten::_convolution": conv_flop_jit,
            "aten::einsum": einsum_flop_jit,
            "aten::matmul": matmul_flop_jit,
            "aten::mm": matmul_flop_jit,
            "aten::linear": linear_flop_jit,
        }
    )
    return int(analysis.total())


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize(
    "name",
    [
        "resnet18",
        "mobilenet_v2",
        "alexnet",
        "vgg11",
        "squeezenet1_0",
        "shufflenet_v2_x0_5",
        "efficientnet_b0",
        "densenet121",
        "convnext_tiny",
    ],
)
def test_macs_match_fvcore_on_torchvision_models(name: str) -> None:
    model = getattr(torchvision.models, name)()
    x = torch.randn(1, 3, 96, 96)
    assert count_macs(model, x).total == _fvcore_macs(model, x)


@pytest.mark.parametrize("name", [n for n in MODELS if hasattr(MODELS.get(n), "input_shape")])
def test_macs_match_fvcore_on_registered_models(name: str) -> None:
    """Vision models (token models are checked against their analytic count instead:
    tests/common/models/test_transformer_models.py)."""
    model = create_model(name)
    x = torch.randn(2, *input_shape(name))
    assert count_macs(model, x).total == _fvcore_macs(model, x)


@pytest.mark.parametrize(
    ("name", "weights"),
    [
        ("resnet18", "ResNet18_Weights"),
        ("mobilenet_v2", "MobileNet_V2_Weights"),
        ("vit_b_16", "ViT_B_16_Weights"),
    ],
)
def test_macs_match_torchvision_published_gflops(name: str, weights: str) -> None:
    """torchvision publishes GFLOPS (= GMACs) per model at 224x224; ViT includes attention matmuls,
    which fvcore's trace misses, so this is the reference for transformers."""
    published = getattr(torchvision.models, weights).IMAGENET1K_V1.meta["_ops"]
    ours = count_macs(getattr(torchvision.models, name)(), torch.randn(1, 3, 224, 224)).total
    assert round(ours / 1e9, 3) == pytest.approx(published, abs=1e-3)


def test_macs_per_module_and_lenet_by_hand() -> None:
    report = count_macs(create_model("lenet5"), torch.zeros(1, 1, 28, 28))
    # conv1: 20x24x24 outputs x 25; conv2: 50x8x8 x (20x25); ip1: 800x500; ip2: 500x10.
    assert report.per_module == {"conv1": 288000, "conv2": 1600000, "ip1": 400000, "ip2": 5000}
    assert report.total == 2293000


def test_parameters_and_size() -> None:
    model = create_model("lenet300")
    assert count_parameters(model) == 266610
    assert model_size_bytes(model) == 266610 * 4
    assert model_size_bytes(model, bits=5) == (266610 * 5 + 7) // 8
    with torch.no_grad():
        model.ip1.weight.zero_()
    assert count_parameters(model, nonzero=True) == 266610 - 784 * 300


def test_peak_memory_sequential_by_hand() -> None:
    report = peak_activation_memory(create_model("lenet5"), torch.zeros(1, 1, 28, 28))
    # pool1 runs while conv1's 20x24x24 output and its own 20x12x12 output are both live.
    assert report.peak_bytes == 20 * 24 * 24 + 20 * 12 * 12
    assert report.peak_step == "pool1"
    assert [s.live_bytes for s in report.steps][:2] == [784 + 11520, 11520 + 2880]


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(4, 8, 1)
        self.relu = nn.ReLU()
        self.b = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(self.relu(self.a(x)))


def test_peak_memory_keeps_residual_input_alive() -> None:
    # x: 4x5x5 = 100 B; a: 200 B; relu in place; b: 100 B; add: 100 B.
    report = peak_activation_memory(_Residual(), torch.zeros(1, 4, 5, 5))
    assert [(s.name, s.live_bytes) for s in report.steps] == [("a", 300), ("b", 400), ("add", 300)]
    assert report.peak_bytes == 400
    assert (
        peak_activation_memory(_Residual(), torch.zeros(1, 4, 5, 5), bytes_per_element=4).peak_bytes
        == 1600
    )


def test_latency_is_positive_and_restores_threads() -> None:
    before = torch.get_num_threads()
    report = measure_latency(
        create_model("lenet300"), torch.zeros(1, 1, 28, 28), warmup=2, repeats=5, threads=1
    )
    assert report.median_ms > 0 and report.threads == 1 and len(report.samples_ms) == 5
    assert torch.get_num_threads() == before
