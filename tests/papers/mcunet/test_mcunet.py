"""MCUNet stages and the deploy command on tiny inputs (the full smoke pipeline runs in CI)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from common.mcu import toolchain
from common.mcu.__main__ import main as mcu_main
from common.models import create_model
from common.models.mbconv import MBConvNetSpec, build_mbconv_net
from papers.mcunet.report import derive

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", ["mobilenet_v2", "proxyless_mobile", "mcunet_style"])
def test_mbconv_specs_round_trip(name: str) -> None:
    """Architectures are data: the spec rebuilds the same network (same outputs)."""
    torch.manual_seed(0)
    model = create_model(name, width=0.35).eval()
    again = build_mbconv_net(MBConvNetSpec.from_dict(json.loads(json.dumps(model.spec.to_dict()))))
    again.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(model(x), again.eval()(x))


def test_mobilenet_v2_matches_torchvision_macs() -> None:
    """Our MobileNetV2 description equals torchvision's network (same MACs and parameters)."""
    import torchvision

    from common.measure import count_macs, count_parameters

    ours = create_model("mobilenet_v2", width=1.0, num_classes=1000)
    ref = torchvision.models.mobilenet_v2(num_classes=1000)
    x = torch.zeros(1, 3, 224, 224)
    assert count_macs(ours, x).total == count_macs(ref, x).total
    assert count_parameters(ours) == count_parameters(ref)


def test_derived_ratios() -> None:
    """derive() returns the ratios the claims compare, and only derived numbers."""
    m = {
        "a/tflm/arena_head_bytes": 300.0,
        "a/tinyengine/arena_bytes": 100.0,
        "a/reference/instructions": 1000.0,
        "a/tinyengine/instructions": 50.0,
        "a/tinyengine/plan_bytes": 90.0,
        "a/patch/peak_bytes": 30.0,
        "a/tinyengine/sram_bytes": 2048.0,
        "a/tinyengine_patch/arena_bytes": 150.0,
        "a/tinyengine_patch/sram_bytes": 1024.0,
        "a/tinyengine_patch/instructions": 60.0,
        "a/tinyengine_stream/arena_bytes": 0.0,  # a zero side leaves the ratio out
        "ablation/unroll/arena_bytes": 160.0,
        "ablation/inplace/arena_bytes": 100.0,
        "patch_mbv2/per_layer_bytes": 4096.0,
    }
    r = SimpleNamespace(config=SimpleNamespace(models={"a": None, "b": None}))
    d = derive(m, r)
    assert d == {
        "a/sram_reduction": 3.0,
        "a/instruction_reduction": 20.0,
        "a/patch_reduction": 3.0,
        "a/tinyengine/sram_kb": 2.0,
        "a/sram_reduction_patch": 2.0,
        "a/patch_reduction_measured": 2.0,
        "a/patch_instruction_overhead_pct": pytest.approx(20.0),
        "ablation/inplace_reduction": 1.6,
        "patch_mbv2/per_layer_kb": 4.0,
    }


def test_deploy_command_on_a_registry_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emulate = toolchain.have("arm-none-eabi-gcc")
    args = [
        "deploy",
        "--model",
        "mcunet_style",
        "--width",
        "0.25",
        "--resolution",
        "32",
        "--out",
        str(tmp_path),
    ]
    if not emulate:
        args.append("--no-emulate")
    assert mcu_main(args) == 0
    out = capsys.readouterr().out
    assert "TinyEngine-style (ours)" in out and "instructions" in out
    m = json.loads((tmp_path / "deploy.json").read_text())
    assert m["bitexact"] == 1.0
    assert (tmp_path / "model.tflite").is_file() and (
        tmp_path / "c_tinyengine" / "model.c"
    ).is_file()
    assert m["tinyengine/arena_bytes"] < m["tflm/arena_head_bytes"]
    if emulate:
        assert m["tinyengine/instructions"] < m["reference/instructions"]
        assert m["tinyengine/fits"] == 1.0
    # the patch-based project is generated, checked and measured beside the per-layer one
    assert (tmp_path / "c_tinyengine_patch" / "model.c").is_file()
    assert "+ patches" in out
    assert m["tinyengine_patch/arena_bytes"] < m["tflm/arena_head_bytes"]


def test_deploy_command_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mcu_main(["deploy", str(tmp_path / "missing.tflite"), "--out", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
    assert mcu_main(["deploy", "--model", "no_such_net", "--out", str(tmp_path)]) == 2
    assert "unknown model" in capsys.readouterr().err
