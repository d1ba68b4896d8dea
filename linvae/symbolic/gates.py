"""The gate functions of Theorem 1 in sympy, the branch of each decided from assumptions.

σ_E (sigmoid), σ_D (the "sqrt" gate) and the hinge min(1, eˣ); their numpy twins are in
:mod:`linvae.construction.gates`, their torch twins in :mod:`linvae.mrvae.gates`.
"""

import sympy as sp


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
