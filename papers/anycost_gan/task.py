"""Anycost GAN's training step on the shared adversarial loop.

:class:`AnycostTask` is the house's :class:`~common.train.tasks.AdversarialTask` (non-saturating
loss, lazy R1, EMA generator, two optimizers, checkpoints) with the paper's three ingredients:

* **sampled multi-resolution training** (``n_res > 1``): the generator's ToRGB outputs at the
  ``n_res`` highest resolutions are its low-resolution images; every step draws ``sampled_res`` of
  them (``0``: all of them, MSG-GAN's objective, the ablation) and both losses sum over the drawn
  ones, the real images resized to each (area averaging);
* **adaptive channels** (``channel_mode``): every step runs one sub-generator drawn by
  :func:`papers.anycost_gan.channels.sample` (``uniform`` / ``flexible`` / ``sandwich``), with the
  **consistency loss** (``distill_alpha`` x (MSE + ``perceptual`` distance) at every drawn
  resolution) toward a frozen ``teacher`` (the previous stage's full generator) fed the same
  latent and noise;
* the **generator-conditioned discriminator** (``conditioned``): fakes are scored with their
  sub-generator's one-hot code, reals with a random one.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from common.config import bounds
from common.train.config import AdversarialConfig
from common.train.tasks import AdversarialTask, _clip, _requires_grad, add_
from papers.anycost_gan import channels as ch


@dataclass(frozen=True)
class AnycostConfig:
    """What a training stage of the paper adds to the adversarial loop (see the module doc)."""

    n_res: int = field(default=1, metadata=bounds(ge=1))
    sampled_res: int = field(default=2, metadata=bounds(ge=0))
    channel_mode: str | None = None  # uniform | flexible | sandwich
    distill_alpha: float = field(default=0.0, metadata=bounds(ge=0))
    conditioned: bool = False


def resize(real: Tensor, size: int) -> Tensor:
    """A real batch at ``size`` px (area averaging: exact 2x2 means for halvings)."""
    return real if real.shape[-1] == size else F.adaptive_avg_pool2d(real, size)


class AnycostTask(AdversarialTask):
    """See the module doc. ``perceptual(a, b) -> (B,)`` is the consistency loss's feature
    distance (the paper: LPIPS-VGG; here a network the caller trained)."""

    kind = "anycost_adversarial"

    def __init__(
        self,
        discriminator: nn.Module,
        config: AdversarialConfig,
        anycost: AnycostConfig,
        *,
        size: int,
        teacher: nn.Module | None = None,
        perceptual: Callable[[Tensor, Tensor], Tensor] | None = None,
        metrics: Callable | None = None,
        channel_kw: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(discriminator, config, metrics=metrics)
        if anycost.distill_alpha and teacher is None:
            raise ValueError("distillation (distill_alpha > 0) needs the teacher generator")
        if anycost.channel_mode not in (None, "uniform", "flexible", "sandwich"):
            raise ValueError(
                f"channel_mode: uniform, flexible or sandwich, got {anycost.channel_mode!r}"
            )
        self.anycost, self.size, self.teacher, self.perceptual = anycost, size, teacher, perceptual
        self.channel_kw = channel_kw or {}
        self.full = ch.uniform(size, 1.0, **self.channel_kw)
        self.outputs = [size // 2**i for i in range(anycost.n_res)]
        self.rng = random.Random(0)

    def fingerprint(self) -> Any:
        from common.config import to_dict

        return {**super().fingerprint(), "anycost": to_dict(self.anycost)}

    def setup(self, trainer) -> None:
        super().setup(trainer)
        if self.teacher is not None:
            self.teacher.to(trainer.ctx.device).eval()
            _requires_grad(self.teacher, False)
        self.rng = random.Random(trainer.config.seed)

    # ------------------------------------------------------------------ sampling
    def draw(self) -> tuple[list[int] | None, list[int]]:
        """This step's sub-generator (``None``: the full one) and resolutions."""
        a = self.anycost
        config = (
            ch.sample(self.size, a.channel_mode, self.rng, **self.channel_kw)
            if a.channel_mode
            else None
        )
        if a.n_res == 1:
            return config, [self.size]
        k = len(self.outputs) if a.sampled_res == 0 else min(a.sampled_res, len(self.outputs))
        return config, sorted(self.rng.sample(self.outputs, k), reverse=True)

    def arch(
        self, config: list[int] | None, n: int, device, random_code: bool = False
    ) -> Tensor | None:
        if not self.anycost.conditioned:
            return None
        if random_code:
            codes = [ch.arch_one_hot(ch.sample(self.size, self.anycost.channel_mode or "flexible",
                                               self.rng, **self.channel_kw), self.full)
                     for _ in range(n)]  # fmt: skip
            return torch.tensor(codes, device=device)
        code = ch.arch_one_hot(config or self.full, self.full)
        return torch.tensor([code] * n, device=device)

    def images(
        self, generator: nn.Module, z: Tensor, config, resolutions, noise=None
    ) -> dict[int, Tensor]:
        _, rgbs = generator(z, config=config, return_rgbs=True, noise=noise,
                            target_res=max(resolutions))  # fmt: skip
        by_res = {r.shape[-1]: r for r in rgbs}
        return {r: by_res[r] for r in resolutions}

    def generate(self, generator: nn.Module, z: Tensor) -> Tensor:
        return generator(z)

    # ------------------------------------------------------------------ one step
    def train_step(self, trainer, batch: Any, sums) -> float:
        cfg, a, device = self.config, self.anycost, trainer.ctx.device
        g_net, d_net = trainer.ddp_model, self.ddp_d
        g_opt, d_opt = trainer.optimizers["g"], trainer.optimizers["d"]
        real = self._real(batch).to(device, non_blocking=True)
        n = real.shape[0]
        config, resolutions = self.draw()
        arch_fake = self.arch(config, n, device)
        arch_real = self.arch(None, n, device, random_code=True)
        reals = {r: resize(real, r) for r in resolutions}

        _requires_grad(trainer.model, False)
        _requires_grad(self.discriminator, True)
        for _ in range(cfg.d_steps):
            with torch.no_grad():
                fakes = self.images(g_net, self.latent(n, device), config, resolutions)
            d_loss = real_logits = fake_logits = 0.0
            for r in resolutions:
                rl, fl = d_net(reals[r], arch_real), d_net(fakes[r], arch_fake)
                d_loss = d_loss + F.softplus(fl).mean() + F.softplus(-rl).mean()
                real_logits, fake_logits = real_logits + rl.detach(), fake_logits + fl.detach()
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            _clip(trainer, self.discriminator)
            d_opt.step()
        if cfg.r1_every and trainer.step % cfg.r1_every == 0 and cfg.r1_gamma > 0:
            r1_total = 0.0
            penalty = 0.0
            for r in resolutions:
                x = reals[r].detach().requires_grad_(True)
                out = d_net(x, arch_real)
                (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
                r1 = grad.pow(2).flatten(1).sum(1).mean()
                penalty = penalty + cfg.r1_gamma / 2 * r1 * cfg.r1_every + 0 * out.mean()
                r1_total += float(r1.detach())
            d_opt.zero_grad(set_to_none=True)
            penalty.backward()
            d_opt.step()
            add_(sums, "r1", r1_total / len(resolutions))
            add_(sums, "r1_steps", 1)

        _requires_grad(trainer.model, True)
        _requires_grad(self.discriminator, False)
        z = self.latent(n, device)
        noise = trainer.model.make_noise(n, device=device)
        fakes = self.images(g_net, z, config, resolutions, noise)
        g_loss = sum(F.softplus(-d_net(fakes[r], arch_fake)).mean() for r in resolutions)
        total = g_loss
        if a.distill_alpha:
            with torch.no_grad():
                targets = self.images(self.teacher, z, None, resolutions, noise)
            distill = 0.0
            for r in resolutions:
                distill = distill + F.mse_loss(fakes[r], targets[r])
                if self.perceptual is not None:
                    distill = distill + self.perceptual(fakes[r], targets[r]).mean()
            total = total + a.distill_alpha * distill
            add_(sums, "distill", distill.detach().double() * n)
        g_opt.zero_grad(set_to_none=True)
        total.backward()
        _clip(trainer, trainer.model)
        g_opt.step()
        _requires_grad(self.discriminator, True)
        trainer.call_hooks("after_step")
        self.update_ema(trainer.model)
        add_(sums, "d_loss", d_loss.detach().double() * n)
        add_(sums, "g_loss", g_loss.detach().double() * n)
        add_(sums, "real_score", real_logits.double().sum() / len(resolutions))
        add_(sums, "fake_score", fake_logits.double().sum() / len(resolutions))
        add_(sums, "count", n)
        return float(g_loss.detach())

    @torch.no_grad()
    def evaluate(self, trainer, loader: Any) -> dict[str, float]:
        """The caller's ``metrics`` (FID, ...) if given, else the mean logits of real evaluation
        images and of the EMA generator's full-size samples (the full generator's code)."""
        device = trainer.ctx.device
        if self.metrics is not None:
            return self.metrics(self.ema, self._eval_data, device)
        g = torch.Generator(device=device).manual_seed(trainer.config.seed)
        real_sum = fake_sum = count = 0.0
        self.discriminator.eval()
        for batch in loader:
            real = self._real(batch).to(device)
            n = real.shape[0]
            arch = self.arch(None, n, device)
            fake = self.ema(self.latent(n, device, g))
            real_sum += float(self.discriminator(real, arch).sum())
            fake_sum += float(self.discriminator(fake, arch).sum())
            count += n
        self.discriminator.train()
        return {"real_score": real_sum / max(count, 1), "fake_score": fake_sum / max(count, 1)}

    def epoch_record(self, sums: dict[str, float]) -> dict[str, float]:
        record = super().epoch_record(sums)
        if "distill" in sums:
            record["train_distill"] = sums["distill"] / max(sums.get("count", 0.0), 1.0)
        return record

    def state_dict(self) -> dict[str, Any]:
        # the sampling generator's Mersenne-Twister words, as a tensor like the rest of the state
        version, words, gauss = self.rng.getstate()
        if version != 3 or gauss is not None:
            raise RuntimeError("unexpected random.Random state")
        return {**super().state_dict(), "sampling": {"rng": torch.tensor(words, dtype=torch.int64)}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "sampling" in state:
            self.rng.setstate((3, tuple(int(v) for v in state["sampling"]["rng"]), None))
