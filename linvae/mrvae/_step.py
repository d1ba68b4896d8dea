r"""linvae's recipe step in few operations: the exact loss of a :class:`LatentMRVAE` and its
gradient in closed form, fused Adam, β drawn in chunks; and the counter of its operations.

The recipe's step through autograd issues 371 top-level aten operations (the loss's
forward pass at 16 β, its backward pass, a per-tensor Adam, the draws, the projection):
on a GPU each is a kernel launch and they, not the arithmetic, set a step's cost
(docs/results.md, "GPU figures"). Here the step is:

- **the draws**: ``chunk`` steps of stratified β at once (the same stream and values as
  :func:`linvae.mrvae.recipe.stratified` draws one step at a time), one row per step;
- **the loss and its gradient** in closed form (:func:`latent_objective`): the model's
  E(β) = diag(σ) E₁, D(β) = D₂ diag(τ) and c(β) (:class:`LatentMRVAE`) make every product
  with the covariance independent of β, so the step forms three (k, d) × (d, d) products
  (autograd's step six) and (B, k) or (k, k) arithmetic, and no autograd graph;
- **Adam** fused (``torch.optim.Adam(fused=True)``: two operations for all the tensors).

:func:`top_level_ops` counts the operations of any call with ``torch.profiler``. ``compile``
compiles :func:`latent_objective` with ``torch.compile`` (on CUDA, ``"graph"`` replays it
as one CUDA graph), which leaves the matrix products as its only aten operations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from .model import LatentMRVAE

#: How the loss at each β is weighted (:class:`linvae.mrvae.recipe.RecipeConfig`).
WEIGHTS = ("inverse", "flat", "both")


class Grads(NamedTuple):
    """The gradient of :func:`latent_objective`, one tensor per argument it trains.

    Attributes
    ----------
    W : Tensor of shape (k, d)
    V : Tensor of shape (d, k)
    b : Tensor of shape (d,)
        Of the decoder bias's free part ``b'``.
    log_variance : Tensor of shape (k,)
        Of ρ.
    thresholds : Tensor of shape (3, k)
        Of the gates' biases (encoder, covariance, decoder), as stacked.
    """

    W: torch.Tensor
    V: torch.Tensor
    b: torch.Tensor
    log_variance: torch.Tensor
    thresholds: torch.Tensor


def _beta_weights(log_beta: torch.Tensor, weight: str, scale: float):
    """(ω_R, ω_D), each of shape (B, 1) or a float: the objective is
    Σ_b ω_R,b R_b + ω_D,b ·½E‖x − x̂‖²_b (see :func:`latent_objective`)."""
    if weight not in WEIGHTS:
        raise ValueError(f"weight must be one of {', '.join(WEIGHTS)}, got {weight!r}")
    count = log_beta.shape[0]
    unit = 1.0 / (count * scale**2)
    if weight == "flat":  # mean(½ err + β R) / scale²
        return torch.exp(log_beta) * unit, unit
    if weight == "inverse":  # mean(R + ½ err / β)
        return 1.0 / count, torch.exp(-log_beta) / count
    beta = torch.exp(log_beta)
    return beta * unit + 1.0 / count, unit + (1.0 / count) / beta


def latent_objective(
    log_beta: torch.Tensor,
    W: torch.Tensor,
    V: torch.Tensor,
    b: torch.Tensor,
    log_variance: torch.Tensor,
    thresholds: torch.Tensor,
    slopes: torch.Tensor,
    P: torch.Tensor,
    S: torch.Tensor,
    SPt: torch.Tensor,
    L: torch.Tensor | None,
    scale: float,
    weight: str = "flat",
) -> tuple[torch.Tensor, Grads]:
    r"""The recipe's objective of a :class:`LatentMRVAE` at B values of β, and its gradient.

    The model at η = log β: ``E = diag(σ) E₁``, ``D = D₂ diag(τ)``, ``log c = ρ + min(x_C, 0)``,
    ``σ = σ_D(x_E)``, ``τ = σ_D(x_D)``, ``x_g = w_g η + a_g`` (slopes ``w``, thresholds
    ``a``), trained as ``E₁ = W P``, ``D₂ = L V`` (or ``scale·V``), ``b = m + scale·b'``,
    with the encoder centred at the data mean m (latent offset 0). With ``K = E₁SE₁ᵀ``,
    ``N = E₁SD₂``, ``G = D₂ᵀD₂`` (k, k) and their diagonals, eqs. 14–18 are, per β,

    .. math::

        R &= \tfrac12\textstyle\sum_j (c_j - 1 - \log c_j + σ_j^2 K_{jj}), \\
        E\lVert x - \hat x\rVert^2 &= \operatorname{tr} S - 2\,a^\top \operatorname{diag} N
            + a^\top (K \odot G)\, a + (c\,τ^2)^\top \operatorname{diag} G
            + \mathrm{scale}^2 \lVert b' \rVert^2, \qquad a = σ τ,

    and the objective is ``Σ_b ω_R R + ω_D · ½E‖x − x̂‖²`` (``weight``: "flat", the mean of
    ``½E‖x − x̂‖² + βR`` over ``scale²``; "inverse", the mean of ``R + ½E‖x − x̂‖²/β``;
    "both", their sum), exactly :func:`linvae.mrvae.objectives.exact_loss` as the recipe
    weighs it. Its gradient, with ``Ā = ½ Σ_b ω_D a aᵀ``:
    ``∂K = diag(½Σ ω_R σ²) + Ā ⊙ G``, ``∂G = diag(½Σ ω_D c τ²) + Ā ⊙ K``,
    ``∂N = diag(−Σ ω_D a)``; ``∂W = (2∂K E₁ + ∂N D₂ᵀ) S Pᵀ``,
    ``∂D₂ = (E₁S)ᵀ ∂N + 2 D₂ ∂G``, ``∂V = Lᵀ ∂D₂``; per β, with ``r = (K ⊙ G) a − diag N``,
    ``∂σ = ω_R σ K_jj + ω_D τ r``, ``∂τ = ω_D (σ r + c τ G_jj)``,
    ``∂log c = ½ω_R (c − 1) + ½ω_D c τ² G_jj``, and through the gates' derivatives
    (σ_D's capped as :func:`linvae.mrvae.gates.sqrt_gate`'s; the hinge's 1 where x ≤ 0).

    Parameters
    ----------
    log_beta : Tensor of shape (B,)
    W : Tensor of shape (k, d)
    V : Tensor of shape (d, k)
    b : Tensor of shape (d,)
        The decoder bias's free part ``b'``.
    log_variance : Tensor of shape (k,)
        ρ.
    thresholds, slopes : Tensor of shape (3, k)
        The gates' biases and (frozen) weights: encoder, covariance, decoder.
    P : Tensor of shape (d, d)
        ``E₁ = W P``.
    S : Tensor of shape (d, d)
        The data covariance.
    SPt : Tensor of shape (d, d)
        ``S Pᵀ``.
    L : Tensor of shape (d, d) or None
        ``D₂ = L V``; None: ``D₂ = scale·V``.
    scale : float
        The data's global scale (``b = m + scale·b'``).
    weight : {"flat", "inverse", "both"}

    Returns
    -------
    (Tensor, Grads)
        The objective (a scalar) and its gradient.
    """
    grads, parts = objective_parts(
        log_beta, W, V, b, log_variance, thresholds, slopes, P, S, SPt, L, scale, weight
    )
    return objective_value(parts), grads


class Parts(NamedTuple):
    """What :func:`objective_value` forms the objective from (:func:`objective_parts`):
    each term of eqs. 14–18 summed over β, as the gradient has them."""

    gK_diag: torch.Tensor  # ½ Σ_b ω_R σ², (k,)
    K_diag: torch.Tensor
    A_bar: torch.Tensor  # ½ Σ_b ω_D a aᵀ, (k, k)
    M: torch.Tensor  # K ⊙ G
    gN: torch.Tensor  # −Σ_b ω_D a
    N_diag: torch.Tensor
    gG_diag: torch.Tensor  # ½ Σ_b ω_D c τ²
    G_diag: torch.Tensor
    w_rate: torch.Tensor | float
    c: torch.Tensor  # (B, k)
    log_c: torch.Tensor
    err_total: torch.Tensor | float  # Σ_b ω_D
    S: torch.Tensor  # (d, d)
    grad_b: torch.Tensor  # Σ_b ω_D scale² b'
    b_factor: torch.Tensor | float  # Σ_b ω_D scale², so that b' = grad_b / b_factor


def objective_value(parts: Parts) -> torch.Tensor:
    """The objective of :func:`latent_objective` from its :class:`Parts` (a scalar)."""
    p = parts
    rate_rest = 0.5 * (p.w_rate * (p.c - 1.0 - p.log_c)).sum()  # Σ_b ω_R ½Σ_j (c − 1 − log c)
    gap = 0.5 * torch.dot(p.grad_b, p.grad_b) / p.b_factor  # Σ_b ω_D ½‖m − b‖²
    return (
        torch.dot(p.gK_diag, p.K_diag)
        + (p.A_bar * p.M).sum()
        + torch.dot(p.gN, p.N_diag)
        + torch.dot(p.gG_diag, p.G_diag)
        + 0.5 * p.err_total * torch.trace(p.S)
        + rate_rest
        + gap
    )


def _plus(base, t1, t2, w):
    """``base + t1·t2·w``, ``w`` a float or a (B, 1) tensor."""
    if isinstance(w, torch.Tensor):
        return torch.addcmul(base, t1 * t2, w)
    return torch.addcmul(base, t1, t2, value=w)


def objective_parts(
    log_beta, W, V, b, log_variance, thresholds, slopes, P, S, SPt, L, scale, weight="flat"
) -> tuple[Grads, Parts]:
    """The gradient of :func:`latent_objective` (same arguments) and the :class:`Parts` of
    its value: the objective is left to :func:`objective_value`, to form only when read."""
    count = log_beta.shape[0]
    w_rate, w_err = _beta_weights(log_beta.reshape(count, 1), weight, scale)  # (B, 1) or float
    # the three gates at once, x of shape (B, 3, k): encoder, covariance, decoder
    x = torch.addcmul(thresholds, log_beta.reshape(count, 1, 1), slopes)
    gate = torch.sqrt(torch.clamp(torch.expm1(x).neg_(), min=0.0))  # σ_D(x), rows 0 and 2
    sigma, _, tau = gate.unbind(1)
    x_c = x[:, 1]
    log_c = log_variance + torch.clamp(x_c, max=0.0)  # log(e^ρ min(1, eˣ)), (B, k)
    c = torch.exp(log_c)

    E1 = torch.mm(W, P)  # (k, d)
    D2 = V * scale if L is None else torch.mm(L, V)  # (d, k)
    D2t = D2.T
    E1S = torch.mm(E1, S)  # (k, d)
    K = torch.mm(E1S, E1.T)  # (k, k)
    N = torch.mm(E1S, D2)
    G = torch.mm(D2t, D2)
    dK, dN, dG = K.diagonal(), N.diagonal(), G.diagonal()
    M = K * G

    a = sigma * tau  # (B, k)
    r = torch.mm(a, M) - dN  # ∂(½aᵀMa − aᵀdiag N)/∂a
    ct = c * tau
    ct2 = ct * tau
    half_rate, half_err = 0.5 * w_rate, 0.5 * w_err
    wa = a * half_err
    A_bar = torch.mm(wa.T, a)  # (k, k)
    gN = wa.sum(0).mul_(-2.0)  # ∂N = diag(gN)
    gK_diag = (sigma * sigma * half_rate).sum(0)
    gG_diag = (ct2 * half_err).sum(0)
    gK = A_bar * G
    gK.diagonal().add_(gK_diag)
    gG = A_bar * K
    gG.diagonal().add_(gG_diag)
    grad_W = torch.mm(torch.addmm(gN.unsqueeze(1) * D2t, gK, E1, alpha=2.0), SPt)
    # ∂D₂ = (E₁S)ᵀ∂N + 2D₂∂G; addmm's result is contiguous, as V: fused Adam needs it
    if L is None:
        grad_V = torch.addmm(E1S.T * gN, D2, gG, beta=scale, alpha=2.0 * scale)
    else:
        grad_V = torch.mm(L.T, torch.addmm(E1S.T * gN, D2, gG, alpha=2.0))
    err_total = w_err.sum() if isinstance(w_err, torch.Tensor) else w_err * count
    b_factor = scale**2 * err_total
    grad_b = b * b_factor

    ct_dG = ct * dG
    d_sigma = _plus(sigma * dK * w_rate, tau, r, w_err)
    d_tau = torch.addcmul(ct_dG, sigma, r) * w_err
    d_log_c = _plus((c - 1.0) * half_rate, ct_dG, tau, half_err)
    # σ_D'(x) = −eˣ / (2 max(σ_D, √ε)), 0 where the gate is shut (gates._SqrtGate); the
    # hinge's derivative 1 where x ≤ 0, as torch.clamp's
    floor = math.sqrt(torch.finfo(x.dtype).eps)
    slope = torch.where(gate > 0, torch.exp(x) / torch.clamp(gate, min=floor), 0.0)
    d_open = (torch.stack([d_sigma, d_tau], 1) * slope[:, ::2]).sum(0).mul_(-0.5)  # (2, k)
    d_cov = torch.where(x_c <= 0, d_log_c, 0.0).sum(0)
    d_thresholds = torch.stack([d_open[0], d_cov, d_open[1]])
    grads = Grads(grad_W, grad_V, grad_b, d_log_c.sum(0), d_thresholds)
    parts = Parts(gK_diag, dK, A_bar, M, gN, dN, gG_diag, dG, w_rate, c, log_c, err_total, S,
                  grad_b, b_factor)  # fmt: skip
    return grads, parts


def compiled_objective(mode: str, device: torch.device, *, backend: str = "inductor"):
    """:func:`latent_objective`, compiled as ``mode`` asks (the recipe's ``compile``).

    ``"none"``: None (:class:`FusedStep` runs eagerly). ``"compile"``: ``torch.compile``: one compiled region whose only aten
    operations are the matrix products. ``"graph"``: ``torch.compile(mode="reduce-overhead")``,
    replayed as CUDA graphs on a CUDA device; on any other device a :class:`RuntimeWarning`
    says so and None is returned (eager). A compiler that cannot run falls back to eager with a
    :class:`RuntimeWarning` (as :func:`linvae.mrvae._compiled.compiled_step`).
    """
    from ._compiled import _torch_deprecations_ignored, compiles, options_of, with_eager_fallback

    if not compiles(mode, device):
        return None
    with _torch_deprecations_ignored():
        compiled = torch.compile(
            latent_objective, backend=backend, dynamic=False, **options_of(mode)
        )
    return with_eager_fallback(compiled, latent_objective, mode)


class BetaDraws:
    """The recipe's log β per step, drawn ``chunk`` steps at a time on ``generator``'s device.

    Row s is ``log lo + (log hi − log lo) u^power``, u one per stratum of [0, 1], jittered
    (:func:`linvae.mrvae.recipe.stratified`): the same values, from the same stream, as
    drawing each step on its own. Each step then costs one indexing operation.

    Parameters
    ----------
    count : int
        β per step.
    log_range : (float, float)
        (log lo, log hi).
    power : float
    generator : torch.Generator
    dtype : torch.dtype
    device : torch.device
    chunk : int, default 256
    """

    def __init__(self, count, log_range, power, generator, dtype, device, chunk=256):
        self.count, self.log_range, self.power = count, log_range, power
        self.generator, self.dtype, self.device, self.chunk = generator, dtype, device, chunk
        self.rows, self.next = None, chunk

    def __call__(self) -> torch.Tensor:
        """The next step's log β, shape (count,)."""
        if self.next == self.chunk:
            jitter = torch.rand(
                self.chunk, self.count, generator=self.generator, dtype=torch.float64,
                device=self.generator.device,
            )  # fmt: skip
            u = torch.arange(self.count, dtype=torch.float64, device=jitter.device) + jitter
            u = u / self.count
            log_lo, log_hi = self.log_range
            rows = log_lo + (log_hi - log_lo) * u**self.power
            self.rows, self.next = rows.to(self.dtype).to(self.device), 0
        self.next += 1
        return self.rows[self.next - 1]


def fusable(model, fixed_beta: bool) -> bool:
    """Whether :func:`latent_objective` is ``model``'s recipe objective: a
    :class:`LatentMRVAE` trained over a range, its gates reading η itself."""
    return (
        isinstance(model, LatentMRVAE)
        and not fixed_beta
        and all(
            gate.gate_input == "log_beta"
            and float(gate.input_center) == 0.0
            and float(gate.input_scale) == 1.0
            for gate in model.gate_modules()
        )
    )


class FusedStep:
    """The loss and gradient of one step of the recipe's Adam, in closed form.

    ``step(log_beta)`` sets ``.grad`` of ``W``, ``V``, ``b`` and of the model's ρ and gate
    thresholds (summed into one tensor where the model's three gates share it,
    ``share_thresholds_from``), and returns the objective: eagerly a :class:`DeferredLoss`,
    formed when ``float()`` reads it (the recipe reads it every 0.2 s, not every step);
    compiled, a scalar tensor (not read back).
    The model must be centred at ``mean`` (``model.input_mean``) and trained with the
    encoder's rows unscaled (Adam's phase of :func:`linvae.mrvae.recipe.train_recipe`).

    Parameters
    ----------
    model : LatentMRVAE
    W, V, b : Tensor
        The recipe's trained tensors (k, d), (d, k), (d,): ``E₁ = W P``, ``D₂ = L V``,
        ``b = m + scale·b'``.
    P, S : Tensor of shape (d, d)
        The encoder's factor and the data covariance.
    L : Tensor of shape (d, d) or None
        ``D₂ = L V``; None: ``scale·V``.
    scale : float
    weight : {"flat", "inverse", "both"}
    objective : callable, optional
        A compiled :func:`latent_objective` (:func:`compiled_objective`); default: eager.
    """

    def __init__(self, model, W, V, b, P, S, L, scale, weight, objective=None):
        if not fusable(model, False):
            raise ValueError("model: the fused step takes a LatentMRVAE gated by η itself")
        self.model, self.W, self.V, self.b = model, W, V, b
        self.P, self.S, self.SPt, self.L = P, S, S @ P.T, L
        self.scale, self.weight = float(scale), weight
        self.slopes = torch.stack([g.weight.detach() for g in model.gate_modules()])
        self.objective = objective
        if objective is not None:  # constants: a CUDA graph reads them in place, uncopied
            for tensor in (self.P, self.S, self.SPt, self.slopes, L):
                if tensor is not None:
                    torch._dynamo.mark_static_address(tensor)

    def __call__(self, log_beta: torch.Tensor):
        gates = self.model.gate_modules()
        with torch.no_grad():
            thresholds = torch.stack([g.bias for g in gates])
            args = (
                log_beta, self.W, self.V, self.b, self.model.log_variance, thresholds,
                self.slopes, self.P, self.S, self.SPt, self.L, self.scale, self.weight,
            )  # fmt: skip
            if self.objective is None:
                grads, parts = objective_parts(*args)
                loss = DeferredLoss(parts)
            else:
                loss, grads = self.objective(*args)
        self.W.grad, self.V.grad, self.b.grad = grads.W, grads.V, grads.b
        self.model.log_variance.grad = grads.log_variance
        encoder, covariance, decoder = gates
        if encoder.bias is covariance.bias is decoder.bias:  # one threshold per latent
            encoder.bias.grad = grads.thresholds.sum(0)
        else:
            for gate, grad in zip(gates, grads.thresholds.unbind(0), strict=True):
                gate.bias.grad = grad
        return loss


class DeferredLoss:
    """A step's objective, formed from its :class:`Parts` when read: ``float(loss)`` or
    ``loss.value()`` (a scalar tensor). The parts are the step's own tensors, which the
    optimiser's update leaves as they were."""

    __slots__ = ("parts",)

    def __init__(self, parts: Parts):
        self.parts = parts

    def value(self) -> torch.Tensor:
        return objective_value(self.parts)

    def __float__(self) -> float:
        return float(self.value())


def top_level_ops(function: Callable[[], object]) -> int:
    """The top-level aten operations that ``function()`` issues, counted by ``torch.profiler``.

    An operation is top-level if it is an ``aten::`` operator none of whose enclosing
    profiler events is an ``aten::`` operator: what Python, the autograd engine or an
    optimiser asks of the dispatcher, each one kernel launch or more on a GPU. Views
    (``aten::t``, ``aten::unsqueeze``) count, as each costs a dispatch; the operators that
    a composite one calls do not. The backward pass's operators count (the autograd
    engine runs them under ``autograd::engine::evaluate_function``, not an aten operator),
    and so do the matrix products a compiled region calls; its generated kernels do not.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        function()
    return sum(1 for event in prof.events() if _top_level(event))


def _top_level(event) -> bool:
    if not event.name.startswith("aten::"):
        return False
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("aten::"):
            return False
        parent = parent.cpu_parent
    return True
