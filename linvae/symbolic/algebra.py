"""Symbolic building blocks of the linear VAE (appendix A.1, eq. 12-13), in sympy.

Everything here is exact: matrices of symbols with assumptions (``positive=True`` for
variances and β), ``Rational`` constants, and targeted ``expand``/``cancel``.
"""

from typing import NamedTuple

import sympy as sp


class LinearVAESymbols(NamedTuple):
    """Symbolic matrices of a linear VAE of data size d and latent size k.

    Attributes
    ----------
    x, mu : Matrix of shape (d, 1)
        A data point and the data mean.
    z : Matrix of shape (k, 1)
        A latent point.
    E : Matrix of shape (k, d)
        Encoder weight.
    c : Matrix of shape (k, 1)
        Diagonal of the posterior covariance C (positive symbols).
    D : Matrix of shape (d, k)
        Decoder weight.
    S : Matrix of shape (d, d)
        Symmetric data covariance (the ML covariance, divided by n).
    beta : Symbol
        β > 0.
    """

    x: sp.Matrix
    mu: sp.Matrix
    z: sp.Matrix
    E: sp.Matrix
    c: sp.Matrix
    D: sp.Matrix
    S: sp.Matrix
    beta: sp.Symbol


def linear_vae_symbols(d, k):
    """Fresh symbols for a linear VAE with data size ``d`` and latent size ``k``."""
    if not (isinstance(d, int) and isinstance(k, int) and 1 <= k <= d):
        raise ValueError(f"d and k must be integers with 1 <= k <= d, got d={d!r}, k={k!r}")
    x = sp.Matrix(d, 1, lambda i, _: sp.Symbol(f"x{i}", real=True))
    mu = sp.Matrix(d, 1, lambda i, _: sp.Symbol(f"mu{i}", real=True))
    z = sp.Matrix(k, 1, lambda i, _: sp.Symbol(f"z{i}", real=True))
    E = sp.Matrix(k, d, lambda i, j: sp.Symbol(f"E{i}{j}", real=True))
    c = sp.Matrix(k, 1, lambda i, _: sp.Symbol(f"c{i}", positive=True))
    D = sp.Matrix(d, k, lambda i, j: sp.Symbol(f"D{i}{j}", real=True))
    S = sp.Matrix(d, d, lambda i, j: sp.Symbol(f"S{min(i, j)}{max(i, j)}", real=True))
    beta = sp.Symbol("beta", positive=True)
    return LinearVAESymbols(x, mu, z, E, c, D, S, beta)


def quadratic_expectation(poly, variables, mean, cov):
    """E[poly(v)] for v with the given mean and covariance, poly of degree at most 2.

    Uses E[vᵀAv + bᵀv + a] = tr(A Σ) + mᵀAm + bᵀm + a, which holds for every distribution
    with these two moments (Gaussian or the data's empirical distribution alike).

    Parameters
    ----------
    poly : Expr
        A polynomial of total degree <= 2 in ``variables``.
    variables : Matrix of shape (n, 1)
    mean : Matrix of shape (n, 1)
    cov : Matrix of shape (n, n)

    Raises
    ------
    ValueError
        If ``poly`` has degree above 2 in ``variables``.
    """
    v = list(variables)
    degree = sp.Poly(sp.expand(poly), *v).total_degree()
    if degree > 2:
        raise ValueError(f"poly must have degree <= 2 in the variables, got degree {degree}")
    at_zero = dict.fromkeys(v, 0)
    A = sp.hessian(poly, v).subs(at_zero) / 2
    b = sp.Matrix([sp.diff(poly, s) for s in v]).subs(at_zero)
    a = poly.subs(at_zero)
    return sp.expand((A * cov).trace() + (mean.T * A * mean)[0] + (b.T * mean)[0] + a)


def kl_to_standard_normal(m, c):
    """KL(N(m, diag(c)) ‖ N(0, I)) derived from its definition E_q[log q − log p].

    Parameters
    ----------
    m : Matrix of shape (k, 1)
        Posterior mean.
    c : Matrix of shape (k, 1)
        Posterior variances (positive).
    """
    k = m.shape[0]
    z = sp.Matrix(k, 1, lambda i, _: sp.Dummy(f"z{i}", real=True))
    log_q = sum(
        -sp.log(2 * sp.pi) / 2 - sp.log(c[i]) / 2 - (z[i] - m[i]) ** 2 / (2 * c[i])
        for i in range(k)
    )
    log_p = sum(-sp.log(2 * sp.pi) / 2 - z[i] ** 2 / 2 for i in range(k))
    return quadratic_expectation(log_q - log_p, z, m, sp.diag(*c))


def gaussian_log_likelihood(x, mean):
    """log N(x; mean, I) written from the density (eq. 12 with σ² = 1)."""
    r = x - mean
    return -(r.T * r)[0] / 2 - x.shape[0] * sp.log(2 * sp.pi) / 2


def expected_terms(E, c, D, S, beta):
    """Rate and distortion of a linear VAE, in expectation over data with covariance S.

    The data's mean μ is the decoder bias (μ = μ_MLE). Derived here by two exact
    expectations: over q(z|x) = N(E(x−μ), diag(c)) and over x with E[(x−μ)(x−μ)ᵀ] = S.

    Returns
    -------
    rate, distortion : Expr
        E_x KL(q(z|x) ‖ N(0, I)) and E_x E_q[−log p(x|z)] (with the d/2·log 2π constant).
    """
    d, k = D.shape
    x = sp.Matrix(d, 1, lambda i, _: sp.Dummy(f"x{i}", real=True))
    z = sp.Matrix(k, 1, lambda i, _: sp.Dummy(f"z{i}", real=True))
    m = E * x  # posterior mean with the data centred (μ = 0 without loss of generality)
    neg_loglik = -gaussian_log_likelihood(x, D * z)
    distortion_x = quadratic_expectation(neg_loglik, z, m, sp.diag(*c))
    zero = sp.zeros(d, 1)
    distortion = quadratic_expectation(distortion_x, x, zero, S)
    rate = quadratic_expectation(kl_to_standard_normal(m, c), x, zero, S)
    return rate, distortion


def closed_form_terms(E, c, D, S, beta):
    """The per-example rate and distortion as the trace formulas of eqs. 14 and 17-18.

    rate = ½(−log det C + tr(E S Eᵀ) + tr C − k) and distortion =
    ½(tr(D C Dᵀ) + tr(D E S Eᵀ Dᵀ) − 2 tr(D E S) + tr S) + d/2·log 2π.
    """
    d, k = D.shape
    C = sp.diag(*c)
    rate = (-sum(sp.log(ci) for ci in c) + (E * S * E.T).trace() + C.trace() - k) / 2
    distortion = (
        (D * C * D.T).trace() + (D * E * S * E.T * D.T).trace() - 2 * (D * E * S).trace()
    ) / 2 + S.trace() / 2
    distortion += d * sp.log(2 * sp.pi) / 2
    return sp.expand(rate), sp.expand(distortion)


def rational_rotation(t):
    """The 2×2 rotation [[a, −b], [b, a]] with a = (1 − t²)/(1 + t²), b = 2t/(1 + t²).

    Exact for rational t (Cayley's parametrisation); t = 1/2 gives the (3/5, 4/5) rotation.
    """
    t = sp.nsimplify(t)
    a = (1 - t**2) / (1 + t**2)
    b = 2 * t / (1 + t**2)
    return sp.Matrix([[a, -b], [b, a]])


def rational_orthogonal(n, params):
    """An exact n×n orthogonal matrix (I − K)(I + K)⁻¹ from a skew-symmetric K.

    ``params`` fills the strict upper triangle of K (n(n−1)/2 rationals or symbols).
    """
    if len(params) != n * (n - 1) // 2:
        raise ValueError(
            f"params must have {n * (n - 1) // 2} entries for n={n}, got {len(params)}"
        )
    K = sp.zeros(n, n)
    it = iter(params)
    for i in range(n):
        for j in range(i + 1, n):
            K[i, j] = sp.nsimplify(next(it))
            K[j, i] = -K[i, j]
    return ((sp.eye(n) - K) * (sp.eye(n) + K).inv()).applyfunc(sp.cancel)
