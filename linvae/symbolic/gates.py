"""The gate functions of Theorem 1 in numpy float64 and in sympy.

σ_E(x) = 1/(1 + e^{−x}) (sigmoid, eqs. 25-26, 30-31); σ_D(x) = max(0, 1 − eˣ)^{1/2} (the
"sqrt" gate, eqs. 37-38); and min(1, eˣ) (the "hinge", not in the paper: it makes the
joint-optimum covariance exact, see ``T1.b.covariance.hinge``). Names match
``linvae.mrvae.gates``.
"""

import numpy as np
import sympy as sp

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
    if name not in _NUMPY:
        raise ValueError(f"gate must be one of {GATES}, got {name!r}")
    return _NUMPY[name]


def sym_sigmoid(x):
    """σ_E(x) in sympy, with e^{−x} expanded so logs of positive symbols simplify."""
    return 1 / (1 + sp.expand_power_exp(sp.exp(-x)))


def _branch(value):
    """Sign of a sympy value decided from assumptions: +1, 0-or-below (−1), or None."""
    value = sp.cancel(value)
    if value.is_positive:
        return 1
    if value.is_nonpositive:
        return -1
    return None


def sym_sqrt_gate(x):
    """σ_D(x) = max(0, 1 − eˣ)^{1/2} in sympy, the branch decided from the assumptions.

    Raises
    ------
    ValueError
        If the sign of 1 − eˣ is not decided by the symbols' assumptions.
    """
    inner = sp.cancel(1 - sp.expand_power_exp(sp.exp(x)))
    branch = _branch(inner)
    if branch is None:
        raise ValueError(f"the sign of 1 − exp({x}) is not decided by the assumptions")
    return sp.sqrt(inner) if branch > 0 else sp.Integer(0)


def sym_hinge(x):
    """min(1, eˣ) in sympy, the branch decided from the assumptions."""
    value = sp.cancel(sp.expand_power_exp(sp.exp(x)))
    branch = _branch(1 - value)
    if branch is None:
        raise ValueError(f"the sign of 1 − exp({x}) is not decided by the assumptions")
    return value if branch > 0 else sp.Integer(1)


SYMPY_GATES = {"sigmoid": sym_sigmoid, "sqrt": sym_sqrt_gate, "hinge": sym_hinge}
