"""``python -m common.mcu deploy`` never crashes: a valid model with large activations deploys and
matches TF-Lite Micro on the user's own file, and every bad model, argument or machine gives one
``error:`` line on stderr, exit code 2 (130 for Ctrl-C, 1 and "internal error" for a bug) and no
output project."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from common.mcu import cortexm, tflm, toolchain
from common.mcu import deploy as deploy_mod
from common.mcu.__main__ import main
from common.mcu.fixtures import GraphBuilder
from common.mcu.tflite_io import export_tflite
from common.mcu.validate import ModelFormatError, validate_tflite
from tests.common.mcu.test_validate import edit, small_model

HAVE_ARM = all(toolchain.have(t) for t in toolchain.BUILD_TOOLS)
needs_arm = pytest.mark.skipif(
    not HAVE_ARM, reason=f"Arm toolchain missing; install: {toolchain.INSTALL_COMMAND}"
)


def conv64() -> bytes:
    """One 3x3 convolution on a 64x64x3 input: 0.3 kB of weights, 44 kB of activations."""
    b = GraphBuilder((1, 64, 64, 3), seed=5)
    b.conv(8, 3, activation="relu")
    return export_tflite(b.build())


def run_cli(args: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str, list[str]]:
    """Exit code, stdout and the non-empty stderr lines (fd level: the interpreter's C++ and the
    compilers included) of one in-process run."""
    rc = main(["deploy", *args])
    out, err = capfd.readouterr()
    return rc, out, [line for line in err.splitlines() if line.strip()]


def assert_one_error(rc: int, err: list[str], out: Path, *, code: int = 2) -> str:
    """Exit ``code``, exactly one error line (the last: progress lines may come before it), no
    traceback, and nothing in ``out`` or ``<out>.partial``."""
    assert rc == code, err
    errors = [line for line in err if "error" in line.split(":")[0]]
    assert len(errors) == 1 and err[-1] == errors[0], err
    assert not any("Traceback" in line for line in err), err
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()
    return errors[0]


def deploy_error(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], *flags: str, data: bytes | None = None
) -> str:
    """Deploy ``data`` (by default :func:`small_model`) with ``flags``; the one error line."""
    model = tmp_path / "m.tflite"
    model.write_bytes(small_model() if data is None else data)
    out = tmp_path / "out"
    rc, _, err = run_cli([str(model), "--out", str(out), *flags], capfd)
    return assert_one_error(rc, err, out)


# --- a valid model the interpreter's default arena cannot hold -------------------------------


def test_min_arena_size_is_the_smallest_that_allocates() -> None:
    data = conv64()
    arena = tflm.min_arena_size(data)
    assert arena > 10 * len(data)  # the interpreter's default arena would not do
    assert tflm.fits(data, arena) and not tflm.fits(data, arena - 1)
    assert tflm.arena_report(data, arena_size=arena)["head"] <= arena
    x = np.random.default_rng(0).integers(-128, 128, (1, 64, 64, 3), np.int8)
    assert np.array_equal(tflm.run(data, x, arena_size=arena), tflm.run(data, x))


def test_trial_arenas_never_crash_this_process() -> None:
    """Some too-small arenas crash the interpreter (on this 2 kB model, the very total it reports
    using): every trial allocation runs in the helper process, so each size just answers."""
    data = small_model()
    arena = tflm.min_arena_size(data)
    sizes = range(max(arena - 1024, 1), arena + 64, 16)
    answers = [tflm.fits(data, size) for size in sizes]
    assert answers == [size >= arena for size in sizes]
    report = tflm.arena_report(data)  # in this process, in the arena found
    assert report["total"] <= arena


def test_large_activations_deploy_and_match_tflite_micro(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    data = conv64()
    model = tmp_path / "conv64.tflite"
    model.write_bytes(data)
    out = tmp_path / "out"
    # an earlier deployment's result, and a file of the user's, in the same folder
    (out / "c_reference").mkdir(parents=True)
    (out / "c_reference" / "stale.c").write_text("stale")
    (out / "notes.txt").write_text("mine")
    rc, stdout, err = run_cli(
        [str(model), "--out", str(out), "--no-emulate", "--check", "2"], capfd
    )
    assert rc == 0, err
    assert "activation SRAM" in stdout
    m = json.loads((out / "deploy.json").read_text())
    assert m["bitexact"] == 1.0 and m["check_inputs"] == 2.0
    assert m["tflm/arena_bytes"] == tflm.min_arena_size(data) > 10 * len(data)
    assert 0 < m["tflm/arena_head_bytes"] <= m["tflm/arena_bytes"]
    assert (out / "model.tflite").read_bytes() == data  # TF-Lite Micro ran the user's file
    assert (out / "c_tinyengine" / "model_host").is_file()
    assert not (out / "c_reference" / "stale.c").exists() and (out / "notes.txt").exists()
    assert not (tmp_path / "out.partial").exists()


@needs_arm
def test_large_activations_deploy_on_cortex_m7(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "conv64.tflite"
    model.write_bytes(conv64())
    out = tmp_path / "out"
    rc, _, err = run_cli([str(model), "--out", str(out), "--no-reference"], capfd)
    assert rc == 0, err
    m = json.loads((out / "deploy.json").read_text())
    assert m["tinyengine/fits"] == 1.0 and m["tinyengine/instructions"] > 0


# --- malformed files: one line, exit 2, no project ----------------------------------------------


def _enormous(data: bytes) -> bytes:
    def grow(m: object) -> None:
        sub = m.subgraphs[0]  # type: ignore[attr-defined]
        sub.tensors[sub.inputs[0]].shape = np.array([1, 60000, 60000, 3], np.int32)

    return edit(data, grow)


def _no_bias(data: bytes) -> bytes:
    def drop(m: object) -> None:
        op = m.subgraphs[0].operators[0]  # type: ignore[attr-defined]
        op.inputs = op.inputs[:2]

    return edit(data, drop)


MALFORMED = {
    "empty": (lambda d: b"", "empty"),
    "random": (
        lambda d: np.random.default_rng(1).integers(0, 256, 1500, np.uint8).tobytes(),
        "not a TF-Lite model",
    ),
    "truncated_10": (lambda d: d[: len(d) // 10], "."),
    "truncated_50": (lambda d: d[: len(d) // 2], "."),
    "truncated_95": (lambda d: d[: len(d) * 95 // 100], "."),
    "enormous": (_enormous, "MiB limit"),
    "no_bias": (_no_bias, r"operator 0 \(CONV_2D\) has no bias tensor"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_is_one_line(
    case: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    make, match = MALFORMED[case]
    model = tmp_path / "m.tflite"
    model.write_bytes(make(small_model()))
    out = tmp_path / "out"
    rc, stdout, err = run_cli([str(model), "--out", str(out), "--no-emulate"], capfd)
    line = assert_one_error(rc, err, out)
    assert len(err) == 1 and line.startswith(f"error: {model}: ") and stdout == ""
    assert re.search(match, line), line


def test_bit_flipped_files_are_one_line(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Thirty seeded single-bit flips; those the validator rejects are one line through the CLI
    (those it accepts are models the importer and TF-Lite Micro agree on: test_validate)."""
    data = small_model()
    rng = np.random.default_rng(7)
    rejected = 0
    for k, (pos, bit) in enumerate(
        zip(rng.integers(0, len(data), 30), rng.integers(0, 8, 30), strict=True)
    ):
        flipped = bytearray(data)
        flipped[pos] ^= 1 << bit
        try:
            validate_tflite(bytes(flipped))
            continue
        except ModelFormatError:
            rejected += 1
        model = tmp_path / f"flip{k}.tflite"
        model.write_bytes(bytes(flipped))
        out = tmp_path / f"out{k}"
        rc, _, err = run_cli([str(model), "--out", str(out), "--no-emulate"], capfd)
        assert_one_error(rc, err, out)
        assert len(err) == 1
    assert rejected >= 5


# --- runaway firmware, disagreeing executors ---------------------------------------------------


@needs_arm
def test_runaway_program_is_stopped_in_one_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The emulator's limits end the run with one line; --time-limit reaches cortexm.run."""
    limits: list[float] = []
    real = cortexm.run

    def short(*args: object, **kwargs: object) -> cortexm.RunResult:
        limits.append(kwargs["timeout_s"])  # type: ignore[arg-type]
        return real(*args, **{**kwargs, "max_instructions": 1000})  # type: ignore[arg-type]

    monkeypatch.setattr(cortexm, "run", short)
    line = deploy_error(tmp_path, capfd, "--no-reference", "--time-limit", "7.5")
    assert "more than 1000 instructions" in line and "--time-limit" in line
    assert limits and set(limits) == {7.5}


@needs_arm
def test_tiny_time_limit_stops_the_emulation(tmp_path: Path) -> None:
    from common.mcu.codegen import generate
    from common.mcu.tflite_io import import_tflite

    project = tmp_path / "c"
    generate(import_tflite(conv64()), project)  # a million instructions: far beyond 1 us
    built = cortexm.build(project, out_dir=tmp_path / "elf")
    x = np.zeros(64 * 64 * 3, np.int8)
    with pytest.raises(cortexm.InstructionLimitError, match="without SYS_EXIT"):
        cortexm.run(built, x, timeout_s=1e-9)  # rounds up to Unicorn's 1 us, never to "none"
    with pytest.raises(ValueError, match="positive"):
        cortexm.run(built, x, timeout_s=0)


def test_host_mismatch_leaves_no_project(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = deploy_mod.run_host

    def wrong(exe: Path, x: np.ndarray) -> np.ndarray:
        y = real(exe, x)
        return y ^ 1 if "c_reference" in str(exe) else y

    monkeypatch.setattr(deploy_mod, "run_host", wrong)
    line = deploy_error(tmp_path, capfd, "--no-emulate")
    assert "host C (reference) differs" in line


def test_tflite_micro_mismatch_is_named(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tflm.run
    monkeypatch.setattr(tflm, "run", lambda *a, **k: real(*a, **k) ^ 1)
    line = deploy_error(tmp_path, capfd, "--no-emulate")
    assert "tflite-micro (on the .tflite file) differs" in line


def test_tflite_micro_runs_on_the_users_bytes(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The peer gets the file as given, not our re-export of what we read from it."""
    data = small_model()
    seen: list[bytes] = []
    real = tflm.min_arena_size
    monkeypatch.setattr(tflm, "min_arena_size", lambda b, **k: seen.append(b) or real(b, **k))
    monkeypatch.setattr(deploy_mod, "_publish", lambda *a: None)  # stop after the checks
    monkeypatch.setattr(deploy_mod, "_deploy_engine", lambda *a, **k: ({}, None))
    model = tmp_path / "m.tflite"
    model.write_bytes(data)
    rc, _, err = run_cli([str(model), "--out", str(tmp_path / "out"), "--no-emulate"], capfd)
    assert rc == 0, err
    assert seen == [data]


# --- everything else a user can get wrong ------------------------------------------------------


def test_user_errors_are_one_line(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes(small_model())
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    text_npy = tmp_path / "calib.npy"
    text_npy.write_text("not numpy")
    flat_npy = tmp_path / "flat.npy"
    np.save(flat_npy, np.zeros(3, np.float32))
    out = tmp_path / "out"
    to = ("--out", str(out))
    cases = {
        "unknown target": [str(model), "--target", "nope", "--out", str(out)],
        "give a .tflite file or --model": ["--out", str(out)],
        "missing.tflite: not found": [str(tmp_path / "missing.tflite"), "--out", str(out)],
        "unknown model 'nope'": ["--model", "nope", "--out", str(out)],
        "not a readable .npy": ["--model", "lenet5", "--calibration", str(text_npy), *to],
        "expected a float array (N, C, H, W)": [
            *("--model", "lenet5", "--calibration", str(flat_npy)),
            *to,
        ],
        "Not a directory": [str(model), "--out", str(blocker / "sub"), "--no-emulate"],
    }
    for expected, args in cases.items():
        rc, _, err = run_cli(args, capfd)
        line = assert_one_error(rc, err, out)
        assert len(err) == 1 and expected in line, (expected, err)
    rc, _, err = run_cli([str(model), "--out", str(blocker), "--no-emulate"], capfd)
    assert rc == 2 and len(err) == 1 and "not a directory" in err[0].lower(), err


def test_bad_arguments_are_one_line(capfd: pytest.CaptureFixture[str]) -> None:
    for args in (["m.tflite", "--out", "o", "--time-limit", "-1"], ["m.tflite", "--check", "0"]):
        with pytest.raises(SystemExit) as info:
            main(["deploy", *args])
        assert info.value.code == 2
        err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and err[0].startswith("error: "), err


def test_missing_toolchain_is_one_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = toolchain.have
    monkeypatch.setattr(toolchain, "have", lambda t: not t.startswith("arm-") and real(t))
    line = deploy_error(tmp_path, capfd)
    assert "arm-none-eabi-gcc" in line and "apt-get install" in line


@pytest.mark.parametrize("debug", ["", "1"])
def test_internal_errors_and_interrupts(
    debug: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EFFML_DEBUG", debug)
    model = tmp_path / "m.tflite"
    model.write_bytes(small_model())
    out = tmp_path / "out"

    def fail(exc: BaseException) -> None:
        def boom(*args: object, **kwargs: object) -> None:
            raise exc

        monkeypatch.setattr(deploy_mod, "plan_tinyengine", boom)

    fail(ZeroDivisionError("boom"))
    rc, _, err = run_cli([str(model), "--out", str(out), "--no-emulate"], capfd)
    assert rc == 1 and not out.exists() and not (tmp_path / "out.partial").exists()
    assert err[-1].startswith("internal error: ZeroDivisionError: boom (please report")
    assert any("Traceback" in line for line in err) == bool(debug)
    fail(KeyboardInterrupt())
    rc, _, err = run_cli([str(model), "--out", str(out), "--no-emulate"], capfd)
    assert rc == 130 and err[-1] == "error: interrupted"
    assert not out.exists() and not (tmp_path / "out.partial").exists()


def test_deploy_validates_source_bytes(tmp_path: Path) -> None:
    from common.mcu.tflite_io import import_tflite

    data = small_model()
    g = import_tflite(data)
    with pytest.raises(ModelFormatError, match=r"truncated|corrupt"):
        deploy_mod.deploy(g, tmp_path / "out", [], source=data[: len(data) // 2])
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
