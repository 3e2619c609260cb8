"""Stage ``anycost_gan_evaluate@<phase>``: sample quality and consistency of a phase's generator.

For every uniform channel ratio (those of ``evaluate.ratios`` for a phase trained with adaptive
channels, else the full generator only) at every output resolution the phase trained (its
``n_res`` ToRGB outputs), ``evaluate.samples`` images of fixed latents give:

* **FID and KID** (:mod:`common.fid`) against the features of held-out real images resized to the
  same resolution (the features network reads every image at the full resolution);
* **consistency with the full generator** (same latents and noise): the agreement of the class the
  feature network reads (the paper's attribute consistency, argmax agreement), the pixel MSE
  against the full output area-resized to the sub-generator's resolution, and the perceptual
  distance (:func:`papers.anycost_gan.features.perceptual`) at the full resolution;
* how often the colour-digit classifier is sure (probability > 0.9) which digit a sample shows,
  beside the same rate on real images: a number for "does it look like a digit".

The full generator's FID is also computed with the latents of the other ``evaluate.seeds``: its
spread is the metric's own noise. Metrics ``<phase>/<metric>@<ratio>x<res>`` (e.g.
``anycost/fid@0.5x16``); a figure of samples per ratio and resolution in
``<out>/samples.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from common.stage import STAGE_FLAGS, StageContext, stage
from papers.anycost_gan.config import AnycostGanProfile

FLAGS = {
    **STAGE_FLAGS,
    "phase": {"required": True, "help": "a key of the profile's phases"},
    "run": {"type": Path, "required": True, "help": "the phase's training output folder"},
    "features": {"type": Path, "required": True, "help": "the feature stage's output folder"},
}


# a sample "reads as a digit" when the feature network gives one class this probability
CONFIDENT = 0.9


def effective_classes(logits: Tensor) -> float:
    """How many digit classes the samples cover: 2 to the empirical entropy (bits) of the
    classes the network reads (10 when every digit is drawn equally often, 1 when the generator
    has collapsed onto one digit)."""
    from common.compress.huffman import entropy

    return 2.0 ** entropy(logits.argmax(1).numpy())


def key(ratio: float, res: int) -> str:
    return f"{ratio:g}x{res}"


def resolutions_of(size: int, n_res: int) -> list[int]:
    return [size // 2**i for i in range(n_res)]


@torch.no_grad()
def sample(g, config, res: int, n: int, seed: int, batch: int, device,
           truncation: float = 1.0) -> Tensor:  # fmt: skip
    """``n`` images of the latents and noise of ``seed`` from the sub-generator ``config`` at
    output resolution ``res`` (the same latents for every sub-generator)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, g.cfg.style_dim, generator=gen)
    mean = g.mean_latent(seed=seed) if truncation < 1 else None
    out = []
    for i in range(0, n, batch):
        zb = z[i : i + batch].to(device)
        noise = [
            t.to(device) for t in g.make_noise(zb.shape[0], torch.Generator().manual_seed(seed + i))
        ]
        out.append(g(zb, config=config, target_res=res, noise=noise, truncation=truncation,
                     truncation_latent=mean).cpu())  # fmt: skip
    return torch.cat(out)


@torch.no_grad()
def features_of(net, images: Tensor, batch: int, device) -> tuple[np.ndarray, Tensor]:
    """FID features and logits of ``images`` (any resolution: the network resizes)."""
    feats, logits = [], []
    for i in range(0, len(images), batch):
        f = net.features(images[i : i + batch].to(device))
        feats.append(f.cpu())
        head = net.classifier if hasattr(net, "classifier") else net.net.fc
        logits.append(head(f).cpu())
    return torch.cat(feats).double().numpy(), torch.cat(logits)


@torch.no_grad()
def perceptual_distance(net, a: Tensor, b: Tensor, batch: int, device) -> float:
    from papers.anycost_gan.features import perceptual

    total = 0.0
    for i in range(0, len(a), batch):
        total += float(
            perceptual(net, a[i : i + batch].to(device), b[i : i + batch].to(device)).sum()
        )
    return total / len(a)


def up(x: Tensor, size: int) -> Tensor:
    """A low-resolution output shown (and scored) at ``size`` px: nearest upsampling."""
    return x if x.shape[-1] == size else F.interpolate(x, size=size, mode="nearest")


@stage(
    section="anycost_gan",
    name="anycost_gan_evaluate@{phase}",
    config=AnycostGanProfile,
    flags=["phase", "run", "features", "data", "out", "metrics"],
    catalogue=FLAGS,
    track=lambda ctx: ctx.config.evaluate,
)
def main(ctx: StageContext) -> None:
    """FID / KID / consistency of a phase's sub-generators."""
    from common.fid import fid, frechet_distance, gaussian, kid
    from common.io import write_json
    from papers.anycost_gan import channels as ch
    from papers.anycost_gan.data import gan_dataset, stack
    from papers.anycost_gan.features import feature_network
    from papers.anycost_gan.train import load_generator

    profile, args, ev = ctx.config, ctx.args, ctx.config.evaluate
    name = args.phase
    phase = ctx.entry("phases", name)
    device = torch.device(ev.device if ev.device != "auto" else
                          ("cuda" if torch.cuda.is_available() else "cpu"))  # fmt: skip
    g = load_generator(Path(args.run) / "ema.safetensors").to(device)
    kind = profile.features.kind
    net = feature_network(profile.features, args.features).to(device)
    size = g.cfg.size
    ratios = ev.ratios if phase.anycost.channel_mode else [1.0]
    kw = {"multiplier": g.cfg.multiplier, "cap": g.cfg.cap, "base": g.cfg.base}
    res_list = resolutions_of(size, phase.anycost.n_res)
    real = stack(gan_dataset(profile.data, "test", size, args.data), ev.samples)
    seed = profile.data.seed

    metrics: dict[str, float] = {}
    full = sample(g, None, size, ev.samples, seed, ev.batch, device, ev.truncation)
    full_feats, full_logits = features_of(net, full, ev.batch, device)
    grid: dict[str, Tensor] = {}
    for res in res_list:
        real_feats, _ = features_of(net, F.adaptive_avg_pool2d(real, res), ev.batch, device)
        real_stats = gaussian(real_feats)
        for ratio in ratios:
            config = ch.uniform(size, ratio, **kw)
            if ratio == 1.0 and res == size:
                images, feats, logits = full, full_feats, full_logits
            else:
                images = sample(g, config, res, ev.samples, seed, ev.batch, device, ev.truncation)
                feats, logits = features_of(net, images, ev.batch, device)
            k = key(ratio, res)
            metrics[f"{name}/fid@{k}"] = frechet_distance(*gaussian(feats), *real_stats)
            kid_mean, kid_std = kid(
                feats,
                real_feats,
                subsets=ev.kid_subsets,
                subset_size=min(ev.kid_subset_size, len(feats)),
            )
            metrics[f"{name}/kid@{k}"], metrics[f"{name}/kid_std@{k}"] = kid_mean, kid_std
            if not (ratio == 1.0 and res == size):
                agree = (logits.argmax(1) == full_logits.argmax(1)).double().mean()
                metrics[f"{name}/class_agree@{k}"] = 100.0 * float(agree)
                target = F.adaptive_avg_pool2d(full, res)
                metrics[f"{name}/mse@{k}"] = float(F.mse_loss(images, target))
                metrics[f"{name}/perceptual@{k}"] = perceptual_distance(
                    net, up(images, size), full, ev.batch, device
                )
            if kind == "digits":  # how often the classifier is sure which digit it sees
                sure = logits.softmax(1).amax(1) > CONFIDENT
                metrics[f"{name}/confident@{k}"] = 100.0 * float(sure.double().mean())
                metrics[f"{name}/classes@{k}"] = effective_classes(logits)
            grid[k] = up(images[:6], size)
    real_feats, real_logits = features_of(net, real, ev.batch, device)
    if kind == "digits":
        sure = real_logits.softmax(1).amax(1) > CONFIDENT
        metrics[f"{name}/real_confident"] = 100.0 * float(sure.double().mean())
        metrics[f"{name}/real_classes"] = effective_classes(real_logits)
    for s in ev.seeds:
        other = sample(g, None, size, ev.samples, s, ev.batch, device, ev.truncation)
        metrics[f"{name}/fid_seed{s}"] = fid(
            features_of(net, other, ev.batch, device)[0], real_feats
        )
    metrics[f"time/evaluate_{name}"] = ctx.seconds()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figure = draw_samples(grid, ratios, res_list, out / "samples.png", title=phase.label or name)
    write_json(
        {"ratios": ratios, "resolutions": res_list, "samples": ev.samples}, out / "grid.json"
    )
    ctx.finish(metrics, artifacts=[figure],
               summary=f"{name}: FID {metrics[f'{name}/fid@{key(1.0, size)}']:.2f} "
                       f"(full generator, {ev.samples} samples)")  # fmt: skip


def draw_samples(grid: dict[str, Tensor], ratios, res_list, path: Path, title: str) -> Path:
    """Rows: channel ratios (widest first); columns: output resolutions; each cell the same
    six latents."""
    from common.report.figures import pyplot, save

    plt = pyplot()
    rows, cols = sorted(ratios, reverse=True), list(res_list)
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(4.0 * len(cols), 0.85 * len(rows) + 0.7),
                             squeeze=False)  # fmt: skip
    for i, ratio in enumerate(rows):
        for j, res in enumerate(cols):
            ax = axes[i][j]
            images = grid[key(ratio, res)]
            strip = torch.cat(list(images.clamp(-1, 1) * 0.5 + 0.5), dim=2)
            ax.imshow(strip.permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(f"{ratio:g}x ch.", fontsize=8)
            if i == 0:
                ax.set_title(f"{res} px", fontsize=9)
    fig.suptitle(title, fontsize=10)
    save(fig, path)
    return path


if __name__ == "__main__":
    raise SystemExit(main())
