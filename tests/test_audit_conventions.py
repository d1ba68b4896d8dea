"""effective_beta: each training convention, optimised numerically, lands on the analytic optimum."""

import numpy as np
import pytest
import scipy.optimize
import torch

from linvae.analytic import LinearVAEParams, Moments, rate_distortion
from linvae.audit import audit, effective_beta
from linvae.audit._conventions import parse_convention

EIGVALS = np.array([4.0, 1.5, 0.3])  # distinct, so the optimal rate is unique per β


def problem():
    d = EIGVALS.shape[0]
    rng = np.random.default_rng(3)
    V, _ = np.linalg.qr(rng.standard_normal((d, d)))
    cov = (V * EIGVALS) @ V.T
    return Moments(rng.standard_normal(d), (cov + cov.T) / 2, 50)


def user_loss(flat, stats, k, beta, convention):
    """The user's expected per-example loss written literally in their convention (torch)."""
    d = stats.mean.shape[0]
    E = flat[: k * d].reshape(k, d)
    log_c = flat[k * d : k * d + k]
    D = flat[k * d + k : 2 * k * d + k].reshape(d, k)
    b = flat[2 * k * d + k :]
    S = torch.as_tensor(stats.cov)
    m = torch.as_tensor(stats.mean)
    c = torch.exp(log_c)
    ESEt = E @ S @ E.T
    squared_error = (
        torch.trace(S)
        - 2 * torch.trace(D @ E @ S)
        + torch.trace(D @ ESEt @ D.T)
        + torch.sum(c * torch.sum(D**2, 0))
        + torch.sum((m - b) ** 2)
    )  # E_x E_q ‖x − Dz − b‖²
    reconstruction = squared_error / convention.get("decoder_variance", 1.0)
    if convention.get("half", True):
        reconstruction = 0.5 * reconstruction
    if convention.get("reconstruction", "sum") == "mean":
        reconstruction = reconstruction / d
    kl = 0.5 * (-torch.sum(log_c) + torch.trace(ESEt) + torch.sum(c) - k)  # summed over latents
    if convention.get("kl", "sum") == "mean":
        kl = kl / k
    return reconstruction + beta * convention.get("kl_weight", 1.0) * kl


def minimise(stats, k, beta, convention, seed=0):
    d = stats.mean.shape[0]
    rng = np.random.default_rng(seed)
    start = 0.5 * rng.standard_normal(2 * k * d + k + d)

    def value_and_grad(x):
        flat = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        value = user_loss(flat, stats, k, beta, convention)
        value.backward()
        return value.item(), flat.grad.numpy().copy()

    result = scipy.optimize.minimize(
        value_and_grad,
        start,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 20000, "maxfun": 40000, "ftol": 1e-16, "gtol": 1e-12},
    )
    x = result.x
    E = x[: k * d].reshape(k, d)
    c = np.exp(x[k * d : k * d + k])
    D = x[k * d + k : 2 * k * d + k].reshape(d, k)
    return LinearVAEParams(E, c, D), x[2 * k * d + k :]


CONVENTIONS = [
    {},  # the unit-variance model itself
    {"reconstruction": "mean"},  # F.mse_loss(reduction="mean") with the ½: β_eff = β d
    {"half": False},  # a plain squared error: β_eff = β / 2
    {"reconstruction": "mean", "half": False},  # MSE averaged over pixels: β_eff = β d / 2
    {"kl": "mean"},  # KL averaged over latents: β_eff = β / k
    {"kl_weight": 0.25},  # e.g. batch / N
    {"decoder_variance": 0.2},  # σ² = 0.2: β_eff = 0.2 β
    {"reconstruction": "mean", "kl": "mean", "half": False, "decoder_variance": 2.0},
]


@pytest.mark.slow
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_the_optimum_of_each_convention_is_the_analytic_optimum_at_effective_beta(convention):
    stats, k, beta = problem(), 2, 0.4
    d = stats.mean.shape[0]
    beta_eff = effective_beta(beta, **convention, d=d, k=k)
    params, bias = minimise(stats, k, beta, convention)
    result = audit(params, stats, beta_eff, decoder_bias=bias)
    # L-BFGS leaves a parameter error δ; the excess is O(δ²) and the rate O(δ)
    assert result.excess <= 1e-9 * result.roundoff_scale
    expected_rate = rate_distortion(EIGVALS, k, beta_eff).rate[0]
    assert abs(result.loss.rate - expected_rate) <= 1e-5 * max(expected_rate, 1.0)


@pytest.mark.slow
def test_a_naive_beta_misreads_a_mean_reduced_loss():
    # The check above can fail: the same trained model audited at the user's β instead of
    # β_eff = β d is far from that β's optimum.
    stats, k, beta = problem(), 2, 0.4
    convention = {"reconstruction": "mean", "half": False}
    params, bias = minimise(stats, k, beta, convention)
    naive = audit(params, stats, beta, decoder_bias=bias)
    # measured 0.0378 nats (β = 0.4 against β_eff = 0.6), against 1e-9 · scale above
    assert naive.excess > 0.01


def test_effective_beta_by_hand():
    # β_eff = β w σ² n_rec / (2 h n_kl)
    assert effective_beta(0.5) == 0.5
    assert effective_beta(1.0, reconstruction="mean", d=784) == 784.0
    assert effective_beta(1.0, reconstruction="mean", half=False, d=784) == 392.0
    assert effective_beta(2.0, kl="mean", k=8) == 0.25
    assert effective_beta(1.0, kl_weight=0.01, decoder_variance=0.5) == 0.005


@pytest.mark.parametrize("likelihood", ["bernoulli", "bce", "laplace", "poisson"])
def test_a_non_gaussian_decoder_is_refused_with_the_reason(likelihood):
    with pytest.raises(ValueError, match="outside the linear-Gaussian family"):
        effective_beta(1.0, likelihood=likelihood)


def test_a_mean_reduction_needs_its_size():
    with pytest.raises(ValueError, match='d is required with reconstruction="mean"'):
        effective_beta(1.0, reconstruction="mean")
    with pytest.raises(ValueError, match='k is required with kl="mean"'):
        effective_beta(1.0, kl="mean", d=3)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="reconstruction must be one of"):
        effective_beta(1.0, reconstruction="avg")
    with pytest.raises(ValueError, match="decoder_variance must be finite and > 0"):
        effective_beta(1.0, decoder_variance=0.0)
    with pytest.raises(TypeError, match="half must be True or False"):
        effective_beta(1.0, half="yes")


def test_parse_convention():
    options = parse_convention("reconstruction=mean, half=false,kl_weight=0.5")
    assert options == {"reconstruction": "mean", "half": False, "kl_weight": 0.5}
    with pytest.raises(ValueError, match="convention key 'sigma' is unknown"):
        parse_convention("sigma=2")
    with pytest.raises(ValueError, match="must be key=value"):
        parse_convention("mean")
