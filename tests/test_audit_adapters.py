"""Adapters of linvae.audit: torch stacks of nn.Linear, .npz files, x-dependent variances."""

import numpy as np
import pytest
import scipy.optimize
import torch
from torch import nn

from linvae.analytic import LinearVAEParams, moments
from linvae.audit import (
    AffineVAE,
    NotLinearError,
    audit,
    audit_model,
    from_torch,
    linvae_form,
    load_npz,
    save_npz,
)

LOG_2PI = np.log(2 * np.pi)


def linear(weight, bias):
    layer = nn.Linear(weight.shape[1], weight.shape[0], dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight))
        layer.bias.copy_(torch.as_tensor(bias))
    return layer


def data(n=200, d=5, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, d)) * np.linspace(2.0, 0.2, d)
    return rng.standard_normal((n, d)) @ A.T + rng.standard_normal(d)


@pytest.fixture
def known():
    """Arrays of a two-layer encoder, a free log-variance and a two-layer decoder (d=5, k=3)."""
    rng = np.random.default_rng(1)
    d, k, h = 5, 3, 4
    return {
        "W1": rng.standard_normal((h, d)),
        "a1": rng.standard_normal(h),
        "W2": rng.standard_normal((k, h)),
        "a2": rng.standard_normal(k),
        "V1": rng.standard_normal((h, k)),
        "g1": rng.standard_normal(h),
        "V2": rng.standard_normal((d, h)),
        "g2": rng.standard_normal(d),
        "f": rng.standard_normal(k) * 0.3,
        "F": rng.standard_normal((k, d)) * 0.1,
    }


def modules(known):
    encoder = nn.Sequential(linear(known["W1"], known["a1"]), linear(known["W2"], known["a2"]))
    decoder = nn.Sequential(
        linear(known["V1"], known["g1"]), nn.Identity(), linear(known["V2"], known["g2"])
    )
    return encoder, decoder


def expected_arrays(known):
    E = known["W2"] @ known["W1"]
    e = known["W2"] @ known["a1"] + known["a2"]
    D = known["V2"] @ known["V1"]
    b = known["V2"] @ known["g1"] + known["g2"]
    return E, e, D, b


def assert_close(actual, expected):
    scale = max(np.max(np.abs(expected)), 1.0)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-13 * scale)


# --- torch round trips -----------------------------------------------------------------


def test_linear_stacks_collapse_to_their_product(known):
    encoder, decoder = modules(known)
    model = from_torch(encoder, decoder, torch.as_tensor(known["f"]))
    E, e, D, b = expected_arrays(known)
    assert_close(model.encoder_weight, E)
    assert_close(model.encoder_bias, e)
    assert_close(model.decoder_weight, D)
    assert_close(model.decoder_bias, b)
    assert_close(model.log_variance_bias, known["f"])
    assert model.mode == "fixed"


def test_a_fixed_variance_model_audits_as_its_linvae_form(known):
    X = data()
    stats = moments(X)
    model = from_torch(*modules(known), torch.as_tensor(known["f"]))
    params, b, t = linvae_form(model, stats.mean)
    direct = audit(params, stats, 0.3, decoder_bias=b, encoder_offset=t)
    through = audit_model(model, X, 0.3)
    assert through.mode == "fixed"
    assert through.loss == direct.loss
    assert through.excess == direct.excess


def test_a_split_encoder_output_and_a_float32_model(known):
    # One layer producing mean and log-variance side by side, stored in float32.
    E, e, _, _ = expected_arrays(known)
    weight = np.vstack([E, known["F"]])
    bias = np.concatenate([e, known["f"]])
    encoder = linear(weight, bias).to(torch.float32)
    decoder = modules(known)[1].to(torch.float32)
    model = from_torch(encoder, decoder, "split")
    assert model.mode == "per-example"
    stored = encoder.weight.detach().double().numpy()  # the float32 weights, exactly
    assert_close(model.encoder_weight, stored[:3])
    assert_close(model.log_variance_weight, stored[3:])


def test_a_log_variance_module_and_a_pair_output(known):
    encoder, decoder = modules(known)
    log_var = linear(known["F"], known["f"])
    by_module = from_torch(encoder, decoder, log_var)

    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.mean, self.log_var = encoder, log_var

        def forward(self, x):
            return self.mean(x), self.log_var(x)

    by_pair = from_torch(Pair(), decoder, "pair")
    for field in AffineVAE._fields:
        assert_close(getattr(by_pair, field), getattr(by_module, field))
    assert_close(by_module.log_variance_weight, known["F"])


def test_a_non_linear_layer_is_refused_by_name(known):
    encoder = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    with pytest.raises(NotLinearError, match=r"encoder\.1 \(ReLU\) is not a linear layer"):
        from_torch(encoder, modules(known)[1], torch.zeros(3))
    decoder = nn.Sequential(nn.Linear(3, 5), nn.Sigmoid())
    with pytest.raises(NotLinearError, match=r"decoder\.1 \(Sigmoid\) is not a linear layer"):
        from_torch(modules(known)[0], decoder, torch.zeros(3))


def test_a_forward_that_is_not_affine_is_refused(known):
    class Squares(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(5, 3, dtype=torch.float64)

        def forward(self, x):
            return self.layer(x) ** 2

    with pytest.raises(NotLinearError, match="encoder is not affine in its input"):
        from_torch(Squares(), modules(known)[1], torch.zeros(3))


# --- x-dependent posterior variance ----------------------------------------------------


def per_example_loss(model, X, beta):
    """Rate and distortion of each row in closed form (no sampling), then averaged."""
    E, e, f, D, b, F = model
    mu = X @ E.T + e  # (n, k)
    log_c = X @ F.T + f
    c = np.exp(log_c)
    kl = 0.5 * np.sum(-log_c + mu**2 + c - 1.0, axis=1)
    error = np.sum((X - b - mu @ D.T) ** 2, axis=1) + c @ np.sum(D**2, axis=0)
    distortion = 0.5 * X.shape[1] * LOG_2PI + 0.5 * error
    return float(np.mean(kl)), float(np.mean(distortion)), float(np.mean(distortion + beta * kl))


def test_an_x_dependent_variance_is_evaluated_exactly_per_example(known):
    X = data()
    model = from_torch(*modules(known), linear(known["F"], known["f"]))
    result = audit_model(model, X, 0.3)
    rate, distortion, loss = per_example_loss(model, X, 0.3)
    assert result.mode == "per-example"
    scale = result.roundoff_scale
    assert abs(result.loss.rate - rate) <= 1e-12 * scale
    assert abs(result.loss.distortion - distortion) <= 1e-12 * scale
    assert abs(result.loss.loss - loss) <= 1e-12 * scale
    assert result.excess > 0
    parts = result.encoder + result.bias + result.decoder
    assert abs(result.excess - parts) <= 1e-10 * scale
    assert abs(result.latent_rates.sum() - rate) <= 1e-12 * scale


def test_moments_are_not_enough_for_an_x_dependent_variance(known):
    X = data()
    model = from_torch(*modules(known), linear(known["F"], known["f"]))
    with pytest.raises(ValueError, match="pass the data X"):
        audit_model(model, moments(X), 0.3)


def test_no_x_dependent_variance_beats_the_fixed_best_response(known):
    # The step of docs/audit.md's bound: for a fixed decoder D and any mean map, minimise the
    # exact per-example loss over log-variances linear in x, log c_j(x) = F_j x + f_j. The
    # loss of latent j is mean_x ½(a_j c_j(x) − β log c_j(x)), a_j = ‖D_j‖² + β: convex in
    # (F_j, f_j), minimised here by Newton's method (scipy trust-exact, exact Hessian). It
    # stops at F = 0 and c = β / a_j (eq. 21): no x-dependent variance does better.
    X = data(n=100, d=5, seed=2)
    n, d = X.shape
    beta = 0.5
    E, e, D, b = expected_arrays(known)
    k = E.shape[0]
    lifted = np.column_stack([X, np.ones(n)])  # x̃ = (x, 1)
    a = np.sum(D**2, axis=0) + beta
    F, f = np.empty((k, d)), np.empty(k)
    for j in range(k):

        def value(w, j=j):
            return float(np.mean(0.5 * a[j] * np.exp(lifted @ w) - 0.5 * beta * (lifted @ w)))

        def gradient(w, j=j):
            return lifted.T @ (0.5 * a[j] * np.exp(lifted @ w) - 0.5 * beta) / n

        def hessian(w, j=j):
            return (lifted.T * (0.5 * a[j] * np.exp(lifted @ w))) @ lifted / n

        start = np.random.default_rng(j).standard_normal(d + 1) * 0.3
        found = scipy.optimize.minimize(
            value, start, jac=gradient, hess=hessian, method="trust-exact", options={"gtol": 1e-13}
        )
        w = found.x
        for _ in range(5):  # polish: plain Newton steps converge quadratically from here
            w = w - np.linalg.solve(hessian(w), gradient(w))
        F[j], f[j] = w[:d], w[d]
    result = audit_model(AffineVAE(E, e, f, D, b, F), X, beta)
    assert result.mode == "per-example"
    assert result.encoder_variance <= 1e-12 * result.roundoff_scale
    assert np.max(np.abs(F)) <= 1e-12  # measured 6e-17 with 30 Newton steps from 0
    np.testing.assert_allclose(np.exp(f), beta / a, rtol=1e-12)


# --- .npz files ------------------------------------------------------------------------


def test_npz_round_trip(tmp_path, known):
    X = data()
    model = from_torch(*modules(known), linear(known["F"], known["f"]))
    save_npz(tmp_path / "model.npz", model)
    loaded = load_npz(tmp_path / "model.npz", X.mean(axis=0))
    for field in AffineVAE._fields:
        np.testing.assert_array_equal(getattr(loaded, field), getattr(model, field))


def test_npz_in_linvae_form_defaults_to_the_mean(tmp_path):
    X = data()
    stats = moments(X)
    rng = np.random.default_rng(4)
    params = LinearVAEParams(
        rng.standard_normal((2, 5)), np.array([0.5, 2.0]), rng.standard_normal((5, 2))
    )
    np.savez(tmp_path / "p.npz", E=params.E, c=params.c, D=params.D)
    result = audit_model(load_npz(tmp_path / "p.npz", stats.mean), stats, 0.2)
    direct = audit(params, stats, 0.2)
    assert abs(result.loss.loss - direct.loss.loss) <= 1e-13 * direct.roundoff_scale
    assert result.bias == 0.0


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"E": np.ones((2, 5)), "D": np.ones((5, 2))}, "missing the posterior variance"),
        ({"E": np.ones((2, 5)), "c": np.ones(2)}, "missing the array 'D'"),
        ({"E": np.ones((2, 5)), "c": np.ones(2), "log_c": np.ones(2), "D": np.ones((5, 2))}, "not both"),
        ({"E": np.ones((2, 5)), "c": np.ones(2), "D": np.ones((5, 2)), "W": np.ones(1)}, "unknown keys"),
        ({"E": np.ones((2, 5)), "c": -np.ones(2), "D": np.ones((5, 2))}, "c must be > 0"),
        ({"E": np.ones((2, 5)), "c": np.ones(2), "D": np.ones((4, 2))}, "decoder_weight must have shape"),
    ],
)  # fmt: skip
def test_bad_npz_is_named(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=message) as error:
        load_npz(path, np.zeros(5))
    assert "bad.npz" in str(error.value)


# --- linvae's own MR-VAE ---------------------------------------------------------------


@pytest.mark.parametrize("gates", [("sigmoid", "sqrt", "sigmoid"), ("film", "film", "film")])
def test_an_mrvae_is_audited_at_its_exact_loss(gates):
    # FiLM gates give the MR-VAE a latent offset and a β-dependent decoder bias; the audit's
    # loss must equal linvae.mrvae's own exact objective (torch, float64) at each β.
    from linvae.audit import audit_mrvae
    from linvae.mrvae.model import LinearMRVAE
    from linvae.mrvae.objectives import exact_loss

    X = data()
    stats = moments(X)
    model = LinearMRVAE(5, 3, *gates, seed=1)
    model.set_input_mean(stats.mean + 0.1)  # centred off the data mean: an offset E(m − m_in)
    betas = np.array([0.05, 0.5, 5.0])
    results = audit_mrvae(model, stats, betas)
    with torch.no_grad():
        terms = exact_loss(
            model, torch.log(torch.as_tensor(betas)), torch.as_tensor(stats.mean),
            torch.as_tensor(stats.cov),
        )  # fmt: skip
    for result, rate, distortion in zip(results, terms.rate, terms.distortion, strict=True):
        assert abs(result.loss.rate - float(rate)) <= 1e-12 * result.roundoff_scale
        assert abs(result.loss.distortion - float(distortion)) <= 1e-12 * result.roundoff_scale
        assert abs(result.excess - (result.encoder + result.bias + result.decoder)) <= (
            1e-10 * result.roundoff_scale
        )
