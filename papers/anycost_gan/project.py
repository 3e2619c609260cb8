"""Consistency-aware projection: find the W+ latent of a real image, so that the full generator
*and its sub-generators* reproduce it (Anycost GAN, Section 3.4: ``argmin_w L(G(w), x) +
alpha * E_sub L(G_sub(w), x)``, ``alpha = 1``), which keeps edits previewed on a sub-generator
faithful to the full output. ``L`` is MSE plus the perceptual distance
(:func:`papers.anycost_gan.features.perceptual` here; LPIPS in the paper). Optimisation-based
(Adam on W+, from the mean latent), the noise fixed."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from papers.anycost_gan.stylegan2 import Generator


def project(
    g: Generator,
    target: Tensor,
    *,
    subs: Sequence[list[int]] = (),
    alpha: float = 1.0,
    steps: int = 200,
    lr: float = 0.05,
    perceptual: Callable[[Tensor, Tensor], Tensor] | None = None,
    seed: int = 0,
) -> tuple[Tensor, list[float]]:
    """The W+ latent ``(B, n_latent, style_dim)`` of ``target`` (``(B, 3, R, R)`` in [-1, 1]) and
    the loss after every step. ``subs``: the sub-generator configurations of the consistency term
    (all of them every step); ``alpha = 0`` or no ``subs``: the plain projection."""
    gen = torch.Generator().manual_seed(seed)
    noise = [n.to(target) for n in g.make_noise(target.shape[0], gen)]
    w = g.mean_latent(seed=seed).detach()[:, None].repeat(target.shape[0], g.n_latent, 1)
    w.requires_grad_(True)
    opt = torch.optim.Adam([w], lr=lr)
    params = [p for p in g.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)

    def loss_of(config: list[int] | None) -> Tensor:
        image = g(w, input_is_w=True, config=config, noise=noise)
        loss = F.mse_loss(image, target, reduction="none").mean((1, 2, 3))
        if perceptual is not None:
            loss = loss + perceptual(image, target)
        return loss.mean()

    history = []
    try:
        for _ in range(steps):
            loss = loss_of(None)
            if alpha and subs:
                loss = loss + alpha * sum(loss_of(c) for c in subs) / len(subs)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            history.append(float(loss.detach()))
    finally:
        for p in params:
            p.requires_grad_(True)
    return w.detach(), history


# ---------------------------------------------------------------------- the stage
def _stage():
    from pathlib import Path

    from common.stage import STAGE_FLAGS, StageContext, stage
    from papers.anycost_gan.config import AnycostGanProfile

    flags = {
        **STAGE_FLAGS,
        "run": {"type": Path, "required": True, "help": "the adaptive-channel phase's folder"},
        "features": {"type": Path, "required": True, "help": "the feature stage's folder"},
    }

    @stage(
        section="anycost_gan",
        name="anycost_gan_projection",
        config=AnycostGanProfile,
        flags=["run", "features", "data", "out", "metrics"],
        catalogue=flags,
        track=lambda ctx: ctx.config.projection,
    )
    def main(ctx: StageContext) -> None:
        """Stage ``anycost_gan_projection``: held-out real images projected into W+ without and
        with the sub-generators' term; the sub-generators' reconstructions compared."""
        from common.io import write_json
        from papers.anycost_gan import channels as ch
        from papers.anycost_gan.data import gan_dataset, stack
        from papers.anycost_gan.features import feature_network
        from papers.anycost_gan.features import perceptual as percept
        from papers.anycost_gan.train import load_generator

        profile, args, cfg = ctx.config, ctx.args, ctx.config.projection
        g = load_generator(Path(args.run) / "ema.safetensors")
        net = feature_network(profile.features, args.features)
        for p in net.parameters():
            p.requires_grad_(False)
        size = g.cfg.size
        kw = {"multiplier": g.cfg.multiplier, "cap": g.cfg.cap, "base": g.cfg.base}
        subs = [ch.uniform(size, q, **kw) for q in cfg.ratios]
        target = stack(gan_dataset(profile.data, "test", size, args.data), cfg.images)

        def dist(a: Tensor, b: Tensor) -> float:
            return float((F.mse_loss(a, b, reduction="none").mean((1, 2, 3))
                          + percept(net, a, b)).mean())  # fmt: skip

        metrics, rows = {}, {"target": target}
        for label, alpha in (("plain", 0.0), ("aware", cfg.alpha)):
            w, _ = project(g, target, subs=subs, alpha=alpha, steps=cfg.steps, lr=cfg.lr,
                                 perceptual=lambda a, b: percept(net, a, b))  # fmt: skip
            noise = [
                n.to(target)
                for n in g.make_noise(target.shape[0], torch.Generator().manual_seed(0))
            ]
            with torch.no_grad():
                full = g(w, input_is_w=True, noise=noise)
                outs = [g(w, input_is_w=True, config=c, noise=noise) for c in subs]
            metrics[f"projection/full_error_{label}"] = dist(full, target)
            metrics[f"projection/sub_error_{label}"] = sum(dist(o, target) for o in outs) / len(
                outs
            )
            metrics[f"projection/sub_full_gap_{label}"] = sum(dist(o, full) for o in outs) / len(
                outs
            )
            rows[f"full ({label})"] = full
            rows[f"{cfg.ratios[0]:g}x ({label})"] = outs[0]
        metrics["time/projection"] = ctx.seconds()
        out = Path(args.out)
        figure = _draw(rows, out / "projection.png")
        write_json({"ratios": cfg.ratios, "alpha": cfg.alpha, "steps": cfg.steps},
                   out / "projection.json")  # fmt: skip
        ctx.finish(metrics, artifacts=[figure],
                   summary=f"sub-generator error {metrics['projection/sub_error_plain']:.4f} "
                           f"plain -> {metrics['projection/sub_error_aware']:.4f} aware")  # fmt: skip

    return main


def _draw(rows: dict[str, Tensor], path):
    from common.report.figures import pyplot, save

    plt = pyplot()
    fig, axes = plt.subplots(len(rows), 1, figsize=(8, 1.1 * len(rows)), squeeze=False)
    for ax, (label, images) in zip(axes[:, 0], rows.items(), strict=True):
        strip = torch.cat(list(images.clamp(-1, 1) * 0.5 + 0.5), dim=2)
        ax.imshow(strip.permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    save(fig, path)
    return path


main = _stage()

if __name__ == "__main__":
    raise SystemExit(main())
