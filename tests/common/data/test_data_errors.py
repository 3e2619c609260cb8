"""Bad data gives one :class:`DataError` line naming the file, what is wrong and the right fix.

Each test builds a damaged copy of a dataset in ``tmp_path`` (the fake MNIST of
:mod:`common.data.fixtures`, a prepared directory made from it, or a copy of a real MNIST file)
and checks the message; the last tests run the real prepare stage in a subprocess and check that
the user sees exit code 2 and a single line on stderr, never a traceback.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.data import DataError, build_dataset, load_prepared
from common.data.arrays import ARRAYS_FILE, MANIFEST_FILE
from common.data.checksums import SUMS_FILE, read_sums, sha256_file
from common.data.idx import read_idx, write_idx
from common.data.mnist import FILES, read_mnist_raw

REPO = Path(__file__).resolve().parents[3]
RAW_FIX = "git checkout -- data/mnist"
PREPARED_FIX = "dvc repro prepare_mnist"


def _rewrite_sums(root: Path) -> None:
    """Make ``root/SHA256SUMS`` match the files as they are now (as someone 'fixing' it would)."""
    names = [name for pair in FILES.values() for name in pair]
    lines = [f"{sha256_file(root / name)}  {name}" for name in names]
    (root / SUMS_FILE).write_text("\n".join(lines) + "\n")


def _error(call, *args, **kwargs) -> str:
    """The message of the :class:`DataError` that ``call(*args, **kwargs)`` raises."""
    with pytest.raises(DataError) as exc:
        call(*args, **kwargs)
    message = str(exc.value)
    assert "\n" not in message, "a DataError message must be one line"
    return message


def _rewrite_prepared(root: Path, edit_arrays=None, edit_manifest=None) -> Path:
    """Change a prepared directory's arrays and/or manifest, keeping its checksum consistent."""
    manifest = json.loads((root / MANIFEST_FILE).read_text())
    if edit_arrays is not None:
        with np.load(root / ARRAYS_FILE) as npz:
            arrays = {key: npz[key] for key in npz.files}
        edit_arrays(arrays)
        with open(root / ARRAYS_FILE, "wb") as fh:
            np.savez(fh, **arrays)
        manifest["sha256"] = sha256_file(root / ARRAYS_FILE)
    if edit_manifest is not None:
        edit_manifest(manifest)
    (root / MANIFEST_FILE).write_text(json.dumps(manifest))
    return root


# ---------------------------------------------------------------- SHA256SUMS


@pytest.mark.parametrize(
    ("bad_line", "what"),
    [
        ("0123abcd", "is malformed"),  # one field
        ("zz" + "0" * 62 + "  train-images-idx3-ubyte.gz", "malformed SHA-256 digest"),
        ("abc123  train-images-idx3-ubyte.gz", "malformed SHA-256 digest"),  # too short
    ],
)
def test_malformed_sums_line_names_file_line_and_fix(
    fake_mnist: Path, bad_line: str, what: str
) -> None:
    sums = fake_mnist / SUMS_FILE
    sums.write_text(sums.read_text() + bad_line + "\n")
    message = _error(read_mnist_raw, fake_mnist, "test")
    assert f"{sums} line 5" in message and what in message
    assert RAW_FIX in message


def test_sums_file_that_is_not_text(fake_mnist: Path) -> None:
    sums = fake_mnist / SUMS_FILE
    sums.write_bytes(b"\xff\xfe\x00\x01garbage")
    message = _error(build_dataset, "mnist", "train", root=fake_mnist)
    assert str(sums) in message and "not UTF-8" in message and RAW_FIX in message


def test_sums_default_fix_and_binary_marker(tmp_path: Path) -> None:
    sums = tmp_path / SUMS_FILE
    digest = "ab" * 32
    sums.write_text(f"# comment\n\n{digest} *a.gz\n{digest.upper()}  b c.gz\n")
    assert read_sums(sums) == {"a.gz": digest, "b c.gz": digest}
    sums.write_text(f"{digest}  a.gz\n{'cd' * 32}  a.gz\n")
    message = _error(read_sums, sums)
    assert f"{sums} line 2" in message and "a second time" in message and "sha256sum" in message


# ---------------------------------------------------------------- raw IDX files


def test_corrupt_gzip_with_updated_checksum(fake_mnist: Path) -> None:
    """The checksum passes (SHA256SUMS was rewritten too) but the gzip stream is broken."""
    target = fake_mnist / FILES["train"][0]
    target.write_bytes(target.read_bytes()[:300])
    _rewrite_sums(fake_mnist)
    message = _error(build_dataset, "mnist", "train", root=fake_mnist)
    assert str(target) in message and "not a valid gzip file" in message and RAW_FIX in message


def test_real_labels_file_not_gzip(tmp_path: Path) -> None:
    """A copy of the real test labels, replaced by its uncompressed bytes under the .gz name."""
    root = tmp_path / "mnist"
    shutil.copytree(REPO / "data" / "mnist", root, ignore=shutil.ignore_patterns("*images*"))
    target = root / FILES["test"][1]
    target.write_bytes(gzip.decompress(target.read_bytes()))
    message = _error(read_idx, target, fix="restore it")
    assert str(target) in message and "gzip" in message and "Fix: restore it" in message


@pytest.mark.parametrize(
    ("payload", "what"),
    [
        (b"\x01\x02\x08\x01\x00\x00\x00\x03abc", "bad magic number 01020801"),
        (b"", "bad magic number (empty file)"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", "is truncated"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05abc", "header says shape (5,)"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x02abc", "but 3 bytes follow it"),  # trailing bytes
    ],
)
def test_bad_idx_file(tmp_path: Path, payload: bytes, what: str) -> None:
    for name in ("a.idx", "a.idx.gz"):
        path = tmp_path / name
        path.write_bytes(gzip.compress(payload) if name.endswith(".gz") else payload)
        message = _error(read_idx, path)
        assert str(path) in message and what in message and "Fix:" in message


def test_idx_with_wrong_magic_in_mnist_dir(fake_mnist: Path) -> None:
    target = fake_mnist / FILES["test"][0]
    raw = bytearray(gzip.decompress(target.read_bytes()))
    raw[2] = 0x42
    target.write_bytes(gzip.compress(bytes(raw)))
    _rewrite_sums(fake_mnist)
    message = _error(read_mnist_raw, fake_mnist, "test")
    assert str(target) in message and "not an IDX file" in message and RAW_FIX in message


def test_idx_size_not_matching_header_in_mnist_dir(fake_mnist: Path) -> None:
    target = fake_mnist / FILES["train"][0]
    target.write_bytes(gzip.compress(gzip.decompress(target.read_bytes())[:-7]))
    _rewrite_sums(fake_mnist)
    message = _error(read_mnist_raw, fake_mnist, "train")
    assert str(target) in message and "does not match its IDX header" in message
    assert RAW_FIX in message


def test_raw_labels_out_of_range(fake_mnist: Path) -> None:
    target = fake_mnist / FILES["test"][1]
    write_idx(np.full(64, 11, dtype=np.uint8), target)
    _rewrite_sums(fake_mnist)
    message = _error(read_mnist_raw, fake_mnist, "test")
    assert str(target) in message and "label 11" in message and RAW_FIX in message


def test_raw_images_of_wrong_shape(fake_mnist: Path) -> None:
    target = fake_mnist / FILES["test"][0]
    write_idx(np.zeros((64, 784), dtype=np.uint8), target)
    _rewrite_sums(fake_mnist)
    message = _error(read_mnist_raw, fake_mnist, "test")
    assert str(target) in message and "(64, 784)" in message and RAW_FIX in message


# ---------------------------------------------------------------- prepared directories


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_missing_prepared_directory_asks_for_the_prepare_stage(tmp_path: Path, state: str) -> None:
    root = tmp_path / "prepared" / "mnist"
    if state == "empty":
        root.mkdir(parents=True)
    message = _error(build_dataset, "mnist", "train", root=root)
    assert str(root) in message and PREPARED_FIX in message
    assert SUMS_FILE not in message and "git checkout" not in message


def test_missing_colour_digits_asks_for_its_stage(tmp_path: Path) -> None:
    message = _error(build_dataset, "colour_digits", "test", root=tmp_path / "colour_digits")
    assert str(tmp_path / "colour_digits") in message
    assert "dvc repro prepare_colour_digits" in message


def test_manifest_without_sha256(prepared_fake_mnist: Path) -> None:
    _rewrite_prepared(prepared_fake_mnist, edit_manifest=lambda m: m.pop("sha256"))
    message = _error(build_dataset, "mnist", "train", root=prepared_fake_mnist)
    assert str(prepared_fake_mnist / MANIFEST_FILE) in message and "'sha256'" in message
    assert PREPARED_FIX in message
    # Without verification the checksum is not needed.
    assert len(load_prepared(prepared_fake_mnist, "train", fix="-", verify=False)) == 256


@pytest.mark.parametrize(
    ("edit", "what"),
    [
        (lambda m: m.pop("splits"), "no 'splits' entry"),
        (lambda m: m.update(num_classes="ten"), "'num_classes' is 'ten'"),
        (lambda m: m.update(mean=[0.1, 0.2]), "'mean' has 2 channels"),
        (lambda m: m.update(sha256="1234"), "'sha256' is '1234'"),
    ],
)
def test_manifest_with_bad_entries(prepared_fake_mnist: Path, edit, what: str) -> None:
    _rewrite_prepared(prepared_fake_mnist, edit_manifest=edit)
    message = _error(build_dataset, "mnist", "train", root=prepared_fake_mnist)
    assert str(prepared_fake_mnist / MANIFEST_FILE) in message and what in message
    assert PREPARED_FIX in message


@pytest.mark.parametrize(
    ("content", "what"),
    [(b"[1, 2]", "JSON list"), (b"{not json", "not valid JSON"), (b"\xff\x00", "not UTF-8")],
)
def test_manifest_that_is_not_a_manifest(
    prepared_fake_mnist: Path, content: bytes, what: str
) -> None:
    (prepared_fake_mnist / MANIFEST_FILE).write_bytes(content)
    message = _error(build_dataset, "mnist", "test", root=prepared_fake_mnist)
    assert str(prepared_fake_mnist / MANIFEST_FILE) in message and what in message
    assert PREPARED_FIX in message


def test_missing_manifest_next_to_arrays(prepared_fake_mnist: Path) -> None:
    (prepared_fake_mnist / MANIFEST_FILE).unlink()
    message = _error(build_dataset, "mnist", "train", root=prepared_fake_mnist)
    assert f"{prepared_fake_mnist / MANIFEST_FILE} is missing" in message
    assert PREPARED_FIX in message and SUMS_FILE not in message


@pytest.mark.parametrize("verify", [True, False])
def test_truncated_npz_with_matching_checksum(prepared_fake_mnist: Path, verify: bool) -> None:
    path = prepared_fake_mnist / ARRAYS_FILE
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _rewrite_prepared(
        prepared_fake_mnist, edit_manifest=lambda m: m.update(sha256=sha256_file(path))
    )
    message = _error(
        load_prepared, prepared_fake_mnist, "train", fix="run the stage", verify=verify
    )
    assert str(path) in message and "truncated or corrupt" in message
    assert "Fix: run the stage" in message


def _labels(value: int):
    def edit(arrays: dict) -> None:
        arrays["train_labels"] = arrays["train_labels"].copy()
        arrays["train_labels"][3] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "what"),
    [
        (lambda a: a.pop("train_labels"), "no array 'train_labels'"),
        (lambda a: a.update(train_images=a["train_images"].astype(np.float32)), "is float32"),
        (lambda a: a.update(train_images=a["train_images"][:, 0]), "shape (256, 28, 28)"),
        (
            lambda a: a.update(train_images=np.zeros((256, 1, 32, 32), np.uint8)),
            "the manifest says (1, 28, 28)",
        ),
        (lambda a: a.update(train_labels=a["train_labels"][:-1]), "255 labels for 256 images"),
        (lambda a: a.update(train_labels=a["train_labels"].astype(np.float64)), "is float64"),
        (_labels(10), "label 10, outside 0..9"),
        (_labels(-1), "label -1, outside 0..9"),
        (
            lambda a: a.update(
                train_images=a["train_images"][:0], train_labels=a["train_labels"][:0]
            ),
            "the train split is empty",
        ),
    ],
)
def test_prepared_arrays_that_do_not_fit(prepared_fake_mnist: Path, edit, what: str) -> None:
    _rewrite_prepared(prepared_fake_mnist, edit_arrays=edit)
    message = _error(build_dataset, "mnist", "train", root=prepared_fake_mnist)
    assert str(prepared_fake_mnist / ARRAYS_FILE) in message and what in message
    assert PREPARED_FIX in message


def test_prepared_directory_of_another_dataset(prepared_fake_mnist: Path) -> None:
    _rewrite_prepared(prepared_fake_mnist, edit_manifest=lambda m: m.update(name="colour_digits"))
    message = _error(build_dataset, "mnist", "train", root=prepared_fake_mnist)
    assert "describes the 'colour_digits' dataset, not 'mnist'" in message
    assert str(prepared_fake_mnist / MANIFEST_FILE) in message


# ---------------------------------------------------------------- the real stage, as a user runs it


def _run_stage(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "EFFML_TRACKING": "off",
        "MPLBACKEND": "Agg",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    return subprocess.run(
        [sys.executable, "-m", "common.data.prepare", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_prepare_stage_with_malformed_sums_prints_one_line(
    tmp_path: Path, fake_mnist: Path
) -> None:
    sums = fake_mnist / SUMS_FILE
    sums.write_text("not a checksum line\n" + sums.read_text())
    proc = _run_stage(
        "mnist",
        "--raw",
        str(fake_mnist),
        "--out",
        str(tmp_path / "out"),
        "--metrics",
        str(tmp_path / "m.json"),
        cwd=REPO,
    )
    line = _one_line(proc)
    assert f"{sums} line 1 has a malformed SHA-256 digest" in line and RAW_FIX in line


def test_prepare_stage_with_corrupt_gzip_prints_one_line(tmp_path: Path, fake_mnist: Path) -> None:
    target = fake_mnist / FILES["train"][1]
    target.write_bytes(b"\x1f\x8b" + target.read_bytes()[2:40])
    _rewrite_sums(fake_mnist)
    proc = _run_stage(
        "mnist",
        "--raw",
        str(fake_mnist),
        "--out",
        str(tmp_path / "out"),
        "--metrics",
        str(tmp_path / "m.json"),
        cwd=REPO,
    )
    line = _one_line(proc)
    assert str(target) in line and "gzip" in line and RAW_FIX in line


def test_colour_digits_stage_without_prepared_mnist_prints_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "prepared" / "mnist"
    proc = _run_stage(
        "colour_digits",
        "--params",
        str(REPO / "params.yaml"),
        "--mnist",
        str(missing),
        "--out",
        str(tmp_path / "out"),
        "--metrics",
        str(tmp_path / "m.json"),
        cwd=REPO,
    )
    line = _one_line(proc)
    assert str(missing) in line and PREPARED_FIX in line and SUMS_FILE not in line
