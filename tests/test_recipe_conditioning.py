"""The recipe's conditioning below the whitening ridge: spectra over many decades.

Directions of the data with variance λ far below the ridge r of Adam's whitening have
curvature λ/(λ + r) in the trained ``W``, yet at the range's bottom β ≈ r a wrong encoder
weight there costs ``‖D_j‖²/β`` times λ in excess/β. Two parts of the recipe deal with
them: the encoder starts with no weight there (``encoder_init="data"``) and the polish
whitens with the smallest ridge round-off allows (``polish_ridge=0``), after it has taken
out of the encoder what Adam put along directions of no variance, and the step forms
``E₁ S`` from ``W`` and ``P S`` (no product of ``P``'s and ``S``'s largest entries).
"""

import math

import numpy as np
import pytest
import torch

from linvae.analytic import full_grid, moments, rate_distortion, spectrum
from linvae.compare.evaluate import evaluate_model, excess_loss
from linvae.data import load
from linvae.mrvae._step import covariance_factors
from linvae.mrvae.model import LatentMRVAE, LinearMRVAE
from linvae.mrvae.objectives import exact_loss
from linvae.mrvae.recipe import (
    RIDGE_FLOOR,
    RecipeConfig,
    _drop_unexcited,
    _rewhiten,
    data_factor,
    data_factors,
    polish_budget,
    polish_form_for,
    residual_terms,
    train_recipe,
    training_range,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _constant_feature_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5)) * np.array([2.0, 1.0, 0.5, 0.2, 0.1])
    return np.insert(X, 2, 7.0, axis=1)  # d = 6, feature 2 constant: S e₂ = 0 exactly


@pytest.mark.parametrize("init", ["data", "model"])
def test_the_data_init_puts_no_encoder_weight_where_the_data_have_no_variance(init):
    X = _constant_feature_data()
    model = LatentMRVAE(6, 3, beta_range=(1e-3, 4.0), seed=0)
    config = RecipeConfig(steps=0, polish_iterations=0, encoder_init=init)
    train_recipe(model, X, config)
    E1 = model.encoder1.detach().numpy()
    along_null = np.abs(E1[:, 2]).max() / np.abs(E1).max()
    if init == "data":  # E₁ = W₀ P S (S + r·I)⁻¹: S's null column is E₁'s, to round-off
        assert along_null <= 1e-12
    else:  # W₀ P puts weight 1/√r there
        assert along_null >= 0.1


def test_rewhitening_keeps_the_encoder_and_puts_it_in_the_new_units():
    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    S = Q @ np.diag(np.logspace(0, -12, 8)) @ Q.T
    cov = torch.tensor(S)
    factors = data_factors(cov, 1e-4)
    W = torch.tensor(rng.normal(size=(3, 8)))
    before = (W @ factors.P).clone()
    _rewhiten(W, factors, cov, 0.0)
    after = W @ factors.P
    assert float((after - before).abs().max() / before.abs().max()) <= 1e-9
    ridge = RIDGE_FLOOR * float(torch.trace(cov))  # the floor: 0 is never used
    L2 = torch.linalg.inv(factors.P)
    eye = torch.eye(8, dtype=torch.float64)
    np.testing.assert_allclose((L2 @ L2.T).numpy(), (cov + ridge * eye).numpy(), atol=1e-14)


def _max_excess_per_beta(X, k, config):
    stats = moments(X)
    eigvals = spectrum(stats.cov).eigvals
    grid = full_grid(eigvals, k)
    model = LatentMRVAE(X.shape[1], k, beta_range=training_range(grid), seed=0)
    train_recipe(model, X, config)
    loss = evaluate_model(model, stats.mean, stats.cov, grid)["loss"]
    return float(np.max(excess_loss(loss, rate_distortion(eigvals, k, grid).loss) / grid))


def test_a_spectrum_over_twelve_decades_reaches_the_optimum_at_the_bottom_of_its_grid():
    """Measured in this configuration (max excess/β on the full grid): 2.6e-7 with the
    recipe's defaults; 1.6e-4 with Adam's ridge in the polish, 8.1e-7 with the model's
    initial encoder, 0.28 with both (the recipe before them)."""
    X, _ = load("gaussian", n=1000, eigvals=np.logspace(0, -12, 8), seed=0)
    short = {"steps": 600, "polish_iterations": 400, "polish_nodes": 32}
    default = _max_excess_per_beta(X, 4, RecipeConfig(**short))
    before = _max_excess_per_beta(
        X, 4, RecipeConfig(**short, polish_ridge=1.0, encoder_init="model")
    )
    assert default <= 1e-5
    assert before >= 100 * default


def test_dropping_the_unexcited_directions_keeps_the_encoder_where_the_data_vary():
    """``E₁ ← E₁ S (S + r·I)⁻¹``: nothing left along S's null space, and a direction of
    variance λ keeps λ/(λ + r) of its weight."""
    rng = np.random.default_rng(2)
    Q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    eigvals = np.array([1e6, 1e3, 1.0, 1e-3, 0.0, 0.0])
    cov = torch.tensor(Q @ np.diag(eigvals) @ Q.T)
    factors = data_factors(cov, 0.0)  # the ridge floored at round-off's, as the polish's
    W = torch.tensor(rng.normal(size=(3, 6)))
    along = (W @ factors.P).numpy() @ Q  # E₁'s weight along each eigenvector
    _drop_unexcited(W, factors)
    after = (W @ factors.P).numpy() @ Q
    kept = eigvals / (eigvals + factors.ridge)
    np.testing.assert_allclose(after[:, :4], along[:, :4] * kept[:4], rtol=1e-6)
    # S's null space in float64: variance of S's round-off, ε·1e6, against r = 1e6·ε·tr S
    assert np.abs(after[:, 4:]).max() <= 1e-5 * np.abs(along[:, 4:]).max()


def test_the_step_forms_p_s_from_the_cholesky_factor():
    """P S = Lᵀ − r P for L Lᵀ = S + r·I: the product P @ S, without its round-off."""
    rng = np.random.default_rng(3)
    Q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    cov = torch.tensor(Q @ np.diag([1e6, 1e3, 1.0, 1e-3, 0.0, 0.0]) @ Q.T)
    factors = data_factors(cov, 0.0)
    PS, SPt = covariance_factors(cov, factors.P, (factors.L, factors.ridge))
    assert torch.equal(PS, SPt.T) and PS.is_contiguous() and SPt.is_contiguous()
    product = factors.P @ cov  # the same, to the round-off of |P| |S|
    bound = 1e-14 * float(factors.P.abs().max() * cov.abs().max())
    assert float((PS - product).abs().max()) <= bound
    # and its entries are L's, bounded by √(λ₁ + r), where P @ S sums terms of |P| |S|
    assert float(PS.abs().max()) <= 1.01 * math.sqrt(1e6 + factors.ridge)


def test_a_nine_decade_spectrum_of_rank_four_reaches_the_optimum_on_its_grid():
    """Spectrum 1e6, 1e3, 1, 1e-3, 0, 0 with k = 6 (benchmarks.any_data's wide-rank4):
    measured 0.0028 max excess/β with the recipe's defaults; 12 before the polish dropped
    the encoder's unexcited directions and the step formed E₁ S from P S (the objective's
    round-off, 1 in 18, stopped the polish)."""
    X, _ = load("gaussian", n=400, eigvals=[1e6, 1e3, 1.0, 1e-3, 0.0, 0.0], seed=5)
    assert _max_excess_per_beta(X, 6, RecipeConfig()) <= 0.01


def test_the_residual_form_is_the_trace_form_and_its_gradient():
    """``residual_terms`` (sums of squares, S = F Fᵀ from the data's QR factor) against
    ``exact_loss`` (the trace form, eqs. 14–18) on a well-conditioned spectrum, where both
    are exact to round-off: the rate, the squared error and the gradient of their sum."""
    X, _ = load("gaussian", n=300, eigvals=[3.0, 2.0, 1.0, 0.5, 0.25], seed=2)
    stats = moments(X)
    mean, cov = (torch.as_tensor(a) for a in (stats.mean, stats.cov))
    F = data_factor(X, stats.mean)
    np.testing.assert_allclose((F @ F.T).numpy(), stats.cov, atol=1e-13)
    model = LatentMRVAE(5, 3, beta_range=(0.05, 5.0), seed=1)
    model.set_input_mean(stats.mean)
    eta = torch.linspace(math.log(0.05), math.log(5.0), 7, dtype=torch.float64)
    params = [model.encoder1, model.decoder2, model.log_variance]
    params += [g.bias for g in model.gate_modules()]
    bias = model.bias.detach() + 0.1  # a decoder bias off the mean: the gap term
    trace = exact_loss(model, eta, mean, cov, bias=bias)
    trace_grads = torch.autograd.grad((trace.rate + trace.squared_error).sum(), params)
    gap = (mean - bias).square().sum()
    rate, squared_error = residual_terms(model, eta, F, model.encoder1 @ F, model.decoder2, gap)
    residual_grads = torch.autograd.grad((rate + squared_error).sum(), params)
    np.testing.assert_allclose(rate.detach(), trace.rate.detach(), rtol=1e-12)
    np.testing.assert_allclose(squared_error.detach(), trace.squared_error.detach(), rtol=1e-12)
    for want, have in zip(trace_grads, residual_grads, strict=True):
        np.testing.assert_allclose(have, want, rtol=0, atol=1e-12 * float(want.abs().max()))


def test_the_polish_budget_and_form_follow_the_models_size_and_the_spectrums_width():
    assert polish_budget(3025, 64) == polish_budget(784, 32) == 1500
    assert polish_budget(64, 32) == round(4e8 / (32 * 64 * 64))  # digits: 3052
    assert polish_budget(30, 30) == 14815 and polish_budget(13, 13) == 15000
    sizes = [(4, 4), (30, 30), (64, 32), (64, 64), (784, 32)]
    budgets = [polish_budget(d, k) for d, k in sizes]
    assert budgets == sorted(budgets, reverse=True)
    cancer = LatentMRVAE(30, 30, beta_range=(4e-5, 1e6))
    assert polish_form_for("auto", cancer, 4.5e5, 4e-5, 64) == "residual"
    assert polish_form_for("auto", cancer, 4.5e5, 1.0, 64) == "trace"  # tr S/lo < 1e6
    assert polish_form_for("trace", cancer, 4.5e5, 4e-5, 64) == "trace"
    wide = LatentMRVAE(784, 32, beta_range=(1e-9, 1.0))  # the residual form too costly
    assert polish_form_for("auto", wide, 1.0, 1e-9, 64) == "trace"
    with pytest.raises(ValueError, match="polish_form"):
        RecipeConfig(polish_form="sums")
    with pytest.raises(ValueError, match="LatentMRVAE"):
        polish_form_for("residual", LinearMRVAE(5, 2, beta_range=(0.1, 1.0)), 1.0, 0.1, 64)
