"""Tests of linvae.symbolic's building blocks: the verdict rule, exact identities, and the
sympy formulas against the independent float64 implementation in linvae.analytic."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import betas, finite_matrices, spd_covariances

from linvae import analytic
from linvae.construction.gates import hinge, sigmoid, sqrt_gate
from linvae.symbolic.algebra import (
    closed_form_terms,
    kl_to_standard_normal,
    linear_vae_symbols,
    quadratic_expectation,
    rational_orthogonal,
    rational_rotation,
)
from linvae.symbolic.claims import VERDICTS, is_zero, make_claim, verdict
from linvae.symbolic.gates import sym_hinge, sym_sigmoid, sym_sqrt_gate
from linvae.symbolic.water_filling import closed_form_distortion, closed_form_rate

# --- the verdict rule -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("as_written", "corrected", "expected"),
    [
        (True, None, "holds"),
        (True, False, "holds"),
        (False, True, "holds-with-correction"),
        (False, False, "fails"),
        (False, None, "fails"),
    ],
)
def test_verdict_rule(as_written, corrected, expected):
    assert verdict(as_written, corrected) == expected
    assert expected in VERDICTS


def test_verdict_refuses_sympy_booleans():
    # sympy's BooleanTrue is not a bool: a verdict must come from a decided check
    with pytest.raises(TypeError, match="as_written must be a bool"):
        verdict(sp.true)


def test_make_claim_requires_method_and_evidence_as_strings():
    with pytest.raises(ValueError, match="must include 'evidence'"):
        make_claim("X.1", "s", True, method="m")
    with pytest.raises(TypeError, match=r"details\['evidence'\] of claim 'X.1' must be a str"):
        make_claim("X.1", "s", True, method="m", evidence=sp.Integer(1))


def test_is_zero_proves_identities_and_rejects_non_identities():
    a, b = sp.symbols("a b", positive=True)
    assert is_zero((a + b) ** 2 - a**2 - 2 * a * b - b**2)
    assert is_zero(sp.log(a * b) - sp.log(a) - sp.log(b))
    assert is_zero(1 / (a + b) - 1 / (a + b), method="cancel")
    assert not is_zero((a + b) ** 2 - a**2 - b**2)
    assert not is_zero(sp.Matrix([[0, a - b]]))
    with pytest.raises(ValueError, match="method must be"):
        is_zero(a, method="simplify")


# --- exact expectations -----------------------------------------------------------------


def test_quadratic_expectation_uses_the_first_two_moments():
    z = sp.Matrix(sp.symbols("z0 z1", real=True))
    m = sp.Matrix([sp.Rational(1, 2), -3])
    cov = sp.Matrix([[2, sp.Rational(1, 3)], [sp.Rational(1, 3), 5]])
    # E[z0 z1] = Σ01 + m0 m1 = 1/3 − 3/2; E[z1²] = 5 + 9; E[z0] = 1/2 (worked by hand)
    value = quadratic_expectation(z[0] * z[1] + z[1] ** 2 + z[0] + 7, z, m, cov)
    assert value == sp.Rational(1, 3) - sp.Rational(3, 2) + 14 + sp.Rational(1, 2) + 7


def test_quadratic_expectation_refuses_cubics():
    z = sp.Matrix(sp.symbols("z0 z1", real=True))
    with pytest.raises(ValueError, match="degree <= 2"):
        quadratic_expectation(z[0] ** 3, z, sp.zeros(2, 1), sp.eye(2))


@given(
    finite_matrices((3,), bound=5.0),
    st.lists(st.floats(1e-3, 1e3), min_size=3, max_size=3),
)
def test_kl_derivation_equals_the_gaussian_closed_form(m, c):
    kl = kl_to_standard_normal(
        sp.Matrix([sp.Float(v, 30) for v in m]), sp.Matrix([sp.Float(v, 30) for v in c])
    )
    c = np.asarray(c)
    # the textbook KL(N(m, diag c) ‖ N(0, I)), independently of the sympy derivation
    expected = 0.5 * (np.sum(c) + m @ m - 3 - np.sum(np.log(c)))
    assert float(kl) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@given(spd_covariances(min_dim=3, max_dim=3), st.data(), betas(1e-2, 1e2))
def test_trace_formulas_equal_the_analytic_objective(case, data, beta):
    """The sympy rate and distortion, evaluated, equal linvae.analytic.objective (float64)."""
    cov, _ = case
    k = 2
    E = data.draw(finite_matrices((k, 3), bound=3.0))
    D = data.draw(finite_matrices((3, k), bound=3.0))
    c = np.exp(data.draw(finite_matrices((k,), bound=3.0)))
    s = linear_vae_symbols(3, k)
    rate, distortion = closed_form_terms(s.E, s.c, s.D, s.S, s.beta)
    values = {
        **dict(zip(s.E, E.ravel(), strict=True)),
        **dict(zip(s.c, c, strict=True)),
        **dict(zip(s.D, D.ravel(), strict=True)),
        **{s.S[i, j]: cov[i, j] for i in range(3) for j in range(3)},
    }
    terms = analytic.objective(analytic.LinearVAEParams(E, c, D), np.zeros(3), cov, beta)
    scale = 1.0 + abs(terms.distortion) + abs(terms.rate)
    assert float(rate.subs(values)) == pytest.approx(terms.rate, abs=1e-12 * scale)
    assert float(distortion.subs(values)) == pytest.approx(terms.distortion, abs=1e-12 * scale)


@given(
    st.lists(st.sampled_from([0.0, 0.05, 0.5, 1.0, 2.0, 7.0, 7.0, 300.0]), min_size=4, max_size=4),
    st.integers(1, 4),
    betas(1e-2, 1e2),
)
def test_closed_form_rate_and_distortion_equal_the_analytic_curve(values, k, beta):
    lam = sorted(values, reverse=True)
    assume(all(v != beta for v in lam))  # exact rationals decide every branch of log⁺ anyway
    exact = [sp.nsimplify(v) for v in lam]
    b = sp.nsimplify(beta, rational=True)
    curve = analytic.rate_distortion(np.asarray(lam), k, np.array([float(b)]))
    assert float(closed_form_rate(exact, k, b)) == pytest.approx(
        curve.rate[0], rel=1e-12, abs=1e-14
    )
    assert float(closed_form_distortion(exact, k, b)) == pytest.approx(
        curve.distortion[0], rel=1e-12
    )


# --- gates and exact orthogonal matrices ------------------------------------------------


@pytest.mark.parametrize("x", [sp.Rational(-7, 3), sp.Integer(0), sp.Rational(1, 5), sp.Integer(3)])
def test_sympy_gates_equal_numpy_gates(x):
    assert float(sym_sigmoid(x)) == pytest.approx(float(sigmoid(float(x))), rel=1e-15)
    assert float(sym_sqrt_gate(x)) == pytest.approx(float(sqrt_gate(float(x))), rel=1e-15)
    assert float(sym_hinge(x)) == pytest.approx(float(hinge(float(x))), rel=1e-15)


def test_sympy_sqrt_gate_refuses_an_undecided_branch():
    x = sp.Symbol("x", real=True)
    with pytest.raises(ValueError, match="not decided"):
        sym_sqrt_gate(x)


def test_gates_reference_values():
    # σ_E(0) = 1/2, σ_D(−log 2) = 2^{-1/2}, σ_D(0) = 0, min(1, e^{−1}) = e^{−1}
    assert sigmoid(0.0) == 0.5
    assert sqrt_gate(-np.log(2.0)) == pytest.approx(np.sqrt(0.5), rel=1e-15)
    assert sqrt_gate(0.0) == 0.0
    assert hinge(-1.0) == pytest.approx(np.exp(-1.0), rel=1e-16)


def test_rational_orthogonal_matrices_are_exactly_orthogonal():
    Q = rational_orthogonal(3, [sp.Rational(1, 2), sp.Rational(1, 3), 2])
    assert sp.eye(3) == Q * Q.T
    R = rational_rotation(sp.Rational(1, 2))
    assert (
        sp.Matrix([[sp.Rational(3, 5), -sp.Rational(4, 5)], [sp.Rational(4, 5), sp.Rational(3, 5)]])
        == R
    )
    with pytest.raises(ValueError, match="params must have 3 entries"):
        rational_orthogonal(3, [1])


def test_linear_vae_symbols_validates_sizes():
    with pytest.raises(ValueError, match="1 <= k <= d"):
        linear_vae_symbols(2, 3)
