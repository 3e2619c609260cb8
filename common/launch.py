"""Run a stage module in one process, or in N processes under ``torchrun``.

``python -m common.launch --nproc 4 papers.deep_compression.train_baseline --name lenet5 ...``

With ``--nproc 1`` (the default profiles) the module runs in this process, with no torchrun
start-up cost. With more, it re-executes itself through ``torch.distributed.run --standalone``;
the shared training loop then joins the process group (gloo on CPU, NCCL on GPU). The DVC stages
call this launcher with ``${launch.nproc_per_node}`` from params.yaml, so
``dvc exp run -S launch.nproc_per_node=4`` moves a whole pipeline onto four GPUs.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m common.launch", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--nproc", default="1", help="processes on this machine (default 1)")
    parser.add_argument(
        "module", help="the stage module, e.g. papers.deep_compression.train_baseline"
    )
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the module")
    args = parser.parse_args(argv)
    raw = args.nproc
    try:
        args.nproc = int(raw)
    except ValueError:
        args.nproc = 0
    if args.nproc < 1:
        # The stages pass ${launch.nproc_per_node} from the root params.yaml.
        print(
            f"error: params.yaml: launch.nproc_per_node: {raw!r} is not allowed; "
            "allowed: an integer >= 1 (the processes each stage runs)",
            file=sys.stderr,
        )
        return 2
    if args.nproc == 1 or "LOCAL_RANK" in os.environ:
        sys.argv = [args.module, *args.args]
        try:
            runpy.run_module(args.module, run_name="__main__", alter_sys=True)
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return 0
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={args.nproc}",
        "-m",
        args.module,
        *args.args,
    ]
    os.execv(sys.executable, cmd)
    return 0  # unreachable


if __name__ == "__main__":
    raise SystemExit(main())
