r"""Any linear-Gaussian VAE as its maps per β, and the losses and training loop of maps.

A linear-Gaussian VAE conditioned on η = log β is, at each β, five maps (shapes with a
leading batch B of β):

.. math::

    q(z|x) = N(E x + o,\ \operatorname{diag}(c)), \qquad p(x|z) = N(D z + b,\ I),

``E`` (B, k, d), ``c`` (B, k) > 0, ``D`` (B, d, k), ``o`` the offset (B, k) and ``b`` the
bias (B, d) (:class:`Maps`; the encoder is *uncentred*: the offset is the posterior mean at
x = 0). Every family of :mod:`linvae.methods` gives its maps; the exact loss of maps
(:func:`exact_maps_loss`, eqs. 14–18, through the terms of
:func:`linvae.mrvae.objectives.exact_loss`) and the sampled ELBO of maps
(:func:`sampled_maps_loss`, eqs. 13–15) are then one function each for all of them, and
:func:`train_loop` is the one Adam loop (warm-up, cosine decay) that trains any of them.

:class:`LinearFamily` is the base of the families trained here: its encoder and decoder
are held in the data's own units, ``E₀ = W P`` with ``P = chol(S + lo·I)⁻¹`` and
``D₀ = scale·V``, ``b = m + scale·b'`` (linvae's recipe's units,
:func:`linvae.mrvae.recipe.data_factors`), so every trained tensor is free of the data's
scale.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from linvae._checks import as_choice, as_int, as_positive

from .model import LinearMRVAE
from .objectives import LOG_2PI, LossTerms, _terms
from .recipe import data_factors
from .train import READ_INTERVAL, TrainResult, learning_rate_factor
from .train import _Guard as Guard

OBJECTIVES = ("exact", "sampled")


class Maps(NamedTuple):
    """The linear maps of a linear-Gaussian VAE at each of B values of β.

    ``q(z|x) = N(E x + offset, diag(c))`` (uncentred), ``p(x|z) = N(D z + bias, I)``.
    """

    E: torch.Tensor  # (B, k, d)
    c: torch.Tensor  # (B, k), > 0
    D: torch.Tensor  # (B, d, k)
    offset: torch.Tensor  # (B, k)
    bias: torch.Tensor  # (B, d)


def check_maps(maps, batch: int | None = None, d: int | None = None) -> Maps:
    """``maps`` as :class:`Maps` of shapes that fit together (a tuple of five is accepted).

    Raises
    ------
    TypeError
        If ``maps`` is not five tensors.
    ValueError
        On shapes that do not fit, a batch other than ``batch`` or a data dimension other
        than ``d``.
    """
    if not isinstance(maps, tuple) or len(maps) != 5:
        raise TypeError(
            "maps must be (E (B, k, d), c (B, k), D (B, d, k), offset (B, k), bias (B, d)), "
            f"got {type(maps).__name__}"
        )
    if not all(isinstance(t, torch.Tensor) for t in maps):
        raise TypeError("maps must be five torch tensors")
    E, c, D, offset, bias = maps
    if E.ndim != 3:
        raise ValueError(f"maps.E must have shape (B, k, d), got {tuple(E.shape)}")
    B, k, dim = E.shape
    expected = {"c": (B, k), "D": (B, dim, k), "offset": (B, k), "bias": (B, dim)}
    for name, tensor in zip(("c", "D", "offset", "bias"), (c, D, offset, bias), strict=True):
        if tuple(tensor.shape) != expected[name]:
            raise ValueError(
                f"maps.{name} must have shape {expected[name]} to fit maps.E of shape "
                f"{tuple(E.shape)}, got {tuple(tensor.shape)}"
            )
    if batch is not None and batch != B:
        raise ValueError(f"maps must hold {batch} values of β (one per log_beta), got {B}")
    if d is not None and dim != d:
        raise ValueError(f"maps have data dimension {dim} but the data have d = {d}")
    return Maps(E, c, D, offset, bias)


def maps_of_model(model: LinearMRVAE, log_beta: torch.Tensor) -> Maps:
    """The maps of a :class:`LinearMRVAE` (any gates) at η of shape (B,).

    ``model.matrices`` centres the encoder at ``input_mean``; the offset here is uncentred.
    """
    E, c, D, t, bias = model.matrices(log_beta)
    return Maps(E, c, D, t - E @ model.input_mean, bias)


def exact_maps_loss(
    maps: Maps, log_beta: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor
) -> LossTerms:
    """The exact expected loss of maps at each β, from the data's moments (eqs. 14–18).

    The terms are :func:`linvae.mrvae.objectives.exact_loss`'s with the maps as given: the
    posterior mean at x = m is ``t = E m + offset``, the decoder's gap ``‖m − b − D t‖²``.

    Parameters
    ----------
    maps : Maps
        At each of B values of β.
    log_beta : Tensor of shape (B,)
    mean : Tensor of shape (d,)
    cov : Tensor of shape (d, d)
        The data's ML covariance S.

    Returns
    -------
    LossTerms
        ``rate``, ``distortion``, ``squared_error`` of shape (B,) and ``loss``, their
        β-weighted mean.
    """
    E, c, D, offset, bias = maps
    ES = E @ cov  # (B, k, d)
    ESEt = ES @ E.transpose(-1, -2)  # (B, k, k)
    t = offset + E @ mean  # (B, k): the posterior mean at x = m
    DtD = D.transpose(-1, -2) @ D  # (B, k, k)
    ESD = ES @ D  # (B, k, k)
    gap = ((mean - bias - (D @ t.unsqueeze(-1)).squeeze(-1)) ** 2).sum(-1)
    return _terms(log_beta, torch.log(c), ESEt, t, DtD, ESD, gap, cov)


def sampled_maps_loss(
    maps: Maps, log_beta: torch.Tensor, x: torch.Tensor, noise: torch.Tensor
) -> LossTerms:
    """The reparameterised negative ELBO of maps on mini-batches, one per β (eqs. 13–15).

    Parameters
    ----------
    maps : Maps
        At each of B values of β.
    log_beta : Tensor of shape (B,)
    x : Tensor of shape (B, b, d)
        ``b`` examples for each β (b = 1: one β per example).
    noise : Tensor of shape (B, b, k)
        Standard normal: z = μ + √c ⊙ noise.

    Returns
    -------
    LossTerms
        ``rate`` (KL in closed form, eq. 14) and ``distortion`` at the sampled z, of shape
        (B·b,), and ``loss``, the mean of ``distortion + β · rate`` over all B·b examples.
    """
    E, c, D, offset, bias = maps
    posterior_mean = x @ E.transpose(-1, -2) + offset.unsqueeze(-2)  # (B, b, k)
    z = posterior_mean + torch.sqrt(c).unsqueeze(-2) * noise
    reconstruction = z @ D.transpose(-1, -2) + bias.unsqueeze(-2)  # (B, b, d)
    kl = -torch.log(c).unsqueeze(-2) + posterior_mean**2 + c.unsqueeze(-2) - 1.0
    rate = 0.5 * kl.sum(-1).reshape(-1)  # eq. 14
    squared_error = ((x - reconstruction) ** 2).sum(-1).reshape(-1)
    distortion = 0.5 * x.shape[-1] * LOG_2PI + 0.5 * squared_error  # eq. 15
    weight = torch.exp(log_beta).unsqueeze(-1).expand(x.shape[:-1]).reshape(-1)
    loss = torch.mean(distortion + weight * rate)
    return LossTerms(loss, rate, distortion, squared_error)


class LinearFamily(nn.Module):
    """Base of a linear-Gaussian family conditioned on log β, held in the data's units.

    Subclasses hold ``W`` (…, k, d), ``V`` (…, d, k) and ``b'`` (…, d) in scale-free units
    and implement :meth:`maps`; :meth:`encoder_base` (``W P``), :meth:`decoder_base`
    (``scale·V``) and :meth:`decoder_bias` (``m + scale·b'``) put them in the data's. The
    buffers ``input_mean`` (d,), ``factor`` P (d, d) and ``scale`` () are set by
    :meth:`prepare` from the training data's moments (identity and 1 before).
    """

    def __init__(self, d: int, k: int, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.d = as_int(d, "d", minimum=1)
        self.k = as_int(k, "k", minimum=1)
        self.register_buffer("input_mean", torch.zeros(self.d, dtype=dtype))
        self.register_buffer("factor", torch.eye(self.d, dtype=dtype))
        self.register_buffer("scale", torch.ones((), dtype=dtype))

    def prepare(self, mean: torch.Tensor, cov: torch.Tensor, ridge: float, whiten=True) -> None:
        """Set the data's units from its mean (d,) and covariance (d, d); ridge: the range's
        bottom (:func:`linvae.mrvae.recipe.data_factors`)."""
        factors = data_factors(cov, ridge, whiten=whiten)
        with torch.no_grad():
            self.input_mean.copy_(mean)
            self.factor.copy_(factors.P)
            self.scale.fill_(factors.scale)

    def encoder_base(self, W: torch.Tensor) -> torch.Tensor:
        """``W P``: scale-free encoder weights (…, k, d) in the data's units."""
        return W @ self.factor

    def decoder_base(self, V: torch.Tensor) -> torch.Tensor:
        """``scale·V``: scale-free decoder weights (…, d, k) in the data's units."""
        return self.scale * V

    def decoder_bias(self, b: torch.Tensor) -> torch.Tensor:
        """``m + scale·b'`` (…, d)."""
        return self.input_mean + self.scale * b

    def maps(self, log_beta: torch.Tensor) -> Maps:  # pragma: no cover - abstract
        raise NotImplementedError


def interpolation_weights(grid: torch.Tensor, log_beta: torch.Tensor):
    """Neighbours and weight of each η (B,) on an increasing grid (L,) of η, L ≥ 2.

    Returns ``(lower, upper, t)``: indices (B,) of the two grid points around η and
    ``t = (η − η_lower)/(η_upper − η_lower)`` clamped to [0, 1] (constant beyond the ends),
    so that a value interpolated linearly in η is ``(1 − t)·v[lower] + t·v[upper]``.
    """
    upper = torch.clamp(torch.searchsorted(grid, log_beta.contiguous()), 1, grid.shape[0] - 1)
    lower = upper - 1
    t = ((log_beta - grid[lower]) / (grid[upper] - grid[lower])).clamp(0.0, 1.0)
    return lower, upper, t


def interpolate(values: torch.Tensor, lower, upper, t) -> torch.Tensor:
    """``(1 − t)·values[lower] + t·values[upper]`` for values (L, …): shape (B, …)."""
    w = t.reshape(-1, *([1] * (values.ndim - 1)))
    return (1.0 - w) * values[lower] + w * values[upper]


def initial_weights(shape, generator: torch.Generator, dtype=torch.float64):
    """Encoder ``W`` of variance 1/fan-in and decoder ``V`` with unit columns, for
    ``shape = (…, k, d)``: ``(W (…, k, d), V (…, d, k))``, as :class:`LinearMRVAE` starts."""
    *lead, k, d = shape
    W = torch.randn(*lead, k, d, generator=generator, dtype=torch.float64) / math.sqrt(d)
    V = torch.randn(*lead, d, k, generator=generator, dtype=torch.float64)
    V = V / V.norm(dim=-2, keepdim=True)
    return W.to(dtype), V.to(dtype)


def log_uniform(log_lo: float, log_hi: float) -> Callable[[int, torch.Generator], torch.Tensor]:
    """η ~ Uniform(log lo, log hi): a draw of ``count`` η (YOTO's and the paper's β)."""

    def draw(count: int, generator: torch.Generator) -> torch.Tensor:
        u = torch.rand(count, generator=generator, dtype=torch.float64)
        return log_lo + (log_hi - log_lo) * u

    return draw


def exact_step(family, mean, cov, draw, count: int) -> Callable[[torch.Generator], torch.Tensor]:
    """A step's loss: :func:`exact_maps_loss` of ``family.maps`` at ``count`` drawn η."""

    def loss(generator: torch.Generator) -> torch.Tensor:
        log_beta = draw(count, generator).to(mean.dtype)
        return exact_maps_loss(family.maps(log_beta), log_beta, mean, cov).loss

    return loss


def sampled_step(family, data, draw, batch_size: int) -> Callable[[torch.Generator], torch.Tensor]:
    """A step's loss: :func:`sampled_maps_loss` of a mini-batch drawn with replacement,
    each example with its own drawn η."""
    n = data.shape[0]

    def loss(generator: torch.Generator) -> torch.Tensor:
        index = torch.randint(n, (batch_size,), generator=generator)
        log_beta = draw(batch_size, generator).to(data.dtype)
        noise = torch.randn(batch_size, 1, family.k, generator=generator, dtype=torch.float64)
        x = data[index].unsqueeze(1)  # (batch, 1, d)
        return sampled_maps_loss(family.maps(log_beta), log_beta, x, noise.to(data.dtype)).loss

    return loss


def train_loop(
    module: nn.Module,
    step_loss: Callable[[torch.Generator], torch.Tensor],
    steps: int,
    lr: float,
    *,
    warmup_fraction: float = 0.05,
    seed: int = 0,
    progress=None,
    after_step: Callable[[], None] | None = None,
) -> TrainResult:
    """Adam on ``step_loss(generator)`` for ``steps`` steps, linear warm-up then cosine decay.

    The loop of :func:`linvae.mrvae.train.train` for any module: every draw comes from one
    private generator seeded by ``seed``; Ctrl-C stops it (``interrupted``); a loss no
    longer finite puts back the last weights seen finite (``diverged_at``).
    ``after_step`` runs after each update (a projection).
    """
    steps = as_int(steps, "steps", minimum=1)
    lr = as_positive(lr, "lr")
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    warmup = max(1, round(warmup_fraction * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, steps, warmup)
    )
    generator = torch.Generator().manual_seed(int(seed))
    guard = Guard(module)
    last_read, loss_read = -math.inf, math.nan

    def healthy(done: int, loss: torch.Tensor, now: float) -> bool:
        """Read the loss (a synchronisation) every READ_INTERVAL s and at the end; False
        when it is no longer finite (the guard's weights are then put back)."""
        nonlocal last_read, loss_read
        if done < steps and now - last_read < READ_INTERVAL:
            return True
        loss_read, last_read = float(loss.detach()), now
        if math.isfinite(loss_read):
            guard.keep(done, loss_read)
            return True
        guard.restore_state()
        return False

    done, diverged, interrupted = 0, None, False
    start = time.perf_counter()
    try:
        while done < steps:
            optimizer.zero_grad(set_to_none=True)
            loss = step_loss(generator)
            loss.backward()
            optimizer.step()
            schedule.step()
            if after_step is not None:
                after_step()
            done += 1
            now = time.perf_counter()
            if not healthy(done, loss, now):
                diverged = done
                break
            if progress is not None:
                progress(done, steps, loss_read, now - start)
    except KeyboardInterrupt:
        interrupted = True
    seconds = time.perf_counter() - start
    if diverged is not None:
        return TrainResult(guard.step, seconds, False, guard.loss, diverged)
    return TrainResult(done, seconds, interrupted, loss_read)


def lbfgs(module: nn.Module, loss: Callable[[], torch.Tensor], iterations: int) -> int:
    """L-BFGS (strong Wolfe) on ``loss()`` over the module's trainable parameters, in place:
    the recipe's polish (:mod:`linvae.mrvae.recipe`), which puts back the weights it started
    from when a line search leaves the loss or a weight non-finite. Returns the loss
    evaluations."""
    from .recipe import _polish, with_backward

    iterations = as_int(iterations, "iterations", minimum=0)
    params = [p for p in module.parameters() if p.requires_grad]
    if iterations == 0 or not params:
        return 0
    evaluations, _, _ = _polish(iterations, params, with_backward(loss), Guard(module))
    return evaluations


def fit_to_optimum(
    module: nn.Module,
    maps: Callable[[torch.Tensor], Maps],
    mean: torch.Tensor,
    cov: torch.Tensor,
    betas,
    *,
    iterations: int = 300,
) -> int:
    """Minimise the mean exact loss over a β grid by :func:`lbfgs`, in place: a floor fit.

    The mean loss over ``betas`` minus the optimum's mean is the mean excess, so this fits
    the family to the analytic optimum on the grid (as :mod:`linvae.mrvae.floor` does for
    the MR-VAE). Returns the loss evaluations.
    """
    log_beta = torch.as_tensor(np.log(np.asarray(betas, dtype=np.float64)), dtype=mean.dtype)
    return lbfgs(
        module, lambda: exact_maps_loss(maps(log_beta), log_beta, mean, cov).loss, iterations
    )


def check_objective(objective) -> str:
    """``"exact"`` or ``"sampled"``."""
    return as_choice(objective, "objective", OBJECTIVES)
