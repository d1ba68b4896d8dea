"""The torch objectives against linvae.analytic in float64."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from strategies import betas, spd_covariances
from test_mrvae_model import GATE_CHOICES, perturbed_model

from linvae.analytic import objective, optimum, rate_distortion
from linvae.compare.evaluate import exact_terms
from linvae.mrvae.model import LinearVAE
from linvae.mrvae.objectives import exact_loss, sampled_loss


def data_moments(d, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((40, d)) @ rng.standard_normal((d, d)) + rng.standard_normal(d)
    mean = X.mean(axis=0)
    return X, mean, (X - mean).T @ (X - mean) / X.shape[0]


@pytest.mark.parametrize("gates", GATE_CHOICES)
def test_exact_loss_equals_the_analytic_objective(gates):
    model = perturbed_model(gates)
    _, mean, cov = data_moments(model.d, seed=3)
    model.set_input_mean(mean)  # the encoder centres with the data mean, as in training
    grid = np.array([0.01, 0.05, 0.4, 2.0, 10.0])
    terms = exact_loss(model, torch.tensor(np.log(grid)), torch.tensor(mean), torch.tensor(cov))
    for i, beta in enumerate(grid):
        if "film" in gates:  # an offset and η-dependent bias: evaluated by exact_terms
            expected = exact_terms(model, beta, mean, cov)
        else:
            expected = objective(model.params_at(beta), mean, cov, beta, model.decoder_bias(beta))
        assert terms.rate[i].item() == pytest.approx(expected.rate, rel=1e-10, abs=1e-12)
        assert terms.distortion[i].item() == pytest.approx(expected.distortion, rel=1e-10)
    losses = [exact_terms(model, b, mean, cov).loss for b in grid]
    assert terms.loss.item() == pytest.approx(np.mean(losses), rel=1e-10)


@pytest.mark.parametrize("gates", GATE_CHOICES)
def test_exact_loss_counts_an_encoder_centred_elsewhere(gates):
    # input_mean ≠ data mean: a latent offset E(m − input_mean), evaluated by exact_terms
    model = perturbed_model(gates)
    _, mean, cov = data_moments(model.d, seed=4)
    grid = np.array([0.02, 1.0])
    terms = exact_loss(model, torch.tensor(np.log(grid)), torch.tensor(mean), torch.tensor(cov))
    for i, beta in enumerate(grid):
        expected = exact_terms(model, beta, mean, cov)
        assert terms.rate[i].item() == pytest.approx(expected.rate, rel=1e-10)
        assert terms.distortion[i].item() == pytest.approx(expected.distortion, rel=1e-10)


def test_exact_terms_agrees_with_a_monte_carlo_free_identity_for_offsets():
    # with a latent offset t the rate gains ½‖t‖² and the distortion sees b + D t:
    # check against the analytic objective of the same model with t folded by hand
    model = perturbed_model(("film", "film", "film"))
    _, mean, cov = data_moments(model.d, seed=5)
    beta = 0.3
    params = model.params_at(beta)
    t = model.latent_offset(beta) + params.E @ (mean - model.input_mean.numpy())
    folded = objective(params, mean, cov, beta, model.decoder_bias(beta) + params.D @ t)
    terms = exact_terms(model, beta, mean, cov)
    assert terms.rate == pytest.approx(folded.rate + 0.5 * t @ t, rel=1e-13)
    assert terms.distortion == folded.distortion


@pytest.mark.parametrize("gates", GATE_CHOICES)
def test_sampled_loss_without_noise_is_the_exact_loss_minus_the_posterior_spread(gates):
    # On the full data with z = μ (noise 0): mean distortion = exact distortion − ½ tr(D C Dᵀ),
    # and the closed-form KL averaged over the data is the exact rate (eq. 14–18).
    model = perturbed_model(gates)
    X, mean, cov = data_moments(model.d, seed=6)
    model.set_input_mean(mean)
    for beta in (0.03, 3.0):
        n = X.shape[0]
        log_beta = torch.full((n,), math.log(beta), dtype=torch.float64)
        sampled = sampled_loss(
            model, torch.tensor(X), log_beta, torch.zeros(n, model.k, dtype=torch.float64)
        )
        exact = exact_terms(model, beta, mean, cov)
        params = model.params_at(beta)
        spread = 0.5 * float(np.sum(params.c * np.sum(params.D**2, axis=0)))
        assert sampled.rate.mean().item() == pytest.approx(exact.rate, rel=1e-10)
        assert sampled.distortion.mean().item() == pytest.approx(
            exact.distortion - spread, rel=1e-10
        )


def test_sampled_loss_is_unbiased_over_the_noise():
    # the mean over many noise draws approaches the exact loss within 5 standard errors
    model = perturbed_model(("sigmoid", "sqrt", "sigmoid"))
    X, mean, cov = data_moments(model.d, seed=7)
    model.set_input_mean(mean)
    beta, repeats = 0.5, 400
    data = torch.tensor(np.tile(X, (repeats, 1)))
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(data.shape[0], model.k, generator=generator, dtype=torch.float64)
    log_beta = torch.full((data.shape[0],), math.log(beta), dtype=torch.float64)
    with torch.no_grad():
        terms = sampled_loss(model, data, log_beta, noise)
    per_example = (terms.distortion + beta * terms.rate).reshape(repeats, -1).mean(dim=1)
    standard_error = per_example.std().item() / math.sqrt(repeats)
    exact = exact_terms(model, beta, mean, cov).loss
    assert abs(per_example.mean().item() - exact) < 5 * standard_error


def optimal_beta_vae(cov, mean, k, beta):
    """A LinearVAE (hidden = k) whose weights are the analytic optimum (eq. 21–23)."""
    params = optimum(cov, k, beta)
    model = LinearVAE(cov.shape[0], k)
    with torch.no_grad():
        model.encoder1.copy_(torch.tensor(params.E))
        model.encoder2.copy_(torch.eye(k, dtype=torch.float64))
        model.decoder1.copy_(torch.eye(k, dtype=torch.float64))
        model.decoder2.copy_(torch.tensor(params.D))
        model.log_variance.copy_(torch.tensor(np.log(params.c)))
        model.bias.copy_(torch.tensor(mean))
    model.set_input_mean(mean)
    return model


@given(spd_covariances(min_dim=2, max_dim=6, allow_zeros=False), betas(1e-2, 1e2))
@settings(max_examples=25)
def test_exact_loss_is_stationary_at_the_analytic_optimum(data, beta):
    cov, eigvals = data
    if eigvals.max() / eigvals.min() > 1e6:
        return  # keep the gradient's round-off comparable to the tolerance below
    d = cov.shape[0]
    k = max(1, d - 1)
    mean = np.linspace(-1.0, 1.0, d)
    model = optimal_beta_vae(cov, mean, k, beta)
    terms = exact_loss(
        model,
        torch.tensor([math.log(beta)], dtype=torch.float64),
        torch.tensor(mean),
        torch.tensor(cov),
    )
    optimum_loss = rate_distortion(eigvals, k, [beta]).loss[0]
    assert terms.loss.item() == pytest.approx(optimum_loss, rel=1e-10)
    terms.loss.backward()
    scale = 1.0 + float(eigvals.max()) + beta
    # collapsed units (λ_i <= β: E = D = 0, c = 1) are stationary points too
    for name in ("encoder1", "encoder2", "decoder1", "decoder2", "log_variance", "bias"):
        grad = getattr(model, name).grad
        assert torch.max(torch.abs(grad)).item() < 1e-9 * scale, name


def test_perturbing_the_optimum_never_lowers_the_exact_loss():
    rng = np.random.default_rng(8)
    _, mean, cov = data_moments(6, seed=8)
    beta, k = 0.7, 4
    model = optimal_beta_vae(cov, mean, k, beta)
    log_beta = torch.tensor([math.log(beta)], dtype=torch.float64)
    base = exact_loss(model, log_beta, torch.tensor(mean), torch.tensor(cov)).loss.item()
    state = {name: p.detach().clone() for name, p in model.named_parameters()}
    for _ in range(20):
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(state[name] + 1e-3 * torch.tensor(rng.standard_normal(p.shape)))
        assert (
            exact_loss(model, log_beta, torch.tensor(mean), torch.tensor(cov)).loss.item() >= base
        )
