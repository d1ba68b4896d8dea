"""linvae's recipe: one MR-VAE reaches the optimum at every β of the full grid (a small
problem, so that a regression in the recipe fails CI), the β-VAE trained the same way at
its own β, and the pieces of the recipe."""

import math

import numpy as np
import pytest
import torch
from test_batched_lbfgs import _HostReads

from linvae.analytic import full_grid, moments, rate_distortion, spectrum
from linvae.compare.evaluate import evaluate_model, excess_loss
from linvae.data import load
from linvae.mrvae import recipe
from linvae.mrvae.batched_lbfgs import batched_lbfgs
from linvae.mrvae.model import LatentMRVAE, model_from_config, one_layer_vae
from linvae.mrvae.recipe import (
    RecipeConfig,
    adam_dtype,
    polisher_for,
    train_recipe,
    training_range,
    whitening_factor,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

EIGVALS = [4.0, 2.0, 1.0, 0.5, 0.25, 0.12, 0.06, 0.03]


@pytest.fixture(scope="module")
def small():
    X, _ = load("gaussian", n=500, eigvals=EIGVALS, seed=3)
    return X, moments(X)


def test_whitening_factor_whitens():
    rng = np.random.default_rng(0)
    A = torch.tensor(rng.standard_normal((5, 5)))
    cov = A @ A.T
    P = whitening_factor(cov, 0.1)
    whitened = P @ (cov + 0.1 * torch.eye(5, dtype=torch.float64)) @ P.T
    np.testing.assert_allclose(whitened.numpy(), np.eye(5), atol=1e-12)


def test_training_range_halves_the_bottom_of_the_grid():
    assert training_range([0.2, 1.0, 8.0]) == (0.1, 8.0)


def test_the_latent_gated_family_has_frozen_identity_inner_layers_and_unit_slopes():
    model = LatentMRVAE(6, 3, beta_range=(0.01, 10.0))
    np.testing.assert_array_equal(model.encoder2.detach().numpy(), np.eye(3))
    assert not model.encoder2.requires_grad and not model.decoder1.requires_grad
    for gate in model.gate_modules():
        assert not gate.weight.requires_grad
        np.testing.assert_array_equal(gate.weight.detach().numpy(), 1.0)  # slope 1 in η
    params = model.params_at(0.1)
    assert params.E.shape == (3, 6) and params.D.shape == (6, 3)
    rebuilt = model_from_config(model.config())
    assert type(rebuilt) is LatentMRVAE and rebuilt.config() == model.config()


def test_thresholds_start_by_the_square_density_inside_the_range():
    lo, hi = 0.01, 10.0
    model = LatentMRVAE(4, 8, beta_range=(lo, hi))
    thresholds = -model.decoder1_gate.bias.detach().numpy()  # η₀ = −b for unit slope
    share = (thresholds - math.log(lo)) / (math.log(hi) - math.log(lo))
    q = (np.arange(8, 0, -1) - 0.5) / 8
    np.testing.assert_allclose(share, np.maximum(q**2, 0.05), rtol=1e-12)


def _default_recipe_on_the_full_grid(small, device="cpu", **settings):
    """A k = 4 MR-VAE trained by the default recipe (with ``settings``) on ``device``:
    (TrainResult, excess at every full-grid β, the grid)."""
    X, stats = small
    k = 4
    eigvals = spectrum(stats.cov).eigvals
    grid = full_grid(eigvals, k)
    beta_range = training_range(grid)
    model = LatentMRVAE(X.shape[1], k, beta_range=beta_range)
    config = RecipeConfig(**settings)
    result = train_recipe(model, X, config, beta_range=beta_range, device=device)
    loss = evaluate_model(model, stats.mean, stats.cov, grid)["loss"]
    excess = excess_loss(loss, rate_distortion(eigvals, k, grid).loss)  # raises below 0
    return result, excess, grid


def test_the_default_recipe_reaches_the_optimum_at_every_full_grid_beta(small):
    result, excess, grid = _default_recipe_on_the_full_grid(small)
    assert result.steps == RecipeConfig().steps and not result.interrupted
    assert result.polish_evaluations > 0
    assert excess.max() <= 0.01, (excess.max(), grid[int(np.argmax(excess))])


@pytest.mark.parametrize("blas", ["numpy", "torch"])
def test_adam_in_float32_products_still_reaches_the_optimum_after_the_float64_polish(small, blas):
    """``adam_precision="float32"`` (the default where d ≥ 1024): Adam's products in
    float32, the polish in float64 removes what their round-off left."""
    result, excess, grid = _default_recipe_on_the_full_grid(
        small, adam_precision="float32", blas=blas
    )
    assert result.polish_evaluations > 0
    assert excess.max() <= 0.01, (excess.max(), grid[int(np.argmax(excess))])


def test_auto_adam_precision_is_float32_from_d_1024_on():
    assert adam_dtype("auto", 1023, torch.float64) == torch.float64
    assert adam_dtype("auto", 1024, torch.float64) == torch.float32
    assert adam_dtype("float64", 5000, torch.float64) == torch.float64
    assert adam_dtype("float32", 8, torch.float64) == torch.float32
    for name, value in (("adam_precision", "float16"), ("blas", "mkl")):
        with pytest.raises(ValueError, match=name):
            RecipeConfig(**{name: value})


def test_the_beta_vae_trained_the_same_way_reaches_its_optimum(small):
    X, stats = small
    eigvals = spectrum(stats.cov).eigvals
    beta = 0.2
    model = one_layer_vae(X.shape[1], 4)
    train_recipe(model, X, RecipeConfig(steps=1000), beta=beta)
    loss = evaluate_model(model, stats.mean, stats.cov, [beta])["loss"]
    assert excess_loss(loss, rate_distortion(eigvals, 4, [beta]).loss).max() <= 0.01


@pytest.mark.parametrize("step", ["fused", "autograd"])
def test_an_interrupt_stops_before_the_polish_and_keeps_the_weights(small, monkeypatch, step):
    from linvae.mrvae import _step, recipe

    X, _ = small
    calls = {"n": 0}
    module, name = (_step, "objective_parts") if step == "fused" else (recipe, "exact_loss")
    real = getattr(module, name)

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, interrupted)
    model = LatentMRVAE(X.shape[1], 2, beta_range=(0.01, 8.0))
    config = RecipeConfig(steps=50, step=step)
    result = train_recipe(model, X, config, beta_range=(0.01, 8.0))
    assert result.interrupted and result.steps == 5 and result.polish_evaluations == 0
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_diverging_recipe_goes_back_to_finite_weights(small):
    X, _ = small
    model = LatentMRVAE(X.shape[1], 2, beta_range=(0.01, 8.0))
    result = train_recipe(model, X, RecipeConfig(steps=200, lr=1e6), beta_range=(0.01, 8.0))
    assert result.diverged_at is not None
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("min_open", [0.05, 0.3])
def test_every_sqrt_gate_stays_open_at_the_bottom_of_the_range(small, min_open):
    X, _ = small
    lo, hi = 0.01, 10.0
    model = LatentMRVAE(X.shape[1], 4, beta_range=(lo, hi))
    config = RecipeConfig(steps=200, lr=0.3, polish_iterations=0, min_open=min_open)
    train_recipe(model, X, config, beta_range=(lo, hi))
    bound = math.log(lo) + min_open * (math.log(hi) - math.log(lo))
    for gate in (model.encoder2_gate, model.decoder1_gate):
        thresholds = (gate.input_center - gate.bias).detach().numpy()  # η₀ for unit slope
        assert thresholds.min() >= bound - 1e-12


def test_min_open_zero_leaves_the_thresholds_free(small):
    X, _ = small
    lo, hi = 0.01, 10.0
    model = LatentMRVAE(X.shape[1], 4, beta_range=(lo, hi))
    config = RecipeConfig(steps=200, lr=0.3, polish_iterations=0, min_open=0.0)
    train_recipe(model, X, config, beta_range=(lo, hi))
    bound = math.log(lo) + 0.3 * (math.log(hi) - math.log(lo))
    thresholds = [
        (gate.input_center - gate.bias).detach().numpy()
        for gate in (model.encoder2_gate, model.decoder1_gate)
    ]
    assert min(t.min() for t in thresholds) < bound  # the projection above did bind


def test_resume_must_be_a_bool():
    with pytest.raises(TypeError, match="resume must be True or False"):
        RecipeConfig(resume="yes")


def test_min_open_must_be_a_share_of_the_range():
    with pytest.raises(ValueError, match="min_open must be in"):
        RecipeConfig(min_open=1.0)


@pytest.mark.gpu
def test_the_default_recipe_reaches_the_optimum_on_cuda_too(small):
    """The default path of ``python -m linvae.compare --device cuda``: the same recipe on the
    GPU reaches the optimum at every full-grid β (its float64 arithmetic differs from the
    CPU's in the last bits, so the check is the bar, not equality)."""
    _, excess, grid = _default_recipe_on_the_full_grid(small, device="cuda")
    assert excess.max() <= 0.01, (excess.max(), grid[int(np.argmax(excess))])


def test_continuing_a_trained_model_starts_from_it(small):
    """resume=True keeps the model as it is: whitening reparametrises E₁ = W P with
    W = E₁ P⁻¹, and the decoder is not rescaled, so zero further steps change nothing."""
    X, _ = small
    model = LatentMRVAE(X.shape[1], 4, beta_range=(0.02, 8.0))
    train_recipe(model, X, RecipeConfig(steps=200, polish_iterations=0))
    before = [model.params_at(beta) for beta in (0.05, 1.0)]
    kept = RecipeConfig(steps=0, polish_iterations=0, resume=True)
    train_recipe(model, X, kept)
    for old, new in zip(before, [model.params_at(beta) for beta in (0.05, 1.0)], strict=True):
        for a, b in zip(old, new, strict=True):
            np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)


def test_the_polish_keeps_gates_open_between_its_runs_and_shuts_worthless_latents_at_the_end():
    """Latents beyond the rank are worthless, so the loss shuts their gates. Between the
    L-BFGS runs of the polish the σ_D gates are kept open on the bottom ``min_open`` of the
    range again, as after each Adam step (or a latent shut by one run is dead for good);
    after the last run they are not, so the worthless latents end shut and pay no rate
    at the range's bottom, while the live ones stay open above the floor."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2)) @ rng.normal(size=(2, 6))  # rank 2, k = 4
    grid = full_grid(spectrum(moments(X).cov).eigvals, 4)
    lo, hi = training_range(grid)
    model = LatentMRVAE(6, 4, beta_range=(lo, hi), seed=0)
    config = RecipeConfig(steps=30, polish_iterations=200, polish_rounds=4)
    opened = []
    original = LatentMRVAE.open_projection  # keep_open's, and Adam's formed once

    def counted(self, log_beta_min, latents=None):
        project = original(self, log_beta_min, latents)

        def counted_project():
            opened.append(log_beta_min)
            project()

        return counted_project

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LatentMRVAE, "open_projection", counted)
        train_recipe(model, X, config)
    assert len(opened) == config.steps + config.polish_rounds - 1
    floor = math.log(lo) + config.min_open * (math.log(hi) - math.log(lo))
    thresholds = np.sort((model.encoder2_gate.input_center - model.encoder2_gate.bias).detach())
    assert thresholds[2:].min() >= floor  # the two live latents
    assert thresholds[:2].max() < floor  # the two worthless ones, shut on the whole range
    params = model.params_at(lo)
    worthless = np.argsort(np.linalg.norm(params.D, axis=0))[:2]
    assert np.abs(params.E[worthless]).max() == 0.0  # shut gates: the rows are exactly 0
    c = params.c[worthless]
    assert np.all(0.5 * (c - 1.0 - np.log(c)) <= 1e-15)  # their rate (eq. 14): none


@pytest.mark.parametrize("weight", ["flat", "inverse", "both"])
def test_every_polish_weight_is_free_of_the_data_scale(weight):
    """The polish's objective in each weighting trains the scaled model on scaled data."""
    X, _ = load("gaussian", n=200, eigvals=[2.0, 0.5, 0.1], seed=0)
    config = RecipeConfig(steps=20, polish_iterations=20, polish_weight=weight)
    models = []
    for a in (1.0, 1e3):
        grid = full_grid(spectrum(moments(a * X).cov).eigvals, 2)
        model = LatentMRVAE(3, 2, beta_range=training_range(grid), seed=0)
        train_recipe(model, a * X, config)
        models.append((model, grid))
    (one, grid), (scaled, _) = models
    p, q = one.params_at(grid[3]), scaled.params_at(1e6 * grid[3])
    np.testing.assert_allclose(q.D / 1e3, p.D, rtol=1e-6, atol=1e-9 * np.abs(p.D).max())


def test_a_polish_whose_line_search_ends_in_nan_puts_back_the_weights_it_started_from(
    monkeypatch,
):
    """torch's L-BFGS returns the loss it started from, so its return value cannot tell a
    line search that left NaN weights behind: the polish checks the loss at its end."""
    X, _ = load("gaussian", n=200, eigvals=[2.0, 0.5, 0.1], seed=0)
    grid = full_grid(spectrum(moments(X).cov).eigvals, 2)

    def trained(polish_iterations):
        model = LatentMRVAE(3, 2, beta_range=training_range(grid), seed=0)
        train_recipe(model, X, RecipeConfig(steps=10, polish_iterations=polish_iterations))
        return model

    def idle_step(self, closure):  # an L-BFGS that leaves the weights as they are
        return closure()

    def poisoned_step(self, closure):
        loss = closure()
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    p.fill_(math.nan)
        return loss  # finite: what L-BFGS returns

    # the polish's own set-up (re-whitening, the encoder's unexcited directions dropped,
    # the gates kept open between runs) is kept; only the line searches' weights go
    monkeypatch.setattr(torch.optim.LBFGS, "step", idle_step)
    idle = trained(8)
    monkeypatch.setattr(torch.optim.LBFGS, "step", poisoned_step)
    polished = trained(8)
    for name, tensor in polished.state_dict().items():
        assert torch.isfinite(tensor).all(), name
        np.testing.assert_array_equal(tensor, idle.state_dict()[name])


@pytest.mark.parametrize("share_from", [0.0, 0.5])
def test_thresholds_shared_from_a_step_on_end_equal_in_tensors_of_their_own(small, share_from):
    X, stats = small
    grid = full_grid(spectrum(stats.cov).eigvals, 3)
    model = LatentMRVAE(8, 3, beta_range=training_range(grid), seed=0)
    config = RecipeConfig(steps=40, polish_iterations=10, share_thresholds_from=share_from)
    train_recipe(model, X, config)
    encoder, covariance, decoder = model.gate_modules()
    for other in (covariance, decoder):
        assert torch.equal(other.bias, encoder.bias)
        assert other.bias.data_ptr() != encoder.bias.data_ptr()  # safetensors refuses shared
    untied = LatentMRVAE(8, 3, beta_range=training_range(grid), seed=0)
    train_recipe(
        untied, X, RecipeConfig(steps=40, polish_iterations=10, share_thresholds_from=None)
    )
    assert not torch.equal(untied.encoder2_gate.bias, untied.decoder1_gate.bias)


def test_share_thresholds_from_is_a_share_of_the_steps_or_none():
    assert RecipeConfig(share_thresholds_from=None).share_thresholds_from is None
    with pytest.raises(ValueError, match="share_thresholds_from"):
        RecipeConfig(share_thresholds_from=1.5)


@pytest.mark.parametrize("precondition", [True, False])
def test_the_closed_form_polish_follows_the_autograd_polish(small, precondition):
    """The polish through the fused step's closed-form gradient (3 d² products an
    evaluation) and through autograd (6) take the same L-BFGS path: the same weights to
    round-off after 60 Adam steps and 24 polish iterations in 4 runs, the encoder
    re-whitened and its rows preconditioned or not."""
    X, stats = small
    grid = full_grid(spectrum(stats.cov).eigvals, 4)
    trained = {}
    for step in ("fused", "autograd"):
        model = LatentMRVAE(8, 4, beta_range=training_range(grid), seed=0)
        config = RecipeConfig(steps=60, polish_iterations=24, step=step,
                              precondition_polish=precondition)  # fmt: skip
        result = train_recipe(model, X, config)
        assert result.polish_evaluations > 24  # the line searches evaluated more than once
        trained[step] = (result.final_loss, model.state_dict())
    (fused_loss, fused), (loss, reference) = trained["fused"], trained["autograd"]
    assert fused_loss == pytest.approx(loss, rel=1e-9)
    for name, tensor in reference.items():
        np.testing.assert_allclose(fused[name].numpy(), tensor.numpy(), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize(
    "settings",
    [{}, {"step": "autograd"}, {"polish_form": "residual"}, {"precondition_polish": False}],
)
def test_the_device_polish_reads_nothing_to_the_host_within_a_run(small, monkeypatch, settings):
    """Every run of the device polisher (closed-form, autograd and residual evaluations,
    preconditioned or not) under a dispatch mode that raises on a host read."""
    X, stats = small
    runs = []

    def checked(*args, **kwargs):
        with _HostReads():
            result = batched_lbfgs(*args, **kwargs)
        runs.append(result.evaluations)
        return result

    monkeypatch.setattr(recipe, "batched_lbfgs", checked)
    grid = full_grid(spectrum(stats.cov).eigvals, 3)
    model = LatentMRVAE(8, 3, beta_range=training_range(grid), seed=0)
    config = RecipeConfig(steps=20, polish_iterations=12, polisher="device", **settings)
    result = train_recipe(model, X, config)
    assert runs == [1 + 3] * 4  # four runs of 3 iterations, each an evaluation
    assert result.polish_evaluations == 16 and math.isfinite(result.final_loss)


def test_the_device_polish_reaches_the_optimum_as_the_strong_wolfe_polish_does(small):
    """After a short Adam, both polishers end every full-grid β within a few thousand ε of
    the analytic optimum (relative to the largest |loss|)."""
    X, stats = small
    k = 4
    eigvals = spectrum(stats.cov).eigvals
    grid = full_grid(eigvals, k)
    optimum = rate_distortion(eigvals, k, grid).loss
    excess = {}
    for polisher in ("strong-wolfe", "device"):
        model = LatentMRVAE(8, k, beta_range=training_range(grid), seed=0)
        config = RecipeConfig(steps=300, polish_iterations=400, polisher=polisher)
        train_recipe(model, X, config, beta_range=training_range(grid))
        loss = evaluate_model(model, stats.mean, stats.cov, grid)["loss"]
        excess[polisher] = excess_loss(loss, optimum)  # raises below the optimum
    # |L| ≤ 11.4 here; the 300 Adam steps alone leave 3.9e-8 (measured), the bound 1.1e-11
    bound = 1e-12 * np.abs(optimum).max()
    assert excess["strong-wolfe"].max() <= bound
    assert excess["device"].max() <= bound


def _polished(X, grid, monkeypatch, polish):
    """A k = 2 model after 10 Adam steps and one device-polish run, the batched L-BFGS
    replaced by ``polish(objective, params, iterations)``: (model, TrainResult)."""
    monkeypatch.setattr(recipe, "batched_lbfgs", polish)
    model = LatentMRVAE(3, 2, beta_range=training_range(grid), seed=0)
    config = RecipeConfig(steps=10, polish_iterations=8, polish_rounds=1, polisher="device")
    return model, train_recipe(model, X, config)


def test_a_device_polish_interrupted_or_ending_non_finite_puts_back_its_start(monkeypatch):
    X, _ = load("gaussian", n=200, eigvals=[2.0, 0.5, 0.1], seed=0)
    grid = full_grid(spectrum(moments(X).cov).eigvals, 2)

    def idle(objective, params, iterations):  # evaluates, leaves the weights as they are
        return batched_lbfgs(objective, params, 0)

    def interrupted(objective, params, iterations):
        calls = []

        def stopping(tensors):
            calls.append(None)
            if len(calls) == 3:
                raise KeyboardInterrupt
            return objective(tensors)

        return batched_lbfgs(stopping, params, iterations)

    def poisoned(objective, params, iterations):
        result = batched_lbfgs(objective, params, iterations)
        with torch.no_grad():
            params[0].fill_(math.nan)
        return result

    start, _ = _polished(X, grid, monkeypatch, idle)
    for polish, was_interrupted in ((interrupted, True), (poisoned, False)):
        model, result = _polished(X, grid, monkeypatch, polish)
        assert result.interrupted is was_interrupted
        for name, tensor in model.state_dict().items():
            np.testing.assert_array_equal(tensor, start.state_dict()[name])


@pytest.mark.parametrize(("value", "error"), [("lbfgs", ValueError), (None, ValueError)])
def test_the_polisher_is_one_of_its_choices(value, error):
    with pytest.raises(error, match="polisher"):
        RecipeConfig(polisher=value)


def test_auto_polishes_on_the_device_on_cuda_and_by_strong_wolfe_elsewhere():
    assert RecipeConfig().polisher == "auto"
    assert polisher_for("auto", torch.device("cuda", 0)) == "device"
    assert polisher_for("auto", torch.device("cpu")) == "strong-wolfe"
    assert polisher_for("device", torch.device("cpu")) == "device"
