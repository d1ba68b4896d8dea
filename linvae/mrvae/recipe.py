r"""linvae's training recipe: one MR-VAE to the optimum on the whole rate-distortion curve.

Each choice below was measured, one change at a time, on digits and on 28×28 patches
(docs/results.md, "What each part of the recipe buys"):

- **Model**: :class:`linvae.mrvae.model.LatentMRVAE`, one σ_D gate per latent on the
  encoder and the decoder and a hinge on the posterior variance, slopes 1 in η: Theorem 1's
  joint construction, so the optimum is in the family (floor 0) and each latent keeps a
  threshold of its own. Thresholds start by the density below.
- **Objective**: the exact expected loss (eqs. 14–18, :func:`exact_loss`) at
  ``betas_per_step`` β a step, η = log lo + (log hi − log lo) u^p, u one per stratum of
  [0, 1], jittered: more β where more latents are active. The floor being 0, any positive
  weighting over β has the same global optimum; the density only conditions.
- **Preconditioning**: the encoder is trained as ``E₁ = W P``, ``P = L⁻¹``,
  ``L Lᵀ = S + lo·I`` (Cholesky of the data covariance, ridge the range's bottom): the
  input factor of K-FAC for a linear layer, from the data's own moments.
- **Initialisation**: decoder columns of norm √(tr S / d), the data's own scale.
- **Optimiser**: Adam, warm-up then cosine decay; after each step the σ_D gates are kept
  open on the bottom 5 % of the range (a gate shut on the whole range has no gradient);
  then L-BFGS (strong Wolfe) on a fixed quadrature of the same density.

Training reads the data's mean and covariance and the β range, nothing else: never the
analytic optimum, its eigenvectors or eigenvalues. The range comes from the user's grid
(:func:`training_range`).
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
from linvae.analytic import moments as data_moments

from ._compiled import compiled_step
from .model import LatentMRVAE, LinearMRVAE
from .objectives import exact_loss
from .train import COMPILE_MODES, TrainResult, learning_rate_factor
from .train import _Guard as Guard


@dataclass(frozen=True)
class RecipeConfig:
    """Settings of :func:`train_recipe`; the defaults are linvae's recipe.

    Attributes
    ----------
    steps : int, default 3000
        Adam steps.
    betas_per_step : int, default 16
        β per Adam step: one in each of as many equal strata of u ∈ [0, 1], jittered.
    lr : float, default 0.03
        Adam's peak learning rate.
    warmup_fraction : float, default 0.05
        Linear warm-up, then cosine decay to 0.
    beta_power : float, default 2
        η = log lo + (log hi − log lo) u^power: above 1, more β at the small end.
    whiten : bool, default True
        Train the first encoder layer as ``W P``, ``P = chol(S + lo·I)⁻¹``.
    decoder_init : {"data", "model"}, default "data"
        A fresh start's decoder: "data": columns rescaled to norm √(tr S / d); "model":
        kept at the model's initial scale. The encoder's first layer starts as ``W₀ P``
        (``W₀`` its initial weights).
    resume : bool, default False
        Continue training the model as it is (a trained model): its weights are kept, the
        encoder's included (``W = E₁ P⁻¹``, so ``W P = E₁``); ``decoder_init`` is ignored.
    polish_iterations : int, default 1000
        L-BFGS iterations after Adam (0: none).
    polish_nodes : int, default 64
        The polish's fixed quadrature: the midpoints of as many strata of u, same density.
    min_open : float, default 0.05
        After each Adam step every σ_D gate of a :class:`LatentMRVAE` is kept open on this
        bottom share of the log range (:meth:`LatentMRVAE.keep_open`): a gate shut on the
        whole range has no gradient, its latent is dead for good. 0: not kept.
    seed : int, default 0
        Seed of the β draws.
    compile : {"none", "compile", "graph"}, default "none"
        The Adam step through ``torch.compile`` (see :class:`linvae.mrvae.train.TrainConfig`).
    """

    steps: int = 3000
    betas_per_step: int = 16
    lr: float = 3e-2
    warmup_fraction: float = 0.05
    beta_power: float = 2.0
    whiten: bool = True
    decoder_init: str = "data"
    resume: bool = False
    polish_iterations: int = 1000
    polish_nodes: int = 64
    min_open: float = 0.05
    seed: int = 0
    compile: str = "none"

    def __post_init__(self) -> None:
        checked = {
            "steps": as_int(self.steps, "steps", minimum=0),
            "betas_per_step": as_int(self.betas_per_step, "betas_per_step", minimum=1),
            "lr": as_positive(self.lr, "lr"),
            "warmup_fraction": as_fraction(self.warmup_fraction, "warmup_fraction"),
            "beta_power": as_positive(self.beta_power, "beta_power"),
            "decoder_init": as_choice(self.decoder_init, "decoder_init", ("data", "model")),
            "polish_iterations": as_int(self.polish_iterations, "polish_iterations", minimum=0),
            "polish_nodes": as_int(self.polish_nodes, "polish_nodes", minimum=1),
            "min_open": as_fraction(self.min_open, "min_open"),
            "seed": as_seed(self.seed),
            "compile": as_choice(self.compile, "compile", COMPILE_MODES),
        }
        for name in ("whiten", "resume"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict:
        """The settings as JSON builtins."""
        return asdict(self)


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
    d = cov.shape[0]
    eye = torch.eye(d, dtype=cov.dtype, device=cov.device)
    L = torch.linalg.cholesky(cov + ridge * eye)
    return torch.linalg.solve_triangular(L, eye, upper=False)


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
        the loss of the last check (every 0.2 s), like :func:`linvae.mrvae.train.train`.

    Returns
    -------
    TrainResult
        ``steps`` of Adam, the whole wall time (the polish's in ``polish_seconds``). Ctrl-C
        stops the run (the polish is skipped) and sets ``interrupted``; a loss that stops
        being finite sets ``diverged_at`` and puts back the last weights seen finite. At
        the end ``model.encoder1`` holds ``W P``: the model is an ordinary MR-VAE.
    """
    if not isinstance(model, LinearMRVAE):
        raise TypeError(f"model must be a LinearMRVAE, got {type(model).__name__}")
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

    if config.decoder_init == "data" and not config.resume:
        with torch.no_grad():
            norms = model.decoder2.norm(dim=0, keepdim=True).clamp(min=1e-300)
            model.decoder2.mul_(math.sqrt(float(torch.trace(cov)) / model.d) / norms)
    P = whitening_factor(cov, lo) if config.whiten else None
    if not config.whiten:
        W = model.encoder1
    elif config.resume:  # continue from the model as it is: W P = E₁
        W = torch.nn.Parameter(torch.linalg.solve(P.T, model.encoder1.detach().T).T)
    else:  # a fresh start: the model's initial weights, whitened
        W = torch.nn.Parameter(model.encoder1.detach().clone())
    params = [W, *(p for name, p in model.named_parameters() if name != "encoder1")]
    params = [p for p in params if p.requires_grad]

    def write_encoder():
        if P is not None:
            with torch.no_grad():
                model.encoder1.copy_(W @ P)

    def loss_at(log_beta):
        encoder1 = W @ P if P is not None else None
        return exact_loss(model, log_beta, mean, cov, encoder1=encoder1).loss

    def log_betas(u):
        return (log_lo + (log_hi - log_lo) * u**config.beta_power).to(dtype).to(device)

    optimizer = torch.optim.Adam(params, lr=config.lr)
    warmup = max(1, round(config.warmup_fraction * max(config.steps, 1)))
    step_loss = compiled_step(loss_at, config.compile, device, params)
    generator = torch.Generator().manual_seed(config.seed)
    keep_open = isinstance(model, LatentMRVAE) and beta is None and config.min_open > 0
    guard = Guard(model, extra={"W": W})
    start = time.perf_counter()
    result = _adam(
        config, optimizer, step_loss, log_betas, generator, warmup, guard, progress,
        lambda: model.keep_open(log_lo + config.min_open * (log_hi - log_lo)) if keep_open else None,
        beta is not None, start,
    )  # fmt: skip
    polish_start = time.perf_counter()
    evaluations, final, interrupted = 0, result.final_loss, result.interrupted
    if config.polish_iterations > 0 and not interrupted and result.diverged_at is None:
        u = midpoints(config.polish_nodes) if beta is None else torch.zeros(1, dtype=torch.float64)
        evaluations, final, interrupted = _polish(config, params, loss_at, log_betas(u), guard)
    polish_seconds = time.perf_counter() - polish_start
    write_encoder()
    return TrainResult(
        result.steps,
        time.perf_counter() - start,
        interrupted,
        final,
        diverged_at=result.diverged_at,
        polish_seconds=polish_seconds,
        polish_evaluations=evaluations,
    )


def _adam(config, optimizer, step_loss, log_betas, generator, warmup, guard, progress,
          project, fixed_beta, start) -> TrainResult:  # fmt: skip
    """The Adam phase; Ctrl-C and divergence end it cleanly (see :func:`train_recipe`)."""
    from .train import READ_INTERVAL

    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, config.steps, warmup)
    )
    count = 1 if fixed_beta else config.betas_per_step
    last_read, loss_read, done = -math.inf, math.nan, 0
    try:
        for step in range(config.steps):
            optimizer.zero_grad(set_to_none=True)
            loss = step_loss(log_betas(stratified(count, generator)))
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


def _polish(config, params, loss_at, nodes, guard):
    """L-BFGS on the fixed quadrature; returns (loss evaluations, final loss, interrupted).

    Ctrl-C, or a line search that leaves the loss non-finite, puts back the weights the
    polish started from.
    """
    before = guard.snapshot()
    lbfgs = torch.optim.LBFGS(
        params, lr=1.0, max_iter=config.polish_iterations, history_size=50,
        line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-15,
    )  # fmt: skip
    evaluations = 0

    def closure():
        nonlocal evaluations
        lbfgs.zero_grad(set_to_none=True)
        value = loss_at(nodes)
        value.backward()
        evaluations += 1
        return value

    try:
        final = float(lbfgs.step(closure).detach())
    except KeyboardInterrupt:
        guard.load(before)
        return evaluations, guard.loss, True
    if not math.isfinite(final):
        guard.load(before)
        return evaluations, guard.loss, False
    return evaluations, final, False
