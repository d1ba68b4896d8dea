"""The one eigendecomposition every closed form goes through."""

import numpy as np
import scipy.linalg

from .._checks import (
    as_betas,
    as_covariance,
    as_float_array,
    as_latent_size,
    check_psd,
    psd_tolerance,
)
from ._moments import _resolve_device
from ._types import Spectrum


def _eigh(cov, device):
    """Ascending eigenvalues and eigenvectors of a symmetric matrix, float64, on ``device``."""
    if device is None:
        return scipy.linalg.eigh(cov)
    import torch

    eigvals, eigvecs = torch.linalg.eigh(torch.as_tensor(cov, dtype=torch.float64, device=device))
    return eigvals.cpu().numpy(), eigvecs.cpu().numpy()


def spectrum(cov, *, device=None):
    """Eigendecomposition of a data covariance, eigenvalues descending.

    Parameters
    ----------
    cov : array_like of shape (d, d)
        Symmetric positive semidefinite covariance.
    device : None, "auto", "cpu" or "cuda[:N]", optional
        None (default): LAPACK through scipy. Otherwise ``torch.linalg.eigh`` in float64
        on that device, "auto" meaning CUDA when present.

    Returns
    -------
    Spectrum
        ``eigvals`` of shape (d,), descending and >= 0, and ``eigvecs`` of shape (d, d).
        Eigenvalues within round-off of zero (``|λ| <= 1e6 · eps · max|λ|``) that came out
        negative are set to exactly 0; positive ones are kept as computed.

    Raises
    ------
    TypeError
        If ``cov`` is not an array of real numbers.
    ValueError
        If ``cov`` is not square, not symmetric, holds NaN/inf, or has an eigenvalue below
        ``-1e6 · eps · max|λ|`` (it must be symmetric positive semidefinite).
    """
    dtype = getattr(cov, "dtype", np.float64)
    cov = as_covariance(cov)
    eigvals, eigvecs = _eigh(cov, _resolve_device(device))
    eigvals = check_psd(eigvals, "cov", dtype)
    order = np.arange(eigvals.shape[0])[::-1]
    return Spectrum(eigvals[order].copy(), eigvecs[:, order].copy())


def numerical_rank(eigvals) -> int:
    """The number of eigenvalues of a covariance above round-off: ``λ > 1e6·ε·max|λ|``.

    The one rule by which linvae tells a direction of the data from round-off:
    :func:`rank`, :func:`linvae.analytic.full_grid` and
    :func:`linvae.analytic.collapsed_latents` all count with it.

    Parameters
    ----------
    eigvals : array_like of shape (d,)
        Eigenvalues of the covariance, any order, >= 0 up to round-off.

    Returns
    -------
    int
        The numerical rank r, ``0 <= r <= d``.
    """
    eigvals = check_psd(as_float_array(eigvals, "eigvals", ndim=1), "eigvals")
    return int(np.count_nonzero(eigvals > psd_tolerance(eigvals)))


def active_latents(eigvals, k, betas) -> np.ndarray:
    """How many latents reverse water-filling opens at each β: ``#{i ≤ k : λ_i − β > τ}``.

    ``τ = 1e6·ε·max|λ|`` (:func:`numerical_rank`'s cutoff): an eigenvalue within round-off
    of β is β, where its latent shuts (rate ½ log(λ/β) = 0), so the count does not flip
    with the last bits of an eigendecomposition.

    Parameters
    ----------
    eigvals : array_like of shape (d,)
        Eigenvalues of the covariance, descending, >= 0 up to round-off.
    k : int
        Latent size.
    betas : array_like of shape (m,)

    Returns
    -------
    ndarray of int, shape (m,)
    """
    eigvals = check_psd(as_float_array(eigvals, "eigvals", ndim=1), "eigvals")
    k = as_latent_size(k)
    betas = as_betas(betas)
    top = eigvals[:k, None]
    return np.count_nonzero(top - betas[None, :] > psd_tolerance(eigvals), axis=0)


def rank(spectrum_):
    """Numerical rank of a :class:`Spectrum`: :func:`numerical_rank` of its eigenvalues."""
    return numerical_rank(spectrum_.eigvals)


#: How far from orthonormal a Spectrum's eigenvectors may be: ``max |VᵀV − I|``.
ORTHONORMAL_TOLERANCE = 1e-8


def as_spectrum(spectrum_like, name="cov"):
    """A ``Spectrum`` passed through after checks, or a covariance decomposed by :func:`spectrum`.

    A given ``Spectrum`` must have eigenvalues descending and >= 0, and orthonormal
    eigenvectors of matching shape (``max |VᵀV − I| <= 1e-8``): any other pair describes
    a different covariance, and the optimum built from it would be wrong.
    """
    if not isinstance(spectrum_like, Spectrum):
        return spectrum(spectrum_like)
    eigvals = as_float_array(spectrum_like.eigvals, f"{name}.eigvals", ndim=1)
    eigvecs = as_float_array(spectrum_like.eigvecs, f"{name}.eigvecs", ndim=2)
    d = eigvals.shape[0]
    if eigvecs.shape != (d, d):
        raise ValueError(
            f"{name}.eigvecs must have shape ({d}, {d}) to match eigvals, got {eigvecs.shape}"
        )
    if np.any(np.diff(eigvals) > 0):
        raise ValueError(f"{name}.eigvals must be in descending order")
    if np.any(eigvals < 0):
        raise ValueError(f"{name}.eigvals must be >= 0, got {eigvals.min()}")
    departure = float(np.max(np.abs(eigvecs.T @ eigvecs - np.eye(d))))
    if departure > ORTHONORMAL_TOLERANCE:
        raise ValueError(f"{name}.eigvecs must be orthonormal, got max |VᵀV − I| = {departure:.3g}")
    return Spectrum(eigvals, eigvecs)
