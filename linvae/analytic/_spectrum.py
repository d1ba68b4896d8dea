"""The one eigendecomposition every closed form goes through."""

import numpy as np
import scipy.linalg

from ._moments import _resolve_device
from ._types import Spectrum
from ._validation import as_covariance, psd_tolerance


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
    cov = as_covariance(cov)
    eigvals, eigvecs = _eigh(cov, _resolve_device(device))
    tolerance = psd_tolerance(eigvals)
    if eigvals[0] < -tolerance:
        raise ValueError(
            "cov must be symmetric positive semidefinite, got an eigenvalue "
            f"{eigvals[0]:.6g} below the round-off cutoff -{tolerance:.3g}"
        )
    eigvals = np.where(eigvals < 0, 0.0, eigvals)
    order = np.arange(eigvals.shape[0])[::-1]
    return Spectrum(eigvals[order].copy(), eigvecs[:, order].copy())


def rank(spectrum_):
    """Numerical rank: the number of eigenvalues above the round-off cutoff."""
    return int(np.count_nonzero(spectrum_.eigvals > psd_tolerance(spectrum_.eigvals)))
