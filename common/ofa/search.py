"""Evolutionary architecture search under an efficiency constraint (Once-for-All, Section 3.4).

The reference ``EvolutionFinder``'s algorithm: a population of random sub-networks that satisfy
the constraint (rejection sampling); every generation keeps the best ``parent_ratio`` by
predicted accuracy, adds ``mutation_ratio * population`` mutants of random parents (each block's
kernel and expand ratio and each stage's depth resampled with ``mutate_prob``, the resolution with
``resolution_mutate_prob``) and fills up with crossovers (each gene from one of two parents),
every child resampled until it satisfies the constraint. The best arch ever seen is returned.

No candidate over the constraint can enter the population, so the result never violates it.
The search is reproducible (one seeded :class:`random.Random`) and resumable: with a checkpoint
path, the state is written atomically after every generation, and a rerun with the same
fingerprint continues from there and ends with the same result as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from common.config import bounds
from common.fingerprint import source_digest
from common.io import atomic_write_bytes
from common.ofa.supernet import OFAMobileNetV3Config
from common.ofa.training import ElasticChoices

Arch = dict[str, Any]


class SearchError(ValueError):
    """The constraint cannot be met (or the search is misconfigured); the message says why."""


@dataclass(frozen=True)
class EvolutionConfig:
    """Hyper-parameters of the evolutionary search (defaults: the reference implementation's)."""

    population: int = field(default=100, metadata=bounds(ge=2))
    generations: int = field(default=500, metadata=bounds(ge=1))
    parent_ratio: float = field(default=0.25, metadata=bounds(gt=0, le=1))
    mutation_ratio: float = field(default=0.5, metadata=bounds(ge=0, le=1))
    mutate_prob: float = field(default=0.1, metadata=bounds(ge=0, le=1))
    resolution_mutate_prob: float = field(default=0.5, metadata=bounds(ge=0, le=1))
    max_tries: int = field(default=10000, metadata=bounds(ge=1))


@dataclass
class SearchResult:
    arch: Arch
    predicted_accuracy: float
    efficiency: float
    limit: float
    history: list[float]  # best predicted accuracy after each generation
    evaluated: int  # candidates scored by the predictor
    seconds: float
    resumed_from: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _key(arch: Arch) -> tuple:
    return (tuple(arch["ks"]), tuple(arch["e"]), tuple(arch["d"]), int(arch["r"]))


class EvolutionSearch:
    """Search ``choices`` for the arch with the best predicted accuracy under a constraint.

    Args:
        config: the supernet's space (block and stage counts).
        choices: the choices to search over (usually the whole space).
        predictor: ``archs -> accuracies`` (higher is better).
        efficiency: ``arch -> cost`` (MACs, ms, bytes); results are cached per arch.
        limit: the largest allowed cost.
        evolution: the search's hyper-parameters.
        seed: seeds the one random generator of the search.
    """

    def __init__(
        self,
        config: OFAMobileNetV3Config,
        choices: ElasticChoices,
        *,
        predictor: Callable[[Sequence[Arch]], Sequence[float]],
        efficiency: Callable[[Arch], float],
        limit: float,
        evolution: EvolutionConfig | None = None,
        seed: int = 0,
    ) -> None:
        choices.check_within(config)
        self.config = config
        self.choices = choices
        self.predictor = predictor
        self._efficiency = efficiency
        self.limit = float(limit)
        self.evo = evolution or EvolutionConfig()
        self.seed = seed
        self.rng = random.Random(seed)
        self._cache: dict[tuple, float] = {}
        self._uniform_hopeless = False
        self.n_blocks = config.num_stages * max(config.depths)

    # ------------------------------------------------------------------ constraint
    def efficiency(self, arch: Arch) -> float:
        k = _key(arch)
        if k not in self._cache:
            self._cache[k] = float(self._efficiency(arch))
        return self._cache[k]

    def valid(self, arch: Arch) -> bool:
        return self.efficiency(arch) <= self.limit

    def _smallest_arch(self) -> Arch:
        c = self.choices
        return {
            "ks": [min(c.kernel_sizes)] * self.n_blocks,
            "e": [min(c.expand_ratios)] * self.n_blocks,
            "d": [min(c.depths)] * self.config.num_stages,
            "r": min(c.resolutions),
        }

    def _smallest(self) -> float:
        return self.efficiency(self._smallest_arch())

    def _until_valid(self, make: Callable[[], Arch], what: str) -> Arch:
        for _ in range(self.evo.max_tries):
            arch = make()
            if self.valid(arch):
                return arch
        raise SearchError(
            f"no {what} within {self.limit:g} after {self.evo.max_tries} tries; the smallest "
            f"sub-network of the space costs {self._smallest():g}: raise the limit"
        )

    # ------------------------------------------------------------------ operators
    def random_arch(self) -> Arch:
        """A uniformly random arch within the limit (rejection sampling, as the reference).

        Under a tight limit uniform samples almost never fit (the smallest sub-networks are a
        sliver of the space); after ``max_tries`` the sample is a mutant of the smallest
        sub-network instead, so the search starts from the feasible corner and evolves upwards.
        """
        if not self._uniform_hopeless:
            for _ in range(self.evo.max_tries):
                arch = self.choices.sample(self.config, self.rng)
                if self.valid(arch):
                    return arch
            self._uniform_hopeless = True  # the rest of the population starts from the corner
        smallest = self._smallest_arch()
        if not self.valid(smallest):
            raise SearchError(
                f"no sub-network within {self.limit:g}: the smallest of the space costs "
                f"{self._smallest():g}: raise the limit"
            )
        try:
            return self.mutate(smallest)
        except SearchError:
            return smallest

    def mutate(self, parent: Arch) -> Arch:
        c, p = self.choices, self.evo.mutate_prob

        def make() -> Arch:
            child = {key: list(parent[key]) for key in ("ks", "e", "d")}
            for i in range(self.n_blocks):
                if self.rng.random() < p:
                    child["ks"][i] = self.rng.choice(c.kernel_sizes)
                if self.rng.random() < p:
                    child["e"][i] = self.rng.choice(c.expand_ratios)
            for s in range(self.config.num_stages):
                if self.rng.random() < p:
                    child["d"][s] = self.rng.choice(c.depths)
            r = parent["r"]
            if self.rng.random() < self.evo.resolution_mutate_prob:
                r = self.rng.choice(c.resolutions)
            child["r"] = r
            return child

        return self._until_valid(make, "mutant")

    def crossover(self, a: Arch, b: Arch) -> Arch:
        def make() -> Arch:
            child = {
                key: [
                    x if self.rng.random() < 0.5 else y for x, y in zip(a[key], b[key], strict=True)
                ]
                for key in ("ks", "e", "d")
            }
            child["r"] = a["r"] if self.rng.random() < 0.5 else b["r"]
            return child

        return self._until_valid(make, "crossover child")

    # ------------------------------------------------------------------ state
    def fingerprint(self, extra: Any = None) -> str:
        payload = {
            "space": self.config.to_dict(),
            "choices": asdict(self.choices),
            "evolution": asdict(self.evo),
            "limit": self.limit,
            "seed": self.seed,
            "code": source_digest(),
            "extra": extra,
        }
        return hashlib.sha256(
            json.dumps(payload, sort_keys=True, default=str).encode()
        ).hexdigest()[:16]

    def _save(self, path: Path, state: dict[str, Any]) -> None:
        rng_state = self.rng.getstate()
        state = {**state, "rng": [rng_state[0], list(rng_state[1]), rng_state[2]]}
        atomic_write_bytes(json.dumps(state).encode(), path)

    def _load(self, path: Path, fingerprint: str) -> dict[str, Any] | None:
        if not path.is_file():
            return None
        try:
            state = json.loads(path.read_text())
        except json.JSONDecodeError:
            return None
        if state.get("fingerprint") != fingerprint:
            print(f"{path} was made by another search, config or code; starting the search afresh")
            return None
        v, internal, gauss = state["rng"]
        self.rng.setstate((v, tuple(internal), gauss))
        return state

    # ------------------------------------------------------------------ search
    def run(
        self,
        *,
        checkpoint: str | Path | None = None,
        fingerprint_extra: Any = None,
        progress: Callable[[int, int, float], None] | None = None,
    ) -> SearchResult:
        """Run the search (or resume it from ``checkpoint``) and return the best arch found.

        ``fingerprint_extra`` should identify the predictor and the efficiency model (e.g.
        their files' hashes): a checkpoint made with others is not resumed.
        """
        evo = self.evo
        t0 = time.perf_counter()
        path = Path(checkpoint) if checkpoint else None
        fp = self.fingerprint(fingerprint_extra)
        state = self._load(path, fp) if path else None
        resumed_from = 0
        if state is not None:
            population = [(float(s), a) for s, a in state["population"]]
            history = list(state["history"])
            best = (float(state["best"][0]), state["best"][1])
            generation = int(state["generation"])
            evaluated = int(state["evaluated"])
            seconds_before = float(state["seconds"])
            resumed_from = generation
        else:
            archs = [self.random_arch() for _ in range(evo.population)]
            population = list(zip(map(float, self.predictor(archs)), archs, strict=True))
            history, generation, evaluated, seconds_before = [], 0, len(archs), 0.0
            best = max(population, key=lambda t: t[0])
        n_parents = max(1, round(evo.parent_ratio * evo.population))
        n_mutants = round(evo.mutation_ratio * evo.population)
        while generation < evo.generations:
            parents = sorted(population, key=lambda t: -t[0])[:n_parents]
            if parents[0][0] > best[0]:
                best = parents[0]
            history.append(best[0])
            children = [self.mutate(self.rng.choice(parents)[1]) for _ in range(n_mutants)]
            children += [
                self.crossover(self.rng.choice(parents)[1], self.rng.choice(parents)[1])
                for _ in range(evo.population - n_mutants)
            ]
            scores = list(map(float, self.predictor(children)))
            evaluated += len(children)
            population = parents + list(zip(scores, children, strict=True))
            generation += 1
            if path:
                self._save(
                    path,
                    {
                        "fingerprint": fp,
                        "generation": generation,
                        "population": [[s, a] for s, a in population],
                        "history": history,
                        "best": [best[0], best[1]],
                        "evaluated": evaluated,
                        "seconds": seconds_before + time.perf_counter() - t0,
                    },
                )
            if progress:
                progress(generation, evo.generations, best[0])
        final = max(population, key=lambda t: t[0])
        if final[0] > best[0]:
            best = final
        return SearchResult(
            arch=best[1],
            predicted_accuracy=best[0],
            efficiency=self.efficiency(best[1]),
            limit=self.limit,
            history=history,
            evaluated=evaluated,
            seconds=seconds_before + time.perf_counter() - t0,
            resumed_from=resumed_from,
        )
