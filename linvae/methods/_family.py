"""The training of the families held in the data's units (:class:`linvae.mrvae.maps.LinearFamily`):
one Adam loop on the exact loss or the sampled ELBO of their maps, shared by every method
that trains one."""

from __future__ import annotations

import math

import numpy as np
import torch

from linvae._checks import as_beta_range
from linvae.analytic import moments
from linvae.mrvae.maps import (
    LinearFamily,
    exact_step,
    maps_of_model,
    sampled_step,
    train_loop,
)

from ._base import Budget, Trained


def data_tensors(X):
    """``(data (n, d), mean (d,), cov (d, d))`` as float64 tensors; ``cov`` the ML covariance."""
    stats = moments(X)
    data = torch.as_tensor(np.asarray(X, dtype=np.float64))
    return data, torch.as_tensor(stats.mean), torch.as_tensor(stats.cov)


def train_family(
    family: LinearFamily,
    X,
    beta_range,
    budget: Budget,
    draw,
    *,
    lr: dict,
    betas_per_step: int = 16,
    batch_size: int = 128,
    notes: dict | None = None,
) -> Trained:
    """Train ``family`` on X for ``budget.steps`` Adam steps with ``budget.objective``.

    ``draw(count, generator)`` gives η for a step: ``betas_per_step`` of them for the
    exact objective, one per example of a ``batch_size`` mini-batch for the sampled ELBO.
    ``lr`` maps each objective to its peak learning rate.
    """
    lo, _ = as_beta_range(beta_range)
    data, mean, cov = data_tensors(X)
    family.prepare(mean, cov, lo)
    if budget.objective == "exact":
        step = exact_step(family, mean, cov, draw, betas_per_step)
    else:
        step = sampled_step(family, data, draw, batch_size)
    result = train_loop(family, step, budget.steps, lr[budget.objective], seed=budget.seed)
    record = {
        "steps": result.steps,
        "lr": lr[budget.objective],
        "final_loss": result.final_loss if math.isfinite(result.final_loss) else None,
        "diverged_at": result.diverged_at,
        **({"betas_per_step": betas_per_step} if budget.objective == "exact" else {}),
        **({"batch_size": batch_size} if budget.objective == "sampled" else {}),
        **(notes or {}),
    }
    return Trained(family.maps, family, record)


def mrvae_floor(X, betas, beta_range, k: int, gates: dict, iterations: int):
    """An MR-VAE family's floor as ``--floor model`` fits it
    (:func:`linvae.mrvae.floor.representation_floor`), moved to the data's mean.

    The fit is made at data mean 0 with the decoder bias 0; the same model with
    ``input_mean`` and bias at the data's mean has the same excess on the data.
    Returns ``(Trained, start)``.
    """
    from linvae.mrvae.floor import representation_floor

    _, mean, cov = data_tensors(X)
    fit = representation_floor(
        cov.numpy(), k, betas, **gates, beta_range=tuple(beta_range), max_iterations=iterations
    )
    model = fit.model
    model.set_input_mean(mean.numpy())
    with torch.no_grad():
        model.bias.copy_(mean)
    start = "; ".join(f"{part}: {how}" for part, how in fit.start.items())
    return Trained(lambda log_beta: maps_of_model(model, log_beta), model), start


def optimum_basis(family: LinearFamily, cov: torch.Tensor) -> torch.Tensor:
    """Load the optimum's β-free factors into a prepared family, in place (a floor's start).

    At the optimum (eq. 23, R = I) ``E*(β) = diag(σ(β)) Λ^{-1/2}Uᵀ`` and ``D*(β) = UΛ^{1/2}
    diag(σ(β))``, ``σ_j(β) = (1 − β/λ_j)₊^{1/2}``, ``c*_j = min(1, β/λ_j)``: the family's
    ``W P = Λ^{-1/2}Uᵀ`` and ``scale·V = UΛ^{1/2}`` (zero for a latent beyond the rank);
    what depends on β is left to the family. Returns λ of shape (k,) (0 beyond the rank).
    """
    from linvae.analytic import spectrum

    spec = spectrum(cov.numpy())
    k = family.k
    lam = np.zeros(k)
    U = np.zeros((family.d, k))
    m = min(k, spec.eigvals.shape[0])
    lam[:m], U[:, :m] = spec.eigvals[:m], spec.eigvecs[:, :m]
    positive = lam > 1e-12 * max(lam.max(), 1e-300)
    inv_root = np.where(positive, 1.0 / np.sqrt(np.where(positive, lam, 1.0)), 0.0)
    with torch.no_grad():
        unwhiten = torch.linalg.inv(family.factor)
        family.W.copy_(torch.as_tensor(inv_root[:, None] * U.T) @ unwhiten)
        family.V.copy_(torch.as_tensor(U * np.sqrt(lam)) / family.scale)
        family.free_bias.zero_()
    return torch.as_tensor(lam)


def optimal_gains(lam: torch.Tensor, log_beta: torch.Tensor, smallest: float = 1e-6):
    """``(log σ, log c*)`` of the optimum, each (B, k), at η (B,): ``σ_j = (1 − β/λ_j)₊^{1/2}``
    clamped below at ``smallest`` (a log-gain cannot reach 0), ``log c* = min(0, η − log λ_j)``."""
    ratio = torch.exp(log_beta).unsqueeze(-1) / lam.clamp(min=1e-300)
    gain = torch.sqrt(torch.clamp(1.0 - ratio, min=0.0)).clamp(min=smallest)
    return torch.log(gain), torch.clamp(torch.log(ratio), max=0.0)
