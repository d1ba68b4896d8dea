r"""The exact expected β-VAE objective of any linear VAE, from the data's first two moments.

For ``q(z|x) = N(E(x - m) + t, diag(c))``, ``p(x|z) = N(Dz + b, I)``, prior ``N(0, I)`` and
data of mean ``m`` and covariance ``S`` (eqs. 12–18, per example; ``t = 0`` and ``b = m`` in
the appendix):

.. math::

    \text{rate} &= \tfrac12\big(-\textstyle\sum_j \log c_j + \operatorname{tr}(E S E^\top)
                  + \lVert t \rVert^2 + \textstyle\sum_j c_j - k\big), \\
    \text{distortion} &= \tfrac d2 \log 2\pi + \tfrac12\big(\operatorname{tr} S
        - 2\operatorname{tr}(D E S) + \operatorname{tr}(D E S E^\top D^\top)
        + \textstyle\sum_j c_j \lVert D_{:j}\rVert^2 + \lVert m - b - D t\rVert^2\big).

No sampling is involved: these are expectations over the data and over ``q``.

In floating point the traces cancel: ``tr S − 2 tr(D E S) + tr(D E S Eᵀ Dᵀ)`` is the
difference of terms of size ``‖S‖``, and a model with large weights along directions of
(almost) no variance, harmless to its loss, multiplies their round-off. Given a factor
``F Fᵀ = S`` (:func:`covariance_factor`) the same quantities are sums of squares,
``tr(E S Eᵀ) = ‖E F‖²`` and ``tr((I − D E) S (I − D E)ᵀ) = ‖F − D E F‖²``: nothing
cancels, and the residual is that of a covariance positive semidefinite by construction.
Measured on a trained model of a 9-decade covariance of rank 4 in d = 6 (``D E`` of norm
≈ 4.5e4 along the null directions), at β = 2633: through the traces its loss was 0.040
below the analytic optimum (impossible), through the factor 0.025 above; the traces in
80-bit arithmetic on the same float64 ``S`` give 0.018 above. The loss of such a model is
fixed only to ``‖I − D E‖²`` times the covariance's own round-off.
"""

import numpy as np

from .._checks import as_beta, as_covariance, as_float_array, check_psd
from ._moments import moments
from ._types import Gradients, LinearVAEParams, Terms

LOG_2PI = float(np.log(2 * np.pi))


def check_params(params, d=None):
    """Validated float64 ``(E, c, D)``; ``d`` (if given) is the data dimension they must fit."""
    if not isinstance(params, LinearVAEParams):
        if isinstance(params, tuple) and len(params) == 3:
            params = LinearVAEParams(*params)
        else:
            raise TypeError(
                f"params must be a LinearVAEParams(E, c, D), got {type(params).__name__}"
            )
    E = as_float_array(params.E, "params.E", ndim=2)
    c = as_float_array(params.c, "params.c", ndim=1)
    D = as_float_array(params.D, "params.D", ndim=2)
    k, d_E = E.shape
    if D.shape != (d_E, k):
        raise ValueError(
            f"params.D must have shape (d, k) = ({d_E}, {k}) to match params.E of shape {E.shape}, "
            f"got {D.shape}"
        )
    if c.shape != (k,):
        raise ValueError(f"params.c must have shape ({k},) to match params.E, got {c.shape}")
    if np.any(c <= 0):
        raise ValueError(f"params.c must be > 0 (posterior variances), got {c.min()}")
    if d is not None and d_E != d:
        raise ValueError(f"params have data dimension {d_E} but the data have d={d}")
    return LinearVAEParams(E, c, D)


def _check_cov(cov, d=None):
    """``cov`` symmetric and positive semidefinite to the round-off of its dtype (the rule of
    :func:`linvae.analytic.spectrum`), with shape (d, d)."""
    dtype = getattr(cov, "dtype", np.float64)
    cov = as_covariance(cov)
    if d is not None and cov.shape[0] != d:
        raise ValueError(f"cov must have shape ({d}, {d}) to match mean, got {cov.shape}")
    check_psd(np.linalg.eigvalsh(cov), "cov", dtype)
    return cov


def covariance_factor(cov, spectrum=None) -> np.ndarray:
    """``F`` of shape (d, r) with ``F Fᵀ = cov``: its eigenvectors of positive eigenvalue,
    each times the root of its eigenvalue (r of them; the negative round-off of a PSD matrix
    is dropped with its zeros).

    ``spectrum`` (:class:`~linvae.analytic.Spectrum` of ``cov``, optional) saves the
    eigendecomposition, O(d³), when the caller has it.
    """
    if spectrum is None:
        eigvals, eigvecs = np.linalg.eigh(as_covariance(cov))
    else:
        eigvals, eigvecs = spectrum.eigvals, spectrum.eigvecs
    keep = eigvals > 0
    return eigvecs[:, keep] * np.sqrt(eigvals[keep])


def check_moments(mean, cov):
    """``(mean (d,), cov (d, d))`` checked once: finite, fitting, ``cov`` symmetric PSD.

    For loops that evaluate many models on the same data with :func:`objective_terms`.

    Raises
    ------
    TypeError, ValueError
        As :func:`objective` does for its ``mean`` and ``cov``.
    """
    mean = as_float_array(mean, "mean", ndim=1)
    return mean, _check_cov(cov, mean.shape[0])


def _finite_terms(rate, squared_error, d, beta, arrays):
    """The Terms, or ValueError when float64 overflowed on the way (huge parameters or data)."""
    distortion = 0.5 * d * LOG_2PI + 0.5 * squared_error  # eqs. 17–18
    loss = distortion + beta * rate
    if not all(np.isfinite(value) for value in (rate, squared_error, distortion, loss)):
        sizes = ", ".join(f"|{name}| up to {np.max(np.abs(a)):.3g}" for name, a in arrays.items())
        raise ValueError(f"the objective overflows float64 ({sizes}): rescale the parameters")
    return Terms(float(rate), float(distortion), float(loss), float(squared_error))


def _vector(value, name, size, default):
    """An optional float64 vector of shape (size,)."""
    if value is None:
        return default
    array = as_float_array(value, name, ndim=1)
    if array.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got {array.shape}")
    return array


def objective(params, mean, cov, beta, decoder_bias=None, encoder_offset=None):
    """Exact rate, distortion and loss of a linear VAE on data with this mean and covariance.

    Formed through :func:`covariance_factor` (one eigendecomposition, O(d³)): sums of
    squares, free of the traces' cancellation. To evaluate many models or β on the same
    data, form the factor once and call :func:`objective_terms` with it.

    Parameters
    ----------
    params : LinearVAEParams
        ``E`` (k, d), ``c`` (k,) > 0, ``D`` (d, k): any linear VAE, optimal or not.
    mean : array_like of shape (d,)
        Data mean ``m``; the encoder centres its input with it.
    cov : array_like of shape (d, d)
        Maximum-likelihood data covariance ``S``.
    beta : float
        β > 0, the weight of the rate in the loss (eq. 13).
    decoder_bias : array_like of shape (d,), optional
        ``b``; the data mean by default (its optimum).
    encoder_offset : array_like of shape (k,), optional
        ``t``, the posterior mean at ``x = m`` (``q(z|x) = N(E(x − m) + t, diag(c))``); 0 by
        default. An ``nn.Linear`` encoder ``E x + e`` has ``t = E m + e``.

    Returns
    -------
    Terms
        ``rate`` (eq. 14 averaged over the data, with ``k`` where the appendix writes ``d``,
        plus ``½‖t‖²``), ``distortion`` (minus eqs. 17–18, with ``D E`` where eq. 18 writes
        ``W V``; an offset acts as the decoder bias ``b + D t``) and
        ``loss = distortion + beta * rate``, in nats per example; and ``squared_error``,
        ``E‖x − x̂‖²``, the distortion without its constant ``d/2 log 2π``.

    Raises
    ------
    TypeError, ValueError
        On shapes that do not fit together, NaN/inf, ``c <= 0``, a non-symmetric ``cov`` or
        one with a negative variance, or ``beta`` not finite and > 0.
    """
    mean, cov = check_moments(mean, cov)
    d = mean.shape[0]
    E, c, D = check_params(params, d)
    beta = as_beta(beta)
    b = _vector(decoder_bias, "decoder_bias", d, mean)
    t = _vector(encoder_offset, "encoder_offset", E.shape[0], None)
    return objective_terms(E, c, D, mean, cov, beta, b, t, factor=covariance_factor(cov))


def objective_terms(E, c, D, mean, cov, beta, decoder_bias, encoder_offset=None, *, factor=None):
    """:func:`objective` on arrays already checked (float64, shapes that fit, ``c > 0``, and
    ``mean``, ``cov`` from :func:`check_moments`): no validation but the overflow check.

    For loops that evaluate many models or β on the same data. ``factor`` (d, r), a
    :func:`covariance_factor` of ``cov``, forms the traces as sums of squares, free of
    cancellation (see the module's note); ``cov`` is then not read.
    """
    k = E.shape[0]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # reported below
        bias = decoder_bias if encoder_offset is None else decoder_bias + D @ encoder_offset
        offset_rate = 0.0 if encoder_offset is None else float(encoder_offset @ encoder_offset)
        DtD = D.T @ D  # (k, k)
        if factor is None:
            ES = E @ cov  # (k, d)
            ESEt = ES @ E.T  # (k, k): covariance of the posterior means
            spread = np.trace(ESEt)  # tr(E S Eᵀ)
            unexplained = (
                np.trace(cov)
                - 2.0 * np.sum(ES * D.T)  # tr(D E S)
                + np.sum(DtD * ESEt)  # tr(D E S Eᵀ Dᵀ)
            )
        else:
            EF = E @ factor  # (k, r)
            spread = np.sum(EF * EF)  # ‖E F‖² = tr(E S Eᵀ)
            unexplained = np.sum((factor - D @ EF) ** 2)  # ‖(I − D E) F‖²
        rate = 0.5 * (-np.sum(np.log(c)) + spread + offset_rate + np.sum(c) - k)  # eq. 14
        residual = (
            unexplained
            + np.dot(c, np.diag(DtD))  # tr(D C Dᵀ)
            + float(np.sum((mean - bias) ** 2))  # ‖m − b − D t‖²
        )
    return _finite_terms(rate, residual, mean.shape[0], beta, {"E": E, "c": c, "D": D})


def empirical_objective(params, X, beta, decoder_bias=None, encoder_offset=None):
    """``objective`` on the moments of the data ``X`` of shape (n, d); see ``objective``."""
    stats = moments(X)
    return objective(
        params,
        stats.mean,
        stats.cov,
        beta,
        decoder_bias=decoder_bias,
        encoder_offset=encoder_offset,
    )


def gradients(params, cov, beta):
    """Gradients of the per-example loss with respect to E, c and D (eqs. 19–20 and ∂/∂D).

    The appendix's eqs. 19–20 are the gradients of the ELBO summed over N examples, i.e.
    ``-N`` times these; the decoder bias is taken at its optimum, the data mean.

    Parameters
    ----------
    params : LinearVAEParams
        ``E`` (k, d), ``c`` (k,) > 0, ``D`` (d, k).
    cov : array_like of shape (d, d)
        Data covariance ``S``.
    beta : float
        β > 0.

    Returns
    -------
    Gradients
        ``E = (DᵀD E + βE - Dᵀ) S`` (k, d); ``c = ½ diag(DᵀD) + ½β(1 - 1/c)`` (k,);
        ``D = D (E S Eᵀ + diag(c)) - S Eᵀ`` (d, k). All vanish at ``optimum``.
    """
    cov = _check_cov(cov)
    E, c, D = check_params(params, cov.shape[0])
    beta = as_beta(beta)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below
        DtD = D.T @ D
        SEt = cov @ E.T  # (d, k)
        grad_E = (DtD @ E + beta * E - D.T) @ cov  # -eq. 20 / N
        grad_c = 0.5 * np.diag(DtD) + 0.5 * beta * (1.0 - 1.0 / c)  # -eq. 19 / N
        grad_D = D @ (E @ SEt + np.diag(c)) - SEt
    if not all(np.all(np.isfinite(g)) for g in (grad_E, grad_c, grad_D)):
        raise ValueError("the gradients overflow float64: rescale the parameters")
    return Gradients(E=grad_E, c=grad_c, D=grad_D)
