"""``beta-vae-bank``: N separately trained linear β-VAEs, trained batched, read between them.

The strongest baseline: :class:`linvae.mrvae.bank.BetaVAEBank`, N = 8 one-layer linear
VAEs at β log-spaced over the range, every member trained at once (one leading member
axis, batched products) in the data's units (whitened encoder, as linvae's recipe), Adam
then, on the exact objective, an L-BFGS polish of a third of the steps; members aligned
(signed permutations) and log-interpolated between (the nearest member is scored beside).
"""

from __future__ import annotations

import numpy as np
import torch

from linvae.analytic import optimum
from linvae.mrvae.bank import BetaVAEBank, train_bank
from linvae.mrvae.maps import fit_to_optimum

from ._base import Budget, Method, Trained, register
from ._family import data_tensors

MEMBERS = 8


def _nearest(bank: BetaVAEBank):
    def maps(log_beta):
        bank.interpolation = "nearest"
        try:
            return bank.maps(log_beta)
        finally:
            bank.interpolation = "log"

    return maps


def train(X, beta_range, budget: Budget) -> Trained:
    """The bank trained batched; read log-interpolated (``variants``: the nearest member)."""
    bank = BetaVAEBank(X.shape[1], budget.latent, MEMBERS, beta_range, seed=budget.seed)
    polish = budget.steps // 3 if budget.objective == "exact" else 0
    result = train_bank(bank, X, objective=budget.objective, steps=budget.steps, polish=polish,
                        seed=budget.seed)  # fmt: skip
    notes = {"members": MEMBERS, "member_betas": bank.betas.tolist(), "steps": result.steps,
             "polish_iterations": polish, "batch_size_per_member": 128}  # fmt: skip
    return Trained(bank.maps, bank, notes, variants={"nearest": _nearest(bank)})


def floor(trained: Trained, X, betas, beta_range, iterations):
    """The bank of the optimal members (eq. 23 at each member's β), then fitted to the
    optimum on the whole grid by L-BFGS through the interpolation (an upper bound)."""
    k = trained.model.k
    bank = BetaVAEBank(X.shape[1], k, MEMBERS, beta_range)
    _, mean, cov = data_tensors(X)
    bank.prepare(mean, cov, bank.beta_range[0])
    unwhiten = torch.linalg.inv(bank.factor)
    with torch.no_grad():
        for i, beta in enumerate(bank.betas):
            best = optimum(cov.numpy(), k, float(beta))
            bank.W[i] = torch.as_tensor(best.E) @ unwhiten
            bank.V[i] = torch.as_tensor(best.D) / bank.scale
            bank.log_variance[i] = torch.as_tensor(np.log(best.c))
            bank.free_bias[i] = 0.0
    bank.align()
    fit_to_optimum(bank, bank.maps, mean, cov, betas, iterations=iterations)
    start = "the optimum at each member's β (eq. 23)"
    return Trained(bank.maps, bank, variants={"nearest": _nearest(bank)}), start


METHOD = register(
    Method(
        "beta-vae-bank",
        f"{MEMBERS} linear β-VAEs trained batched (one member axis), log-interpolated "
        "between their β after a signed-permutation alignment",
        train,
        floor,
    )
)
