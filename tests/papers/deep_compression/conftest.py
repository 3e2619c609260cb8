"""Fixtures of the Deep Compression tests: params trees, and the whole pipeline at the smoke
profile."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.params import repo_profiles
from tests.params import write_params as write_params_tree

REPO = Path(__file__).resolve().parents[3]
SECTION = "deep_compression"


def write_params(
    directory: Path, *, epochs: int = 2, subset: int | None = None, lr: float | None = None
) -> Path:
    """A params tree under ``directory`` whose deep_compression smoke profile trains both LeNets
    for ``epochs`` on the given data (all of it, or ``subset`` training images), at learning rate
    ``lr`` when given."""
    smoke = repo_profiles(SECTION)["smoke"]
    for name in ("lenet300", "lenet5"):
        cfg = smoke["baseline"][name]
        cfg["train_subset"] = subset
        cfg["test_subset"] = None
        cfg["train"] = {**cfg["train"], "epochs": epochs, "batch_size": 32}
        if lr is not None:
            cfg["train"]["optimizer"] = {**cfg["train"]["optimizer"], "lr": lr}
    return write_params_tree(
        directory, profile={SECTION: "smoke"}, sections={SECTION: {"smoke": smoke}}
    )


def section_params(params: Path) -> Path:
    """The deep_compression profiles file of the params tree whose root is ``params``."""
    return params.parent / "papers" / SECTION / "params.yaml"


@pytest.fixture
def dc_params(tmp_path: Path) -> Path:
    return write_params(tmp_path / "params")


def run(main: Callable[[list[str]], int], params: Path, **flags: str) -> None:
    """Call a stage's ``main`` with ``--params`` and ``--<flag> <value>`` (``_`` becomes ``-``)
    and require success."""
    argv = ["--params", str(params)]
    for flag, value in flags.items():
        argv += [f"--{flag.replace('_', '-')}", str(value)]
    assert main(argv) == 0, argv


@pytest.fixture(scope="session")
def smoke_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every Deep Compression stage run in-process at the smoke profile, laid out as dvc.yaml does.

    Real MNIST (prepared from data/mnist) and a small colour-digit set; the stages are called
    with exactly the arguments dvc.yaml gives them (paths relative to the work directory).
    """
    from common.data.prepare import main as prepare
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
    params = write_params_tree(root, profile="smoke")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        mnist, digits = "data/prepared/mnist", "data/prepared/colour_digits"
        assert prepare(["mnist", "--raw", "data/mnist", "--out", mnist, "--metrics", "m.json"]) == 0
        argv = ["colour_digits", "--params", str(params), "--mnist", mnist, "--out", digits]
        assert prepare([*argv, "--metrics", "metrics/data/colour_digits.json"]) == 0
        m, runs = "metrics/deep_compression", "runs/deep_compression"
        for net, data in {"lenet300": mnist, "lenet5": mnist, "vgg": digits}.items():
            for stage, main, source in (
                ("baseline", train_baseline.main, {}),
                ("pruned", prune.main, {"baseline": f"{runs}/baseline/{net}"}),
                ("compressed", compress.main, {"pruned": f"{runs}/pruned/{net}"}),
            ):
                run(
                    main,
                    params,
                    name=net,
                    **source,
                    data=data,
                    out=f"{runs}/{stage}/{net}",
                    checkpoints=f"checkpoints/{stage}/{net}",
                    metrics=f"{m}/{stage}_{net}.json",
                    history=f"{m}/{stage}_{net}_history.csv",
                )
        for main, net, source, name in (
            (tradeoff.main, "lenet300", {"baseline": f"{runs}/baseline/lenet300"}, "tradeoff"),
            (bitwidth.main, "lenet5", {"pruned": f"{runs}/pruned/lenet5"}, "bitwidth"),
        ):
            run(
                main,
                params,
                name=net,
                **source,
                data=mnist,
                out=f"{m}/{name}_{net}.json",
                checkpoints=f"checkpoints/{name}",
                metrics=f"{m}/{name}_{net}_summary.json",
            )
        run(speedup.main, params, out=f"{m}/speedup.json", metrics=f"{m}/speedup_summary.json")
        for net in ("alexnet", "vgg16"):
            run(
                imagenet.main,
                params,
                name=net,
                out=f"{runs}/imagenet/{net}",
                checkpoints=f"checkpoints/imagenet/{net}",
                metrics=f"{m}/imagenet_{net}.json",
            )
        run(
            report.main,
            params,
            claims=REPO / "papers/deep_compression/claims.yaml",
            runs=runs,
            metrics_dir=m,
            out="reports/deep_compression",
        )
    finally:
        os.chdir(cwd)
    return root
