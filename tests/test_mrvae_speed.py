"""The training loop's speed machinery: chunked draws, deferred loss reads, compiled steps.

Behaviour only: nothing here is timed (benchmarks/training.py measures).
"""

import math

import numpy as np
import pytest
import torch

from linvae.data import load
from linvae.mrvae import _compiled
from linvae.mrvae import train as train_module
from linvae.mrvae.model import LinearMRVAE
from linvae.mrvae.train import TrainConfig, train

EIGVALS = [3.0, 1.0, 0.3, 0.05]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def gaussian():
    X, _ = load("gaussian", n=200, eigvals=EIGVALS, seed=1)
    return X


def trained(X, device="cpu", **settings):
    model = LinearMRVAE(4, 3, "sqrt", "sqrt", "hinge", hidden=5, seed=0)
    result = train(model, X, TrainConfig(**settings), device=device)
    return model, result


def weights(model):
    return [p.detach().cpu().clone() for p in model.parameters()]


@pytest.mark.parametrize("objective", ["sampled", "exact"])
def test_drawing_in_chunks_of_steps_changes_no_number(gaussian, objective, monkeypatch):
    # 30 steps of 64 examples from 200: epochs end inside chunks and across them
    settings = {"steps": 30, "batch_size": 64, "objective": objective, "seed": 3}
    reference = weights(trained(gaussian, **settings)[0])
    monkeypatch.setattr(train_module, "_CHUNK_STEPS", 7)
    for a, b in zip(reference, weights(trained(gaussian, **settings)[0]), strict=True):
        assert torch.equal(a, b)


def test_without_progress_the_loss_is_read_only_to_check_for_divergence(gaussian, monkeypatch):
    # no read (device synchronisation) per step: at the first step, between intervals, at
    # the last step (the divergence checks) and once for final_loss
    reads = []
    original = train_module._window_mean
    monkeypatch.setattr(
        train_module, "_window_mean", lambda w, c: reads.append(c) or original(w, c)
    )
    monkeypatch.setattr(train_module, "READ_INTERVAL", math.inf)
    trained(gaussian, steps=40)
    assert reads == [1, 40, 40]


def test_progress_reads_the_loss_at_the_first_and_last_step_between_intervals(
    gaussian, monkeypatch
):
    reads, shown = [], []
    original = train_module._window_mean
    monkeypatch.setattr(
        train_module, "_window_mean", lambda w, c: reads.append(c) or original(w, c)
    )
    monkeypatch.setattr(train_module, "READ_INTERVAL", math.inf)
    model = LinearMRVAE(4, 3, seed=0)
    train(model, gaussian, TrainConfig(steps=40), progress=lambda s, n, loss, t: shown.append(loss))
    assert reads == [1, 40, 40]  # first step, last step, final_loss
    assert len(shown) == 40  # progress still sees every step
    assert len(set(shown[:39])) == 1  # the value read at step 1, until the next read


def test_progress_and_final_loss_are_the_mean_of_the_last_fifty_losses(gaussian, monkeypatch):
    losses, shown = [], []
    original = train_module.sampled_loss

    def spy(*args):
        terms = original(*args)
        losses.append(terms.loss.item())
        return terms

    monkeypatch.setattr(train_module, "sampled_loss", spy)
    monkeypatch.setattr(train_module, "READ_INTERVAL", 0.0)
    result = train(
        LinearMRVAE(4, 3, seed=0),
        gaussian,
        TrainConfig(steps=70),
        progress=lambda s, n, loss, t: shown.append(loss),
    )
    expected = [np.mean(losses[max(0, i - 49) : i + 1]) for i in range(70)]
    np.testing.assert_allclose(shown, expected, rtol=1e-13)
    assert result.final_loss == pytest.approx(np.mean(losses[-50:]), rel=1e-13)


def test_graph_mode_on_the_cpu_warns_and_trains_eagerly(gaussian):
    eager = weights(trained(gaussian, steps=10, objective="exact")[0])
    with pytest.warns(RuntimeWarning, match="compile='graph' needs a CUDA device"):
        model, _ = trained(gaussian, steps=10, objective="exact", compile="graph")
    for a, b in zip(eager, weights(model), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("objective", ["exact", "sampled"])
def test_compiled_training_equals_eager_training(gaussian, objective, monkeypatch):
    # the aot_eager backend traces with dynamo and derives the backward pass with
    # AOTAutograd, as inductor does, in a second instead of tens (inductor on this CPU:
    # equal to 1.1e-16 after 40 steps, measured in the history of docs/results.md)
    original = _compiled.compiled_step
    monkeypatch.setattr(
        train_module,
        "compiled_step",
        lambda *args: original(*args, backend="aot_eager"),
    )
    settings = {"steps": 20, "batch_size": 16, "objective": objective}
    eager = weights(trained(gaussian, **settings)[0])
    compiled = weights(trained(gaussian, compile="compile", **settings)[0])
    for a, b in zip(eager, compiled, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-12, atol=1e-14)


def test_a_failing_compiler_falls_back_to_the_eager_step_with_a_warning():
    def failing_backend(graph, example_inputs):
        raise RuntimeError("no C compiler")

    weight = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)

    def loss(x):
        return ((weight * x) ** 2).sum()

    step = _compiled.compiled_step(
        loss, "compile", torch.device("cpu"), [weight], backend=failing_backend
    )
    x = torch.tensor([3.0, 4.0], dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="torch.compile failed.*runs eagerly"):
        value = step(x)
    assert value.item() == 9.0 + 64.0
    assert not value.requires_grad
    torch.testing.assert_close(weight.grad, 2 * weight.detach() * x**2, rtol=0, atol=0)
    weight.grad = None
    assert step(x).item() == 73.0  # later calls stay eager, without a warning


def test_train_config_rejects_an_unknown_compile_mode():
    with pytest.raises(ValueError, match="compile must be one of"):
        TrainConfig(compile="jit")


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["compile", "graph"])
def test_compiled_cuda_training_matches_eager_cuda_training(gaussian, mode):
    settings = {"steps": 50, "batch_size": 32, "objective": "exact"}
    eager = weights(trained(gaussian, device="cuda", **settings)[0])
    compiled = weights(trained(gaussian, device="cuda", compile=mode, **settings)[0])
    for a, b in zip(eager, compiled, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-10, atol=1e-12)
