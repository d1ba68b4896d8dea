"""Training of a linear (MR-)VAE: β sampling, Adam with warm-up and cosine decay.

The loop is the only stateful part of :mod:`linvae.mrvae`; the mathematics it optimises is in
:mod:`linvae.mrvae.objectives`. Every random draw (mini-batch order, β, reparameterisation
noise) comes from one private ``torch.Generator`` seeded by ``TrainConfig.seed`` on the CPU,
so a run is reproducible on a given device regardless of the global RNG.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
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
from .gates import DEFAULT_BETA_RANGE
from .model import LinearMRVAE
from .objectives import exact_loss, sampled_loss

OBJECTIVES = ("sampled", "exact")
BETA_SAMPLINGS = ("example", "batch")
COMPILE_MODES = ("none", "compile", "graph")

#: Seconds between two reads of the running loss from the device (and on the last step).
READ_INTERVAL = 0.2

#: Steps whose random draws are made at once and moved to the device in one copy.
_CHUNK_STEPS = 256
#: At most this many noise values per chunk (the chunk shrinks for large batches).
_CHUNK_VALUES = 1 << 22


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run.

    Attributes
    ----------
    steps : int
        Number of optimiser steps.
    batch_size : int
        Examples per mini-batch (``sampled``), or values of β per step (``exact``).
    lr : float
        Peak learning rate of Adam.
    warmup_fraction : float
        Fraction of ``steps`` of linear warm-up from 0 (the paper: 10 of 200 epochs), then
        cosine decay to 0.
    objective : {"sampled", "exact"}
        The reparameterised ELBO on mini-batches, or the exact expected loss from the
        data's moments (see :mod:`linvae.mrvae.objectives`).
    beta_sampling : {"example", "batch"}
        An MR-VAE draws log β ~ Uniform(log lo, log hi) per example (the authors' code) or
        one per mini-batch (the paper's Algorithm 1).
    beta_range : (float, float)
        (lo, hi), the range of the MR-VAE's β.
    seed : int
        Seed of the mini-batch order, β and noise.
    compile : {"none", "compile", "graph"}
        How the loss and its gradient are computed: eagerly (``"none"``), through
        ``torch.compile`` (``"compile"``: one compilation, tens of seconds, before the first
        step), or through ``torch.compile`` with CUDA graphs (``"graph"``, mode
        ``"reduce-overhead"``: removes the per-kernel launch cost on a GPU). On a CPU
        ``"graph"`` trains eagerly, with a warning; a compiler that fails falls back to
        eager with a warning. What it gains, measured: ``python -m benchmarks.training
        compile`` (docs/benchmarks.md).
    """

    steps: int = 3000
    batch_size: int = 128
    lr: float = 3e-3
    warmup_fraction: float = 0.05
    objective: str = "sampled"
    beta_sampling: str = "example"
    beta_range: tuple[float, float] = DEFAULT_BETA_RANGE
    seed: int = 0
    compile: str = "none"

    def __post_init__(self) -> None:
        checked = {
            "steps": as_int(self.steps, "steps", minimum=1),
            "batch_size": as_int(self.batch_size, "batch_size", minimum=1),
            "lr": as_positive(self.lr, "lr"),
            "warmup_fraction": as_fraction(self.warmup_fraction, "warmup_fraction"),
            "objective": as_choice(self.objective, "objective", OBJECTIVES),
            "beta_sampling": as_choice(self.beta_sampling, "beta_sampling", BETA_SAMPLINGS),
            "beta_range": as_beta_range(self.beta_range),
            "seed": as_seed(self.seed),
            "compile": as_choice(self.compile, "compile", COMPILE_MODES),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict:
        """The settings as JSON builtins."""
        out = asdict(self)
        out["beta_range"] = list(self.beta_range)
        return out


@dataclass(frozen=True)
class TrainResult:
    """What a training run did.

    Attributes
    ----------
    steps : int
        Optimiser steps completed (fewer than asked when interrupted).
    seconds : float
        Wall time of the loop.
    interrupted : bool
        True when a KeyboardInterrupt stopped the loop.
    final_loss : float
        Mean training loss over the last steps (up to 50), nats per example; NaN if no step
        completed.
    diverged_at : int or None
        The first step whose loss was not finite, when training diverged; the model then
        holds the weights after ``steps`` updates, the last whose loss was seen finite.
    polish_seconds : float
        Of ``seconds``, the L-BFGS polish of :func:`linvae.mrvae.recipe.train_recipe` (0
        for :func:`train`).
    polish_evaluations : int
        The polish's loss evaluations.
    revived_latents : int
        Latents the recipe re-pointed between polish runs (``RecipeConfig.revive``).
    polish_iterations : int
        The polish's L-BFGS iterations, as resolved (``RecipeConfig.polish_iterations``;
        0 without a polish).
    polish_form : str or None
        How the polish formed the squared error (``RecipeConfig.polish_form``, resolved).
    unmixed_pairs : int
        Pairs of latents the recipe turned apart between polish runs
        (``RecipeConfig.unmix``).
    learning_rate : float or None
        Adam's peak learning rate, where the run resolved it from the data
        (``SampledConfig.lr`` None); None otherwise.
    """

    steps: int
    seconds: float
    interrupted: bool
    final_loss: float
    diverged_at: int | None = None
    polish_seconds: float = 0.0
    polish_evaluations: int = 0
    revived_latents: int = 0
    polish_iterations: int = 0
    polish_form: str | None = None
    unmixed_pairs: int = 0
    learning_rate: float | None = None


def learning_rate_factor(step: int, steps: int, warmup_steps: int) -> float:
    """Linear warm-up to 1 over ``warmup_steps``, then cosine decay to 0 at ``steps``.

    ``step`` counts completed steps (0 for the first update); the factor of update
    ``step`` is ``(step + 1)/warmup_steps`` during warm-up, then
    ``½(1 + cos(π (step − warmup_steps + 1) / (steps − warmup_steps + 1)))``.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps + 1) / (steps - warmup_steps + 1)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


ProgressCallback = Callable[[int, int, float, float], None]


def train(
    model: LinearMRVAE,
    X,
    config: TrainConfig,
    *,
    beta: float | None = None,
    device: str | torch.device = "cpu",
    progress: ProgressCallback | None = None,
) -> TrainResult:
    """Train ``model`` in place on data ``X`` with Adam, warm-up and cosine decay.

    Parameters
    ----------
    model : LinearMRVAE
        An MR-VAE (``beta=None``: β is sampled, see ``config.beta_sampling``) or any model
        trained at one fixed ``beta`` (the β-VAE baseline, :class:`LinearVAE`).
    X : array_like of shape (n, d)
        Training data. The model's ``input_mean`` is set to its mean before the first step
        (the encoder centres with the MLE mean, eq. 12); ``exact`` uses its ML covariance.
    config : TrainConfig
    beta : float, optional
        Train at this one β > 0 instead of sampling it.
    device : str or torch.device
        Where to train (see :func:`resolve_device`); the model is moved there.
    progress : callable, optional
        Called as ``progress(step, steps, loss, elapsed_seconds)`` after each step, where
        ``loss`` is the mean training loss of the last (up to 50) steps as last read from
        the device: it is refreshed at the first and last step and every
        :data:`READ_INTERVAL` seconds, so that a GPU is not synchronised with every step.

    Returns
    -------
    TrainResult
        A KeyboardInterrupt (Ctrl-C) stops the loop after the current step and is reported
        by ``interrupted=True``, not re-raised: the model keeps the weights it had. A loss
        that is no longer finite (checked with every read of the loss) stops the loop too:
        the model gets back the weights of the last check with a finite loss, and
        ``diverged_at`` names the step where the loss first went non-finite.

    Raises
    ------
    TypeError, ValueError
        On a bad model, data, β or device.
    """
    if not isinstance(model, LinearMRVAE):
        raise TypeError(f"model must be a LinearMRVAE or LinearVAE, got {type(model).__name__}")
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    X = np.asarray(X, dtype=np.float64)
    if not X.flags.writeable:  # a read-only memory map (a .npy file): torch wants its own copy
        X = X.copy()
    if X.ndim != 2 or X.shape[1] != model.d or X.shape[0] < 2:
        raise ValueError(f"X must have shape (n >= 2, {model.d}), got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X must be finite (it holds NaN or inf)")
    if beta is not None:
        beta = as_beta(beta)
    device = resolve_device(device)

    stats = data_moments(X)
    model.set_input_mean(stats.mean)
    model.to(device)
    dtype = model.dtype
    data = torch.as_tensor(X, dtype=dtype).to(device)
    mean = torch.as_tensor(stats.mean, dtype=dtype).to(device)
    cov = torch.as_tensor(stats.cov, dtype=dtype).to(device)
    n = data.shape[0]

    warmup_steps = max(1, round(config.warmup_fraction * config.steps))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, config.steps, warmup_steps)
    )
    draws = _Draws(config, n, model.k, dtype, beta)

    # the module's objectives are looked up at each call (tests replace them)
    if config.objective == "exact":

        def objective(log_beta: torch.Tensor) -> torch.Tensor:
            return exact_loss(model, log_beta, mean, cov).loss

    else:

        def objective(x: torch.Tensor, log_beta: torch.Tensor, noise: torch.Tensor):
            return sampled_loss(model, x, log_beta, noise).loss

    step_loss = compiled_step(objective, config.compile, device, model.parameters())

    # the running loss stays on the device; it is read (a synchronisation) only every
    # READ_INTERVAL seconds and at the last step, and checked for divergence then
    window = torch.zeros(_WINDOW, dtype=torch.float64, device=device)
    last_read, loss_read = -math.inf, math.nan
    chunk: dict[str, torch.Tensor] = {}
    completed = 0
    interrupted = False
    guard = _Guard(model)
    start = time.perf_counter()
    try:
        for step in range(config.steps):
            offset = step % draws.chunk_steps
            if offset == 0:
                chunk = draws.next(min(draws.chunk_steps, config.steps - step), device)
            optimizer.zero_grad(set_to_none=True)
            if config.objective == "exact":
                loss = step_loss(chunk["log_beta"][offset])
            else:
                x = data[chunk["index"][offset]]
                loss = step_loss(x, chunk["log_beta"][offset], chunk["noise"][offset])
            optimizer.step()
            schedule.step()
            window[step % _WINDOW] = loss
            completed = step + 1
            now = time.perf_counter()
            if completed == config.steps or now - last_read >= READ_INTERVAL:
                loss_read = _window_mean(window, completed)
                last_read = now
                if not math.isfinite(loss_read):
                    break
                guard.keep(completed, loss_read)
            if progress is not None:
                progress(completed, config.steps, loss_read, now - start)
    except KeyboardInterrupt:
        interrupted = True
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    final_loss = _window_mean(window, completed) if completed else float("nan")
    if completed and not math.isfinite(final_loss):
        first = guard.restore(window, completed)
        return TrainResult(guard.step, seconds, interrupted, guard.loss, diverged_at=first)
    return TrainResult(completed, seconds, interrupted, final_loss)


#: Steps in the running mean of the training loss.
_WINDOW = 50


class _Guard:
    """Weights whose loss was seen finite, to go back to if training diverges.

    The loss of step s is that of the weights before update s, so the weights kept at one
    check are known good only at the next check: the guard holds them as ``pending`` until
    then, and goes back to the last ``verified`` ones (at first, the initial weights).
    ``extra`` are tensors trained beside the model's own (the recipe's whitened encoder).
    """

    def __init__(self, model: torch.nn.Module, extra: dict | None = None):
        self.model, self.extra = model, dict(extra or {})
        self.pending = (0, math.nan, self.snapshot())
        self.step, self.loss, self.state = self.pending

    def snapshot(self) -> dict:
        """A copy of every weight: the model's state and the extra tensors."""
        state = {f"model.{k}": v.detach().clone() for k, v in self.model.state_dict().items()}
        state.update({f"extra.{k}": v.detach().clone() for k, v in self.extra.items()})
        return state

    def load(self, snapshot: dict) -> None:
        """Put the weights of a :meth:`snapshot` back."""
        self.model.load_state_dict(
            {k[len("model.") :]: v for k, v in snapshot.items() if k.startswith("model.")}
        )
        with torch.no_grad():
            for name, tensor in self.extra.items():
                tensor.copy_(snapshot[f"extra.{name}"])

    def keep(self, step: int, loss: float) -> None:
        """A check after ``step`` saw a finite running loss ``loss``."""
        self.step, _, self.state = self.pending
        self.loss = loss
        self.pending = (step, loss, self.snapshot())

    def restore_state(self) -> None:
        """Put the verified weights back."""
        self.load(self.state)

    def restore(self, window: torch.Tensor, completed: int) -> int:
        """Put the verified weights back; return the first step with a non-finite loss.

        The step is read from the ring of the last losses when it still holds it, else it is
        the last step run.
        """
        self.restore_state()
        losses = window.detach().cpu().numpy()
        for step in range(max(self.step, completed - _WINDOW), completed):
            if not np.isfinite(losses[step % _WINDOW]):
                return step + 1
        return completed


def _window_mean(window: torch.Tensor, completed: int) -> float:
    """Mean of the last ``min(completed, 50)`` losses in the ring ``window`` (a device read)."""
    return float(window[: min(completed, _WINDOW)].mean().item())


class _Draws:
    """The loop's random draws, made on the CPU in chunks of steps and moved in one copy.

    The draws of each step come from one ``torch.Generator`` in the order of a step-by-step
    loop (a new permutation when the epoch ends, then β, then the noise), so chunking does
    not change a single number: a run is the same for every chunk size.
    """

    def __init__(self, config: TrainConfig, n: int, k: int, dtype, beta: float | None):
        self.config, self.n, self.k, self.dtype, self.beta = config, n, k, dtype, beta
        self.generator = torch.Generator().manual_seed(config.seed)
        self.log_lo, self.log_hi = (math.log(v) for v in config.beta_range)
        # drawn for both objectives: the exact one's β come after it in the stream
        self.order = torch.randperm(n, generator=self.generator)
        self.cursor = 0
        if config.objective == "exact":
            self.chunk_steps = _CHUNK_STEPS
        else:
            values = min(config.batch_size, n) * k
            self.chunk_steps = max(1, min(_CHUNK_STEPS, _CHUNK_VALUES // values))

    def _log_beta(self, count: int) -> torch.Tensor:
        if self.beta is not None:
            return torch.full((count,), math.log(self.beta), dtype=self.dtype)
        if self.config.beta_sampling == "batch":
            count = 1
        u = torch.rand(count, generator=self.generator, dtype=torch.float64)
        return (self.log_lo + (self.log_hi - self.log_lo) * u).to(self.dtype)

    def _step(self) -> dict[str, torch.Tensor]:
        batch_size = self.config.batch_size
        if self.config.objective == "exact":
            return {"log_beta": self._log_beta(1 if self.beta is not None else batch_size)}
        if self.cursor + batch_size > self.n:
            self.order = torch.randperm(self.n, generator=self.generator)
            self.cursor = 0
        index = self.order[self.cursor : self.cursor + batch_size]
        self.cursor += batch_size
        size = index.shape[0]
        log_beta = self._log_beta(size).expand(size)
        noise = torch.randn(size, self.k, generator=self.generator, dtype=torch.float64)
        return {"index": index, "log_beta": log_beta, "noise": noise.to(self.dtype)}

    def next(self, steps: int, device: torch.device) -> dict[str, torch.Tensor]:
        """The draws of the next ``steps`` steps, each stacked on a leading axis, on ``device``."""
        rows = [self._step() for _ in range(steps)]
        chunk = {key: torch.stack([row[key] for row in rows]) for key in rows[0]}
        if device.type == "cuda":  # pinned memory: the copy overlaps the queued steps
            return {
                key: value.pin_memory().to(device, non_blocking=True)
                for key, value in chunk.items()
            }
        return chunk
