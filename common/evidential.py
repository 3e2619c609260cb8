"""Deep evidential regression (Amini, Schwarting, Soleimany, Rus, NeurIPS 2020).

A regression head predicts, for every target, the four parameters of a Normal-Inverse-Gamma
(NIG) distribution over the target's unknown mean and variance: ``gamma`` (the prediction),
``nu`` (virtual observations of the mean), ``alpha`` and ``beta`` (of the variance). One forward
pass then gives the prediction and two uncertainties:

* aleatoric (noise in the data): ``E[sigma^2] = beta / (alpha - 1)``;
* epistemic (the model's own doubt): ``Var[mu] = beta / (nu (alpha - 1))``.

The loss is the one of the authors' official code (``evidential_regression`` in
``aamini/evidential-deep-learning``): the negative log-likelihood of the NIG's marginal (a
Student-t with ``2 alpha`` degrees of freedom) plus ``coeff`` times the evidence regulariser
``|y - gamma| (2 nu + alpha)``, which removes evidence where the prediction is wrong. Each term is
averaged over the elements, as there. The head's activations are the official layer's
(``DenseNormalGamma``): ``nu, beta = softplus``, ``alpha = softplus + 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class NIG:
    """The four NIG parameters, each of the same shape (e.g. ``(B, outputs)``)."""

    gamma: Tensor
    nu: Tensor
    alpha: Tensor
    beta: Tensor

    @property
    def aleatoric(self) -> Tensor:
        """Expected data noise variance, ``beta / (alpha - 1)``."""
        return self.beta / (self.alpha - 1)

    @property
    def epistemic(self) -> Tensor:
        """Variance of the predicted mean, ``beta / (nu (alpha - 1))``."""
        return self.beta / (self.nu * (self.alpha - 1))

    def detach(self) -> NIG:
        return NIG(self.gamma.detach(), self.nu.detach(), self.alpha.detach(), self.beta.detach())

    def __getitem__(self, index: object) -> NIG:
        return NIG(self.gamma[index], self.nu[index], self.alpha[index], self.beta[index])


class NormalInverseGamma(nn.Module):
    """A linear layer to ``outputs`` NIG distributions (the official ``DenseNormalGamma``)."""

    def __init__(self, in_features: int, outputs: int) -> None:
        super().__init__()
        self.outputs = outputs
        self.linear = nn.Linear(in_features, 4 * outputs)

    def forward(self, x: Tensor) -> NIG:
        gamma, nu, alpha, beta = self.linear(x).split(self.outputs, dim=-1)  # each (B, outputs)
        return NIG(gamma, F.softplus(nu), F.softplus(alpha) + 1.0, F.softplus(beta))


def nig_nll(y: Tensor, p: NIG) -> Tensor:
    """Element-wise negative log-likelihood of ``y`` under the NIG's Student-t marginal."""
    two_b_lambda = 2 * p.beta * (1 + p.nu)
    return (
        0.5 * torch.log(math.pi / p.nu)
        - p.alpha * torch.log(two_b_lambda)
        + (p.alpha + 0.5) * torch.log(p.nu * (y - p.gamma) ** 2 + two_b_lambda)
        + torch.lgamma(p.alpha)
        - torch.lgamma(p.alpha + 0.5)
    )


def nig_regularizer(y: Tensor, p: NIG) -> Tensor:
    """Element-wise evidence regulariser ``|y - gamma| (2 nu + alpha)``."""
    return (y - p.gamma).abs() * (2 * p.nu + p.alpha)


def evidential_loss(y: Tensor, p: NIG, coeff: float) -> Tensor:
    """``mean(NLL) + coeff * mean(regulariser)``, the official ``evidential_regression``."""
    return nig_nll(y, p).mean() + coeff * nig_regularizer(y, p).mean()
