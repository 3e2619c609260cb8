from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]


def write_params(path: Path, *, epochs: int = 2, subset: int | None = None) -> Path:
    """params.yaml whose deep_compression section runs both LeNets briefly on the given data."""
    data = yaml.safe_load((REPO / "params.yaml").read_text())
    dc = data["deep_compression"]
    dc["profile"] = "smoke"
    for name in ("lenet300", "lenet5"):
        cfg = dc["profiles"]["smoke"]["baseline"][name]
        cfg["train_subset"] = subset
        cfg["test_subset"] = None
        cfg["train"]["epochs"] = epochs
        cfg["train"]["batch_size"] = 32
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def dc_params(tmp_path: Path) -> Path:
    return write_params(tmp_path / "params.yaml")


def smoke_params(path: Path) -> Path:
    """The repository's params.yaml with every section at the smoke profile."""
    data = yaml.safe_load((REPO / "params.yaml").read_text())
    for section in data.values():
        if isinstance(section, dict) and "profile" in section:
            section["profile"] = "smoke"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def smoke_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every Deep Compression stage run in-process at the smoke profile, laid out as dvc.yaml does.

    Real MNIST (prepared from data/mnist) and a small colour-digit set; the stages are called
    with exactly the arguments dvc.yaml gives them (paths relative to the work directory).
    """
    import os

    from common.data.prepare import main as prepare_main
    from papers.deep_compression import (
        bitwidth,
        compress,
        imagenet,
        prune,
        report,
        speedup,
        tradeoff,
        train_baseline,
    )

    root = tmp_path_factory.mktemp("dc_smoke")
    shutil.copytree(REPO / "data" / "mnist", root / "data" / "mnist")
    params = smoke_params(root / "params.yaml")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert (
            prepare_main(
                [
                    "mnist",
                    "--raw",
                    "data/mnist",
                    "--out",
                    "data/prepared/mnist",
                    "--metrics",
                    "metrics/data/mnist.json",
                ]
            )
            == 0
        )
        assert (
            prepare_main(
                [
                    "colour_digits",
                    "--params",
                    str(params),
                    "--mnist",
                    "data/prepared/mnist",
                    "--out",
                    "data/prepared/colour_digits",
                    "--metrics",
                    "metrics/data/colour_digits.json",
                ]
            )
            == 0
        )
        data = {
            "lenet300": "data/prepared/mnist",
            "lenet5": "data/prepared/mnist",
            "vgg": "data/prepared/colour_digits",
        }
        m = "metrics/deep_compression"
        for net, d in data.items():
            assert (
                train_baseline.main(
                    [
                        "--params",
                        str(params),
                        "--name",
                        net,
                        "--data",
                        d,
                        "--out",
                        f"runs/deep_compression/baseline/{net}",
                        "--checkpoints",
                        f"checkpoints/baseline/{net}",
                        "--metrics",
                        f"{m}/baseline_{net}.json",
                        "--history",
                        f"{m}/baseline_{net}_history.csv",
                    ]
                )
                == 0
            )
            assert (
                prune.main(
                    [
                        "--params",
                        str(params),
                        "--name",
                        net,
                        "--baseline",
                        f"runs/deep_compression/baseline/{net}",
                        "--data",
                        d,
                        "--out",
                        f"runs/deep_compression/pruned/{net}",
                        "--checkpoints",
                        f"checkpoints/pruned/{net}",
                        "--metrics",
                        f"{m}/pruned_{net}.json",
                        "--history",
                        f"{m}/pruned_{net}_history.csv",
                    ]
                )
                == 0
            )
            assert (
                compress.main(
                    [
                        "--params",
                        str(params),
                        "--name",
                        net,
                        "--pruned",
                        f"runs/deep_compression/pruned/{net}",
                        "--data",
                        d,
                        "--out",
                        f"runs/deep_compression/compressed/{net}",
                        "--checkpoints",
                        f"checkpoints/compressed/{net}",
                        "--metrics",
                        f"{m}/compressed_{net}.json",
                        "--history",
                        f"{m}/compressed_{net}_history.csv",
                    ]
                )
                == 0
            )
        assert (
            tradeoff.main(
                [
                    "--params",
                    str(params),
                    "--name",
                    "lenet300",
                    "--baseline",
                    "runs/deep_compression/baseline/lenet300",
                    "--data",
                    data["lenet300"],
                    "--out",
                    f"{m}/tradeoff_lenet300.json",
                    "--checkpoints",
                    "checkpoints/tradeoff",
                    "--metrics",
                    f"{m}/tradeoff_lenet300_summary.json",
                ]
            )
            == 0
        )
        assert (
            bitwidth.main(
                [
                    "--params",
                    str(params),
                    "--name",
                    "lenet5",
                    "--pruned",
                    "runs/deep_compression/pruned/lenet5",
                    "--data",
                    data["lenet5"],
                    "--out",
                    f"{m}/bitwidth_lenet5.json",
                    "--checkpoints",
                    "checkpoints/bitwidth",
                    "--metrics",
                    f"{m}/bitwidth_lenet5_summary.json",
                ]
            )
            == 0
        )
        assert (
            speedup.main(
                [
                    "--params",
                    str(params),
                    "--out",
                    f"{m}/speedup.json",
                    "--metrics",
                    f"{m}/speedup_summary.json",
                ]
            )
            == 0
        )
        for net in ("alexnet", "vgg16"):
            assert (
                imagenet.main(
                    [
                        "--params",
                        str(params),
                        "--name",
                        net,
                        "--out",
                        f"runs/deep_compression/imagenet/{net}",
                        "--checkpoints",
                        f"checkpoints/imagenet/{net}",
                        "--metrics",
                        f"{m}/imagenet_{net}.json",
                    ]
                )
                == 0
            )
        assert (
            report.main(
                [
                    "--params",
                    str(params),
                    "--claims",
                    str(REPO / "papers/deep_compression/claims.yaml"),
                    "--runs",
                    "runs/deep_compression",
                    "--metrics-dir",
                    m,
                    "--out",
                    "reports/deep_compression",
                ]
            )
            == 0
        )
    finally:
        os.chdir(cwd)
    return root
