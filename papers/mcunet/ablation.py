"""Stage ``mcunet_ablation``: instructions as TinyEngine's optimisations are switched on.

MCUNet (Section 3.2, Figs. 4-7) breaks TinyEngine's speed-up down into code generation,
model-adaptive im2col, kernel specialisation (unrolling, fusion) and in-place depthwise
convolution. Here the same int8 model (``model.tflite`` from a deploy stage; dvc.yaml picks
MobileNetV2-w0.35) is compiled with :class:`~common.mcu.codegen.CodegenOptions` switches turned on one
after the other, each build run on the emulated Cortex-M7 with the same input: the instruction
count and the arena of every step are measured, and every step's output is checked bit for bit
against the numpy reference.
"""

from __future__ import annotations

import dataclasses
import json
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from common.checkpoint import CheckpointError
from common.mcu import cortexm, reference, toolchain
from common.mcu.codegen import CodegenOptions, generate
from common.mcu.deploy import ENGINE_WORKERS, check_equal
from common.mcu.tflite_io import load_tflite
from common.mcu.toolchain import ToolchainMissingError
from common.stage import StageContext
from papers.mcunet.stage import mcunet_stage

OFF = {
    "simd": False,
    "unroll": False,
    "inplace": False,
    "specialize": False,
    "fuse_pad": False,
    "fold_offset": False,
    "per_channel": False,
    "dw_rows": False,
    "gemm_cache": False,
    "add_table": False,
    "dw_small": False,
    "pixel_pairs": False,
}
# (key, label, options): each step adds one optimisation to the previous one.
STEPS: list[tuple[str, str, CodegenOptions]] = [
    ("reference", "TF-Lite Micro-style reference kernels", CodegenOptions(kernels="reference"))
]
_on: dict[str, bool] = {}
for _key, _label in [
    (
        "generic",
        "generated code, generic kernels (1x1 without im2col, 2x2 register blocks, 32-bit requantization, padded depthwise buffer)",
    ),
    ("specialize", "+ specialisation (shapes as compile-time constants)"),
    ("fuse_pad", "+ padding fused into convolutions"),
    ("fold_offset", "+ input offset folded into the bias"),
    ("simd", "+ SIMD (SXTB16 / SMLAD)"),
    ("unroll", "+ unrolled depthwise 3x3 / 5x5 / 7x7"),
    ("inplace", "+ in-place depthwise (memory)"),
    (
        "per_channel",
        "+ per-channel code (int16 weight records by LDM, literal shifts; flash-budgeted)",
    ),
    ("dw_rows", "+ depthwise on int16 row rings (LDRD / SMLAD asm row loops)"),
    ("gemm_cache", "+ 1x1 GEMM with weights widened once per pixel block"),
    ("add_table", "+ ADD inputs rescaled by table lookup"),
    ("dw_small", "+ depthwise on tiny planes computing only the taps inside the image"),
    ("pixel_pairs", "+ two pixels per pass of the per-channel code (gathered windows)"),
]:
    if _key != "generic":
        _on[_key] = True
    STEPS.append((_key, _label, CodegenOptions(kernels="specialized", **{**OFF, **_on})))


@mcunet_stage(
    name="mcunet_ablation",
    flags=["deployed", "out", "metrics"],
    track=lambda ctx: ctx.config.deploy,
    errors=(ToolchainMissingError,),
)
def main(ctx: StageContext) -> None:
    args, cfg = ctx.args, ctx.config
    toolchain.require()  # every step is built for and run on the Cortex-M7
    name = args.deployed.name
    tfl = args.deployed / "model.tflite"
    if not tfl.is_file():
        raise CheckpointError(
            f"{tfl} not found: run mcunet_deploy@{name} first (`dvc repro` runs it for you)"
        )
    g = load_tflite(tfl)
    rng = np.random.default_rng(cfg.seed)
    x = rng.integers(-128, 128, size=g.tensors[g.inputs[0]].shape).astype(np.int8)
    expected = reference.run(g, x)[g.outputs[0]].reshape(-1)
    t_start = time.perf_counter()

    def step(item: tuple[str, str, CodegenOptions]) -> tuple[int, int]:
        key, _label, opts = item
        if opts.kernels == "specialized":
            opts = dataclasses.replace(opts, channel_flash=cfg.deploy.channel_flash_kb * 1024)
        project = generate(g, args.out / key, opts)
        built = cortexm.build(
            project.out_dir,
            "mps2-an500",
            out_dir=args.out / f"elf_{key}",
            opt=cfg.deploy.opt,
            stack_bytes=cfg.deploy.stack_bytes,
        )
        r = cortexm.run(built, x)
        check_equal(name, expected, r.output, f"Cortex-M7 output of ablation step {key}")
        return r.instructions, project.arena_bytes

    # Steps are independent builds and runs: two at a time (results in step order).
    with ThreadPoolExecutor(max_workers=ENGINE_WORKERS) as pool:
        measured = list(pool.map(step, STEPS))
    metrics: dict[str, float] = {}
    rows = []
    for (key, label, _opts), (instructions, arena) in zip(STEPS, measured, strict=True):
        metrics[f"ablation/{key}/instructions"] = float(instructions)
        metrics[f"ablation/{key}/arena_bytes"] = float(arena)
        rows.append(
            {"key": key, "label": label, "instructions": instructions, "arena_bytes": arena}
        )
        print(f"{label:<75} {instructions:>13,} instructions  arena {arena:>9,} B")
    metrics["ablation/macs"] = float(g.macs())
    metrics["ablation/seconds"] = time.perf_counter() - t_start
    steps = args.out / "steps.json"
    steps.write_text(json.dumps({"model": name, "steps": rows}, indent=2) + "\n")
    ctx.finish(metrics, artifacts=[steps])


if __name__ == "__main__":
    raise SystemExit(main())
