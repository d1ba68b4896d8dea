r"""Numeric witnesses that a product of gates cannot follow a response function.

For a scalar response f(η) (a latent size k = 1, so each layer has one gated unit), the
two-layer gated parameterisation is

.. math::

    K\,\sigma(h_1\eta + q_1)\,\sigma(h_2\eta + q_2),

and :func:`best_gate_product_fit` searches (K, h, q) by least squares on a grid of η from
many deterministic starts. A best residual far above round-off is a witness (not a proof:
the search is local) that the gates cannot represent f; the structural reason is stated
with each claim.
"""

import itertools
from typing import NamedTuple

import numpy as np
from scipy.optimize import least_squares

from .gates import gate_function

ETA_RANGE = (np.log(0.01), np.log(10.0))


class GateFit(NamedTuple):
    """The best gate product found.

    Attributes
    ----------
    max_error : float
        max over the grid of |fit − f| / max |f|.
    params : ndarray of shape (5,)
        (K, h₁, q₁, h₂, q₂).
    worst_eta : float
        Where the error is largest.
    """

    max_error: float
    params: np.ndarray
    worst_eta: float


def _product(params, eta, gate):
    K, h1, q1, h2, q2 = params
    return K * gate(h1 * eta + q1) * gate(h2 * eta + q2)


def best_gate_product_fit(target, gate_name, n_grid=161, eta_range=ETA_RANGE):
    """Least-squares fit of K·σ(h₁η + q₁)·σ(h₂η + q₂) to ``target`` on an η grid.

    Parameters
    ----------
    target : callable
        f(η) for an ndarray of η, returning an ndarray of the same shape.
    gate_name : str
        ``"sigmoid"``, ``"sqrt"`` or ``"hinge"``.
    n_grid : int
        Number of equispaced η in ``eta_range``.

    Returns
    -------
    GateFit
        The best of all starts, by maximum relative error.
    """
    gate = gate_function(gate_name)
    eta = np.linspace(*eta_range, n_grid)
    f = np.asarray(target(eta), dtype=np.float64)
    scale = np.max(np.abs(f))
    if not np.isfinite(scale) or scale == 0:
        raise ValueError("target must be finite and not identically zero on the grid")
    best = None
    slopes, offsets = (-2.0, -0.5, 0.5, 2.0), (-2.0, 0.0, 2.0)
    for h1, q1, h2, q2 in itertools.product(slopes, offsets, slopes, offsets):
        if (h1, q1) > (h2, q2):  # the product is symmetric in the two factors
            continue
        start = np.array([1.0, h1, q1, h2, q2])
        start[0] = scale / max(np.max(np.abs(_product(start, eta, gate))), 1e-12)
        fit = least_squares(
            lambda p: (_product(p, eta, gate) - f) / scale, start, method="lm", max_nfev=400
        )
        error = np.abs(_product(fit.x, eta, gate) - f) / scale
        if np.all(np.isfinite(error)) and (best is None or error.max() < best.max_error):
            best = GateFit(float(error.max()), fit.x, float(eta[np.argmax(error)]))
    return best
