"""Stage ``mcunet_deploy@<model>``: int8 deployment of one table network on the STM32F746.

MCUNet's TinyEngine (Section 3.2) and MCUNetV2's patch-based inference are compared with TF-Lite
Micro on the *same* int8 model: the network is converted with TF-Lite's post-training recipe
(:mod:`common.mcu.convert`), exported to ``model.tflite`` and handed to
:func:`common.mcu.deploy.deploy`, which measures the real tflite-micro interpreter's arena, our
memory plans, and two generated C projects (TinyEngine-style and TF-Lite Micro-style reference
kernels) built for the Cortex-M7 and run under emulation. Outputs are bit-exact across all four
executors on ``check_samples`` test images (the stage fails otherwise). The int8 accuracy is the
accuracy of the generated C code itself (host build) on ``eval_samples`` test images.

Outputs: ``<out>/model.tflite``, ``<out>/c_tinyengine/`` and ``<out>/c_reference/`` (the C
projects, buildable with ``make``), the ELF images, and the flat metrics JSON.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from common.checkpoint import CheckpointError, load_model
from common.mcu import toolchain
from common.mcu.codegen import HOST_OPT, CodegenOptions, run_host_batch
from common.mcu.convert import convert, quantize_input
from common.mcu.deploy import ENGINE_WORKERS, DeployOptions, deploy, table
from common.mcu.toolchain import ToolchainMissingError
from common.ofa.supernet import build_static_subnet
from common.stage import StageContext
from papers.mcunet.config import SEARCHED, DeployConfig, ModelConfig
from papers.mcunet.stage import datasets, mcunet_stage


def tracked(ctx: StageContext) -> DeployConfig:
    """The deploy section (MLflow's params), once ``--name`` is known to name a network: an
    unknown name fails before the MLflow run opens."""
    ctx.entry("models")
    return ctx.config.deploy


def _build(arch: Any) -> torch.nn.Module:
    """The network a checkpoint's ``arch`` describes: a registered model, or a searched
    sub-network (``ofa_subnet``, whose spec is saved with it)."""
    from common.models import create_model

    try:
        if arch["name"] == "ofa_subnet":
            return build_static_subnet(arch["spec"])
        return create_model(arch["name"], **arch.get("kwargs", {}))
    except (KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(
            f"the checkpoint's architecture record is malformed ({type(exc).__name__}: {exc}): "
            "write it again with the stage that trains it"
        ) from None


def load_network(path: Path, m: ModelConfig) -> tuple[torch.nn.Module, int]:
    """The trained network and the resolution it runs at: the entry's (which the checkpoint must
    match), or the checkpoint's for the searched network."""
    model, meta = load_model(path, build=_build)
    saved = meta.get("resolution")
    if m.model == SEARCHED:
        if not isinstance(saved, int):
            raise CheckpointError(
                f"{path} holds no resolution: it was not written by the TinyNAS stage "
                "(`dvc repro papers/mcunet/dvc.yaml:mcunet_tinynas` writes it)"
            )
        return model, saved
    if saved is not None and saved != m.resolution:
        raise CheckpointError(
            f"{path} was trained at {saved} px but the entry says {m.resolution}: retrain it "
            "(`dvc repro` reruns the training stage)"
        )
    return model, int(m.resolution)


@mcunet_stage(
    name="mcunet_deploy@{name}",
    flags=["name", "model", "data", "out", "metrics"],
    track=tracked,
    errors=(ToolchainMissingError,),
)
def main(ctx: StageContext) -> None:
    args, cfg = ctx.args, ctx.config
    m = ctx.entry("models")
    d = cfg.deploy
    if d.emulate:
        toolchain.require()  # fail before any work, with the install command
    path = args.model / "model.safetensors"
    if not path.is_file():
        raise CheckpointError(
            f"{path} not found: run the training stage first (`dvc repro` runs it for you)"
        )
    model, resolution = load_network(path, m)
    train, test = datasets(m, args.data, cfg.seed, resolution=resolution)
    t_start = time.perf_counter()
    calib, _ = train[torch.arange(min(d.calibration_samples, len(train)))]
    g = convert(model.eval(), [calib], name=args.name)
    n_eval = min(d.eval_samples, len(test))
    xs, ys = test[torch.arange(n_eval)]
    check = [quantize_input(g, xs[i : i + 1]) for i in range(min(d.check_samples, n_eval))]
    opts = DeployOptions(
        target=d.target,
        emulate=d.emulate,
        emulate_engines=("tinyengine", "tinyengine_patch", "tinyengine_stream")
        + (("reference",) if d.reference_kernels else ()),
        patches=tuple(d.patches),
        max_patch_overhead=d.max_patch_overhead,
        stack_bytes=d.stack_bytes,
        opt=d.opt,
        engines={
            "tinyengine": CodegenOptions(channel_flash=d.channel_flash_kb * 1024),
            "reference": CodegenOptions(kernels="reference"),
        },
        # a few accuracy images: the harness compiles faster at -O0 than it runs at -O1
        host_opt=HOST_OPT if n_eval > 100 else "-O0",
    )
    measured = deploy(g, args.out, check, opts, name=args.name)
    # Accuracy: the float model, and the generated C code (host build) on the same images.
    if m.channels_last:
        model = model.to(memory_format=torch.channels_last)
    with torch.no_grad():
        float_pred = model(xs).argmax(1)
    exe = args.out / "c_tinyengine" / "model_host"
    if not exe.is_file():
        raise CheckpointError(f"{exe} missing after deployment")
    chunk = 100  # inputs per harness process, as many processes at a time as engines
    starts = range(0, n_eval, chunk)
    with ThreadPoolExecutor(max_workers=ENGINE_WORKERS) as pool:
        outs = pool.map(lambda i: run_host_batch(exe, quantize_input(g, xs[i : i + chunk])), starts)
        desc = f"{args.name}: int8 accuracy (host C)"
        int8_pred = [
            int(k)
            for out in tqdm(outs, total=len(starts), desc=desc, leave=False)
            for k in np.argmax(out, axis=1)
        ]
    prefix = args.name
    metrics = {f"{prefix}/{k}": v for k, v in measured.items()}
    metrics.update(
        {
            f"{prefix}/resolution": float(resolution),
            f"{prefix}/params": float(sum(p.numel() for p in model.parameters())),
            f"{prefix}/float_accuracy": 100.0 * float((float_pred == ys).float().mean()),
            f"{prefix}/int8_accuracy": 100.0 * float(np.mean(np.array(int8_pred) == ys.numpy())),
            f"{prefix}/eval_samples": float(n_eval),
            f"{prefix}/deploy_seconds": time.perf_counter() - t_start,
        }
    )
    print(table(measured, d.target))
    ctx.finish(
        metrics,
        artifacts=[args.out / "model.tflite"],
        summary=f"{args.name}: float {metrics[f'{prefix}/float_accuracy']:.2f}%, int8 (C) "
        f"{metrics[f'{prefix}/int8_accuracy']:.2f}% on {n_eval} test images",
    )


if __name__ == "__main__":
    raise SystemExit(main())
