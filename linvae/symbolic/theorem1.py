"""Theorem 1 (appendix A.2) checked step by step, and its two readings.

Reading (a): E(η) and C(η) are the best responses (eqs. 21-22) to a *fixed* decoder D, and
D(η) is the global optimum D*(η) (eq. 23): what the appendix constructs. Reading (b): the
*joint* optimum, where E and C respond to the moving D*(η). For each reading and gate the
claims decide whether the two-layer gated parameterisation is exact for all η.

Symbolic sizes: d = 3, k = 2, with exact orthogonal matrices (Cayley's parametrisation,
symbolic where cheap) and activity patterns λᵢ = β + aᵢ (λᵢ > β) or λᵢ = β/(1 + uᵢ)
(λᵢ ≤ β), aᵢ, uᵢ, β positive symbols, η = log β.
"""

from functools import partial

import numpy as np
import sympy as sp

from linvae.construction.fit import K_BOUND, OFFSET_BOUND, SLOPE_BOUND, best_gate_product_fit
from linvae.symbolic.algebra import rational_orthogonal, rational_rotation
from linvae.symbolic.claims import (
    COUNTEREXAMPLE,
    NUMERIC_WITNESS,
    PROVED,
    is_zero,
    make_claim,
    show,
)
from linvae.symbolic.gates import sym_hinge, sym_sigmoid, sym_sqrt_gate

_beta = sp.Symbol("beta", positive=True)
_eta = sp.log(_beta)
_a = sp.symbols("a1:4", positive=True)
_u = sp.symbols("u1:4", positive=True)
_s = sp.symbols("s1:4", positive=True)
_t = sp.Symbol("t", real=True)

# An exact 3×3 orthogonal matrix with rational entries; its first two columns are U (or A).
_U = rational_orthogonal(3, [sp.Rational(1, 2), sp.Rational(1, 3), 2])[:, :2]
_R = rational_rotation(_t)  # a symbolic rotation R(t) of the latent space

# Activity patterns for Theorem 1's decoder and reading (b): (name, [λ₁, λ₂]) at k = 2.
PATTERNS = (
    ("λ₁, λ₂ > β", [_beta + _a[0], _beta + _a[1]]),
    ("λ₁ > β ≥ λ₂", [_beta + _a[0], _beta / (1 + _u[1])]),
    ("β ≥ λ₁, λ₂", [_beta / (1 + _u[0]), _beta / (1 + _u[1])]),
    ("tie λ₁ = λ₂ > β", [_beta + _a[0], _beta + _a[0]]),
    ("λ₁ = β", [_beta, _beta / (1 + _u[1])]),
)
_WITH_ZERO = (("λ₂ = 0", [_beta + _a[0], sp.Integer(0)]),)

# The second size, d = 4, k = 3: exact rational U (4×3) and R (3×3), checked by substitution
# of these matrices (λ and β stay symbolic).
_U43 = rational_orthogonal(4, [sp.Rational(1, 2), 1, sp.Rational(1, 3), 2, sp.Rational(3, 4), 1])[
    :, :3
]
_R43 = rational_orthogonal(3, [sp.Rational(1, 2), 2, sp.Rational(1, 3)])
PATTERNS43 = (
    ("λ₁, λ₂ > β ≥ λ₃", [_beta + _a[0], _beta + _a[1], _beta / (1 + _u[2])]),
    ("tie λ₁ = λ₂ > λ₃ > β", [_beta + _a[0], _beta + _a[0], _beta + _a[2]]),
    ("β ≥ λ₁, λ₂, λ₃", [_beta / (1 + _u[0]), _beta / (1 + _u[1]), _beta / (1 + _u[2])]),
)

# (U, R, patterns) per size: (3, 2) with a symbolic rotation R(t), (4, 3) with rationals.
FRAMES = ((_U, _R, PATTERNS), (_U43, _R43, PATTERNS43))

# A fit error at or below this is "exact" (float64 round-off on a grid of η).
EXACT = 1e-9


def _positive_part_sqrt(value):
    """max(0, value)^{1/2} with the branch decided from assumptions."""
    value = sp.cancel(value)
    if value.is_positive:
        return sp.sqrt(value)
    if value.is_nonpositive:
        return sp.Integer(0)
    raise ValueError(f"the sign of {value} is not decided by the assumptions")


def _joint_optimum(lam, R, U=None):
    """(E*, c*, D*) at the joint optimum for top eigenvalues ``lam`` (k,), eigenvectors U (d, k)."""
    U = _U if U is None else U
    k = len(lam)
    D = U * sp.diag(*[_positive_part_sqrt(li - _beta) for li in lam]) * R  # eq. 23
    M = (D.T * D).applyfunc(sp.cancel) + _beta * sp.eye(k)
    E = M.inv() * D.T  # eq. 22
    c = sp.Matrix([_beta / M[i, i] for i in range(k)])  # eq. 21
    return E, c, D


def claim_eq24():
    """E* in terms of the SVD of D (eq. 24), including a zero singular value."""
    A = rational_orthogonal(3, sp.symbols("p1:4", real=True))[:, :2]
    B = rational_rotation(_t)
    ok = True
    for S in (sp.diag(*_s[:2]), sp.diag(_s[0], 0)):
        D = A * S * B.T
        M = D.T * D + _beta * sp.eye(2)
        ok &= is_zero(
            M * (B * (S**2 + _beta * sp.eye(2)).inv() * S * A.T) - D.T, method="cancel"
        )  # eq. 24
    return make_claim(
        "T1.eq24",
        "with D = ASBᵀ, E*(η) = B(S² + e^η I)⁻¹SAᵀ",
        ok,
        method=PROVED,
        evidence="(DᵀD + βI)·B(S² + βI)⁻¹SAᵀ = Dᵀ identically for symbolic orthonormal A (3×2, "
        "Cayley with 3 symbols), rotation B(t), S = diag(s₁, s₂) and S = diag(s₁, 0)",
    )


def _encoder_product(A, B, S_diag, base_factor):
    """Eqs. 25-28: [σ_E(0)·base_factor·BS⁻¹]·[σ_E(−η + 2 log Sᵢᵢ) ⊙_row Aᵀ]."""
    gates = [sym_sigmoid(-_eta + 2 * sp.log(s)) for s in S_diag]  # eq. 27
    first = sp.diag(*gates) * A.T
    second = sym_sigmoid(0) * base_factor * B * sp.diag(*[1 / s for s in S_diag])
    return second * first


def claim_eq25_28():
    """The sigmoid-gated encoder construction (eqs. 25-28), with E_base⁽²⁾ = 2BS⁻¹."""
    gate_ok = all(is_zero(sym_sigmoid(-_eta + 2 * sp.log(s)) - s**2 / (s**2 + _beta)) for s in _s)
    product_ok, half = True, True
    for A, B, _ in FRAMES:
        k = B.shape[0]
        S = sp.diag(*_s[:k])
        target = B * (S**2 + _beta * sp.eye(k)).inv() * S * A.T  # eq. 24
        product_ok &= is_zero(_encoder_product(A, B, _s[:k], 2) - target)  # eq. 28
        half &= is_zero(_encoder_product(A, B, _s[:k], 1) - target / 2)  # base BS⁻¹: E*/2
    return make_claim(
        "T1.eq25-28",
        "σ_E-gated E⁽¹⁾ = σ(−η + 2 log Sᵢᵢ) ⊙ Aᵀ (eq. 27) and E⁽²⁾ = BS⁻¹ via base 2BS⁻¹ "
        "give E*(η) (eq. 28)",
        gate_ok and product_ok and half,
        method=PROVED,
        evidence="σ_E(−η + 2 log s) = s²/(s² + e^η) (eq. 27) and the gated product equals eq. 24 "
        "identically (symbolic sᵢ > 0, β; d = 3, k = 2 with a symbolic rotation B(t), and d = 4, "
        "k = 3 with exact rational A, B); σ_E(0) = 1/2, so the base "
        "2BS⁻¹ is right: base BS⁻¹ would give exactly E*/2",
        assumptions="Sᵢᵢ > 0 (see T1.zero-singular-value)",
    )


def claim_zero_singular_value():
    """A zero singular value of D breaks eq. 27's 2 log Sᵢᵢ; a zero base row repairs it."""
    offset = 2 * sp.log(sp.Integer(0))  # eq. 27 at S₂₂ = 0
    as_written = bool(offset.is_finite)
    S = sp.diag(_s[0], 0)
    target = _R * (S**2 + _beta * sp.eye(2)).inv() * S * _U.T  # eq. 24, zero second row
    gate1 = sym_sigmoid(-_eta + 2 * sp.log(_s[0]))
    w = sp.Symbol("w", positive=True)  # the second gate's value: any finite offset will do
    first = sp.diag(gate1, w) * sp.diag(1, 0) * _U.T  # row 2 of the base Aᵀ set to zero
    second = sym_sigmoid(0) * 2 * _R * sp.diag(1 / _s[0], 0)  # S⁻¹ → pseudo-inverse S⁺
    corrected = is_zero(second * first - target)
    return make_claim(
        "T1.zero-singular-value",
        "eq. 27's sᵢ = 2 log Sᵢᵢ is defined for every singular value of D",
        as_written,
        corrected,
        method=PROVED,
        evidence=f"S₂₂ = 0 gives sᵢ = 2 log 0 = {show(offset)}; with row i of E_base⁽¹⁾ = Aᵀ "
        "set to zero, any gate value w there, and S⁺ for S⁻¹ in E_base⁽²⁾ = 2BS⁺, the product "
        "equals E*(η) = B(S² + βI)⁻¹SAᵀ identically (symbolic s₁, β, w, B(t))",
        correction="for Sᵢᵢ = 0 zero the i-th row of E_base⁽¹⁾ (or the i-th column of "
        "E_base⁽²⁾) and use the pseudo-inverse; E*(η) has no component in that direction",
    )


def claim_eq29_32():
    """The sigmoid-gated covariance construction (eqs. 29-32), both cases of diag(DᵀD)."""
    g = sp.Symbol("g", positive=True)
    constant_two = sym_sigmoid(0) * 2  # C⁽²⁾ = I: base 2I with t = p = 0
    positive_case = sym_sigmoid(1 * _eta - sp.log(g)) * 1 * constant_two  # t = 1, p = −log g
    zero_case = sym_sigmoid(0) * 2 * constant_two  # base 2, t = p = 0
    ok = is_zero(positive_case - _beta / (g + _beta))  # eq. 29 with g > 0
    ok &= is_zero(zero_case - _beta / (0 + _beta))  # eq. 29 with g = 0
    return make_claim(
        "T1.eq29-32",
        "σ_E-gated C⁽¹⁾ (base 1, t = 1, p = −log g if g = diag(DᵀD)ᵢᵢ > 0; base 2, t = p = 0 "
        "if g = 0) times C⁽²⁾ = I gives C*(η) (eq. 32)",
        ok,
        method=PROVED,
        evidence="σ_E(η − log g) = e^η/(g + e^η) for symbolic g > 0; σ_E(0)·2 = 1 = C* at g = 0; "
        "C⁽²⁾ = I realised as base 2I with t⁽²⁾ = p⁽²⁾ = 0 (the text gives no parameters for it)",
    )


def claim_constant_layers():
    """Constant layers (E⁽²⁾, C⁽²⁾, D⁽²⁾) as gated layers with zero slope."""
    x = sp.Symbol("x", real=True)
    sigmoid_half = sym_sigmoid(0) == sp.Rational(1, 2)
    sqrt_never_one = sp.solve(sp.Eq(1 - sp.exp(x), 1), x) == []  # σ_D(x) = 1 has no root
    sqrt_value = sym_sqrt_gate(-sp.log(2))
    sqrt_constant = is_zero(sqrt_value * sp.sqrt(2) - 1)
    return make_claim(
        "T1.constant-layers",
        "the constant layers E⁽²⁾ = BS⁻¹, C⁽²⁾ = I, D⁽²⁾ = UΛ^{1/2} are produced by gated layers",
        sigmoid_half and sqrt_never_one and sqrt_constant,
        method=PROVED,
        evidence=f"σ_E(0) = {show(sym_sigmoid(0))}: sigmoid constants need base 2X (as the text "
        "says for E, and silently for C⁽²⁾ = I); σ_D(x) = 1 has no real solution (σ_D < 1), so "
        f"D⁽²⁾ = UΛ^{{1/2}} needs h = 0, q < 0 and a rescaled base: q = −log 2 gives σ_D = "
        f"{show(sqrt_value)}, base √2·UΛ^{{1/2}}",
    )


def claim_eq34():
    """Eq. 34 as printed takes the square root of a negative number; max belongs inside."""
    printed = sp.sqrt(sp.exp(0) - sp.exp(sp.log(2)))  # ξ = 0, η = log 2
    as_written = bool(printed.is_real)
    lam = sp.Symbol("lam", positive=True)
    u = sp.Symbol("u", nonnegative=True)
    corrected = True
    for beta in (lam / (1 + _u[0]), lam * (1 + u)):  # η < ξ, and η ≥ ξ
        eta = sp.log(beta)
        lhs = _positive_part_sqrt(lam - beta)  # max(0, e^ξ − e^η)^{1/2}
        eq35 = sp.sqrt(lam) * _positive_part_sqrt(1 - sp.cancel(beta / lam))
        eq36 = sp.sqrt(lam) * sym_sqrt_gate(eta - sp.log(lam))
        corrected &= is_zero(lhs - eq35) and is_zero(lhs - eq36)
    return make_claim(
        "T1.eq34",
        "(g(Λ − e^η I))ᵢᵢ^{1/2} = max(0, (e^ξᵢ − e^η)^{1/2}) = e^{ξᵢ/2} σ_D(η − ξᵢ) (eqs. 34-36)",
        as_written,
        corrected,
        method=PROVED,
        evidence=f"at ξ = 0, η = log 2 the printed (e^ξ − e^η)^{{1/2}} = {show(printed)}, not real; "
        "with max(0, e^ξ − e^η)^{1/2} eqs. 35-36 hold identically on both branches "
        "(e^η = λ/(1+u), u > 0, and e^η = λ(1+u), u ≥ 0)",
        correction="the max goes inside the root: max(0, e^ξᵢ − e^η)^{1/2}",
    )


def _decoder_product(lam, R, gate_value_for_zero=None, U=None):
    """Eqs. 37-39: [σ_D(−log 2)·√2·UΛ^{1/2}]·[σ_D(η − ξᵢ) ⊙_row R]."""
    U = _U if U is None else U
    gates = []
    for i, li in enumerate(lam):
        if li == 0:
            gates.append(gate_value_for_zero[i])
        else:
            gates.append(sym_sqrt_gate(_eta - sp.log(li)))  # h = 1, q = −ξᵢ
    first = sp.diag(*gates) * R
    second = sym_sqrt_gate(-sp.log(2)) * sp.sqrt(2) * U * sp.diag(*[sp.sqrt(li) for li in lam])
    return second * first


def claim_eq37_39():
    """The σ_D-gated decoder construction equals D*(η) (eq. 39)."""
    ok = True
    for U, R, patterns in FRAMES:
        for _, lam in patterns:
            D_star = _joint_optimum(lam, R, U)[2]
            ok &= is_zero(_decoder_product(lam, R, U=U) - D_star)
    return make_claim(
        "T1.eq37-39",
        "σ_D-gated D⁽¹⁾ = σ_D(η − ξᵢ) ⊙ R and D⁽²⁾ = UΛ^{1/2} give D*(η) (eq. 39)",
        ok,
        method=PROVED,
        evidence="the product equals U g(Λ − βI)^{1/2} R identically; d = 3, k = 2 with a "
        "symbolic rotation R(t) and exact U in the patterns "
        + "; ".join(p[0] for p in PATTERNS)
        + "; d = 4, k = 3 with exact rational U, R in the patterns "
        + "; ".join(p[0] for p in PATTERNS43)
        + " (ties are harmless: the construction only uses each λᵢ)",
        assumptions="λᵢ > 0 for i ≤ k (see T1.zero-eigenvalue); D⁽²⁾ realised as in "
        "T1.constant-layers",
    )


def claim_zero_eigenvalue():
    """λᵢ = 0 breaks ξᵢ = log λᵢ; any finite offset works since UΛ^{1/2} has a zero column."""
    as_written = bool(sp.log(sp.Integer(0)).is_finite)
    w = sp.Symbol("w", nonnegative=True)  # the gate value of the row with λ₂ = 0: anything
    lam = [_beta + _a[0], sp.Integer(0)]
    D_star = _joint_optimum(lam, _R)[2]
    corrected = is_zero(_decoder_product(lam, _R, gate_value_for_zero={1: w}) - D_star)
    return make_claim(
        "T1.zero-eigenvalue",
        "ξᵢ = log λᵢ is defined for the top-k eigenvalues (the 'full rank' assumption)",
        as_written,
        corrected,
        method=PROVED,
        evidence=f"λ₂ = 0 gives ξ₂ = log 0 = {show(sp.log(sp.Integer(0)))}; with any gate value w "
        "on that row (e.g. q₂ = 0) the product still equals D*(η) identically (symbolic R(t), "
        "λ₁ > β), because column 2 of UΛ^{1/2} is zero; for E and C see T1.b.encoder.sqrt and "
        "T1.b.covariance.hinge, which cover λ₂ = 0",
        correction="for λᵢ = 0 take any finite qᵢ (e.g. 0): only the top-k eigenvalues must be "
        "positive for the printed ξᵢ, and even that is not needed with this choice",
    )


def _derivative_witness(lam_value):
    """d/dη √(λ − e^η)⁺ → −∞ as η → log λ⁻: no bounded-slope gate product can follow it."""
    eta = sp.Symbol("eta", real=True)
    f = sp.sqrt(lam_value - sp.exp(eta))
    slope = sp.limit(sp.diff(f, eta), eta, sp.log(lam_value), "-")
    x = sp.Symbol("x", real=True)
    sig = 1 / (1 + sp.exp(-x))
    bounded = is_zero(sp.diff(sig, x) - (sp.Rational(1, 4) - (sig - sp.Rational(1, 2)) ** 2))
    return slope, bounded


def _fit_text(fit):
    # Two digits: the optimum is global (construction.fit), and across other search grids,
    # OpenBLAS's Sandybridge and Haswell kernels and numpy's baseline SIMD path its max error
    # moved by < 1e-8 and its worst η not at all (issue 21), far inside the printed digits.
    return (
        "the least-squares K·σ(h₁η+q₁)·σ(h₂η+q₂) (k = 1, 161 η in [log 0.01, log 10], "
        f"|h| ≤ {SLOPE_BOUND:g}, |q| ≤ {OFFSET_BOUND:g}, |K| ≤ {K_BOUND:g}·max f; global search "
        "on a dense grid, then polished) leaves max relative error "
        f"{fit.max_error:.2g} near η = {fit.worst_eta:.2g}"
    )


def claim_b_encoder_sigmoid():
    """Reading (b), σ_E gates: E*(D*(η)) has a square-root kink at η = log λ."""
    slope, bounded = _derivative_witness(sp.Integer(1))
    fit = best_gate_product_fit(lambda e: np.sqrt(np.maximum(0.0, -np.expm1(e))), "sigmoid")
    obstruction = slope == -sp.oo and bounded
    if obstruction and fit.max_error <= EXACT:
        raise RuntimeError("a sigmoid fit matched a function with an unbounded slope")
    return make_claim(
        "T1.b.encoder.sigmoid",
        "reading (b): σ_E-gated two-layer E(η) represents E*(D*(η)) = Rᵀdiag(√(λ−e^η)⁺/λ)Uᵀ",
        not obstruction,
        method=COUNTEREXAMPLE,
        evidence=f"k = 1, λ = 1: d/dη √(1 − e^η) → {show(slope)} as η → 0⁻, while every entry of a "
        "sigmoid-gated product is a finite sum of K·σ(·)σ(·) whose slope is at most |K|(|h₁|+|h₂|)/4 "
        "(σ' = 1/4 − (σ − 1/2)² ≤ 1/4, verified); " + _fit_text(fit),
    )


def claim_decoder_sigmoid():
    """The decoder with σ_E gates cannot be exact either (same square-root kink)."""
    slope, bounded = _derivative_witness(sp.Integer(2))
    fit = best_gate_product_fit(
        lambda e: np.sqrt(np.maximum(0.0, 2.0 - np.exp(e))) / np.sqrt(2.0), "sigmoid"
    )
    obstruction = slope == -sp.oo and bounded
    if obstruction and fit.max_error <= EXACT:
        raise RuntimeError("a sigmoid fit matched a function with an unbounded slope")
    return make_claim(
        "T1.decoder.sigmoid",
        "σ_E gates in place of σ_D represent D*(η) = U g(Λ − e^η I)^{1/2} R",
        not obstruction,
        source="linvae",
        method=COUNTEREXAMPLE,
        evidence=f"k = 1, λ = 2: d/dη √(2 − e^η) → {show(slope)} as η → log 2⁻; sigmoid products "
        "have bounded slope; " + _fit_text(fit),
    )


def claim_b_encoder_sqrt():
    """Reading (b), σ_D gates: E*(D*(η)) = Rᵀ diag(λ^{-1/2} σ_D(η − ξ)) Uᵀ exactly."""
    ok = True
    for U, R, patterns in (*FRAMES, (_U, _R, _WITH_ZERO)):
        for _, lam in patterns:
            E_star = _joint_optimum(lam, R, U)[0]
            rows = [0 if li == 0 else sym_sqrt_gate(_eta - sp.log(li)) / sp.sqrt(li) for li in lam]
            first = sp.diag(*rows) * U.T  # base Λ^{-1/2}Uᵀ (zero row where λᵢ = 0), q = −ξᵢ
            second = sym_sqrt_gate(-sp.log(2)) * sp.sqrt(2) * R.T  # the constant Rᵀ
            ok &= is_zero(second * first - E_star)
    return make_claim(
        "T1.b.encoder.sqrt",
        "reading (b): σ_D-gated E⁽¹⁾ = σ_D(η − ξᵢ) ⊙ Λ^{-1/2}Uᵀ, E⁽²⁾ = Rᵀ give E*(D*(η))",
        ok,
        source="linvae",
        method=PROVED,
        evidence="√(λ − β)⁺/λ = λ^{-1/2}σ_D(η − log λ); the product equals (D*ᵀD* + βI)⁻¹D*ᵀ "
        "identically in every pattern (d = 3, k = 2 with a symbolic R(t); d = 4, k = 3 with an "
        "exact R), and with λ₂ = 0 (zero base row)",
    )


def _kink():
    """Left and right η-derivatives of min(1, e^{η−ξ}) at η = ξ (ξ = 0)."""
    eta = sp.Symbol("eta", real=True)
    left = sp.limit(sp.diff(sp.exp(eta), eta), eta, 0, "-")
    right = sp.limit(sp.diff(sp.Integer(1) + 0 * eta, eta), eta, 0, "+")
    return left, right


def claim_b_covariance(gate):
    """Reading (b), σ_E or σ_D gates: c*(D*(η)) = min(1, e^η/λ) has a kink at η = log λ."""
    left, right = _kink()
    fit = best_gate_product_fit(lambda e: np.minimum(1.0, np.exp(e)), gate)
    obstruction = left != right
    if obstruction and fit.max_error <= EXACT:
        raise RuntimeError(f"a {gate} fit matched a function with a kink")
    reason = {
        "sigmoid": "sigmoid products are analytic in η, so their slope is continuous",
        "sqrt": "a σ_D product that is positive on the whole range has every argument < 0 there, "
        "where σ_D is analytic (σ_D' = −eˣ/(2σ_D) is finite), so its slope is continuous; a "
        "factor that reaches 0 inside the range makes the product 0 where c* > 0",
    }[gate]
    name = {"sigmoid": "σ_E", "sqrt": "σ_D"}[gate]
    return make_claim(
        f"T1.b.covariance.{gate}",
        f"reading (b): {name}-gated two-layer diagonal C(η) represents c*(D*(η)) = min(1, e^η/λ)",
        not obstruction,
        source="paper" if gate == "sigmoid" else "linvae",
        method=COUNTEREXAMPLE,
        evidence=f"λ = 1: the η-slope of min(1, e^η) jumps from {show(left)} to {show(right)} at "
        f"η = 0; {reason}; " + _fit_text(fit),
    )


def claim_b_covariance_hinge():
    """Reading (b), hinge gates min(1, eˣ): c*(D*(η)) exactly, when D*ᵀD* is diagonal."""
    ok = True
    for U, _, patterns in (*FRAMES, (_U, None, _WITH_ZERO)):
        for _, lam in patterns:
            c_star = _joint_optimum(lam, sp.eye(len(lam)), U)[1]
            gates = [1 if li == 0 else sym_hinge(_eta - sp.log(li)) for li in lam]
            constant = sym_hinge(sp.Integer(0))  # C⁽²⁾ = I with t = p = 0, base I
            ok &= is_zero(sp.Matrix(gates) * constant - c_star)
    return make_claim(
        "T1.b.covariance.hinge",
        "reading (b): hinge-gated C⁽¹⁾ = min(1, e^{η−ξᵢ}) with C⁽²⁾ = I gives c*(D*(η)) "
        "(R = I or a signed permutation)",
        ok,
        source="linvae",
        method=PROVED,
        evidence="min(1, e^η/λ) equals β/(diag(D*ᵀD*) + β) identically in every pattern (d = 3, "
        "k = 2 and d = 4, k = 3), with "
        "c* = 1 (constant gate) where λᵢ = 0; the hinge min(1, eˣ) = 1 − σ_D(x)² is not in the paper",
        assumptions="R keeps D*ᵀD* diagonal, as the joint optimum requires (A1.eq23)",
    )


def claim_b_covariance_rotation():
    """With a generic R, c*(D*(η)) mixes directions and no hinge product follows it."""
    R = rational_rotation(sp.Rational(1, 2))  # [[3/5, −4/5], [4/5, 3/5]]
    lam = (sp.Integer(4), sp.Integer(2))
    beta = sp.Symbol("beta", positive=True)
    # on 2 < β < 4 only λ₁ is active: diag(D*ᵀD*)₁ = R₁₁²(4 − β)
    c1 = sp.cancel(beta / (beta + R[0, 0] ** 2 * (lam[0] - beta)))
    eta = sp.Symbol("eta", real=True)
    curvature = sp.cancel(sp.diff(sp.log(c1.subs(beta, sp.exp(eta))), eta, 2).subs(eta, sp.log(3)))
    return make_claim(
        "T1.b.covariance.rotation",
        "reading (b) with a generic rotation R: hinge gates represent c*(D*(η)) = "
        "β/(β + Σⱼ Rⱼᵢ²(λⱼ − β)⁺)",
        bool(curvature == 0),
        source="linvae",
        method=COUNTEREXAMPLE,
        evidence=f"λ = (4, 2), R = [[3/5, −4/5], [4/5, 3/5]]: on 2 < β < 4, c*₁ = {show(c1)} and "
        f"d²/dη² log c*₁ at β = 3 is {show(curvature)} ≠ 0, while log of a product of hinge gates, "
        "Σ min(0, hη + q), is piecewise linear in η; such an R is not optimal anyway (A1.eq23)",
    )


def claim_a_sqrt(kind):
    """Reading (a) with σ_D gates: the smooth best responses are not σ_D products."""
    if kind == "encoder":
        target = lambda e: 1.0 / (1.0 + np.exp(e))  # noqa: E731  s/(s² + β) at s = 1
        formula, name = "E*(η) = s/(s² + e^η) at s = 1", "E*(η) = B(S² + e^η I)⁻¹SAᵀ"
    else:
        target = lambda e: np.exp(e) / (1.0 + np.exp(e))  # noqa: E731  β/(g + β) at g = 1
        formula, name = "C*(η) = e^η/(g + e^η) at g = 1", "C*(η) = e^η(diag(DᵀD) + e^η I)⁻¹"
    fit = best_gate_product_fit(target, "sqrt")
    return make_claim(
        f"T1.a.{kind}.sqrt",
        f"reading (a): σ_D-gated two-layer parameterisation represents {name}",
        bool(fit.max_error <= EXACT),
        source="linvae",
        method=NUMERIC_WITNESS,
        evidence=f"k = 1, {formula}: " + _fit_text(fit) + "; reason: with x = e^η the squared "
        "product K²Π(1 − αⱼx^{hⱼ}) is a finite sum of powers of x, and (s² + x)²·(sum) = const "
        "(resp. x² = (g + x)²·(sum)) is impossible on an interval: compare the extreme exponents",
    )


def claim_a_covariance_hinge():
    """Reading (a) with hinge gates: log C*(η) is curved in η, log of a hinge product is not."""
    eta = sp.Symbol("eta", real=True)
    g = sp.Symbol("g", positive=True)
    curvature = sp.factor(sp.diff(sp.log(sp.exp(eta) / (g + sp.exp(eta))), eta, 2))
    witness = curvature.subs({g: 1, eta: 0})
    return make_claim(
        "T1.a.covariance.hinge",
        "reading (a): hinge-gated two-layer diagonal C(η) represents C*(η) = e^η/(g + e^η)",
        bool(witness == 0),
        source="linvae",
        method=COUNTEREXAMPLE,
        evidence=f"d²/dη² log C*(η) = {show(curvature)}, = {show(witness)} at g = 1, η = 0, while "
        "log of a product of hinge gates, Σ min(0, hη + q) + const, is piecewise linear in η: "
        "the hinge fixes reading (b) but breaks reading (a)",
    )


def claim_composition():
    """Reading (a)'s E built from a fixed D is not the joint optimum once D = D*(η) moves."""
    lam, beta0, beta = sp.Integer(4), sp.Integer(1), sp.Integer(2)
    s = sp.sqrt(lam - beta0)  # singular value of D*(η₀) (k = 1)
    reading_a = s / (s**2 + beta)  # eqs. 25-28 built at η₀, evaluated at η
    joint = sp.sqrt(lam - beta) / lam  # E*(D*(η))
    as_written = is_zero(reading_a - joint)
    corrected = all(
        claim().verdict == "holds" for claim in (claim_b_encoder_sqrt, claim_b_covariance_hinge)
    )
    return make_claim(
        "T1.composition",
        "the encoder, covariance and decoder constructions together give the joint optimum "
        "(E*, C*, D*)(η) for all η",
        as_written,
        corrected,
        method=COUNTEREXAMPLE,
        evidence=f"k = 1, λ = 4: the encoder of eqs. 25-28 built for D*(η₀ = 0) gives at β = 2 "
        f"E = {show(reading_a)}, the joint optimum is E*(D*(η)) = {show(joint)}; with the "
        "reading-(b) layers (T1.b.encoder.sqrt, T1.b.covariance.hinge) and eqs. 37-39 it holds",
        correction="the appendix's E and C are best responses to a fixed D (reading (a)); for the "
        "joint optimum the encoder needs σ_D gates and the covariance hinge gates",
    )


CLAIMS = (
    claim_eq24,
    claim_eq25_28,
    claim_zero_singular_value,
    claim_eq29_32,
    claim_constant_layers,
    claim_eq34,
    claim_eq37_39,
    claim_zero_eigenvalue,
    partial(claim_a_sqrt, "encoder"),
    partial(claim_a_sqrt, "covariance"),
    claim_a_covariance_hinge,
    claim_b_encoder_sigmoid,
    claim_b_encoder_sqrt,
    partial(claim_b_covariance, "sigmoid"),
    partial(claim_b_covariance, "sqrt"),
    claim_b_covariance_hinge,
    claim_b_covariance_rotation,
    claim_decoder_sigmoid,
    claim_composition,
)
