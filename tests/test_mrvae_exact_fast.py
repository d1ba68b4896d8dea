"""exact_loss: the same value and gradients as its reference form exact_loss_tables, which
forms (d, h, h) tables of row products."""

import math

import numpy as np
import pytest
import torch
from test_mrvae_model import GATE_CHOICES, perturbed_model

from linvae.mrvae.gates import Gate
from linvae.mrvae.objectives import exact_loss, exact_loss_tables

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def moments(d, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((50, d)) @ rng.standard_normal((d, d)) + rng.standard_normal(d)
    mean = X.mean(axis=0)
    return torch.tensor(mean), torch.tensor((X - mean).T @ (X - mean) / X.shape[0])


def ungated_outer(model):
    """The same model with its second encoder layer and decoder output layer ungated."""
    model.encoder2_gate = Gate(model.k, "none")
    model.decoder2_gate = Gate(model.d, "none")
    return model


def values_and_gradients(loss_fn, model, log_beta, mean, cov):
    model.zero_grad(set_to_none=True)
    terms = loss_fn(model, log_beta, mean, cov)
    terms.loss.backward()
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    return terms, grads


@pytest.mark.parametrize("outer", ["gated", "ungated"])
@pytest.mark.parametrize("gates", GATE_CHOICES)
def test_exact_loss_equals_the_table_form_to_1e12(gates, outer):
    model = perturbed_model(gates, d=7, k=3, hidden=5)
    if outer == "ungated":
        model = ungated_outer(model)
    mean, cov = moments(model.d, seed=2)  # input_mean ≠ mean: latent offsets are exercised
    log_beta = torch.tensor(np.log([0.01, 0.07, 0.5, 3.0, 10.0]))
    ref, ref_grads = values_and_gradients(exact_loss_tables, model, log_beta, mean, cov)
    fast, fast_grads = values_and_gradients(exact_loss, model, log_beta, mean, cov)
    for a, b in zip(ref, fast, strict=True):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-12, atol=0)
    assert len(ref_grads) == len(fast_grads)
    for a, b in zip(ref_grads, fast_grads, strict=True):
        scale = max(a.abs().max().item(), 1e-300)
        assert (a - b).abs().max().item() <= 1e-12 * scale


def test_encoder1_override_is_used_and_differentiated():
    model = ungated_outer(perturbed_model(("sqrt", "sqrt", "hinge"), d=6, k=2, hidden=3))
    mean, cov = moments(model.d, seed=3)
    W = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    P = torch.linalg.inv(torch.linalg.cholesky(cov + 0.1 * torch.eye(6, dtype=torch.float64)))
    log_beta = torch.tensor([math.log(0.3)])
    loss = exact_loss(model, log_beta, mean, cov, encoder1=W @ P).loss
    loss.backward()
    with torch.no_grad():
        model.encoder1.copy_(W @ P)
    assert loss.item() == pytest.approx(
        exact_loss_tables(model, log_beta, mean, cov).loss.item(), rel=1e-12
    )
    assert W.grad is not None and torch.isfinite(W.grad).all()
