"""Stage ``anycost_gan_search``: the budgeted search for flexible sub-generators.

For every budget (a fraction of the full generator's MACs), Once-for-All's evolutionary search
(:func:`common.evolution.evolve`) looks for the flexible configuration (a channel ratio per
convolution, never below the uniform 0.25 width, and an output resolution) whose output is
closest to the full generator's: the mean over ``search.samples`` fixed latents (same noise) of
the pixel MSE plus the perceptual distance at the full resolution (the reference repository's
search minimises a perceptual distance; its ``assets/evolve_configs`` hold the configs it found).
The uniform sub-generators within the same budget are scored with the same distance, so the
report shows what the search buys. Outputs ``<out>/search.json`` and a distance-vs-MACs figure.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
import torch.nn.functional as F

from common.stage import STAGE_FLAGS, StageContext, stage
from papers.anycost_gan import channels as ch
from papers.anycost_gan.config import AnycostGanProfile

FLAGS = {
    **STAGE_FLAGS,
    "run": {"type": Path, "required": True, "help": "the adaptive-channel phase's output folder"},
    "features": {"type": Path, "required": True, "help": "the feature stage's output folder"},
}


class FlexibleSpace:
    """Candidates ``(ratio indices per convolution, output resolution)``."""

    def __init__(self, size: int, res_list: list[int], **kw) -> None:
        self.size, self.res_list, self.kw = size, sorted(res_list), kw
        self.full = ch.uniform(size, 1.0, **kw)
        self.floor = ch.uniform(size, ch.RATIOS[0], **kw)
        self.n = len(self.full)

    def widths(self, cand) -> list[int]:
        idx, _ = cand
        return [self.width(layer, i) for layer, i in enumerate(idx)]

    def sample(self, rng: random.Random):
        return (
            tuple(rng.randrange(len(ch.RATIOS)) for _ in range(self.n)),
            rng.choice(self.res_list),
        )

    def mutate(self, parent, rng: random.Random, prob: float):
        idx, res = parent
        idx = tuple(rng.randrange(len(ch.RATIOS)) if rng.random() < prob else i for i in idx)
        res = rng.choice(self.res_list) if rng.random() < prob else res
        return (idx, res)

    def crossover(self, a, b, rng: random.Random):
        idx = tuple(x if rng.random() < 0.5 else y for x, y in zip(a[0], b[0], strict=True))
        return (idx, a[1] if rng.random() < 0.5 else b[1])

    def key(self, cand):
        return (tuple(self.widths(cand)), cand[1])

    def uniform(self) -> list:
        """The uniform sub-generators (config-F's rule: the ratio does not shrink layers kept at
        the cap) as candidates of this space, at every resolution: per convolution the ratio
        whose width is the uniform one's."""
        out = []
        for q in ch.RATIOS:
            target = ch.uniform(self.size, q, **self.kw)
            idx = tuple(
                min(range(len(ch.RATIOS)), key=lambda i, k=layer, t=t: (
                    abs(self.width(k, i) - t), -i))
                for layer, t in enumerate(target)
            )  # fmt: skip
            out += [(idx, r) for r in self.res_list]
        return out

    def width(self, layer: int, i: int) -> int:
        f, lo = self.full[layer], self.floor[layer]
        return max(int(f * ch.RATIOS[i]) // 4 * 4, lo, 8)

    def smallest(self):
        return ((0,) * self.n, self.res_list[0])


@stage(
    section="anycost_gan",
    name="anycost_gan_search",
    config=AnycostGanProfile,
    flags=["run", "features", "out", "metrics"],
    catalogue=FLAGS,
    track=lambda ctx: ctx.config.search,
)
def main(ctx: StageContext) -> None:
    """Evolutionary search of flexible sub-generators under MAC budgets."""
    from common.evolution import evolve
    from common.io import write_json
    from papers.anycost_gan.features import feature_network, perceptual
    from papers.anycost_gan.macs import generator_macs
    from papers.anycost_gan.train import load_generator

    profile, args, cfg = ctx.config, ctx.args, ctx.config.search
    anycost = profile.phases.get("anycost")
    g = load_generator(Path(args.run) / "ema.safetensors")
    net = feature_network(profile.features, args.features)
    size = g.cfg.size
    n_res = anycost.anycost.n_res if anycost else 1
    space = FlexibleSpace(size, [size // 2**i for i in range(n_res)],
                          multiplier=g.cfg.multiplier, cap=g.cfg.cap, base=g.cfg.base)  # fmt: skip
    gen = torch.Generator().manual_seed(cfg.seed)
    z = torch.randn(cfg.samples, g.cfg.style_dim, generator=gen)
    noise = g.make_noise(cfg.samples, gen)
    with torch.no_grad():
        target = g(z, noise=noise)

    @torch.no_grad()
    def distance(widths: list[int], res: int) -> float:
        out = g(z, config=widths, target_res=res, noise=noise)
        if res != size:
            out = F.interpolate(out, size=size, mode="nearest")
        return float(F.mse_loss(out, target) + perceptual(net, out, target).mean())

    def macs(widths: list[int], res: int) -> float:
        return float(generator_macs(size, widths, target_res=res))

    full_macs = macs(space.full, size)
    results, metrics = [], {}
    uniform = []
    for q in ch.RATIOS:
        for r in space.res_list:
            w = ch.uniform(size, q, **space.kw)
            uniform.append({"ratio": q, "res": r, "macs": macs(w, r), "distance": distance(w, r)})
    for budget in cfg.budgets:
        limit = budget * full_macs
        found = evolve(
            space,
            fitness=lambda cands: [-distance(space.widths(c), c[1]) for c in cands],
            cost=lambda c: macs(space.widths(c), c[1]),
            limit=limit, population=cfg.population, generations=cfg.generations,
            parent_ratio=cfg.parent_ratio, mutation_ratio=cfg.mutation_ratio,
            mutate_prob=cfg.mutate_prob, seed=cfg.seed, initial=space.uniform(),
        )  # fmt: skip
        within = [u for u in uniform if u["macs"] <= limit]
        best_uniform = min(within, key=lambda u: u["distance"]) if within else None
        row = {
            "budget": budget, "limit_macs": limit, "widths": space.widths(found.best),
            "res": found.best[1], "macs": found.cost, "distance": -found.fitness,
            "history": [-h for h in found.history], "scored": found.scored,
            "uniform": best_uniform,
        }  # fmt: skip
        results.append(row)
        b = f"{budget:g}"
        metrics[f"search/distance@{b}"] = row["distance"]
        metrics[f"search/macs@{b}"] = found.cost
        if best_uniform is not None:
            metrics[f"search/uniform_distance@{b}"] = best_uniform["distance"]
        print(
            f"budget {b}: {found.cost / 1e6:.2f} MMACs, distance {row['distance']:.4f}"
            + (f" (best uniform within it {best_uniform['distance']:.4f})" if best_uniform else "")
        )
    metrics["time/search"] = ctx.seconds()
    out = Path(args.out)
    write_json({"full_macs": full_macs, "searched": results, "uniform": uniform,
                "size": size}, out / "search.json")  # fmt: skip
    ctx.finish(metrics, artifacts=[out / "search.json"],
               summary=f"searched {len(results)} budgets")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
