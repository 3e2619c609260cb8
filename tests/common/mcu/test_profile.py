"""The per-operator profile of the deploy command (``python -m common.mcu deploy --profile``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.mcu import toolchain
from common.mcu.__main__ import main as mcu_main
from common.mcu.tflite_io import load_tflite

pytestmark = pytest.mark.skipif(
    not all(toolchain.have(t) for t in (*toolchain.BUILD_TOOLS, "arm-none-eabi-addr2line")),
    reason=f"Arm toolchain missing; install: {toolchain.INSTALL_COMMAND}",
)


def test_deploy_profile_splits_every_engine_by_operator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["deploy", "--model", "mcunet_style", "--width", "0.25", "--resolution", "32"]
    assert mcu_main([*args, "--out", str(tmp_path), "--profile"]) == 0
    out = capsys.readouterr().out
    assert "Instructions per operator" in out and "ref/ours" in out
    m = json.loads((tmp_path / "deploy.json").read_text())
    profiles = json.loads((tmp_path / "profile.json").read_text())
    assert set(profiles) == {"tinyengine", "tinyengine_patch", "tinyengine_stream", "reference"}
    for engine, per_op in profiles.items():  # exact: the same count, split
        assert sum(per_op.values()) == m[f"{engine}/instructions"]
        assert per_op.get("(other)", 0) < 50  # call set-up, prologue and epilogue only
    kinds = [op.kind for op in load_tflite(tmp_path / "model.tflite").ops]
    ref_ops = [label.split()[1] for label in profiles["reference"] if label[0].isdigit()]
    assert ref_ops == kinds  # one region per operator, in order
    ours = [label.split()[1] for label in profiles["tinyengine"] if label[0].isdigit()]
    # PAD is fused into its convolution and a RESHAPE view has no code
    assert ours == [k for k in kinds if k not in ("pad", "reshape")]
    assert any(label.startswith("patch: copy") for label in profiles["tinyengine_patch"])
