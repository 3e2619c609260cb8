"""A tiny Anycost GAN run for the shared kill-and-resume harness (``tests.common.train.task_worker``):
sampled multi-resolution, sandwich channel sampling, distillation from a teacher and the
generator-conditioned discriminator, so every piece of state (both optimizers, the EMA generator,
the discriminator, the sampling generator) must survive a kill."""

from __future__ import annotations

from pathlib import Path

import torch

from common.config import from_dict
from common.train import AdversarialConfig, TrainConfig, Trainer, TrainHook
from papers.anycost_gan.stylegan2 import Discriminator, Generator
from papers.anycost_gan.task import AnycostConfig, AnycostTask
from tests.common.train.task_worker import CONFIG

KW = {"multiplier": 0.03, "cap": 16}


def anycost(ckpt: Path, hooks: list[TrainHook]) -> Trainer:
    g = torch.Generator().manual_seed(3)
    images = torch.rand(96, 3, 16, 16, generator=g) * 2 - 1
    torch.manual_seed(0)
    gen = Generator(size=16, style_dim=16, n_mlp=1, **KW)
    teacher = Generator(size=16, style_dim=16, n_mlp=1, **KW)
    disc = Discriminator(16, n_res=2, arch_dim=4 * 5, **KW)
    cfg = from_dict(
        TrainConfig, {**CONFIG, "optimizer": {"name": "adam", "lr": 0.002, "betas": [0.0, 0.99]}}
    )
    adv = from_dict(AdversarialConfig, {"latent_dim": 16, "r1_every": 2, "ema_beta": 0.9})
    anycost = AnycostConfig(n_res=2, sampled_res=1, channel_mode="sandwich", distill_alpha=2.0,
                            conditioned=True)  # fmt: skip
    return Trainer(
        gen,
        cfg,
        train_data=torch.utils.data.TensorDataset(images),
        eval_data=torch.utils.data.TensorDataset(images[:16]),
        checkpoint_dir=ckpt,
        task=AnycostTask(disc, adv, anycost, size=16, teacher=teacher, channel_kw=KW),
        hooks=hooks,
        progress=False,
    )
