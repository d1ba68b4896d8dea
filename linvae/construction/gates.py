"""The gate functions of Theorem 1 in numpy float64.

σ_E(x) = 1/(1 + e^{−x}) (sigmoid, eqs. 25-26, 30-31); σ_D(x) = max(0, 1 − eˣ)^{1/2} (the
"sqrt" gate, eqs. 37-38); and min(1, eˣ) (the "hinge", not in the paper: it makes the
joint-optimum covariance exact, see ``T1.b.covariance.hinge``). Names match
``linvae.mrvae.gates`` (torch) and ``linvae.symbolic.gates`` (sympy).
"""

import numpy as np

from .._checks import as_choice

GATES = ("sigmoid", "sqrt", "hinge")


def sigmoid(x):
    """σ_E(x) = 1/(1 + e^{−x}), elementwise, stable for large |x| (eq. 25).

    Parameters
    ----------
    x : array_like of any shape

    Returns
    -------
    ndarray of the shape of ``x``, float64, values in (0, 1).
    """
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sqrt_gate(x):
    """σ_D(x) = max(0, 1 − eˣ)^{1/2}, elementwise, via −expm1 for accuracy near 0 (eq. 37).

    Returns values in [0, 1): exactly 0 for x ≥ 0, and < 1 for every finite x.
    """
    x = np.asarray(x, dtype=np.float64)
    # expm1 of min(x, 0): the gate is 0 for x >= 0 anyway, and large x would overflow
    return np.sqrt(np.maximum(0.0, -np.expm1(np.minimum(x, 0.0)))) + 0.0  # + 0.0: no −0.0


def hinge(x):
    """min(1, eˣ) = exp(min(0, x)), elementwise, values in (0, 1]."""
    x = np.asarray(x, dtype=np.float64)
    return np.exp(np.minimum(0.0, x))


_NUMPY = {"sigmoid": sigmoid, "sqrt": sqrt_gate, "hinge": hinge}


def gate_function(name):
    """The numpy gate called ``name`` (one of :data:`GATES`)."""
    return _NUMPY[as_choice(name, "gate", GATES)]
