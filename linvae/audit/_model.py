r"""Affine VAEs as trained by others, and their audit, exact per example where it must be.

An :class:`AffineVAE` is what a stack of ``nn.Linear`` layers computes:

.. math::

    q(z|x) = \mathcal N\big(E x + e,\ \operatorname{diag}(\exp(F x + f))\big),\qquad
    p(x|z) = \mathcal N(D z + b, I).

With ``F = 0`` (a free log-variance) the loss depends on the data only through its mean
``m`` and covariance ``S``: the model is the linvae model with the offset ``t = E m + e``.
With ``F ≠ 0`` the posterior variance depends on x and the rate and the distortion are,
per example, in closed form (no sampling):

.. math::

    \mathrm{KL}(x) = \tfrac12 \textstyle\sum_j \big(-(Fx + f)_j + \mu_j(x)^2 + c_j(x) - 1\big),\quad
    E_q\lVert x - b - Dz\rVert^2 = \lVert x - b - D\mu(x)\rVert^2 + \textstyle\sum_j c_j(x) \lVert D_j\rVert^2.

Their data average needs only ``m``, ``S`` and ``c̄_j = E_x c_j(x)`` (the mean map is affine
and ``E_x (Fx + f) = F m + f``), which :func:`audit_model` computes from the rows of ``X``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.special

from linvae._checks import as_beta, as_float_array
from linvae.analytic import LinearVAEParams, Moments, moments

from ._audit import STATUS_TOLERANCE, _as_moments, _as_tol, build_audit


class NotLinearError(TypeError):
    """A model outside the linear-Gaussian family (a non-linear layer, or not affine)."""


class AffineVAE(NamedTuple):
    """A linear-Gaussian VAE as affine maps of x and z (see the module docstring).

    Attributes
    ----------
    encoder_weight : ndarray of shape (k, d)
        ``E``.
    encoder_bias : ndarray of shape (k,)
        ``e``: the posterior mean at x = 0.
    log_variance_bias : ndarray of shape (k,)
        ``f``: the posterior log-variance at x = 0 (the whole of it when ``F`` is None).
    decoder_weight : ndarray of shape (d, k)
        ``D``.
    decoder_bias : ndarray of shape (d,)
        ``b``.
    log_variance_weight : ndarray of shape (k, d) or None
        ``F``; None (or all zero) for a posterior variance that does not depend on x.
    """

    encoder_weight: np.ndarray
    encoder_bias: np.ndarray
    log_variance_bias: np.ndarray
    decoder_weight: np.ndarray
    decoder_bias: np.ndarray
    log_variance_weight: np.ndarray | None = None

    @property
    def mode(self) -> str:
        """``"fixed"`` if the posterior variance is the same for every x, else ``"per-example"``."""
        F = self.log_variance_weight
        return "fixed" if F is None or not np.any(F) else "per-example"


def check_affine_vae(model):
    """``model`` with float64 arrays of matching shapes, else TypeError/ValueError naming the field."""
    if not isinstance(model, AffineVAE):
        raise TypeError(f"model must be an AffineVAE, got {type(model).__name__}")
    E = as_float_array(model.encoder_weight, "encoder_weight", ndim=2)
    k, d = E.shape
    fields = {
        "encoder_bias": (k,),
        "log_variance_bias": (k,),
        "decoder_weight": (d, k),
        "decoder_bias": (d,),
    }
    checked = {}
    for name, shape in fields.items():
        array = as_float_array(getattr(model, name), name, ndim=len(shape))
        if array.shape != shape:
            raise ValueError(
                f"{name} must have shape {shape} to match encoder_weight of shape {E.shape}, "
                f"got {array.shape}"
            )
        checked[name] = array
    F = model.log_variance_weight
    if F is not None:
        F = as_float_array(F, "log_variance_weight", ndim=2)
        if F.shape != (k, d):
            raise ValueError(f"log_variance_weight must have shape ({k}, {d}), got {F.shape}")
    return AffineVAE(E, log_variance_weight=F, **checked)


def linvae_form(model, mean):
    """``(LinearVAEParams(E, exp(f), D), decoder bias b, offset t = E m + e)`` of a fixed-variance model.

    Raises
    ------
    ValueError
        If the posterior variance depends on x (``log_variance_weight`` not zero).
    """
    model = check_affine_vae(model)
    if model.mode != "fixed":
        raise ValueError(
            "the model's posterior variance depends on x: it has no (E, c, D) form; "
            "use audit_model with the data X"
        )
    E = model.encoder_weight
    params = LinearVAEParams(E, np.exp(model.log_variance_bias), model.decoder_weight)
    return params, model.decoder_bias, E @ mean + model.encoder_bias


def mean_posterior_variance(X, F, f, chunk_size=65_536):
    """``c̄ = mean over the rows x of exp(F x + f)``, shape (k,), via a stable log-sum-exp.

    Raises
    ------
    ValueError
        If the mean overflows float64 (a log-variance above ~709 nats somewhere).
    """
    n = X.shape[0]
    running = np.full(F.shape[0], -np.inf)
    for start in range(0, n, chunk_size):
        chunk = np.asarray(X[start : start + chunk_size], dtype=np.float64)
        log_c = chunk @ F.T + f  # (m, k)
        running = np.logaddexp(running, scipy.special.logsumexp(log_c, axis=0))
    log_mean = running - np.log(n)
    if np.any(log_mean > np.log(np.finfo(np.float64).max)):
        j = int(np.argmax(log_mean))
        raise ValueError(
            f"the posterior variance of latent {j} overflows float64 on these data "
            f"(log of its mean {log_mean[j]:.6g})"
        )
    return np.exp(log_mean)


def audit_model(model, data, beta, *, tol=STATUS_TOLERANCE):
    """Audit an :class:`AffineVAE` against the analytic optimum.

    Parameters
    ----------
    model : AffineVAE
        From :func:`from_torch`, :func:`load_npz` or built by hand.
    data : array_like of shape (n, d), or Moments, or (mean, cov)
        The data. Moments suffice when the posterior variance is fixed; an x-dependent
        variance needs the rows ``X``.
    beta : float
        β > 0 of the unit-variance model (:func:`effective_beta` maps other conventions).
    tol : float, default 1e-6
        Threshold of the latent statuses.

    Returns
    -------
    Audit
        ``mode`` says how the loss was evaluated: ``"fixed"`` (from the moments) or
        ``"per-example"`` (closed form per example, averaged over the rows of ``X``). The
        optimum is the same bound in both: for a fixed decoder the best Gaussian posterior
        of each x has the x-independent variance of eq. 21 (docs/audit.md).

    Raises
    ------
    TypeError, ValueError
        On a malformed model or data, moments given for an x-dependent variance, or a
        posterior variance that overflows.
    """
    model = check_affine_vae(model)
    beta = as_beta(beta)
    tol = _as_tol(tol)
    X = None
    if isinstance(data, (Moments, tuple)):
        mean, cov = _as_moments(data)
    else:
        X = data
        stats = moments(X)
        mean, cov = stats.mean, stats.cov
    d = model.encoder_weight.shape[1]
    if mean.shape != (d,):
        raise ValueError(f"the data have d={mean.shape[0]} but the model has d={d}")
    E, D, b = model.encoder_weight, model.decoder_weight, model.decoder_bias
    t = E @ mean + model.encoder_bias
    f = model.log_variance_bias
    if model.mode == "fixed":
        return build_audit(E, t, np.exp(f), f, D, b, mean, cov, beta, "fixed", tol)
    if X is None:
        raise ValueError(
            "the model's posterior variance depends on x (log_variance_weight is not zero): "
            "pass the data X of shape (n, d), not its moments"
        )
    F = model.log_variance_weight
    c_mean = mean_posterior_variance(X, F, f)
    return build_audit(E, t, c_mean, F @ mean + f, D, b, mean, cov, beta, "per-example", tol)
