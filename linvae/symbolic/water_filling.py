"""Rate and distortion at the optimum, in closed form, and reverse water-filling.

At the optimum (E*, C*, D*) of the linear β-VAE the rate and distortion depend on the data
only through the eigenvalues λ of its covariance. Each claim is proved per activity
pattern (which λᵢ exceed β), with λᵢ = β + aᵢ (active) or λᵢ = β/(1 + uᵢ) (inactive) and
positive symbols aᵢ, uᵢ, β, at d = 3, k = 2 with S = diag(λ).
"""

import sympy as sp

from linvae.symbolic.algebra import closed_form_terms
from linvae.symbolic.claims import PROVED, is_zero, make_claim, show

_beta = sp.Symbol("beta", positive=True)
_a = sp.symbols("a1:4", positive=True)
_u = sp.symbols("u1:4", positive=True)
_l3 = sp.Symbol("l3", positive=True)
_lam_fixed = sp.symbols("L1:4", positive=True)


def _active(i):
    return _beta + _a[i]


def _inactive(i):
    return _beta / (1 + _u[i])


# Patterns of (λ₁, λ₂, λ₃) with k = 2: whether λᵢ > β, and a free tail eigenvalue.
PATTERNS = {
    "λ₁, λ₂ > β ≥ λ₃": [_active(0), _active(1), _inactive(2)],
    "λ₁ > β ≥ λ₂, λ₃": [_active(0), _inactive(1), _inactive(2)],
    "β ≥ λ₁, λ₂, λ₃": [_inactive(0), _inactive(1), _inactive(2)],
    "λ₁, λ₂ > β, λ₃ free": [_active(0), _active(1), _l3],
}


def optimum_terms(lam, k, beta):
    """Rate and distortion of (E*, C*, D*) for S = diag(lam), by eqs. 21-23 with U = R = I.

    Parameters
    ----------
    lam : list of Expr, length d
        Eigenvalues, each with a known sign of λᵢ − β (the activity pattern).
    k : int
        Latent size.
    beta : Expr
        β > 0.

    Returns
    -------
    rate, distortion, aggregate : Expr, Expr, Matrix of shape (k, k)
        The terms and the aggregate posterior covariance E S Eᵀ + C.
    """
    d = len(lam)
    D = sp.zeros(d, k)
    for i in range(k):
        if _is_active(lam[i], beta):
            D[i, i] = sp.sqrt(sp.cancel(lam[i] - beta))  # eq. 23, g(λ − β) = λ − β > 0
    M = D.T * D + beta * sp.eye(k)
    E = M.inv() * D.T  # eq. 22
    c = [beta / M[i, i] for i in range(k)]  # eq. 21
    S = sp.diag(*lam)
    rate, distortion = closed_form_terms(E, sp.Matrix(c), D, S, beta)
    return rate, distortion, E * S * E.T + sp.diag(*c)


def _is_active(value, level):
    """Whether value > level, decided exactly from the symbols' assumptions."""
    sign = sp.cancel(value - level)
    if sign.is_positive:
        return True
    if sign.is_nonpositive:
        return False
    raise ValueError(f"the sign of {value} − {level} is not decided by the assumptions")


def log_plus(value, level):
    """log⁺(value/level) = max(0, log(value/level)), the branch decided exactly."""
    return (
        sp.expand_log(sp.log(sp.cancel(value / level)), force=True)
        if _is_active(value, level)
        else 0
    )


def clipped(value, level):
    """min(value, level), the branch decided exactly."""
    return level if _is_active(value, level) else value


def closed_form_rate(lam, k, beta):
    """½ Σ_{i≤k} log⁺(λᵢ/β) for a pattern where the sign of λᵢ − β is known."""
    return sum(log_plus(lam[i], beta) for i in range(k)) / 2


def closed_form_distortion(lam, k, beta):
    """d/2·log 2π + ½(Σ_{i≤k} min(λᵢ, β) + Σ_{i>k} λᵢ) (reverse water-filling on k components)."""
    d = len(lam)
    kept = sum(clipped(lam[i], beta) for i in range(k))
    return d * sp.log(2 * sp.pi) / 2 + (kept + sum(lam[k:])) / 2


def claim_optimum_terms():
    """The closed form of rate and distortion at the optimum."""
    ok = True
    for lam in PATTERNS.values():
        rate, distortion, _ = optimum_terms(lam, 2, _beta)
        ok &= is_zero(sp.expand_log(rate - closed_form_rate(lam, 2, _beta), force=True))
        ok &= is_zero(distortion - closed_form_distortion(lam, 2, _beta))
    return make_claim(
        "RD.optimum",
        "at the optimum, rate = ½Σ_{i≤k} log⁺(λᵢ/β), distortion = d/2·log 2π + "
        "½(Σ_{i≤k} min(λᵢ, β) + Σ_{i>k} λᵢ)",
        ok,
        source="linvae",
        method=PROVED,
        evidence="rate and distortion of (E*, C*, D*) from the trace formulas (A1.objective) equal "
        "the closed forms for d = 3, k = 2 in each activity pattern: " + "; ".join(PATTERNS),
    )


def claim_aggregate_posterior():
    """The aggregate posterior at the optimum is the prior: rate = I(x; z)."""
    ok = True
    for lam in PATTERNS.values():
        _, _, aggregate = optimum_terms(lam, 2, _beta)
        ok &= is_zero(aggregate - sp.eye(2))
    return make_claim(
        "RD.aggregate",
        "at the optimum E S Eᵀ + C = I: the aggregate posterior is the prior, so for Gaussian "
        "data the rate equals the mutual information I(x; z)",
        ok,
        source="linvae",
        method=PROVED,
        evidence="E*SE*ᵀ + C* = I in every activity pattern (d = 3, k = 2); E_x KL(q‖p) = "
        "I(x; z) + KL(q(z)‖p(z)) and q(z) = N(0, ESEᵀ + C) for Gaussian x",
        assumptions="Gaussian data for the identification with I(x; z)",
    )


def claim_water_filling():
    """The optimum lies on the Gaussian R(δ) iff every active direction fits in k."""
    ok = True
    for name, lam in PATTERNS.items():
        if "free" in name:
            continue
        rate, distortion, _ = optimum_terms(lam, 2, _beta)
        mse = sp.expand(2 * (distortion - 3 * sp.log(2 * sp.pi) / 2))  # E‖x − Dz − μ‖²
        # reverse water-filling at level θ = β: δᵢ = min(θ, λᵢ), R = Σ ½ log⁺(λᵢ/θ), all i ≤ d
        delta = sum(clipped(li, _beta) for li in lam)
        gaussian_rate = sum(log_plus(li, _beta) for li in lam) / 2
        ok &= is_zero(mse - delta)
        ok &= is_zero(sp.expand_log(rate - gaussian_rate, force=True))
        # the slope dR/dδ along the curve is −1/(2θ) = −1/(2β) at fixed λ (aᵢ = λᵢ − β,
        # uᵢ = β/λᵢ − 1), wherever some direction is active (else δ does not move with β)
        fixed = {a: L - _beta for a, L in zip(_a, _lam_fixed, strict=True)}
        fixed.update({u: _beta / L - 1 for u, L in zip(_u, _lam_fixed, strict=True)})
        rate_b = sp.expand_log(rate.subs(fixed), force=True)
        mse_b = sp.cancel(mse.subs(fixed))
        if sp.diff(mse_b, _beta) != 0:
            ok &= is_zero(sp.diff(rate_b, _beta) / sp.diff(mse_b, _beta) + 1 / (2 * _beta))
    # k = 1 < 2 active directions: λ = (4, 2, 1), β = 1 lies strictly above the curve.
    lam = [sp.Integer(4), sp.Integer(2), sp.Integer(1)]
    rate, distortion, _ = optimum_terms(lam, 1, sp.Integer(1))
    mse = sp.expand(2 * (distortion - 3 * sp.log(2 * sp.pi) / 2))
    theta = sp.Rational(3, 2)  # Σ min(θ, λᵢ) = 4 = mse: 3/2 + 3/2 + 1
    water = sum(clipped(li, theta) for li in lam)
    gaussian_rate = sum(log_plus(li, theta) for li in lam) / 2
    vae_power = sp.exp(sp.logcombine(2 * rate, force=True))  # e^(2·rate), a rational here
    gaussian_power = sp.exp(sp.logcombine(2 * gaussian_rate, force=True))
    above = bool(water == mse) and vae_power.is_Rational and bool(vae_power > gaussian_power)
    return make_claim(
        "RD.water-filling",
        "when #{λᵢ > β} ≤ k the optimum lies on the Gaussian rate-distortion function at "
        "water level θ = β; with more active directions than k it lies strictly above it",
        ok and above,
        source="linvae",
        method=PROVED,
        evidence="in each pattern with #{λᵢ > β} ≤ 2: E‖x − Dz − μ‖² = Σ min(λᵢ, β), rate = "
        "Σ ½log⁺(λᵢ/β) (reverse water-filling, Cover & Thomas Thm 10.3.3) and d rate/d δ = −1/(2β); "
        f"k = 1, λ = (4, 2, 1), β = 1: δ = {mse}, θ = 3/2, e^(2·rate) = "
        f"{show(vae_power)} > e^(2·R(δ)) = {show(gaussian_power)} (an exact counterexample)",
    )


CLAIMS = (claim_optimum_terms, claim_aggregate_posterior, claim_water_filling)
