"""Command line: deploy an int8 model to a microcontroller target.

    python -m common.mcu deploy model.tflite --target stm32f746 --out build/model
    python -m common.mcu deploy --model mobilenet_v2 --width 0.35 --resolution 144 --out build/mbv2
    python -m common.mcu deploy --model lenet5 --weights runs/.../model.safetensors --resolution 28 \\
        --channels 1 --out build/lenet5

A ``.tflite`` file must be an int8 model (int8 input and output) using the supported operators.
A registry model is converted with TF-Lite's post-training int8 recipe, calibrated on random
inputs (or on ``--calibration file.npy``, float NCHW) unless real data is given; weights come
from ``--weights`` (a ``model.safetensors`` written by a stage) or are random (memory, flash and
instruction counts do not depend on them).

Prints the memory / flash / instruction table (TF-Lite Micro vs the TinyEngine-style engine),
writes ``model.tflite``, the two C projects (``c_tinyengine/``, ``c_reference/``: ``make`` builds
them for the host) and the Cortex-M7 images into ``--out``. ``--profile`` adds the instructions of
every operator, per engine (exact counts, from the debug line tables of the very images measured).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def _deploy(args: argparse.Namespace) -> int:
    import torch

    from common.checkpoint import CheckpointError, load_model
    from common.mcu.convert import convert, quantize_input
    from common.mcu.cortexm import TARGETS
    from common.mcu.deploy import DeployOptions, deploy, profile_table, table
    from common.mcu.graph import UnsupportedOperatorError
    from common.mcu.tflite_io import load_tflite
    from common.mcu.toolchain import ToolchainMissingError
    from common.models import MODELS, create_model

    if args.target not in TARGETS:
        print(
            f"error: unknown target {args.target!r}; known: {', '.join(sorted(TARGETS))}",
            file=sys.stderr,
        )
        return 2
    rng = np.random.default_rng(args.seed)
    try:
        if args.tflite is not None:
            if args.model is not None:
                raise ValueError("give a .tflite file or --model, not both")
            if not args.tflite.is_file():
                raise FileNotFoundError(f"{args.tflite} not found")
            g = load_tflite(args.tflite)
            shape = g.tensors[g.inputs[0]].shape
            check = [rng.integers(-128, 128, size=shape).astype(np.int8) for _ in range(args.check)]
            name = args.tflite.stem
        elif args.model is not None:
            if args.model not in MODELS:
                raise ValueError(
                    f"unknown model {args.model!r}; registered: {', '.join(MODELS.names())}"
                )
            if args.weights is not None:
                model, _ = load_model(args.weights)
            else:
                torch.manual_seed(args.seed)
                kwargs = {"num_classes": args.classes}
                if args.width is not None:
                    kwargs["width"] = args.width
                model = create_model(args.model, **kwargs)
            model.eval()
            shape = (args.channels, args.resolution, args.resolution)
            if args.calibration is not None:
                calib = torch.from_numpy(np.load(args.calibration, allow_pickle=False)).float()
            else:
                calib = torch.randn(
                    args.calibration_samples,
                    *shape,
                    generator=torch.Generator().manual_seed(args.seed),
                )
            g = convert(model, [calib], name=args.model)
            check = [
                quantize_input(g, calib[i : i + 1]) for i in range(min(args.check, len(calib)))
            ]
            name = args.model
        else:
            raise ValueError("give a .tflite file or --model NAME")
        options = DeployOptions(
            target=args.target, emulate=not args.no_emulate, opt=args.opt, profile=args.profile
        )
        if args.no_reference:
            options.engines = {"tinyengine": options.engines["tinyengine"]}
            options.emulate_engines = ("tinyengine",)
        m = deploy(g, args.out, check, options, name=name, log=lambda s: print(s, file=sys.stderr))
    except (
        UnsupportedOperatorError,
        ToolchainMissingError,
        CheckpointError,
        FileNotFoundError,
        ValueError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table(m, args.target))
    if args.profile and (args.out / "profile.json").is_file():
        profiles = json.loads((args.out / "profile.json").read_text())
        print("\nInstructions per operator (Cortex-M7, first check input):")
        print(profile_table(g, profiles))
    print(f"C projects, images and deploy.json written to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m common.mcu", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser(
        "deploy",
        help="deploy a .tflite file or a registry model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("tflite", nargs="?", type=Path, help="an int8 .tflite model")
    d.add_argument("--model", help="a registered PyTorch model instead of a .tflite file")
    d.add_argument(
        "--weights",
        type=Path,
        help="model.safetensors written by a stage (default: random weights)",
    )
    d.add_argument("--width", type=float, help="width multiplier for the mobile networks")
    d.add_argument("--classes", type=int, default=10)
    d.add_argument("--resolution", type=int, default=96)
    d.add_argument("--channels", type=int, default=3)
    d.add_argument(
        "--calibration", type=Path, help=".npy float array (N, C, H, W) of calibration inputs"
    )
    d.add_argument("--calibration-samples", type=int, default=8)
    d.add_argument("--target", default="stm32f746")
    d.add_argument("--out", type=Path, required=True, help="output directory")
    d.add_argument(
        "--check", type=int, default=1, help="inputs checked bit for bit in every executor"
    )
    d.add_argument("--opt", default="-O2", help="compiler optimisation flag for both engines")
    d.add_argument(
        "--no-emulate", action="store_true", help="skip the Cortex-M7 build and emulation"
    )
    d.add_argument("--no-reference", action="store_true", help="only the TinyEngine-style engine")
    d.add_argument(
        "--profile",
        action="store_true",
        help="print the Cortex-M7 instructions of every operator (also written to profile.json)",
    )
    d.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    return _deploy(args)


if __name__ == "__main__":
    raise SystemExit(main())
