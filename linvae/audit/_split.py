r"""The excess loss over the optimum, split exactly along one chain of best responses.

Write ``L(E, t, c, D, b)`` for the loss and ``A = DᵀD + βI``. Three losses lie between the
model's loss ``L₀`` and the analytic optimum ``L*``:

.. math::

    L_0 \;\ge\; L_1 = \min_{E, t, c} L(\cdot, D, b)
        \;\ge\; L_2 = L_1\big|_{b = m}
        \;\ge\; L^\star,

and the parts are the three gaps. Each gap has a closed form that is a sum of squares or of
``φ(u) = u − 1 − log u ≥ 0`` (so each part is ≥ 0 by construction, not up to round-off,
except the decoder part, a difference of two losses):

- **encoder part** ``L₀ − L₁`` = mean map ``½ tr(A ΔE S ΔEᵀ)`` + offset ``½ Δtᵀ A Δt`` +
  variance ``½β Σ_j E_x φ(c_j(x) / c*_j)``, with ``ΔE = E − E*``, ``Δt = t − t*`` (eqs. 21–22).
  The loss is exactly quadratic in ``(E, t)`` with Hessian ``A ⊗ S`` and ``A`` around the
  stationary point, and ``c_j ↦ ½ c_j ‖D_j‖² + ½β(c_j − log c_j)`` has the exact gap
  ``½β φ(c_j / c*_j)``.
- **bias part** ``L₁ − L₂ = ½ β rᵀ (DDᵀ + βI)⁻¹ r`` with ``r = m − b``: the minimum over
  ``t`` of ``½β‖t‖² + ½‖r − D t‖²``.
- **decoder part** ``L₂ − L*``: what the decoder ``D`` costs with its best encoder and the
  bias at the mean, against the global optimum (eq. 23).

An x-dependent posterior variance ``c(x)`` enters the loss only through ``E_x c_j(x)`` and
``E_x log c_j(x)`` (the mean map is affine), which is how both modes share this code.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from linvae.analytic import (
    Terms,
    best_response,
    covariance_factor,
    objective_terms,
    rate_distortion,
)


class ExcessSplit(NamedTuple):
    """The losses of the chain and the parts of the excess, nats per example."""

    loss: Terms
    optimum: Terms
    best_encoder_loss: float  # L₁
    best_encoder_and_bias_loss: float  # L₂
    encoder_mean: float
    encoder_offset: float
    encoder_variance: float
    bias: float
    decoder: float
    latent_rates: np.ndarray  # (k,)


def _half_quadratic(A, delta, sqrt_cov=None):
    """``½ tr(A Δ S Δᵀ)`` (or ``½ ΔᵀAΔ`` for a vector) as a sum of squares, A = LLᵀ SPD."""
    L = np.linalg.cholesky(A)
    product = L.T @ delta
    if sqrt_cov is not None:
        product = product @ sqrt_cov
    return 0.5 * float(np.sum(product**2))


def above_constant(terms, beta) -> float:
    """``½ E‖x − x̂‖² + β·rate``: the loss without its constant ``d/2 log 2π``, so that a
    difference of two losses keeps its digits however small the data's spread."""
    return 0.5 * terms.squared_error + beta * terms.rate


def split_excess(E, t, c_mean, log_c_mean, D, b, mean, cov, spec, beta):
    """The chain L₀ ≥ L₁ ≥ L₂ ≥ L* and its parts (see the module docstring).

    Parameters
    ----------
    E : ndarray of shape (k, d)
    t : ndarray of shape (k,)
        Encoder offset: the posterior mean is ``E(x − m) + t``.
    c_mean, log_c_mean : ndarray of shape (k,)
        ``E_x c_j(x)`` and ``E_x log c_j(x)`` (``c`` and ``log c`` for a fixed variance).
    D : ndarray of shape (d, k)
    b : ndarray of shape (d,)
    mean : ndarray of shape (d,)
    cov : ndarray of shape (d, d)
    spec : Spectrum
        Of ``cov``.
    beta : float

    Returns
    -------
    ExcessSplit
    """
    k = E.shape[0]
    d = mean.shape[0]
    # L₀: c enters linearly except through −Σ log c, whose data average is Σ log_c_mean.
    factor = covariance_factor(cov, spec)  # the traces as sums of squares: no cancellation
    at_mean_variance = objective_terms(E, c_mean, D, mean, cov, beta, b, t, factor=factor)
    rate = at_mean_variance.rate + 0.5 * float(np.sum(np.log(c_mean) - log_c_mean))
    loss = at_mean_variance._replace(rate=rate, loss=at_mean_variance.distortion + beta * rate)

    gap = mean - b
    best, t_star = best_response(D, beta, gap)  # eqs. 21–22
    best_loss = objective_terms(*best, mean, cov, beta, b, t_star, factor=factor).loss  # L₁
    at_data_mean = objective_terms(*best, mean, cov, beta, mean, factor=factor)  # L₂: t* = 0

    curve = rate_distortion(spec.eigvals, min(k, d), beta)
    optimum = Terms(*(float(values[0]) for values in curve[1:]))

    A = D.T @ D + beta * np.eye(k)
    sqrt_cov = spec.eigvecs * np.sqrt(spec.eigvals)  # S = (V Λ^½)(V Λ^½)ᵀ
    encoder_mean = _half_quadratic(A, E - best.E, sqrt_cov)
    encoder_offset = _half_quadratic(A, t - t_star)
    ratio = c_mean / best.c
    # E_x φ(c(x)/c*) = c̄/c* − 1 − (E_x log c − log c*), ≥ 0 by Jensen and φ ≥ 0
    per_latent = (ratio - 1.0) - (log_c_mean - np.log(best.c))
    # φ ≥ 0 exactly; only its round-off (≈ eps) can be negative, and is set to 0
    encoder_variance = 0.5 * beta * float(np.sum(np.maximum(per_latent, 0.0)))

    # ½β rᵀ(DDᵀ + βI)⁻¹ r on the full left singular basis of D: Σ_i (Pᵀr)_i² β / (σ_i² + β)
    P, singular, _ = np.linalg.svd(D, full_matrices=True)
    weights = np.full(d, 1.0)
    weights[: singular.shape[0]] = beta / (singular**2 + beta)
    bias = 0.5 * float(np.sum(weights * (P.T @ gap) ** 2))

    ESEt_diag = np.einsum("ij,jl,il->i", E, cov, E)
    latent_rates = 0.5 * (-log_c_mean + ESEt_diag + t**2 + c_mean - 1.0)  # eq. 14 per latent
    return ExcessSplit(
        loss=loss,
        optimum=optimum,
        best_encoder_loss=best_loss,
        best_encoder_and_bias_loss=at_data_mean.loss,
        encoder_mean=encoder_mean,
        encoder_offset=encoder_offset,
        encoder_variance=encoder_variance,
        bias=bias,
        decoder=above_constant(at_data_mean, beta) - above_constant(optimum, beta),
        latent_rates=latent_rates,
    )
