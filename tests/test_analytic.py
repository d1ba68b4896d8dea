"""Mathematics of linvae.analytic: identities, optimality, invariances and reference values."""

import numpy as np
import pytest
import scipy.optimize
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import betas, orthogonal_matrices, spd_covariances, spectra_with_ties

from linvae.analytic import (
    LinearVAEParams,
    Spectrum,
    check_moments,
    covariance_factor,
    covariance_optimum,
    decoder_optimum,
    empirical_objective,
    encoder_optimum,
    gradients,
    moments,
    objective,
    objective_terms,
    optimum,
    parse_betas,
    rank,
    rate_distortion,
    spectrum,
)

LOG_2PI = np.log(2 * np.pi)


def relative_gap(a, b):
    """max |a - b| / max(|a|, |b|, tiny), elementwise over arrays."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), np.finfo(float).tiny)
    return float(np.max(np.abs(a - b) / scale))


@st.composite
def problems(draw, max_dim=7):
    """(cov (d, d), eigvals (d,), k, β): a covariance with zeros and ties, any k, any β."""
    cov, eigvals = draw(spd_covariances(max_dim=max_dim))
    k = draw(st.integers(1, eigvals.shape[0]))
    beta = draw(betas())
    return cov, eigvals, k, beta


def loss_by_residual(params, mean, cov, beta, b=None):
    """The loss written independently of linvae, its squared error as tr((I-DE) S (I-DE)ᵀ)."""
    E, c, D = params
    d, k = D.shape
    b = mean if b is None else b
    M = np.eye(d) - D @ E
    residual = np.trace(M @ cov @ M.T) + np.trace(D @ np.diag(c) @ D.T) + np.sum((mean - b) ** 2)
    rate = 0.5 * (-np.sum(np.log(c)) + np.trace(E @ cov @ E.T) + np.sum(c) - k)
    return 0.5 * d * LOG_2PI + 0.5 * residual + beta * rate


# --- reference values -------------------------------------------------------------------


def test_reference_values_worked_by_hand():
    # S = diag(4, 1), k = 1, β = 2: one active direction with λ = 4 > β.
    # By hand: rate = ½ log(4/2); squared error = β + the dropped λ = 2 + 1;
    # distortion = (2/2) log 2π + ½·3; loss = distortion + 2·½ log 2.
    cov = np.diag([4.0, 1.0])
    terms = objective(optimum(cov, 1, 2.0), np.zeros(2), cov, 2.0)
    assert terms.rate == pytest.approx(0.5 * np.log(2.0), rel=1e-14)
    assert terms.distortion == pytest.approx(LOG_2PI + 1.5, rel=1e-14)
    assert terms.loss == pytest.approx(LOG_2PI + 1.5 + np.log(2.0), rel=1e-14)


def test_reference_optimum_worked_by_hand():
    # S = diag(4, 1), k = 2, β = 2: D* = diag(√2, 0); E* = diag(√2/4, 0); c* = (2/4, 1).
    params = optimum(np.diag([4.0, 1.0]), 2, 2.0)
    assert np.allclose(np.abs(params.D), np.diag([np.sqrt(2.0), 0.0]), rtol=0, atol=1e-15)
    assert np.allclose(np.abs(params.E), np.diag([np.sqrt(2.0) / 4, 0.0]), rtol=0, atol=1e-15)
    assert np.allclose(params.c, [0.5, 1.0], rtol=1e-15)


# --- moments and spectrum -------------------------------------------------------------


@given(
    st.integers(2, 300),
    st.integers(1, 6),
    st.integers(1, 400),
    st.floats(-1e8, 1e8),
    st.integers(0, 2**32 - 1),
)
def test_moments_equal_the_two_pass_centred_formula(n, d, chunk_size, offset, seed):
    X = np.random.default_rng(seed).standard_normal((n, d)) + offset
    stats = moments(X, chunk_size=chunk_size)
    mean = X.mean(axis=0)
    centred = X - mean
    assert stats.n == n
    # The data themselves are rounded at eps·|offset|; both formulas inherit that much. The
    # one-pass E[xxᵀ] - mmᵀ would be off by eps·offset² (1e-2 at offset 1e7): Chan's update is not.
    resolution = 10 * np.finfo(float).eps * abs(offset)
    np.testing.assert_allclose(stats.mean, mean, rtol=1e-12, atol=resolution)
    np.testing.assert_allclose(
        stats.cov, centred.T @ centred / n, rtol=1e-10, atol=1e-12 + resolution
    )


def test_moments_read_a_memory_mapped_npy_chunk_by_chunk(tmp_path):
    X = np.random.default_rng(1).integers(0, 256, size=(1000, 5)).astype(np.uint8)
    np.save(tmp_path / "x.npy", X)
    stats = moments(np.load(tmp_path / "x.npy", mmap_mode="r"), chunk_size=64)
    reference = np.cov(X.astype(np.float64).T, bias=True)
    np.testing.assert_allclose(stats.cov, reference, rtol=1e-12)


@given(spd_covariances())
def test_spectrum_reconstructs_the_covariance(case):
    cov, eigvals = case
    spec = spectrum(cov)
    assert np.all(np.diff(spec.eigvals) <= 0) and np.all(spec.eigvals >= 0)
    scale = max(eigvals.max(), 1e-300)
    np.testing.assert_allclose(spec.eigvals, eigvals, rtol=0, atol=1e-12 * scale)
    rebuilt = (spec.eigvecs * spec.eigvals) @ spec.eigvecs.T
    np.testing.assert_allclose(rebuilt, cov, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(spec.eigvecs.T @ spec.eigvecs, np.eye(len(eigvals)), atol=1e-12)


def test_spectrum_sets_round_off_negatives_to_zero():
    cov = np.diag([2.0, 1.0, -1e-17])
    spec = spectrum(cov)
    assert spec.eigvals[-1] == 0.0
    assert rank(spec) == 2


# --- the optimum ----------------------------------------------------------------------


def _gradient_scales(params, cov, beta):
    """The size of the terms each gradient is a difference of, for a relative tolerance."""
    E, c, D = params
    nS, nE, nD = np.linalg.norm(cov, 2), np.linalg.norm(E, 2), np.linalg.norm(D, 2)
    return (
        (nD * nD * nE + beta * nE + nD) * nS,
        0.5 * nD * nD + 0.5 * beta * (1 + 1 / c),
        nD * (nE * nE * nS + c.max()) + nS * nE,
    )


@given(problems())
def test_gradients_vanish_at_the_optimum(problem):
    cov, _, k, beta = problem
    params = optimum(cov, k, beta)
    grads = gradients(params, cov, beta)
    scale_E, scale_c, scale_D = _gradient_scales(params, cov, beta)
    assert np.max(np.abs(grads.E)) <= 1e-9 * max(scale_E, 1e-300)
    assert np.all(np.abs(grads.c) <= 1e-9 * scale_c)
    assert np.max(np.abs(grads.D)) <= 1e-9 * max(scale_D, 1e-300)


@given(problems())
def test_optimum_is_the_best_response_to_its_own_decoder(problem):
    cov, _, k, beta = problem
    params = optimum(cov, k, beta)
    E_scale = max(np.abs(params.E).max(), 1e-300)
    np.testing.assert_allclose(
        encoder_optimum(params.D, beta), params.E, rtol=0, atol=1e-10 * E_scale
    )
    np.testing.assert_allclose(covariance_optimum(params.D, beta), params.c, rtol=1e-12)
    np.testing.assert_allclose(decoder_optimum(cov, k, beta), params.D, rtol=0, atol=0)


@given(problems(), st.integers(0, 2**32 - 1))
def test_no_perturbation_lowers_the_loss(problem, seed):
    cov, _, k, beta = problem
    d = cov.shape[0]
    mean = np.zeros(d)
    params = optimum(cov, k, beta)
    best = objective(params, mean, cov, beta).loss
    rng = np.random.default_rng(seed)
    for size in (1e-6, 1e-3, 1e-1):
        E = params.E + size * rng.standard_normal(params.E.shape)
        D = params.D + size * rng.standard_normal(params.D.shape)
        c = params.c * np.exp(size * rng.standard_normal(k))
        perturbed = objective(LinearVAEParams(E, c, D), mean, cov, beta).loss
        assert perturbed >= best - 1e-12 * abs(best)


def _lbfgs_best_loss(cov, k, beta, seed, starts=3):
    """Lowest loss scipy's L-BFGS finds over (E, log c, D) from random starts."""
    d = cov.shape[0]
    mean = np.zeros(d)
    rng = np.random.default_rng(seed)

    def unpack(theta):
        E = theta[: k * d].reshape(k, d)
        log_c = theta[k * d : k * d + k]
        D = theta[k * d + k :].reshape(d, k)
        return LinearVAEParams(E, np.exp(log_c), D)

    def loss_and_grad(theta):
        params = unpack(theta)
        grads = gradients(params, cov, beta)
        value = objective(params, mean, cov, beta).loss
        return value, np.concatenate([grads.E.ravel(), grads.c * params.c, grads.D.ravel()])

    # log c is kept in [-30, 30] so that c stays a positive float64
    bounds = [(None, None)] * (k * d) + [(-30.0, 30.0)] * k + [(None, None)] * (d * k)
    best = np.inf
    for _ in range(starts):
        theta0 = rng.standard_normal(k * d + k + d * k)
        result = scipy.optimize.minimize(
            loss_and_grad,
            theta0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 1000, "ftol": 1e-15, "gtol": 1e-10},
        )
        best = min(best, result.fun)
    return best


@settings(max_examples=10)
@given(spectra_with_ties(max_dim=4), st.data())
def test_lbfgs_never_finds_a_lower_loss(eigvals, data):
    # The loss is invariant under an orthogonal change of the data basis, so a diagonal
    # covariance loses no generality, and it is exactly PSD in float64: a rotated one carries
    # round-off eigenvalues of -1e-12 that an optimiser exploits with huge encoder rows.
    cov = np.diag(eigvals)
    k = data.draw(st.integers(1, eigvals.shape[0]), label="k")
    beta = data.draw(betas(1e-2, 1e2), label="beta")
    analytic = objective(optimum(cov, k, beta), np.zeros(len(eigvals)), cov, beta).loss
    found = _lbfgs_best_loss(cov, k, beta, seed=data.draw(st.integers(0, 2**16), label="seed"))
    assert found >= analytic - 1e-10 * (abs(analytic) + np.trace(cov))


# --- the objective --------------------------------------------------------------------


def _any_linear_vae(data, d):
    """``(params, mean, b, β)``: a random linear VAE of k ≤ d latents, data mean, decoder
    bias and β, seeded by hypothesis."""
    k = data.draw(st.integers(1, d), label="k")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    params = LinearVAEParams(
        rng.standard_normal((k, d)), np.exp(rng.standard_normal(k)), rng.standard_normal((d, k))
    )
    mean, b = rng.standard_normal(d), rng.standard_normal(d)
    return params, mean, b, data.draw(betas(1e-2, 1e2), label="beta")


@given(spd_covariances(max_dim=6), st.data())
def test_objective_equals_the_residual_form(case, data):
    cov, eigvals = case
    params, mean, b, beta = _any_linear_vae(data, eigvals.shape[0])
    terms = objective(params, mean, cov, beta, decoder_bias=b)
    expected = loss_by_residual(params, mean, cov, beta, b)
    scale = (
        abs(expected)
        + np.abs(cov).max() * (1 + np.abs(params.D).max() * np.abs(params.E).max()) ** 2
    )
    assert abs(terms.loss - expected) <= 1e-11 * scale
    assert terms.loss == pytest.approx(terms.distortion + beta * terms.rate, rel=1e-14)


@given(spd_covariances(max_dim=6))
def test_the_covariance_factor_reproduces_the_covariance(case):
    cov, eigvals = case
    F = covariance_factor(cov)
    assert F.shape[0] == cov.shape[0] and F.shape[1] <= cov.shape[0]
    np.testing.assert_allclose(F @ F.T, cov, atol=1e-12 * max(1.0, eigvals[0]))
    F = covariance_factor(cov, spectrum(cov))  # from a spectrum already at hand
    np.testing.assert_allclose(F @ F.T, cov, atol=1e-12 * max(1.0, eigvals[0]))


@given(spd_covariances(max_dim=6), st.data())
def test_the_factor_and_the_traces_give_the_same_terms(case, data):
    """Through a factor F Fᵀ = S the traces are sums of squares; mathematically the same."""
    cov, eigvals = case
    d = eigvals.shape[0]
    (E, c, D), mean, b, beta = _any_linear_vae(data, d)
    mean, cov = check_moments(mean, cov)
    traces = objective_terms(E, c, D, mean, cov, beta, b)
    squares = objective_terms(E, c, D, mean, cov, beta, b, factor=covariance_factor(cov))
    scale = 1 + max(1.0, eigvals[0]) * (1 + np.abs(D).max() * np.abs(E).max()) ** 2 * d**2
    assert abs(traces.squared_error - squares.squared_error) <= 1e-11 * scale
    assert abs(traces.rate - squares.rate) <= 1e-11 * scale


def test_through_the_factor_no_model_evaluates_below_the_optimum():
    """A covariance of rank 4 in d = 6 over 6 decades, its zeros round-off of ±1e-13 once
    rotated: an encoder with weights up to 1e4 along a null direction is a worse model,
    and through the factor (the residual of a positive semidefinite covariance) its loss is
    never below the analytic optimum, where the cancelling traces are free to be."""
    V, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((6, 6)))
    eigvals = np.array([1e4, 1e2, 1.0, 1e-2, 0.0, 0.0])
    mean, cov = check_moments(np.zeros(6), (V * eigvals) @ V.T)
    cov = (cov + cov.T) / 2
    beta = 0.005
    best = rate_distortion(spectrum(cov).eigvals, 4, [beta]).loss[0]
    params = optimum(cov, 4, beta)
    factor = covariance_factor(cov)
    for weight in 10.0 ** np.arange(0, 5):
        E = params.E + weight * np.outer(np.ones(4), V[:, 4])
        terms = objective_terms(E, params.c, params.D, mean, cov, beta, mean, factor=factor)
        assert terms.loss >= best - 1e-12 * abs(best), weight


def test_objective_gradients_match_float64_autograd():
    rng = np.random.default_rng(7)
    d, k, beta = 5, 3, 0.7
    A = rng.standard_normal((d, d))
    cov = A @ A.T / d
    params = LinearVAEParams(
        rng.standard_normal((k, d)), np.exp(rng.standard_normal(k)), rng.standard_normal((d, k))
    )
    E, c, D = (torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in params)
    S = torch.tensor(cov, dtype=torch.float64)
    M = torch.eye(d, dtype=torch.float64) - D @ E
    loss = 0.5 * (torch.trace(M @ S @ M.T) + torch.trace(D @ torch.diag(c) @ D.T)) + beta * 0.5 * (
        -torch.log(c).sum() + torch.trace(E @ S @ E.T) + c.sum() - k
    )
    loss.backward()
    grads = gradients(params, cov, beta)
    np.testing.assert_allclose(grads.E, E.grad.numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(grads.c, c.grad.numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(grads.D, D.grad.numpy(), rtol=1e-12, atol=1e-13)


def test_monte_carlo_estimate_agrees_within_its_standard_error():
    # Sampled β-VAE objective on actual data rows: x from the data, z ~ q(z|x), and the
    # per-example loss -log p(x|z) + β (log q(z|x) - log p(z)), all sampled.
    rng = np.random.default_rng(2023)
    d, k, beta, n = 6, 3, 0.5, 4000
    X = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + 3.0
    stats = moments(X)
    params = optimum(stats.cov, k, beta)
    E, c, D = params
    params = LinearVAEParams(E + 0.1 * rng.standard_normal(E.shape), c * 1.3, D)  # off-optimum
    E, c, D = params
    b = stats.mean + 0.2
    samples = []
    for _ in range(50):
        mu = (X - stats.mean) @ E.T
        eps = rng.standard_normal(mu.shape)
        z = mu + np.sqrt(c) * eps
        residual = X - z @ D.T - b
        nll = 0.5 * np.sum(residual**2, axis=1) + 0.5 * d * LOG_2PI
        log_q = -0.5 * np.sum(eps**2 + np.log(c) + LOG_2PI, axis=1)
        log_p = -0.5 * np.sum(z**2 + LOG_2PI, axis=1)
        samples.append(nll + beta * (log_q - log_p))
    samples = np.concatenate(samples)
    estimate = samples.mean()
    standard_error = samples.std(ddof=1) / np.sqrt(samples.size)
    exact = objective(params, stats.mean, stats.cov, beta, decoder_bias=b).loss
    assert abs(estimate - exact) <= 4 * standard_error
    # and the estimate is informative: the standard error is small against the loss
    assert standard_error < 0.01 * abs(exact)


def test_empirical_objective_is_objective_of_the_moments():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 4))
    stats = moments(X)
    params = optimum(stats.cov, 2, 0.3)
    assert empirical_objective(params, X, 0.3) == objective(params, stats.mean, stats.cov, 0.3)


# --- the curve ------------------------------------------------------------------------


@given(problems())
def test_curve_equals_the_objective_at_the_optimum(problem):
    cov, eigvals, k, beta = problem
    d = cov.shape[0]
    terms = objective(optimum(cov, k, beta), np.zeros(d), cov, beta)
    curve = rate_distortion(eigvals, k, [beta])
    # objective() subtracts terms of size tr(S) (= 1.5e6 in shrunk failures, against a loss
    # of 3): its round-off is eps·tr(S) in absolute terms, hence the second tolerance term.
    trace = np.trace(cov)
    assert abs(curve.loss[0] - terms.loss) <= 1e-10 * abs(terms.loss) + 1e-13 * trace
    assert (
        abs(curve.distortion[0] - terms.distortion) <= 1e-10 * abs(terms.distortion) + 1e-13 * trace
    )
    # The rate is a sum of ½log(λ/β) terms: relative to the size of those terms.
    log_scale = np.sum(np.abs(np.log(np.maximum(eigvals[:k], beta)))) + k * abs(np.log(beta))
    # (k·1e-13 absolute: the objective's -log c + tr(ESEᵀ) + c - 1 sums to 0 only up to eps)
    assert (
        abs(curve.rate[0] - terms.rate)
        <= 1e-10 * max(abs(terms.rate), 1e-3 * log_scale) + k * 1e-13
    )


@given(spectra_with_ties(), st.data())
def test_curve_is_monotone_in_beta(eigvals, data):
    k = data.draw(st.integers(1, eigvals.shape[0]), label="k")
    grid = np.geomspace(1e-4, 1e7, 200)
    curve = rate_distortion(eigvals, k, grid)
    assert np.all(np.diff(curve.rate) <= 0)
    assert np.all(np.diff(curve.distortion) >= 0)
    assert np.all(curve.rate >= 0)


@given(spectra_with_ties(), st.data())
def test_curve_is_reverse_water_filling(eigvals, data):
    # Elementwise reverse water-filling at level β over the top k, summed directly.
    k = data.draw(st.integers(1, eigvals.shape[0]), label="k")
    beta = data.draw(betas(), label="beta")
    top = eigvals[:k]
    rate = 0.5 * np.sum(np.log(np.maximum(top, beta) / beta))
    error = np.sum(np.minimum(top, beta)) + np.sum(eigvals[k:])
    curve = rate_distortion(eigvals[::-1], k, beta)  # any order of eigvals
    assert curve.distortion[0] == pytest.approx(
        0.5 * len(eigvals) * LOG_2PI + 0.5 * error, rel=1e-12
    )
    assert abs(curve.rate[0] - rate) <= 1e-12 * max(rate, 1.0) * k


def test_curve_slope_is_minus_one_over_beta():
    # Envelope theorem: d loss / dβ = rate, hence d distortion / d rate = -β along the curve.
    eigvals = np.array([9.0, 4.0, 2.5, 1.0, 0.0])
    beta, h = 1.7, 1e-6
    curve = rate_distortion(eigvals, 4, [beta - h, beta, beta + h])
    slope = (curve.distortion[2] - curve.distortion[0]) / (curve.rate[2] - curve.rate[0])
    assert slope == pytest.approx(-beta, rel=1e-6)
    dloss = (curve.loss[2] - curve.loss[0]) / (2 * h)
    assert dloss == pytest.approx(curve.rate[1], rel=1e-6)


# --- edge cases real data have -----------------------------------------------------------


def test_beta_above_every_eigenvalue_collapses_the_posterior():
    cov = np.diag([3.0, 2.0, 0.0])
    params = optimum(cov, 2, 5.0)
    assert np.all(params.D == 0) and np.all(params.E == 0) and np.all(params.c == 1)
    terms = objective(params, np.zeros(3), cov, 5.0)
    assert terms.rate == 0.0
    assert terms.distortion == pytest.approx(1.5 * LOG_2PI + 2.5, rel=1e-15)


def test_latent_larger_than_the_rank_leaves_the_extra_latents_collapsed():
    rng = np.random.default_rng(0)
    V = np.linalg.qr(rng.standard_normal((5, 5)))[0]
    cov = (V * np.array([4.0, 1.0, 0, 0, 0])) @ V.T
    params = optimum(cov, 4, 0.5)
    norms = np.linalg.norm(params.D, axis=0)
    assert np.all(norms[2:] == 0) and np.all(params.c[2:] == 1)
    assert np.count_nonzero(norms) == 2


# --- rotations of the latent space ------------------------------------------------------


@given(problems(max_dim=6), st.data())
def test_rotation_costs_exactly_the_hadamard_gap(problem, data):
    # With a diagonal posterior, rotating D* by R costs
    # β/2 (Σ log(diag(RᵀAR) + β) - log det(A + β)), A = diag(max(0, λ - β)):
    # zero when RᵀAR is diagonal, positive otherwise (Hadamard's inequality).
    cov, eigvals, k, beta = problem
    R = data.draw(orthogonal_matrices(k), label="R")
    mean = np.zeros(cov.shape[0])
    base = objective(optimum(cov, k, beta), mean, cov, beta).loss
    rotated = objective(optimum(cov, k, beta, rotation=R), mean, cov, beta).loss
    a = np.maximum(eigvals[:k] - beta, 0.0)
    diag_rotated = (R**2).T @ a
    gap = 0.5 * beta * (np.sum(np.log1p(diag_rotated / beta)) - np.sum(np.log1p(a / beta)))
    assert gap >= -1e-12 * k * (beta + a.max())  # ≥ 0 up to the round-off of diag(RᵀAR)
    assert abs((rotated - base) - gap) <= 1e-12 * (abs(base) + np.trace(cov))


@given(problems(max_dim=6), st.data())
def test_permutations_and_sign_flips_leave_the_loss_unchanged(problem, data):
    cov, _, k, beta = problem
    permutation = data.draw(st.permutations(range(k)), label="permutation")
    signs = np.array(data.draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=k, max_size=k)))
    R = np.eye(k)[:, permutation] * signs
    mean = np.zeros(cov.shape[0])
    base = objective(optimum(cov, k, beta), mean, cov, beta).loss
    rotated = objective(optimum(cov, k, beta, rotation=R), mean, cov, beta).loss
    # round-off of the objective is relative to tr(S), which it subtracts from
    assert abs(rotated - base) <= 1e-13 * (abs(base) + np.trace(cov))


def test_full_covariance_rotation_is_invariant_but_diagonal_is_not():
    # The rotated posterior N(RᵀE(x - m), RᵀCR) has the same loss; its diagonal part does not.
    cov = np.diag([5.0, 3.0, 1.0])
    beta = 0.5
    params = optimum(cov, 2, beta)
    theta = 0.3
    R = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    E, c, D = params
    full_C = R.T @ np.diag(c) @ R
    mean = np.zeros(3)
    M = np.eye(3) - D @ R @ R.T @ E
    loss_full = (
        1.5 * LOG_2PI
        + 0.5 * (np.trace(M @ cov @ M.T) + np.trace(D @ R @ full_C @ R.T @ D.T))
        + beta
        * 0.5
        * (-np.linalg.slogdet(full_C)[1] + np.trace(R.T @ E @ cov @ E.T @ R) + np.trace(full_C) - 2)
    )
    base = objective(params, mean, cov, beta).loss
    assert loss_full == pytest.approx(base, rel=1e-13)
    assert objective(optimum(cov, 2, beta, rotation=R), mean, cov, beta).loss > base + 1e-3


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.0, -1.0, np.inf, np.nan])
def test_bad_beta_is_rejected(beta):
    with pytest.raises(ValueError, match="beta must be finite and > 0"):
        optimum(np.eye(3), 2, beta)


def test_beta_of_the_wrong_type_is_rejected():
    with pytest.raises(TypeError, match="beta must be a real number"):
        optimum(np.eye(3), 2, "1.0")


@pytest.mark.parametrize("k", [0, -1])
def test_latent_size_out_of_range_is_rejected(k):
    with pytest.raises(ValueError, match=f"k must be >= 1, got {k}"):
        optimum(np.eye(3), k, 1.0)


@pytest.mark.parametrize("beta", [0.05, 0.5, 2.5])
def test_latents_beyond_the_data_dimension_are_collapsed(beta):
    # k > d: the extra latents have nothing to encode; the optimum pads them collapsed
    cov = np.diag([3.0, 1.0, 0.2])
    padded, exact = optimum(cov, 5, beta), optimum(cov, 3, beta)
    np.testing.assert_array_equal(padded.D[:, 3:], 0.0)
    np.testing.assert_array_equal(padded.E[3:], 0.0)
    np.testing.assert_array_equal(padded.c[3:], 1.0)
    np.testing.assert_array_equal(padded.D[:, :3], exact.D)
    mean = np.zeros(3)
    assert objective(padded, mean, cov, beta) == pytest.approx(
        objective(exact, mean, cov, beta), rel=1e-14
    )
    curve = rate_distortion(np.diag(cov), 5, [beta])
    assert curve.loss[0] == pytest.approx(rate_distortion(np.diag(cov), 3, [beta]).loss[0])
    assert curve.loss[0] == pytest.approx(objective(padded, mean, cov, beta).loss, rel=1e-14)


def test_latent_size_of_the_wrong_type_is_rejected():
    with pytest.raises(TypeError, match="k must be an integer"):
        optimum(np.eye(3), 2.0, 1.0)


@pytest.mark.parametrize(
    ("cov", "message"),
    [
        (np.ones((2, 3)), "cov must be square"),
        (np.array([[1.0, 0.5], [0.0, 1.0]]), "cov must be symmetric"),
        (np.diag([1.0, -0.5]), "cov must be symmetric positive semidefinite"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), "cov must be finite"),
        (np.ones(3), "cov must have 2 dimension"),
        (np.array([["a", "b"], ["c", "d"]]), "cov must be an array of real numbers"),
    ],
)
def test_bad_covariance_is_rejected(cov, message):
    error = TypeError if "real numbers" in message else ValueError
    with pytest.raises(error, match=message):
        spectrum(cov)


def test_non_psd_covariance_is_rejected_by_optimum():
    with pytest.raises(ValueError, match="positive semidefinite"):
        optimum(np.array([[1.0, 2.0], [2.0, 1.0]]), 1, 1.0)


def test_mismatched_params_are_rejected():
    params = LinearVAEParams(np.zeros((2, 3)), np.ones(2), np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"params.D must have shape \(d, k\) = \(3, 2\)"):
        objective(params, np.zeros(3), np.eye(3), 1.0)
    params = LinearVAEParams(np.zeros((2, 3)), np.ones(2), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="params have data dimension 3 but the data have d=4"):
        objective(params, np.zeros(4), np.eye(4), 1.0)
    with pytest.raises(ValueError, match=r"cov must have shape \(3, 3\) to match mean"):
        objective(params, np.zeros(3), np.eye(4), 1.0)
    with pytest.raises(ValueError, match=r"decoder_bias must have shape \(3,\)"):
        objective(params, np.zeros(3), np.eye(3), 1.0, decoder_bias=np.zeros(2))


def test_non_positive_posterior_variance_is_rejected():
    params = LinearVAEParams(np.zeros((2, 3)), np.array([1.0, 0.0]), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"params.c must be > 0"):
        objective(params, np.zeros(3), np.eye(3), 1.0)


def test_nan_in_params_is_rejected():
    params = LinearVAEParams(np.full((2, 3), np.nan), np.ones(2), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="params.E must be finite"):
        objective(params, np.zeros(3), np.eye(3), 1.0)


def test_non_orthogonal_rotation_is_rejected():
    with pytest.raises(ValueError, match="rotation must be orthogonal"):
        optimum(np.eye(3), 2, 0.1, rotation=np.array([[1.0, 0.1], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"rotation must have shape \(2, 2\)"):
        optimum(np.eye(3), 2, 0.1, rotation=np.eye(3))


def test_spectrum_records_are_checked():
    with pytest.raises(ValueError, match="cov.eigvals must be in descending order"):
        optimum(Spectrum(np.array([1.0, 2.0]), np.eye(2)), 1, 0.1)
    with pytest.raises(ValueError, match=r"cov.eigvecs must have shape \(2, 2\)"):
        optimum(Spectrum(np.array([2.0, 1.0]), np.eye(3)), 1, 0.1)


def test_bad_data_for_moments_is_rejected():
    with pytest.raises(ValueError, match="at least two examples"):
        moments(np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"X must have shape \(n, d\)"):
        moments(np.zeros(3))
    with pytest.raises(ValueError, match="X must be finite, got inf at row 5, column 1"):
        X = np.zeros((10, 2))
        X[5, 1] = np.inf
        moments(X, chunk_size=3)
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        moments(np.zeros((3, 3)), chunk_size=0)


def test_bad_curve_input_is_rejected():
    with pytest.raises(ValueError, match="eigvals must be >= 0"):
        rate_distortion(np.array([1.0, -0.5]), 1, [1.0])
    with pytest.raises(ValueError, match="betas must be > 0"):
        rate_distortion(np.array([1.0, 0.5]), 1, [1.0, 0.0])
    with pytest.raises(ValueError, match="betas must be finite"):
        rate_distortion(np.array([1.0, 0.5]), 1, [np.nan])


def test_parse_betas():
    np.testing.assert_allclose(parse_betas("0.01:10:31"), np.geomspace(0.01, 10, 31), rtol=1e-15)
    assert parse_betas("0.01:10:31")[[0, -1]].tolist() == [0.01, 10.0]
    assert parse_betas("0.5,2").tolist() == [0.5, 2.0]
    for text in ("0:1:3", "1:2", "a,b", "1:2:0", "-1,2"):
        with pytest.raises(ValueError, match="betas must be"):
            parse_betas(text)


@pytest.mark.parametrize("ulps", [-100, -1, 0, 1, 100])
def test_an_eigenvalue_within_round_off_of_beta_opens_no_latent(ulps):
    """λ₂ = β ± a few ulp of λ₁ is β: its latent shuts (rate ½ log(λ/β) = 0), whatever the
    last bits an eigensolver gives; 1e7 ulp above it, the latent opens."""
    from linvae.analytic import active_latents

    eps = np.finfo(np.float64).eps
    beta = 0.5
    counts = active_latents([2.0, beta + ulps * eps * 2.0, 0.1], 3, [beta, 0.05, 3.0])
    np.testing.assert_array_equal(counts, [1, 3, 0])
    assert active_latents([2.0, beta + 1e7 * eps * 2.0, 0.1], 3, [beta])[0] == 2
    assert active_latents([2.0, 1.0, 0.5], 1, [0.01])[0] == 1  # never more than k
