"""The evidential head and loss against the official formula and the Student-t marginal."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import gammaln

from common.evidential import NIG, NormalInverseGamma, evidential_loss, nig_nll, nig_regularizer

# Fixed numbers (y, gamma, nu, alpha, beta), one row per element.
ROWS = np.array(
    [
        [0.3, 0.1, 0.5, 1.5, 0.2],
        [-1.0, 0.4, 2.0, 3.0, 1.1],
        [0.0, 0.0, 0.05, 1.01, 0.01],
        [2.5, -0.7, 10.0, 7.0, 4.0],
    ]
)


def _nig(rows: np.ndarray) -> tuple[torch.Tensor, NIG]:
    t = torch.tensor(rows, dtype=torch.float64)
    return t[:, 0], NIG(t[:, 1], t[:, 2], t[:, 3], t[:, 4])


def _official(y, g, v, a, b):
    # The official NIG_NLL and NIG_Reg (evidential_deep_learning/losses/continuous.py),
    # written out again in numpy.
    two_bl = 2 * b * (1 + v)
    nll = (
        0.5 * np.log(np.pi / v)
        - a * np.log(two_bl)
        + (a + 0.5) * np.log(v * (y - g) ** 2 + two_bl)
        + gammaln(a)
        - gammaln(a + 0.5)
    )
    reg = np.abs(y - g) * (2 * v + a)
    return nll, reg


def test_loss_equals_the_official_formula_on_fixed_numbers() -> None:
    y, p = _nig(ROWS)
    nll, reg = _official(*ROWS.T)
    np.testing.assert_allclose(nig_nll(y, p).numpy(), nll, rtol=1e-12)
    np.testing.assert_allclose(nig_regularizer(y, p).numpy(), reg, rtol=1e-12)
    for coeff in (0.0, 0.01, 1.0):
        got = evidential_loss(y, p, coeff).item()
        assert got == pytest.approx(nll.mean() + coeff * reg.mean(), rel=1e-12)


def test_nll_is_the_student_t_marginal() -> None:
    # p(y) = St(y; gamma, beta (1 + nu) / (nu alpha), 2 alpha): an independent check of the NLL.
    y, p = _nig(ROWS)
    g, v, a, b = ROWS[:, 1], ROWS[:, 2], ROWS[:, 3], ROWS[:, 4]
    scale = np.sqrt(b * (1 + v) / (v * a))
    logpdf = stats.t.logpdf(ROWS[:, 0], df=2 * a, loc=g, scale=scale)
    np.testing.assert_allclose(nig_nll(y, p).numpy(), -logpdf, rtol=1e-9)


def test_uncertainties() -> None:
    _, p = _nig(ROWS)
    np.testing.assert_allclose(p.aleatoric.numpy(), ROWS[:, 4] / (ROWS[:, 3] - 1))
    np.testing.assert_allclose(p.epistemic.numpy(), ROWS[:, 4] / (ROWS[:, 2] * (ROWS[:, 3] - 1)))


def test_head_constraints_and_gradients() -> None:
    torch.manual_seed(0)
    head = NormalInverseGamma(8, 3)
    x = torch.randn(5, 8) * 10
    p = head(x)
    assert p.gamma.shape == (5, 3)
    assert bool((p.nu > 0).all()) and bool((p.beta > 0).all()) and bool((p.alpha > 1).all())
    loss = evidential_loss(torch.zeros(5, 3), p, 0.1)
    loss.backward()
    assert math.isfinite(loss.item())
    assert head.linear.weight.grad.abs().sum() > 0
