"""Synthetic Gaussian data whose sample moments equal the population moments exactly."""

import numpy as np

from .._checks import as_float_array, as_int, as_seed
from ._info import DatasetInfo

DEFAULT_GAUSSIAN_COUNT = 1000
# 16 eigenvalues log-spaced from 10 down to 0.01: one per step of 10^(-1/5). The default β
# grid of the CLI (0.01 to 10) then crosses every eigenvalue, so each latent direction
# switches on somewhere along the rate-distortion curve.
DEFAULT_GAUSSIAN_EIGVALS = np.logspace(1.0, -2.0, 16)


def _as_eigvals(eigvals):
    """``eigvals`` as a 1-D finite float64 array of values >= 0."""
    array = as_float_array(eigvals, "eigvals")
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"eigvals must be a non-empty 1-D array, got shape {array.shape}")
    if np.any(array < 0):
        raise ValueError(f"eigvals must be >= 0, got {array[array < 0][0]}")
    return array


def _as_mean(mean, d):
    """``mean`` as a finite float64 array of shape (d,); None gives zeros."""
    if mean is None:
        return np.zeros(d)
    array = as_float_array(mean, "mean")
    if array.shape != (d,):
        raise ValueError(f"mean must have shape ({d},) to match eigvals, got shape {array.shape}")
    return array


def haar_orthogonal(d, rng):
    """A Haar-distributed orthogonal matrix of shape (d, d).

    QR of a standard normal matrix with the signs of R's diagonal moved into Q
    (Mezzadri 2007, "How to generate random matrices from the classical compact groups").
    """
    Q, R = np.linalg.qr(rng.standard_normal((d, d)))
    return Q * np.where(np.diag(R) < 0, -1.0, 1.0)


def gaussian_data(n, eigvals, mean=None, seed=0):
    r"""Data whose sample mean is ``mean`` and whose ML covariance is V diag(eigvals) Vᵀ.

    .. math::

        \bar x = \mu, \qquad
        \frac{1}{n}\sum_i (x_i - \bar x)(x_i - \bar x)^\top = V \operatorname{diag}(\lambda) V^\top

    hold exactly (up to round-off), not just in expectation: a standard normal (n, d) draw
    is centred column by column and orthonormalised by a reduced QR; scaled by √n it is a
    matrix Z with zero column means and ZᵀZ / n = I. Then
    ``X = Z diag(√λ) Vᵀ + μ`` with V Haar-random. The rows are a Gaussian-looking sample
    but not independent draws: they were conditioned on their own moments.

    Parameters
    ----------
    n : int
        Number of examples; at least ``d + 1`` (centring removes one degree of freedom).
    eigvals : array_like of shape (d,)
        Eigenvalues λ ≥ 0 of the covariance, any order; zeros and ties are allowed.
    mean : array_like of shape (d,), optional
        The sample mean μ; zeros by default.
    seed : int, default 0
        Seed of ``numpy.random.default_rng``, which draws V first and then Z.

    Returns
    -------
    X : ndarray of shape (n, d)
        The data, C-contiguous float64.
    V : ndarray of shape (d, d)
        Orthogonal; column ``i`` is the eigenvector of eigenvalue ``eigvals[i]``.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``eigvals`` is empty, not 1-D, negative or not finite; ``mean`` has the wrong
        shape or is not finite; ``n < d + 1``; ``seed < 0``.
    """
    eigvals = _as_eigvals(eigvals)
    d = eigvals.shape[0]
    mean = _as_mean(mean, d)
    seed = as_seed(seed)
    n = as_int(n, "n")
    if n < d + 1:
        raise ValueError(
            f"n must be at least d + 1 = {d + 1} for an exact covariance of dimension d={d}, "
            f"got n={n}"
        )
    rng = np.random.default_rng(seed)
    V = haar_orthogonal(d, rng)
    Z = rng.standard_normal((n, d))
    Z -= Z.mean(axis=0)  # columns orthogonal to the all-ones vector
    Q, _ = np.linalg.qr(Z)  # (n, d), QᵀQ = I, columns still orthogonal to ones
    Z = np.sqrt(n) * Q  # ZᵀZ / n = I
    X = (Z * np.sqrt(eigvals)) @ V.T + mean
    return np.ascontiguousarray(X), V


def gaussian(n, seed, eigvals, mean):
    """``load("gaussian")``: :func:`gaussian_data` with defaults and a :class:`DatasetInfo`."""
    n = DEFAULT_GAUSSIAN_COUNT if n is None else n
    eigvals = DEFAULT_GAUSSIAN_EIGVALS if eigvals is None else _as_eigvals(eigvals)
    X, _ = gaussian_data(n, eigvals, mean=mean, seed=seed)
    d = eigvals.shape[0]
    where = "zero" if mean is None else "the given mean"
    info = DatasetInfo(
        name="gaussian",
        n=n,
        d=d,
        source="synthetic",
        image_shape=None,
        scale=None,
        description=(
            f"synthetic data, d={d}: sample mean exactly {where}, ML sample covariance exactly "
            f"V diag(eigvals) V^T with V Haar-random (seed {seed}); eigvals from "
            f"{eigvals.max():.6g} to {eigvals.min():.6g}, {np.count_nonzero(eigvals)} nonzero."
        ),
        seed=seed,
        eigvals=tuple(float(value) for value in eigvals),
    )
    return X, info
