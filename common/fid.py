"""Fréchet Inception Distance and Kernel Inception Distance, from feature arrays.

The formulas are the standard ones; the features are the caller's (Inception-v3's pool features
for the papers' numbers, or a network trained here when those weights cannot be had, and then the
values are not comparable with published FIDs: the report must say so).

* FID (Heusel et al., NeurIPS 2017): ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` of the
  two feature sets' Gaussian fits; the matrix square root by ``scipy.linalg.sqrtm`` as the
  reference ``pytorch-fid`` computes it (a tiny diagonal offset when the product is singular, the
  real part kept).
* KID (Bińkowski et al., ICLR 2018): the unbiased squared MMD with the cubic polynomial kernel
  ``(x.y / d + 1)^3``, averaged over random subsets (the reference's ``subsets`` x
  ``subset_size``), with its standard deviation over those subsets.
"""

from __future__ import annotations

import numpy as np


def gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (rows are samples) in float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"features must be (N >= 2, D), got shape {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(
    mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray
) -> float:
    """The Fréchet distance between two Gaussians,
    ``|mu_a - mu_b|^2 + tr(A) + tr(B) - 2 tr((A B)^(1/2))``.

    ``tr((A B)^(1/2))`` is computed in its symmetric form, the sum of the square roots of the
    eigenvalues of ``A^(1/2) B A^(1/2)`` (both covariances are positive semi-definite), with two
    symmetric eigen-decompositions: exact, and an order of magnitude faster than a general matrix
    square root at Inception's 2048 features."""
    diff = mu_a - mu_b
    vals, vecs = np.linalg.eigh(cov_a)
    root_a = (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T
    middle = root_a @ cov_b @ root_a
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * tr_covmean)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID between two feature sets."""
    return frechet_distance(*gaussian(features_a), *gaussian(features_b))


def kid(
    features_a: np.ndarray,
    features_b: np.ndarray,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID (mean, standard deviation over subsets) between two feature sets."""
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError("KID needs at least two samples in each set")
    d = a.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        mmd = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        values.append(mmd - 2.0 * kxy.mean())
    return float(np.mean(values)), float(np.std(values))
