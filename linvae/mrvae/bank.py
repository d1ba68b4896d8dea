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

import dataclasses
import math
import time

import numpy as np
import scipy.optimize
import torch
from torch import nn

from linvae._checks import as_beta_range, as_betas, as_choice, as_int, as_seed, resolve_device
from linvae.analytic import moments

from .batched_lbfgs import batched_lbfgs
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
from .model import LinearVAE, one_layer_vae
from .recipe import _polish, data_factors, with_backward
from .train import _Guard as Guard

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
    def member_model(self, i: int) -> LinearVAE:
        """Member i as an ordinary one-layer β-VAE (:func:`linvae.mrvae.model.one_layer_vae`)
        with the same maps: ``encoder1 = W_i P``, ``decoder2 = scale·V_i``, ``bias = m +
        scale·b'_i``, ``c = e^{ρ_i}``, centred at the same input mean."""
        i = as_int(i, "i", minimum=0)
        if i >= self.members:
            raise ValueError(f"i must be below members = {self.members}, got {i}")
        E, c, D, _, bias = (t[i] for t in self.member_maps())
        model = one_layer_vae(self.d, self.k, dtype=self.W.dtype).to(self.W.device)
        model.encoder1.copy_(E)
        model.decoder2.copy_(D)
        model.bias.copy_(bias)
        model.log_variance.copy_(torch.log(c))
        model.input_mean.copy_(self.input_mean)
        return model

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
        index = torch.randint(n, (N, batch_size), generator=generator).to(data.device)
        noise = torch.randn(N, batch_size, k, generator=generator, dtype=torch.float64)
        return bank.sampled_loss(data[index], noise.to(data.device, data.dtype))

    return loss


def member_objectives(terms, log_betas: torch.Tensor, scale) -> torch.Tensor:
    """Each member's polish objective at its β, as linvae's recipe polishes a β-VAE, shape (N,).

    Member i's is ``R_i + ½‖x − x̂‖²_i/β_i + (½‖x − x̂‖²_i + β_i R_i)/scale²`` (the recipe's
    ``polish_weight="both"``, :func:`linvae.mrvae.recipe.weighted_loss`): the Lagrangian in
    nats of rate plus the loss in the data's unit, both scale-free, formed without
    ``d/2·log 2π``; its minimiser is that of member i's loss at β_i.

    Parameters
    ----------
    terms : LossTerms
        :func:`linvae.mrvae.maps.exact_maps_loss` of the members: ``rate`` and
        ``squared_error`` of shape (N,).
    log_betas : Tensor of shape (N,)
    scale : float or Tensor
        The data's global scale ``√(tr S / d)``.
    """
    half_error = 0.5 * terms.squared_error
    beta = torch.exp(log_betas)
    return terms.rate + half_error / beta + (half_error + beta * terms.rate) / scale**2


def polish_objective(terms, log_betas: torch.Tensor, scale) -> torch.Tensor:
    """The sum over members of :func:`member_objectives`: a sum, not a mean, so that member
    i's gradient is that of its own objective.

    Unweighted: member i's curvature is ``(1/β_i + 1/scale²)`` times one free of β_i, so
    the small β dominate the one L-BFGS over the sum. Weighting member i by
    ``β_i/(β_i + scale²)`` evens the curvatures but measured worse where it matters (digits,
    3052 iterations: max excess/β 6.8e-9 → 1.6e-7, at the smallest β), though better on a
    d = 5 Gaussian with 400 iterations (max excess 2.8e-6 → 4.1e-10; docs/results.md).
    """
    return member_objectives(terms, log_betas, scale).sum()


def row_curvature_roots(V: torch.Tensor, log_betas: torch.Tensor, scale) -> torch.Tensor:
    """``√h_ij`` of shape (N, k), ``h_ij = ‖V_i e_j‖² + β_i/scale²``: the diagonal of member
    i's encoder's K-FAC output factor ``(DᵀD + β)/scale²`` (``D = scale·V``), the recipe's
    preconditioner of the polish (``RecipeConfig.precondition_polish``) at each member's β.

    ``V`` has shape (N, d, k), ``log_betas`` (N,).
    """
    beta = torch.exp(log_betas).unsqueeze(-1)  # (N, 1)
    return torch.sqrt(V.square().sum(-2) + beta / scale**2)


POLISHERS = ("batched", "shared")


def polish_bank(bank: BetaVAEBank, mean: torch.Tensor, cov: torch.Tensor, iterations: int,
                *, rounds: int | None = None, polisher: str = "batched",
                ) -> tuple[int, float, bool]:  # fmt: skip
    """L-BFGS on every member's exact loss at once, as linvae's recipe polishes one β-VAE.

    As :func:`linvae.mrvae.recipe.train_recipe` does for a β-VAE at its β: the encoder
    whitened again with the smallest ridge round-off allows (``polish_ridge=0``: ``1e6·ε·tr
    S``) and cleared of what Adam put along directions of no variance, each member's encoder
    rows scaled by :func:`row_curvature_roots`, then ``rounds`` L-BFGS runs
    (``⌈iterations/rounds⌉`` iterations each, a fresh curvature memory each; by default
    1 batched, 4 shared: on digits, 1600 batched iterations left the β-VAEs 1.3e-10 nats
    above the optimum in one run, 2.7e-9 in four) on
    :func:`member_objectives`. ``polisher="batched"`` (the default):
    :func:`linvae.mrvae.batched_lbfgs.batched_lbfgs`, every member its own memory and
    Armijo step, no host read within a run. ``"shared"``: one torch L-BFGS (strong Wolfe)
    over :func:`polish_objective`, the members sharing its line searches and memory. In
    place; the bank's ``factor`` becomes the polish's.

    Returns
    -------
    (evaluations, final objective, interrupted)
        Ctrl-C, or (shared) a line search that leaves the objective non-finite, puts back
        the weights the run started from; the batched polish rejects non-finite trials
        member by member.
    """
    iterations = as_int(iterations, "iterations", minimum=0)
    polisher = as_choice(polisher, "polisher", POLISHERS)
    if rounds is None:
        rounds = 1 if polisher == "batched" else 4
    rounds = as_int(rounds, "rounds", minimum=1)
    if iterations == 0:
        return 0, math.nan, False
    log_betas = bank.log_betas
    with torch.no_grad():
        adam = data_factors(cov, bank.beta_range[0])
        smaller = data_factors(cov, 0.0)  # floored at 1e6·ε·tr S
        # E = W P = W₂ P₂: W₂ = W L⁻¹ L₂ (the recipe's _rewhiten), then E ← E S (S + r₂)⁻¹
        W = bank.W @ torch.linalg.solve_triangular(adam.L, smaller.L, upper=False)
        W = W - smaller.ridge * (W @ smaller.P) @ smaller.P.T
        bank.factor.copy_(smaller.P)
        root_h = row_curvature_roots(bank.V, log_betas, bank.scale).unsqueeze(-1)  # (N, k, 1)
        bank.W.copy_(W)
    scaled = nn.Parameter(bank.W.detach() * root_h)  # E_i = diag(1/√h_i) Y_i P
    others = [bank.V, bank.log_variance, bank.free_bias]

    def members(tensors):
        maps = bank._maps_of(tensors[0] / root_h, *tensors[1:])
        return member_objectives(exact_maps_loss(maps, log_betas, mean, cov), log_betas,
                                 bank.scale)  # fmt: skip

    per_round = -(-iterations // rounds)
    evaluations, final, interrupted = 0, math.nan, False
    try:
        if polisher == "batched":
            params = [scaled, *others]
            try:
                for _ in range(rounds):
                    result = batched_lbfgs(members, params, per_round)
                    evaluations += result.evaluations
                final = float(result.values.sum())
            except KeyboardInterrupt:  # the params keep the last finished round's values
                interrupted = True
                with torch.no_grad():
                    final = float(members(params).sum())
        else:
            guard = Guard(bank, extra={"scaled": scaled})
            evaluate = with_backward(lambda: members([scaled, *others]).sum())
            for _ in range(rounds):
                count, final, interrupted = _polish(per_round, [scaled, *others], evaluate, guard)
                evaluations += count
                if interrupted:
                    break
    finally:
        with torch.no_grad():
            bank.W.copy_(scaled / root_h)
    return evaluations, final, interrupted


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
    recipe_polish: bool = False,
    device="cpu",
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
    recipe_polish : bool, default False
        Polish as linvae's recipe polishes a β-VAE (:func:`polish_bank`: whitened again,
        rows preconditioned, the scale-free objective, a batched L-BFGS; needs ``whiten``)
        rather than one L-BFGS run on the bank's loss as it is.
    device : str or torch.device, default "cpu"
        Where to train; the bank is moved there.

    Returns
    -------
    TrainResult
        Adam's; with ``recipe_polish``, its ``seconds`` hold the polish's too
        (``polish_seconds``), and ``final_loss`` is :func:`polish_objective`'s.
    """
    objective = check_objective(objective)
    if recipe_polish and not whiten:
        raise ValueError("recipe_polish=True whitens the encoder again: it needs whiten=True")
    stats = moments(X)
    if stats.mean.shape != (bank.d,):
        raise ValueError(f"X must have shape (n, {bank.d}), got {np.shape(X)}")
    device = resolve_device(device)
    bank.to(device)
    dtype = bank.W.dtype
    mean = torch.as_tensor(stats.mean, dtype=dtype, device=device)
    cov = torch.as_tensor(stats.cov, dtype=dtype, device=device)
    bank.prepare(mean, cov, bank.beta_range[0], whiten=whiten)
    if objective == "exact":
        step = bank_exact_step(bank, mean, cov)
    else:
        data = torch.as_tensor(np.asarray(X, dtype=np.float64), dtype=dtype, device=device)
        step = bank_sampled_step(bank, data, as_int(batch_size, "batch_size", minimum=1))
    result = train_loop(bank, step, steps, lr, seed=seed, progress=progress)
    polishing = objective == "exact" and polish and not result.interrupted
    if polishing and recipe_polish:
        started = time.perf_counter()
        evaluations, final, interrupted = polish_bank(bank, mean, cov, polish)
        seconds = time.perf_counter() - started
        result = dataclasses.replace(
            result, seconds=result.seconds + seconds, interrupted=interrupted,
            final_loss=final, polish_seconds=seconds, polish_evaluations=evaluations,
            polish_iterations=polish if evaluations else 0,
            polish_form="trace" if evaluations else None,
        )  # fmt: skip
    elif polishing:
        lbfgs(bank, lambda: bank.exact_loss(mean, cov), polish)
    bank.align()
    return result
