"""The generic evolutionary search: it respects the limit, finds the optimum of a small space,
is reproducible, and says when nothing fits."""

from __future__ import annotations

import random

import pytest

from common.evolution import LimitError, evolve


class Bits:
    """Candidates: 12 genes in 0..3. Cost: their sum. Fitness: agreement with a target."""

    n = 12

    def sample(self, rng: random.Random):
        return tuple(rng.randrange(4) for _ in range(self.n))

    def mutate(self, parent, rng: random.Random, prob: float):
        return tuple(rng.randrange(4) if rng.random() < prob else g for g in parent)

    def crossover(self, a, b, rng: random.Random):
        return tuple(x if rng.random() < 0.5 else y for x, y in zip(a, b, strict=True))

    def key(self, c):
        return c

    def smallest(self):
        return (0,) * self.n


TARGET = (3, 0, 2, 1, 0, 3, 1, 1, 0, 2, 0, 1)  # costs 14


def fitness(cands):
    return [-sum(abs(x - t) for x, t in zip(c, TARGET, strict=True)) for c in cands]


def test_finds_the_optimum_within_the_limit_and_is_reproducible() -> None:
    kw = {"fitness": fitness, "cost": sum, "population": 30, "generations": 40, "mutate_prob": 0.2}
    found = evolve(Bits(), limit=14, seed=3, **kw)
    assert found.best == TARGET and found.fitness == 0 and found.cost <= 14
    assert found.history == sorted(found.history)  # the best ever seen never gets worse
    assert evolve(Bits(), limit=14, seed=3, **kw).best == found.best


def test_under_a_tight_limit_nothing_over_it_is_returned() -> None:
    found = evolve(Bits(), fitness=fitness, cost=sum, limit=6, population=20, generations=15)
    assert found.cost <= 6 and sum(found.best) <= 6
    assert found.fitness < 0  # the target costs 14: out of reach


def test_a_limit_below_the_smallest_candidate_says_so() -> None:
    class Costly(Bits):
        def smallest(self):
            return (1,) * self.n

    with pytest.raises(LimitError, match="smallest candidate costs 12"):
        evolve(Costly(), fitness=fitness, cost=sum, limit=5, population=4, generations=2)


def test_initial_candidates_start_the_search_and_bound_its_result() -> None:
    """A search too short to find the target by itself returns it when it is given as a
    starting candidate; a starting candidate over the limit is left out."""
    short = {"limit": 14, "population": 4, "generations": 1, "seed": 0}
    alone = evolve(Bits(), fitness=fitness, cost=sum, **short)
    assert alone.best != TARGET
    seeded = evolve(Bits(), fitness=fitness, cost=sum, initial=[(3,) * 12, TARGET], **short)
    assert seeded.best == TARGET and seeded.fitness == 0
