"""The exact score of any method: its maps per β through the closed-form objective.

Every method is scored the same way: its maps at each β of a grid go through
:func:`linvae.analytic.objective_terms` in float64 (eqs. 14–18, with its decoder bias and
encoder offset), against the analytic optimum :func:`linvae.analytic.rate_distortion` of
the same latent size. No sampling anywhere.
"""

from __future__ import annotations

import numpy as np

from linvae._checks import as_betas
from linvae.analytic import (
    active_latents,
    check_moments,
    covariance_factor,
    objective_terms,
    rate_distortion,
    spectrum,
)

from ._base import Trained, trained_maps

#: A latent is live where its own rate (its KL term, eq. 14) exceeds this, nats.
LIVE_RATE = 1e-2

#: Loss below the optimum beyond this (relative to max(1, |optimum|)) is an error.
BELOW_OPTIMUM_TOLERANCE = 1e-9


def summary(excess, betas) -> dict:
    """Max and mean of an excess profile (m,) and of its scale-free version excess/β.

    The mean is over the grid (a mean over log β on a log-spaced grid).
    """
    excess = np.asarray(excess, dtype=np.float64)
    betas = as_betas(betas)
    per_beta = excess / betas
    worst = int(np.argmax(excess))
    return {
        "max_excess": float(excess.max()),
        "mean_excess": float(excess.mean()),
        "max_excess_over_beta": float(per_beta.max()),
        "mean_excess_over_beta": float(per_beta.mean()),
        "worst_beta": float(betas[worst]),
    }


def score(trained: Trained, mean, cov, betas) -> dict:
    """The exact excess of a trained method over the optimum on a grid of β.

    Parameters
    ----------
    trained : Trained
    mean : array_like of shape (d,)
    cov : array_like of shape (d, d)
        The data's ML covariance.
    betas : array_like of shape (m,)

    Returns
    -------
    dict
        ``excess`` and ``excess_over_beta`` (m,) (nats; nats of rate), their max and mean
        (:func:`summary`), ``rate`` and ``squared_error`` (m,), ``live_latents``: latents
        whose rate exceeds :data:`LIVE_RATE` at the grid's smallest β, and
        ``optimum_live_latents``: the optimum's there.

    Raises
    ------
    ValueError
        If the maps do not fit the data, or a loss lies below the optimum beyond
        round-off (an evaluation problem: no linear VAE beats the optimum).
    """
    mean, cov = check_moments(mean, cov)
    betas = as_betas(betas)
    maps = [t.numpy() for t in trained_maps(trained, np.log(betas))]
    E, c, D, offset, bias = maps
    d, k = mean.shape[0], E.shape[1]
    if E.shape[2] != d:
        raise ValueError(f"the method's maps have data dimension {E.shape[2]}, the data d = {d}")
    if not all(np.all(np.isfinite(a)) for a in maps) or np.any(c <= 0):
        raise ValueError("the method's maps are not finite, or a variance is not > 0")
    rate, squared_error = np.empty(betas.size), np.empty(betas.size)
    spec = spectrum(cov)
    factor = covariance_factor(cov, spec)  # the traces as sums of squares: no cancellation
    for i, beta in enumerate(betas):
        t = E[i] @ mean + offset[i]  # the posterior mean at x = m
        terms = objective_terms(E[i], c[i], D[i], mean, cov, beta, bias[i], t, factor=factor)
        rate[i], squared_error[i] = terms.rate, terms.squared_error
    eigvals = spec.eigvals
    optimum = rate_distortion(eigvals, k, betas)
    # both losses without d/2·log 2π: their difference keeps its digits
    loss = 0.5 * squared_error + betas * rate
    best = 0.5 * optimum.squared_error + betas * optimum.rate
    excess = loss - best
    allowed = -BELOW_OPTIMUM_TOLERANCE * np.maximum(1.0, np.abs(best))
    if np.any(excess < allowed):
        worst = int(np.argmin(excess - allowed))
        raise ValueError(
            f"the loss at β = {betas[worst]:.6g} is {excess[worst]:.3g} below the optimum: "
            "an evaluation or round-off problem (no linear VAE beats the optimum)"
        )
    # per-latent rate at the smallest β (eq. 14, term by term)
    bottom = int(np.argmin(betas))
    Eb = E[bottom]
    t = Eb @ mean + offset[bottom]
    per_latent = 0.5 * (
        -np.log(c[bottom]) + np.einsum("kd,de,ke->k", Eb, cov, Eb) + t**2 + c[bottom] - 1.0
    )
    return {
        "betas": betas,
        "excess": excess,
        "excess_over_beta": excess / betas,
        **summary(excess, betas),
        "rate": rate,
        "squared_error": squared_error,
        "live_latents": int(np.count_nonzero(per_latent > LIVE_RATE)),
        "optimum_live_latents": int(active_latents(eigvals, k, betas[bottom : bottom + 1])[0]),
    }
