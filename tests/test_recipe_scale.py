"""linvae's recipe is scale-covariant: data aX over the range a²·(lo, hi) train the model
(E/a, c, aD, ab) of data X, so excess/β is the same at every scale (docs/theory.md,
"Scale covariance"); and the rank-aware full grid."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from linvae.analytic import beta_grid, collapsed_latents, full_grid, moments, spectrum
from linvae.compare.comparison import feature_scale_warning
from linvae.data import load
from linvae.mrvae.model import LatentMRVAE, one_layer_vae
from linvae.mrvae.recipe import RecipeConfig, data_factors, train_recipe, training_range

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: A short recipe: the trajectories at two scales differ by round-off only, amplified by
#: training to at most 1.8e-7 relative for a in 1e-4 … 1e4 (measured at six exponents);
#: before the objective formed its squared error apart from d/2·log 2π, that constant ate
#: the loss's digits at small a (2.4e-3 at a = 1e-3). An absolute unit anywhere in the
#: recipe (a step size, an initial scale, a tolerance) moves the trained model by O(1) at
#: other scales (the recipe before this test: 58 497 nats at a = 255).
SHORT = RecipeConfig(steps=300, polish_iterations=100, polish_nodes=16)
COVARIANCE_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def reference():
    X, _ = load("gaussian", n=300, eigvals=[3.0, 1.0, 0.4, 0.1, 0.02], seed=1)
    return X, _trained(X, LatentMRVAE)


def _trained(X, family):
    grid = full_grid(spectrum(moments(X).cov).eigvals, 3)
    if family is LatentMRVAE:
        model = LatentMRVAE(X.shape[1], 3, beta_range=training_range(grid), seed=0)
        train_recipe(model, X, SHORT)
    else:
        model = one_layer_vae(X.shape[1], 3, seed=0)
        train_recipe(model, X, SHORT, beta=float(grid[10]))
    return model, grid


def _relative(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@settings(max_examples=6, deadline=None)
@given(exponent=st.floats(-4.0, 4.0))
def test_training_on_scaled_data_gives_the_scaled_model(reference, exponent):
    X, (model, grid) = reference
    a = 10.0**exponent
    scaled, scaled_grid = _trained(a * X, LatentMRVAE)
    np.testing.assert_allclose(scaled_grid, a * a * grid, rtol=1e-12)
    for beta in grid:
        p, q = model.params_at(beta), scaled.params_at(a * a * beta)
        assert _relative(q.E * a, p.E) <= COVARIANCE_TOLERANCE
        assert _relative(q.D / a, p.D) <= COVARIANCE_TOLERANCE
        assert np.max(np.abs(q.c - p.c)) <= COVARIANCE_TOLERANCE
        live = np.linalg.norm(p.D, axis=0) > 1e-6 * np.linalg.norm(p.D)
        assert np.array_equal(live, np.linalg.norm(q.D, axis=0) > 1e-6 * np.linalg.norm(q.D))
    np.testing.assert_allclose(scaled.decoder_bias() / a, model.decoder_bias(), atol=1e-12)


def test_compare_reports_the_same_excess_per_beta_at_every_scale(tmp_path):
    """The whole command's path (the full grid, the recipe, the exact evaluation, the excess
    formed without d/2·log 2π) is scale-covariant: excess/β of data aX is that of X, for
    data of spread 1e-7 (where the constant is 1e15 times the squared error) up to 1e3."""
    from linvae.compare import CompareConfig, run_comparison

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4)) @ np.diag([2.0, 1.0, 0.5, 0.1])
    per_beta = {}
    for a in (1.0, 1e-7, 1e3):
        path = tmp_path / f"x{a:g}.npy"
        np.save(path, a * X)
        config = CompareConfig(
            dataset=str(path), latent=2, steps=60, polish=20, baselines=0, floor="none"
        )
        comparison = run_comparison(config)
        per_beta[a] = comparison.excess / comparison.betas
    assert per_beta[1.0].max() > 1e-7  # a short run: an excess well above round-off
    for a in (1e-7, 1e3):  # measured: 8.4e-9 and 4.4e-9 relative
        np.testing.assert_allclose(per_beta[a], per_beta[1.0], rtol=1e-6)


@pytest.mark.parametrize("a", [1e-3, 1e3])
def test_the_beta_vae_of_the_recipe_is_scale_covariant_too(a):
    X, _ = load("gaussian", n=300, eigvals=[3.0, 1.0, 0.4, 0.1, 0.02], seed=1)
    (model, grid), (scaled, _) = _trained(X, one_layer_vae), _trained(a * X, one_layer_vae)
    p, q = model.params_at(grid[10]), scaled.params_at(a * a * grid[10])
    assert _relative(q.D / a, p.D) <= COVARIANCE_TOLERANCE
    assert _relative(q.E * a, p.E) <= COVARIANCE_TOLERANCE


def test_data_factors_are_in_the_data_units():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((6, 6)) * np.logspace(0, 5, 6)
    cov = torch.tensor(A @ A.T)
    f = data_factors(cov, 1e-3)
    eye = torch.eye(6, dtype=torch.float64)
    np.testing.assert_allclose((f.L @ f.L.T).numpy(), (cov + f.ridge * eye).numpy(), rtol=1e-12)
    np.testing.assert_allclose((f.P @ f.L).numpy(), np.eye(6), atol=1e-9)
    assert f.scale == pytest.approx(math.sqrt(float(torch.trace(cov)) / 6), rel=1e-15)
    g = data_factors(cov * 1e6, 1e3)  # a = 1e3
    np.testing.assert_allclose(g.L.numpy(), 1e3 * f.L.numpy(), rtol=1e-6)  # cond(S) ≈ 1e10
    assert g.scale == pytest.approx(1e3 * f.scale, rel=1e-14)
    plain = data_factors(cov, 1e-3, whiten=False)
    np.testing.assert_allclose(plain.L.numpy(), f.scale * np.eye(6), rtol=1e-15)


def test_data_factors_refuse_data_without_variance_and_floor_the_ridge():
    with pytest.raises(ValueError, match="no variance"):
        data_factors(torch.zeros(3, 3, dtype=torch.float64), 0.1)
    rank_one = torch.tensor([[1.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    f = data_factors(rank_one, 0.0)  # S singular and no ridge: the floor keeps chol defined
    assert f.ridge == pytest.approx(2e6 * np.finfo(float).eps)
    assert torch.isfinite(f.P).all()


def test_rank_deficient_data_train_without_a_cholesky_failure():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 10))  # rank 3, k = 5 ≥ rank
    eigvals = spectrum(moments(X).cov).eigvals
    grid = full_grid(eigvals, 5)
    model = LatentMRVAE(10, 5, beta_range=training_range(grid))
    result = train_recipe(model, X, RecipeConfig(steps=20, polish_iterations=5))
    assert math.isfinite(result.final_loss)


def test_the_full_grid_stops_at_the_numerical_rank():
    eigvals = np.array([2.0, 1e-17, 0.0])  # 1e-17 is round-off of a rank-1 covariance
    grid = full_grid(eigvals, 3)
    assert grid[0] == pytest.approx(1.0) and grid[-1] == pytest.approx(4.0)
    assert collapsed_latents(eigvals, 3) == 2 and collapsed_latents(eigvals, 1) == 0
    _, note = beta_grid("full", eigvals, 3)
    assert "numerical rank is 1 < k = 3" in note and "2 latents are collapsed" in note
    # just above the cutoff (1e6·ε·λ₁) an eigenvalue counts
    kept = np.array([2.0, 1e-8, 0.0])
    assert full_grid(kept, 2)[0] == pytest.approx(5e-9)


def test_digits_with_every_pixel_as_a_latent_has_a_grid_above_round_off():
    X, _ = load("digits")
    eigvals = spectrum(moments(X).cov).eigvals
    grid, note = beta_grid("full", eigvals, 64)
    assert grid[0] > 1e-10 * eigvals[0]
    assert "collapsed at the optimum" in note


def test_one_warning_line_when_feature_variances_span_many_decades():
    assert feature_scale_warning(np.diag([1.0, 2.0, 0.0])) is None  # a constant feature aside
    line = feature_scale_warning(np.diag([1e5, 1.0, 1e-3]))
    assert line is not None and "8.0 decades" in line and "\n" not in line


def test_the_recipe_refuses_film_models():
    from linvae.mrvae.model import LinearMRVAE

    X, _ = load("gaussian", n=100, eigvals=[2.0, 1.0, 0.5], seed=0)
    model = LinearMRVAE(3, 2, "film", "film", "film", beta_range=(0.1, 4.0))
    with pytest.raises(ValueError, match="without FiLM gates"):
        train_recipe(model, X, SHORT)
