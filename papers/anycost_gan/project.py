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
