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

from ._types import LinearVAEParams
from ._validation import as_beta, as_float_array, as_latent_size, as_spectrum


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


def _active_scales(eigvals, k, beta):
    """``max(0, λ_i - β)^{1/2}`` for the top k eigenvalues, shape (k,)."""
    return np.sqrt(np.maximum(eigvals[:k] - beta, 0.0))


def decoder_optimum(cov, k, beta, rotation=None):
    """Globally optimal decoder, eq. 23: ``D* = U max(0, Λ - βI)^{1/2} R``.

    Parameters
    ----------
    cov : array_like of shape (d, d), or Spectrum
        Data covariance or its spectrum.
    k : int
        Latent size, ``1 <= k <= d``.
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
    k = as_latent_size(k, spec.eigvals.shape[0])
    beta = as_beta(beta)
    R = _check_rotation(rotation, k)
    D = spec.eigvecs[:, :k] * _active_scales(spec.eigvals, k, beta)  # eq. 23, R = I
    return D if R is None else D @ R


def optimum(cov, k, beta, rotation=None):
    """The linear β-VAE at its optimum: ``D*`` (eq. 23) and the best responses ``E*``, ``c*`` to it.

    Parameters
    ----------
    cov : array_like of shape (d, d), or Spectrum
        Data covariance (maximum likelihood) or its spectrum.
    k : int
        Latent size, ``1 <= k <= d``.
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
        If ``cov`` is not a symmetric PSD matrix, ``k`` not in ``1..d``, ``beta`` not
        finite and > 0, or ``rotation`` not a (k, k) orthogonal matrix.
    """
    spec = as_spectrum(cov)
    k = as_latent_size(k, spec.eigvals.shape[0])
    beta = as_beta(beta)
    R = _check_rotation(rotation, k)
    U = spec.eigvecs[:, :k]
    scales = _active_scales(spec.eigvals, k, beta)  # singular values of D*
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
