"""Reviving dead latents (linvae.mrvae.revive): the residual's leading directions against
eigenpairs worked out by hand, and the recipe bringing back a latent the polish had shut."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import finite_matrices, orthogonal_matrices, spd_covariances

from linvae.analytic import full_grid, moments, rate_distortion, spectrum
from linvae.compare.evaluate import evaluate_model, excess_loss
from linvae.data import load
from linvae.mrvae.model import LatentMRVAE
from linvae.mrvae.recipe import RecipeConfig, _revive, train_recipe, training_range
from linvae.mrvae.revive import residual_directions

pytestmark = pytest.mark.usefixtures("one_torch_thread")

EIGVALS = np.array([9.0, 5.0, 3.0, 1.0, 0.5, 0.1])


def _covariance(eigvals, seed=0):
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((len(eigvals), len(eigvals))))
    return U, (U * eigvals) @ U.T


def _directions(E, D, S, count, **kwargs):
    return residual_directions(*(torch.as_tensor(a) for a in (E, D, S)), count, **kwargs)


def test_an_empty_model_leaves_the_covariances_leading_eigenpairs():
    U, S = _covariance(EIGVALS)
    directions, mu = _directions(np.zeros((2, 6)), np.zeros((6, 2)), S, 3, iterations=200)
    np.testing.assert_allclose(mu.numpy(), EIGVALS[:3], rtol=1e-10)
    overlaps = np.abs(U[:, :3].T @ directions.numpy())
    np.testing.assert_allclose(overlaps, np.eye(3), atol=1e-6)


def test_the_residual_is_what_the_model_leaves_unexplained():
    """D E = (1 − β/λ) on the two leading eigenvectors (the β-VAE optimum's reconstruction
    at β): the residual variance there is (β/λ)²·λ = β²/λ, elsewhere λ itself."""
    U, S = _covariance(EIGVALS, seed=1)
    beta = 0.5
    shrink = np.sqrt(1.0 - beta / EIGVALS[:2])
    E, D = (U[:, :2] * shrink).T, U[:, :2] * shrink  # D E = U diag(1 − β/λ) Uᵀ
    expected = np.sort(np.r_[beta**2 / EIGVALS[:2], EIGVALS[2:]])[::-1]
    _, mu = _directions(E, D, S, 6, iterations=0)  # a full block: Rayleigh–Ritz is exact
    np.testing.assert_allclose(mu.numpy(), expected, rtol=1e-10)
    directions, mu = _directions(E, D, S, 2, iterations=300)
    np.testing.assert_allclose(mu.numpy(), EIGVALS[2:4], rtol=1e-8)
    np.testing.assert_allclose(np.abs(U[:, 2:4].T @ directions.numpy()), np.eye(2), atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_a_full_block_gives_the_residual_covariances_whole_spectrum(data):
    """Any model, any covariance (zeros, ties, 12 decades): with count = d the block spans
    everything and μ is the spectrum of R, formed here explicitly."""
    S, _ = data.draw(spd_covariances(min_dim=2, max_dim=6))
    d = S.shape[0]
    k = data.draw(st.integers(1, d))
    E = data.draw(finite_matrices((k, d), bound=3.0))
    D = data.draw(finite_matrices((d, k), bound=3.0))
    iterations = data.draw(st.integers(0, 3))
    residual = np.eye(d) - D @ E
    R = residual @ S @ residual.T
    directions, mu = _directions(E, D, S, d, iterations=iterations)
    expected = np.sort(np.linalg.eigvalsh(R))[::-1]
    scale = max(np.abs(expected).max(), 1e-300)
    np.testing.assert_allclose(mu.numpy(), expected, atol=1e-9 * scale)
    Q = directions.numpy()
    np.testing.assert_allclose(Q.T @ Q, np.eye(d), atol=1e-9)
    assert np.all(np.diff(mu.numpy()) <= 1e-12 * scale)


@given(orthogonal_matrices(4))
def test_the_directions_are_seeded(U):
    S = (U * np.array([4.0, 3.0, 2.0, 1.0])) @ U.T
    E, D = np.zeros((1, 4)), np.zeros((4, 1))
    first, second = (
        _directions(E, D, S, 2, iterations=1, generator=torch.Generator().manual_seed(7))[0]
        for _ in range(2)
    )
    assert torch.equal(first, second)


def test_bad_arguments_name_what_was_expected():
    S = torch.eye(3, dtype=torch.float64)
    E, D = torch.zeros(2, 3, dtype=torch.float64), torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="count"):
        residual_directions(E, D, S, 0)
    with pytest.raises(ValueError, match="count must be at most d = 3"):
        residual_directions(E, D, S, 4)
    with pytest.raises(ValueError, match="must agree"):
        residual_directions(E, D.T, S, 1)
    with pytest.raises(ValueError, match="iterations"):
        residual_directions(E, D, S, 1, iterations=-1)


def test_shut_latents_are_those_with_a_gate_shut_above_the_bound():
    model = LatentMRVAE(5, 3, beta_range=(0.01, 10.0))
    with torch.no_grad():
        model.encoder2_gate.bias.copy_(torch.tensor([5.0, 2.0, 0.0]))  # η₀ = −b: −5, −2, 0
        model.decoder1_gate.bias.copy_(torch.tensor([0.0, 0.0, 0.0]))
    assert model.shut_latents(-2.0).tolist() == [True, True, False]
    with torch.no_grad():
        model.decoder1_gate.bias.copy_(torch.tensor([0.0, 0.0, 3.0]))  # the decoder's shut
    assert model.shut_latents(-2.0).tolist() == [True, True, True]
    assert model.shut_latents(-6.0).tolist() == [False, False, False]


def _killed_model(seed=3):
    """A k = 4 MR-VAE trained by the default recipe on data with every latent worth its
    place on the whole grid, then one latent killed the way the d = 3025 polish left 12:
    its thresholds below the range, its encoder row along the least variance, its decoder
    column along a direction another latent explains."""
    X, _ = load("gaussian", n=500, eigvals=[4.0, 2.0, 1.0, 0.5, 0.03, 0.02], seed=seed)
    stats = moments(X)
    spec = spectrum(stats.cov)
    grid = full_grid(spec.eigvals, 4)
    lo, hi = training_range(grid)
    model = LatentMRVAE(X.shape[1], 4, beta_range=(lo, hi))
    train_recipe(model, X, RecipeConfig(), beta_range=(lo, hi))
    with torch.no_grad():
        j = 0
        for gate in model.gate_modules():
            gate.bias[j] = gate.input_center - (math.log(lo) - 1.0)  # η₀ below the range
        model.encoder1[j] = torch.as_tensor(spec.eigvecs[:, -1])
        model.decoder2[:, j] = torch.as_tensor(spec.eigvecs[:, 1])
    return model, X, stats, spec, grid, (lo, hi)


@pytest.mark.parametrize("revive", [True, False])
def test_the_recipe_revives_a_latent_the_polish_shut(revive):
    model, X, stats, spec, grid, beta_range = _killed_model()
    config = RecipeConfig(
        resume=True, steps=0, polish_iterations=400, polish_rounds=2, revive=revive
    )
    result = train_recipe(model, X, config, beta_range=beta_range)
    loss = evaluate_model(model, stats.mean, stats.cov, grid)["loss"]
    excess = excess_loss(loss, rate_distortion(spec.eigvals, 4, grid).loss)
    if revive:
        assert result.revived_latents == 1
        assert (excess / grid).max() <= 0.01, (excess / grid).max()
        assert not model.shut_latents(math.log(beta_range[0])).any()
    else:  # the gate opened between the runs, its direction still useless: shut again
        assert result.revived_latents == 0
        assert (excess / grid).max() > 0.1
        assert model.shut_latents(math.log(beta_range[0]))[0]


def test_a_latent_beyond_the_datas_rank_is_not_revived():
    """Rank 3, k = 4: the residual has no direction of variance above lo, so the latent the
    polish shuts stays shut (and the optimum has it so)."""
    X, _ = load("gaussian", n=400, eigvals=[4.0, 2.0, 1.0, 0.0, 0.0], seed=5)
    stats = moments(X)
    spec = spectrum(stats.cov)
    grid = full_grid(spec.eigvals, 4)
    beta_range = training_range(grid)
    model = LatentMRVAE(X.shape[1], 4, beta_range=beta_range)
    result = train_recipe(model, X, RecipeConfig(), beta_range=beta_range)
    assert result.revived_latents == 0
    loss = evaluate_model(model, stats.mean, stats.cov, grid)["loss"]
    excess = excess_loss(loss, rate_distortion(spec.eigvals, 4, grid).loss)
    assert (excess / grid).max() <= 0.01


def test_a_revived_latent_takes_its_direction_off_the_residual():
    """Where the live latents explain part of the residual's leading direction u, the
    revived latent encodes what they leave, ``uᵀ(I − D E)/√μ``: the residual's trace falls
    by μ (``uᵀ/√μ`` would encode x's whole u-part a second time and overshoot)."""
    U, S = _covariance(np.array([4.0, 0.3, 0.2, 0.1]), seed=1)
    u0 = U[:, 0]
    log_lo = math.log(0.01)
    model = LatentMRVAE(4, 2, beta_range=(0.01, 10.0))
    with torch.no_grad():
        for gate in model.gate_modules():  # latent 0 open far above lo (σ = τ = 1 there)
            gate.bias.copy_(gate.input_center - torch.tensor([log_lo + 50.0, log_lo - 1.0]))
        model.encoder1.copy_(torch.as_tensor(np.stack([0.25 * u0, U[:, 3]])))  # D E = ½u₀u₀ᵀ
        model.decoder2.copy_(torch.as_tensor(np.stack([2.0 * u0, U[:, 1]], axis=1)))
    assert model.shut_latents(log_lo).tolist() == [False, True]
    W, V = model.encoder1.detach().clone(), model.decoder2.detach().clone()
    eye = torch.eye(4, dtype=torch.float64)

    def residual_trace(E1, D2):
        R = eye - D2 @ E1
        return float(torch.trace(R @ torch.as_tensor(S) @ R.T))

    before = residual_trace(W[:1], V[:, :1])
    revived = _revive(
        model, W, V, torch.ones(2, 1, dtype=torch.float64), eye, lambda D2: D2,
        torch.as_tensor(S), log_lo, torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert revived.tolist() == [1]
    mu = float(V[:, 1].square().sum())  # D₂ column √μ u
    assert residual_trace(W, V) == pytest.approx(before - mu, rel=1e-12)
    # ½ of u₀'s √4 left: variance 1, against u₁'s 0.3 (ten power iterations)
    assert mu == pytest.approx(1.0, rel=1e-6)
    assert abs(float(V[:, 1] @ torch.as_tensor(u0))) / math.sqrt(mu) >= 1 - 1e-6


@pytest.mark.parametrize("tied", [False, True])
def test_keep_open_with_a_mask_opens_only_those_latents(tied):
    model = LatentMRVAE(5, 3, beta_range=(0.01, 10.0))
    encoder, covariance, decoder = model.gate_modules()
    with torch.no_grad():
        encoder.bias.copy_(encoder.input_center + 3.0)  # η₀ = −3: shut above −3
        decoder.bias.copy_(decoder.input_center + 3.0)
    if tied:
        covariance.bias = decoder.bias = encoder.bias
    model.keep_open(-1.0, torch.tensor([True, False, True]))  # η₀ ≥ −1 for latents 0, 2
    assert model.shut_latents(-2.0).tolist() == [False, True, False]
    model.keep_open(-1.0)
    assert not model.shut_latents(-2.0).any()


@pytest.mark.parametrize("unmix", [True, False])
def test_the_polish_turns_apart_two_latents_rotated_into_each_other(unmix):
    """A trained k = 2 model with its two latents turned 45° into each other (in their unit
    scale, so that D₂E₁ is unchanged): between two short polish runs ``unmix`` turns them
    back, where L-BFGS alone does not leave the mixture in 20 iterations."""
    X, _ = load("gaussian", n=500, eigvals=[3.0, 2.0, 0.1], seed=4)
    stats = moments(X)
    spec = spectrum(stats.cov)
    grid = full_grid(spec.eigvals, 2)
    beta_range = training_range(grid)
    model = LatentMRVAE(3, 2, beta_range=beta_range, seed=0)
    train_recipe(model, X, RecipeConfig(), beta_range=beta_range)
    with torch.no_grad():
        E1, D2 = model.encoder1.clone(), model.decoder2.clone()
        scale = (E1 @ torch.as_tensor(stats.cov) @ E1.T).diagonal().sqrt()
        R = torch.tensor([[1.0, -1.0], [1.0, 1.0]], dtype=torch.float64) / math.sqrt(2.0)
        A = scale[:, None] * R / scale[None, :]
        model.encoder1.copy_(A @ E1)
        model.decoder2.copy_(D2 @ torch.linalg.inv(A))
    config = RecipeConfig(resume=True, steps=0, polish_iterations=20, polish_rounds=2, unmix=unmix)
    result = train_recipe(model, X, config, beta_range=beta_range)
    loss = evaluate_model(model, stats.mean, stats.cov, grid)["loss"]
    excess = excess_loss(loss, rate_distortion(spec.eigvals, 2, grid).loss)
    if unmix:
        assert result.unmixed_pairs == 1
        assert (excess / grid).max() <= 1e-3, (excess / grid).max()
    else:
        assert result.unmixed_pairs == 0
        assert (excess / grid).max() > 3e-3, (excess / grid).max()  # 0.0068 when written
