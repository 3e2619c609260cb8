"""Independent jobs spread over worker processes, one CPU thread each.

For work made of many small, independent units whose inner loop is Python and numpy (closed-loop
driving, simulation): a second process doubles the throughput on two cores where a second BLAS
thread does not. Every worker runs with one torch thread whatever the number of workers, so a
job's floating-point result does not depend on how many workers ran it (and one worker gives the
same numbers as eight).

Workers are started with ``spawn`` (no state inherited from the parent, safe with torch and
threads); ``initializer(*initargs)`` runs once per worker to load what every job needs (models,
worlds), so that each job is sent as a few small arguments.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any, TypeVar

J = TypeVar("J")
R = TypeVar("R")

__all__ = ["available_cpus", "process_map"]


def available_cpus() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _start_worker(initializer: Callable[..., None] | None, initargs: tuple) -> None:
    import torch

    torch.set_num_threads(1)  # the worker's own process: see the module doc
    if initializer is not None:
        initializer(*initargs)


def process_map(
    fn: Callable[[J], R],
    jobs: Sequence[J],
    *,
    workers: int | None = None,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
) -> Iterator[tuple[int, R]]:
    """Run ``fn(job)`` for every job on ``workers`` processes (default: :func:`available_cpus`,
    at most one per job); yields ``(index in jobs, result)`` as each finishes.

    ``fn`` and ``initializer`` must be module-level functions (they are pickled by name). An
    exception in a job is raised here, after the jobs not yet started are cancelled; so is a
    ``KeyboardInterrupt`` (the workers are stopped).
    """
    if not jobs:
        return
    n = max(1, min(workers or available_cpus(), len(jobs)))
    pool = ProcessPoolExecutor(
        max_workers=n,
        mp_context=get_context("spawn"),
        initializer=_start_worker,
        initargs=(initializer, initargs),
    )
    try:
        pending = {pool.submit(fn, job): i for i, job in enumerate(jobs)}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                i = pending.pop(future)
                yield i, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
