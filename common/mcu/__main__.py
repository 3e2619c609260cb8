"""Command line: deploy an int8 model to a microcontroller target (and fuzz the engine).

    python -m common.mcu deploy model.tflite --target stm32f746 --out build/model
    python -m common.mcu deploy --model mobilenet_v2 --width 0.35 --resolution 144 --out build/mbv2
    python -m common.mcu deploy --model lenet5 --weights runs/.../model.safetensors --resolution 28 \\
        --channels 1 --out build/lenet5
    python -m common.mcu fuzz --models 200 --malformed 200     # see `fuzz --help`

A ``.tflite`` file must be an int8 model (int8 input and output) using the supported operators;
it is validated before anything reads it, and TF-Lite Micro runs on the file itself.
A registry model is converted with TF-Lite's post-training int8 recipe, calibrated on random
inputs (or on ``--calibration file.npy``, float NCHW) unless real data is given; weights come
from ``--weights`` (a ``model.safetensors`` written by a stage) or are random (memory, flash and
instruction counts do not depend on them).

Prints the memory / flash / instruction table (TF-Lite Micro vs the TinyEngine-style engine),
writes ``model.tflite``, the two C projects (``c_tinyengine/``, ``c_reference/``: ``make`` builds
them for the host) and the Cortex-M7 images into ``--out``. ``--profile`` adds the instructions of
every operator, per engine (exact counts, from the debug line tables of the very images measured).

Exit codes: 0 deployed; 2 the model, the arguments or the machine are the problem (one line on
stderr says which: a corrupt or unsupported model, a build or emulation failure, a time limit,
executors that disagree, a missing toolchain, an unwritable output folder); 130 interrupted;
1 an internal error (please report it). Set ``EFFML_DEBUG=1`` for the traceback of any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: Set to 1 to print the traceback of every failure before its one-line message.
DEBUG_ENV = "EFFML_DEBUG"


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (argparse prints the usage first)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be positive")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its message
    return parse


def _one_line(exc: BaseException) -> str:
    """``exc``'s message on one line: its first line, and for a multi-line message (a compiler's
    output) the first later line that says "error"."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    text = lines[0].rstrip(":")
    detail = next((ln for ln in lines[1:] if "error" in ln.lower()), None)
    if detail is None and len(lines) > 1:
        detail = lines[1]
    if detail is not None:
        text += f": {detail}"
    return text if len(text) <= 400 else text[:397] + "..."


def _user_errors() -> tuple[type[BaseException], ...]:
    """Failures the user can act on: one line, exit 2."""
    from common.errors import InputError
    from common.mcu.cortexm import BuildError, EmulationError
    from common.mcu.deploy import MismatchError
    from common.mcu.tflm import TFLMError

    return (InputError, ValueError, OSError, BuildError, EmulationError, MismatchError, TFLMError)


def _hint(exc: BaseException) -> str:
    from common.mcu.cortexm import InstructionLimitError
    from common.mcu.deploy import MismatchError

    if isinstance(exc, InstructionLimitError):
        return " (a larger model may need a larger --time-limit)"
    if isinstance(exc, MismatchError):
        return " (a bug: please report it with the model; no project was written)"
    return ""


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return _one_line(exc)


def _load_calibration(path: Path):  # -> torch.Tensor
    import torch

    from common.errors import InputError

    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as exc:  # any reader failure: not a readable .npy file
        raise InputError(
            f"--calibration {path}: not a readable .npy array ({_one_line(exc)})"
        ) from None
    if not isinstance(arr, np.ndarray) or arr.ndim != 4 or arr.shape[0] < 1:
        shape = getattr(arr, "shape", None)
        raise InputError(
            f"--calibration {path}: expected a float array (N, C, H, W) with N >= 1, got "
            f"{'shape ' + str(shape) if shape is not None else type(arr).__name__}"
        )
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise InputError(f"--calibration {path}: dtype {arr.dtype} is not numeric")
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"--calibration {path}: holds NaN or infinite values")
    return torch.from_numpy(arr)


def _registry_graph(args: argparse.Namespace):
    """The converted graph and check inputs of ``--model``."""
    import torch

    from common.checkpoint import load_model
    from common.errors import InputError
    from common.mcu.convert import convert, quantize_input
    from common.models import MODELS, check_model, create_model

    if args.model not in MODELS:
        raise InputError(f"unknown model {args.model!r}; registered: {', '.join(MODELS.names())}")
    if args.weights is not None:
        model, _ = load_model(args.weights)
    else:
        torch.manual_seed(args.seed)
        kwargs = {"num_classes": args.classes}
        if args.width is not None:
            kwargs["width"] = args.width
        check_model(args.model, kwargs)
        model = create_model(args.model, **kwargs)
    model.eval()
    if args.calibration is not None:
        calib = _load_calibration(args.calibration)
    else:
        calib = torch.randn(
            args.calibration_samples,
            args.channels,
            args.resolution,
            args.resolution,
            generator=torch.Generator().manual_seed(args.seed),
        )
    try:
        g = convert(model, [calib], name=args.model)
    except RuntimeError as exc:  # torch: the inputs do not fit the network
        raise InputError(
            f"{args.model} does not run on inputs of shape {tuple(calib.shape)} "
            f"(check --channels, --resolution, --width): {_one_line(exc)}"
        ) from None
    check = [quantize_input(g, calib[i : i + 1]) for i in range(min(args.check, len(calib)))]
    return g, check


def _tflite_graph(args: argparse.Namespace, rng: np.random.Generator):
    """The validated bytes, graph and random check inputs of a ``.tflite`` file."""
    from common.mcu.tflite_io import import_tflite
    from common.mcu.validate import ModelFormatError, read_tflite

    source = read_tflite(args.tflite)  # one clear line for any corrupt or unsupported file
    try:
        g = import_tflite(source)
    except ValueError:
        raise
    except Exception as exc:  # a case the validator missed: still one line
        raise ModelFormatError(
            f"{args.tflite}: cannot be imported ({type(exc).__name__}: {_one_line(exc)})"
        ) from None
    shape = g.tensors[g.inputs[0]].shape
    check = [rng.integers(-128, 128, size=shape).astype(np.int8) for _ in range(args.check)]
    return source, g, check


def _deploy(args: argparse.Namespace) -> int:
    from common.errors import InputError
    from common.mcu.cortexm import TARGETS
    from common.mcu.deploy import DeployOptions, deploy, profile_table, table

    if args.target not in TARGETS:
        raise InputError(f"unknown target {args.target!r}; known: {', '.join(sorted(TARGETS))}")
    if (args.tflite is None) == (args.model is None):
        raise InputError("give a .tflite file or --model NAME (one of them)")
    rng = np.random.default_rng(args.seed)
    source = None
    if args.tflite is not None:
        source, g, check = _tflite_graph(args, rng)
        name = args.tflite.stem
    else:
        g, check = _registry_graph(args)
        name = args.model
    options = DeployOptions(
        target=args.target,
        emulate=not args.no_emulate,
        opt=args.opt,
        profile=args.profile,
        time_limit_s=args.time_limit,
    )
    if args.no_reference:
        options.engines = {"tinyengine": options.engines["tinyengine"]}
        options.emulate_engines = ("tinyengine",)
    m = deploy(
        g,
        args.out,
        check,
        options,
        name=name,
        log=lambda s: print(s, file=sys.stderr),
        source=source,
    )
    print(table(m, args.target))
    if args.profile and (args.out / "profile.json").is_file():
        profiles = json.loads((args.out / "profile.json").read_text())
        print("\nInstructions per operator (Cortex-M7, first check input):")
        print(profile_table(g, profiles))
    print(f"C projects, images and deploy.json written to {args.out}")
    return 0


def _parser() -> argparse.ArgumentParser:
    from common.mcu.deploy import DeployOptions

    parser = _Parser(prog="python -m common.mcu", description=__doc__.split("\n")[0])
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
    d.add_argument(
        "--width", type=_positive(float), help="width multiplier for the mobile networks"
    )
    d.add_argument("--classes", type=_positive(int), default=10)
    d.add_argument("--resolution", type=_positive(int), default=96)
    d.add_argument("--channels", type=_positive(int), default=3)
    d.add_argument(
        "--calibration", type=Path, help=".npy float array (N, C, H, W) of calibration inputs"
    )
    d.add_argument("--calibration-samples", type=_positive(int), default=8)
    d.add_argument("--target", default="stm32f746")
    d.add_argument("--out", type=Path, required=True, help="output directory")
    d.add_argument(
        "--check",
        type=_positive(int),
        default=1,
        help="inputs checked bit for bit in every executor",
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
    d.add_argument(
        "--time-limit",
        type=_positive(float),
        default=DeployOptions.time_limit_s,
        metavar="SECONDS",
        help="stop an emulated run after this long (default: %(default)g; "
        "--profile runs several times slower)",
    )
    d.add_argument("--seed", type=int, default=0)
    f = sub.add_parser(
        "fuzz",
        help="random int8 models and malformed files against every engine and TF-Lite Micro",
        description=(
            "Random int8 models written with the TF-Lite schema directly (common/mcu/fuzz.py), "
            "each deployed on every engine and compared with TF-Lite Micro on the file; then "
            "malformed files (empty, random, truncated, bit flips, enormous tensors), each run "
            "through the deploy command in a fresh process, which must refuse it with exit code "
            "2 and one line. Exit code 1 when anything failed."
        ),
    )
    f.add_argument("--models", type=int, default=200, help="random models (default: 200)")
    f.add_argument("--malformed", type=int, default=200, help="malformed files (default: 200)")
    f.add_argument("--seed", type=int, default=0, help="the first model's seed")
    f.add_argument(
        "--emulate-every",
        type=int,
        default=20,
        metavar="N",
        help="every N-th model also on the emulated Cortex-M7 (0: none; default: 20)",
    )
    f.add_argument("--inputs", type=_positive(int), default=3, help="inputs checked per model")
    f.add_argument("--json", type=Path, help="also write the summary's numbers here")
    f.add_argument("-v", "--verbose", action="store_true", help="a line per model and file")
    return parser


def _fuzz(args: argparse.Namespace) -> int:
    import dataclasses

    from common.mcu.fuzz import run

    quiet = lambda s: None  # noqa: E731
    rep = run(args.models, args.malformed, seed=args.seed, emulate_every=args.emulate_every,
              inputs=args.inputs, log=print if args.verbose else quiet)  # fmt: skip
    print(rep.summary())
    if args.json is not None:
        args.json.write_text(json.dumps(dataclasses.asdict(rep), indent=1) + "\n")
    return 0 if rep.ok else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        return _fuzz(args) if args.command == "fuzz" else _deploy(args)
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            traceback.print_exc()
        if isinstance(exc, _user_errors()):
            print(f"error: {_message(exc)}{_hint(exc)}", file=sys.stderr)
            return 2
        print(
            f"internal error: {type(exc).__name__}: {_one_line(exc)} (please report; "
            f"{DEBUG_ENV}=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
