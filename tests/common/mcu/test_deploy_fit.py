"""deploy gives the per-channel code only the flash the target has left."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from common.mcu import cortexm, toolchain
from common.mcu.codegen import CodegenOptions, generate
from common.mcu.deploy import DeployOptions, _build_fitting
from tests.common.mcu.test_codegen import narrow_graph

pytestmark = pytest.mark.skipif(
    not all(toolchain.have(t) for t in toolchain.BUILD_TOOLS),
    reason=f"Arm toolchain missing; install: {toolchain.INSTALL_COMMAND}",
)


def test_flash_overflow_shrinks_the_per_channel_budget(tmp_path: Path) -> None:
    g = narrow_graph()
    sizes = {}
    for budget in (0, 1 << 20):
        project = generate(g, tmp_path / f"c{budget}", CodegenOptions(channel_flash=budget))
        built = cortexm.build(project.out_dir, "mps2-an500", out_dir=tmp_path / f"b{budget}")
        sizes[budget] = built.flash_bytes
    assert sizes[1 << 20] > sizes[0] + 1024  # the per-channel code takes flash
    # a target with room for the GEMM build but not for all the per-channel code
    small = dataclasses.replace(
        cortexm.TARGETS["mps2-an500"], name="small", flash_bytes=sizes[0] + 512
    )
    project = generate(g, tmp_path / "fit", CodegenOptions(channel_flash=1 << 20))
    logs: list[str] = []
    fitted, built = _build_fitting(g, project, small, tmp_path, "te", DeployOptions(), logs.append)
    assert built.flash_bytes <= small.flash_bytes
    assert fitted.options.channel_flash < 1 << 20 and logs
    # an SRAM overflow is not the per-channel code's to fix
    tiny = dataclasses.replace(small, sram_bytes=1024, flash_bytes=1 << 22)
    with pytest.raises(cortexm.DoesNotFitError):
        _build_fitting(g, project, tiny, tmp_path, "te2", DeployOptions(), logs.append)
