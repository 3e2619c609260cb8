"""Cortex-M build and emulation: bit-exact outputs, exact instruction counts, exact footprints.

Every test writes a tiny fake project in the code generator's format (``model.h`` with the
``MODEL_*_BYTES`` macros, ``model.c``, and a ``main_host.c`` that must never be compiled for the
MCU), builds it for the STM32F746 (Cortex-M7) and runs it on Unicorn.
"""

from __future__ import annotations

import re
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from common.mcu import cortexm, toolchain

HAVE_TOOLCHAIN = all(toolchain.have(t) for t in toolchain.BUILD_TOOLS)
needs_toolchain = pytest.mark.skipif(
    not HAVE_TOOLCHAIN, reason=f"Arm toolchain missing; install: {toolchain.INSTALL_COMMAND}"
)
pytestmark = pytest.mark.mcu

TARGET = cortexm.TARGETS["stm32f746"]


def make_project(
    root: Path,
    name: str,
    body: str,
    *,
    in_bytes: int = 64,
    out_bytes: int = 64,
    arena_bytes: int = 128,
    header: str = "",
) -> Path:
    """A fake generated project: ``body`` is model.c after the arena and the two accessors.

    The arena holds the input at offset 0 and the output right after it.
    """
    d = root / name
    d.mkdir()
    (d / "model.h").write_text(
        textwrap.dedent(
            f"""\
            #include <stdint.h>
            #define MODEL_INPUT_BYTES {in_bytes}
            #define MODEL_OUTPUT_BYTES {out_bytes}
            #define MODEL_ARENA_BYTES {arena_bytes}
            int8_t *model_input(void);
            const int8_t *model_output(void);
            void model_invoke(void);
            """
        )
    )
    (d / "model.c").write_text(
        textwrap.dedent(
            """\
            #include "model.h"
            #include "kernels.h"
            static int8_t arena[MODEL_ARENA_BYTES] __attribute__((aligned(4)));
            int8_t *model_input(void) { return arena; }
            const int8_t *model_output(void) { return arena + MODEL_INPUT_BYTES; }
            """
        )
        + textwrap.dedent(body)
    )
    (d / "kernels.h").write_text("#include <stdint.h>\n" + textwrap.dedent(header))
    # The host entry point: compiling it for the MCU would fail the build.
    (d / "main_host.c").write_text('#error "main_host.c is for the host build only"\n')
    return d


ADD_ONE = """\
void model_invoke(void) {
    for (int i = 0; i < MODEL_INPUT_BYTES; ++i) {
        arena[MODEL_INPUT_BYTES + i] = (int8_t)(arena[i] + 1);
    }
}
"""


@pytest.fixture(scope="module")
def add_one(tmp_path_factory: pytest.TempPathFactory) -> cortexm.BuildResult:
    if not HAVE_TOOLCHAIN:
        pytest.skip(f"Arm toolchain missing; install: {toolchain.INSTALL_COMMAND}")
    root = tmp_path_factory.mktemp("add_one")
    return cortexm.build(make_project(root, "p", ADD_ONE), out_dir=root / "build")


def _rand(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, size=n).astype(np.int8)


@needs_toolchain
def test_add_one_is_bit_exact(add_one: cortexm.BuildResult) -> None:
    for seed in range(3):
        x = _rand(64, seed)
        r = cortexm.run(add_one, x)
        np.testing.assert_array_equal(r.output, (x.astype(np.int16) + 1).astype(np.int8))
    # int8 wrap-around at the edges
    edge = np.array([127, -128, -1, 0] * 16, dtype=np.int8)
    np.testing.assert_array_equal(cortexm.run(add_one, edge).output, edge + np.int8(1))


@needs_toolchain
def test_run_reports_counts_stack_and_an_estimated_latency(add_one: cortexm.BuildResult) -> None:
    r = cortexm.run(add_one, _rand(64, 0))
    assert 0 < r.instructions < r.total_instructions
    assert 0 < r.stack_high_water_bytes < r.stack_reserved_bytes == add_one.stack_reserved_bytes
    # no more than the bound from -fstack-usage and the call graph
    assert add_one.static_stack_bound is not None
    assert r.stack_high_water_bytes <= add_one.static_stack_bound
    assert r.assumed_ipc_estimate == TARGET.assumed_ipc_estimate
    expected_ms = r.instructions / TARGET.assumed_ipc_estimate / TARGET.clock_hz * 1e3
    assert r.latency_ms_estimate == pytest.approx(expected_ms)


LOOP = """\
volatile int32_t sink;
void model_invoke(void) {
    volatile const int8_t *in = arena;
    int32_t acc = 0;
    for (int i = 0; i < LOOP_N; ++i) {
        acc += in[i & (MODEL_INPUT_BYTES - 1)];
    }
    sink = acc;
    for (int i = 0; i < MODEL_OUTPUT_BYTES; ++i) {
        arena[MODEL_INPUT_BYTES + i] = (int8_t)acc;
    }
}
"""


@needs_toolchain
def test_instruction_counts_are_deterministic_and_linear_in_the_loop_length(
    tmp_path: Path,
) -> None:
    project = make_project(tmp_path, "loop", LOOP)
    x = _rand(64, 1)
    counts = []
    for n in (100, 200, 400):
        b = cortexm.build(project, out_dir=tmp_path / f"b{n}", extra_cflags=[f"-DLOOP_N={n}"])
        first, second = cortexm.run(b, x), cortexm.run(b, x)
        assert first.instructions == second.instructions
        assert first.total_instructions == second.total_instructions
        acc = int(np.tile(x.astype(np.int64), n // 64 + 1)[:n].sum())
        assert first.output[0] == np.int8(acc & 0xFF if (acc & 0xFF) < 128 else (acc & 0xFF) - 256)
        counts.append(first.instructions)
    per_100 = counts[1] - counts[0]
    assert per_100 > 0 and per_100 % 100 == 0  # a whole number of instructions per iteration
    assert counts[2] - counts[1] == 2 * per_100


BRANCHY = """\
#include <arm_acle.h>
void model_invoke(void) {
    /* data-dependent IT blocks (conditions that fail), 16- and 32-bit encodings, SIMD */
    uint32_t acc = 0;
    for (int i = 0; i < MODEL_INPUT_BYTES; ++i) {
        int v = arena[i];
        int y = v > 3 ? v - 7 : (v < -9 ? v * 3 : v ^ 5);
        acc = (uint32_t)__smlad((int16x2_t)(uint32_t)(y & 0xFFFF), (int16x2_t)0x00010001u, (int32_t)acc);
        arena[MODEL_INPUT_BYTES + i] = (int8_t)(y + (int)(acc >> 3));
    }
}
"""


@needs_toolchain
@pytest.mark.parametrize("body", [ADD_ONE, BRANCHY], ids=["add_one", "branchy"])
def test_native_counter_counts_as_the_capstone_hook(tmp_path: Path, body: str) -> None:
    b = cortexm.build(make_project(tmp_path, "p", body), out_dir=tmp_path / "b")
    disasm = subprocess.run(
        ["arm-none-eabi-objdump", "-d", str(b.elf)], capture_output=True, text=True, check=True
    ).stdout
    if body is BRANCHY:  # the program exercises what the counters could disagree on
        assert re.search(r"\sit[te]*\s", disasm) and "smlad" in disasm
    for seed in range(3):
        x = _rand(64, seed)
        native = cortexm.run(b, x, counter="native")
        python = cortexm.run(b, x, counter="python")
        assert native.instructions == python.instructions > 0
        assert native.total_instructions == python.total_instructions
        np.testing.assert_array_equal(native.output, python.output)


SMLAD = """\
#include <arm_acle.h>
#include <string.h>
void model_invoke(void) {
    /* input: a (2 x int16), b (2 x int16), acc (int32); output: smlad(a, b, acc) */
    int16x2_t a, b;
    int32_t acc, out;
    memcpy(&a, arena, 4);
    memcpy(&b, arena + 4, 4);
    memcpy(&acc, arena + 8, 4);
    out = __smlad(a, b, acc);
    memcpy(arena + MODEL_INPUT_BYTES, &out, 4);
}
"""


@needs_toolchain
def test_smlad_computes_the_dual_multiply_accumulate(tmp_path: Path) -> None:
    b = cortexm.build(
        make_project(tmp_path, "smlad", SMLAD, in_bytes=12, out_bytes=4, arena_bytes=16),
        out_dir=tmp_path / "build",
    )
    dis = subprocess.run(
        ["arm-none-eabi-objdump", "-d", str(b.elf)], capture_output=True, text=True, check=True
    ).stdout
    assert re.search(r"\bsmlad\b", dis)
    rng = np.random.default_rng(2)
    for _ in range(5):
        h = rng.integers(-32768, 32768, size=4).astype(np.int16)
        acc = np.array([rng.integers(-(2**20), 2**20)], dtype=np.int32)
        x = np.concatenate([h.view(np.int8), acc.view(np.int8)])
        out = cortexm.run(b, x).output.view(np.int32)[0]
        expected = int(h[0]) * int(h[2]) + int(h[1]) * int(h[3]) + int(acc[0])
        assert out == np.int32(np.int64(expected).astype(np.int32))


FLOAT = """\
void model_invoke(void) {
    volatile float scale = 0.5f;
    for (int i = 0; i < MODEL_INPUT_BYTES; ++i) {
        arena[MODEL_INPUT_BYTES + i] = (int8_t)(int)((float)arena[i] * scale);
    }
}
"""


@needs_toolchain
def test_hard_float_code_runs(tmp_path: Path) -> None:
    b = cortexm.build(make_project(tmp_path, "f", FLOAT), out_dir=tmp_path / "build")
    x = _rand(64, 3)
    out = cortexm.run(b, x).output
    np.testing.assert_array_equal(out, np.trunc(x.astype(np.float32) * 0.5).astype(np.int8))


def _big_array_project(root: Path, name: str, decl: str) -> Path:
    """A model that keeps ``big`` alive (input-dependent index) so --gc-sections keeps it."""
    body = (
        decl
        + """
void model_invoke(void) {
    uint32_t k = (uint8_t)arena[0];
    arena[MODEL_INPUT_BYTES] = (int8_t)big[k]; /* k < 256 <= sizeof(big) */
    WRITE_BIG
}
"""
    )
    write = "big[k] = arena[1];" if "const" not in decl else ""
    return make_project(root, name, body.replace("WRITE_BIG", write))


@needs_toolchain
def test_static_ram_over_budget_fails_at_link_time(tmp_path: Path) -> None:
    p = _big_array_project(tmp_path, "big", "static int8_t big[400 * 1024];")
    with pytest.raises(cortexm.DoesNotFitError) as info:
        cortexm.build(p, out_dir=tmp_path / "build")
    err = info.value
    assert set(err.overflows) == {"RAM"}
    expected = 400 * 1024 + cortexm.DEFAULT_STACK_BYTES - TARGET.sram_bytes
    assert expected <= err.overflows["RAM"] < expected + 1024  # + the small arena and runtime
    msg = str(err)
    assert "RAM" in msg and f"overflowed by {err.overflows['RAM']} bytes" in msg
    assert str(TARGET.sram_bytes) in msg and "stm32f746" in msg


@needs_toolchain
def test_the_stack_reservation_counts_against_sram(tmp_path: Path) -> None:
    p = _big_array_project(tmp_path, "mid", "static int8_t big[300 * 1024];")
    fits = cortexm.build(p, out_dir=tmp_path / "b16", stack_bytes=16 * 1024)
    assert fits.sram_bytes <= TARGET.sram_bytes
    with pytest.raises(cortexm.DoesNotFitError, match="RAM overflowed"):
        cortexm.build(p, out_dir=tmp_path / "b32", stack_bytes=32 * 1024)


@needs_toolchain
def test_flash_over_budget_fails_at_link_time(tmp_path: Path) -> None:
    p = _big_array_project(tmp_path, "rom", "static const int8_t big[1100 * 1024] = {1};")
    with pytest.raises(cortexm.DoesNotFitError) as info:
        cortexm.build(p, out_dir=tmp_path / "build")
    assert "FLASH" in info.value.overflows
    assert info.value.overflows["FLASH"] >= 1100 * 1024 - TARGET.flash_bytes


@needs_toolchain
def test_footprints_account_for_the_arrays(tmp_path: Path) -> None:
    def footprint(decl: str, n: int) -> cortexm.BuildResult:
        name = f"p{len(list(tmp_path.iterdir()))}"
        p = _big_array_project(tmp_path, name, decl.replace("N", str(n)))
        return cortexm.build(p, out_dir=tmp_path / f"b_{name}")

    # The same code with a 256-byte array is the baseline: the differences are the arrays
    # (give or take alignment).
    rom, rom0 = (footprint("static const int8_t big[N] = {1, 2, 3};", n) for n in (100_000, 256))
    ram, ram0 = (footprint("static int8_t big[N];", n) for n in (50_000, 256))
    data, data0 = (footprint("static int8_t big[N] = {1, 2, 3};", n) for n in (10_000, 256))
    # a const array lives in flash only
    assert abs(rom.flash_bytes - rom0.flash_bytes - (100_000 - 256)) <= 8
    assert rom.static_sram_bytes == rom0.static_sram_bytes
    assert rom.sections[".rodata"] >= 100_000
    # a zero-initialised array in SRAM only (.bss)
    assert abs(ram.static_sram_bytes - ram0.static_sram_bytes - (50_000 - 256)) <= 8
    assert abs(ram.flash_bytes - ram0.flash_bytes) <= 8
    assert ram.sections[".bss"] >= 50_000
    # an initialised array in both: its initial values in flash, its copy in SRAM (.data)
    assert abs(data.flash_bytes - data0.flash_bytes - (10_000 - 256)) <= 8
    assert abs(data.static_sram_bytes - data0.static_sram_bytes - (10_000 - 256)) <= 8
    assert data.sections[".data"] >= 10_000
    for b in (rom, ram, data):
        assert b.stack_reserved_bytes == cortexm.DEFAULT_STACK_BYTES
        assert b.sections[".stack"] == b.stack_reserved_bytes


DEEP_STACK = """\
__attribute__((noinline)) static int32_t deep(volatile int8_t *in) {
    volatile int8_t buf[DEPTH];
    for (int i = 0; i < DEPTH; i += 64) buf[i] = in[i & 63];
    int32_t s = 0;
    for (int i = 0; i < DEPTH; i += 64) s += buf[i];
    return s;
}
void model_invoke(void) { arena[MODEL_INPUT_BYTES] = (int8_t)deep(arena); }
"""


@needs_toolchain
def test_stack_high_water_tracks_a_local_buffer_and_overflow_faults(tmp_path: Path) -> None:
    p = make_project(tmp_path, "deep", DEEP_STACK)
    b = cortexm.build(p, out_dir=tmp_path / "ok", extra_cflags=["-DDEPTH=4096"])
    r = cortexm.run(b, _rand(64, 4))
    assert 4096 <= r.stack_high_water_bytes < 4096 + 256 < b.stack_reserved_bytes
    assert b.static_stack_bound is not None
    assert r.stack_high_water_bytes <= b.static_stack_bound < 4096 + 512
    # a 20 KiB frame on a 16 KiB stack runs below RAM and stops the emulation
    big = cortexm.build(p, out_dir=tmp_path / "over", extra_cflags=["-DDEPTH=20480"])
    with pytest.raises(cortexm.EmulationError, match="stack overflow"):
        cortexm.run(big, _rand(64, 4))


SPLIT_STRUCT = """\
typedef struct { int32_t v[4]; } quad_t;
__attribute__((noinline)) static int32_t split(int32_t a, int32_t b, quad_t q) {
    volatile int32_t buf[64];
    for (int i = 0; i < 64; ++i) buf[i] = q.v[i & 3] + a;
    return buf[b & 63];
}
void model_invoke(void) {
    quad_t q = {{arena[0], arena[1], arena[2], arena[3]}};
    arena[MODEL_INPUT_BYTES] = (int8_t)split(arena[4], arena[5], q);
}
"""


@needs_toolchain
def test_static_stack_bound_covers_a_struct_split_between_registers_and_stack(
    tmp_path: Path,
) -> None:
    # GCC's -fstack-usage leaves out the "pretend arguments" area such a callee reserves; the
    # bound adds the SP decrements found in the machine code.
    b = cortexm.build(make_project(tmp_path, "split", SPLIT_STRUCT), out_dir=tmp_path / "b")
    su = {
        line.split("\t")[0].rsplit(":", 1)[-1]: int(line.split("\t")[1])
        for f in (tmp_path / "b" / "obj").glob("*.su")
        for line in f.read_text().splitlines()
    }
    frames = cortexm._frames_from_code(b.elf)
    assert frames["split"] > su["split"]  # the case the code scan is for
    r = cortexm.run(b, _rand(64, 5))
    assert b.static_stack_bound is not None
    assert r.stack_high_water_bytes <= b.static_stack_bound


@needs_toolchain
def test_runaway_and_faulting_programs_stop_with_a_clear_error(tmp_path: Path) -> None:
    spin = make_project(
        tmp_path, "spin", 'void model_invoke(void) { for (;;) __asm__ volatile(""); }\n'
    )
    b = cortexm.build(spin, out_dir=tmp_path / "spin_b")
    for counter in ("native", "python"):
        with pytest.raises(cortexm.InstructionLimitError, match="runaway"):
            cortexm.run(b, _rand(64, 0), max_instructions=100_000, counter=counter)
    udf = make_project(tmp_path, "udf", 'void model_invoke(void) { __asm__ volatile("udf #0"); }\n')
    b = cortexm.build(udf, out_dir=tmp_path / "udf_b")
    with pytest.raises(cortexm.EmulationError, match="Invalid instruction"):
        cortexm.run(b, _rand(64, 0))
    unknown = make_project(
        tmp_path,
        "unknown",
        'void model_invoke(void) { __asm__ volatile("movs r0, #0xff\\n\\tbkpt 0xAB" ::: "r0"); }\n',
    )
    b = cortexm.build(unknown, out_dir=tmp_path / "unknown_b")
    with pytest.raises(cortexm.EmulationError, match="unsupported semihosting operation 0xff"):
        cortexm.run(b, _rand(64, 0))
    svc = make_project(tmp_path, "svc", 'void model_invoke(void) { __asm__ volatile("svc #0"); }\n')
    b = cortexm.build(svc, out_dir=tmp_path / "svc_b")
    with pytest.raises(cortexm.EmulationError, match="CPU exception"):
        cortexm.run(b, _rand(64, 0))


@needs_toolchain
def test_input_size_must_match(add_one: cortexm.BuildResult) -> None:
    with pytest.raises(cortexm.EmulationError, match="64 input bytes"):
        cortexm.run(add_one, _rand(10, 0))
    with pytest.raises(TypeError):
        cortexm.run(add_one, np.zeros(64, np.float32))


@needs_toolchain
@pytest.mark.skipif(not toolchain.have(toolchain.QEMU), reason="qemu-system-arm missing")
def test_same_image_runs_on_qemu_cortex_m7(tmp_path: Path) -> None:
    b = cortexm.build(make_project(tmp_path, "p", ADD_ONE), out_dir=tmp_path / "b", standalone=True)
    q = cortexm.run_qemu(b)
    assert q.returncode == 0, q.stderr
    pattern = ((7 * np.arange(64) + 3) & 0xFF).astype(np.uint8).view(np.int8)
    expected = (pattern + np.int8(1)).view(np.uint8).tobytes().hex()
    assert q.stdout.replace("\n", "") == expected
    assert cortexm.run(b).stdout == q.stdout  # Unicorn prints the same


def test_missing_toolchain_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not toolchain.have("arm-none-eabi-gcc")
    with pytest.raises(toolchain.ToolchainMissingError) as info:
        cortexm.build(make_project(tmp_path, "p", ADD_ONE), out_dir=tmp_path / "b")
    msg = str(info.value)
    assert "arm-none-eabi-gcc" in msg and toolchain.INSTALL_COMMAND in msg
    assert "make setup" in msg


PROFILED = """\
volatile int32_t sink;
static inline __attribute__((always_inline)) int32_t sum_inline(int n) {
    volatile const int8_t *in = arena;
    int32_t acc = 0;
    for (int i = 0; i < n; ++i) {
        acc += in[i & (MODEL_INPUT_BYTES - 1)];
    }
    return acc;
}
__attribute__((noinline)) int32_t sum_called(int n) {
    volatile const int8_t *in = arena;
    int32_t acc = 0;
    for (int i = 0; i < n; ++i) {
        acc += in[i & (MODEL_INPUT_BYTES - 1)];
    }
    return acc;
}
void model_invoke(void) {
    /* 0: inline first */
    sink = sum_inline(N0);
    /* 1: called second */
    sink = sum_called(N1);
    /* 2: inline third */
    for (int i = 0; i < MODEL_OUTPUT_BYTES; ++i) {
        arena[MODEL_INPUT_BYTES + i] = (int8_t)sum_inline(N2);
    }
}
"""


@needs_toolchain
@pytest.mark.parametrize("called_first", [False, True])
def test_profile_splits_the_exact_count_by_operator(tmp_path: Path, called_first: bool) -> None:
    """Per-region counts sum to the inference's count; inlined code counts for its call site,
    a called function for the region that called it; each region grows with its own work only."""
    body = PROFILED
    if called_first:  # the called function before any inlined region: no stale call site
        body = body.replace("sink = sum_inline(N0);", "sink = sum_called(N0);")
    project = make_project(tmp_path, "prof", body)
    x = _rand(64, 3)
    profiles = {}
    for ns in ((100, 100, 10), (300, 100, 10), (100, 300, 10), (100, 100, 20)):
        flags = [f"-DN{i}={n}" for i, n in enumerate(ns)]
        b = cortexm.build(project, out_dir=tmp_path / "_".join(map(str, ns)), extra_cflags=flags)
        plain, r = cortexm.run(b, x), cortexm.run(b, x, profile=True)
        assert plain.instructions == r.instructions
        np.testing.assert_array_equal(plain.output, r.output)
        assert r.profile is not None and sum(r.profile.values()) == r.instructions
        assert list(r.profile)[:3] == ["0: inline first", "1: called second", "2: inline third"]
        assert r.profile.get(cortexm.PROFILE_OTHER, 0) < 20  # marker set-up, prologue, epilogue
        profiles[ns] = r.profile
    base = profiles[(100, 100, 10)]
    for ns, changed in (((300, 100, 10), 0), ((100, 300, 10), 1), ((100, 100, 20), 2)):
        p = profiles[ns]
        labels = list(base)[:3]
        for i, label in enumerate(labels):
            if i == changed:
                assert p[label] - base[label] >= 200 * 2 if i < 2 else p[label] > base[label]
            else:
                assert abs(p[label] - base[label]) <= 8, (ns, label, p[label], base[label])


def test_profile_regions_follow_the_operator_comments(tmp_path: Path) -> None:
    src = tmp_path / "model.c"
    src.write_text(
        "static int x;\n"  # 1
        "void model_invoke(void) {\n"  # 2
        "    int y = 0;\n"  # 3
        "    /* 0: conv2d a */\n"  # 4
        "    x = 1;\n"  # 5
        "    /* patch: copy the input tile in */\n"  # 6
        "    /* a view of its input: no code */\n"  # 7
        "    /* 12: add b (one tile) */\n"  # 8
        "    x = 2;\n"  # 9
        "}\n"  # 10
        "int other(void) { return x; }\n"
    )
    regions = cortexm.profile_regions(src)
    assert regions[3] == cortexm.PROFILE_OTHER
    assert regions[4] == regions[5] == "0: conv2d a"
    assert regions[6] == regions[7] == "patch: copy the input tile in"
    assert regions[9] == "12: add b (one tile)"
    assert 10 not in regions and 11 not in regions


def test_native_counter_without_a_host_compiler_falls_back_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CC", "false")  # a "compiler" that always fails
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(cortexm.tempfile, "tempdir", str(tmp_path / "tmp"))
    cortexm._native_counter.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="slower Python hook"):
            assert cortexm._native_counter() is None
    finally:
        cortexm._native_counter.cache_clear()
