"""Evolutionary search under a cost limit over any gene space (Once-for-All's algorithm, Section
3.4, for architectures that are not Once-for-All's).

A population of random candidates within the limit (rejection sampling); every generation keeps
the best ``parent_ratio`` by fitness, adds ``mutation_ratio * population`` mutants of random
parents and fills up with crossovers of two parents, every child redrawn until it is within the
limit. The best candidate ever scored is returned. One seeded :class:`random.Random` makes it
reproducible. ``common.ofa.search.EvolutionSearch`` is the same algorithm specialised to
Once-for-All's genes (kernel, expand, depth, resolution) with checkpointing for long searches.

A gene space is any object with ``sample(rng)``, ``mutate(parent, rng, prob)``,
``crossover(a, b, rng)``, ``key(candidate)`` (hashable) and ``smallest()`` (the cheapest
candidate: where the search starts when random samples never fit the limit).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class GeneSpace(Protocol):
    def sample(self, rng: random.Random) -> Any: ...
    def mutate(self, parent: Any, rng: random.Random, prob: float) -> Any: ...
    def crossover(self, a: Any, b: Any, rng: random.Random) -> Any: ...
    def key(self, candidate: Any) -> Hashable: ...
    def smallest(self) -> Any: ...


class LimitError(ValueError):
    """No candidate of the space fits the limit; the message says the smallest cost."""


@dataclass
class Evolved:
    best: Any
    fitness: float
    cost: float
    history: list[float] = field(default_factory=list)  # best fitness after each generation
    scored: int = 0


def evolve(
    space: GeneSpace,
    *,
    fitness: Callable[[Sequence[Any]], Sequence[float]],
    cost: Callable[[Any], float],
    limit: float,
    population: int = 100,
    generations: int = 500,
    parent_ratio: float = 0.25,
    mutation_ratio: float = 0.5,
    mutate_prob: float = 0.1,
    max_tries: int = 10000,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
    initial: Sequence[Any] = (),
) -> Evolved:
    """The candidate of ``space`` with the highest ``fitness`` (scored in batches, higher is
    better) among those with ``cost <= limit``. ``initial``: candidates to start the first
    population with (those within the limit; e.g. the hand-designed ones the search should
    beat), the rest drawn at random; the result is never worse than the best of them."""
    rng = random.Random(seed)
    costs: dict[Hashable, float] = {}
    scores: dict[Hashable, float] = {}

    def cost_of(c: Any) -> float:
        k = space.key(c)
        if k not in costs:
            costs[k] = float(cost(c))
        return costs[k]

    smallest = space.smallest()
    if cost_of(smallest) > limit:
        raise LimitError(
            f"nothing fits {limit:g}: the smallest candidate costs {cost_of(smallest):g}"
        )

    def until_valid(make: Callable[[], Any]) -> Any:
        for _ in range(max_tries):
            c = make()
            if cost_of(c) <= limit:
                return c
        return space.mutate(smallest, rng, 0.0)  # the feasible corner

    def score(cands: Sequence[Any]) -> list[float]:
        new = [c for c in cands if space.key(c) not in scores]
        unique = list({space.key(c): c for c in new}.values())
        if unique:
            for c, s in zip(unique, fitness(unique), strict=True):
                scores[space.key(c)] = float(s)
        return [scores[space.key(c)] for c in cands]

    pop = [c for c in initial if cost_of(c) <= limit][:population]
    pop += [until_valid(lambda: space.sample(rng)) for _ in range(population - len(pop))]
    n_parents = max(1, round(parent_ratio * population))
    n_mutants = round(mutation_ratio * population)
    best, best_fit, history = None, float("-inf"), []
    for gen in range(generations):
        fits = score(pop)
        ranked = sorted(zip(fits, range(len(pop)), strict=True), key=lambda t: (-t[0], t[1]))
        if ranked[0][0] > best_fit:
            best_fit, best = ranked[0][0], pop[ranked[0][1]]
        history.append(best_fit)
        if progress is not None:
            progress(gen, best_fit)
        if gen == generations - 1:
            break
        parents = [pop[i] for _, i in ranked[:n_parents]]
        children = [
            until_valid(lambda p=parents: space.mutate(rng.choice(p), rng, mutate_prob))
            for _ in range(n_mutants)
        ]
        while len(parents) + len(children) < population:
            a, b = rng.choice(parents), rng.choice(parents)
            children.append(until_valid(lambda a=a, b=b: space.crossover(a, b, rng)))
        pop = parents + children
    return Evolved(best, best_fit, cost_of(best), history, len(scores))
