"""linvae.audit: planted gaps known in closed form, the chain's identities, geometry, statuses."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import audit_problems, betas, spd_covariances

from linvae.analytic import (
    LinearVAEParams,
    Moments,
    Spectrum,
    objective,
    optimum,
    rate_distortion,
    spectrum,
)
from linvae.audit import audit
from linvae.audit._geometry import TIE_TOLERANCE, decoder_geometry

LOG_2PI = np.log(2 * np.pi)
EPS = np.finfo(np.float64).eps


def diagonal_problem(eigvals):
    """(Moments with cov = V diag(λ) Vᵀ for a fixed rotation V, V, d)."""
    eigvals = np.asarray(eigvals, dtype=np.float64)
    d = eigvals.shape[0]
    rng = np.random.default_rng(7)
    V, _ = np.linalg.qr(rng.standard_normal((d, d)))
    cov = (V * eigvals) @ V.T
    mean = rng.standard_normal(d)
    return Moments(mean, (cov + cov.T) / 2, 100), V


def assert_parts(result, encoder, bias, decoder, rtol=1e-10):
    """The planted parts, to ``rtol`` of the round-off scale tr S + |loss| + |optimum|."""
    tol = rtol * result.roundoff_scale
    assert abs(result.encoder - encoder) <= tol
    assert abs(result.bias - bias) <= tol
    assert abs(result.decoder - decoder) <= tol
    assert abs(result.excess - (encoder + bias + decoder)) <= tol


SPECTRUM = [5.0, 3.0, 2.0, 0.5, 0.1, 0.0]


# --- planted gaps ----------------------------------------------------------------------


@pytest.mark.parametrize("scale", [0.0, 0.5, 2.0, 3.0])
def test_scaled_encoder_of_the_optimal_decoder_is_all_encoder_part(scale):
    # E = α E*: the gap is ½ tr(A ΔE S ΔEᵀ) with A = diag(λ) on active directions, so by hand
    # ½ (α − 1)² Σ_i s_i² λ_i / (s_i² + β) = ½ (α − 1)² Σ_{i≤k} (λ_i − β)⁺.
    beta, k = 1.0, 4
    stats, _ = diagonal_problem(SPECTRUM)
    best = optimum(stats.cov, k, beta)
    result = audit(LinearVAEParams(scale * best.E, best.c, best.D), stats, beta)
    planted = 0.5 * (scale - 1.0) ** 2 * sum(max(lam - beta, 0.0) for lam in SPECTRUM[:k])
    assert_parts(result, planted, 0.0, 0.0)
    # c = c* and t = t* = 0 in exact arithmetic; computed, c and c* (two formulas for
    # β/(‖D_j‖² + β)) differ in the last bits, and ½β Σ_j ((c/c* − 1) − log(c/c*)) keeps an
    # error of a few ε per latent: measured 0 (default kernel) and βkε/16 = 5.6e-17
    # (OpenBLAS Sandybridge); bounded by ½β·k·(8ε), 64× the larger.
    roundoff = 4 * beta * k * EPS
    assert 0.0 <= result.encoder_offset <= roundoff
    assert 0.0 <= result.encoder_variance <= roundoff


def test_rotated_encoder_of_the_optimal_decoder_is_all_encoder_part():
    # E = Q E* for a rotation Q of the latents: the whole excess is the encoder's, and it
    # equals the loss difference that linvae.analytic.objective computes independently.
    beta, k = 0.3, 3
    stats, _ = diagonal_problem(SPECTRUM)
    best = optimum(stats.cov, k, beta)
    angle = 0.4
    Q = np.eye(k)
    Q[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    params = LinearVAEParams(Q @ best.E, best.c, best.D)
    planted = (
        objective(params, stats.mean, stats.cov, beta).loss
        - objective(best, stats.mean, stats.cov, beta).loss
    )
    assert planted > 0.01
    assert_parts(audit(params, stats, beta), planted, 0.0, 0.0)


def test_variance_off_its_best_response_costs_half_beta_phi():
    # c = u c*: the encoder variance part is ½β Σ_j (u − 1 − log u), by hand.
    beta, k, u = 0.5, 3, 1.7
    stats, _ = diagonal_problem(SPECTRUM)
    best = optimum(stats.cov, k, beta)
    result = audit(LinearVAEParams(best.E, u * best.c, best.D), stats, beta)
    planted = 0.5 * beta * k * (u - 1.0 - np.log(u))
    assert_parts(result, planted, 0.0, 0.0)
    assert abs(result.encoder_variance - planted) <= 1e-12 * result.roundoff_scale


def test_wrong_subspace_decoder_with_its_best_encoder_is_all_decoder_part():
    # D spans eigenvectors 4, 5 (λ = 0.5, 0.1) with scales σ; E, c its best responses.
    # By hand, per used direction of eigenvalue μ: squared error μβ²/(σ²+β)² + βσ²/(σ²+β),
    # rate ½(log((σ²+β)/β) + σ²μ/(σ²+β)² + β/(σ²+β) − 1); every other direction keeps λ.
    beta = 0.05
    stats, V = diagonal_problem(SPECTRUM)
    sigma = np.array([0.9, 0.2])
    used = [3, 4]
    D = V[:, used] * sigma
    E = (V[:, used] * (sigma / (sigma**2 + beta))).T
    c = beta / (sigma**2 + beta)
    mu = np.array(SPECTRUM)[used]
    a = sigma**2 + beta
    error = mu * beta**2 / a**2 + beta * sigma**2 / a
    rate = 0.5 * (np.log(a / beta) + sigma**2 * mu / a**2 + beta / a - 1.0)
    kept = sum(SPECTRUM) - mu.sum()
    loss = 3 * LOG_2PI + 0.5 * (kept + error.sum()) + beta * rate.sum()
    best_loss = rate_distortion(SPECTRUM, 2, beta).loss[0]
    result = audit(LinearVAEParams(E, c, D), stats, beta)
    assert_parts(result, 0.0, 0.0, loss - best_loss)
    assert abs(result.loss.loss - loss) <= 1e-12 * result.roundoff_scale
    # range(D) ⟂ the top-2 subspace: both principal angles are π/2
    np.testing.assert_allclose(result.geometry.principal_angles, [np.pi / 2] * 2, rtol=1e-12)


def test_collapsed_active_latent_costs_half_beta_phi_of_lambda_over_beta():
    # Zero the column, row and set c = 1 for an active direction i of the optimum: the decoder
    # part is its loss ½λ minus its optimal ½β + ½β log(λ/β): ½β φ(λ/β), φ(u) = u − 1 − log u.
    beta, k, i = 0.6, 4, 1  # β off every eigenvalue: λ = β is the edge tested below
    stats, _ = diagonal_problem(SPECTRUM)
    best = optimum(stats.cov, k, beta)
    E, c, D = best.E.copy(), best.c.copy(), best.D.copy()
    E[i], c[i], D[:, i] = 0.0, 1.0, 0.0
    result = audit(LinearVAEParams(E, c, D), stats, beta)
    ratio = SPECTRUM[i] / beta
    assert_parts(result, 0.0, 0.0, 0.5 * beta * (ratio - 1.0 - np.log(ratio)))
    # λ₄ = 0.5 < β is not active: water-filling activates 3, the model keeps 2
    assert result.statuses == ("active", "collapsed", "active", "collapsed")
    assert result.geometry.n_active == 3


def test_an_eigenvalue_equal_to_beta_is_not_active_whatever_the_round_off():
    # λ₄ = 0.5 = β: the computed λ₄ is β ± a few ε·λ₁ (measured −0.25 ε·λ₁ on the default
    # kernel, +0.1 ε·λ₁ on OpenBLAS Sandybridge; at most 1.9 ε·λ₁ over 200 rotations), so a
    # strict λ > β counted 3 or 4 by kernel. Water-filling shuts the latent at λ = β, and
    # n_active tells λ from β by the tie cutoff 1e6·ε·λ₁: 3 on every kernel, and the
    # optimum's own latents (its 4th has rate ≈ 0, collapsed) agree.
    beta, k = 0.5, 4
    stats, _ = diagonal_problem(SPECTRUM)
    result = audit(optimum(stats.cov, k, beta), stats, beta)
    assert result.geometry.n_active == 3
    assert result.n_active_latents == result.geometry.n_active
    assert result.statuses == ("active", "active", "active", "collapsed")
    # the rule on planted eigenvalues: within the cutoff of β (either side) not active,
    # beyond it active
    lam1 = SPECTRUM[0]
    D = np.zeros((6, k))
    for offset, n_active in [(-100, 3), (-1, 3), (0, 3), (1, 3), (100, 3), (1e7, 4)]:
        eigvals = np.array(SPECTRUM)
        eigvals[3] = beta + offset * EPS * lam1
        geometry = decoder_geometry(D, Spectrum(eigvals, np.eye(6)), beta)
        assert geometry.n_active == n_active, offset


def test_bias_off_the_mean_splits_between_offset_and_bias():
    # b = m + ε u_i with u_i an active eigenvector: with t = 0 the gap is ½ε²; the best
    # offset recovers ½ε²(λ−β)/λ of it (encoder part), the bias part is ½ε² β/λ.
    beta, k, i, eps = 0.5, 3, 0, 0.3
    stats, V = diagonal_problem(SPECTRUM)
    best = optimum(stats.cov, k, beta)
    result = audit(best, stats, beta, decoder_bias=stats.mean + eps * V[:, i])
    lam = SPECTRUM[i]
    assert_parts(result, 0.5 * eps**2 * (lam - beta) / lam, 0.5 * eps**2 * beta / lam, 0.0)
    assert abs(result.encoder_offset - result.encoder) <= 1e-14 * result.roundoff_scale


def test_bias_along_an_inactive_direction_is_all_bias_part():
    beta, k, i, eps = 0.5, 3, 4, 0.3  # λ₅ = 0.1 < β, and beyond k
    stats, V = diagonal_problem(SPECTRUM)
    result = audit(
        optimum(stats.cov, k, beta), stats, beta, decoder_bias=stats.mean + eps * V[:, i]
    )
    assert_parts(result, 0.0, 0.5 * eps**2, 0.0)


def test_an_offset_costs_half_its_quadratic_form_in_A():
    # t ≠ 0 at the optimum: ½ tᵀ A t with A = diag(λ_i) (active) or β (collapsed), by hand.
    beta, k = 1.0, 5
    stats, _ = diagonal_problem(SPECTRUM)
    t = np.array([0.1, -0.2, 0.3, 0.4, -0.5])
    result = audit(optimum(stats.cov, k, beta), stats, beta, encoder_offset=t)
    A = np.maximum(np.array(SPECTRUM[:k]), beta)
    assert_parts(result, 0.5 * float(t @ (A * t)), 0.0, 0.0)


def test_beta_beyond_every_eigenvalue():
    # β > λ₁: the optimum is D = 0, rate 0. A model with D = 0, E ≠ 0 and c = ½ pays the
    # encoder part ½β(tr(E S Eᵀ) + k φ(½)) and nothing else; water-filling activates nothing.
    beta, k = 10.0, 3
    stats, _ = diagonal_problem(SPECTRUM)
    E = np.arange(1.0, 19.0).reshape(3, 6) / 10
    params = LinearVAEParams(E, np.full(k, 0.5), np.zeros((6, k)))
    result = audit(params, stats, beta)
    planted = 0.5 * beta * (np.trace(E @ stats.cov @ E.T) + k * (0.5 - 1.0 - np.log(0.5)))
    assert_parts(result, planted, 0.0, 0.0)
    assert result.optimum.rate == 0.0
    assert result.geometry.n_active == 0
    assert result.geometry.decoder_rank == 0
    assert result.geometry.principal_angles.size == 0
    assert result.statuses == ("wasted", "wasted", "wasted")


def test_the_optimum_has_no_excess_and_a_wasted_latent_is_named():
    beta, k = 1.0, 4  # λ = 5, 3, 2 active; the 4th latent (λ = 0.5) collapsed
    stats, V = diagonal_problem(SPECTRUM)
    best = optimum(stats.cov, k, beta)
    result = audit(best, stats, beta)
    assert_parts(result, 0.0, 0.0, 0.0, rtol=1e-13)
    assert result.statuses == ("active", "active", "active", "collapsed")
    np.testing.assert_allclose(
        result.geometry.singular_values, result.geometry.optimal_singular_values, atol=1e-15
    )
    E = best.E.copy()
    E[3] = V[:, 3]  # the collapsed latent now encodes a direction the decoder ignores
    assert audit(LinearVAEParams(E, best.c, best.D), stats, beta).statuses[3] == "wasted"


def test_a_tie_at_the_boundary_is_flagged_and_measured_against_the_block():
    # λ = 3, 2, 2, 1 with k = 2 and β = 0.5: the top-2 subspace is any of span(u1, u_2 or u_3).
    stats, V = diagonal_problem([3.0, 2.0, 2.0, 1.0])
    scales = np.sqrt([2.5, 1.5])  # (λ − β)^½, with the "other" tied eigenvector u₃
    U = np.column_stack([V[:, 0], V[:, 2]])
    E = (U * (scales / (scales**2 + 0.5))).T  # eq. 22 for D = U diag(s)
    result = audit(LinearVAEParams(E, 0.5 / (scales**2 + 0.5), U * scales), stats, 0.5)
    assert result.geometry.ambiguous
    assert result.geometry.reference_dim == 3
    assert np.max(result.geometry.principal_angles) <= 1e-12
    assert abs(result.excess) <= 1e-13 * result.roundoff_scale


def test_latent_rates_sum_to_the_rate():
    stats, _ = diagonal_problem(SPECTRUM)
    rng = np.random.default_rng(1)
    params = LinearVAEParams(
        rng.standard_normal((3, 6)), rng.uniform(0.1, 2, 3), rng.standard_normal((6, 3))
    )
    result = audit(params, stats, 0.7, encoder_offset=rng.standard_normal(3))
    assert abs(result.latent_rates.sum() - result.loss.rate) <= 1e-13 * result.roundoff_scale


# --- properties ------------------------------------------------------------------------


@given(audit_problems())
def test_parts_are_nonnegative_and_sum_to_the_excess(problem):
    cov, mean, params, b, t, beta = problem
    result = audit(params, (mean, cov), beta, decoder_bias=b, encoder_offset=t)
    tol = 1e-10 * result.roundoff_scale
    assert result.encoder_mean >= 0.0
    assert result.encoder_offset >= 0.0
    assert result.encoder_variance >= 0.0
    assert result.bias >= 0.0
    assert result.decoder >= -tol
    assert abs(result.excess - (result.encoder + result.bias + result.decoder)) <= tol
    # the chain's losses, each from linvae.analytic.objective, are ordered
    assert result.loss.loss >= result.best_encoder_loss - tol
    assert result.best_encoder_loss >= result.best_encoder_and_bias_loss - tol


@given(spd_covariances(max_dim=6), betas(), st.data())
def test_at_the_optimum_every_part_and_every_angle_is_zero(problem, beta, data):
    cov, eigvals = problem
    k = data.draw(st.integers(1, eigvals.shape[0]))
    result = audit(optimum(cov, k, beta), (np.zeros(eigvals.shape[0]), cov), beta)
    tol = 1e-10 * result.roundoff_scale
    assert abs(result.excess) <= tol
    assert abs(result.decoder) <= tol
    assert result.encoder <= tol
    assert result.bias == 0.0
    angles = result.geometry.principal_angles
    # range(D*) is spanned by scaled eigenvectors: its computed basis is exact to
    # eps·σ_max/σ_min (perturbation of the SVD), hence the angles.
    singular = result.geometry.singular_values[: result.geometry.decoder_rank]
    if angles.size:
        assert np.max(angles) <= 1e3 * np.finfo(float).eps * singular[0] / singular[-1]
    # water-filling on the computed spectrum: a drawn λ = β may come back as β ± ulp, and
    # counts as β (not active) up to the tie cutoff 1e6·ε·λ₁
    computed = spectrum(cov).eigvals
    cutoff = TIE_TOLERANCE * computed[0]
    assert result.geometry.n_active == int(np.count_nonzero(computed[:k] - beta > cutoff))


# --- input checks and the report -------------------------------------------------------


def test_offset_of_the_wrong_shape_is_named():
    stats, _ = diagonal_problem(SPECTRUM)
    with pytest.raises(ValueError, match=r"encoder_offset must have shape \(2,\)"):
        audit(optimum(stats.cov, 2, 1.0), stats, 1.0, encoder_offset=np.zeros(3))


def test_moments_of_the_wrong_type_are_named():
    with pytest.raises(TypeError, match="moments must be a Moments"):
        audit(optimum(np.eye(2), 1, 1.0), np.eye(2), 1.0)


def test_to_dict_is_strict_json_and_summary_names_the_parts():
    from linvae._io import dumps

    stats, _ = diagonal_problem(SPECTRUM)
    result = audit(optimum(stats.cov, 3, 0.5), stats, 0.5, decoder_bias=stats.mean + 0.1)
    record = result.to_dict()
    assert set(record["parts"]) >= {"encoder", "bias", "decoder"}
    assert '"excess"' in dumps(record)
    text = result.summary()
    for word in ("excess", "encoder", "bias", "decoder", "principal angles", "latents"):
        assert word in text
