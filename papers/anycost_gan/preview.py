"""A preview you can look at: one latent through the cheapest sub-generators up to the full one.

``python -m papers.anycost_gan.preview --seed 3`` writes ``preview_seed3.png``: the same latent
and noise from the smallest channel ratio at the lowest resolution to the full generator, each
panel with its MACs (the paper's convention, :mod:`papers.anycost_gan.macs`) and its batch-1
latency measured on this machine. The generator is the adaptive-channel phase's EMA
(``runs/anycost_gan/anycost/ema.safetensors`` once ``dvc repro`` has run; ``--generator`` for
another). The ``anycost_gan_latency`` stage draws the report's strips with the same code.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import Tensor

from papers.anycost_gan import channels as ch
from papers.anycost_gan.macs import generator_macs

DEFAULT = Path("runs/anycost_gan/anycost/ema.safetensors")


def preview_points(size: int, n_res: int) -> list[tuple[float, int]]:
    """The strip's ``(ratio, resolution)`` panels, cheapest first: the smallest ratio at every
    resolution, then every larger ratio at the full resolution."""
    res = sorted(size // 2**i for i in range(n_res))
    low = ch.RATIOS[0]
    return [(low, r) for r in res] + [(q, size) for q in ch.RATIOS[1:]]


@torch.no_grad()
def latency_ms(g, config, res: int, *, repeats: int = 5, warmup: int = 2, seed: int = 0) -> float:
    """Median wall-clock milliseconds of one batch-1 image (mapping network included)."""
    z = torch.randn(1, g.cfg.style_dim, generator=torch.Generator().manual_seed(seed))
    for _ in range(warmup):
        g(z, config=config, target_res=res)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        g(z, config=config, target_res=res)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def macs_of(g, config, res: int) -> int:
    return generator_macs(g.cfg.size, config, target_res=res, convention="paper")


@torch.no_grad()
def strip(g, seed: int, points, *, repeats: int = 5, warmup: int = 2) -> list[dict]:
    """For every ``(ratio, res)`` of ``points``: the image of latent ``seed`` (same noise), its
    MACs and its batch-1 milliseconds."""
    kw = {"multiplier": g.cfg.multiplier, "cap": g.cfg.cap, "base": g.cfg.base}
    z = torch.randn(1, g.cfg.style_dim, generator=torch.Generator().manual_seed(seed))
    noise = g.make_noise(1, torch.Generator().manual_seed(seed))
    panels = []
    for ratio, res in points:
        config = ch.uniform(g.cfg.size, ratio, **kw)
        image = g(z, config=config, target_res=res, noise=noise)[0]
        panels.append({
            "ratio": ratio, "res": res, "image": image,
            "macs": macs_of(g, config, res),
            "ms": latency_ms(g, config, res, repeats=repeats, warmup=warmup, seed=seed),
        })  # fmt: skip
    return panels


def draw(panels: list[dict], path: Path, title: str = "") -> Path:
    """The strip as a PNG: each panel upsampled to the full size, MACs and ms under it."""
    import torch.nn.functional as F

    from common.report.figures import pyplot, save

    size = max(p["image"].shape[-1] for p in panels)
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(1.7 * len(panels), 2.2), squeeze=False)
    full = panels[-1]
    for ax, p in zip(axes[0], panels, strict=True):
        img: Tensor = p["image"][None]
        img = F.interpolate(img, size=size, mode="nearest")[0] if img.shape[-1] != size else img[0]
        ax.imshow((img.clamp(-1, 1) * 0.5 + 0.5).permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        speed = full["ms"] / p["ms"] if p["ms"] > 0 else float("nan")
        ax.set_xlabel(f"{p['ratio']:g}x, {p['res']} px\n{p['macs'] / 1e6:.2f} MMACs\n"
                      f"{p['ms']:.2f} ms ({speed:.1f}x)", fontsize=7)  # fmt: skip
    if title:
        fig.suptitle(title, fontsize=9)
    save(fig, path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m papers.anycost_gan.preview",
                                     description=__doc__.split("\n")[0])  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="the latent's seed")
    parser.add_argument(
        "--generator",
        type=Path,
        default=DEFAULT,
        help=f"an Anycost generator this repository saved (default {DEFAULT})",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="the PNG to write (default preview_seed<N>.png)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per panel (median)")
    args = parser.parse_args(argv)
    from common.env import configure_environment
    from common.errors import InputError
    from papers.anycost_gan.train import load_generator

    configure_environment()
    try:
        g = load_generator(args.generator)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    points = preview_points(g.cfg.size, min(3, len(g.resolutions)))
    panels = strip(g, args.seed, points, repeats=args.repeats)
    out = args.out or Path(f"preview_seed{args.seed}.png")
    draw(panels, out, title=f"seed {args.seed}: cheapest sub-generator to the full one")
    for p in panels:
        print(
            f"{p['ratio']:>5g}x {p['res']:>4} px  {p['macs'] / 1e6:9.2f} MMACs  {p['ms']:8.2f} ms"
        )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
