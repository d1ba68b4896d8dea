r"""linvae's training recipe: one MR-VAE to the optimum on the whole rate-distortion curve.

Each choice below was measured, one change at a time, on digits and on 28×28 patches
(docs/results.md, "What each part of the recipe buys"):

- **Model**: :class:`linvae.mrvae.model.LatentMRVAE`, one σ_D gate per latent on the
  encoder and the decoder and a hinge on the posterior variance, slopes 1 in η: Theorem 1's
  joint construction, so the optimum is in the family (floor 0) and each latent keeps a
  threshold per gate for the first quarter of Adam, then one threshold for its three gates,
  as the optimum has them (``share_thresholds_from``). Thresholds start by the density below.
- **Objective**: the exact expected loss (eqs. 14–18, :func:`exact_loss`) at
  ``betas_per_step`` β a step, η = log lo + (log hi − log lo) u^p, u one per stratum of
  [0, 1], jittered: more β where more latents are active. The floor being 0, any positive
  weighting over β has the same global optimum; the density only conditions.
- **Units** (scale covariance by construction): every trained tensor is free of the data's
  scale, so data ``aX`` over ``a²·(lo, hi)`` train ``(E/a, c, aD, ab)`` of data X and
  excess/β does not depend on a (:func:`data_factors`). The encoder is trained as
  ``E₁ = W P``, ``P = L⁻¹``, ``L Lᵀ = S + lo·I`` (Cholesky of the data covariance, ridge
  the range's bottom): the input factor of K-FAC for a linear layer, which also takes out
  the anisotropy of the data's units. The decoder as ``D₂ = scale·V`` and its bias as
  ``b = m + scale·b'``, ``scale = √(tr S / d)``: the decoder's Hessian in ``D₂`` is
  already isotropic (its noise is), so one global scale is its whole preconditioner
  (``whiten_decoder`` trains ``D₂ = L V`` instead, measured worse). Thresholds and the
  variance's ρ are in log units, relative to the range.
- **Objective in a scale-free unit**: the loss minus ``d/2·log 2π`` (formed without the
  constant) over ``scale²`` (``"flat"``, Adam's), or the Lagrangian ``R + D/β``
  (``"inverse"``: the unit of excess/β), or their sum (``"both"``, the polish's).
- **Initialisation**: ``V`` with unit columns (``D₂`` of the data's own scale), ``b = m``,
  ``E₁ = W₀ P·S(S + lo·I)⁻¹``: no encoder weight along directions the data do not excite.
- **Optimiser**: Adam, warm-up then cosine decay; after each step the σ_D gates are kept
  open on the bottom 5 % of the range (a gate shut on the whole range has no gradient);
  then L-BFGS (strong Wolfe on the CPU; on CUDA a batched L-BFGS that reads nothing to
  the host within a run, ``polisher``; four runs; between them each latent a run shut
  re-pointed at the residual's leading directions and kept open, :mod:`.revive`, and
  each pair of latents rotated into each other turned apart, ``unmix``) on a fixed
  quadrature of the same density, ``4e8/(k·d²)`` iterations within [1500, 15000]
  (:func:`polish_budget`), the encoder whitened again with the smallest ridge round-off
  allows (``polish_ridge``: below Adam's ridge the Lagrangian's curvature is still S's)
  and cleared of what Adam put along directions of no variance, each latent's encoder
  row and thresholds scaled by the root of the row's curvature (the diagonal of the
  encoder's K-FAC output factor, ``DᵀD + lo``, read from the model after Adam); the
  squared error as sums of squares where the trace form's round-off, ε·tr S/β, would
  stop its line searches (``polish_form``).

Training reads the data (its mean and covariance, and for the polish's sums of squares the
QR factor of the centred data) and the β range, nothing else: never the analytic optimum,
its eigenvectors or eigenvalues. The range comes from the user's grid
(:func:`training_range`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import torch

from linvae._checks import (
    as_beta,
    as_beta_range,
    as_choice,
    as_fraction,
    as_int,
    as_positive,
    as_real,
    as_seed,
    resolve_device,
)
from linvae.analytic import moments as data_moments

from ._compiled import compiled_step
from ._step import BLAS, BetaDraws, FusedStep, compiled_objective, fusable
from .batched_lbfgs import batched_lbfgs
from .model import LatentMRVAE, LinearMRVAE
from .objectives import exact_loss
from .revive import residual_directions
from .train import COMPILE_MODES, TrainResult, learning_rate_factor
from .train import _Guard as Guard

#: How the loss at each β is weighted in the recipe's objective (:class:`RecipeConfig`).
BETA_WEIGHTS = ("inverse", "flat", "both")

#: How the polish forms the squared error (``RecipeConfig.polish_form``).
POLISH_FORMS = ("auto", "trace", "residual")

#: Who runs the polish's L-BFGS (``RecipeConfig.polisher``).
POLISHERS = ("auto", "strong-wolfe", "device")

#: :func:`polish_budget`: the polish's iterations, ``POLISH_ARITHMETIC/(k·d²)`` within
#: ``POLISH_ITERATIONS``.
POLISH_ARITHMETIC = 4e8
POLISH_ITERATIONS = (1500, 15000)

#: :func:`polish_form_for`: the residual form from this ratio ``tr S/lo`` (the trace form's
#: relative round-off in the Lagrangian's unit, over ε), at most this many multiply-adds.
RESIDUAL_FROM_RATIO = 1e6
RESIDUAL_MAX_COST = 2e7


def polish_budget(d: int, k: int) -> int:
    """The polish's L-BFGS iterations when ``RecipeConfig.polish_iterations`` is None:
    ``4e8/(k·d²)`` rounded, within [1500, 15000] (see there)."""
    low, high = POLISH_ITERATIONS
    return int(min(high, max(low, round(POLISH_ARITHMETIC / (k * d * d)))))


def polisher_for(polisher: str, device) -> str:
    """``RecipeConfig.polisher`` resolved for ``device`` (a torch.device): "auto" is
    "device" on CUDA, "strong-wolfe" elsewhere."""
    if polisher != "auto":
        return polisher
    return "device" if torch.device(device).type == "cuda" else "strong-wolfe"


def polish_form_for(form: str, model, trace: float, lo: float, nodes: int) -> str:
    """``RecipeConfig.polish_form`` resolved for ``model``, data of ``tr S = trace`` and the
    range's bottom ``lo`` (see there): "trace" or "residual"."""
    latent = isinstance(model, LatentMRVAE)
    if form == "residual" and not latent:
        raise ValueError(
            f"polish_form='residual' takes a LatentMRVAE (its gates per latent), got "
            f"{type(model).__name__}"
        )
    if form != "auto":
        return form
    cost = nodes * model.d * model.d * model.k
    if latent and trace / lo >= RESIDUAL_FROM_RATIO and cost <= RESIDUAL_MAX_COST:
        return "residual"
    return "trace"


@dataclass(frozen=True)
class RecipeConfig:
    """Settings of :func:`train_recipe`; the defaults are linvae's recipe.

    Attributes
    ----------
    steps : int, default 3000
        Adam steps.
    betas_per_step : int, default 16
        β per Adam step: one in each of as many equal strata of u ∈ [0, 1], jittered.
    lr : float, default 0.1
        Adam's peak learning rate, in the recipe's scale-free units (``W``, ``V``, ``b'``,
        log β).
    warmup_fraction : float, default 0.05
        Linear warm-up, then cosine decay to 0.
    beta_power : float, default 2
        η = log lo + (log hi − log lo) u^power: above 1, more β at the small end.
    whiten : bool, default True
        Train the first encoder layer as ``W P``, ``P = chol(S + lo·I)⁻¹``; False: as
        ``W / scale`` (the data's global scale only).
    whiten_decoder : bool, default False
        Train the last decoder layer as ``L V`` (``L = chol(S + lo·I)``) rather than
        ``scale·V``. The decoder's Hessian in ``D₂`` is already isotropic (unit decoder
        noise), so ``L`` conditions it by S's spread: measured worse (docs/results.md).
    decoder_init : {"data", "model"}, default "data"
        A fresh start's decoder: "data": ``V`` with unit columns (``D₂`` of columns about
        √(tr S / d)); "model": ``D₂`` kept as the model has it. The encoder's first layer
        starts as ``W₀ P`` (``W₀`` its initial weights).
    encoder_init : {"data", "model"}, default "data"
        A fresh start's encoder: "data": the model's initial ``W₀`` filtered by the data,
        ``E₁ = W₀ P·S(S + r·I)⁻¹`` (``W₀ ← W₀(I − r·P Pᵀ)``, r the whitening ridge): no
        weight along directions of variance ≪ r, where the gradient (∝ λ/(λ + r) in ``W``)
        could not remove it and which cost ``‖D_j‖²/β`` times their variance at the
        range's bottom (measured: 12 decades of spectrum, excess/β 0.011 → 0.0019);
        "model": ``W₀`` as the model has it.
    resume : bool, default False
        Continue training the model as it is (a trained model): its weights are kept, the
        encoder's included (``W = E₁ P⁻¹``, so ``W P = E₁``); ``decoder_init`` is ignored.
    beta_weight : {"flat", "inverse", "both"}, default "flat"
        How the loss at each β enters Adam's objective: "inverse", as ``L(β)/β = R + D/β``
        (the Lagrangian in nats of rate, the unit of excess/β); "flat", as ``L(β)/scale²``
        (the loss in the data's unit); "both", their sum. All are free of the data's scale;
        the floor being 0, all have the same optimum.
    polish_iterations : int or None, default None
        L-BFGS iterations after Adam (0: none). None: :func:`polish_budget` of the model's
        size, ``4e8/(k·d²)`` between 1500 and 15000, a fixed budget of the polish's
        arithmetic: 1500 from k·d² ≈ 2.7e5 on (d = 3025, k = 64: there the last excess is
        rotations within close eigenpairs, which the polish resolves slowly: max excess/β
        0.017 after 1000 iterations, 0.0047 after 1500, 0.0026 after 2000; one seed,
        docs/results.md), about 3000 on digits (k = 32, d = 64; seed 2: 1.4e-6 nats after
        1500, 2e-9 after 3000), 14815 at k = d = 30 and 15000 below, where an iteration
        costs a few milliseconds (breast cancer, k = d = 30: 7.7 excess/β after 1500,
        0.0016 after 14815). With ``step="fused"`` each evaluation is the fused step's
        closed form (three (k, d) × (d, d) products; autograd's loss and backward form
        six): at d = 3025, k = 64, one thread, 0.24 s an evaluation in a training run.
    polish_form : {"auto", "trace", "residual"}, default "auto"
        How the polish forms E‖x − x̂‖² at each β: "trace", ``tr S − 2 tr(D E S) +
        tr(DᵀD E S Eᵀ) + …`` (eqs. 16–18, the fused step's closed form): terms of size
        tr S cancel down to the distortion, keeping round-off ε·tr S, which in the
        Lagrangian's unit is ε·tr S/β (2e-6 at the bottom of breast cancer's grid, where
        the polish's steps are smaller: it stops there); "residual", the sums of squares
        ``‖(I − D E) F‖² + Σ c_j‖D_j‖²`` with ``F Fᵀ = S`` (``F`` from the QR factor of
        the centred data) through autograd, round-off relative to the distortion itself,
        at ``polish_nodes·d²·k`` multiply-adds an evaluation; "auto": "residual" for a
        :class:`LatentMRVAE` where ``tr S/lo ≥ 1e6`` and that cost is at most 2e7, else
        "trace" (:func:`polish_form_for`).
    polish_nodes : int, default 64
        The polish's fixed quadrature: the midpoints of as many strata of u, same density.
    polish_weight : {"both", "inverse", "flat"}, default "both"
        ``beta_weight`` of the polish. "both": the sum of the two, each scale-free: the
        Lagrangian ("inverse", the mean excess/β over the quadrature) holds the small β,
        where the last latents open and which the data's unit weighs β times less; the
        data's unit ("flat") holds the large β, where excess/β is small but the excess in
        nats is not (docs/results.md, "Any data").
    polisher : {"auto", "strong-wolfe", "device"}, default "auto"
        Who runs each polish run's L-BFGS (history 50): "strong-wolfe", torch's L-BFGS
        with its strong Wolfe line search, which reads the loss to the host at every
        evaluation (on a GPU, a synchronisation an iteration); "device",
        :func:`linvae.mrvae.batched_lbfgs.batched_lbfgs` with one member, an Armijo or
        approximate-Wolfe step and every decision a tensor operation: one evaluation an
        iteration and one host read a run, at its end; "auto": "device" on CUDA,
        "strong-wolfe" elsewhere (:func:`polisher_for`). On the CPU, one thread, the
        device polish took digits to 1.4e-14 nats (strong Wolfe 1.4e-9) but in 2.1× the
        polish's time (13.9 against 6.7 s), and d = 784 patches to 4.0e-6 nats (3.3e-6)
        in the same time (21.7 against 21.0 s): not as good there, so the CPU keeps strong
        Wolfe (docs/results.md, "The recipe's polish on the device"; GPU figures owed).
    polish_rounds : int, default 4
        The polish's iterations in this many L-BFGS runs, the σ_D gates kept open
        (``min_open``) after each but the last: a gate the polish shut on the whole range
        opens again for the next run, and each run starts a fresh curvature memory. Not
        after the last: a latent beyond the data's rank, which the polish shuts, would be
        left open at the range's bottom and pay rate there for nothing (digits with
        k = 64: excess/β 0.016 at the grid's bottom; 0.0071 without).
    min_open : float, default 0.05
        After each Adam step every σ_D gate of a :class:`LatentMRVAE` is kept open on this
        bottom share of the log range (:meth:`LatentMRVAE.keep_open`): a gate shut on the
        whole range has no gradient, its latent is dead for good. 0: not kept.
    share_thresholds_from : float or None, default 0.25
        After this share of Adam's steps, each latent's three gates (encoder, covariance,
        decoder) of a :class:`LatentMRVAE` are trained with one threshold ξ_j, as the
        optimum has them (``ξ_j = log λ_j``, eqs. 36–39), starting from the mean of its
        encoder's and decoder's: every product of gates is then ``max(0, 1 − e^{η−ξ_j})``
        or its square, without the diverging derivative of ``σ_D(η − a) σ_D(η − b)``,
        ``a ≠ b``. Not from the start: while the latents' directions are still random a
        shared threshold falls to the ``min_open`` floor and stays there (at d = 784, 28 of
        32). 0: from the start; None: never. The model keeps three (equal) thresholds, an
        ordinary :class:`LatentMRVAE`. With ``resume`` and no Adam steps, tied only where
        the model's three already agree.
    polish_ridge : float in [0, 1], default 0
        The polish whitens the encoder with ``chol(S + r₂·I)⁻¹``, ``r₂ = max(polish_ridge·r,
        1e6·ε·tr S)`` (r: Adam's ridge, the range's bottom), not Adam's ``P``: the
        Lagrangian's curvature in ``E₁`` at the range's bottom is ``(DᵀD/β + 1) ⊗ S``, so
        directions of variance below r are still ill-conditioned under Adam's ``P`` by
        ``(λ + r)/λ`` (10⁶ on a 12-decade spectrum), and the polish cannot reach them.
        1: Adam's ``P`` kept. L-BFGS has no per-coordinate step, so the directions of zero
        variance, whose gradient is 0, are left alone.
    precondition_polish : bool, default True
        Before the L-BFGS polish, scale each latent's encoder row by the diagonal of the
        encoder's K-FAC output factor, ``h_j = (‖D₂ e_j‖² + lo)/scale²`` (``DᵀD + β`` at
        the range's bottom, read from the model after Adam): the rows' curvatures then
        agree, where they span the data's spectrum (7 decades on wine) without it.
    revive : bool, default True
        Between polish runs, before the gates are kept open, each latent the run shut on
        the whole range is re-pointed at a leading direction of the model's residual
        covariance at the range's bottom, where that direction's residual variance is above
        lo (:mod:`linvae.mrvae.revive`): a shut latent whose encoder points where the data
        have no variance is shut again by every run, while directions of variance above lo
        have no latent (d = 3025, seed 1: 52 of 64 latents live without, 64 with;
        docs/results.md). A latent beyond the data's rank has no such direction and stays
        shut.
    unmix : bool, default True
        Between polish runs, each pair of live latents whose means correlate (at the
        optimum none do) is turned by the rotation, in the latents' unit scale, that
        lowers the polish's objective most over 72 angles (:func:`_unmix`, k × k
        arithmetic an angle): L-BFGS does not leave a pair of latents rotated into each
        other within a pair of close eigenvalues, a saddle (breast cancer with k = 20, two
        latents 0.54/0.61 on λ = 54.6 and 39.8: 0.011 excess/β without, 9e-5 with).
    seed : int, default 0
        Seed of the β draws.
    compile : {"none", "compile", "graph"}, default "none"
        The Adam step through ``torch.compile`` (see :class:`linvae.mrvae.train.TrainConfig`).
        With ``step="fused"``: the closed-form objective compiled (``"compile"``: its only aten
        operations left are the matrix products), or replayed as CUDA graphs (``"graph"``).
    step : {"fused", "autograd"}, default "fused"
        How a :class:`LatentMRVAE`'s Adam step is computed: "fused", the loss's gradient in
        closed form, fused Adam, β drawn in chunks (:mod:`linvae.mrvae._step`: 36 aten
        operations a step eagerly, 40 with float32 products, 13 compiled, against 368);
        "autograd", the loss through autograd and a per-tensor Adam. Same values to
        round-off. Other models (the β-VAE, :class:`LinearMRVAE`) always take "autograd".
    blas : {"auto", "numpy", "torch"}, default "auto"
        Who forms the fused step's three (k, d) × (d, d) products, nearly all of its
        arithmetic at d ≥ 1000 (:func:`linvae.mrvae._step.step_products`): numpy's BLAS
        (OpenBLAS in its wheels; ``W P`` as a triangular product) or torch's (MKL on the
        CPU); "auto": numpy on the CPU, torch on other devices. A compiled step uses
        torch's. Same values to round-off.
    adam_precision : {"auto", "float64", "float32"}, default "auto"
        The dtype of the eager fused Adam step's (k, d) × (d, d) products (a compiled
        step keeps the model's); the parameters, the gradients' sums, Adam's state and the
        polish stay in the model's dtype (float64), and the polish, exact in float64,
        removes what float32's round-off left. "auto": float32 where d ≥ 1024 (there the
        products are the step's cost, and float32's take half float64's time; at d = 3025
        the model ended at 0.0044 excess/β from a float32 Adam, 0.0060 from a float64 one,
        one seed each, docs/results.md), float64 below.
    """

    steps: int = 3000
    betas_per_step: int = 16
    lr: float = 0.1
    warmup_fraction: float = 0.05
    beta_power: float = 2.0
    whiten: bool = True
    whiten_decoder: bool = False
    decoder_init: str = "data"
    encoder_init: str = "data"
    polish_ridge: float = 0.0
    resume: bool = False
    beta_weight: str = "flat"
    polish_iterations: int | None = None
    polish_form: str = "auto"
    polish_nodes: int = 64
    polish_weight: str = "both"
    polisher: str = "auto"
    polish_rounds: int = 4
    min_open: float = 0.05
    share_thresholds_from: float | None = 0.25
    precondition_polish: bool = True
    revive: bool = True
    unmix: bool = True
    seed: int = 0
    compile: str = "none"
    step: str = "fused"
    blas: str = "auto"
    adam_precision: str = "auto"

    def __post_init__(self) -> None:
        checked = {
            "steps": as_int(self.steps, "steps", minimum=0),
            "betas_per_step": as_int(self.betas_per_step, "betas_per_step", minimum=1),
            "lr": as_positive(self.lr, "lr"),
            "warmup_fraction": as_fraction(self.warmup_fraction, "warmup_fraction"),
            "beta_power": as_positive(self.beta_power, "beta_power"),
            "decoder_init": as_choice(self.decoder_init, "decoder_init", ("data", "model")),
            "encoder_init": as_choice(self.encoder_init, "encoder_init", ("data", "model")),
            "beta_weight": as_choice(self.beta_weight, "beta_weight", BETA_WEIGHTS),
            "polish_weight": as_choice(self.polish_weight, "polish_weight", BETA_WEIGHTS),
            "polish_iterations": as_int(
                self.polish_iterations, "polish_iterations", minimum=0, optional=True
            ),
            "polish_form": as_choice(self.polish_form, "polish_form", POLISH_FORMS),
            "polish_nodes": as_int(self.polish_nodes, "polish_nodes", minimum=1),
            "polisher": as_choice(self.polisher, "polisher", POLISHERS),
            "polish_rounds": as_int(self.polish_rounds, "polish_rounds", minimum=1),
            "polish_ridge": as_real(self.polish_ridge, "polish_ridge"),
            "min_open": as_fraction(self.min_open, "min_open"),
            "share_thresholds_from": None
            if self.share_thresholds_from is None
            else as_fraction(self.share_thresholds_from, "share_thresholds_from"),
            "seed": as_seed(self.seed),
            "compile": as_choice(self.compile, "compile", COMPILE_MODES),
            "step": as_choice(self.step, "step", ("fused", "autograd")),
            "blas": as_choice(self.blas, "blas", BLAS),
            "adam_precision": as_choice(
                self.adam_precision, "adam_precision", ("auto", "float64", "float32")
            ),
        }
        for name in (
            "whiten", "whiten_decoder", "resume", "precondition_polish", "revive", "unmix"
        ):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
        if not 0.0 <= checked["polish_ridge"] <= 1.0:
            raise ValueError(f"polish_ridge must be in [0, 1], got {checked['polish_ridge']}")
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict:
        """The settings as JSON builtins."""
        return asdict(self)


def data_factor(X, mean, dtype=torch.float64, device=None) -> torch.Tensor:
    """``F`` of shape (d, min(n, d)) with ``F Fᵀ = S``, the data's covariance (maximum
    likelihood): ``Rᵀ/√n`` of the QR factorisation ``X − m = Q R``, formed from the data
    without squaring them (no eigenvectors)."""
    centred = torch.as_tensor(np.asarray(X, dtype=np.float64) - mean, dtype=dtype)
    R = torch.linalg.qr(centred, mode="r").R
    return (R.T / math.sqrt(centred.shape[0])).to(device)


def residual_terms(model, log_beta, F, A, decoder2, gap):
    """Rate and squared error (B,) of a :class:`LatentMRVAE` at η = ``log_beta`` (B,), the
    squared error as sums of squares (eqs. 16–18 with ``S = F Fᵀ``):
    ``‖F − D₂ diag(στ) A‖² + Σ_j c_j τ_j² ‖D₂ e_j‖² + gap``, ``A = E₁ F`` (k, r), ``F``
    (d, r), ``decoder2`` (d, k), ``gap = ‖m − b‖²``; rate ``½ Σ_j (c_j − 1 − log c_j +
    σ_j² ‖A_j‖²)``. Its round-off is relative to each term, where the trace form's is
    ε·tr S (``RecipeConfig.polish_form``); its cost B·d·r·k."""
    gates = model.gates(log_beta)
    sigma, tau, log_c = gates.encoder2, gates.decoder1, gates.log_variance  # (B, k)
    c = torch.exp(log_c)
    residual = F - (decoder2 * (sigma * tau).unsqueeze(1)) @ A  # (B, d, r)
    squared_error = residual.square().sum((1, 2)) + (c * tau.square()) @ decoder2.square().sum(0)
    rate = 0.5 * (c - 1.0 - log_c + sigma.square() * A.square().sum(1)).sum(1)
    return rate, squared_error + gap


def weighted_loss(rate, squared_error, log_beta, scale, weight):
    """The recipe's objective in a scale-free unit from the rate and squared error at each β
    (exact, or one example's sampled; shapes (B,)), as ``weight`` (``beta_weight``) asks.

    "flat": mean of ``(½‖x − x̂‖² + β R)/scale²``; "inverse": mean of ``R + ½‖x − x̂‖²/β``
    (the unit of excess/β); "both": their sum. Each has the ELBO's optimum. The distortion
    enters less d/2·log 2π, formed without it: all its digits at any scale.
    """
    half_error = 0.5 * squared_error
    lagrangian = torch.mean(rate + half_error * torch.exp(-log_beta))  # R + D/β
    if weight == "inverse":
        return lagrangian
    flat = torch.mean(half_error + torch.exp(log_beta) * rate) / scale**2
    return flat if weight == "flat" else lagrangian + flat


#: "auto" ``adam_precision`` takes float32 from this d on (:class:`RecipeConfig`).
FLOAT32_FROM_D = 1024


def adam_dtype(precision: str, d: int, dtype: torch.dtype) -> torch.dtype:
    """The dtype of the fused Adam step's products (``RecipeConfig.adam_precision``)."""
    if precision == "auto":
        return torch.float32 if d >= FLOAT32_FROM_D else dtype
    return getattr(torch, precision)


def training_range(grid) -> tuple[float, float]:
    """The recipe's training range for an evaluation grid: its bottom halved, its top kept.

    The smallest components are active on a thin slice of the range only; training below
    the grid gives them more of it (docs/results.md).
    """
    grid = np.asarray(grid, dtype=np.float64)
    return as_beta_range((float(grid.min()) / 2.0, float(grid.max())), "grid")


def stratified(count: int, generator: torch.Generator) -> torch.Tensor:
    """One u in each of ``count`` equal strata of [0, 1], uniformly jittered, shape (count,)."""
    jitter = torch.rand(count, generator=generator, dtype=torch.float64)
    return (torch.arange(count, dtype=torch.float64) + jitter) / count


def midpoints(count: int) -> torch.Tensor:
    """The midpoints of ``count`` equal strata of [0, 1] (a fixed quadrature), shape (count,)."""
    return (torch.arange(count, dtype=torch.float64) + 0.5) / count


def whitening_factor(cov: torch.Tensor, ridge: float) -> torch.Tensor:
    """``P = L⁻¹`` of shape (d, d) with ``L Lᵀ = S + ridge·I`` (Cholesky): ``PᵀP = (S + ridge·I)⁻¹``.

    Training ``E₁ = W P`` preconditions the encoder's first layer by the inverse of its
    input covariance (K-FAC's input factor of a linear layer).
    """
    return data_factors(cov, ridge).P


class DataFactors(NamedTuple):
    """The recipe's units, all from the data's covariance S (d, d) and the range's bottom.

    Attributes
    ----------
    L : Tensor of shape (d, d)
        The decoder's factor, ``D₂ = L V``: ``L Lᵀ = S + ridge·I`` (lower Cholesky), or
        ``scale·I`` without whitening.
    P : Tensor of shape (d, d)
        The encoder's factor, ``E₁ = W P``, ``P = L⁻¹``.
    scale : float
        The data's global scale ``√(tr S / d)``: the decoder bias is ``b = m + scale·b'``.
    ridge : float
        The ridge actually used: ``max(lo, 1e6·ε·tr S)``, never below round-off.
    """

    L: torch.Tensor
    P: torch.Tensor
    scale: float
    ridge: float


#: The whitening ridge never falls below this multiple of ε·tr S (round-off of S's
#: eigenvalues; the rule of :func:`linvae._checks.psd_tolerance`).
RIDGE_FLOOR = 1e6 * float(np.finfo(np.float64).eps)


def data_factors(cov: torch.Tensor, ridge: float, *, whiten: bool = True) -> DataFactors:
    """The factors that put the recipe's parameters in the data's own units (see
    :class:`DataFactors`). Each scales as the data: for data ``aX`` and ridge ``a²·ridge``,
    ``L`` and ``scale`` gain ``a`` and ``P`` loses it, so ``W``, ``V`` and ``b'`` are free
    of the data's scale and of its units' anisotropy (eq. 21–23: ``W* = σ Λ^{-1/2}Uᵀ L``
    and ``V* = L⁻¹ U Λ^{1/2} σ`` have rows and columns of norm about 1).

    Raises
    ------
    ValueError
        If the data have no variance (tr S = 0), or S is not positive semi-definite.
    """
    d = cov.shape[0]
    trace = float(torch.trace(cov))
    if not math.isfinite(trace) or trace <= 0.0:
        raise ValueError(f"X has no variance (tr S = {trace:.3g}): nothing to encode")
    scale = math.sqrt(trace / d)
    ridge = max(float(ridge), RIDGE_FLOOR * trace)
    eye = torch.eye(d, dtype=cov.dtype, device=cov.device)
    if not whiten:
        return DataFactors(scale * eye, eye / scale, scale, ridge)
    L, info = torch.linalg.cholesky_ex(cov + ridge * eye)
    if int(info) != 0:
        raise ValueError(
            f"the data covariance plus {ridge:.3g}·I is not positive definite (Cholesky failed "
            f"at column {int(info)}): the covariance is not positive semi-definite"
        )
    P = torch.linalg.solve_triangular(L, eye, upper=False)
    return DataFactors(L, P, scale, ridge)


def train_recipe(
    model: LinearMRVAE,
    X,
    config: RecipeConfig = RecipeConfig(),
    *,
    beta_range: tuple[float, float] | None = None,
    beta: float | None = None,
    device="cpu",
    progress=None,
) -> TrainResult:
    """Train ``model`` in place with the recipe: exact objective, whitening, Adam, L-BFGS.

    The recipe is scale-covariant by construction: data ``aX`` over ``a²·beta_range`` train
    the model ``(E/a, c, aD, ab)`` of data ``X`` (up to round-off), because every trained
    tensor is free of the data's scale (``E₁ = W P``, ``D₂ = scale·V`` or ``L V``,
    ``b = m + scale·b'``, thresholds in log β relative to the range, see
    :func:`data_factors`) and so is the objective (the loss over ``scale²``, or the
    Lagrangian ``R + D/β``).

    Parameters
    ----------
    model : LinearMRVAE
        A :class:`LatentMRVAE` (β drawn over ``beta_range``), or any linear (MR-)VAE
        trained at one fixed ``beta`` (the β-VAE: :func:`linvae.mrvae.model.one_layer_vae`).
    X : array_like of shape (n, d)
        Training data; only its mean and ML covariance are used (eqs. 14–18).
    config : RecipeConfig
    beta_range : (float, float), optional
        (lo, hi), the β range to train on; default ``model.beta_range``.
    beta : float, optional
        Train at this one β instead.
    device : str or torch.device
        Where to train; the model is moved there.
    progress : callable, optional
        Called as ``progress(step, steps, loss, elapsed_seconds)`` after each Adam step, with
        the objective of the last check (every 0.2 s), like :func:`linvae.mrvae.train.train`.

    Returns
    -------
    TrainResult
        ``steps`` of Adam, the whole wall time (the polish's in ``polish_seconds``); the
        losses are the recipe's scale-free objective. Ctrl-C stops the run (the polish is
        skipped) and sets ``interrupted``; an objective that stops being finite sets
        ``diverged_at`` and puts back the last weights seen finite. At the end
        ``model.encoder1`` holds ``W P``, ``model.decoder2`` ``scale·V`` (or ``L V``)
        and ``model.bias`` ``m + scale·b'``: the model is an ordinary MR-VAE.

    Raises
    ------
    ValueError
        If X does not match the model, has no variance, or a range is invalid, or the
        model has FiLM gates (their shifts are not in the recipe's units).
    """
    if not isinstance(model, LinearMRVAE):
        raise TypeError(f"model must be a LinearMRVAE, got {type(model).__name__}")
    if "film" in (model.encoder_gate, model.decoder_gate, model.covariance_gate):
        raise ValueError("model: linvae's recipe trains models without FiLM gates")
    if not isinstance(config, RecipeConfig):
        raise TypeError(f"config must be a RecipeConfig, got {type(config).__name__}")
    device = resolve_device(device)
    stats = data_moments(X)
    if stats.mean.shape != (model.d,):
        raise ValueError(f"X must have shape (n, {model.d}), got {np.shape(X)}")
    if beta is None:
        lo, hi = as_beta_range(model.beta_range if beta_range is None else beta_range)
    else:
        lo = hi = as_beta(beta)
    log_lo, log_hi = math.log(lo), math.log(hi)
    model.set_input_mean(stats.mean)
    model.to(device)
    dtype = model.dtype
    mean = torch.as_tensor(stats.mean, dtype=dtype, device=device)
    cov = torch.as_tensor(stats.cov, dtype=dtype, device=device)
    factors = data_factors(cov, lo, whiten=config.whiten)
    P, scale = factors.P, factors.scale
    # the decoder's unit: the data's global scale (its Hessian in D₂ is isotropic: the
    # decoder's noise is), or the Cholesky factor (K-FAC's whitening, measured worse)
    L = factors.L if config.whiten_decoder else None  # None: D₂ = scale·V, no d² product

    def decoder2():
        return scale * V if L is None else L @ V

    def decoder_free(D2):  # V of D₂
        return D2 / scale if L is None else torch.linalg.solve_triangular(L, D2, upper=False)

    with torch.no_grad():
        if config.resume:  # continue from the model as it is: W P = E₁, L V = D₂
            W0 = torch.linalg.solve(P.T, model.encoder1.T).T
            V0 = decoder_free(model.decoder2)
            b0 = (model.bias - mean) / scale
        else:  # a fresh start: the model's initial weights, in the data's units
            W0 = model.encoder1.clone()
            if config.encoder_init == "data" and config.whiten:  # E₁ = W₀ P S (S + lo·I)⁻¹
                W0 = W0 - factors.ridge * (W0 @ P) @ P.T
            if config.decoder_init == "data":  # unit columns: D₂ = L V of the data's scale
                V0 = model.decoder2 / model.decoder2.norm(dim=0, keepdim=True).clamp(min=1e-300)
            else:  # "model": D₂ as the model has it
                V0 = decoder_free(model.decoder2)
            b0 = torch.zeros_like(mean)  # b = m, the decoder bias's optimum
    shared, share_at = False, None  # share_at: the Adam step after which ξ_j are tied
    if isinstance(model, LatentMRVAE) and beta is None and config.share_thresholds_from is not None:
        if config.share_thresholds_from > 0 and config.steps > 0:
            share_at = max(1, round(config.share_thresholds_from * config.steps))
        elif not config.resume or _thresholds_agree(model):  # a resumed model: unchanged
            _share_thresholds(model)
            shared = True
    W, V, b_free = (torch.nn.Parameter(t.clone().contiguous()) for t in (W0, V0, b0))
    trained = {"encoder1": W, "decoder2": V, "bias": b_free}
    params = [*trained.values()]
    params += [p for name, p in model.named_parameters() if name not in trained]
    params = [p for p in params if p.requires_grad]

    # the polish's preconditioner: E₁ = diag(1/row_scale) W P (ones during Adam)
    row_scale = torch.ones(model.k, 1, dtype=dtype, device=device)

    def encoder1():
        return (W / row_scale) @ P

    def write_model():
        with torch.no_grad():
            model.encoder1.copy_(encoder1())
            model.decoder2.copy_(decoder2())
            model.bias.copy_(mean + scale * b_free)

    def loss_at(log_beta, weight=config.beta_weight):
        terms = exact_loss(
            model,
            log_beta,
            mean,
            cov,
            encoder1=encoder1(),
            decoder2=decoder2(),
            bias=mean + scale * b_free,
        )
        return weighted_loss(terms.rate, terms.squared_error, log_beta, scale, weight)

    def log_betas(u):
        return (log_lo + (log_hi - log_lo) * u**config.beta_power).to(dtype).to(device)

    warmup = max(1, round(config.warmup_fraction * max(config.steps, 1)))
    generator = torch.Generator().manual_seed(config.seed)
    if config.step == "fused" and fusable(model, beta is not None):  # closed form (_step.py)
        objective = compiled_objective(config.compile, device)
        step_loss = FusedStep(
            model, W, V, b_free, P, cov, L, scale, config.beta_weight, objective,
            blas=config.blas, step_dtype=adam_dtype(config.adam_precision, model.d, dtype),
            whitening=(factors.L, factors.ridge) if config.whiten else None,
        )  # fmt: skip
        optimizer = torch.optim.Adam(params, lr=config.lr, fused=True)
        count = config.betas_per_step
        draw = BetaDraws(  # as objective_parts reads η: (B, 1, 1), no reshape a step
            count, (log_lo, log_hi), config.beta_power, generator, dtype, device,
            shape=(count, 1, 1),
        )  # fmt: skip
    else:
        optimizer = torch.optim.Adam(params, lr=config.lr)
        step_loss = compiled_step(loss_at, config.compile, device, params)
        count = 1 if beta is not None else config.betas_per_step

        def draw():
            return log_betas(stratified(count, generator))

    keep_open = isinstance(model, LatentMRVAE) and beta is None and config.min_open > 0
    open_floor = log_lo + config.min_open * (log_hi - log_lo)
    # one operation a step (LatentMRVAE.open_projection), formed again when the tie is made
    project_open = model.open_projection(open_floor) if keep_open else None
    guard = Guard(model, extra=trained)
    done = 0

    def after_step():  # the projection after each Adam step, and the thresholds' tie
        nonlocal done, shared, project_open
        done += 1
        if done == share_at:
            _share_thresholds(model)
            shared = True
            if keep_open:
                project_open = model.open_projection(open_floor)
        if keep_open:
            project_open()

    start = time.perf_counter()
    try:
        result = _adam(
            config, optimizer, step_loss, draw, warmup, guard, progress, after_step, start,
        )  # fmt: skip
        polish_start = time.perf_counter()
        evaluations, final, interrupted = 0, result.final_loss, result.interrupted
        revived, form, unmixed = 0, None, 0
        iterations = (
            polish_budget(model.d, model.k)
            if config.polish_iterations is None
            else config.polish_iterations
        )
        if iterations > 0 and not interrupted and result.diverged_at is None:
            u = (
                midpoints(config.polish_nodes)
                if beta is None
                else torch.zeros(1, dtype=torch.float64)
            )
            nodes = log_betas(u)
            polish_factors = None  # the polish's whitening, where it has its own
            if config.whiten and config.polish_ridge != 1.0:
                polish_factors = _rewhiten(W, factors, cov, config.polish_ridge * factors.ridge)
                _drop_unexcited(W, polish_factors)
            form = polish_form_for(
                config.polish_form, model, float(torch.trace(cov)), lo, len(nodes)
            )
            if form == "residual":
                whitening = polish_factors if polish_factors is not None else factors
                F = data_factor(X, stats.mean, dtype, device)
                if config.whiten:  # P F = L⁻¹ F, solved: the product P @ F keeps |P| |F|
                    PF = torch.linalg.solve_triangular(whitening.L, F, upper=False)
                else:
                    PF = P @ F

                def residual_loss():
                    rate, squared_error = residual_terms(
                        model, nodes, F, (W / row_scale) @ PF, decoder2(),
                        scale**2 * b_free.square().sum(),
                    )  # fmt: skip
                    return weighted_loss(rate, squared_error, nodes, scale, config.polish_weight)

                evaluate = with_backward(residual_loss)
            elif isinstance(step_loss, FusedStep):  # the closed form: 3 d² products, not 6
                step_loss.rewhitened(
                    None if polish_factors is None else (polish_factors.L, polish_factors.ridge)
                )

                def evaluate():
                    return step_loss.exact(nodes, config.polish_weight, row_scale)
            else:
                evaluate = with_backward(lambda: loss_at(nodes, config.polish_weight))

            if config.precondition_polish:
                with torch.no_grad():  # h_j = (‖D₂ e_j‖² + lo)/scale², the model unchanged
                    root_h = ((decoder2().square().sum(0) + lo) / scale**2).sqrt()
                    W.mul_(root_h.unsqueeze(1))
                    row_scale.copy_(root_h.unsqueeze(1))
            polisher = polisher_for(config.polisher, device)
            per_round = -(-iterations // config.polish_rounds)
            for round_ in range(1, config.polish_rounds + 1):
                if config.precondition_polish:
                    count, final, interrupted = _preconditioned_polish(
                        per_round, model, trained, evaluate, guard, root_h, polisher
                    )
                else:
                    count, final, interrupted = _polish(
                        per_round, params, evaluate, guard, polisher
                    )
                evaluations += count
                if interrupted:
                    break
                if keep_open and round_ < config.polish_rounds:  # opens for the next run
                    reopen = None  # all
                    if config.revive:  # only the revived: the others are alive, or left shut
                        write_model()
                        back = _revive(
                            model, W, V, row_scale, P, decoder_free, cov, log_lo, generator
                        )
                        revived += int(back.numel())
                        reopen = torch.zeros(model.k, dtype=torch.bool, device=device)
                        reopen[back] = True
                        if polish_factors is not None and back.numel():
                            _drop_unexcited(W, polish_factors, back)
                    if config.unmix:
                        unmixed += _unmix(
                            model, W, V, row_scale, P, cov, nodes, config.polish_weight,
                            scale, decoder2, decoder_free,
                        )  # fmt: skip
                    model.keep_open(open_floor, reopen)
        polish_seconds = time.perf_counter() - polish_start
        write_model()
    finally:
        if shared:
            _untie_thresholds(model)
    return TrainResult(
        result.steps,
        time.perf_counter() - start,
        interrupted,
        final,
        diverged_at=result.diverged_at,
        polish_seconds=polish_seconds,
        polish_evaluations=evaluations,
        revived_latents=revived,
        polish_iterations=iterations if evaluations else 0,
        polish_form=form if evaluations else None,
        unmixed_pairs=unmixed,
    )


@torch.no_grad()
def _unmix(model, W, V, row_scale, P, cov, nodes, weight, scale, decoder2, decoder_free,
           threshold=0.05, angles=72) -> int:  # fmt: skip
    """Unmix pairs of latents the polish left rotated into each other: for each pair of
    latents whose means correlate (|K_ij| > threshold·√(K_ii K_jj); at the optimum every
    pair is uncorrelated), the rotation of the pair (in the latents' unit scale) that
    lowers the polish's objective most over ``angles`` angles, at k × k cost an angle
    (K = E₁SE₁ᵀ, N = E₁SD₂, G = D₂ᵀD₂ turn as A K Aᵀ, A N A⁻¹, A⁻ᵀ G A⁻¹). Returns how
    many pairs were turned."""
    E1 = (W / row_scale) @ P
    D2 = decoder2()
    E1S = E1 @ cov
    K, N, G = E1S @ E1.T, E1S @ D2, D2.T @ D2
    gates = model.gates(nodes)
    sigma, tau, log_c = gates.encoder2, gates.decoder1, gates.log_variance
    c = torch.exp(log_c)
    a = sigma * tau
    trace = torch.trace(cov)
    rate0 = 0.5 * (c - 1.0 - log_c).sum(1)

    def objective(K, N, G):
        rate = rate0 + 0.5 * (sigma.square() * K.diagonal()).sum(1)
        squared_error = (
            trace - 2.0 * (a * N.diagonal()).sum(1) + ((a @ (K * G)) * a).sum(1)
            + (c * tau.square() * G.diagonal()).sum(1)
        )  # fmt: skip
        return float(weighted_loss(rate, squared_error, nodes, scale, weight))

    k = K.shape[0]
    eye = torch.eye(k, dtype=K.dtype, device=K.device)
    total = eye.clone()
    best = objective(K, N, G)
    turned = 0
    thetas = torch.linspace(-math.pi / 2, math.pi / 2, angles + 1, dtype=K.dtype)[1:]
    norms = K.diagonal().clamp(min=0).sqrt()
    corr = K.abs() / (norms[:, None] * norms[None, :]).clamp(min=1e-300)
    live = norms > 0
    pairs = [
        (int(i), int(j))
        for i, j in torch.nonzero(torch.triu(corr > threshold, 1)).tolist()
        if live[i] and live[j]
    ]
    for i, j in pairs:
        norms = K.diagonal().clamp(min=1e-300).sqrt()
        chosen = None
        for theta in thetas.tolist():
            R = eye.clone()
            R[i, i] = R[j, j] = math.cos(theta)
            R[i, j], R[j, i] = -math.sin(theta), math.sin(theta)
            A = norms[:, None] * R / norms[None, :]
            B = torch.linalg.inv(A)
            value = objective(A @ K @ A.T, A @ N @ B, B.T @ G @ B)
            if value < best - 1e-12 * abs(best):
                best, chosen = value, A
        if chosen is not None:
            B = torch.linalg.inv(chosen)
            K, N, G = chosen @ K @ chosen.T, chosen @ N @ B, B.T @ G @ B
            total = chosen @ total
            turned += 1
    if turned:
        W.copy_(row_scale * (total @ (W / row_scale)))  # E₁ = diag(1/row_scale) W P
        V.copy_(decoder_free(D2 @ torch.linalg.inv(total)))
    return turned


@torch.no_grad()
def _revive(model, W, V, row_scale, P, decoder_free, cov, log_lo, generator) -> torch.Tensor:
    """Re-point the latents the last polish run shut on the whole range (see
    ``RecipeConfig.revive``) at the residual's leading directions of variance μ > lo, as
    one latent's optimum on the residual ``(I − D E) x`` along each: ``E₁`` row
    ``uᵀ(I − D E)/√μ``, ``D₂`` column ``√μ u`` (E, D at lo), written into the trained ``W``
    (``E₁ = diag(1/row_scale) W P``) and ``V``. The model holds the current weights.
    Returns the indices of those revived."""
    dead = torch.nonzero(model.shut_latents(log_lo)).flatten()
    if dead.numel() == 0:
        return dead
    log_beta = torch.tensor([log_lo], dtype=model.dtype, device=cov.device)
    E, _, D, _, _ = (t[0] for t in model.matrices(log_beta))
    U, mu = residual_directions(E, D, cov, dead.numel(), generator=generator)
    chosen = mu > math.exp(log_lo)
    dead, U, mu = dead[: int(chosen.sum())], U[:, chosen], mu[chosen]
    if dead.numel() == 0:
        return dead
    # E₁ rows (m, d): uᵀ(I − D E)/√μ encodes what the others leave of x along u, so that
    # the latent takes μ off the residual (uᵀ/√μ would add x's whole u-part a second
    # time where the others explain part of it: breast cancer, k = 30, the objective
    # rose 700-fold); W = row_scale·E₁ P⁻¹
    rows = (U.T - (U.T @ D) @ E) / mu.sqrt().unsqueeze(1)
    W[dead] = row_scale[dead] * torch.linalg.solve_triangular(P.T, rows.T, upper=True).T
    V[:, dead] = decoder_free(U * mu.sqrt())
    return dead


@torch.no_grad()
def _rewhiten(
    W: torch.Tensor, factors: DataFactors, cov: torch.Tensor, ridge: float
) -> DataFactors:
    """Put the encoder in the units of a smaller ridge, in place: ``E₁ = W P = W₂ P₂`` with
    ``P₂`` the :func:`data_factors` of ``ridge`` (floored at ``1e6·ε·tr S``), so
    ``W₂ = W L⁻¹ L₂`` (see ``RecipeConfig.polish_ridge``). ``factors.P`` becomes ``P₂``;
    returns the smaller ridge's factors."""
    smaller = data_factors(cov, ridge)
    W.copy_(W @ torch.linalg.solve_triangular(factors.L, smaller.L, upper=False))
    factors.P.copy_(smaller.P)
    return smaller


@torch.no_grad()
def _drop_unexcited(W: torch.Tensor, factors: DataFactors, rows=None) -> None:
    """Take out of the encoder, in place, what it holds along directions the data do not
    excite: ``E₁ ← E₁ S (S + r·I)⁻¹`` (r = ``factors.ridge``, round-off's at the polish),
    i.e. ``W ← W − r (W P) Pᵀ`` for ``E₁ = diag(1/row_scale) W P``; directions of variance
    λ ≫ r keep ``λ/(λ + r)`` of theirs. Weight along a direction of no variance has no
    gradient and no cost, but Adam's per-coordinate steps in ``W`` put some there, up to
    ``1/√r`` in ``E₁``; against a spectrum's large eigenvalues it makes the objective's
    round-off exceed the polish's progress (9 decades, rank 4: a step of 1e-16 moved the
    objective by 1 in 18 and the polish stopped at 12 excess/β; without it 0.003).
    ``rows``: only these rows (default all)."""
    if rows is None:
        W.sub_(factors.ridge * (W @ factors.P) @ factors.P.T)
    else:
        W[rows] -= factors.ridge * (W[rows] @ factors.P) @ factors.P.T


def _thresholds_agree(model: LatentMRVAE) -> bool:
    first, *others = (gate.bias for gate in model.gate_modules())
    return all(torch.equal(first, other) for other in others)


def _share_thresholds(model: LatentMRVAE) -> None:
    """One threshold tensor for the three gates of each latent (one ξ_j), at the mean of the
    encoder's and the decoder's; the encoder's tensor, with its optimiser state, is kept."""
    encoder, covariance, decoder = model.gate_modules()
    with torch.no_grad():
        encoder.bias.copy_(0.5 * (encoder.bias + decoder.bias))
    covariance.bias = encoder.bias
    decoder.bias = encoder.bias


def _untie_thresholds(model: LatentMRVAE) -> None:
    """Give each gate its own copy of the shared thresholds again (safetensors, which the
    run folders use, refuses tensors that share memory)."""
    first, *others = model.gate_modules()
    for gate in others:
        gate.bias = torch.nn.Parameter(first.bias.detach().clone())


def _adam(config, optimizer, step_loss, draw, warmup, guard, progress, project,
          start) -> TrainResult:  # fmt: skip
    """The Adam phase; Ctrl-C and divergence end it cleanly (see :func:`train_recipe`)."""
    from .train import READ_INTERVAL

    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, config.steps, warmup)
    )
    last_read, loss_read, done = -math.inf, math.nan, 0
    try:
        for step in range(config.steps):
            optimizer.zero_grad(set_to_none=True)
            loss = step_loss(draw())
            optimizer.step()
            schedule.step()
            project()
            done = step + 1
            now = time.perf_counter()
            if done == config.steps or now - last_read >= READ_INTERVAL:
                loss_read, last_read = float(loss), now
                if not math.isfinite(loss_read):
                    guard.restore_state()
                    return TrainResult(guard.step, now - start, False, guard.loss, done)
                guard.keep(done, loss_read)
            if progress is not None:
                progress(done, config.steps, loss_read, now - start)
    except KeyboardInterrupt:
        return TrainResult(done, time.perf_counter() - start, True, loss_read)
    return TrainResult(done, time.perf_counter() - start, False, loss_read)


def _preconditioned_polish(iterations, model, trained, evaluate, guard, root_h,
                           polisher="strong-wolfe"):  # fmt: skip
    """The polish with latent j's thresholds trained as ``y = √h_j`` times themselves, as
    its encoder row already is: ``evaluate`` sets the model's gradients, which become
    ``y``'s by the chain rule; the model's tensors are put back (the polish's or, if it
    fails, the ones it started from). Not ρ_j: its curvature, ½ Σ_β w(β) c (1 + ‖D_j‖²/β),
    comes from the whole range for a collapsed latent (D_j = 0), where h_j, read at the
    range's bottom, is orders of magnitude smaller (breast cancer, k = 30: ρ left off 0,
    0.048 excess/β at the top of the range)."""
    per_latent = {
        name: p
        for name, p in model.named_parameters()
        if p.requires_grad
        and name not in trained
        and p.shape == root_h.shape
        and name != "log_variance"
    }
    scaled = {name: torch.nn.Parameter(p.detach() * root_h) for name, p in per_latent.items()}
    others = [
        p
        for name, p in model.named_parameters()
        if p.requires_grad and name not in trained and name not in per_latent
    ]

    def evaluate_scaled():
        with torch.no_grad():
            for name, p in per_latent.items():
                p.copy_(scaled[name] / root_h)
                p.grad = None
        value = evaluate()
        for name, p in per_latent.items():
            scaled[name].grad = torch.zeros_like(p) if p.grad is None else p.grad / root_h
        return value

    polish_guard = Guard(model, extra={**trained, **scaled})
    polish_guard.loss = guard.loss
    params = [*trained.values(), *scaled.values(), *others]
    try:
        return _polish(iterations, params, evaluate_scaled, polish_guard, polisher)
    finally:
        with torch.no_grad():
            for name, p in per_latent.items():
                p.copy_(scaled[name] / root_h)
                p.grad = None


def _polish(iterations, params, evaluate, guard, polisher="strong-wolfe"):
    """L-BFGS; returns (loss evaluations, final loss, interrupted). ``evaluate()`` returns
    the objective (a scalar tensor) with the ``.grad`` of every tensor of ``params`` set.
    ``polisher``: ``RecipeConfig.polisher``.

    Ctrl-C, or a line search that leaves the loss non-finite, puts back the weights the
    polish started from.
    """
    if polisher == "device":
        return _device_polish(iterations, params, evaluate, guard)
    before = guard.snapshot()
    lbfgs = torch.optim.LBFGS(
        params, lr=1.0, max_iter=iterations, history_size=50,
        line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-15,
    )  # fmt: skip
    evaluations = 0

    def closure():
        nonlocal evaluations
        lbfgs.zero_grad(set_to_none=True)
        value = evaluate()
        evaluations += 1
        return value

    try:
        lbfgs.step(closure)  # returns the loss it started from, not the one it ends at
        final = float(evaluate())
        lbfgs.zero_grad(set_to_none=True)
    except KeyboardInterrupt:
        guard.load(before)
        return evaluations, guard.loss, True
    if not (math.isfinite(final) and all(bool(torch.isfinite(p).all()) for p in params)):
        guard.load(before)  # a line search that went to inf or NaN: the weights before it
        return evaluations, guard.loss, False
    return evaluations, final, False


def _device_polish(iterations, params, evaluate, guard):
    """:func:`_polish` by :func:`batched_lbfgs` with one member (the ``params`` seen through
    a member axis of 1): no host read within the run, one at its end, where a non-finite
    loss or weight puts back the weights it started from, as Ctrl-C does."""
    before = guard.snapshot()
    evaluations = 0

    def objective(tensors):  # (1,): evaluate()'s value; its .grad made autograd's
        nonlocal evaluations
        with torch.no_grad():
            for p, t in zip(params, tensors, strict=True):
                p.copy_(t[0])
                p.grad = None
        value = evaluate()
        evaluations += 1
        tangent = sum(  # 0 in value; its gradient in each tensor is that tensor's .grad
            ((t - t.detach()) * p.grad).sum()
            for p, t in zip(params, tensors, strict=True)
            if p.grad is not None
        )
        return value.detach().reshape(1) + tangent

    members = [p.detach().unsqueeze(0) for p in params]  # views: the run's end writes params
    try:
        result = batched_lbfgs(objective, members, iterations)
    except KeyboardInterrupt:
        guard.load(before)
        return evaluations, guard.loss, True
    finally:
        for p in params:
            p.grad = None
    finite = torch.stack([torch.isfinite(p).all() for p in params]).all()
    final, ok = torch.stack([result.values[0], finite.to(result.values.dtype)]).tolist()
    if not (ok and math.isfinite(final)):
        guard.load(before)
        return evaluations, guard.loss, False
    return evaluations, final, False


def with_backward(loss: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
    """``loss`` as :func:`_polish` evaluates it: the value, its gradient by autograd."""

    def evaluate():
        value = loss()
        value.backward()
        return value.detach()

    return evaluate
