"""Training: schedule, reproducibility, interruption, and the excess loss shrinking."""

import io
import math

import numpy as np
import pytest
import torch

from linvae._progress import TrainingBar
from linvae.analytic import moments, rate_distortion
from linvae.compare.evaluate import evaluate_model, excess_loss
from linvae.data import load
from linvae.mrvae import train as train_module
from linvae.mrvae.model import LinearMRVAE, LinearVAE
from linvae.mrvae.train import (
    TrainConfig,
    learning_rate_factor,
    resolve_device,
    train,
)

EIGVALS = [3.0, 1.0, 0.3, 0.05]  # cutoffs inside the default β range (0.01, 10)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def gaussian():
    X, _ = load("gaussian", n=400, eigvals=EIGVALS, seed=1)
    return X


def mean_excess(model, X, grid, k):
    stats = moments(X)
    loss = evaluate_model(model, stats.mean, stats.cov, grid)["loss"]
    return excess_loss(loss, rate_distortion(np.array(EIGVALS), k, grid).loss)


def test_learning_rate_rises_linearly_then_decays_to_zero():
    steps, warmup = 100, 10
    factors = np.array([learning_rate_factor(s, steps, warmup) for s in range(steps)])
    np.testing.assert_allclose(factors[:warmup], np.arange(1, warmup + 1) / warmup, rtol=1e-15)
    assert np.all(np.diff(factors[warmup - 1 :]) <= 0)
    # the last update has factor ½(1 + cos(π·90/91)), the decay reaches 0 one step later
    assert factors[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 90 / 91)), rel=1e-14)
    assert learning_rate_factor(steps, steps, warmup) == pytest.approx(0.0, abs=1e-15)


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["exact", "sampled"])
def test_excess_is_nonnegative_and_shrinks_with_training(gaussian, objective):
    grid = np.geomspace(0.01, 10.0, 9)
    excess = []
    for steps in (30, 300, 1500):
        # shared thresholds: with k = 2 a staggered unit starts shut on most of the range
        model = LinearMRVAE(4, 2, covariance_gate="hinge", seed=0, staggered=False)
        train(
            model, gaussian, TrainConfig(steps=steps, lr=2e-2, batch_size=64, objective=objective)
        )
        excess.append(mean_excess(model, gaussian, grid, 2))  # raises if below the optimum
    means = [e.mean() for e in excess]
    assert means[0] > means[1] > means[2]
    assert means[2] < 0.1 * means[0]


@pytest.mark.parametrize("objective", ["exact", "sampled"])
def test_training_is_reproducible_from_the_seed(gaussian, objective):
    def run(seed):
        model = LinearMRVAE(4, 2, seed=0)
        train(model, gaussian, TrainConfig(steps=15, seed=seed, objective=objective))
        return model.params_at(0.3)

    a, b, c = run(5), run(5), run(6)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.E, c.E)


def test_beta_vae_trains_towards_its_optimum(gaussian):
    model = LinearVAE(4, 2)
    before = mean_excess(model, gaussian, [0.2], 2)[0]
    train(model, gaussian, TrainConfig(steps=400, lr=2e-2, objective="exact"), beta=0.2)
    after = mean_excess(model, gaussian, [0.2], 2)[0]
    assert after < 1e-2 * before


def test_keyboard_interrupt_stops_cleanly_and_keeps_the_weights(gaussian):
    model = LinearMRVAE(4, 2)
    initial = model.encoder1.detach().clone()

    def interrupt(step, steps, loss, elapsed):
        if step == 7:
            raise KeyboardInterrupt

    result = train(model, gaussian, TrainConfig(steps=50), progress=interrupt)
    assert result.interrupted
    assert result.steps == 7
    assert math.isfinite(result.final_loss)
    assert not torch.equal(model.encoder1.detach(), initial)


def test_per_batch_sampling_draws_one_beta_per_step(gaussian, monkeypatch):
    seen = []
    original = train_module.sampled_loss

    def spy(model, x, log_beta, noise):
        seen.append(log_beta.clone())
        return original(model, x, log_beta, noise)

    monkeypatch.setattr(train_module, "sampled_loss", spy)
    train(LinearMRVAE(4, 2), gaussian, TrainConfig(steps=3, batch_size=16, beta_sampling="batch"))
    train(LinearMRVAE(4, 2), gaussian, TrainConfig(steps=3, batch_size=16, beta_sampling="example"))
    assert all(torch.unique(b).numel() == 1 for b in seen[:3])
    assert all(torch.unique(b).numel() == 16 for b in seen[3:])
    low, high = math.log(0.01), math.log(10.0)
    assert all(torch.all((b >= low) & (b <= high)) for b in seen)


def test_training_sets_the_encoder_centre_to_the_data_mean(gaussian):
    model = LinearMRVAE(4, 2)
    train(model, gaussian, TrainConfig(steps=1))
    np.testing.assert_allclose(
        model.input_mean.numpy(), gaussian.mean(axis=0), rtol=1e-12, atol=1e-15
    )


def test_the_training_bar_is_tqdms_with_the_step_and_the_running_loss():
    stream = io.StringIO()
    bar = TrainingBar("MR-VAE", file=stream, disable=False, mininterval=0.0)
    bar(5, 10, 1.25, 0.5)
    bar(10, 10, 1.0, 1.0)
    bar.close("interrupted")
    last = stream.getvalue().split("\r")[-1]
    assert last.startswith("MR-VAE: 100%") and "10/10" in last and last.endswith("\n")
    assert "interrupted" in last


def test_the_training_bar_is_silent_when_stderr_is_not_a_terminal():
    stream = io.StringIO()  # not a terminal: tqdm's disable=None draws nothing
    bar = TrainingBar("MR-VAE", file=stream)
    bar(10, 10, 1.0, 1.0)
    bar.close()
    assert stream.getvalue() == ""


def test_auto_device_is_cpu_without_cuda():
    if torch.cuda.is_available():
        assert resolve_device("auto").type == "cuda"
    else:
        assert resolve_device("auto").type == "cpu"
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"steps": 0}, ValueError, "steps must be >= 1"),
        ({"steps": 2.5}, TypeError, "steps must be an int"),
        ({"lr": -1.0}, ValueError, "lr must be finite and > 0"),
        ({"objective": "elbo"}, ValueError, "objective must be one of"),
        ({"beta_sampling": "step"}, ValueError, "beta_sampling must be one of"),
        ({"warmup_fraction": 1.0}, ValueError, "warmup_fraction must be in"),
        ({"beta_range": (1.0, 1.0)}, ValueError, "0 < lo < hi"),
    ],
)
def test_train_config_rejects_bad_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        TrainConfig(**kwargs)


def test_train_rejects_bad_data_and_beta(gaussian):
    model = LinearMRVAE(4, 2)
    with pytest.raises(ValueError, match=r"X must have shape \(n >= 2, 4\)"):
        train(model, gaussian[:, :3], TrainConfig(steps=1))
    bad = gaussian.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="X must be finite"):
        train(model, bad, TrainConfig(steps=1))
    with pytest.raises(ValueError, match="beta must be finite and > 0"):
        train(model, gaussian, TrainConfig(steps=1), beta=0.0)
    with pytest.raises(ValueError, match="device"):
        train(model, gaussian, TrainConfig(steps=1), device="tpu")


@pytest.mark.gpu
def test_cuda_training_matches_the_cpu_closely(gaussian):
    results = []
    for device in ("cpu", "cuda"):
        model = LinearMRVAE(4, 2, seed=0)
        train(model, gaussian, TrainConfig(steps=200, objective="exact"), device=device)
        results.append(model.params_at(0.3))
    for u, v in zip(*results, strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-9)


def test_a_diverging_run_stops_and_keeps_its_last_finite_weights(gaussian, monkeypatch):
    # a loss that turns to NaN at step 7: the run stops at the next check and goes back
    # to the weights of the last check with a finite loss
    monkeypatch.setattr(train_module, "READ_INTERVAL", 0.0)  # check after every step
    original = train_module.sampled_loss
    calls = {"n": 0}

    def poisoned(*args):
        calls["n"] += 1
        terms = original(*args)
        return terms if calls["n"] < 7 else terms._replace(loss=terms.loss * float("nan"))

    monkeypatch.setattr(train_module, "sampled_loss", poisoned)
    model = LinearMRVAE(4, 2, seed=0)
    result = train(model, gaussian, TrainConfig(steps=50))
    assert result.diverged_at == 7
    # step 7's loss is that of the weights after 6 updates: those after 5 are the last
    # whose loss was seen finite
    assert result.steps == 5 and np.isfinite(result.final_loss)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert calls["n"] == 7  # it stopped at the check after the bad step


def test_a_huge_learning_rate_diverges_cleanly(gaussian):
    model = LinearMRVAE(4, 2, seed=0)
    result = train(model, gaussian, TrainConfig(steps=400, lr=1e6, objective="exact"))
    assert result.diverged_at is not None and result.steps < result.diverged_at
    assert all(torch.isfinite(p).all() for p in model.parameters())
