"""The one home of input checks: every public function of linvae validates through these.

Each check returns the value in its canonical form or raises with one sentence that names
the argument, says what was expected and what came. A wrong *type* is a ``TypeError``, a
wrong *value* of the right type a ``ValueError``, and the same bad value gets the same
words wherever it is passed (tests/test_checks.py feeds every public entry point the same
bad values). numpy only: torch is imported inside :func:`resolve_device` alone.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

#: Round-off cutoff of an eigenvalue or asymmetry, in units of the dtype's epsilon times the
#: largest magnitude (the rule of scipy.stats' ``_PSD``).
PSD_EPS_FACTOR = 1e6

DEVICES = "'auto', 'cpu', 'cuda' or 'cuda:N'"


def _type_name(value) -> str:
    return type(value).__name__


def as_int(value, name: str, *, minimum: int | None = None, optional: bool = False):
    """``value`` as a Python int ``>= minimum`` (None passes when ``optional``).

    Raises
    ------
    TypeError
        ``"{name} must be an integer, got float"``: bools, floats (even 2.0) and strings
        are refused.
    ValueError
        ``"{name} must be >= {minimum}, got {value}"``.
    """
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        what = "an integer or None" if optional else "an integer"
        raise TypeError(f"{name} must be {what}, got {_type_name(value)}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def as_seed(seed, name: str = "seed") -> int:
    """A random seed: an int >= 0."""
    return as_int(seed, name, minimum=0)


def as_real(value, name: str) -> float:
    """``value`` as a finite Python float; TypeError for a non-number, ValueError for NaN/inf."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {_type_name(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def as_positive(value, name: str) -> float:
    """``value`` as a finite float > 0 (β, a learning rate, a tolerance)."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {_type_name(value)}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return value


def as_beta(beta, name: str = "beta") -> float:
    """β as a finite float > 0."""
    return as_positive(beta, name)


def as_fraction(value, name: str) -> float:
    """A finite float in [0, 1)."""
    value = as_real(value, name)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return value


def as_choice(value, name: str, choices) -> str:
    """``value`` if it is one of ``choices``, else ``"{name} must be one of (...), got ..."``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def as_float_array(value, name: str, ndim: int | None = None) -> np.ndarray:
    """``value`` as a finite float64 ndarray with ``ndim`` dimensions."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be an array of real numbers, got {_type_name(value)}")
    try:
        array = np.asarray(value)
    except ValueError as error:  # a ragged nesting of sequences
        raise ValueError(f"{name} must be a rectangular array of real numbers ({error})") from None
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


def as_betas(betas, name: str = "betas") -> np.ndarray:
    """β values as a 1-D float64 array, finite and > 0 (a scalar becomes shape (1,))."""
    array = as_float_array(betas, name)
    if array.ndim > 1:
        raise ValueError(f"{name} must be a scalar or 1-D, got shape {array.shape}")
    array = np.atleast_1d(array)
    if array.size == 0:
        raise ValueError(f"{name} must not be empty")
    if np.any(array <= 0):
        raise ValueError(f"{name} must be > 0, got {array[array <= 0][0]}")
    return array


def as_beta_range(value, name: str = "beta_range") -> tuple[float, float]:
    """A range of β as the pair ``(lo, hi)`` of floats with ``0 < lo < hi``, both finite."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair of floats (lo, hi), got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 < lo < hi):
        raise ValueError(f"{name} must satisfy 0 < lo < hi (finite), got ({lo}, {hi})")
    return lo, hi


def as_latent_size(k, name: str = "k") -> int:
    """A latent size: an int >= 1. A ``k`` above the data dimension is allowed everywhere:
    the latents beyond ``d`` are collapsed at the optimum (docs/theory.md, "k > d")."""
    return as_int(k, name, minimum=1)


def psd_tolerance(eigvals, dtype=np.float64) -> float:
    """The cutoff below which an eigenvalue of a PSD matrix is round-off.

    ``1e6 · eps · max|λ|`` with ``eps`` of ``dtype``, the input's precision (scipy.stats'
    ``_PSD`` rule).
    """
    eigvals = np.asarray(eigvals)
    scale = float(np.max(np.abs(eigvals))) if eigvals.size else 0.0
    return PSD_EPS_FACTOR * float(np.finfo(_float_dtype(dtype)).eps) * scale


#: The smallest largest-eigenvalue whose round-off cutoff ``1e6·ε·λ₁`` is still a normal
#: float64 (about 1e-298): below it, float64 underflows and the rank is lost.
UNDERFLOW_SCALE = float(np.finfo(np.float64).tiny) / (
    PSD_EPS_FACTOR * float(np.finfo(np.float64).eps)
)


def _float_dtype(dtype):
    dtype = np.dtype(dtype)
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)


def as_covariance(cov, name: str = "cov") -> np.ndarray:
    """``cov`` as a symmetric (d, d) float64 array, symmetrised.

    Symmetry is checked to round-off of the input's own dtype. Positive semidefiniteness
    needs the spectrum: :func:`check_psd` applies the same cutoff to the eigenvalues.
    """
    dtype = getattr(cov, "dtype", np.float64)
    cov = as_float_array(cov, name, ndim=2)
    if cov.shape[0] != cov.shape[1]:
        raise ValueError(f"{name} must be square, got shape {cov.shape}")
    if cov.shape[0] == 0:
        raise ValueError(f"{name} must not be empty")
    asymmetry = np.max(np.abs(cov - cov.T))
    scale = np.max(np.abs(cov))
    if asymmetry > PSD_EPS_FACTOR * np.finfo(_float_dtype(dtype)).eps * scale:
        raise ValueError(
            f"{name} must be symmetric, got a largest asymmetry |cov - cov.T| of {asymmetry:.3g} "
            f"against entries of size {scale:.3g}"
        )
    return (cov + cov.T) / 2


def check_psd(eigvals, name: str = "cov", dtype=np.float64) -> np.ndarray:
    """``eigvals`` (any order) with round-off negatives set to 0, or ValueError.

    Eigenvalues whose largest magnitude is positive but below :data:`UNDERFLOW_SCALE` are
    refused (float64 underflows there, like the subnormal covariance of data × 1e-160).
    An eigenvalue below ``-psd_tolerance(eigvals, dtype)`` means the covariance is not
    positive semidefinite: ``"{name} must be symmetric positive semidefinite, got an
    eigenvalue …"`` for a matrix ``name``, ``"{name} must be >= 0 …"`` when ``name`` is
    itself a list of eigenvalues (ends with "eigvals").
    """
    eigvals = np.asarray(eigvals, dtype=np.float64)
    tolerance = psd_tolerance(eigvals, dtype)
    lowest = float(eigvals.min()) if eigvals.size else 0.0
    largest = float(np.max(np.abs(eigvals))) if eigvals.size else 0.0
    if 0.0 < largest < UNDERFLOW_SCALE:
        raise ValueError(
            f"{name} underflows float64: its largest eigenvalue {largest:.3g} is below "
            f"{UNDERFLOW_SCALE:.3g}, where the round-off cutoff 1e6·ε·λ₁ is no longer a normal "
            "number and the rank is lost: rescale the data"
        )
    if lowest < -tolerance:
        if name.endswith("eigvals"):
            raise ValueError(
                f"{name} must be >= 0 (a covariance is positive semidefinite), got {lowest:.6g}"
            )
        raise ValueError(
            f"{name} must be symmetric positive semidefinite, got an eigenvalue {lowest:.6g} "
            f"below the round-off cutoff -{tolerance:.3g}"
        )
    return np.where(eigvals < 0, 0.0, eigvals)


def as_device_name(device, name: str = "device") -> str:
    """A device name, checked without torch: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Whether CUDA is present is checked when the device is used (:func:`resolve_device`).
    """
    if not isinstance(device, str):
        raise TypeError(f"{name} must be a str or torch.device, got {_type_name(device)}")
    if device not in ("auto", "cpu", "cuda") and not (
        device.startswith("cuda:") and device[5:].isdigit()
    ):
        raise ValueError(f"{name} must be {DEVICES}, got {device!r}")
    return device


def resolve_device(device, name: str = "device"):
    """A torch device from ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda[:N]"``
    or a ``torch.device``.

    Raises
    ------
    TypeError
        If ``device`` is neither a str nor a torch.device.
    ValueError
        ``"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got …"`` for another name, or a
        CUDA device asked for where torch sees none.
    """
    import torch

    if isinstance(device, torch.device):
        if device.type not in ("cpu", "cuda"):
            raise ValueError(f"{name} must be {DEVICES}, got {str(device)!r}")
        resolved = device
    else:
        if as_device_name(device, name) == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name} {str(device)!r} asked for, but CUDA is not available")
    return resolved
