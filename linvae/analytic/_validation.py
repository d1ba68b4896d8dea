"""Checks at the public boundary: each error names the argument, what was expected and what came."""

import numbers

import numpy as np

from ._types import Spectrum


def as_float_array(value, name, ndim=None):
    """``value`` as a finite float64 ndarray of ``ndim`` dimensions, else TypeError/ValueError."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be an array of real numbers, got {type(value).__name__}")
    array = np.asarray(value)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must be an array of real numbers, got dtype {array.dtype}")
    if np.iscomplexobj(array):
        raise TypeError(f"{name} must be real, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise ValueError(
            f"{name} must be finite, got {array[tuple(bad)]} at index {tuple(bad.tolist())}"
        )
    return array


def as_beta(beta, name="beta"):
    """``beta`` as a finite float > 0."""
    if isinstance(beta, bool) or not isinstance(beta, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {type(beta).__name__}")
    beta = float(beta)
    if not np.isfinite(beta) or beta <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {beta}")
    return beta


def as_betas(betas, name="betas"):
    """``betas`` as a 1-D float64 array of finite values > 0 (a scalar becomes shape (1,))."""
    array = as_float_array(betas, name)
    if array.ndim > 1:
        raise ValueError(f"{name} must be a scalar or 1-D, got shape {array.shape}")
    array = np.atleast_1d(array)
    if array.size == 0:
        raise ValueError(f"{name} must not be empty")
    if np.any(array <= 0):
        raise ValueError(f"{name} must be > 0, got {array[array <= 0][0]}")
    return array


def as_latent_size(k, d, name="k"):
    """``k`` as an int with 1 <= k <= d."""
    if isinstance(k, bool) or not isinstance(k, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(k).__name__}")
    k = int(k)
    if not 1 <= k <= d:
        raise ValueError(f"{name}={k} must be between 1 and the data dimension d={d}")
    return k


def psd_tolerance(eigvals):
    """The cutoff below which an eigenvalue of a PSD matrix is round-off.

    ``1e6 * eps * max|λ|``, the same dtype-relative rule as scipy.stats' ``_PSD``.
    """
    scale = float(np.max(np.abs(eigvals))) if eigvals.size else 0.0
    return 1e6 * np.finfo(np.float64).eps * scale


def as_covariance(cov, name="cov"):
    """``cov`` as a symmetric (d, d) float64 array, symmetrised; PSD-ness is checked by spectrum."""
    cov = as_float_array(cov, name, ndim=2)
    if cov.shape[0] != cov.shape[1]:
        raise ValueError(f"{name} must be square, got shape {cov.shape}")
    if cov.shape[0] == 0:
        raise ValueError(f"{name} must not be empty")
    asymmetry = np.max(np.abs(cov - cov.T))
    scale = np.max(np.abs(cov))
    if asymmetry > 1e6 * np.finfo(np.float64).eps * scale:
        raise ValueError(
            f"{name} must be symmetric, got a largest asymmetry |cov - cov.T| of {asymmetry:.3g} "
            f"against entries of size {scale:.3g}"
        )
    return (cov + cov.T) / 2


def as_spectrum(spectrum_like, name="cov"):
    """A ``Spectrum`` passed through after checks, or a covariance decomposed."""
    from ._spectrum import spectrum

    if isinstance(spectrum_like, Spectrum):
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
        return Spectrum(eigvals, eigvecs)
    return spectrum(spectrum_like)
