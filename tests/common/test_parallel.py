"""Jobs over worker processes: every job's result comes back once, under its own index, with the
same numbers whatever the number of workers; a failing job's error reaches the caller."""

from __future__ import annotations

import pytest
import torch

from common.parallel import available_cpus, process_map

_SCALE: list[float] = []


def _init(scale: float) -> None:
    _SCALE.append(scale)


def _job(seed: int) -> tuple[float, int]:
    """A float result sensitive to summation order (a 256 x 256 matmul) and the thread count."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(256, 256, generator=g, dtype=torch.float32)
    return float((a @ a).sum() * _SCALE[0]), torch.get_num_threads()


def _fails(seed: int) -> int:
    if seed == 2:
        raise ValueError("job 2 is broken")
    return seed


def test_results_come_back_by_index_and_do_not_depend_on_the_worker_count() -> None:
    jobs = [3, 1, 4, 1, 5]
    one = dict(process_map(_job, jobs, workers=1, initializer=_init, initargs=(2.0,)))
    two = dict(process_map(_job, jobs, workers=2, initializer=_init, initargs=(2.0,)))
    assert sorted(one) == sorted(two) == list(range(len(jobs)))
    assert one == two  # bit-identical: one torch thread per worker
    assert all(threads == 1 for _, threads in one.values())
    assert one[1] == one[3] and one[0] != one[1]  # same seed, same number; other seed, other


def test_a_failing_job_raises_in_the_caller() -> None:
    with pytest.raises(ValueError, match="job 2 is broken"):
        list(process_map(_fails, [0, 1, 2, 3], workers=2))


def test_no_jobs_start_no_workers() -> None:
    assert list(process_map(_fails, [])) == []
    assert available_cpus() >= 1
