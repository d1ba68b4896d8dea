r"""linvae's recipe on the sampled ELBO: mini-batches of the data and reparameterised noise.

What VAEs are trained on: each step sees a batch of examples, one β and one noise draw
``z = μ + √c ⊙ ε`` each, and nothing of the data but the examples themselves. The model
(:class:`~linvae.mrvae.model.LatentMRVAE`), its scale-free units, the thresholds' tie and
the gates kept open are those of :mod:`linvae.mrvae.recipe`; what changes is the objective
and what the units are computed from. Each default was measured one change at a time
(docs/results.md, "Sampled ELBO"):

- **Objective**: eq. 13 per draw, ``½‖x − x̂(z)‖² + β·R`` (the constant ``d/2·log 2π``
  left out), weighted as the recipe's ``beta_weight``
  (:func:`linvae.mrvae.recipe.weighted_loss`, "flat": the loss over ``scale²``). The rate
  is the sample ``log q(z|x) − log p(z)`` with q's parameters held out of the gradient
  ("sticking the landing", Roeder, Wu & Duvenaud 2017, ``"stl"``): its mean is the KL (eq. 14) and its gradient in the encoder vanishes
  for every ε where q is the exact tempered posterior ``∝ p(x|z)^{1/β} p(z)``, which the
  optimum of a linear VAE is (eqs. 21–23); or the KL in closed form (``"reparameterised"``).
- **Antithetic noise**: each example of a batch twice, with ε and −ε, at one β: the
  gradient's terms odd in ε cancel, which leaves the decoder only ``D σεεᵀσ − DC``. The
  pair is formed in closed form (:func:`antithetic_terms`): the same function of the
  weights at half the decoder's products (d = 3025: 2.4× faster a step).
- **Units** from the data alone, in passes of mini-batches (:class:`DataUnits`): the mean
  m, the global scale ``√(tr S / d)`` (the root mean squared deviation), ``D₂ = scale·V``,
  ``b = m + scale·b'``, and the encoder ``E₁ = W P`` with P K-FAC's input factor
  ``(S + ρI)^{-1/2}`` from S's leading directions (subspace iteration over the data), its
  ridge ρ the largest that leaves the leading k eigenvalues of ``P S Pᵀ`` within a spread
  of 30 ("capped"): the global scale alone where they span less (digits), whitening
  enough to bring 28×28 patches' 1600 down to 30 (0.33 → 0.0083 nats there). No (d, d)
  matrix is formed: a step costs O(B·d·k).
- **β**: one per draw, ``η = log lo + (log hi − log lo) u^p`` with u stratified over the
  batch.
- **Iterates**: Adam, warm-up and cosine decay, its peak rate from the data
  (:func:`sampled_learning_rate`: Adam's noise step held to a share of the smallest
  latent's decoder column); averaged over the last tenth (over the
  second half, iterates still moving pulled the average back: 0.064 against 0.0083 nats
  on patches).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from linvae._checks import (
    as_beta,
    as_beta_range,
    as_choice,
    as_fraction,
    as_int,
    as_positive,
    as_seed,
    resolve_device,
)

from .model import LatentMRVAE, LinearMRVAE
from .recipe import (
    BETA_WEIGHTS,
    RIDGE_FLOOR,
    _share_thresholds,
    _untie_thresholds,
    adam_dtype,
    stratified,
    weighted_loss,
)
from .revive import REVIVE_ITERATIONS, leading_eigenpairs
from .train import READ_INTERVAL, TrainResult, learning_rate_factor
from .train import _Guard as Guard

#: The rate's gradient estimator: the closed-form KL, or "sticking the landing".
ESTIMATORS = ("stl", "reparameterised")
#: The encoder's input unit (:class:`DataUnits`).
PRECONDITIONERS = ("scale", "diagonal", "lowrank", "capped")
#: The decoder's unit: the data's global scale, or each column its own (:class:`SampledConfig`).
DECODER_UNITS = ("scale", "column")
#: "column": the decoder's units follow its columns every this many steps.
RESCALE_EVERY = 20
#: How log β is drawn: stratified over the batch, uniform per example, one per batch.
SAMPLED_BETAS = ("stratified", "example", "batch")
#: The dtype of the step's (B, d) work (:class:`SampledConfig`).
PRECISIONS = ("auto", "float64", "float32")


@dataclass(frozen=True)
class SampledConfig:
    """Settings of :func:`train_sampled_recipe`; the defaults are linvae's sampled recipe.

    Attributes
    ----------
    steps : int, default 8000
        Adam steps.
    batch_size : int, default 512
        Draws per step (each with its own β and noise draw; ``batch_size / 2`` examples
        twice with ``antithetic``).
    lr : float or None, default None
        Adam's peak learning rate, in the recipe's scale-free units. None:
        :func:`sampled_learning_rate` of the data (0.026 on digits, 0.010 on 28×28
        patches, 0.0050 on 55×55 patches with k = 64, λ_k from the units' four passes:
        0.073 there against the exact 0.092), recorded in the run's
        :class:`~linvae.mrvae.train.TrainResult`.
    momentum : float, default 0.9
        Adam's β₁. Near the optimum the gradient is noise and Adam's step has the size of
        the learning rate whatever the noise; the noise in its first moment shrinks as
        ``√((1 − β₁)/(1 + β₁))`` while its mean stays the gradient.
    warmup_fraction : float, default 0.05
        Linear warm-up, then cosine decay to 0.
    beta_power : float, default 2
        η = log lo + (log hi − log lo) u^power, as :class:`~linvae.mrvae.recipe.RecipeConfig`.
    beta_sampling : {"stratified", "example", "batch"}, default "stratified"
        u stratified over the batch's examples (one per equal stratum, jittered, in a random
        order), uniform per example, or one per batch.
    estimator : {"stl", "reparameterised"}, default "stl"
        The rate's estimator (see the module's notes).
    antithetic : bool, default True
        Each example of a batch twice, with ε and −ε (``batch_size / 2`` examples): the
        gradient's terms odd in ε cancel (for the decoder, all but ``D σεεᵀσ − DC``).
    beta_weight : {"flat", "inverse", "both"}, default "flat"
        How each example's loss enters (:func:`linvae.mrvae.recipe.weighted_loss`).
    precondition : {"capped", "scale", "diagonal", "lowrank"}, default "capped"
        The encoder's unit ``E₁ = W P`` (:class:`DataUnits`): K-FAC's input factor of rank
        ``precondition_rank`` from ``precondition_passes`` passes of subspace iteration
        over the data, its ridge raised to cap the spread ("capped") or not ("lowrank");
        the data's global scale; each coordinate's.
    precondition_rank : int, default 64
    precondition_passes : int, default 4
    precondition_spread : float, default 30
        "capped": the ridge of the low-rank factor is raised until the leading k
        eigenvalues of the preconditioned covariance ``P S Pᵀ`` span at most this ratio
        (:func:`capped_ridge`).
    decoder_unit : {"scale", "column"}, default "scale"
        The decoder is trained as ``D₂ = V diag(u)``: u the data's global scale for every
        column ("scale"), or each column's own ``u_j = √(‖D₂ e_j‖² + scale²)``, updated every
        ``RESCALE_EVERY`` steps until the average begins with V and Adam's moments moved
        to the new unit ("column": Adam's step in ``D₂ e_j`` follows a column longer than
        the global scale; never below the global scale's step: with the floor at √lo
        instead, 28×28 patches ended with 7 of 32 latents live, 0.9 nats).
    average_from : float or None, default 0.9
        Average the iterates (uniformly) from this share of the steps on; None: the last
        iterate.
    close_fraction : float, default 0
        The last share of the steps is run on batches of ``close_batch_size``.
    close_batch_size : int, default 0
        The closing phase's batch size; 0: the whole data set.
    revive_at : tuple of float, default ()
        At these shares of the steps, the latents ``keep_open`` pins at its floor are
        re-pointed at the residual's leading directions (:func:`revive_sampled`, data
        passes). Off by default: at d = 3025 it opened all 64 latents but left the
        leading ones duplicated, 14 nats at β = 98.5 against 1.7 (docs/results.md).
    min_open, share_thresholds_from
        As :class:`~linvae.mrvae.recipe.RecipeConfig`: the σ_D gates kept open on the
        bottom share of the range after each step; each latent's three thresholds tied
        from this share of the steps on.
    precision : {"auto", "float64", "float32"}, default "auto"
        The dtype of the step's (B, d) products and elementwise work, as the exact
        recipe's ``adam_precision``: the data is held centred and in the global scale's
        unit (``(x − m)/scale``, so float32's range and digits hold at any scale), the
        weights, Adam and the (B, k) layers stay float64. "auto": float32 where
        d ≥ 1024 (there those products are the step's cost).
    seed : int, default 0
        Seed of the batches, β and noise.
    """

    steps: int = 8000
    batch_size: int = 512
    lr: float | None = None
    momentum: float = 0.9
    warmup_fraction: float = 0.05
    beta_power: float = 2.0
    beta_sampling: str = "stratified"
    estimator: str = "stl"
    antithetic: bool = True
    beta_weight: str = "flat"
    precondition: str = "capped"
    precondition_rank: int = 64
    precondition_passes: int = 4
    precondition_spread: float = 30.0
    decoder_unit: str = "scale"
    average_from: float | None = 0.9
    close_fraction: float = 0.0
    close_batch_size: int = 0
    revive_at: tuple = ()
    min_open: float = 0.05
    share_thresholds_from: float | None = 0.25
    precision: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        checked = {
            "steps": as_int(self.steps, "steps", minimum=1),
            "batch_size": as_int(self.batch_size, "batch_size", minimum=1),
            "lr": None if self.lr is None else as_positive(self.lr, "lr"),
            "momentum": as_fraction(self.momentum, "momentum"),
            "warmup_fraction": as_fraction(self.warmup_fraction, "warmup_fraction"),
            "beta_power": as_positive(self.beta_power, "beta_power"),
            "beta_sampling": as_choice(self.beta_sampling, "beta_sampling", SAMPLED_BETAS),
            "estimator": as_choice(self.estimator, "estimator", ESTIMATORS),
            "beta_weight": as_choice(self.beta_weight, "beta_weight", BETA_WEIGHTS),
            "precondition": as_choice(self.precondition, "precondition", PRECONDITIONERS),
            "precondition_rank": as_int(self.precondition_rank, "precondition_rank", minimum=1),
            "precondition_passes": as_int(
                self.precondition_passes, "precondition_passes", minimum=1
            ),
            "precondition_spread": as_positive(self.precondition_spread, "precondition_spread"),
            "decoder_unit": as_choice(self.decoder_unit, "decoder_unit", DECODER_UNITS),
            "average_from": None
            if self.average_from is None
            else as_fraction(self.average_from, "average_from"),
            "close_fraction": as_fraction(self.close_fraction, "close_fraction"),
            "close_batch_size": as_int(self.close_batch_size, "close_batch_size", minimum=0),
            "revive_at": _fractions(self.revive_at, "revive_at"),
            "min_open": as_fraction(self.min_open, "min_open"),
            "share_thresholds_from": None
            if self.share_thresholds_from is None
            else as_fraction(self.share_thresholds_from, "share_thresholds_from"),
            "precision": as_choice(self.precision, "precision", PRECISIONS),
            "seed": as_seed(self.seed),
        }
        if checked["precondition_spread"] < 1.0:
            raise ValueError(
                f"precondition_spread must be >= 1 (1: full whitening), got {self.precondition_spread}"
            )
        if not isinstance(self.antithetic, bool):
            raise TypeError(
                f"antithetic must be True or False, got {type(self.antithetic).__name__}"
            )
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict:
        """The settings as JSON builtins, with ``objective: "sampled"`` (what a report names)."""
        return {"objective": "sampled", **asdict(self)}


def _fractions(values, name: str) -> tuple:
    if isinstance(values, (str, bytes)) or not isinstance(values, (tuple, list)):
        raise TypeError(f"{name} must be a tuple of fractions, got {type(values).__name__}")
    return tuple(sorted(as_fraction(value, name) for value in values))


def _posterior(model, x, log_beta, encoder1, centred=False):
    """q(z|x)'s mean and log variance, each (B, k), with ``encoder1`` as ``E₁``; ``centred``:
    x is ``x − m`` already. The (B, d) product is formed in x's dtype, the rest in η's."""
    pre = (x if centred else x - model.input_mean) @ encoder1.T
    hidden = model.encoder1_gate(pre.to(log_beta.dtype), log_beta)
    mean = model.encoder2_gate(hidden @ model.encoder2.T, log_beta)
    return mean, model.log_variance_at(log_beta)


def _kl(mean, log_c):
    """KL(q ‖ p) per example in closed form (eq. 14), shape (B,)."""
    return 0.5 * torch.sum(-log_c + mean**2 + torch.exp(log_c) - 1.0, dim=-1)


def sampled_terms(
    model, x, log_beta, noise, encoder1, decoder2, bias, estimator="stl", *, centred=False
):
    """Per-example rate and squared error of the reparameterised ELBO (eqs. 13–15).

    Parameters
    ----------
    model : LinearMRVAE
        Without FiLM gates; its gates, inner layers, ρ and ``input_mean`` are used.
    x : Tensor of shape (B, d)
    log_beta : Tensor of shape (B,)
    noise : Tensor of shape (B, k)
        Standard normal ε: ``z = μ + √c ⊙ ε``.
    encoder1 : Tensor of shape (h, d)
        The first encoder layer ``E₁``; ``decoder2`` (d, h) the last decoder layer ``D₂``;
        ``bias`` (d,) the decoder bias ``b`` (the recipe's reparameterisations).
    estimator : {"stl", "reparameterised"}
        "reparameterised": the rate is the KL in closed form (eq. 14); "stl": the sample
        ``log q(z|x) − log p(z)`` with q's mean and variance held out of the gradient
        (its mean is the KL; its gradient flows through z only).
    centred : bool, default False
        x is ``x − m`` already (``model.input_mean`` is not subtracted). The (B, d)
        products are formed in the dtype of x, ``encoder1``, ``decoder2`` and ``bias``
        (float32 for :class:`SampledConfig`'s ``precision``), the (B, k) layers and the
        returned sums in η's.

    Returns
    -------
    (rate, squared_error) : Tensors of shape (B,)
        ``squared_error = ‖x − x̂(z)‖²`` (the distortion is ``d/2·log 2π`` plus its half).
    """
    mean, log_c = _posterior(model, x, log_beta, encoder1, centred)
    z = mean + torch.exp(0.5 * log_c) * noise
    decoded = model.decoder1_gate(z @ model.decoder1.T, log_beta)
    reconstruction = model.decoder2_gate(decoded.to(x.dtype) @ decoder2.T, log_beta) + bias
    squared_error = torch.sum((x - reconstruction) ** 2, dim=-1).to(log_beta.dtype)
    if estimator == "reparameterised":
        rate = _kl(mean, log_c)
    else:  # log q(z|x) − log p(z), q's parameters held: the path derivative only
        held_mean, held_log_c = mean.detach(), log_c.detach()
        rate = 0.5 * torch.sum(
            z**2 - held_log_c - (z - held_mean) ** 2 * torch.exp(-held_log_c), dim=-1
        )
    return rate, squared_error


def antithetic_terms(
    model, x, log_beta, noise, encoder1, decoder2, bias, estimator="stl", *, centred=False
):
    """:func:`sampled_terms` averaged over each antithetic pair ``z = μ ± √c ⊙ ε``, in closed
    form: the same function of the weights (values and gradients) at half the decoder's
    products.

    The decoder is linear in z (no FiLM shifts), so with ``r = x − x̂(μ)`` and ``s = √c ⊙ ε``
    the pair's mean squared error is ``‖r‖² + ‖A s‖²`` (A the decoder at β; the terms odd in
    ε cancel as functions, not only in value), ``‖A s‖²`` through the Gram matrix ``D₂ᵀD₂``
    (k×k) where the last decoder layer is ungated; the rate's is ``½Σ(μ² + s² − log c − s²/c)``
    ("stl", q's parameters held in the last two terms) or the KL (eq. 14).

    Parameters
    ----------
    As :func:`sampled_terms`, with x (B, d), log_beta (B,), noise (B, k): one row per pair.

    Returns
    -------
    (rate, squared_error) : Tensors of shape (B,)
        Each the mean over the pair's two draws.
    """
    mean, log_c = _posterior(model, x, log_beta, encoder1, centred)
    spread = torch.exp(0.5 * log_c) * noise  # s = √c ⊙ ε

    def first_layer(z):
        return model.decoder1_gate(z @ model.decoder1.T, log_beta)

    decoded = first_layer(mean).to(x.dtype)
    reconstruction = model.decoder2_gate(decoded @ decoder2.T, log_beta) + bias
    squared_error = torch.sum((x - reconstruction) ** 2, dim=-1).to(log_beta.dtype)
    inner = first_layer(spread)
    if model.decoder2_gate.activation == "none":  # ‖D₂ u‖² = uᵀ (D₂ᵀ D₂) u
        gram = (decoder2.T @ decoder2).to(inner.dtype)
        squared_error = squared_error + torch.sum((inner @ gram) * inner, -1)
    else:
        squared_error = squared_error + torch.sum(
            model.decoder2_gate(inner.to(x.dtype) @ decoder2.T, log_beta) ** 2, dim=-1
        ).to(log_beta.dtype)
    if estimator == "reparameterised":
        rate = _kl(mean, log_c)
    else:
        held_log_c = log_c.detach()
        rate = 0.5 * torch.sum(
            mean**2 + spread**2 - held_log_c - spread**2 * torch.exp(-held_log_c), dim=-1
        )
    return rate, squared_error


class DataUnits:
    """The sampled recipe's units from the data alone, in passes of mini-batches: no (d, d)
    matrix.

    The encoder is trained as ``E₁ = W P`` with ``P`` one of

    - "scale": ``I / scale``, ``scale = √(tr S / d)`` (the root mean squared deviation);
    - "diagonal": ``diag(1/√(S_ii + ridge))``;
    - "lowrank": ``Q diag(1/√(λ_q + ridge)) Qᵀ + (I − QQᵀ)/√(σ² + ridge)``, K-FAC's input
      factor ``(S + ridge·I)^{-1/2}`` with S replaced by its leading ``rank`` directions
      (Q (d, r), λ (r,): subspace iteration, ``passes`` passes over the data in batches,
      O(n·d·r) each) and the mean σ² of the rest. With ``rank = d`` it is the recipe's
      whitening up to a rotation of W.
    - "capped": "lowrank" with the ridge raised to :func:`capped_ridge` of the leading
      ``latents`` eigenvalues and ``spread``, times ``√(1 + ridge/scale²)``: the global
      scale's ``I / scale`` in the limit of an infinite ridge, which it is where those
      eigenvalues span no more than ``spread``. (The spread over only the eigenvalues above
      the ridge, a β-VAE's β, was tried: its ten β-VAEs on digits ended at 2.1e-4 nats
      against 1.3e-4, docs/results.md.)

    Attributes
    ----------
    mean : Tensor of shape (d,)
    trace : float
        tr S.
    scale : float
    eigenvalues : Tensor of shape (r,) or None
        S's leading eigenvalues, descending ("lowrank", "capped"; None otherwise).
    ridge : float
        The ridge of the encoder's unit ("diagonal", "lowrank", "capped"; ∞ for "capped"
        where it is the global scale).
    """

    def __init__(
        self, data, ridge, precondition, *, rank=64, passes=4, batch=4096, seed=0, latents=None,
        spread=30.0,
    ):  # fmt: skip
        n, d = data.shape
        self.mean = data.mean(0)
        variance = torch.zeros_like(self.mean)
        for rows in torch.split(data, batch):
            variance += ((rows - self.mean) ** 2).sum(0)
        variance /= n  # S_ii (ML), (d,)
        trace = float(variance.sum())
        if not math.isfinite(trace) or trace <= 0.0:
            raise ValueError(f"X has no variance (tr S = {trace:.3g}): nothing to encode")
        self.trace = trace
        self.scale = math.sqrt(trace / d)
        self.ridge = max(float(ridge), RIDGE_FLOOR * trace)
        self.precondition = precondition
        self.basis = None
        self._cast = None  # the basis in another dtype (float32 steps), cast once
        self.eigenvalues = None
        if precondition == "diagonal":
            self.column = 1.0 / (variance + self.ridge).sqrt()
        elif precondition in ("lowrank", "capped") and rank > 0:
            basis, values = leading_directions(data, self.mean, min(rank, d), passes, batch, seed)
            self.eigenvalues = values.flip(0)  # descending
            rest = max(trace - float(values.sum()), 0.0) / max(d - basis.shape[1], 1)
            gain = 1.0
            if precondition == "capped":
                top = values.flip(0)[: min(latents or d, values.shape[0])]
                cap = capped_ridge(float(top[0]), float(top[-1]), spread)
                self.ridge = max(self.ridge, cap)
                gain = math.sqrt(1.0 + self.ridge / self.scale**2)  # ridge → ∞: I / scale
            if math.isfinite(self.ridge):
                self.basis = basis  # Q (d, r)
                self.rest = gain / math.sqrt(rest + self.ridge)
                self.along = gain / (values + self.ridge).sqrt() - self.rest  # (r,)
                self.column = None
            else:  # the spread is within the cap: the global scale
                self.column = torch.full_like(variance, 1.0 / self.scale)
        else:
            self.column = torch.full_like(variance, 1.0 / self.scale)

    def encoder(self, W: torch.Tensor) -> torch.Tensor:
        """``E₁ = W P`` of shape (h, d) for W (h, d): O(h·d·r), in W's dtype."""
        if self.basis is None:
            return W * self.column.to(W.dtype)
        basis = self._basis_in(W.dtype)
        return self.rest * W + ((W @ basis) * self.along.to(W.dtype)) @ basis.T

    def _basis_in(self, dtype: torch.dtype) -> torch.Tensor:
        if self.basis.dtype == dtype:
            return self.basis
        if self._cast is None or self._cast.dtype != dtype:
            self._cast = self.basis.to(dtype)
        return self._cast

    def unencoder(self, E1: torch.Tensor) -> torch.Tensor:
        """The W of an encoder ``E₁ = W P`` (m, d): ``W = E₁ P⁻¹``, P symmetric, O(m·d·r)."""
        if self.basis is None:
            return E1 / self.column
        inverse_along = 1.0 / (self.rest + self.along) - 1.0 / self.rest  # (r,)
        return E1 / self.rest + ((E1 @ self.basis) * inverse_along) @ self.basis.T


#: :func:`sampled_learning_rate`: the most, and the bound on Adam's noise step it keeps.
LR_MAX = 0.03
LR_NOISE = 2.5


def sampled_learning_rate(trace: float, smallest: float, k: int, lo: float) -> float:
    """Adam's peak learning rate of the sampled recipe from the data:
    ``min(0.03, 2.5·√(max(λ_k, lo)/(k·tr S)))``.

    Near the optimum the gradient is mostly noise and Adam's step is about the learning
    rate in every coordinate whatever the noise's size (its first moment, over
    ``1/(1 − β₁)`` steps, keeps ``√((1 − β₁)/(1 + β₁)) ≈ 0.23`` of it): a random step of
    Frobenius norm ``≈ 0.23·lr·√(d·k)`` in the decoder's unit (``V``, the global scale),
    where the smallest latent's column is about ``√(λ_k·d/tr S)`` long at the range's bottom
    (λ_k taken at least ``lo``: a latent of less variance never opens). This holds their
    ratio ``0.23·lr·√(k·tr S/λ_k)`` at 0.23·2.5 ≈ 0.6. Measured one size at a time (8000
    steps, docs/results.md): the best of the rates tried was 0.03 on digits (d = 64,
    k = 32; the rule 0.026), 0.01 on 28×28 patches (d = 784, k = 32: 0.0033 nats against
    0.0091 at 0.03 and 0.006 at 0.005; the rule 0.010) and 0.005 at d = 3025, k = 64
    (0.017 nats against 0.17 at 0.01; the rule 0.0050 with the four passes' λ_k). Free of
    the data's scale: tr S, λ_k and lo scale alike.

    Parameters
    ----------
    trace : float
        tr S (> 0).
    smallest : float
        λ_k, S's k-th eigenvalue (≥ 0).
    k : int
        Latents.
    lo : float
        The bottom of the training range (a β-VAE's β).
    """
    trace = as_positive(trace, "trace")
    k = as_int(k, "k", minimum=1)
    lo = as_positive(lo, "lo")
    if not (math.isfinite(smallest) and smallest >= 0.0):
        raise ValueError(f"smallest must be finite and >= 0, got {smallest}")
    return min(LR_MAX, LR_NOISE * math.sqrt(max(smallest, lo) / (k * trace)))


def kth_eigenvalue(units: DataUnits, data, k: int, passes: int, seed: int = 0) -> float:
    """λ_k of the data's S: from the units' leading eigenvalues where they reach k, else by
    :func:`leading_directions` (``passes`` passes of rank min(k, d)); 0 beyond d."""
    d = data.shape[1]
    values = units.eigenvalues
    if values is None or values.numel() < min(k, d):
        _, values = leading_directions(data, units.mean, min(k, d), passes, seed=seed)
        values = values.flip(0)
    return float(values[k - 1]) if k <= values.numel() else 0.0


def capped_ridge(largest: float, smallest: float, spread: float) -> float:
    """The largest ridge ρ at which the preconditioned spectrum ``λ/(λ + ρ)`` spans at most
    ``spread`` (κ) between λ = ``largest`` (λ₁) and ``smallest`` (λ_k):
    ``ρ = λ₁λ_k(κ − 1)/(λ₁ − κλ_k)``; ∞ where λ₁/λ_k ≤ κ already (no whitening is needed),
    0 where λ_k = 0 (no ridge caps it).
    """
    if largest <= spread * smallest:
        return math.inf
    if smallest <= 0.0:
        return 0.0
    return largest * smallest * (spread - 1.0) / (largest - spread * smallest)


def leading_directions(data, mean, rank, passes, batch=4096, seed=0):
    """The leading eigenvectors and eigenvalues of the data's ML covariance S, from the data
    in batches: ``passes`` steps of subspace iteration ``Ω ← qr(S Ω)``, S Ω accumulated
    over row blocks of ``batch`` (no (d, d) matrix, O(n·d·r) a pass), then Rayleigh–Ritz.

    Parameters
    ----------
    data : Tensor of shape (n, d)
    mean : Tensor of shape (d,)
    rank : int
        r, 1 ≤ r ≤ d.
    passes, batch, seed : int
        Passes over the data (≥ 1), rows per block, seed of the start Ω.

    Returns
    -------
    (Q, λ) : Tensors of shape (d, r) and (r,)
        Orthonormal directions and their Rayleigh quotients (clamped at 0), ascending.
    """
    d = data.shape[1]
    rank = as_int(rank, "rank", minimum=1)
    if rank > d:
        raise ValueError(f"rank must be <= d = {d}, got {rank}")
    passes = as_int(passes, "passes", minimum=1)
    batch = as_int(batch, "batch", minimum=1)
    generator = torch.Generator().manual_seed(seed)
    omega = torch.randn(d, rank, generator=generator, dtype=torch.float64).to(data)
    omega = torch.linalg.qr(omega).Q
    for _ in range(passes):
        product = covariance_product(data, mean, omega, batch)  # S Ω
        ritz = omega.T @ product  # Ωᵀ S Ω (r, r)
        omega_next = torch.linalg.qr(product).Q
        values, vectors = torch.linalg.eigh(0.5 * (ritz + ritz.T))
        basis = omega @ vectors
        omega = omega_next
    return basis, values.clamp(min=0.0)


def covariance_product(data, mean, Y, batch=4096):
    """``S Y`` for the data's ML covariance S, accumulated over row blocks of ``batch``:
    no (d, d) matrix, O(n·d·r) for Y of shape (d, r)."""
    product = torch.zeros_like(Y)
    for rows in torch.split(data, batch):
        centred = rows - mean
        product += centred.T @ (centred @ Y)
    return product / data.shape[0]


@torch.no_grad()
def revive_sampled(model, W, V, units, data, log_lo, log_floor, generator, *, batch=4096,
                   iterations=REVIVE_ITERATIONS, decoder_unit=None) -> torch.Tensor:  # fmt: skip
    """Re-point the latents held open only by ``keep_open`` at the residual's leading
    directions, from data passes (:mod:`linvae.mrvae.revive`, with S's products accumulated
    over the data: no (d, d) matrix).

    A latent whose threshold the projection holds at ``log_floor`` would shut on the range
    above it: it explains a direction of variance below ``e^floor``, while at the optimum
    every latent live on the full grid shuts at its λ ≥ λ_k, above the floor (d = 3025,
    4000 steps: 57 of 64 latents pinned there). The residual is taken at lo
    without those latents, ``R = (I − D E) S (I − D E)ᵀ`` (E, D at lo, their rows and
    columns zero), and each is re-pointed along a leading direction u of residual variance
    μ > ``e^floor`` as one latent's optimum on the residual: ``E₁`` row ``uᵀ(I − DE)/√μ``
    (written into W through the unit's inverse), ``D₂`` column ``√μ u`` (into V, in
    ``decoder_unit`` (k,), default the global scale: ``D₂ = V diag(decoder_unit)``), its
    thresholds at ``log μ`` (eqs. 21–23 for one latent: it shuts at β = μ). ``model``
    holds the current weights. Returns the indices of those revived.
    """
    span = abs(log_floor - log_lo)
    pinned = torch.nonzero(model.shut_latents(log_floor + 1e-9 * span)).flatten()
    if pinned.numel() == 0:
        return pinned
    log_beta = torch.tensor([log_lo], dtype=model.dtype, device=data.device)
    E, _, D, _, _ = (t[0].clone() for t in model.matrices(log_beta))
    E[pinned], D[:, pinned] = 0.0, 0.0
    mean = units.mean

    def residual(Q):  # R Q = (I − DE) S (I − DE)ᵀ Q over the data
        Y = covariance_product(data, mean, Q - E.T @ (D.T @ Q), batch)
        return Y - D @ (E @ Y)

    U, mu = leading_eigenpairs(
        residual, model.d, pinned.numel(), iterations, generator, data.dtype, data.device
    )
    chosen = mu > math.exp(log_floor)
    revived, U, mu = pinned[: int(chosen.sum())], U[:, chosen], mu[chosen]
    if revived.numel() == 0:
        return revived
    rows = (U.T - (U.T @ D) @ E) / mu.sqrt().unsqueeze(1)  # E₁ rows (m, d)
    W[revived] = units.unencoder(rows)
    unit = units.scale if decoder_unit is None else decoder_unit[revived]
    V[:, revived] = U * mu.sqrt() / unit
    for gate in {id(g.bias): g for g in model.gate_modules()}.values():  # η₀ = center − b
        gate.bias[revived] = gate.input_center - torch.log(mu).to(gate.bias)
    return revived


def _check_data(model: LinearMRVAE, X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != model.d or X.shape[0] < 2:
        raise ValueError(f"X must have shape (n >= 2, {model.d}), got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X must be finite (it holds NaN or inf)")
    return X


class _Batches:
    """Mini-batch indices, η and noise of each step, from one seeded generator."""

    def __init__(self, config, n, k, log_range, fixed_log_beta, dtype, device):
        self.config, self.n, self.k = config, n, k
        self.log_lo, self.log_hi = log_range
        self.fixed, self.dtype, self.device = fixed_log_beta, dtype, device
        self.generator = torch.Generator().manual_seed(config.seed)
        self.order = torch.randperm(n, generator=self.generator)
        self.cursor = 0

    def indices(self, size: int) -> torch.Tensor:
        if size >= self.n:
            return torch.arange(self.n)
        if self.cursor + size > self.n:
            self.order = torch.randperm(self.n, generator=self.generator)
            self.cursor = 0
        self.cursor += size
        return self.order[self.cursor - size : self.cursor]

    def log_beta(self, size: int) -> torch.Tensor:
        if self.fixed is not None:
            return torch.full((size,), self.fixed, dtype=torch.float64)
        sampling = self.config.beta_sampling
        if sampling == "stratified":
            u = stratified(size, self.generator)[torch.randperm(size, generator=self.generator)]
        else:
            u = torch.rand(1 if sampling == "batch" else size, generator=self.generator)
            u = u.to(torch.float64).expand(size)
        return self.log_lo + (self.log_hi - self.log_lo) * u**self.config.beta_power

    def draw(self, size: int):
        pairs = self.config.antithetic  # each example twice, with ε and −ε, at one β
        index = self.indices(max(size // 2, 1) if pairs else size)
        size = index.shape[0]
        log_beta = self.log_beta(size)
        noise = torch.randn(size, self.k, generator=self.generator, dtype=torch.float64)
        move = {"dtype": self.dtype, "device": self.device}
        return index.to(self.device), log_beta.to(**move), noise.to(**move)


def train_sampled_recipe(
    model: LinearMRVAE,
    X,
    beta_range: tuple[float, float] | None = None,
    config: SampledConfig = SampledConfig(),
    *,
    beta: float | None = None,
    device="cpu",
    progress=None,
) -> TrainResult:
    """Train ``model`` in place with linvae's recipe on the sampled ELBO (mini-batches).

    Parameters
    ----------
    model : LinearMRVAE
        A :class:`LatentMRVAE` (β drawn over ``beta_range``), or a linear VAE trained at
        one fixed ``beta`` (:func:`linvae.mrvae.model.one_layer_vae`). No FiLM gates.
    X : array_like of shape (n, d)
        Training data, read in mini-batches; its mean and per-coordinate variance (O(n·d))
        set the units.
    beta_range : (float, float), optional
        (lo, hi), the β range to train on; default ``model.beta_range``.
    config : SampledConfig
    beta : float, optional
        Train at this one β instead.
    device : str or torch.device
    progress : callable, optional
        ``progress(step, steps, loss, elapsed_seconds)`` after each step, as
        :func:`linvae.mrvae.train.train`.

    Returns
    -------
    TrainResult
        The losses are the scale-free sampled objective. Ctrl-C stops the run (the model
        keeps the weights of the last step, averaged if averaging had begun); a loss that
        stops being finite puts back the last weights seen finite (``diverged_at``).
    """
    if not isinstance(model, LinearMRVAE):
        raise TypeError(f"model must be a LinearMRVAE, got {type(model).__name__}")
    if "film" in (model.encoder_gate, model.decoder_gate, model.covariance_gate):
        raise ValueError("model: linvae's recipe trains models without FiLM gates")
    if not isinstance(config, SampledConfig):
        raise TypeError(f"config must be a SampledConfig, got {type(config).__name__}")
    X = _check_data(model, X)
    if beta is None:
        lo, hi = as_beta_range(model.beta_range if beta_range is None else beta_range)
    else:
        lo = hi = as_beta(beta)
    device = resolve_device(device)
    model.to(device)
    dtype = model.dtype
    data = torch.as_tensor(X, dtype=dtype).to(device)
    units = DataUnits(
        data, lo, config.precondition, rank=config.precondition_rank,
        passes=config.precondition_passes, seed=config.seed, latents=model.k,
        spread=config.precondition_spread,
    )  # fmt: skip
    model.set_input_mean(units.mean.cpu().numpy())
    scale = units.scale
    n = data.shape[0]

    with torch.no_grad():  # a fresh start in the data's units, as the recipe's
        W0 = model.encoder1.clone()  # E₁ = W P: the initial weights in the data's units
        V0 = model.decoder2 / model.decoder2.norm(dim=0, keepdim=True).clamp(min=1e-300)
    W, V = (torch.nn.Parameter(t.clone().contiguous()) for t in (W0, V0))
    b_free = torch.nn.Parameter(torch.zeros_like(units.mean))
    unit = torch.full((model.k,), scale, dtype=dtype, device=device)  # D₂ = V diag(unit)
    trained = {"encoder1": W, "decoder2": V, "bias": b_free}
    params = [*trained.values()]
    params += [p for name, p in model.named_parameters() if name not in trained]
    params = [p for p in params if p.requires_grad]

    latent = isinstance(model, LatentMRVAE) and beta is None
    share_at = None
    if latent and config.share_thresholds_from is not None:
        share_at = round(config.share_thresholds_from * config.steps)
    average_at = None if config.average_from is None else round(config.average_from * config.steps)
    close_at = config.steps - round(config.close_fraction * config.steps)
    close_size = config.close_batch_size or n
    keep_open = latent and config.min_open > 0
    log_lo, log_hi = math.log(lo), math.log(hi)
    floor = log_lo + config.min_open * (log_hi - log_lo)
    fixed = None if beta is None else math.log(beta)
    batches = _Batches(config, n, model.k, (log_lo, log_hi), fixed, dtype, device)

    terms = antithetic_terms if config.antithetic else sampled_terms
    step_dtype = adam_dtype(config.precision, model.d, dtype)
    if step_dtype != dtype:  # centred, in the scale's unit: no cancellation, no overflow
        unitless = ((data - units.mean) / scale).to(step_dtype)

    def loss_of(index, log_beta, noise):
        if step_dtype == dtype:
            rate, squared_error = terms(
                model, data[index], log_beta, noise, units.encoder(W), V * unit,
                units.mean + scale * b_free, config.estimator,
            )  # fmt: skip
        else:  # the same terms over scale²: E₁·scale, D₂/scale and b' on (x − m)/scale
            rate, squared_error = terms(
                model, unitless[index], log_beta, noise, units.encoder(W.to(step_dtype)) * scale,
                V.to(step_dtype) * (unit / scale).to(step_dtype), b_free.to(step_dtype),
                config.estimator, centred=True,
            )  # fmt: skip
            squared_error = squared_error * scale**2
        return weighted_loss(rate, squared_error, log_beta, scale, config.beta_weight)

    def live():  # the tensors trained now (after the tie: one threshold per latent)
        named = dict(model.named_parameters())
        return {**trained, **{k: p for k, p in named.items() if p.requires_grad}}

    lr = config.lr
    if lr is None:
        smallest = kth_eigenvalue(units, data, model.k, config.precondition_passes, config.seed)
        lr = sampled_learning_rate(units.trace, smallest, model.k, lo)
    optimizer = torch.optim.Adam(params, lr=lr, betas=(config.momentum, 0.999))
    warmup = max(1, round(config.warmup_fraction * config.steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, config.steps, warmup)
    )
    guard = Guard(model, extra={**trained, "decoder_unit": unit})
    rescale_until = config.steps if average_at is None else average_at
    by_column = config.decoder_unit == "column"
    shared, average, averaged = False, None, 0
    revived = 0
    revive_steps = {round(f * config.steps) for f in config.revive_at} if latent else set()
    last_read, loss_read, done, diverged, interrupted = -math.inf, math.nan, 0, None, False
    start = time.perf_counter()
    try:
        for step in range(config.steps):
            if step == share_at:
                _share_thresholds(model)
                shared, average, averaged = True, None, 0  # averaged from the tie on
            size = close_size if step >= close_at else config.batch_size
            optimizer.zero_grad(set_to_none=True)
            loss = loss_of(*batches.draw(size))
            loss.backward()
            optimizer.step()
            schedule.step()
            if keep_open:
                model.keep_open(floor)
            done = step + 1
            if by_column and done % RESCALE_EVERY == 0 and done < rescale_until:
                _follow_columns(V, unit, optimizer, scale)
            if done in revive_steps:
                with torch.no_grad():
                    model.encoder1.copy_(units.encoder(W))
                    model.decoder2.copy_(V * unit)
                back = revive_sampled(
                    model, W, V, units, data, log_lo, floor, batches.generator,
                    decoder_unit=unit,
                )  # fmt: skip
                revived += int(back.numel())
                _restart_moments(optimizer, W, V, model, back)
            if average_at is not None and done > average_at:
                averaged += 1
                with torch.no_grad():
                    if average is None:
                        average = {k: p.detach().clone() for k, p in live().items()}
                    else:
                        for key, p in live().items():
                            average[key] += (p.detach() - average[key]) / averaged
            now = time.perf_counter()
            if done == config.steps or now - last_read >= READ_INTERVAL:
                loss_read, last_read = float(loss.detach()), now
                if not math.isfinite(loss_read):
                    guard.restore_state()
                    diverged, average = done, None
                    break
                guard.keep(done, loss_read)
            if progress is not None:
                progress(done, config.steps, loss_read, now - start)
    except KeyboardInterrupt:
        interrupted = True
    try:
        with torch.no_grad():
            if average is not None:
                for key, p in live().items():
                    p.copy_(average[key])
            model.encoder1.copy_(units.encoder(W))
            model.decoder2.copy_(V * unit)
            model.bias.copy_(units.mean + scale * b_free)
    finally:
        if shared:
            _untie_thresholds(model)
    seconds = time.perf_counter() - start
    steps = guard.step if diverged is not None else done
    return TrainResult(
        steps, seconds, interrupted, loss_read, diverged_at=diverged, revived_latents=revived,
        learning_rate=lr,
    )  # fmt: skip


@torch.no_grad()
def _follow_columns(V, unit, optimizer, floor) -> None:
    """The decoder's units, in place, to ``u_j = √(‖D₂ e_j‖² + floor²)`` with ``D₂ = V diag(u)``
    unchanged; Adam's moments of V's columns follow (V's gradient scales with u)."""
    new = torch.sqrt((V * unit).square().sum(0) + floor**2)
    ratio = new / unit
    V.div_(ratio)
    unit.copy_(new)
    state = optimizer.state.get(V)
    if state:
        state["exp_avg"].mul_(ratio)
        state["exp_avg_sq"].mul_(ratio.square())


@torch.no_grad()
def _restart_moments(optimizer, W, V, model, latents) -> None:
    """Adam's moments of the revived latents (rows of W, columns of V, their thresholds):
    the first 0, the second the median of the other latents' (a zero second moment would
    make the first step about 3 lr)."""
    if latents.numel() == 0:
        return
    keep = torch.ones(W.shape[0], dtype=torch.bool, device=W.device)
    keep[latents] = False
    tensors = [(W, 0), (V, 1), *((g.bias, 0) for g in model.gate_modules())]
    for p, axis in {id(p): (p, axis) for p, axis in tensors}.values():
        state = optimizer.state.get(p)
        if not state:
            continue
        for name, fill in (("exp_avg", None), ("exp_avg_sq", "median")):
            moment = state[name].movedim(axis, 0)
            value = moment[keep].median() if fill and keep.any() else 0.0
            moment[latents] = value
