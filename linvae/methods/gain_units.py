r"""``gain-units``: the gain units of variable-rate compression (Cui et al., CVPR 2021).

One linear VAE, and for each of L discrete levels β_l (log-spaced over the range) a
learned gain vector of the latents on the encoder side, an inverse-gain vector on the
decoder side and a posterior log-variance. Between two neighbouring levels the vectors are
interpolated exponentially, ``g = g_l^{1−t} g_{l+1}^{t}`` with t linear in log β (their
continuous-rate rule); training sees the L levels only (each step all L for the exact
objective, a level per example for the sampled ELBO):

.. math::

    E(\eta) = \operatorname{diag}(g(\eta))\, W P, \qquad
    D(\eta) = \text{scale}\cdot V \operatorname{diag}(g'(\eta)), \qquad
    \log c(\eta) = (1 - t)\,\rho_l + t\,\rho_{l+1}.

Gains are positive (held as logs), so a latent never shuts exactly, where the optimum
shuts it (eq. 23): the family's floor is above 0.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from linvae._checks import as_beta_range, as_int
from linvae.mrvae.maps import (
    LinearFamily,
    Maps,
    fit_to_optimum,
    initial_weights,
    interpolate,
    interpolation_weights,
)

from ._base import Budget, Method, Trained, register
from ._family import data_tensors, optimal_gains, optimum_basis, train_family

LEVELS = 8

#: Adam's peak rate per objective (in the scale-free units).
LR = {"exact": 0.1, "sampled": 0.03}


class GainUnitsVAE(LinearFamily):
    """A linear VAE with per-level gain, inverse-gain and log-variance vectors."""

    def __init__(self, d, k, beta_range, *, levels=LEVELS, seed=0, dtype=torch.float64):
        super().__init__(d, k, dtype)
        lo, hi = as_beta_range(beta_range)
        self.levels = as_int(levels, "levels", minimum=2)
        grid = np.linspace(math.log(lo), math.log(hi), self.levels)
        self.register_buffer("level_log_betas", torch.as_tensor(grid, dtype=dtype))
        W, V = initial_weights((k, d), torch.Generator().manual_seed(seed), dtype)
        self.W, self.V = nn.Parameter(W), nn.Parameter(V)
        self.free_bias = nn.Parameter(torch.zeros(d, dtype=dtype))
        self.log_gain = nn.Parameter(torch.zeros(self.levels, k, dtype=dtype))
        self.log_inverse_gain = nn.Parameter(torch.zeros(self.levels, k, dtype=dtype))
        self.log_variance = nn.Parameter(torch.full((self.levels, k), math.log(0.5), dtype=dtype))

    def maps(self, log_beta: torch.Tensor) -> Maps:
        where = interpolation_weights(self.level_log_betas, log_beta)
        gain = torch.exp(interpolate(self.log_gain, *where))  # (B, k)
        inverse_gain = torch.exp(interpolate(self.log_inverse_gain, *where))
        log_c = interpolate(self.log_variance, *where)
        E0, D0 = self.encoder_base(self.W), self.decoder_base(self.V)
        E = gain.unsqueeze(-1) * E0
        offset = -(E @ self.input_mean)
        D = D0 * inverse_gain.unsqueeze(-2)
        bias = self.decoder_bias(self.free_bias).expand(log_beta.shape[0], self.d)
        return Maps(E, torch.exp(log_c), D, offset, bias)


def level_draw(levels: torch.Tensor):
    """η drawn uniformly among the levels (``count`` of them; all L, in order, when count = L)."""

    def draw(count, generator):
        if count == levels.shape[0]:
            return levels.clone()
        return levels[torch.randint(levels.shape[0], (count,), generator=generator)]

    return draw


def train(X, beta_range, budget: Budget) -> Trained:
    """Gain units trained at their L levels only."""
    lo, hi = as_beta_range(beta_range)
    family = GainUnitsVAE(X.shape[1], budget.latent, (lo, hi), seed=budget.seed)
    draw = level_draw(family.level_log_betas)
    return train_family(family, X, (lo, hi), budget, draw, lr=LR,
                        betas_per_step=LEVELS, notes={"levels": LEVELS})  # fmt: skip


def floor(trained: Trained, X, betas, beta_range, iterations):
    """Gain units started at the optimum's factors with the optimum's gains and variances at
    each level (gains clamped at 1e-6), then fitted to the optimum on the grid by L-BFGS."""
    family = GainUnitsVAE(X.shape[1], trained.model.k, beta_range, levels=trained.model.levels)
    _, mean, cov = data_tensors(X)
    family.prepare(mean, cov, as_beta_range(beta_range)[0])
    lam = optimum_basis(family, cov)
    log_gain, log_c = optimal_gains(lam, family.level_log_betas)
    with torch.no_grad():
        family.log_gain.copy_(log_gain)
        family.log_inverse_gain.copy_(log_gain)
        family.log_variance.copy_(log_c)
    fit_to_optimum(family, family.maps, mean, cov, betas, iterations=iterations)
    return Trained(family.maps, family), "the optimum's factors and gains at each level (eq. 23)"


METHOD = register(
    Method(
        "gain-units",
        f"gain units (Cui et al. 2021): {LEVELS} levels of per-latent gain vectors, "
        "exponential interpolation between neighbours",
        train,
        floor,
    )
)
