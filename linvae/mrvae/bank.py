r"""A bank of N separately trained linear β-VAEs, trained batched: one leading member axis.

Member i is the one-layer linear VAE of eq. 12 at its own β_i (log-spaced over the range):

.. math::

    E_i = W_i P,\quad c_i = e^{\rho_i},\quad D_i = \text{scale}\cdot V_i,\quad
    b_i = m + \text{scale}\cdot b'_i,

in the data's units (:class:`linvae.mrvae.maps.LinearFamily`). All N are held in tensors
with a leading axis N and trained at once, every product a batched one (``bmm``), as one
would on a GPU. The loss is the *sum* over members of each member's loss at its own β, so
each member's gradient is its own and Adam (elementwise) trains member i exactly as it
would train it alone (tested): the bank is N separate β-VAEs, computed together.

Between the members' β the bank answers with the nearest member or, after
:meth:`BetaVAEBank.align` (each member's latents signed-permuted to match its neighbour's,
the loss being invariant under signed permutations of the latents), with the maps
interpolated linearly in log β between the two neighbours.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.optimize
import torch
from torch import nn

from linvae._checks import as_beta_range, as_betas, as_choice, as_int, as_seed
from linvae.analytic import moments

from .maps import (
    LinearFamily,
    Maps,
    check_objective,
    exact_maps_loss,
    initial_weights,
    interpolate,
    interpolation_weights,
    lbfgs,
    sampled_maps_loss,
    train_loop,
)

INTERPOLATIONS = ("log", "nearest")


class BetaVAEBank(LinearFamily):
    """N one-layer linear β-VAEs at β log-spaced over ``beta_range``, batched.

    Parameters
    ----------
    d, k : int
        Data and latent dimension.
    members : int
        N ≥ 1; one member sits at ``sqrt(lo·hi)`` when N = 1.
    beta_range : (float, float)
        (lo, hi): the members' β are ``geomspace(lo, hi, N)``.
    interpolation : {"log", "nearest"}, default "log"
        How :meth:`maps` answers between the members' β.
    seed : int, default 0
        Member i starts as a one-member bank seeded ``seed + i`` would.
    member_betas : array_like of shape (N,), optional
        The members' β instead of the log-spaced ones (increasing); the range still sets
        the units (the whitening's ridge is its bottom).
    """

    def __init__(
        self,
        d: int,
        k: int,
        members: int,
        beta_range: tuple[float, float],
        *,
        interpolation: str = "log",
        seed: int = 0,
        member_betas=None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__(d, k, dtype)
        self.members = as_int(members, "members", minimum=1)
        lo, hi = as_beta_range(beta_range)
        self.beta_range = (lo, hi)
        self.interpolation = as_choice(interpolation, "interpolation", INTERPOLATIONS)
        seed = as_seed(seed)
        if member_betas is not None:
            betas = as_betas(member_betas, "member_betas")
            if betas.shape != (self.members,) or np.any(np.diff(betas) <= 0):
                raise ValueError(
                    f"member_betas must be {self.members} increasing values, got {betas.tolist()}"
                )
        elif self.members > 1:
            betas = np.geomspace(lo, hi, self.members)
        else:
            betas = np.array([math.sqrt(lo * hi)])
        self.register_buffer("log_betas", torch.as_tensor(np.log(betas), dtype=dtype))
        weights = [initial_weights((k, d), torch.Generator().manual_seed(seed + i), dtype)
                   for i in range(self.members)]  # fmt: skip
        self.W = nn.Parameter(torch.stack([w for w, _ in weights]))  # (N, k, d)
        self.V = nn.Parameter(torch.stack([v for _, v in weights]))  # (N, d, k)
        self.log_variance = nn.Parameter(torch.full((self.members, k), math.log(0.5), dtype=dtype))
        self.free_bias = nn.Parameter(torch.zeros(self.members, d, dtype=dtype))  # b'

    @property
    def betas(self) -> np.ndarray:
        """The members' β, shape (N,), increasing."""
        return np.exp(self.log_betas.detach().cpu().numpy())

    def _maps_of(self, W, V, log_variance, free_bias) -> Maps:
        E = self.encoder_base(W)  # (B, k, d)
        offset = -(E @ self.input_mean)
        return Maps(E, torch.exp(log_variance), self.decoder_base(V), offset,
                    self.decoder_bias(free_bias))  # fmt: skip

    def member_maps(self) -> Maps:
        """Each member's maps at its own β: a batch of N."""
        return self._maps_of(self.W, self.V, self.log_variance, self.free_bias)

    def maps(self, log_beta: torch.Tensor) -> Maps:
        """The bank's maps at η (B,): the nearest member, or the log-interpolated one."""
        grid = self.log_betas
        if self.members == 1:
            index = torch.zeros_like(log_beta, dtype=torch.long)
            return self._maps_of(*(p[index] for p in self._stacked()))
        lower, upper, t = interpolation_weights(grid, log_beta)
        if self.interpolation == "nearest":
            index = torch.where(t < 0.5, lower, upper)
            return self._maps_of(*(p[index] for p in self._stacked()))
        return self._maps_of(*(interpolate(p, lower, upper, t) for p in self._stacked()))

    def _stacked(self):
        return (self.W, self.V, self.log_variance, self.free_bias)

    def exact_loss(self, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
        """Σ_i of member i's exact loss at β_i (eqs. 14–18): one batched evaluation."""
        terms = exact_maps_loss(self.member_maps(), self.log_betas, mean, cov)
        return terms.loss * self.members

    def sampled_loss(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Σ_i of member i's sampled ELBO at β_i on its own mini-batch x[i] (N, b, d)."""
        terms = sampled_maps_loss(self.member_maps(), self.log_betas, x, noise)
        return terms.loss * self.members

    @torch.no_grad()
    def align(self) -> list[np.ndarray]:
        """Signed-permute each member's latents to match its smaller-β neighbour's, in place.

        From the smallest β up, member i+1's latents are matched to member i's by the
        assignment maximising ``Σ_j |⟨D_i e_j, D_{i+1} e_π(j)⟩|`` (scipy's
        ``linear_sum_assignment``), each given the sign of that inner product; rows of
        ``W``, columns of ``V`` and entries of ρ move together, so every member's loss is
        unchanged (the loss is invariant under signed permutations of the latents).
        Returns the permutation applied to each member (the first: the identity).
        """
        applied = [np.arange(self.k)]
        for i in range(self.members - 1):
            inner = (self.V[i].T @ self.V[i + 1]).cpu().numpy()  # (k, k)
            rows, cols = scipy.optimize.linear_sum_assignment(-np.abs(inner))
            perm = cols[np.argsort(rows)]
            signs = np.sign(inner[np.arange(self.k), perm])
            signs[signs == 0] = 1.0
            index = torch.as_tensor(perm, device=self.W.device)
            sign = torch.as_tensor(signs, dtype=self.W.dtype, device=self.W.device)
            self.W[i + 1] = sign.unsqueeze(-1) * self.W[i + 1][index]
            self.V[i + 1] = self.V[i + 1][:, index] * sign
            self.log_variance[i + 1] = self.log_variance[i + 1][index]
            applied.append(perm)
        return applied


def bank_exact_step(bank: BetaVAEBank, mean, cov):
    """A step's loss of exact batched training: every member at its β, no draw."""

    def loss(generator: torch.Generator) -> torch.Tensor:
        return bank.exact_loss(mean, cov)

    return loss


def bank_sampled_step(bank: BetaVAEBank, data: torch.Tensor, batch_size: int):
    """A step's loss of sampled batched training: each member its own mini-batch (drawn
    with replacement) and noise."""
    n = data.shape[0]
    N, k = bank.members, bank.k

    def loss(generator: torch.Generator) -> torch.Tensor:
        index = torch.randint(n, (N, batch_size), generator=generator)
        noise = torch.randn(N, batch_size, k, generator=generator, dtype=torch.float64)
        return bank.sampled_loss(data[index], noise.to(data.dtype))

    return loss


def train_bank(
    bank: BetaVAEBank,
    X,
    *,
    objective: str = "exact",
    steps: int = 1000,
    lr: float = 0.1,
    batch_size: int = 128,
    polish: int = 0,
    seed: int = 0,
    whiten: bool = True,
    progress=None,
):
    """Train every member of ``bank`` at once on data X (n, d), in place, then align them.

    Parameters
    ----------
    bank : BetaVAEBank
    X : array_like of shape (n, d)
    objective : {"exact", "sampled"}
        The exact loss from X's mean and ML covariance (eqs. 14–18), or the sampled ELBO
        on ``batch_size`` examples per member and step (eqs. 13–15).
    steps : int
        Adam steps (warm-up, then cosine decay), every member updated at each.
    lr : float, default 0.1
        Adam's peak rate in the scale-free units (measured on digits, 1000 steps: the best
        of 0.003, 0.03, 0.1 for the sampled ELBO, of 0.02, 0.05, 0.1 for the exact loss).
    polish : int
        L-BFGS iterations on the exact loss after Adam (exact objective only).
    whiten : bool
        Encoder ``W P`` with ``P = chol(S + lo·I)⁻¹`` (else ``W / scale``).

    Returns
    -------
    TrainResult
    """
    objective = check_objective(objective)
    stats = moments(X)
    if stats.mean.shape != (bank.d,):
        raise ValueError(f"X must have shape (n, {bank.d}), got {np.shape(X)}")
    dtype = bank.W.dtype
    mean = torch.as_tensor(stats.mean, dtype=dtype)
    cov = torch.as_tensor(stats.cov, dtype=dtype)
    bank.prepare(mean, cov, bank.beta_range[0], whiten=whiten)
    if objective == "exact":
        step = bank_exact_step(bank, mean, cov)
    else:
        data = torch.as_tensor(np.asarray(X, dtype=np.float64), dtype=dtype)
        step = bank_sampled_step(bank, data, as_int(batch_size, "batch_size", minimum=1))
    result = train_loop(bank, step, steps, lr, seed=seed, progress=progress)
    if objective == "exact" and polish and not result.interrupted:
        lbfgs(bank, lambda: bank.exact_loss(mean, cov), polish)
    bank.align()
    return result
