"""The accuracy predictor's encoding and fit, and the evolutionary search."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from common.ofa.efficiency import arch_macs, random_archs
from common.ofa.predictor import ArchEncoder, fit_predictor, rank_correlation
from common.ofa.search import EvolutionConfig, EvolutionSearch, SearchError
from common.ofa.supernet import OFAMobileNetV3Config
from common.ofa.training import full_space


@pytest.fixture
def space() -> OFAMobileNetV3Config:
    return OFAMobileNetV3Config(width_mult=0.25, resolution_range=(24, 32), resolution_step=4)


def test_encoding_is_one_hot_with_zeros_for_skipped_blocks(space: OFAMobileNetV3Config) -> None:
    enc = ArchEncoder(space, space.resolution_choices())
    assert enc.size == 20 * 6 + 3
    arch = {"ks": [7] * 20, "e": [3] * 20, "d": [2, 4, 3, 2, 2], "r": 28}
    v = enc.encode(arch)
    blocks = v[:120].view(20, 6)
    active = [s * 4 + i for s, d in enumerate(arch["d"]) for i in range(d)]
    for b in range(20):
        expected = torch.tensor([0, 0, 1, 1, 0, 0.0]) if b in active else torch.zeros(6)
        assert torch.equal(blocks[b], expected), b
    assert v[120:].tolist() == [0.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="resolution"):
        enc.encode({**arch, "r": 36})


def test_rank_correlation() -> None:
    assert rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert rank_correlation([1, 2, 2, 3], [1, 2, 2, 3]) == pytest.approx(1.0)


def _synthetic(space: OFAMobileNetV3Config, n: int) -> tuple[list[dict], list[float]]:
    """Accuracy that depends on the architecture (log MACs) plus a resolution term."""
    archs = random_archs(space, n, seed=0)
    accs = [60 + 4 * torch.tensor(arch_macs(space, a)).log10().item() + 0.2 * a["r"] for a in archs]
    return archs, accs


def test_predictor_learns_a_smooth_function_and_reports_held_out_error(
    space: OFAMobileNetV3Config,
) -> None:
    archs, accs = _synthetic(space, 160)
    enc = ArchEncoder(space, space.resolution_choices())
    _, fit = fit_predictor(enc, archs, accs, epochs=150, hidden=64, weight_decay=1e-2, seed=0)
    spread = torch.tensor(accs).std().item()
    assert fit.n_train + fit.n_valid == 160 and fit.n_valid == 32
    assert fit.valid_rmse < 0.6 * spread  # far better than predicting the mean
    assert fit.valid_spearman > 0.8
    assert len(fit.valid_predicted) == fit.n_valid
    # Same seed, same model.
    _, fit2 = fit_predictor(enc, archs, accs, epochs=150, hidden=64, weight_decay=1e-2, seed=0)
    assert fit2.valid_rmse == fit.valid_rmse


def _search(space, limit, *, seed=0, generations=6, progress=None, checkpoint=None):
    search = EvolutionSearch(
        space,
        full_space(space),
        # Bigger networks score higher: the search is pushed against its constraint.
        predictor=lambda xs: [arch_macs(space, a) / 1e6 + 0.01 * a["r"] for a in xs],
        efficiency=lambda a: float(arch_macs(space, a)),
        limit=limit,
        evolution=EvolutionConfig(population=16, generations=generations),
        seed=seed,
    )
    return search.run(progress=progress, checkpoint=checkpoint)


@pytest.mark.parametrize("fraction", [0.15, 0.4, 0.8])
def test_search_never_returns_an_architecture_over_its_constraint(
    space: OFAMobileNetV3Config, fraction: float
) -> None:
    macs = [arch_macs(space, a) for a in random_archs(space, 200, seed=1)]
    limit = sorted(macs)[int(fraction * len(macs))]
    result = _search(space, limit)
    assert arch_macs(space, result.arch) <= limit
    assert result.efficiency == arch_macs(space, result.arch)
    # And it finds something close to the limit (the predictor rewards MACs).
    assert result.efficiency > 0.7 * limit
    assert result.history == sorted(result.history)  # the best so far never gets worse


def test_search_is_reproducible(space: OFAMobileNetV3Config) -> None:
    a = _search(space, 3e6, seed=5)
    b = _search(space, 3e6, seed=5)
    c = _search(space, 3e6, seed=6)
    assert a.arch == b.arch and a.history == b.history
    assert (a.arch, a.history) != (c.arch, c.history)


class _Stop(Exception):
    pass


def test_search_resumes_after_an_interruption(space: OFAMobileNetV3Config, tmp_path: Path) -> None:
    full = _search(space, 3e6, seed=3, generations=8)
    ck = tmp_path / "search.json"

    def stop_at_4(gen: int, total: int, best: float) -> None:
        if gen == 4:
            raise _Stop

    with pytest.raises(_Stop):
        _search(space, 3e6, seed=3, generations=8, progress=stop_at_4, checkpoint=ck)
    assert json.loads(ck.read_text())["generation"] == 4
    resumed = _search(space, 3e6, seed=3, generations=8, checkpoint=ck)
    assert resumed.resumed_from == 4
    assert resumed.arch == full.arch and resumed.history == full.history
    # Another limit is another search: the checkpoint is not reused.
    other = _search(space, 2e6, seed=3, generations=8, checkpoint=ck)
    assert other.resumed_from == 0


def test_an_impossible_constraint_names_the_smallest_cost(space: OFAMobileNetV3Config) -> None:
    smallest = min(arch_macs(space, a) for a in random_archs(space, 50, seed=0))
    with pytest.raises(SearchError, match="smallest of the space costs"):
        search = EvolutionSearch(
            space,
            full_space(space),
            predictor=lambda xs: [0.0] * len(xs),
            efficiency=lambda a: float(arch_macs(space, a)),
            limit=smallest / 10,
            evolution=EvolutionConfig(population=4, generations=1, max_tries=50),
        )
        search.run()


def test_a_tight_feasible_constraint_starts_from_the_smallest_corner(
    space: OFAMobileNetV3Config,
) -> None:
    # Just above the smallest sub-network: uniform samples essentially never fit.
    tiny = _search(
        space,
        1.05
        * EvolutionSearch(
            space,
            full_space(space),
            predictor=lambda xs: [],
            efficiency=lambda a: float(arch_macs(space, a)),
            limit=1.0,
        )._smallest(),
    )
    assert tiny.efficiency <= tiny.limit


def test_mutation_and_crossover_stay_in_the_space(space: OFAMobileNetV3Config) -> None:
    search = EvolutionSearch(
        space,
        full_space(space),
        predictor=lambda xs: [0.0] * len(xs),
        efficiency=lambda a: 0.0,
        limit=1.0,
        evolution=EvolutionConfig(mutate_prob=0.5),
        seed=0,
    )
    rng = random.Random(0)
    a, b = (full_space(space).sample(space, rng) for _ in range(2))
    for child in [search.mutate(a) for _ in range(20)] + [
        search.crossover(a, b) for _ in range(20)
    ]:
        assert len(child["ks"]) == 20 and len(child["d"]) == 5
        assert set(child["ks"]) <= {3, 5, 7} and set(child["e"]) <= {3, 4, 6}
        assert set(child["d"]) <= {2, 3, 4} and child["r"] in (24, 28, 32)
