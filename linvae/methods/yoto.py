r"""``yoto``: loss-conditional training (You Only Train Once; Dosovitskiy & Djolonga, ICLR 2020).

One linear VAE whose layers are modulated by FiLM (Perez et al., 2018) with scales and
shifts from a small MLP of log β, β log-uniform per example over the range (their VAE
configuration: [0.125, 512]; here the scoreboard's range):

.. math::

    \mu(x, \eta) = \gamma_E(\eta) \odot W P (x - m) + s_E(\eta), \qquad
    \log c(\eta) = \ell(\eta), \qquad
    \hat x(z, \eta) = \text{scale}\cdot V(\gamma_D(\eta) \odot z + s_D(\eta)) + m + \text{scale}\cdot b',

``(γ_E, s_E, ℓ, γ_D, s_D) = MLP((η − centre)/half-width)``: two hidden layers of
``width`` ReLU units. The FiLM acts on the latent units (the linear model's only hidden
units); a FiLM of the d outputs could not shrink one latent, which the optimum does
(eq. 23). The maps per β: ``E = diag(γ_E) W P``, ``D = scale·V diag(γ_D)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from linvae._checks import as_beta_range, as_int
from linvae.mrvae.maps import (
    LinearFamily,
    Maps,
    fit_to_optimum,
    initial_weights,
    log_uniform,
    train_loop,
)

from ._base import Budget, Method, Trained, register
from ._family import data_tensors, optimal_gains, optimum_basis, train_family

WIDTH = 64

#: Adam's peak rate per objective (in the scale-free units).
LR = {"exact": 0.03, "sampled": 0.03}


class FiLMVAE(LinearFamily):
    """The YOTO linear VAE: FiLM of the latent units by an MLP of log β."""

    def __init__(self, d, k, beta_range, *, width=WIDTH, seed=0, dtype=torch.float64):
        super().__init__(d, k, dtype)
        lo, hi = as_beta_range(beta_range)
        self.center = 0.5 * (math.log(lo) + math.log(hi))
        self.half_width = 0.5 * (math.log(hi) - math.log(lo))
        generator = torch.Generator().manual_seed(seed)
        W, V = initial_weights((k, d), generator, dtype)
        self.W, self.V = nn.Parameter(W), nn.Parameter(V)
        self.free_bias = nn.Parameter(torch.zeros(d, dtype=dtype))
        width = self.width = as_int(width, "width", minimum=1)
        with torch.random.fork_rng(devices=[]):  # nn.Linear draws from the global generator
            torch.manual_seed(seed)
            self.mlp = nn.Sequential(
                nn.Linear(1, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                nn.Linear(width, 5 * k),
            ).to(dtype)  # fmt: skip
        with torch.no_grad():  # start at unit scales, zero shifts, c = 1/2
            last = self.mlp[-1]
            last.weight.mul_(0.01)
            last.bias.copy_(torch.cat([torch.ones(k), torch.zeros(k),
                                       torch.full((k,), math.log(0.5)), torch.ones(k),
                                       torch.zeros(k)]).to(dtype))  # fmt: skip

    def film(self, log_beta: torch.Tensor):
        """``(γ_E, s_E, log c, γ_D, s_D)``, each (B, k)."""
        u = ((log_beta - self.center) / self.half_width).unsqueeze(-1)
        return self.mlp(u).chunk(5, dim=-1)

    def maps(self, log_beta: torch.Tensor) -> Maps:
        scale_e, shift_e, log_c, scale_d, shift_d = self.film(log_beta)
        E0 = self.encoder_base(self.W)  # (k, d)
        D0 = self.decoder_base(self.V)  # (d, k)
        E = scale_e.unsqueeze(-1) * E0  # (B, k, d)
        offset = shift_e - scale_e * (E0 @ self.input_mean)
        D = D0 * scale_d.unsqueeze(-2)  # (B, d, k)
        bias = self.decoder_bias(self.free_bias) + shift_d @ D0.T
        return Maps(E, torch.exp(log_c), D, offset, bias)


def train(X, beta_range, budget: Budget) -> Trained:
    """A FiLM VAE trained with β log-uniform per example (per drawn β for the exact loss)."""
    lo, hi = as_beta_range(beta_range)
    family = FiLMVAE(X.shape[1], budget.latent, (lo, hi), seed=budget.seed)
    draw = log_uniform(math.log(lo), math.log(hi))
    return train_family(family, X, (lo, hi), budget, draw, lr=LR,
                        notes={"width": WIDTH})  # fmt: skip


#: Adam steps of the least-squares fit of the MLP to the optimum's gains (the floor's start).
GAIN_FIT_STEPS = 2000


def floor(trained: Trained, X, betas, beta_range, iterations):
    """A FiLM VAE started at the optimum's factors, its MLP fitted by least squares to the
    optimum's gains and log-variances over the range (Adam), then fitted to the optimum on
    the grid by L-BFGS: an upper bound on the family's floor."""
    lo, hi = as_beta_range(beta_range)
    family = FiLMVAE(X.shape[1], trained.model.k, (lo, hi), width=trained.model.width)
    _, mean, cov = data_tensors(X)
    family.prepare(mean, cov, lo)
    lam = optimum_basis(family, cov)
    eta = torch.linspace(math.log(lo), math.log(hi), 256, dtype=torch.float64)
    log_gain, log_c = optimal_gains(lam, eta, smallest=0.0)
    gain = torch.exp(log_gain)
    zero = torch.zeros_like(gain)
    target = torch.cat([gain, zero, log_c, gain, zero], dim=-1)  # (256, 5k)

    def squared_error(generator):
        return torch.mean((torch.cat(family.film(eta), dim=-1) - target) ** 2)

    for p in (family.W, family.V, family.free_bias):
        p.requires_grad_(False)
    train_loop(family, squared_error, GAIN_FIT_STEPS, 1e-2)
    for p in (family.W, family.V, family.free_bias):
        p.requires_grad_(True)
    fit_to_optimum(family, family.maps, mean, cov, betas, iterations=iterations)
    start = "the optimum's factors, the MLP fitted to its gains by least squares (eq. 23)"
    return Trained(family.maps, family), start


METHOD = register(
    Method(
        "yoto",
        "loss-conditional training (YOTO): FiLM of the latent units by an MLP of log β, β "
        "log-uniform per example",
        train,
        floor,
    )
)
