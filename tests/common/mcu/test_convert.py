"""PyTorch -> int8 graph: close to the float model, bit-exact with TF-Lite Micro."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from common.mcu import UnsupportedOperatorError, reference, tflm
from common.mcu.convert import convert, dequantize, quantize_input
from common.mcu.tflite_io import export_tflite
from common.models import create_model


def _randomise_bn(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return model.eval()


@pytest.mark.parametrize(
    ("build", "shape"),
    [
        (lambda: create_model("lenet5"), (1, 28, 28)),
        (lambda: create_model("lenet300"), (1, 28, 28)),
        (lambda: torchvision.models.mobilenet_v2(width_mult=0.35, num_classes=10), (3, 48, 48)),
        (lambda: create_model("vgg_small", width=4, hidden=16), (3, 32, 32)),
    ],
)
def test_int8_graph_tracks_float_and_matches_tflite_micro(build, shape) -> None:
    torch.manual_seed(0)
    model = _randomise_bn(build())
    g = convert(model, [torch.randn(32, *shape)])
    for seed in range(3):
        x = torch.randn(1, *shape, generator=torch.Generator().manual_seed(seed))
        xq = quantize_input(g, x)
        ours = reference.run(g, xq)[g.outputs[0]]
        f = model(x).detach().numpy().ravel()
        q = dequantize(g, g.outputs[0], ours).ravel()
        assert np.corrcoef(f, q)[0, 1] > 0.99
        assert np.array_equal(ours.ravel(), tflm.run(export_tflite(g), xq).ravel())


def test_batchnorm_is_folded_exactly() -> None:
    from common.mcu.convert import fold_batchnorm

    torch.manual_seed(0)
    model = _randomise_bn(
        nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU6())
    )
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(folded(x), model(x), atol=1e-5)


def test_stride_two_convolution_gets_an_explicit_pad() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.ReLU())
    g = convert(model.eval(), [torch.randn(4, 3, 9, 9)])
    assert [op.kind for op in g.ops] == ["pad", "conv2d"]
    assert g.ops[1].options["padding"] == "valid" and g.tensors[g.outputs[0]].shape == (1, 5, 5, 4)


def test_unsupported_layers_are_named() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GELU())
    with pytest.raises(UnsupportedOperatorError, match="GELU"):
        convert(model.eval(), [torch.randn(2, 3, 8, 8)])
    grouped = nn.Sequential(nn.Conv2d(4, 8, 3, groups=2))
    with pytest.raises(UnsupportedOperatorError, match="grouped"):
        convert(grouped.eval(), [torch.randn(2, 4, 8, 8)])
