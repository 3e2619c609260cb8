"""Stage ``anycost_gan_latency``: what every sub-generator costs, counted and timed, and the
preview strips.

* **The trained generator** (the adaptive-channel phase's EMA): for every uniform channel ratio at
  every output resolution, MACs in the paper's convention and as performed
  (:mod:`papers.anycost_gan.macs`), and the median batch-1 latency on this CPU.
* **The paper's generator** (StyleGAN2 config-F at 1024 px, built with random weights: cost does
  not depend on the weights): the MACs of the same grid (the notes' table) and, at the
  ``latency.config_f`` resolutions, its batch-1 latency: the "6-12x faster previews" measured
  on this machine at the paper's scale.
* **Preview strips** for ``preview_seeds`` (:mod:`papers.anycost_gan.preview`).

Metrics ``latency/<what>@<ratio>x<res>`` (ours) and ``configf/<what>@<ratio>x<res>``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from common.stage import STAGE_FLAGS, StageContext, stage
from papers.anycost_gan.config import AnycostGanProfile

FLAGS = {
    **STAGE_FLAGS,
    "run": {"type": Path, "required": True, "help": "the adaptive-channel phase's output folder"},
}
CONFIG_F = {"size": 1024, "style_dim": 512, "n_mlp": 8, "multiplier": 2.0, "cap": 512}


@stage(
    section="anycost_gan",
    name="anycost_gan_latency",
    config=AnycostGanProfile,
    flags=["run", "out", "metrics"],
    catalogue=FLAGS,
    track=lambda ctx: ctx.config.latency,
)
def main(ctx: StageContext) -> None:
    """MACs and batch-1 latency of every sub-generator; preview strips."""
    from tqdm import tqdm

    from common.io import write_json
    from papers.anycost_gan import channels as ch
    from papers.anycost_gan.evaluate import key
    from papers.anycost_gan.macs import generator_macs
    from papers.anycost_gan.preview import draw, latency_ms, preview_points, strip
    from papers.anycost_gan.stylegan2 import Generator
    from papers.anycost_gan.train import load_generator

    profile, args, lat = ctx.config, ctx.args, ctx.config.latency
    if lat.threads:
        torch.set_num_threads(lat.threads)
    anycost = profile.phases.get("anycost")
    n_res = anycost.anycost.n_res if anycost else 1
    g = load_generator(Path(args.run) / "ema.safetensors")
    size = g.cfg.size
    kw = {"multiplier": g.cfg.multiplier, "cap": g.cfg.cap, "base": g.cfg.base}
    metrics: dict[str, float] = {"latency/threads": float(torch.get_num_threads())}
    full_cfg = ch.uniform(size, 1.0, **kw)
    res_list = [size // 2**i for i in range(n_res)]
    points = [(q, r) for q in ch.RATIOS for r in res_list]
    for q, r in tqdm(points, desc="trained generator", leave=False):
        cfg = ch.uniform(size, q, **kw)
        k = key(q, r)
        metrics[f"latency/macs@{k}"] = float(generator_macs(size, cfg, target_res=r))
        metrics[f"latency/macs_performed@{k}"] = float(generator_macs(
            size, cfg, target_res=r, convention="performed", style_dim=g.cfg.style_dim,
            n_mlp=g.cfg.n_mlp, full=full_cfg))  # fmt: skip
        metrics[f"latency/ms@{k}"] = latency_ms(g, cfg, r, repeats=lat.repeats, warmup=lat.warmup)
    top = key(1.0, size)
    for q, r in points:
        k = key(q, r)
        metrics[f"latency/reduction@{k}"] = (
            metrics[f"latency/macs@{top}"] / metrics[f"latency/macs@{k}"]
        )
        metrics[f"latency/speedup@{k}"] = metrics[f"latency/ms@{top}"] / metrics[f"latency/ms@{k}"]

    # the paper's generator: MACs of the whole grid, latency where asked
    f_full = ch.uniform(1024, 1.0)
    for q in ch.RATIOS:
        for r in (1024, 512, 256, 128):
            metrics[f"configf/macs@{key(q, r)}"] = float(
                generator_macs(1024, ch.uniform(1024, q), target_res=r)
            )
    if lat.config_f:
        torch.manual_seed(0)
        big = Generator(**CONFIG_F).eval()
        for q in tqdm(ch.RATIOS, desc="config-F latency", leave=False):
            for r in lat.config_f:
                metrics[f"configf/ms@{key(q, r)}"] = latency_ms(
                    big, ch.uniform(1024, q), r, repeats=lat.config_f_repeats, warmup=1
                )
        del big
        ref = f"configf/ms@{key(1.0, max(lat.config_f))}"
        for q in ch.RATIOS:
            for r in lat.config_f:
                metrics[f"configf/speedup@{key(q, r)}"] = (
                    metrics[ref] / metrics[f"configf/ms@{key(q, r)}"]
                )
    full_macs = generator_macs(1024, f_full)
    for q in ch.RATIOS:
        for r in (1024, 512, 256, 128):
            metrics[f"configf/reduction@{key(q, r)}"] = (
                full_macs / metrics[f"configf/macs@{key(q, r)}"]
            )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    strips = []
    for seed in profile.preview_seeds:
        panels = strip(g, seed, preview_points(size, n_res), repeats=lat.repeats, warmup=lat.warmup)
        strips.append(draw(panels, out / f"preview_seed{seed}.png", title=f"latent seed {seed}"))
    metrics["time/latency"] = ctx.seconds()
    write_json({"threads": torch.get_num_threads(), "seeds": list(profile.preview_seeds)},
               out / "latency.json")  # fmt: skip
    ctx.finish(metrics, artifacts=strips,
               summary=f"full {metrics[f'latency/ms@{top}']:.2f} ms; 0.25x at "
                       f"{min(res_list)} px {metrics[f'latency/speedup@{key(0.25, min(res_list))}']:.1f}x "
                       "faster")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
