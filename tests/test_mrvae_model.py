"""The linear MR-VAE: forward pass against explicit matrices, params_at, config round trip."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import etas

from linvae.analytic import LinearVAEParams
from linvae.mrvae.model import LinearMRVAE, LinearVAE, model_from_config

GATE_CHOICES = [
    ("sigmoid", "sqrt", "sigmoid"),
    ("sqrt", "sqrt", "hinge"),
    ("film", "film", "film"),
    ("none", "none", "none"),
    ("hinge", "sigmoid", "none"),
]


def perturbed_model(gates, d=5, k=3, hidden=4, seed=0):
    """A model with every parameter moved off its initial value (seeded)."""
    model = LinearMRVAE(d, k, *gates, hidden=hidden, seed=seed)
    generator = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(
                0.3 * torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
            )
        model.set_input_mean(torch.randn(d, generator=generator, dtype=torch.float64).numpy())
    return model


def explicit_matrices(model, log_beta):
    """E(η), c(η), D(η), t(η), bias(η) composed in numpy from the gate values (eq. 25–38)."""
    g = model.gates(torch.tensor([log_beta], dtype=torch.float64))
    v = {
        name: (None if value is None else value.detach().numpy()[0])
        for name, value in g._asdict().items()
    }
    E1, E2 = model.encoder1.detach().numpy(), model.encoder2.detach().numpy()
    D1, D2 = model.decoder1.detach().numpy(), model.decoder2.detach().numpy()
    E = np.diag(v["encoder2"]) @ E2 @ np.diag(v["encoder1"]) @ E1
    D = np.diag(v["decoder2"]) @ D2 @ np.diag(v["decoder1"]) @ D1
    t = np.zeros(model.k)
    if v["encoder1_shift"] is not None:
        t = v["encoder2"] * (E2 @ v["encoder1_shift"]) + v["encoder2_shift"]
    bias = model.bias.detach().numpy().copy()
    if v["decoder1_shift"] is not None:
        bias = bias + v["decoder2"] * (D2 @ v["decoder1_shift"]) + v["decoder2_shift"]
    return E, np.exp(v["log_variance"]), D, t, bias


@pytest.mark.parametrize("gates", GATE_CHOICES)
@given(log_beta=etas())
@settings(max_examples=15)
def test_params_at_composes_the_gated_layers(gates, log_beta):
    model = perturbed_model(gates)
    E, c, D, t, bias = explicit_matrices(model, log_beta)
    params = model.params_at(math.exp(log_beta))
    assert isinstance(params, LinearVAEParams)
    np.testing.assert_allclose(params.E, E, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(params.c, c, rtol=1e-12)
    np.testing.assert_allclose(params.D, D, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.latent_offset(math.exp(log_beta)), t, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.decoder_bias(math.exp(log_beta)), bias, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("gates", GATE_CHOICES)
def test_forward_pass_is_the_linear_vae_of_params_at_per_example(gates):
    # each example has its own β; the batched forward pass must equal, row by row,
    # μ = E(β)(x − m) + t(β), log c(β), x̂ = D(β) z + bias(β)
    model = perturbed_model(gates)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, model.d))
    noise = rng.standard_normal((6, model.k))
    log_beta = np.log(np.geomspace(0.01, 10.0, 6))
    reconstruction, mean, log_variance = model(
        torch.tensor(x), torch.tensor(log_beta), torch.tensor(noise)
    )
    m = model.input_mean.numpy()
    for i in range(6):
        E, c, D, t, bias = explicit_matrices(model, log_beta[i])
        mu = E @ (x[i] - m) + t
        np.testing.assert_allclose(mean[i].detach().numpy(), mu, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(
            log_variance[i].detach().numpy(), np.log(c), rtol=1e-12, atol=1e-14
        )
        z = mu + np.sqrt(c) * noise[i]
        np.testing.assert_allclose(
            reconstruction[i].detach().numpy(), D @ z + bias, rtol=1e-12, atol=1e-13
        )


def test_posterior_variance_is_positive_at_every_beta():
    model = perturbed_model(("sigmoid", "sqrt", "hinge"))
    with torch.no_grad():
        model.log_variance.fill_(-40.0)
    log_beta = torch.linspace(-30.0, 30.0, 101, dtype=torch.float64)
    assert torch.all(torch.exp(model.log_variance_at(log_beta)) > 0)


def test_beta_vae_has_no_gates_and_does_not_depend_on_beta():
    model = LinearVAE(5, 3, seed=2)
    assert not any("gate" in name for name, _ in model.named_parameters())
    a, b = model.params_at(0.01), model.params_at(10.0)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_allclose(a.c, 0.5, rtol=1e-15)


@pytest.mark.parametrize("gates", GATE_CHOICES)
def test_config_rebuilds_the_same_model_from_its_state_dict(gates, tmp_path):
    model = perturbed_model(gates)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    rebuilt = model_from_config(model.config())
    rebuilt.load_state_dict(torch.load(tmp_path / "weights.pt", weights_only=True))
    for beta in (0.01, 0.7, 10.0):
        for u, v in zip(model.params_at(beta), rebuilt.params_at(beta), strict=True):
            np.testing.assert_array_equal(u, v)


def test_same_seed_same_weights_and_other_seed_other_weights():
    a, b, c = LinearMRVAE(6, 2, seed=3), LinearMRVAE(6, 2, seed=3), LinearMRVAE(6, 2, seed=4)
    assert torch.equal(a.encoder1, b.encoder1)
    assert not torch.equal(a.encoder1, c.encoder1)


def test_params_at_returns_float64_copies():
    model = LinearMRVAE(4, 2, dtype=torch.float32)
    params = model.params_at(1.0)
    assert all(p.dtype == np.float64 for p in params)
    params.E[...] = 0.0
    assert model.encoder1.abs().sum() > 0


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: LinearMRVAE(0, 2), ValueError, "d must be >= 1, got 0"),
        (lambda: LinearMRVAE(4, 2.5), TypeError, "k must be an integer, got float"),
        (lambda: LinearMRVAE(4, 2, covariance_gate="sqrt"), ValueError, "covariance_gate must be"),
        (lambda: LinearMRVAE(4, 2, encoder_gate="relu"), ValueError, "encoder_gate must be"),
        (lambda: LinearMRVAE(4, 2, dtype=torch.int32), TypeError, "dtype must be"),
        (lambda: LinearMRVAE(4, 2).params_at(0.0), ValueError, "beta must be finite and > 0"),
        (
            lambda: LinearMRVAE(4, 2).set_input_mean(np.zeros(3)),
            ValueError,
            r"mean must have shape \(4,\)",
        ),
        (
            lambda: LinearMRVAE(4, 2, decoder_gate="film").decoder_bias(),
            ValueError,
            "beta is required",
        ),
        (lambda: model_from_config({"class": "Other"}), ValueError, "config\\['class'\\]"),
        (lambda: model_from_config({"class": "LinearVAE"}), ValueError, "incomplete"),
    ],
)
def test_model_rejects_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


@given(st.integers(1, 6), st.integers(1, 6))
@settings(max_examples=10)
def test_hidden_defaults_to_k(d, k):
    assert LinearMRVAE(d, k).hidden == k
