"""Build a generated C model project for a Cortex-M target and run it in emulation.

A *project* is a directory with ``model.h``, ``model.c``, any other ``*.c``/``*.h`` kernel files
and ``main_host.c`` (for the host build only: never compiled here). ``model.h`` defines
``MODEL_INPUT_BYTES``, ``MODEL_OUTPUT_BYTES``, ``MODEL_ARENA_BYTES`` and declares
``model_input()``, ``model_output()`` and ``model_invoke()``; the code is freestanding.

:func:`build` compiles it with ``arm-none-eabi-gcc`` together with the firmware in
``common/mcu/target/`` (vector table and reset handler, ``main_mcu.c``, a linker script made
from ``link.ld.in`` with the target's FLASH and SRAM sizes) and measures, exactly:

* ``flash_bytes``: everything the image stores in FLASH (vector table, code, read-only data and
  the initial values of ``.data``);
* ``static_sram_bytes``: ``.data + .bss``;
* ``stack_reserved_bytes``: the stack reservation, a NOLOAD section at the bottom of RAM.

A model whose static SRAM plus stack reservation, or whose FLASH image, exceeds the target fails
at link time with :class:`DoesNotFitError`.

:func:`run` executes the ELF on Unicorn's Cortex-M7 model. The firmware asks the host for the
input and hands back the output through two application-defined semihosting operations
(``bkpt 0xAB`` with r0 = 0x100 / 0x101, see ``target/mcu_semihost.h``); the instructions executed
strictly between them are the inference. Instructions are counted exactly, with a block hook that
adds each translated block's instruction count (a per-instruction code hook would miss the
instructions of an IT block whose condition fails). The hook is native code
(``csrc/block_counter.c``, built with the host C compiler on first use), about ten times faster
than a Python callback per block; without a host compiler, and when profiling, a Python hook with
a cached capstone count per block gives the same counts. No emulator here models Cortex-M7 timing, so
latency is only ever an *estimate*: instructions / :attr:`Target.assumed_ipc_estimate` / clock.

:func:`run_qemu` runs a standalone build (no application-defined operations) on QEMU's
``mps2-an500`` Cortex-M7 machine, as a cross-check that the same ELF and linker script boot there.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.mcu import toolchain

#: Directory with the firmware sources and the linker script template.
TARGET_DIR: Path = Path(__file__).resolve().parent / "target"

#: Firmware sources compiled into every image (besides the project's own ``*.c``).
RUNTIME_SOURCES: tuple[str, ...] = ("startup.c", "main_mcu.c")

#: The project file that is only for the host build.
HOST_MAIN: str = "main_host.c"

# Semihosting (Arm "Semihosting for AArch32 and AArch64"): bkpt 0xAB, r0 = operation.
SYS_WRITE0: int = 0x04
SYS_EXIT: int = 0x18
#: Application-defined: r1 = input buffer, r2 = bytes; the host writes the input there.
SH_WRITE_INPUT: int = 0x100
#: Application-defined: r1 = output buffer, r2 = bytes; the host reads the output.
SH_READ_OUTPUT: int = 0x101
#: Application-defined: r1 = destination, r2 = address of six int32 (y0, x0, rows, cols, frame
#: width, channels); the host writes that window of the input frame (a streamed input).
SH_READ_TILE: int = 0x102
#: SYS_EXIT reason for a clean exit (ADP_Stopped_ApplicationExit).
ADP_STOPPED_APPLICATION_EXIT: int = 0x20026

#: Default stack reservation (bytes).
DEFAULT_STACK_BYTES: int = 16 * 1024

_STACK_PAINT = b"\xa5"  # byte the stack reservation is painted with before a run

#: Source of the native block-counting hook (see :func:`_native_counter`).
COUNTER_SOURCE: Path = Path(__file__).resolve().parent / "csrc" / "block_counter.c"


class _Counter(ctypes.Structure):
    """``struct block_counter`` of ``csrc/block_counter.c``."""

    _fields_ = [
        ("count", ctypes.c_uint64),
        ("limit", ctypes.c_uint64),
        ("image", ctypes.c_void_p),
        ("base", ctypes.c_uint64),
        ("size", ctypes.c_uint64),
        ("stop", ctypes.c_void_p),
        ("error_address", ctypes.c_uint64),
        ("error", ctypes.c_int32),
    ]


_counter_lock = threading.Lock()


@functools.cache
def _native_counter() -> ctypes.CDLL | None:
    """The native block counter, compiled once per source version into the user's cache (or the
    temporary directory); ``None``, with a warning, when no host C compiler can build it."""
    digest = hashlib.sha256(COUNTER_SOURCE.read_bytes()).hexdigest()[:16]
    cc = os.environ.get("CC", "gcc")
    errors = []
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    for folder in (cache / "efficientml-mcu", Path(tempfile.gettempdir()) / "efficientml-mcu"):
        lib = folder / f"block_counter-{digest}.so"
        try:
            with _counter_lock:
                if not lib.is_file():
                    folder.mkdir(parents=True, exist_ok=True)
                    tmp = lib.with_name(f"{lib.name}.{os.getpid()}.tmp")
                    cmd = [cc, "-O2", "-shared", "-fPIC", "-o", str(tmp), str(COUNTER_SOURCE)]
                    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
                    if r.returncode != 0:
                        errors.append(f"{' '.join(cmd)}: {r.stderr.strip()}")
                        break  # the compiler failed: another folder will not help
                    os.replace(tmp, lib)  # atomic: concurrent processes never load half a file
            return ctypes.CDLL(str(lib))
        except OSError as err:
            errors.append(f"{lib}: {err}")
    warnings.warn(
        "cannot build the native instruction counter, falling back to a slower Python hook "
        f"(same counts): {'; '.join(errors)}",
        RuntimeWarning,
        stacklevel=2,
    )
    return None


_COMMON_CFLAGS: tuple[str, ...] = (
    "-ffreestanding",
    "-ffunction-sections",
    "-fdata-sections",
    "-fstack-usage",
    "-fcallgraph-info=su",
    "-g",  # debug info never changes the generated code; the profiler maps addresses with it
    "-Wall",
    "-std=gnu11",
)
_LDFLAGS: tuple[str, ...] = ("-nostartfiles", "-nostdlib", "-Wl,--gc-sections")


@dataclass(frozen=True)
class Target:
    """A microcontroller: its core, memories, clock and compiler flags.

    ``assumed_ipc_estimate`` is an assumption, not a measurement: the instructions retired per
    clock cycle used to turn an exact instruction count into a latency *estimate*. No emulator
    available here models Cortex-M7 timing (Unicorn and QEMU are not cycle-accurate and QEMU does
    not model the DWT cycle counter). The M7 is dual-issue (peak IPC 2), while flash wait states,
    load-use and multiply stalls pull it down; 1.0 is a round middle value. Compare estimates
    made with the same IPC only.
    """

    name: str
    core: str
    flash_bytes: int
    sram_bytes: int
    clock_hz: int
    assumed_ipc_estimate: float
    cflags: tuple[str, ...]
    flash_origin: int = 0x0000_0000
    sram_origin: int = 0x2000_0000
    unicorn_cpu: str = "UC_CPU_ARM_CORTEX_M7"
    qemu_machine: str = "mps2-an500"

    def cycles_estimate(self, instructions: int) -> float:
        """Clock cycles estimated from an instruction count (see ``assumed_ipc_estimate``)."""
        return instructions / self.assumed_ipc_estimate

    def latency_ms_estimate(self, instructions: int) -> float:
        """Milliseconds estimated from an instruction count: instructions / IPC / clock."""
        return 1e3 * self.cycles_estimate(instructions) / self.clock_hz


#: Supported targets by name.
TARGETS: dict[str, Target] = {
    "stm32f746": Target(
        name="stm32f746",
        core="cortex-m7",
        flash_bytes=1024 * 1024,
        sram_bytes=320 * 1024,
        clock_hz=216_000_000,
        assumed_ipc_estimate=1.0,
        cflags=("-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard"),
    ),
    # The same core with the 4 MB + 4 MB memories of QEMU's MPS2-AN500 board: code that does not
    # fit the STM32F746 is built for it to count its instructions (same flags, same code).
    "mps2-an500": Target(
        name="mps2-an500",
        core="cortex-m7",
        flash_bytes=4 * 1024 * 1024,
        sram_bytes=4 * 1024 * 1024,
        clock_hz=216_000_000,
        assumed_ipc_estimate=1.0,
        cflags=("-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard"),
    ),
}


def get_target(target: str | Target) -> Target:
    """Look up a target by name (a :class:`Target` is returned unchanged)."""
    if isinstance(target, Target):
        return target
    try:
        return TARGETS[target]
    except KeyError:
        raise KeyError(f"unknown target {target!r}; known: {sorted(TARGETS)}") from None


class BuildError(RuntimeError):
    """Compiling or linking the project failed."""


class DoesNotFitError(BuildError):
    """The image does not fit the target's FLASH or SRAM (detected by the linker).

    ``overflows`` maps each overflowed region (``"FLASH"``/``"RAM"``) to the bytes it is over.
    """

    def __init__(self, message: str, *, target: Target, overflows: dict[str, int]) -> None:
        super().__init__(message)
        self.target = target
        self.overflows = overflows


class EmulationError(RuntimeError):
    """The program faulted, exited with a failure, or misbehaved under emulation."""


class InstructionLimitError(EmulationError):
    """The program ran past the instruction or wall-clock limit (a runaway loop)."""


@dataclass(frozen=True)
class BuildResult:
    """A linked image and its exact memory footprint (bytes)."""

    elf: Path
    target: Target
    flash_bytes: int
    static_sram_bytes: int
    stack_reserved_bytes: int
    static_stack_bound: int | None
    sections: dict[str, int]
    map_file: Path
    standalone: bool = False
    warnings: str = ""

    @property
    def sram_bytes(self) -> int:
        """Static SRAM plus the stack reservation: what the linker checks against the target."""
        return self.static_sram_bytes + self.stack_reserved_bytes


@dataclass
class RunResult:
    """One emulated inference.

    ``instructions`` are the instructions executed strictly between the two application-defined
    semihosting calls (the call to ``model_invoke`` and about four instructions of marker set-up
    included); ``total_instructions`` covers the whole program from reset. Both are exact.
    ``latency_ms_estimate`` and ``cycles_estimate`` are estimates from ``instructions`` and the
    target's ``assumed_ipc_estimate``, not measurements.

    ``profile`` (``run(..., profile=True)``): the same ``instructions`` split by the regions of
    the generated ``model.c`` (see :func:`profile_regions`), in source order; they sum to
    ``instructions`` exactly.
    """

    output: np.ndarray
    instructions: int
    total_instructions: int
    stack_high_water_bytes: int
    stack_reserved_bytes: int
    cycles_estimate: float
    latency_ms_estimate: float
    assumed_ipc_estimate: float
    clock_hz: int
    stdout: str
    wall_s: float
    profile: dict[str, int] | None = None

    @property
    def emulated_instructions_per_s(self) -> float:
        """Emulation speed of this run (whole program)."""
        return self.total_instructions / self.wall_s if self.wall_s > 0 else float("inf")


@dataclass(frozen=True)
class QemuResult:
    """A QEMU run: exit status (0 = semihosting SYS_EXIT with ApplicationExit) and output."""

    returncode: int
    stdout: str
    stderr: str


# ---------------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------------


def linker_script(target: Target, stack_bytes: int) -> str:
    """The linker script for ``target`` with a stack reservation of ``stack_bytes``."""
    text = (TARGET_DIR / "link.ld.in").read_text()
    fields = {
        "FLASH_ORIGIN": f"0x{target.flash_origin:08X}",
        "FLASH_BYTES": str(target.flash_bytes),
        "RAM_ORIGIN": f"0x{target.sram_origin:08X}",
        "RAM_BYTES": str(target.sram_bytes),
        "STACK_BYTES": str(stack_bytes),
    }
    for key, value in fields.items():
        text = text.replace(f"@{key}@", value)
    if "@" in text.split("*/", 1)[-1]:
        raise AssertionError("unfilled field in the linker script template")
    return text


def _run_tool(cmd: Sequence[str], what: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BuildError(f"{what} failed ({' '.join(cmd)}):\n{proc.stderr.strip()}")
    return proc


_OVERFLOW_RE = re.compile(r"region [`'‘]?(\w+)['’]? overflowed by (\d+) bytes")


def _link_error(stderr: str, target: Target, stack_bytes: int) -> BuildError:
    overflows: dict[str, int] = {}
    for region, n in _OVERFLOW_RE.findall(stderr):
        overflows[region] = max(overflows.get(region, 0), int(n))
    if not overflows:
        return BuildError(f"link failed:\n{stderr.strip()}")
    limits = {"FLASH": target.flash_bytes, "RAM": target.sram_bytes}
    parts = []
    for region, n in overflows.items():
        limit = limits.get(region)
        what = f"{region} overflowed by {n} bytes"
        if limit is not None:
            what += f" (limit {limit} bytes = {limit // 1024} KiB"
            if region == "RAM":
                what += f", including the {stack_bytes}-byte stack reservation"
            what += ")"
        parts.append(what)
    return DoesNotFitError(
        f"the model does not fit {target.name}: " + "; ".join(parts),
        target=target,
        overflows=overflows,
    )


def _section_sizes(elf: Path) -> tuple[dict[str, int], int, int, int]:
    """Section sizes and the (flash, static SRAM, stack) totals from the ELF section headers."""
    from elftools.elf.constants import SH_FLAGS
    from elftools.elf.elffile import ELFFile

    sections: dict[str, int] = {}
    flash = sram = stack = 0
    with elf.open("rb") as f:
        for sec in ELFFile(f).iter_sections():
            flags = sec["sh_flags"]
            size = sec["sh_size"]
            if not flags & SH_FLAGS.SHF_ALLOC or size == 0:
                continue
            sections[sec.name] = size
            if sec.name == ".stack":
                stack += size
            elif sec["sh_type"] == "SHT_NOBITS":  # .bss: RAM only
                sram += size
            else:  # stored in FLASH; writable ones (.data) are copied to RAM at reset
                flash += size
                if flags & SH_FLAGS.SHF_WRITE:
                    sram += size
    return sections, flash, sram, stack


def _check_sizes_with_size_tool(elf: Path, sections: dict[str, int]) -> None:
    """Cross-check the section sizes against ``arm-none-eabi-size -A``."""
    out = _run_tool(["arm-none-eabi-size", "-A", str(elf)], "arm-none-eabi-size").stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in sections and int(parts[1]) != sections[parts[0]]:
            raise BuildError(f"section size mismatch for {parts[0]}: {line}")


_CI_NODE = re.compile(
    r'node: \{ title: "([^"]+)" label: "([^"\\]+)\\n[^"]*?\\n(\d+) bytes \(([^)]*)\)'
)
_CI_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')


_REG_LIST = re.compile(r"\{([^}]*)\}")
_IMM = re.compile(r"#(-?(?:0x[0-9a-f]+|\d+))")


def _sp_decrement(mnemonic: str, op_str: str) -> int | None:
    """Bytes one Thumb instruction moves SP down by (0 if none); ``None`` if not a constant."""
    m = mnemonic.split(".")[0]
    ops = op_str.replace(" ", "")
    regs = _REG_LIST.search(op_str)
    n_regs = len(regs.group(1).split(",")) if regs else 0
    if m == "push" or (m == "stmdb" and ops.startswith("sp!")):
        return 4 * n_regs
    if m == "vpush" or (m == "vstmdb" and ops.startswith("sp!")):
        return (8 if regs and regs.group(1).strip().startswith("d") else 4) * n_regs
    if m in ("sub", "subw") and (ops.startswith("sp,#") or ops.startswith("sp,sp,")):
        imm = _IMM.search(op_str)
        return int(imm.group(1), 0) if imm else None  # sub sp, rN: a run-time size
    if ops.endswith("]!") and "[sp,#-" in ops:  # str rN, [sp, #-N]! (pre-indexed push)
        imm = _IMM.search(op_str.split("[", 1)[1])
        return -int(imm.group(1), 0) if imm else 0
    return 0


def _frames_from_code(elf: Path) -> dict[str, int | None]:
    """Per function, the sum of every SP decrement in its code (``None``: a run-time size).

    An upper bound on its frame that, unlike ``-fstack-usage``, includes the "pretend
    arguments" area GCC reserves for a by-value struct argument split between registers and
    the stack.
    """
    import capstone
    from elftools.elf.elffile import ELFFile

    cs = capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
    frames: dict[str, int | None] = {}
    with elf.open("rb") as f:
        ef = ELFFile(f)
        text = ef.get_section_by_name(".text")
        symtab = ef.get_section_by_name(".symtab")
        if text is None or symtab is None:
            return frames
        base, code = text["sh_addr"], text.data()
        for sym in symtab.iter_symbols():
            if sym["st_info"]["type"] != "STT_FUNC" or sym["st_size"] == 0:
                continue
            start = (sym["st_value"] & ~1) - base
            if not 0 <= start < len(code):
                continue
            body = code[start : start + sym["st_size"]]
            total: int | None = 0
            for _addr, _size, mnemonic, op_str in cs.disasm_lite(body, base + start):
                d = _sp_decrement(mnemonic, op_str)
                if d is None:
                    total = None
                    break
                total += d
            if sym.name in frames:  # static functions of the same name: keep the worse
                prev = frames[sym.name]
                total = None if prev is None or total is None else max(prev, total)
            frames[sym.name] = total
    return frames


def static_stack_bound(
    ci_files: Sequence[Path], root: str = "Reset_Handler", elf: Path | None = None
) -> int | None:
    """Worst-case stack depth (bytes) from GCC's ``-fstack-usage``/``-fcallgraph-info`` output.

    The deepest path through the call graph from ``root``, summing each function's frame. With
    ``elf``, a frame is the larger of GCC's figure and the sum of the SP decrements in the
    function's machine code (see :func:`_frames_from_code`). ``None`` when no bound exists:
    recursion, an indirect call, or a frame of run-time size. Routines that were not compiled
    here and do not appear in the call graph (libgcc helpers) are not counted.
    """
    frames: dict[str, int] = {}
    unbounded: set[str] = set()
    calls: dict[str, set[str]] = {}
    symbol_of: dict[str, str] = {}
    for ci in ci_files:
        text = ci.read_text(errors="replace")
        for title, name, size, kind in _CI_NODE.findall(text):
            # a static function's title is "file:name"; its symbol is plain "name"
            symbol_of[title] = name
            frames[title] = max(frames.get(title, 0), int(size))
            if "dynamic" in kind and "bounded" not in kind:
                unbounded.add(title)
        for src, dst in _CI_EDGE.findall(text):
            calls.setdefault(src, set()).add(dst)
    if elf is not None:
        code_frames = _frames_from_code(elf)
        for title, name in symbol_of.items():
            if name not in code_frames:
                continue  # inlined everywhere, or removed by --gc-sections
            size = code_frames[name]
            if size is None:
                unbounded.add(title)
            else:
                frames[title] = max(frames[title], size)

    memo: dict[str, int] = {}
    active: set[str] = set()

    def depth(fn: str) -> int | None:
        if fn in memo:
            return memo[fn]
        if fn == "__indirect_call" or fn in unbounded or fn in active:
            return None
        active.add(fn)
        worst = 0
        for callee in calls.get(fn, ()):
            d = depth(callee)
            if d is None:
                return None
            worst = max(worst, d)
        active.discard(fn)
        memo[fn] = frames.get(fn, 0) + worst
        return memo[fn]

    return depth(root) if root in frames else None


def build(
    project_dir: str | os.PathLike[str],
    target: str | Target = "stm32f746",
    *,
    out_dir: str | os.PathLike[str],
    opt: str = "-O2",
    stack_bytes: int = DEFAULT_STACK_BYTES,
    standalone: bool = False,
    extra_cflags: Sequence[str] = (),
) -> BuildResult:
    """Compile and link the project in ``project_dir`` for ``target`` into ``out_dir``.

    Every ``*.c`` of the project except ``main_host.c`` is compiled, with the firmware in
    :data:`TARGET_DIR`. ``standalone=True`` builds the QEMU-compatible variant of ``main_mcu.c``
    (fixed input pattern, output printed with SYS_WRITE0, no application-defined operations).

    Raises :class:`~common.mcu.toolchain.ToolchainMissingError` without the toolchain,
    :class:`DoesNotFitError` when FLASH or RAM (static data + ``stack_bytes``) overflows, and
    :class:`BuildError` for any other compile or link failure.
    """
    toolchain.require(toolchain.BUILD_TOOLS)
    tgt = get_target(target)
    project = Path(project_dir)
    out = Path(out_dir)
    if not (project / "model.h").is_file():
        raise BuildError(f"{project} has no model.h")
    if stack_bytes <= 0 or stack_bytes % 8:
        raise ValueError(f"stack_bytes must be a positive multiple of 8, got {stack_bytes}")
    obj_dir = out / "obj"
    if obj_dir.exists():
        shutil.rmtree(obj_dir)
    obj_dir.mkdir(parents=True)

    cflags = [
        *tgt.cflags,
        opt,
        *_COMMON_CFLAGS,
        f"-I{project}",
        f"-I{TARGET_DIR}",
        *(["-DMCU_STANDALONE"] if standalone else []),
        *extra_cflags,
    ]
    jobs: list[tuple[Path, Path, list[str]]] = []
    for src in sorted(project.glob("*.c")):
        if src.name != HOST_MAIN:
            jobs.append((src, obj_dir / f"{src.stem}.o", []))
    for name in RUNTIME_SOURCES:
        # -fno-tree-loop-distribute-patterns: the runtime's copy loops must not become memcpy.
        extra = ["-fno-tree-loop-distribute-patterns"]
        jobs.append((TARGET_DIR / name, obj_dir / f"_mcu_rt_{Path(name).stem}.o", extra))

    def compile_one(job: tuple[Path, Path, list[str]]) -> str:
        src, obj, extra = job
        cmd = ["arm-none-eabi-gcc", *cflags, *extra, "-c", str(src), "-o", str(obj)]
        return _run_tool(cmd, f"compiling {src.name}").stderr

    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        warnings = "".join(pool.map(compile_one, jobs))

    script = out / "link.ld"
    script.write_text(linker_script(tgt, stack_bytes))
    elf = out / "app.elf"
    map_file = out / "app.map"
    cmd = [
        "arm-none-eabi-gcc",
        *tgt.cflags,
        *_LDFLAGS,
        f"-T{script}",
        f"-Wl,-Map={map_file}",
        "-Wl,--no-warn-rwx-segments",
        *(str(obj) for _, obj, _ in jobs),
        "-lgcc",
        "-o",
        str(elf),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise _link_error(proc.stderr, tgt, stack_bytes)
    warnings += proc.stderr

    sections, flash, sram, stack = _section_sizes(elf)
    _check_sizes_with_size_tool(elf, sections)
    bound = static_stack_bound(sorted(obj_dir.glob("*.ci")), elf=elf)
    return BuildResult(
        elf=elf,
        target=tgt,
        flash_bytes=flash,
        static_sram_bytes=sram,
        stack_reserved_bytes=stack,
        static_stack_bound=bound,
        sections=sections,
        map_file=map_file,
        standalone=standalone,
        warnings=warnings,
    )


# ---------------------------------------------------------------------------------------------
# Run (Unicorn)
# ---------------------------------------------------------------------------------------------


def _page_up(n: int, page: int = 0x1000) -> int:
    return (n + page - 1) // page * page


def _symbols(elf: Path, names: Sequence[str]) -> dict[str, int]:
    from elftools.elf.elffile import ELFFile

    with elf.open("rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        found = {}
        for name in names:
            syms = symtab.get_symbol_by_name(name) if symtab is not None else None
            if not syms:
                raise EmulationError(f"{elf} has no symbol {name} (not built by cortexm.build?)")
            found[name] = syms[0]["st_value"]
    return found


def _load_segments(elf: Path) -> list[tuple[int, bytes]]:
    """The PT_LOAD segments' file contents at their physical (load) addresses."""
    from elftools.elf.elffile import ELFFile

    out = []
    with elf.open("rb") as f:
        for seg in ELFFile(f).iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_filesz"] > 0:
                out.append((seg["p_paddr"], seg.data()[: seg["p_filesz"]]))
    return out


#: A comment alone on a line of the profiled function that starts a profile region: an operator
#: of the generated model.c (``/* 3: conv2d name */``) or a step of its patch loop (``/* patch ... */``).
_REGION_RE = re.compile(r"^\s*/\* ((\d+): .*?|patch.*?) \*/\s*$")

#: The profile region of instructions outside every operator (prologue, epilogue, marker set-up).
PROFILE_OTHER: str = "(other)"


def profile_regions(
    source: str | os.PathLike[str], function: str = "model_invoke"
) -> dict[int, str]:
    """Line number (1-based) -> profile region for every line of ``function``'s body in ``source``.

    A region starts at a comment alone on its line naming an operator (``/* 3: conv2d name */``,
    as the code generator writes before each operator) or a step of the patch loop
    (``/* patch ... */``) and runs to the next one or the end of the function; lines before the
    first one belong to :data:`PROFILE_OTHER`.
    """
    lines = Path(source).read_text().splitlines()
    head = re.compile(rf"^\S.*\b{re.escape(function)}\s*\([^;]*$")
    start = next((i for i, line in enumerate(lines) if head.match(line)), None)
    if start is None:
        raise EmulationError(f"{source} defines no function {function}")
    regions: dict[int, str] = {}
    label = PROFILE_OTHER
    for no in range(start + 1, len(lines)):
        line = lines[no]
        if line.startswith("}"):
            break
        m = _REGION_RE.match(line)
        if m:
            label = m.group(1)
        regions[no + 1] = label
    return regions


def profile_labels(
    elf: Path, function: str = "model_invoke", source: str = "model.c"
) -> tuple[int, int, dict[int, str], list[str]]:
    """Map every instruction address of ``function`` to its profile region.

    Returns ``(lo, hi, labels, order)``: the function's address range, address -> region (the
    line of ``source`` that the outermost inlined frame at that address belongs to, from the
    debug line tables via ``addr2line -i``; kernels inlined into ``function`` count for the
    operator that called them; addresses on no region's line are left out) and the regions in
    source order (:data:`PROFILE_OTHER` last).
    Compiler optimisations that merge identical code of different operators (cross-jumping)
    attribute the shared instructions to one of them.
    """
    from elftools.elf.elffile import ELFFile

    toolchain.require(("arm-none-eabi-addr2line",))
    with elf.open("rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        syms = symtab.get_symbol_by_name(function) if symtab is not None else None
        if not syms:
            raise EmulationError(f"{elf} has no function {function} to profile")
        lo = syms[0]["st_value"] & ~1
        hi = lo + syms[0]["st_size"]
    # every halfword: Thumb instructions start on one, and literal pools may sit in between
    addrs = [f"0x{a:x}" for a in range(lo, hi, 2)]
    out = _run_tool(
        ["arm-none-eabi-addr2line", "-e", str(elf), "-a", "-f", "-i", *addrs],
        "arm-none-eabi-addr2line",
    ).stdout.splitlines()
    labels: dict[int, str] = {}
    regions: dict[int, str] | None = None
    order: list[str] = []
    i = 0
    while i < len(out):
        addr = int(out[i], 16)
        frames = []
        i += 1
        while i + 1 < len(out) and not out[i].startswith("0x"):
            frames.append((out[i], out[i + 1]))
            i += 2
        label = None
        if frames and frames[-1][0] == function:
            path, _, line = frames[-1][1].partition(" ")[0].rpartition(":")
            if Path(path).name == source and line.isdigit():
                if regions is None:
                    regions = profile_regions(path, function) if Path(path).is_file() else {}
                    order = list(dict.fromkeys(regions.values()))
                label = regions.get(int(line))
        if label is not None and label != PROFILE_OTHER:
            labels[addr] = label
    if regions is None:
        raise EmulationError(f"no debug line information for {function} in {elf} (built with -g?)")
    order = [r for r in order if r != PROFILE_OTHER] + [PROFILE_OTHER]
    return lo, hi, labels, order


class _Machine:
    """One Unicorn Cortex-M instance running an ELF with the semihosting protocol."""

    def __init__(
        self,
        elf: Path,
        target: Target,
        x: np.ndarray,
        echo: bool,
        profile: tuple[int, int, dict[int, str], list[str]] | None = None,
        counter: str = "auto",
    ) -> None:
        import capstone
        import unicorn
        from unicorn import arm_const

        self.uc_mod, self.arm = unicorn, arm_const
        self.target, self.x, self.echo = target, x, echo
        uc = unicorn.Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_THUMB | unicorn.UC_MODE_MCLASS)
        cpu = getattr(arm_const, target.unicorn_cpu, None)
        if cpu is not None:
            uc.ctl_set_cpu_model(cpu)
        self.uc = uc
        self.cs = capstone.Cs(
            capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS
        )
        self.block_counts: dict[tuple[int, int], int] = {}
        self.profile = profile
        self.profile_counts: dict[str, int] = {}
        self._active = [False]  # between the input and output markers (profiled)

        uc.mem_map(target.flash_origin, _page_up(target.flash_bytes))
        uc.mem_map(target.sram_origin, _page_up(target.sram_bytes))
        # System Control Space (CPACR, ...): plain memory, so the reset handler's FPU enable works.
        uc.mem_map(0xE000_E000, 0x1000)
        for addr, data in _load_segments(elf):
            in_flash = target.flash_origin <= addr < target.flash_origin + target.flash_bytes
            if not in_flash or addr + len(data) > target.flash_origin + target.flash_bytes:
                raise EmulationError(f"load segment at 0x{addr:08x} is outside FLASH")
            uc.mem_write(addr, data)

        sym = _symbols(elf, ["_sstack", "_estack"])
        self.stack_lo, self.stack_hi = sym["_sstack"], sym["_estack"]
        uc.mem_write(self.stack_lo, _STACK_PAINT * (self.stack_hi - self.stack_lo))

        vt = uc.mem_read(target.flash_origin, 8)
        self.sp0 = int.from_bytes(vt[:4], "little")
        self.pc0 = int.from_bytes(vt[4:8], "little")
        if not self.pc0 & 1:
            raise EmulationError(f"reset vector 0x{self.pc0:08x} lacks the Thumb bit")

        self._total = [0, 0]  # [instructions executed, limit]: read by the Python block hook
        self._native: _Counter | None = None
        self.mark_in: int | None = None
        self.mark_out: int | None = None
        self.output: np.ndarray | None = None
        self.exit_reason: int | None = None
        self.error: Exception | None = None
        self.stdout: list[str] = []
        lib = _native_counter() if counter != "python" and profile is None else None
        if counter == "native" and lib is None:
            raise EmulationError("the native instruction counter is not available")
        if lib is not None:
            self._add_native_hook(lib, _load_segments(elf))
        else:
            self._add_block_hook()
        uc.hook_add(unicorn.UC_HOOK_INTR, self._on_interrupt)

    def _add_native_hook(self, lib: ctypes.CDLL, segments: list[tuple[int, bytes]]) -> None:
        """Count with ``block_counter_hook`` of ``csrc/block_counter.c``, registered through
        Unicorn's C API with a :class:`_Counter` holding a copy of the flash image."""
        from unicorn.unicorn_py3 import unicorn as binding

        base = self.target.flash_origin
        end = max(a + len(d) for a, d in segments)
        image = bytearray(end - base)
        for a, d in segments:
            image[a - base : a - base + len(d)] = d
        self._image = (ctypes.c_uint8 * len(image)).from_buffer(image)
        c = _Counter()
        c.image = ctypes.addressof(self._image)
        c.base, c.size = base, len(image)
        c.stop = ctypes.cast(binding.uclib.uc_emu_stop, ctypes.c_void_p).value
        self._native = c
        handle = binding.uc_hook_h()
        status = binding.uclib.uc_hook_add(
            self.uc._uch,
            ctypes.byref(handle),
            self.uc_mod.UC_HOOK_BLOCK,
            ctypes.cast(lib.block_counter_hook, ctypes.c_void_p),
            ctypes.cast(ctypes.pointer(c), ctypes.c_void_p),
            ctypes.c_uint64(1),
            ctypes.c_uint64(0),
        )
        if status != self.uc_mod.UC_ERR_OK:
            raise EmulationError(f"cannot register the native block hook (Unicorn error {status})")

    def _add_block_hook(self) -> None:
        """Count instructions at every translated block that starts executing.

        The callback goes straight to Unicorn's C API when the binding allows it (the binding's
        own wrapper adds two Python frames per block and halves the emulation speed), else
        through the public ``hook_add``. It is a closure over locals: attribute look-ups on
        ``self`` per block cost another ~30%.
        """
        unicorn = self.uc_mod
        counts = self.block_counts
        count_block = self._count_block
        total = self._total

        def on_block(_handle: object, address: int, size: int, _key: object) -> None:
            n = counts.get((address, size))
            if n is None:
                n = count_block(address, size)
            total[0] += n
            if total[0] > total[1]:
                self._over_limit(address)

        if self.profile is not None:
            on_block = self._profiling_hook(on_block)

        try:
            from unicorn.unicorn_py3 import unicorn as binding

            self._block_cb = binding.HOOK_CODE_CFUNC(on_block)
            self.uc._Uc__do_hook_add(unicorn.UC_HOOK_BLOCK, self._block_cb, 1, 0)
        except (ImportError, AttributeError, TypeError):
            self.uc.hook_add(
                unicorn.UC_HOOK_BLOCK, lambda _uc, a, n, _u: on_block(None, a, n, None)
            )

    def _profiling_hook(
        self, count: Callable[[object, int, int, object], None]
    ) -> Callable[[object, int, int, object], None]:
        """``count`` plus the profile: an instruction of the profiled function whose source line
        lies in a region counts for it; any other (a called kernel, a libgcc helper, or code
        the compiler attributes to no operator's line, such as the function's own opening
        line) counts for the region of the last such instruction executed before it (the call
        site, the loop it sits in)."""
        assert self.profile is not None
        lo, hi, labels, _ = self.profile
        per = self.profile_counts
        active = self._active
        cur = [PROFILE_OTHER]
        # per block: instructions before its first labelled one (they take the running
        # region), then (region, count) of the rest, and the region it leaves running
        info: dict[tuple[int, int], tuple[int, tuple[tuple[str, int], ...], str | None]] = {}

        def block_info(
            address: int, size: int
        ) -> tuple[int, tuple[tuple[str, int], ...], str | None]:
            lead, rest, running = 0, {}, None
            code = bytes(self.uc.mem_read(address, size))
            for a, _length, _mnemonic, _ops in self.cs.disasm_lite(code, address):
                label = labels.get(a) if lo <= a < hi else None
                running = label or running
                if running is None:
                    lead += 1
                else:
                    rest[running] = rest.get(running, 0) + 1
            info[(address, size)] = (lead, tuple(rest.items()), running)
            return info[(address, size)]

        def on_block(handle: object, address: int, size: int, key: object) -> None:
            count(handle, address, size, key)
            if not active[0]:
                return
            found = info.get((address, size))
            if found is None:
                try:
                    found = block_info(address, size)
                except Exception as err:  # cannot propagate through the C callback
                    self._fail(EmulationError(f"profiling the block at 0x{address:08x}: {err}"))
                    return
            lead, rest, running = found
            if lead:
                per[cur[0]] = per.get(cur[0], 0) + lead
            for label, k in rest:
                per[label] = per.get(label, 0) + k
            if running is not None:
                cur[0] = running

        return on_block

    @property
    def count(self) -> int:
        """Instructions executed so far."""
        return self._native.count if self._native is not None else self._total[0]

    @property
    def max_instructions(self) -> int:
        return self._native.limit if self._native is not None else self._total[1]

    def _native_error(self) -> Exception | None:
        """The error the native hook stopped the run for, if any."""
        c = self._native
        if c is None or not c.error:
            return None
        at = f"0x{c.error_address:08x}"
        if c.error == 1:
            return EmulationError(f"executing outside the flash image at {at}")
        if c.error == 2:
            return EmulationError(f"cannot decode the block at {at} (not whole instructions)")
        return InstructionLimitError(
            f"more than {c.limit} instructions executed (pc {at}): runaway program?"
        )

    def _count_block(self, address: int, size: int) -> int:
        """Instructions in the block at ``address`` (``size`` bytes), disassembled once."""
        n = decoded = 0
        try:  # an exception cannot propagate through the C callback: stop the run instead
            code = bytes(self.uc.mem_read(address, size))
            for _addr, length, _mnemonic, _ops in self.cs.disasm_lite(code, address):
                n += 1
                decoded += length
        except Exception as err:
            self._fail(EmulationError(f"cannot read the block at 0x{address:08x}: {err}"))
        if decoded != size:  # capstone stopped early: the count would be wrong
            self._fail(
                EmulationError(
                    f"cannot decode the block at 0x{address:08x} ({decoded} of {size} bytes)"
                )
            )
        self.block_counts[(address, size)] = n
        return n

    def _over_limit(self, address: int) -> None:
        self._fail(
            InstructionLimitError(
                f"more than {self.max_instructions} instructions executed "
                f"(pc 0x{address:08x}): runaway program?"
            )
        )

    def _fail(self, err: Exception) -> None:
        if self.error is None:
            self.error = err
        self.uc.emu_stop()

    def _on_interrupt(self, uc: object, intno: int, _user: object) -> None:
        try:
            self._semihost(intno)
        except Exception as err:  # errors cannot propagate through Unicorn's C callback
            self._fail(err)

    def _semihost(self, intno: int) -> None:
        a = self.arm
        uc = self.uc
        pc = uc.reg_read(a.UC_ARM_REG_PC)
        insn = int.from_bytes(uc.mem_read(pc, 2), "little")
        if insn != 0xBEAB:  # not `bkpt 0xAB`: a fault or unexpected exception
            raise EmulationError(
                f"CPU exception {intno} at pc 0x{pc:08x} (instruction 0x{insn:04x}); "
                f"after {self.count} instructions"
            )
        op, r1, r2 = (uc.reg_read(r) for r in (a.UC_ARM_REG_R0, a.UC_ARM_REG_R1, a.UC_ARM_REG_R2))
        uc.reg_write(a.UC_ARM_REG_PC, (pc + 2) | 1)
        if op == SH_WRITE_INPUT:
            if self.mark_in is not None:
                raise EmulationError("the program asked for the input twice")
            if r2 != self.x.size:
                raise EmulationError(f"the program wants {r2} input bytes, got {self.x.size}")
            if r1:  # r1 = 0: a streamed input, read tile by tile (SH_READ_TILE)
                uc.mem_write(r1, self.x.tobytes())
            self.mark_in = self.count
            self._active[0] = True
        elif op == SH_READ_TILE:
            if self.mark_in is None or self.mark_out is not None:
                raise EmulationError("an input tile was requested outside the inference")
            raw = np.frombuffer(bytes(uc.mem_read(r2, 24)), dtype="<i4")
            y0, x0, rows, cols, width, channels = (int(v) for v in raw)
            if width <= 0 or channels <= 0 or self.x.size % (width * channels):
                raise EmulationError(f"input tile request with frame {width} x {channels}")
            frame = self.x.reshape(-1, width, channels)
            if min(y0, x0, rows, cols) < 0:
                raise EmulationError(f"input tile request ({y0}, {x0}, {rows}, {cols})")
            if y0 + rows > frame.shape[0] or x0 + cols > width:
                raise EmulationError(f"input tile ({y0}, {x0}, {rows}, {cols}) outside the frame")
            tile = np.ascontiguousarray(frame[y0 : y0 + rows, x0 : x0 + cols])
            uc.mem_write(r1, tile.tobytes())
        elif op == SH_READ_OUTPUT:
            if self.mark_in is None:
                raise EmulationError("output reported before the input was requested")
            self.mark_out = self.count
            self._active[0] = False
            self.output = np.frombuffer(bytes(uc.mem_read(r1, r2)), dtype=np.int8).copy()
        elif op == SYS_WRITE0:
            raw = bytearray()
            while len(raw) < 1 << 20:
                chunk = bytes(uc.mem_read(r1 + len(raw), 64))
                end = chunk.find(0)
                raw += chunk if end < 0 else chunk[:end]
                if end >= 0:
                    break
            text = raw.decode(errors="replace")
            self.stdout.append(text)
            if self.echo:
                print(text, end="")
        elif op == SYS_EXIT:
            self.exit_reason = r1
            uc.emu_stop()
        else:
            raise EmulationError(f"unsupported semihosting operation 0x{op:x} at pc 0x{pc:08x}")

    def stack_high_water(self) -> int:
        data = bytes(self.uc.mem_read(self.stack_lo, self.stack_hi - self.stack_lo))
        untouched = len(data) - len(data.lstrip(_STACK_PAINT))
        return len(data) - untouched

    def start(self, max_instructions: int, timeout_s: float) -> None:
        a = self.arm
        self._total[1] = max_instructions
        if self._native is not None:
            self._native.limit = max_instructions
        self.uc.reg_write(a.UC_ARM_REG_SP, self.sp0)
        try:
            # Unicorn counts the timeout in microseconds, and 0 means none: at least 1.
            timeout_us = max(1, int(timeout_s * 1e6))
            self.uc.emu_start(self.pc0 | 1, 0xFFFF_FFFF, timeout=timeout_us)
        except self.uc_mod.UcError as err:
            pc = self.uc.reg_read(a.UC_ARM_REG_PC)
            sp = self.uc.reg_read(a.UC_ARM_REG_SP)
            hint = " (stack overflow?)" if sp <= self.stack_lo + 64 else ""
            raise EmulationError(
                f"emulation stopped: {err} at pc 0x{pc:08x}, sp 0x{sp:08x}{hint}"
            ) from err
        if self.error is not None:
            raise self.error
        native_error = self._native_error()
        if native_error is not None:
            raise native_error
        if self.exit_reason is None:
            raise InstructionLimitError(
                f"emulation stopped after {timeout_s} s without SYS_EXIT "
                f"({self.count} instructions): runaway program?"
            )
        if self.exit_reason != ADP_STOPPED_APPLICATION_EXIT:
            msg = "".join(self.stdout).strip()
            raise EmulationError(
                f"the program exited with reason 0x{self.exit_reason:x}"
                + (f": {msg}" if msg else "")
            )


def run(
    build_or_elf: BuildResult | str | os.PathLike[str],
    x: np.ndarray | None = None,
    *,
    target: str | Target | None = None,
    max_instructions: int = 2_000_000_000,
    timeout_s: float = 600.0,
    echo: bool = False,
    profile: bool = False,
    counter: str = "auto",
) -> RunResult:
    """Run the image once on Unicorn's Cortex-M7 with the int8 input ``x``.

    ``x`` is written (flattened in C order) where the firmware's first application-defined
    semihosting call asks for it; its size must equal ``MODEL_INPUT_BYTES``. A standalone build
    takes no input (``x=None``; ``output`` is then empty and ``instructions`` 0: use
    ``total_instructions`` and ``stdout``).

    The run stops with :class:`InstructionLimitError` after ``max_instructions`` or ``timeout_s``
    seconds, and with :class:`EmulationError` on a CPU fault, a memory access outside the mapped
    FLASH/RAM (a stack overflow runs below RAM), or a failing exit.

    ``profile=True`` also splits ``instructions`` by the regions of the generated ``model.c``
    (one per operator, see :func:`profile_regions` and :func:`profile_labels`) into
    ``RunResult.profile``; the counts are the same exact counts, the run is slower.

    ``counter`` picks the instruction counter: ``"native"`` (the compiled block hook),
    ``"python"`` (a Python block hook with capstone, the cross-check) or ``"auto"`` (native when
    it can be built, Python otherwise and when profiling). All give the same counts.
    """
    if isinstance(build_or_elf, BuildResult):
        elf, tgt = build_or_elf.elf, build_or_elf.target
        if target is not None and get_target(target) != tgt:
            raise ValueError("target differs from the one the image was built for")
    else:
        elf, tgt = Path(build_or_elf), get_target(target or "stm32f746")
    xs = np.zeros(0, np.int8) if x is None else np.ascontiguousarray(x).reshape(-1)
    if xs.dtype != np.int8:
        raise TypeError(f"input must be int8, got {xs.dtype}")

    labels = profile_labels(elf) if profile else None
    if counter not in ("auto", "native", "python"):
        raise ValueError(f"counter must be 'auto', 'native' or 'python', not {counter!r}")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    machine = _Machine(elf, tgt, xs, echo, labels, counter)
    t0 = time.perf_counter()
    machine.start(max_instructions, timeout_s)
    wall = time.perf_counter() - t0
    if machine.mark_in is not None and machine.mark_out is None:
        raise EmulationError("the program exited without reporting its output")
    instructions = (
        0 if machine.mark_out is None else machine.mark_out - machine.mark_in  # type: ignore[operator]
    )
    output = machine.output if machine.output is not None else np.zeros(0, np.int8)
    per_region = None
    if labels is not None:
        counts = machine.profile_counts
        per_region = {r: counts[r] for r in labels[3] if r in counts}
        per_region.update({r: n for r, n in counts.items() if r not in per_region})
        if sum(per_region.values()) != instructions:
            raise EmulationError(
                f"profile sums to {sum(per_region.values())} instructions, not {instructions}"
            )
    return RunResult(
        output=output,
        instructions=instructions,
        total_instructions=machine.count,
        stack_high_water_bytes=machine.stack_high_water(),
        stack_reserved_bytes=machine.stack_hi - machine.stack_lo,
        cycles_estimate=tgt.cycles_estimate(instructions),
        latency_ms_estimate=tgt.latency_ms_estimate(instructions),
        assumed_ipc_estimate=tgt.assumed_ipc_estimate,
        clock_hz=tgt.clock_hz,
        stdout="".join(machine.stdout),
        wall_s=wall,
        profile=per_region,
    )


# ---------------------------------------------------------------------------------------------
# QEMU cross-check
# ---------------------------------------------------------------------------------------------


def run_qemu(
    build_or_elf: BuildResult | str | os.PathLike[str],
    *,
    target: str | Target | None = None,
    timeout_s: float = 60.0,
) -> QemuResult:
    """Run a standalone image on QEMU (``-icount shift=0``) with semihosting on stdio.

    Only for images without application-defined semihosting operations (``build(...,
    standalone=True)``). Return code 0 means the firmware called SYS_EXIT with ApplicationExit.
    """
    toolchain.require((toolchain.QEMU,))
    if isinstance(build_or_elf, BuildResult):
        elf, tgt = build_or_elf.elf, build_or_elf.target
    else:
        elf, tgt = Path(build_or_elf), get_target(target or "stm32f746")
    cmd = [
        toolchain.QEMU,
        "-machine",
        tgt.qemu_machine,
        "-cpu",
        tgt.core,
        "-icount",
        "shift=0",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        "none",
        "-nodefaults",
        "-chardev",
        "stdio,id=sh0",
        "-semihosting-config",
        "enable=on,target=native,chardev=sh0",
        "-kernel",
        str(elf),
    ]
    with tempfile.TemporaryDirectory() as tmp:  # QEMU may want a writable cwd
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout_s, cwd=tmp, check=False
            )
        except subprocess.TimeoutExpired as err:
            raise InstructionLimitError(f"QEMU did not exit within {timeout_s} s") from err
    return QemuResult(proc.returncode, proc.stdout, proc.stderr)


__all__ = [
    "ADP_STOPPED_APPLICATION_EXIT",
    "DEFAULT_STACK_BYTES",
    "PROFILE_OTHER",
    "SH_READ_OUTPUT",
    "SH_READ_TILE",
    "SH_WRITE_INPUT",
    "SYS_EXIT",
    "SYS_WRITE0",
    "TARGETS",
    "BuildError",
    "BuildResult",
    "DoesNotFitError",
    "EmulationError",
    "InstructionLimitError",
    "QemuResult",
    "RunResult",
    "Target",
    "build",
    "get_target",
    "linker_script",
    "profile_labels",
    "profile_regions",
    "run",
    "run_qemu",
    "static_stack_bound",
]
