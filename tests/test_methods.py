"""Every registered method trains on a small problem and its exact score equals an independent
evaluation: the loss averaged over the examples themselves (per-example closed forms, not the
moments), against the optimum's parameters (eq. 23) evaluated the same way."""

import numpy as np
import pytest
import torch

from linvae.analytic import optimum, rate_distortion
from linvae.data import load
from linvae.methods import REGISTRY, Budget, Trained, custom, get, score
from linvae.methods.scoring import LIVE_RATE
from linvae.mrvae.maps import LinearFamily
from linvae.mrvae.model import LinearMRVAE

EIGVALS = [3.0, 1.5, 0.6, 0.2, 0.05, 0.01]
MEAN = [0.5, -1.0, 2.0, 0.0, 1.0, -0.5]
K = 3
BETAS = np.geomspace(0.02, 4.0, 7)
RANGE = (0.01, 4.0)


@pytest.fixture(scope="module")
def data():
    X, _ = load("gaussian", n=80, eigvals=EIGVALS, mean=MEAN, seed=5)
    return X


def _per_example_loss(X, beta, encode, decode, k):
    """``mean_n [½ E_q‖x_n − x̂‖² + β KL(q(z|x_n) ‖ N(0, I))]`` from encode/decode alone.

    ``E_q‖x − D z − b‖² = ‖x − x̂(μ)‖² + Σ_j c_j ‖x̂(e_j) − x̂(0)‖²`` for a decoder affine in z.
    """
    x = torch.as_tensor(X)
    eta = torch.full((x.shape[0],), float(np.log(beta)), dtype=torch.float64)
    with torch.no_grad():
        mu, log_c = encode(x, eta)
        recon = decode(mu, eta)
        one = torch.full((k + 1,), float(np.log(beta)), dtype=torch.float64)
        probes = decode(torch.cat([torch.zeros(1, k), torch.eye(k)]).double(), one)
    columns = ((probes[1:] - probes[:1]) ** 2).sum(-1)  # ‖D e_j‖², (k,)
    c = torch.exp(log_c)
    squared = ((x - recon) ** 2).sum(-1) + (c * columns).sum(-1)
    kl = 0.5 * (-log_c + mu**2 + c - 1.0).sum(-1)
    return float(torch.mean(0.5 * squared + beta * kl))


def _functions_of(trained: Trained):
    """The trained model's own encode/decode: the MR-VAE's forward pass (independent of its
    ``matrices``); for a family of maps, its maps applied per example."""
    model = trained.model
    if isinstance(model, LinearMRVAE):
        return model.encode, model.decode
    assert isinstance(model, LinearFamily)

    def encode(x, eta):
        E, c, _, offset, _ = model.maps(eta)
        return (E @ x.unsqueeze(-1)).squeeze(-1) + offset, torch.log(c)

    def decode(z, eta):
        _, _, D, _, bias = model.maps(eta)
        return (D @ z.unsqueeze(-1)).squeeze(-1) + bias

    return encode, decode


def _optimum_functions(cov, mean):
    """encode/decode of the optimum (eq. 23) at each row's own β."""
    m = torch.as_tensor(mean)

    def per_row(eta, rows, out):
        result = torch.empty(eta.shape[0], out, dtype=torch.float64)
        for value in torch.unique(eta):
            where = eta == value
            result[where] = rows(optimum(cov, K, float(torch.exp(value))), where)
        return result

    def encode(x, eta):
        mu = per_row(eta, lambda best, w: (x[w] - m) @ torch.as_tensor(best.E).T, K)
        log_c = per_row(eta, lambda best, w: torch.log(torch.as_tensor(best.c)).expand(
            int(w.sum()), K), K)  # fmt: skip
        return mu, log_c

    def decode(z, eta):
        return per_row(eta, lambda best, w: z[w] @ torch.as_tensor(best.D).T + m, m.shape[0])

    return encode, decode


def _independent_excess(X, encode, decode):
    mean = X.mean(0)
    cov = (X - mean).T @ (X - mean) / X.shape[0]
    best_encode, best_decode = _optimum_functions(cov, mean)
    return np.array([
        _per_example_loss(X, b, encode, decode, K) - _per_example_loss(X, b, best_encode,
                                                                       best_decode, K)
        for b in BETAS
    ])  # fmt: skip


def _moments(X):
    mean = X.mean(0)
    return mean, (X - mean).T @ (X - mean) / X.shape[0]


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("objective", ["exact", "sampled"])
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_each_method_trains_and_its_score_is_an_independent_evaluation(name, objective, data):
    trained = get(name).train(data, RANGE, Budget(40, K, objective, seed=1))
    mean, cov = _moments(data)
    scored = score(trained, mean, cov, BETAS)
    independent = _independent_excess(data, *_functions_of(trained))
    np.testing.assert_allclose(scored["excess"], independent, rtol=1e-7, atol=1e-9)
    assert scored["max_excess"] == pytest.approx(independent.max(), rel=1e-7, abs=1e-9)
    assert scored["mean_excess_over_beta"] == pytest.approx(
        np.mean(independent / BETAS), rel=1e-7, abs=1e-9
    )
    assert np.all(independent > -1e-9)  # nothing beats the optimum
    assert 0 <= scored["live_latents"] <= K
    assert scored["optimum_live_latents"] == int(np.sum(np.array(EIGVALS[:K]) > BETAS.min()))


@pytest.mark.usefixtures("one_torch_thread")
def test_training_lowers_the_exact_excess_of_every_method(data):
    mean, cov = _moments(data)
    for name in sorted(REGISTRY):
        short = score(get(name).train(data, RANGE, Budget(2, K, "exact")), mean, cov, BETAS)
        long = score(get(name).train(data, RANGE, Budget(80, K, "exact")), mean, cov, BETAS)
        assert long["mean_excess"] < short["mean_excess"], name


class _Oracle(torch.nn.Module):
    """A user's model: the optimum at every β, through encode/decode only."""

    def __init__(self, X):
        super().__init__()
        self.mean, self.cov = _moments(X)
        self.encode, self.decode = _optimum_functions(self.cov, self.mean)


def test_a_user_method_is_scored_the_same_way(data):
    calls = []

    def oracle(X, beta_range, budget):
        calls.append((X.shape, tuple(beta_range), budget.steps))
        return _Oracle(X)

    method = custom("oracle", oracle)
    trained_model = method.train(data, RANGE, Budget(1, K))
    from linvae.methods import as_trained

    trained = as_trained(trained_model, data.shape[1], K)
    mean, cov = _moments(data)
    scored = score(trained, mean, cov, BETAS)
    assert calls == [(data.shape, RANGE, 1)]
    assert scored["max_excess"] < 1e-9  # the optimum, read from encode/decode
    assert scored["live_latents"] == scored["optimum_live_latents"]

    # a user's maps function: the optimum at one β for every β (one β-VAE)
    fixed = optimum(cov, K, 0.3)

    def one_vae(log_beta):
        B = log_beta.shape[0]
        E = torch.as_tensor(fixed.E).expand(B, K, -1)
        return (E, torch.as_tensor(fixed.c).expand(B, K), torch.as_tensor(fixed.D).expand(B, -1, K),
                -(E @ torch.as_tensor(mean)), torch.as_tensor(mean).expand(B, -1))  # fmt: skip

    scored = score(as_trained(one_vae, data.shape[1], K), mean, cov, [0.3, 1.0])
    gap = _per_example_loss(data, 1.0, *_fixed_functions(fixed, mean), K) - _per_example_loss(
        data, 1.0, *_optimum_functions(cov, mean), K
    )
    expected = np.array([0.0, gap])
    np.testing.assert_allclose(scored["excess"], expected, atol=1e-9)
    assert expected[1] > 1e-3


def _fixed_functions(params, mean):
    E, c, D = (torch.as_tensor(a) for a in params)
    m = torch.as_tensor(mean)

    def encode(x, eta):
        return (x - m) @ E.T, torch.log(c).expand(x.shape[0], -1)

    def decode(z, eta):
        return z @ D.T + m

    return encode, decode


def test_a_model_that_is_not_linear_gaussian_has_no_exact_score(data):
    from linvae.methods import as_trained

    class Curved(torch.nn.Module):
        def encode(self, x, eta):
            return torch.tanh(x[:, :K]), torch.zeros(x.shape[0], K, dtype=x.dtype)

        def decode(self, z, eta):
            return torch.cat([z, z], -1)

    mean, cov = _moments(data)
    with pytest.raises(ValueError, match="not linear-Gaussian"):
        score(as_trained(Curved(), data.shape[1], K), mean, cov, BETAS)
    with pytest.raises(TypeError, match="must return"):
        as_trained(42, data.shape[1], K)


def test_budgets_methods_and_the_registry_refuse_bad_values():
    with pytest.raises(ValueError, match="steps"):
        Budget(0, 2)
    with pytest.raises(TypeError, match="latent"):
        Budget(10, 2.0)
    with pytest.raises(ValueError, match="objective"):
        Budget(10, 2, "elbo")
    with pytest.raises(ValueError, match="method"):
        get("vq-vae")
    with pytest.raises(TypeError, match="train"):
        custom("mine", 3)
    from linvae.methods import register

    with pytest.raises(ValueError, match="already registered"):
        register(get("yoto"))


def test_the_optimum_water_filling_and_the_per_example_optimum_agree(data):
    """The scorer's reference (water-filling, eq. 23) is the independent evaluation's."""
    _, cov = _moments(data)
    curve = rate_distortion(np.linalg.eigvalsh(cov)[::-1], K, BETAS)
    for beta, rate in zip(BETAS, curve.rate, strict=True):
        best = optimum(cov, K, float(beta))
        per_latent = 0.5 * (-np.log(best.c) + np.diag(best.E @ cov @ best.E.T) + best.c - 1)
        assert per_latent.sum() == pytest.approx(rate, rel=1e-9, abs=1e-12)
        assert np.count_nonzero(per_latent > LIVE_RATE) <= K
