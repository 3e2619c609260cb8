"""Deploy one int8 graph end to end and measure it: the engine behind the ``deploy`` command and
the MCUNet tables.

:func:`deploy` takes a :class:`~common.mcu.graph.Graph` (from a ``.tflite`` file or the PyTorch
converter) and

1. writes ``model.tflite`` (the user's own bytes when ``source`` is given, else the graph's
   export) and asks the real TF-Lite Micro interpreter, run on exactly those bytes, for the
   smallest arena it allocates the model in (``tflm/arena_bytes``), that arena's activation
   "head" bytes (measured) and its output on the check inputs;
2. plans memory three ways: TF-Lite Micro's arena (:func:`~common.mcu.memory.plan_tflm`),
   TinyEngine's in-place plan, and the best MCUNetV2 patch-based plan (with its MAC overhead);
3. generates the C projects: TinyEngine-style specialized kernels, the same with MCUNetV2
   patch-based inference for the first stage (the split with the smallest generated arena,
   input frame included), the same with the input frame streamed tile by tile from the caller
   (``tinyengine_stream``: the frame is not in SRAM, as MCUNetV2's analytic numbers assume), and
   TF-Lite Micro-style reference kernels; builds each for the host and checks it against the
   numpy reference;
4. builds them for the target (a linker script with the target's flash and SRAM: a model that
   does not fit fails at link time and is reported as such) and runs them on the emulated
   Cortex-M7 (each run stopped after ``DeployOptions.time_limit_s``), reading back the outputs
   and counting instructions exactly.

Every output is compared bit for bit with the numpy reference run on the graph: host C, emulated
Cortex-M7, and tflite-micro run on the user's file (``source``), so a misreading of the file by
our importer shows up as a tflite-micro mismatch even when our own export would hide it. A
mismatch raises :class:`MismatchError` naming the executor (it is a bug, never a number to
report).

Nothing half-written is left in ``out_dir``: everything is built in ``<out_dir>.partial`` beside
it, which is removed when anything fails (``out_dir`` then stays as it was) and, on success,
moved into place (replacing the entries a previous deployment wrote there).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.mcu import cortexm, reference, tflm, toolchain
from common.mcu.codegen import (
    HOST_OPT,
    CodegenOptions,
    CProject,
    best_patch_split,
    build_host,
    generate,
    run_host,
)
from common.mcu.graph import Graph
from common.mcu.memory import best_patch_plan, plan_tflm, plan_tinyengine
from common.mcu.tflite_io import export_tflite
from common.mcu.validate import validate_tflite

ENGINES = {
    "tinyengine": CodegenOptions(kernels="specialized"),
    "reference": CodegenOptions(kernels="reference"),
}


ENGINE_WORKERS = 2  # engines deployed at once (each mostly waits on gcc or the emulator)


class MismatchError(AssertionError):
    """Two executors disagree on an int8 output (a bug in one of them)."""


@dataclass
class DeployOptions:
    target: str = "stm32f746"
    lab_target: str = "mps2-an500"  # same core, 4 MB memories: measures what does not fit
    engines: dict[str, CodegenOptions] = field(default_factory=lambda: dict(ENGINES))
    emulate: bool = True  # build for the target and run on the emulator
    emulate_engines: tuple[str, ...] = (
        "tinyengine",
        "tinyengine_patch",
        "tinyengine_stream",
        "reference",
    )
    patch_engine: bool = True  # also generate MCUNetV2 patch-based C code ("tinyengine_patch")
    stream_engine: bool = True  # and the patch-based code with a streamed input frame
    patches: tuple[int, ...] = (2, 3, 4)
    max_patch_overhead: float = 0.3
    stack_bytes: int = cortexm.DEFAULT_STACK_BYTES
    opt: str = "-O2"
    # -O level of the TinyEngine-style host build (callers run it on many inputs: the int8
    # accuracy); the other engines' host builds only check outputs and use -O0
    host_opt: str = HOST_OPT
    profile: bool = False  # per-operator instructions of every emulated engine (profile.json)
    # wall-clock limit of one emulated run (a runaway program also stops after 2e9 instructions)
    time_limit_s: float = 300.0

    def __post_init__(self) -> None:
        if not self.time_limit_s > 0:
            raise ValueError(f"time_limit_s must be positive, got {self.time_limit_s}")


def check_equal(name: str, expected: np.ndarray, got: np.ndarray, what: str) -> None:
    """Raise :class:`MismatchError` unless ``got`` equals ``expected`` element for element."""
    if not np.array_equal(np.asarray(expected).reshape(-1), np.asarray(got).reshape(-1)):
        diff = int((np.asarray(expected).reshape(-1) != np.asarray(got).reshape(-1)).sum())
        raise MismatchError(f"{name}: {what} differs from the numpy reference in {diff} outputs")


def deploy(
    g: Graph,
    out_dir: str | Path,
    check_inputs: Sequence[np.ndarray],
    options: DeployOptions | None = None,
    *,
    name: str = "model",
    log: Callable[[str], None] = print,
    source: bytes | None = None,
) -> dict[str, float]:
    """Deploy ``g`` into ``out_dir`` and return flat measurements (bytes, instructions, flags).

    ``check_inputs`` are int8 inputs (NHWC) run through every executor; the first one is also
    the input of the emulated runs whose instructions are reported. ``source``: the ``.tflite``
    bytes ``g`` was read from; TF-Lite Micro then runs on them (validated first, see
    :mod:`common.mcu.validate`) instead of on our export of ``g``.

    Builds in ``<out_dir>.partial`` and moves the result into ``out_dir`` only on success; a
    failure removes it and leaves ``out_dir`` as it was.
    """
    options = options or DeployOptions()
    if source is not None:
        validate_tflite(source, source=name)
    final = Path(out_dir)
    if final.exists() and not final.is_dir():
        raise NotADirectoryError(20, "not a directory", str(final))
    staging = final.parent / f"{final.name}.partial"
    if staging.exists():  # left by a deployment that was killed
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        m = _deploy(g, staging, check_inputs, options, name=name, log=log, source=source)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _publish(staging, final, options)
    return m


def _publish(staging: Path, final: Path, options: DeployOptions) -> None:
    """Move the finished deployment in ``staging`` to ``final``, first removing from ``final``
    what an earlier deployment wrote there (and only that)."""
    if not final.exists():
        staging.rename(final)
        return
    engines = {*ENGINES, *options.engines, "tinyengine_patch", "tinyengine_stream"}
    owned = {"model.tflite", "deploy.json", "profile.json"}
    owned |= {f"{kind}_{e}{lab}" for e in engines for kind in ("c", "elf") for lab in ("", "_lab")}
    for entry in final.iterdir():
        if entry.name in owned:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    for entry in staging.iterdir():
        entry.rename(final / entry.name)
    staging.rmdir()


def _deploy(
    g: Graph,
    out_dir: Path,
    check_inputs: Sequence[np.ndarray],
    options: DeployOptions,
    *,
    name: str,
    log: Callable[[str], None],
    source: bytes | None,
) -> dict[str, float]:
    target = cortexm.get_target(options.target)
    g.validate()
    m: dict[str, float] = {}
    profiles: dict[str, dict[str, int]] = {}
    # The bytes TF-Lite Micro runs (and model.tflite holds): the user's file when there is one.
    tfl = source if source is not None else export_tflite(g, description=name)
    (out_dir / "model.tflite").write_bytes(tfl)
    m["macs"] = float(g.macs())
    m["weight_bytes"] = float(g.weight_bytes())
    m["tflite_bytes"] = float(len(tfl))

    # ---------------------------------------------------------------- memory plans
    t0 = time.perf_counter()
    arena = tflm.min_arena_size(tfl)
    head = tflm.arena_report(tfl, arena_size=arena)["head"]
    ours_tflm = plan_tflm(g).arena_bytes
    if head != ours_tflm:
        log(
            f"note: our TF-Lite Micro plan ({ours_tflm} B) differs from the interpreter's ({head} B)"
        )
    te = plan_tinyengine(g)
    patch = best_patch_plan(g, tuple(options.patches), options.max_patch_overhead)
    m.update(
        {
            "tflm/arena_head_bytes": float(head),
            "tflm/arena_bytes": float(arena),
            "tflm/plan_bytes": float(ours_tflm),
            "tinyengine/plan_bytes": float(te.peak_bytes),
            "tinyengine/inplace_scratch_bytes": float(te.scratch_bytes),
            "patch/peak_bytes": float(patch.peak_bytes if patch else te.peak_bytes),
            "patch/mac_overhead": float(patch.mac_overhead if patch else 0.0),
            "patch/n_ops": float(patch.n_ops if patch else 0),
            "patch/patches": float(patch.patches if patch else 1),
            "patch/patch_stage_peak_bytes": float(patch.patch_stage_peak if patch else 0),
            "patch/rest_peak_bytes": float(patch.rest_peak if patch else 0),
        }
    )
    log(
        f"{name}: memory plans in {time.perf_counter() - t0:.1f}s (TF-Lite Micro {head} B, TinyEngine {te.peak_bytes} B)"
    )

    # ---------------------------------------------------------------- reference outputs
    xs = [np.asarray(x, dtype=np.int8).reshape(g.tensors[g.inputs[0]].shape) for x in check_inputs]
    if not xs:
        raise ValueError("deploy needs at least one check input")
    expected = [reference.run(g, x)[g.outputs[0]] for x in xs]
    peer = "tflite-micro (on the .tflite file)" if source is not None else "tflite-micro"
    for x, y in zip(xs, expected, strict=True):
        check_equal(name, y, tflm.run(tfl, x, arena_size=arena), peer)

    # ---------------------------------------------------------------- C projects
    engines = dict(options.engines)
    base = engines.get("tinyengine", CodegenOptions())  # the patch-based engines build on it
    split = None
    if options.patch_engine:
        split = best_patch_split(g, tuple(options.patches), options.max_patch_overhead)
    if split is not None:
        n_ops, grid, overhead = split
        engines["tinyengine_patch"] = dataclasses.replace(base, patch_ops=n_ops, patches=grid)
        m["tinyengine_patch/n_ops"] = float(n_ops)
        m["tinyengine_patch/patches"] = float(grid)
        m["tinyengine_patch/mac_overhead"] = float(overhead)
    elif options.patch_engine:
        log(f"{name}: no patch split within +{options.max_patch_overhead:.0%} MACs")
    if options.patch_engine and options.stream_engine:
        streamed = best_patch_split(
            g, tuple(options.patches), options.max_patch_overhead, stream_input=True
        )
        if streamed is not None:
            n_ops, grid, overhead = streamed
            engines["tinyengine_stream"] = dataclasses.replace(
                base, patch_ops=n_ops, patches=grid, stream_input=True
            )
            m["tinyengine_stream/n_ops"] = float(n_ops)
            m["tinyengine_stream/patches"] = float(grid)
            m["tinyengine_stream/mac_overhead"] = float(overhead)
    # Engines are independent (compilers and emulator runs): two at a time.
    job = functools.partial(
        _deploy_engine, g, out_dir, xs, expected, options, target, name=name, log=log
    )
    pool = ThreadPoolExecutor(max_workers=ENGINE_WORKERS)
    try:
        futures = [pool.submit(job, item) for item in engines.items()]
        for future in futures:
            engine_m, engine_profile = future.result()
            m.update(engine_m)
            if engine_profile is not None:
                profiles[engine_profile[0]] = engine_profile[1]
    finally:  # on a failure, engines not started yet are not started
        pool.shutdown(wait=True, cancel_futures=True)
    m["bitexact"] = 1.0  # every comparison above passed (a mismatch raises)
    m["check_inputs"] = float(len(xs))
    m["assumed_ipc_estimate"] = float(target.assumed_ipc_estimate)
    m["clock_hz"] = float(target.clock_hz)
    (out_dir / "deploy.json").write_text(json.dumps(m, indent=2, sort_keys=True) + "\n")
    if options.profile:
        (out_dir / "profile.json").write_text(json.dumps(profiles, indent=2) + "\n")
    return m


def _deploy_engine(
    g: Graph,
    out_dir: Path,
    xs: list[np.ndarray],
    expected: list[np.ndarray],
    options: DeployOptions,
    target: cortexm.Target,
    item: tuple[str, CodegenOptions],
    *,
    name: str,
    log: Callable[[str], None],
) -> tuple[dict[str, float], tuple[str, dict[str, int]] | None]:
    """Generate, build, check and (when asked) emulate one engine; returns its measurements
    and its per-operator profile when one was taken."""
    engine, cg = item
    m: dict[str, float] = {}
    profile = None
    project = generate(g, out_dir / f"c_{engine}", cg)
    built = fit_exc = None
    if options.emulate:
        try:
            project, built = _build_fitting(g, project, target, out_dir, engine, options, log)
        except cortexm.DoesNotFitError as exc:
            fit_exc = exc
    # The host harness checks outputs, which no -O level changes: -O0 compiles a large
    # specialized model four times faster than -O1 (see DeployOptions.host_opt).
    exe = _build_host(project, engine, options.host_opt if engine == "tinyengine" else "-O0")
    for x, y in zip(xs, expected, strict=True):
        check_equal(name, y, run_host(exe, x), f"host C ({engine})")
    m[f"{engine}/arena_bytes"] = float(project.arena_bytes)
    m[f"{engine}/activation_bytes"] = float(project.activation_bytes)
    m[f"{engine}/scratch_bytes"] = float(project.scratch_bytes)
    m[f"{engine}/const_bytes"] = float(project.weight_bytes)
    if not options.emulate:
        return m, profile
    if fit_exc is None:
        assert built is not None
        m[f"{engine}/fits"] = 1.0
    else:
        exc = fit_exc
        log(f"{name} ({engine}): does not fit: {exc}")
        m[f"{engine}/fits"] = 0.0
        for region, over in exc.overflows.items():
            m[f"{engine}/overflow_{region.lower()}_bytes"] = float(over)
        # The same code for the same core with 4 MB memories, to measure what it would take.
        built = cortexm.build(
            project.out_dir,
            options.lab_target,
            out_dir=out_dir / f"elf_{engine}_lab",
            opt=options.opt,
            stack_bytes=options.stack_bytes,
        )
    m[f"{engine}/flash_bytes"] = float(built.flash_bytes)
    m[f"{engine}/static_sram_bytes"] = float(built.static_sram_bytes)
    if engine not in options.emulate_engines:
        return m, profile
    t0 = time.perf_counter()
    result = None
    for i, (x, y) in enumerate(zip(xs, expected, strict=True)):
        r = cortexm.run(
            built, x, profile=options.profile and i == 0, timeout_s=options.time_limit_s
        )
        if r.profile is not None:
            profile = (engine, r.profile)
        check_equal(name, y, r.output, f"Cortex-M7 ({engine})")
        if i == 0:
            result = r
    assert result is not None
    m[f"{engine}/instructions"] = float(result.instructions)
    m[f"{engine}/stack_high_water_bytes"] = float(result.stack_high_water_bytes)
    m[f"{engine}/sram_bytes"] = float(built.static_sram_bytes + result.stack_high_water_bytes)
    m[f"{engine}/latency_ms_estimate"] = float(result.latency_ms_estimate)
    log(
        f"{name} ({engine}): {result.instructions:,} instructions, flash {built.flash_bytes:,} B, "
        f"SRAM {built.static_sram_bytes + result.stack_high_water_bytes:,} B "
        f"(emulated in {time.perf_counter() - t0:.1f}s)"
    )
    return m, profile


def _build_host(project: CProject, engine: str, opt: str) -> Path:
    """:func:`~common.mcu.codegen.build_host`, with a missing compiler and a failed build
    raised as :class:`~common.mcu.toolchain.ToolchainMissingError` and
    :class:`~common.mcu.cortexm.BuildError` naming the engine."""
    if not toolchain.have("gcc"):
        raise toolchain.ToolchainMissingError(
            "the host C compiler gcc is not on PATH; install it (Debian: apt-get install gcc)"
        )
    try:
        return build_host(project, opt=opt)
    except RuntimeError as exc:
        raise cortexm.BuildError(f"host build of the {engine} project failed: {exc}") from exc


def _build_fitting(
    g: Graph,
    project: CProject,
    target: cortexm.Target,
    out_dir: Path,
    engine: str,
    options: DeployOptions,
    log: Callable[[str], None],
) -> tuple[CProject, cortexm.BuildResult]:
    """Build ``project`` for ``target``; when only the flash overflows and the per-channel code
    has flash to give back, regenerate it with a smaller ``channel_flash`` (its estimated bytes
    less the overflow and 2 kB, at most four times) so the faster code takes only the flash the
    target has."""
    cg = project.options
    for attempt in range(5):
        try:
            built = cortexm.build(
                project.out_dir,
                target,
                out_dir=out_dir / f"elf_{engine}",
                opt=options.opt,
                stack_bytes=options.stack_bytes,
            )
            return project, built
        except cortexm.DoesNotFitError as exc:
            over = exc.overflows.get("FLASH", 0)
            shrinkable = cg.kernels == "specialized" and cg.per_channel and cg.channel_flash > 0
            if set(exc.overflows) != {"FLASH"} or not shrinkable or attempt == 4:
                raise
            budget = max(0, min(cg.channel_flash, project.channel_bytes) - over - 2048)
            log(
                f"{engine}: flash over by {over} B; per-channel code budget "
                f"{cg.channel_flash} -> {budget} B"
            )
            cg = dataclasses.replace(cg, channel_flash=budget)
            project = generate(g, project.out_dir, cg)
    raise AssertionError("unreachable")


def op_macs(g: Graph) -> dict[str, int]:
    """Multiply-accumulates of every operator of ``g`` by name (0 for those without any)."""
    out: dict[str, int] = {}
    for op in g.ops:
        one = Graph(g.tensors, [op], list(op.inputs[:1]), list(op.outputs))
        out[op.name] = one.macs()
    return out


def _profile_op(label: str) -> tuple[str, str]:
    """``(kind, name)`` of a profile region label ``"3: conv2d name"`` (or the label itself)."""
    head, _, rest = label.partition(": ")
    if head.isdigit():
        kind, _, name = rest.partition(" ")
        return kind, name.removesuffix(" (one tile)")
    return "", label


def profile_table(g: Graph, profiles: dict[str, dict[str, int]]) -> str:
    """Per-operator instructions of each profiled engine (matched by operator name; PAD fused
    into a convolution shows up only in the reference), with MACs, instructions per MAC of
    the first engine after the reference and its ratio to the reference."""
    macs = op_macs(g)
    engines = [e for e in ("reference", "tinyengine", "tinyengine_patch") if e in profiles]
    engines += [e for e in profiles if e not in engines]
    rows: dict[str, dict[str, int]] = {}
    kinds: dict[str, str] = {}
    for engine in engines:
        for label, n in profiles[engine].items():
            kind, name = _profile_op(label)
            kinds.setdefault(name, kind)
            rows.setdefault(name, {})[engine] = rows.get(name, {}).get(engine, 0) + n
    ours = next((e for e in engines if e != "reference"), None)
    head = ["operator", "MACs", *engines]
    if ours is not None:
        head += [f"{ours}/MAC"]
        if "reference" in engines:
            head += ["ref/ours"]
    table = [head]
    totals = {e: sum(profiles[e].values()) for e in engines}
    for name, per in [*rows.items(), ("total", totals)]:
        mac = sum(macs.values()) if name == "total" else macs.get(name, 0)
        label = name if name == "total" else f"{kinds[name]} {name}".strip()
        line = [label, f"{mac:,}", *(f"{per[e]:,}" if e in per else "-" for e in engines)]
        if ours is not None:
            line.append(f"{per[ours] / mac:.2f}" if mac and ours in per else "-")
            if "reference" in engines:
                ok = ours in per and "reference" in per and per[ours]
                line.append(f"{per['reference'] / per[ours]:.1f}x" if ok else "-")
        table.append(line)
    width = [max(len(r[i]) for r in table) for i in range(len(head))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, width, strict=True))
        )
        for r in table
    ]
    lines.insert(1, "  ".join("-" * w for w in width))
    return "\n".join(lines)


def table(m: dict[str, float], target: str = "stm32f746") -> str:
    """A plain-text table of :func:`deploy`'s measurements for the command line."""
    tgt = cortexm.get_target(target)
    engines = [
        ("reference", "TF-Lite Micro (ref. kernels)"),
        ("tinyengine", "TinyEngine-style (ours)"),
    ]
    if "tinyengine_patch/n_ops" in m:
        p = m["tinyengine_patch/patches"]
        engines.append(
            (
                "tinyengine_patch",
                f"+ patches ({p:.0f}x{p:.0f}, {m['tinyengine_patch/n_ops']:.0f} ops)",
            )
        )
    if "tinyengine_stream/n_ops" in m:
        p = m["tinyengine_stream/patches"]
        engines.append(
            (
                "tinyengine_stream",
                f"+ streamed input ({p:.0f}x{p:.0f}, {m['tinyengine_stream/n_ops']:.0f} ops)",
            )
        )

    def kb(v: float | None) -> str:
        return "-" if v is None else f"{v / 1024:,.1f} kB"

    def n(v: float | None) -> str:
        return "-" if v is None else f"{v:,.0f}"

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} ms"

    fits = {0.0: "no", 1.0: "yes"}
    rows = [
        ("", *(h for _, h in engines)),
        (
            "activation SRAM (arena)",
            kb(m.get("tflm/arena_head_bytes")),
            *(kb(m.get(f"{e}/arena_bytes")) for e, _ in engines[1:]),
        ),
        ("SRAM (static + stack)", *(kb(m.get(f"{e}/sram_bytes")) for e, _ in engines)),
        ("flash (text+rodata+data)", *(kb(m.get(f"{e}/flash_bytes")) for e, _ in engines)),
        ("instructions", *(n(m.get(f"{e}/instructions")) for e, _ in engines)),
        (
            f"latency @ {tgt.clock_hz / 1e6:.0f} MHz (estimate, IPC {tgt.assumed_ipc_estimate:g})",
            *(ms(m.get(f"{e}/latency_ms_estimate")) for e, _ in engines),
        ),
        (
            f"fits {tgt.sram_bytes // 1024} kB SRAM / {tgt.flash_bytes // 1024} kB flash",
            *(fits.get(m.get(f"{e}/fits", -1), "-") for e, _ in engines),
        ),
    ]
    width = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, width, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in width))
    extra = (
        f"MACs {m['macs']:,.0f}; analytic patch-based peak {kb(m['patch/peak_bytes'])} (input frame "
        f"streamed, {m['patch/patches']:.0f}x{m['patch/patches']:.0f} patches over the first "
        f"{m['patch/n_ops']:.0f} ops, +{100 * m['patch/mac_overhead']:.1f}% MACs); outputs bit-exact "
        "across numpy, host C, Cortex-M7 and tflite-micro."
    )
    if "tflm/arena_bytes" in m:
        extra += (
            f" TF-Lite Micro's smallest whole arena on the host (activations + its 64-bit "
            f"persistent data): {kb(m['tflm/arena_bytes'])}."
        )
    return "\n".join(lines) + "\n" + extra
