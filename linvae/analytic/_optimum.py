r"""The critical points and the global optimum of the linear β-VAE (appendix A.1, eqs. 21–23).

For data covariance :math:`S` and :math:`\beta > 0` the optimum solves

.. math::

    \min_{E,\ c > 0,\ D}\ \mathcal{L}_\beta(E, \operatorname{diag}(c), D)
    \quad\text{with}\quad
    D^\star = U \max(0, \Lambda - \beta I)^{1/2} R,\quad
    E^\star = (D^{\star\top} D^\star + \beta I)^{-1} D^{\star\top},\quad
    c^\star = \beta / (\operatorname{diag}(D^{\star\top} D^\star) + \beta).
"""

import numpy as np

from .._checks import as_beta, as_float_array, as_latent_size
from ._spectrum import as_spectrum
from ._types import LinearVAEParams


def _check_decoder(D):
    D = as_float_array(D, "D", ndim=2)
    if D.shape[1] < 1:
        raise ValueError(f"D must have shape (d, k) with k >= 1, got {D.shape}")
    return D


def encoder_optimum(D, beta):
    """Best encoder for a fixed decoder, eq. 22: ``E* = (DᵀD + βI)⁻¹ Dᵀ``.

    Parameters
    ----------
    D : array_like of shape (d, k)
        Decoder weight.
    beta : float
        β > 0.

    Returns
    -------
    E : ndarray of shape (k, d)
        The encoder weight that minimises the loss for this ``D`` (with the decoder bias at
        the data mean); it is the true posterior mean map when ``DᵀD`` is diagonal.

    Raises
    ------
    TypeError, ValueError
        If ``D`` is not a finite 2-D array or ``beta`` is not finite and > 0.
    """
    D = _check_decoder(D)
    beta = as_beta(beta)
    k = D.shape[1]
    # DᵀD + βI is symmetric positive definite for β > 0: a Cholesky solve is exact and stable.
    return np.linalg.solve(D.T @ D + beta * np.eye(k), D.T)  # eq. 22


def covariance_optimum(D, beta):
    """Best diagonal posterior covariance for a fixed decoder, eq. 21: ``c* = β / (diag(DᵀD) + β)``.

    Parameters
    ----------
    D : array_like of shape (d, k)
        Decoder weight.
    beta : float
        β > 0.

    Returns
    -------
    c : ndarray of shape (k,)
        Posterior variances in (0, 1] that minimise the loss for this ``D``.
    """
    D = _check_decoder(D)
    beta = as_beta(beta)
    column_norms = np.einsum("ij,ij->j", D, D)  # diag(DᵀD)
    return beta / (column_norms + beta)  # eq. 21


def _check_rotation(rotation, k):
    if rotation is None:
        return None
    R = as_float_array(rotation, "rotation", ndim=2)
    if R.shape != (k, k):
        raise ValueError(f"rotation must have shape ({k}, {k}), got {R.shape}")
    error = np.max(np.abs(R.T @ R - np.eye(k)))
    if error > 1e-10:
        raise ValueError(f"rotation must be orthogonal, got max |RᵀR - I| = {error:.3g}")
    return R


def _top_k(spec, k):
    """The top-k eigenvalues (k,) and eigenvectors (d, k), zero-padded when k > d.

    A latent beyond the data dimension has nothing to encode: at the optimum it is
    collapsed (zero decoder column, zero encoder row, ``c = 1``), which the padding gives.
    """
    d = spec.eigvals.shape[0]
    if k <= d:
        return spec.eigvals[:k], spec.eigvecs[:, :k]
    eigvals = np.concatenate([spec.eigvals, np.zeros(k - d)])
    eigvecs = np.concatenate([spec.eigvecs, np.zeros((d, k - d))], axis=1)
    return eigvals, eigvecs


def _active_scales(eigvals, beta):
    """``max(0, λ_i - β)^{1/2}`` for the given (top-k) eigenvalues, shape (k,)."""
    return np.sqrt(np.maximum(eigvals - beta, 0.0))


def decoder_optimum(cov, k, beta, rotation=None):
    """Globally optimal decoder, eq. 23: ``D* = U max(0, Λ - βI)^{1/2} R``.

    Parameters
    ----------
    cov : array_like of shape (d, d), or Spectrum
        Data covariance or its spectrum.
    k : int
        Latent size, ``k >= 1``; latents beyond ``d`` are collapsed (zero columns).
    beta : float
        β > 0.
    rotation : array_like of shape (k, k), optional
        Orthogonal ``R``; identity by default.

    Returns
    -------
    D : ndarray of shape (d, k)
        ``U`` holds the top-k eigenvectors. Ties among eigenvalues make ``U`` one of many
        equally good bases.
    """
    spec = as_spectrum(cov)
    k = as_latent_size(k)
    beta = as_beta(beta)
    R = _check_rotation(rotation, k)
    eigvals, U = _top_k(spec, k)
    D = U * _active_scales(eigvals, beta)  # eq. 23, R = I
    return D if R is None else D @ R


def optimum(cov, k, beta, rotation=None):
    """The linear β-VAE at its optimum: ``D*`` (eq. 23) and the best responses ``E*``, ``c*`` to it.

    Parameters
    ----------
    cov : array_like of shape (d, d), or Spectrum
        Data covariance (maximum likelihood) or its spectrum.
    k : int
        Latent size, ``k >= 1``; latents beyond ``d`` are collapsed (zero columns).
    beta : float
        β > 0.
    rotation : array_like of shape (k, k), optional
        Orthogonal ``R`` of eq. 23; identity by default. With a diagonal posterior the loss
        is minimal only for rotations that keep ``DᵀD`` diagonal (see ``docs/theory.md``).

    Returns
    -------
    LinearVAEParams
        ``E`` (k, d), ``c`` (k,), ``D`` (d, k). With ``rotation=None`` this is a global
        minimiser of the loss; directions with ``λ_i <= β`` are collapsed (zero column of
        ``D``, zero row of ``E``, ``c_i = 1``).

    Raises
    ------
    TypeError, ValueError
        If ``cov`` is not a symmetric PSD matrix, ``k`` not an integer >= 1, ``beta`` not
        finite and > 0, or ``rotation`` not a (k, k) orthogonal matrix.
    """
    spec = as_spectrum(cov)
    k = as_latent_size(k)
    beta = as_beta(beta)
    R = _check_rotation(rotation, k)
    eigvals, U = _top_k(spec, k)
    scales = _active_scales(eigvals, beta)  # singular values of D*
    # With D = U diag(s) R: (DᵀD + βI)⁻¹Dᵀ = Rᵀ diag(s / (s² + β)) Uᵀ exactly (eq. 22),
    # and diag(DᵀD)_j = Σ_i R_ij² s_i² (eq. 21); no linear solve is needed.
    D = U * scales
    E = (U * (scales / (scales**2 + beta))).T
    column_norms = scales**2
    if R is not None:
        D = D @ R
        E = R.T @ E
        column_norms = (R**2).T @ column_norms
    c = beta / (column_norms + beta)
    return LinearVAEParams(E=E, c=c, D=D)


def best_response(D, beta, bias_gap=None):
    r"""The best encoder, posterior variance and encoder offset for a fixed decoder.

    .. math::

        \min_{E,\ t,\ c > 0}\ \mathcal{L}_\beta(E, t, c \mid D, b),\qquad
        E^\star = A^{-1} D^\top\ (\text{eq. 22}),\quad
        t^\star = A^{-1} D^\top (m - b),\quad
        c^\star = \beta / (\operatorname{diag}(D^\top D) + \beta)\ (\text{eq. 21}),

    with ``A = DᵀD + βI``: the loss is a convex quadratic in ``(E, t)`` (the posterior
    mean is ``E(x − m) + t``) plus a separable strictly convex function of ``c``.

    Parameters
    ----------
    D : array_like of shape (d, k)
        Decoder weight.
    beta : float
        β > 0.
    bias_gap : array_like of shape (d,), optional
        ``r = m − b``, the data mean minus the decoder bias; 0 by default.

    Returns
    -------
    params : LinearVAEParams
        ``E*`` (k, d) of eq. 22, ``c*`` (k,) of eq. 21, and ``D``.
    offset : ndarray of shape (k,)
        ``t* = A⁻¹Dᵀ r``, the minimiser of ``½β‖t‖² + ½‖r − D t‖²`` (0 when ``r = 0``).
    """
    D = _check_decoder(D)
    beta = as_beta(beta)
    d, k = D.shape
    r = np.zeros(d) if bias_gap is None else as_float_array(bias_gap, "bias_gap", ndim=1)
    if r.shape != (d,):
        raise ValueError(f"bias_gap must have shape ({d},) to match D, got {r.shape}")
    A = D.T @ D + beta * np.eye(k)
    solution = np.linalg.solve(A, np.column_stack([D.T, D.T @ r]))  # eq. 22
    E, offset = solution[:, :-1], solution[:, -1]
    return LinearVAEParams(E, covariance_optimum(D, beta), D), offset
