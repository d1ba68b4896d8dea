r"""linvae's recipe step in few operations: the exact loss of a :class:`LatentMRVAE` and its
gradient in closed form, fused Adam, β drawn in chunks; and the counter of its operations.

The recipe's step through autograd issues 367 top-level aten operations (the loss's
forward pass at 16 β, its backward pass, a per-tensor Adam, the draws, the projection):
on a GPU each is a kernel launch and they, not the arithmetic, set a step's cost
(docs/results.md, "GPU figures"). Here the step is:

- **the draws**: ``chunk`` steps of stratified β at once (the same stream and values as
  :func:`linvae.mrvae.recipe.stratified` draws one step at a time), a step a view of them;
- **the loss and its gradient** in closed form (:func:`latent_objective`): the model's
  E(β) = diag(σ) E₁, D(β) = D₂ diag(τ) and c(β) (:class:`LatentMRVAE`) make every product
  with the covariance independent of β, so the step forms three (k, d) × (d, d) products
  (autograd's step six) and (B, k) or (k, k) arithmetic, and no autograd graph. The (B, k)
  work is packed (:func:`objective_parts`): the gates, ρ and β as rows of one (B, 7, k)
  tensor, the gates' derivatives on pairs of rows, every sum over β one product with a
  constant matrix (:func:`step_constants`, formed once); K, G and N are one product of
  stacked (k, d) blocks, and so is each of the gradient's two (k, k)-by-(k, d) products;
  every result is written (``out=``) into a :class:`Workspace` formed once, whose views
  are formed once too;
- **Adam** fused (``torch.optim.Adam(fused=True)``: two operations for all the tensors);
- **the projection** (:meth:`LatentMRVAE.open_projection`): one operation for both gates,
  its bounds formed once.

Eagerly a step issues 36 top-level aten operations at any d (58 before the workspace, 91
before the packing; ``python -m benchmarks.step_ops --sizes 64,784 --steps 0 --modes
fused``; by name, tests/test_step_ops.py): 9 matrix products (7 ``mm``, 2 ``addmm``), the
stack of x's offsets, 22 elementwise operations, one ``diag_embed``, fused Adam's two and
the projection's one. With the products in float32 (``RecipeConfig.adam_precision``, the
default from d = 1024) four copies convert W, the front products, Y and the gradient of W:
40 (64 before).

:func:`top_level_ops` counts the operations of any call with ``torch.profiler``. ``compile``
compiles :func:`latent_objective` with ``torch.compile`` (on CUDA, ``"graph"`` replays it
as one CUDA graph), which leaves the matrix products as its only aten operations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from linvae._checks import as_choice

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
    shared : Tensor of shape (k,)
        ``thresholds.sum(0)``: of one threshold tensor the three gates share.
    """

    W: torch.Tensor
    V: torch.Tensor
    b: torch.Tensor
    log_variance: torch.Tensor
    thresholds: torch.Tensor
    shared: torch.Tensor


class Constants(NamedTuple):
    """What :func:`objective_parts` reads besides the trained tensors, fixed for a count of β
    (:func:`step_constants`): formed once, not every step."""

    slopes: torch.Tensor  # (7, k): the slopes of the rows of x (see _ROWS)
    bound: torch.Tensor  # (7, 1): x's rows are clamped at it
    zero: torch.Tensor  # (k,) zeros: the rows of x without a threshold
    reduce: torch.Tensor  # (9, 15B): the sums over β, weighted, as a matrix (see _SUMS)
    omega: float  # the weights' common factor Ω: ω_R = Ω ŵ_R, ω_D = Ω ŵ_D
    tiny: torch.Tensor  # 0-d, the dtype's smallest normal number


# The rows of x = rows + η·slopes, (B, 7, k), and what e = exp(min(x, bound)) makes of
# them: η (β, or ŵ_R written over it), decoder gate x_D, encoder gate x_E (e^x, for σ_D's
# derivative), covariance gate x_C (min(1, e^x); the hinge's derivative is read from x
# itself), η (β), ρ (e^ρ), 0 (1). In pairs, [h, β] ⊙ [e^ρ, 1] = [c, β].
_ROWS = 7
# The rows of F (B, 15, k), those summed over β (Workspace): t_D, t_E (−2/Ω ∂/∂x of the
# decoder's and encoder's gates), z = ŵ_D c τ² dG + ŵ_R c (2/Ω ∂/∂log c + ŵ_R), e's seven
# rows (its first ŵ_R), [x_C ≤ 0] z, [x_C ≤ 0] ŵ_R, ŵ_D a, ŵ_D c τ², ŵ_R σ².
_F = 15
# The rows of the sums over β (Constants.reduce, Workspace.sums): the thresholds' gradients
# (encoder, covariance, decoder), a shared threshold's, ρ's, then [2 gK_diag, gN, 2 gG_diag,
# gN], the diagonals of [[2∂K, ∂N], [2∂G, ∂N]] (gN twice: each block its own row)
_SUMS = 9


def step_constants(count: int, slopes: torch.Tensor, weight: str, scale: float) -> Constants:
    """The :class:`Constants` of :func:`objective_parts` at ``count`` β per step.

    ``slopes``: the gates' slopes in η, (3, k), stacked as the thresholds (encoder,
    covariance, decoder)."""
    if weight not in WEIGHTS:
        raise ValueError(f"weight must be one of {', '.join(WEIGHTS)}, got {weight!r}")
    dtype, device = slopes.dtype, slopes.device
    encoder, covariance, decoder = slopes
    one, zero = torch.ones_like(encoder), torch.zeros_like(encoder)
    rows = torch.stack([one, decoder, encoder, covariance, one, zero, zero])
    info = torch.finfo(dtype)
    bound = torch.tensor([math.inf, 0.0, 0.0, 0.0] + [math.inf] * (_ROWS - 4), dtype=dtype)
    bound = bound.to(device).reshape(_ROWS, 1)
    omega = 1.0 / (count * scale**2) if weight == "flat" else 1.0 / count
    reduce = torch.zeros(_SUMS, count, _F, dtype=dtype, device=device)  # F's rows: see _F
    reduce[0, :, 1] = -0.5 * omega  # the encoder's threshold: −½Ω Σ_b t_E
    reduce[1, :, 10] = 0.5 * omega  # the covariance's: ½Ω Σ_b [x_C ≤ 0] (z − ŵ_R)
    reduce[1, :, 11] = -0.5 * omega
    reduce[2, :, 0] = -0.5 * omega  # the decoder's
    reduce[3] = reduce[:3].sum(0)  # the three summed: a shared threshold's
    reduce[4, :, 2] = 0.5 * omega  # ρ: ½Ω Σ_b (z − ŵ_R)
    reduce[4, :, 3] = -0.5 * omega
    reduce[5, :, 14] = omega  # 2 gK_diag = Σ_b ω_R σ²
    reduce[6, :, 12] = reduce[8, :, 12] = -omega  # gN = −Σ_b ω_D a
    reduce[7, :, 13] = omega  # 2 gG_diag = Σ_b ω_D c τ²
    tiny = torch.tensor(info.tiny, dtype=dtype, device=device)
    return Constants(rows, bound, zero, reduce.reshape(_SUMS, count * _F), omega, tiny)


def threshold_rows(thresholds, log_variance, zero) -> list[torch.Tensor]:
    """The rows of x's offsets (see ``_ROWS``): 0, decoder, encoder and covariance
    thresholds, 0, ρ, 0; ``thresholds`` stacked as (encoder, covariance, decoder)."""
    encoder, covariance, decoder = thresholds
    return [zero, decoder, encoder, covariance, zero, log_variance, zero]


def _weights(log_beta: torch.Tensor, weight: str, scale: float):
    """(ŵ_R, ŵ_D) of the weights other than "flat" (there ŵ_R = β, ŵ_D = 1), each of
    shape (B, 1, 1) or a float: ω_R = Ω ŵ_R, ω_D = Ω ŵ_D with Ω = 1/B."""
    if weight == "inverse":  # mean(R + ½ err / β)
        return 1.0, torch.exp(-log_beta)
    beta = torch.exp(log_beta)  # "both": mean(R + ½ err/β) + mean(½ err + β R)/scale²
    return beta / scale**2 + 1.0, 1.0 / scale**2 + 1.0 / beta


class Products(NamedTuple):
    """The step's three (k, d) × (d, d) products, nearly all of its arithmetic at large d,
    each a function of its (k, d) left factor: ``encoder(W) = W P``, ``covariance(W) =
    W P S = E₁ S``, ``back(Y) = Y S Pᵀ``; each returns a (k, d) tensor of its argument's
    dtype, or writes it into ``out`` (a contiguous (k, d) tensor of that dtype) and returns
    ``out``. ``front(W, H, E1, E1S)``: the first two as a step takes them, ``W P`` into
    ``E1`` and ``W P S`` into ``E1S``, the first and last k rows of a contiguous (3k, d)
    ``H`` whose middle rows it may overwrite (in another dtype, the two converted in one
    copy). ``E₁ S`` is formed from ``W`` and ``P S``, not from ``E₁`` and ``S``: ``E₁ = W P``
    is large along directions of small variance (``P``'s scale there is ``1/√ridge``) and
    ``S`` along those of large variance, so ``E₁ @ S`` cancels their products to round-off
    of both (on a spectrum over 9 decades the objective then moved by 1 in 18 between
    points 1e-16 apart, and the polish stopped), where ``P S`` is bounded by ``√λ``."""

    encoder: Callable[..., torch.Tensor]
    covariance: Callable[..., torch.Tensor]
    back: Callable[..., torch.Tensor]
    front: Callable[..., None]


def covariance_factors(S, P, whitening=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``P S`` and ``S Pᵀ`` (d, d), contiguous, for the encoder's factor ``P``.

    ``whitening``: ``(L, ridge)`` with ``P = L⁻¹``, ``L Lᵀ = S + ridge·I`` (Cholesky), of
    which ``P S = Lᵀ − ridge·P`` exactly: formed so, its entries are those of ``L`` and
    ``P``, where the product ``P @ S`` sums terms up to ``|P| |S|`` (``1/√ridge`` times the
    largest variance) and keeps their round-off. None: the product ``S @ Pᵀ``."""
    if whitening is None:
        SPt = S @ P.T
    else:
        L, ridge = whitening
        SPt = L - ridge * P.T
    return SPt.T.contiguous(), SPt.contiguous()


#: Who forms the :class:`Products` (:func:`step_products`): "auto" is numpy on the CPU.
BLAS = ("auto", "torch", "numpy")


def step_products(P, PS, SPt, *, dtype=None, blas="auto") -> Products:
    """The :class:`Products` of the factor ``P`` (d, d, lower triangular), ``P S`` and
    ``S Pᵀ`` (:func:`covariance_factors`), formed in ``dtype`` (default: theirs) and
    returned in the left factor's dtype.

    ``blas``: "torch" (``torch.mm``), or "numpy" (CPU tensors; numpy's BLAS, and ``W P``
    as a triangular product, half the arithmetic), or "auto": numpy on the CPU, torch
    elsewhere. torch's CPU wheels multiply with MKL, numpy's with OpenBLAS. On the AMD
    EPYC that CI runs on, one thread, k = 64, d = 3025, the three products took 142–143 ms
    through torch and 90–128 ms through numpy in float64 (``W P`` as a triangular product
    20–29 ms of it), 48–68 ms in float32 (``python -m benchmarks.products``, two runs;
    docs/results.md, "The CPU's products"). Copies of the constants are taken only where
    ``dtype`` or the layout differs (``P`` column-major for numpy's triangular product).
    """
    dtype = P.dtype if dtype is None else dtype
    as_choice(blas, "blas", BLAS)
    on_cpu = P.device.type == "cpu"
    if blas == "numpy" and not on_cpu:
        raise ValueError(f"blas: 'numpy' multiplies CPU tensors, these are on {P.device}")
    if blas == "torch" or (blas == "auto" and not on_cpu):
        P_, PS_, SPt_ = (t.to(dtype) for t in (P, PS, SPt))
        if dtype == P.dtype:

            def front(W, H, E1, E1S):
                torch.mm(W, P_, out=E1)
                torch.mm(W, PS_, out=E1S)

            return Products(
                lambda W, out=None: torch.mm(W, P_, out=out),
                lambda W, out=None: torch.mm(W, PS_, out=out),
                lambda Y, out=None: torch.mm(Y, SPt_, out=out),
                front,
            )  # fmt: skip
        return _converted_products(P_, PS_, SPt_)
    from scipy.linalg import blas as scipy_blas

    np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
    P_columns = np.asfortranarray(P.numpy(), dtype=np_dtype)  # trmm's layout
    PS_, SPt_ = (np.ascontiguousarray(t.numpy(), dtype=np_dtype) for t in (PS, SPt))
    trmm = scipy_blas.get_blas_funcs("trmm", dtype=np_dtype)

    def left(A: torch.Tensor) -> np.ndarray:
        return (A.detach() if A.requires_grad else A).numpy().astype(np_dtype, copy=False)

    def back_to(product: np.ndarray, like: torch.Tensor, out) -> torch.Tensor:
        if out is not None:
            np.copyto(out.numpy(), product, casting="same_kind")
            return out
        product = torch.from_numpy(product)
        return product if product.dtype == like.dtype else product.to(like.dtype)

    def encoder_array(W):  # (W P)ᵀ = Pᵀ Wᵀ, Wᵀ column-major as W is row-major: no copy
        return trmm(1.0, P_columns, left(W).T, side=0, lower=1, trans_a=1).T

    def product(A, right, out):
        if out is not None and out.numpy().dtype == np_dtype:
            np.matmul(left(A), right, out=out.numpy())
            return out
        return back_to(np.matmul(left(A), right), A, out)

    def front(W, H, E1, E1S):
        back_to(encoder_array(W), W, E1)
        product(W, PS_, E1S)

    return Products(
        lambda W, out=None: back_to(encoder_array(W), W, out),
        lambda W, out=None: product(W, PS_, out),
        lambda Y, out=None: product(Y, SPt_, out),
        front,
    )


def _converted_products(P_, PS_, SPt_) -> Products:
    """:class:`Products` through ``torch.mm`` in the constants' dtype, of arguments and
    into ``out`` of another dtype: each argument converted in one copy, each result in
    one (``front``: both), into buffers formed once a shape."""
    buffers: dict = {}

    def buffer(shape):
        if shape not in buffers:
            buffers[shape] = torch.empty(shape, dtype=P_.dtype, device=P_.device)
        return buffers[shape]

    def converted(A, right, out):
        product = torch.mm(buffer(A.shape).copy_(A), right)
        return product.to(A.dtype) if out is None else out.copy_(product)

    def front(W, H, E1, E1S):
        k = W.shape[0]
        if H.shape not in buffers:  # [W P; ·; W P S] and its blocks
            both = buffer(H.shape)
            buffers["blocks", H.shape] = both[:k], both[2 * k :]
        both, (E1_, E1S_) = buffers[H.shape], buffers["blocks", H.shape]
        W_ = buffer(W.shape).copy_(W)
        torch.mm(W_, P_, out=E1_)
        torch.mm(W_, PS_, out=E1S_)
        H.copy_(both)

    return Products(
        lambda W, out=None: converted(W, P_, out),
        lambda W, out=None: converted(W, PS_, out),
        lambda Y, out=None: converted(Y, SPt_, out),
        front,
    )


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

    diag_grads: torch.Tensor  # (2, k): 2 gK_diag = Σ_b ω_R σ², 2 gG_diag = Σ_b ω_D c τ²
    d_GK: torch.Tensor  # (2, k): the diagonals of G and K
    d_N: torch.Tensor  # (k,): the diagonal of N
    A: torch.Tensor  # Σ_b ŵ_D a aᵀ, (k, k)
    M: torch.Tensor  # K ⊙ G
    gN: torch.Tensor  # −Σ_b ω_D a
    omega: float
    w_rate: torch.Tensor | float | None  # ŵ_R; None: β, "flat"'s
    c_beta: torch.Tensor  # [c, β], (B, 2, k)
    u: torch.Tensor  # min(x, bound), (B, 7, k): its rows 3 and 5 are min(x_C, 0) and ρ
    err_total: torch.Tensor | float  # Σ_b ω_D
    S: torch.Tensor  # (d, d)
    grad_b: torch.Tensor  # Σ_b ω_D scale² b'
    b_factor: torch.Tensor | float  # Σ_b ω_D scale², so that b' = grad_b / b_factor


def objective_value(parts: Parts) -> torch.Tensor:
    """The objective of :func:`latent_objective` from its :class:`Parts` (a scalar)."""
    p = parts
    d_G, d_K = p.d_GK
    c, beta = p.c_beta.unbind(1)
    log_c = p.u[:, 5] + p.u[:, 3]  # ρ + min(x_C, 0)
    w_rate = beta if p.w_rate is None else p.w_rate
    rate_rest = (w_rate * (c - 1.0 - log_c)).sum()  # Σ_b ŵ_R Σ_j (c − 1 − log c)
    gap = 0.5 * torch.dot(p.grad_b, p.grad_b) / p.b_factor  # Σ_b ω_D ½‖m − b‖²
    return (
        0.5 * (torch.dot(p.diag_grads[0], d_K) + torch.dot(p.diag_grads[1], d_G))
        + 0.5 * p.omega * ((p.A * p.M).sum() + rate_rest)
        + torch.dot(p.gN, p.d_N)
        + 0.5 * p.err_total * torch.trace(p.S)
        + gap
    )


class Workspace:
    """The tensors that :func:`objective_parts` writes (``out=``), and every view of them it
    reads, formed once for B β, k latents, d dimensions, a weight and a dtype, so that a
    step issues no view, split or stack of its own (issue 20). What a step returns (its
    gradient, its :class:`Parts`) lives here: it holds until the next step with the same
    workspace.

    The per-β work: x, u = min(x, bound) of shape (B, 7, k) (see ``_ROWS``), pairs of
    rows (B, 2, k), and F (B, 15, k), e = exp(u) among its rows, which one product with
    ``Constants.reduce`` sums over β (see ``_F``). The (k, d) work: H = [E₁;
    D₂ᵀ; E₁S] (3k, d), so that ``[D₂ᵀ; E₁S] [E₁; D₂ᵀ]ᵀ = [[Nᵀ, G], [K, N]]`` is one product
    (O) and the gradient's two products read H's blocks; T = [[2∂K, ∂N], [2∂G, ∂N]] (2, k,
    2k) with ∂N = diag(gN), so that ``Y = [2∂K, ∂N] [E₁; D₂ᵀ]`` and ``∂D₂ = [D₂, (E₁S)ᵀ]
    [2∂G, ∂N]ᵀ`` are one product each.
    """

    def __init__(self, count, k, d, flat, dtype, device):
        B = count

        def new(*shape, dtype=dtype):
            return torch.empty(*shape, dtype=dtype, device=device)

        self.x, self.u = new(B, _ROWS, k), new(B, _ROWS, k)
        self.x_c, self.u_gates = self.x[:, 3:4], self.u[:, 1:3]
        self.F = new(B, _F, k)
        self.F_rows = self.F.view(B * _F, k)
        self.t, self.z, self.e, self.z_masked, self.aw, self.cq = self.F.split(
            [2, 1, _ROWS, 2, 1, 2], 1
        )
        self.z_rate = self.F[:, 2:4]  # [z, ŵ_R]
        self.rate, self.e_gates, self.h_beta, self.rho_one = self.e.split([1, 2, 2, 2], 1)
        self.q, self.gate, self.c_beta = new(B, 2, k), new(B, 2, k), new(B, 2, k)
        self.gate_d, self.gate_e = self.gate.split(1, 1)
        self.c = self.c_beta[:, :1]
        self.y, self.numerator, self.floored, self.denominator = (new(B, 2, k) for _ in range(4))
        self.y_d = self.y[:, :1]
        self.shut_hinge = new(B, 1, k, dtype=torch.bool)  # x_C ≤ 0
        self.a = self.aw if flat else new(B, 1, k)  # "flat": ŵ_D = 1
        self.wc = None if flat else new(B, 2, k)  # [ŵ_D c, ŵ_R]
        self.wc_c, self.wc_rate = (None, None) if flat else self.wc.split(1, 1)
        self.a_rows, self.aw_rows = self.a[:, 0], self.aw[:, 0]  # (B, k)
        self.aw_rows_t = self.aw_rows.T
        self.r = new(B, k)  # (K ⊙ G) a − diag N
        self.r_rows = self.r.unsqueeze(1)
        self.H = new(3 * k, d)  # [E₁; D₂ᵀ; E₁S]
        self.E1, self.D2t, self.E1S = self.H.split(k)
        self.D2 = self.D2t.T
        self.E1_D2t, self.D2t_E1S = self.H[: 2 * k], self.H[k:]
        self.E1_D2t_t, self.D2_E1St = self.E1_D2t.T, self.D2t_E1S.T
        self.O = new(2 * k, 2 * k)  # [[Nᵀ, G], [K, N]]
        self.G, self.K, self.N = self.O[:k, k:], self.O[k:, :k], self.O[k:, k:]
        stride = 2 * k * k - k  # from G to K
        self.GK = self.O.as_strided((2, 1, k, k), (stride, 0, 2 * k, 1), k)  # [G, K]
        self.d_GK, self.d_N = self.GK[:, 0].diagonal(0, 1, 2), self.N.diagonal()
        self.M = new(k, k)
        self.sums = new(_SUMS, k)  # see _SUMS
        self.d_thresholds, self.d_shared, self.d_log_variance = self.sums[:3], *self.sums[3:5]
        self.threshold_grads = self.d_thresholds.unbind(0)
        self.diag_sums = self.sums[5:].view(2, 2, k)
        self.diag_grads, self.gN = self.sums[5::2], self.sums[6]
        self.A_zero = torch.zeros(1, 2, k, k, dtype=dtype, device=device)  # [A, 0]
        self.A = self.A_zero[0, 0]
        self.T = new(2, k, 2 * k)  # [[2∂K, ∂N], [2∂G, ∂N]]
        self.T_blocks = self.T.view(2, k, 2, k).permute(0, 2, 1, 3)
        self.dK_dN, self.dG_dN_t = self.T[0], self.T[1].T
        self.Y, self.grad_W, self.grad_V = new(k, d), new(k, d), new(d, k)


def objective_parts(
    log_beta, W, V, b, log_variance, thresholds, slopes, P, S, SPt, L, scale, weight="flat",
    *, rows=None, constants=None, products=None, work=None,
) -> tuple[Grads, Parts]:  # fmt: skip
    """The gradient of :func:`latent_objective` (same arguments) and the :class:`Parts` of
    its value: the objective is left to :func:`objective_value`, to form only when read.

    ``products`` forms the step's three (k, d) × (d, d) products (:class:`Products`,
    :func:`step_products`); default ``torch.mm`` with ``P``, ``S`` and ``SPt``.

    ``log_beta`` may be of shape (B,) or (B, 1, 1). :class:`FusedStep` passes ``rows``, the
    offsets of x already stacked (:func:`threshold_rows`; ``thresholds`` is then not read),
    ``constants`` (:func:`step_constants`) and ``work`` (:class:`Workspace`), formed once;
    the gradient and the parts are then ``work``'s tensors, overwritten by the next call.

    The step's (B, k) work is done on wide tensors, x = rows + η·slopes of shape (B, 8, k),
    its pairs of rows (B, 2, k) and their sums over β as one matrix product with constant
    weights, and every result is written into ``work`` (``out=``), so that the step issues
    few operations (issue 20). With q = σ_D² = −expm1(x)
    the gates' derivatives are, per β, ``∂/∂x_E = −½ e^x (ω_R dK q_E + ω_D a r) /
    (σ max(σ, √ε))`` and ``∂/∂x_D = −½ e^x ω_D (c dG q_D + a r) / (τ max(τ, √ε))``: those
    of :func:`latent_objective`'s chain rule, with σ_D's derivative capped as
    :func:`linvae.mrvae.gates.sqrt_gate` caps it; both numerators are 0 where a gate is
    shut, and the denominator is kept positive there by the dtype's smallest normal number.
    """
    count = log_beta.shape[0]
    flat = weight == "flat"
    if constants is None:
        constants = step_constants(count, slopes, weight, scale)
    if rows is None:
        rows = torch.stack(threshold_rows(thresholds, log_variance, constants.zero))
    if products is None:  # W P S as W (S Pᵀ)ᵀ, not (W P) S: see Products
        products = step_products(P, SPt.T, SPt, blas="torch")
    w = Workspace(count, *W.shape, flat, W.dtype, W.device) if work is None else work
    eta = log_beta if log_beta.dim() == 3 else log_beta.reshape(count, 1, 1)
    torch.addcmul(rows, eta, constants.slopes, out=w.x)  # (B, 7, k)
    torch.clamp(w.x, max=constants.bound, out=w.u)
    _into(w.e, torch.exp, w.u)  # β, [e^x_D, e^x_E], [h, β], [e^ρ, 1]
    torch.expm1(w.u_gates, out=w.q).neg_()  # σ_D(x)² = max(0, 1 − eˣ), [τ², σ²]
    torch.sqrt(w.q, out=w.gate)  # [τ, σ]
    torch.mul(w.h_beta, w.rho_one, out=w.c_beta)  # [c, β]: c = e^ρ min(1, e^x_C)
    _into(w.a, torch.mul, w.gate_d, w.gate_e)  # στ, (B, 1, k)

    # the (k, d) layouts: their products are the fastest on the CPU (d = 784: a (d, d) × (d, k)
    # product takes 1.6 times a (k, d) × (d, d) one)
    products.front(W, w.H, w.E1, w.E1S)  # E₁ = W P, E₁S: (k, d)
    if L is None:  # D₂ᵀ, written through its transpose
        _into(w.D2, torch.mul, V, scale)
    else:
        torch.mm(V.T, L.T, out=w.D2t)
    torch.mm(w.D2t_E1S, w.E1_D2t_t, out=w.O)  # [[Nᵀ, G], [K, N]]: K = E₁SE₁ᵀ, G = D₂ᵀD₂
    torch.mul(w.G, w.K, out=w.M)
    torch.addmm(w.d_N, w.a_rows, w.M, beta=-1, out=w.r)  # ∂(½aᵀMa − aᵀdiag N)/∂a, (B, k)

    if flat:  # ω_R = Ω β, ω_D = Ω; e's first row is β = ŵ_R
        w_rate = None
        w_err_sum = float(count)
        _into(w.cq, torch.mul, w.c_beta, w.q)  # [c τ², β σ²]
    else:
        w_rate, w_err = _weights(eta, weight, scale)
        w.rate.copy_(torch.as_tensor(w_rate, dtype=w.F.dtype, device=w.F.device))  # ŵ_R
        _into(w.wc_c, torch.mul, w.c, w_err)
        w.wc_rate.copy_(w.rate)
        _into(w.cq, torch.mul, w.wc, w.q)  # [ŵ_D c τ², ŵ_R σ²]
        _into(w.aw, torch.mul, w.a, w_err)
        w_err_sum = w_err.sum() if isinstance(w_err, torch.Tensor) else w_err * count
    torch.mul(w.cq, w.d_GK, out=w.y)  # [ŵ_D c τ² dG, ŵ_R σ² dK]
    torch.addcmul(w.y, w.aw, w.r_rows, out=w.numerator)
    floor = math.sqrt(torch.finfo(w.x.dtype).eps)
    torch.clamp(w.gate, min=floor, out=w.floored)
    torch.addcmul(constants.tiny, w.gate, w.floored, out=w.denominator)
    torch.mul(w.e_gates, w.numerator, out=w.numerator)
    _into(w.t, torch.div, w.numerator, w.denominator)  # −2/Ω ∂/∂x of the gates x_D, x_E
    # z = ŵ_D c τ² dG + ŵ_R c: 2/Ω ∂/∂log c is z − ŵ_R, the difference taken in the sums
    _into(w.z, torch.addcmul, w.y_d, w.rate, w.c)
    torch.le(w.x_c, 0, out=w.shut_hinge)  # the hinge's derivative: 1 where x_C ≤ 0
    _into(w.z_masked, torch.where, w.shut_hinge, w.z_rate, constants.zero)
    torch.mm(constants.reduce, w.F_rows, out=w.sums)  # (9, k), see _SUMS

    torch.mm(w.aw_rows_t, w.a_rows, out=w.A)  # Σ_b ŵ_D a aᵀ
    # [[2∂K, ∂N], [2∂G, ∂N]] = Ω [A, 0] ⊙ [G, K] + diag([[2 gK_diag, gN], [2 gG_diag, gN]])
    diagonals = torch.diag_embed(w.diag_sums)
    _into(w.T_blocks, torch.addcmul, diagonals, w.A_zero, w.GK, value=constants.omega)
    torch.mm(w.dK_dN, w.E1_D2t, out=w.Y)  # 2∂K E₁ + ∂N D₂ᵀ
    grad_W = products.back(w.Y, out=w.grad_W)  # Y S Pᵀ
    # ∂D₂ = D₂ 2∂G + (E₁S)ᵀ∂N (2∂G symmetric); the result contiguous, as V: fused Adam needs it
    if L is None:
        torch.addmm(constants.zero, w.D2_E1St, w.dG_dN_t, beta=0, alpha=scale, out=w.grad_V)
    else:
        torch.mm(L.T, torch.mm(w.D2_E1St, w.dG_dN_t), out=w.grad_V)
    err_total = constants.omega * w_err_sum
    b_factor = scale**2 * err_total
    grad_b = b * b_factor
    grads = Grads(grad_W, w.grad_V, grad_b, w.d_log_variance, w.d_thresholds, w.d_shared)
    rate_weight = w_rate  # ŵ_R, None: β (c_beta's row 1)
    if isinstance(rate_weight, torch.Tensor):
        rate_weight = rate_weight.reshape(count, 1)  # as objective_value's (B, k) rows
    parts = Parts(w.diag_grads, w.d_GK, w.d_N, w.A, w.M, w.gN, constants.omega, rate_weight,
                  w.c_beta, w.u, err_total, S, grad_b, b_factor)  # fmt: skip
    return grads, parts


def _into(out, op, *args, **kwargs):
    """``op(*args, **kwargs, out=out)`` for an ``out`` that is not contiguous, which Dynamo
    refuses: while it traces (``compile``), ``out.copy_(op(*args, **kwargs))``."""
    if torch.compiler.is_compiling():
        return out.copy_(op(*args, **kwargs))
    return op(*args, **kwargs, out=out)


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
    drawing each step on its own. Each step then costs no operation (a view of the chunk).

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
    shape : tuple of int, optional
        Each step's shape, ``(count,)`` by default; ``(count, 1, 1)`` as
        :func:`objective_parts` reads it.
    """

    def __init__(self, count, log_range, power, generator, dtype, device, chunk=256, shape=None):
        self.count, self.log_range, self.power = count, log_range, power
        self.generator, self.dtype, self.device, self.chunk = generator, dtype, device, chunk
        self.shape = (count,) if shape is None else tuple(shape)
        self.rows, self.next = None, chunk

    def __call__(self) -> torch.Tensor:
        """The next step's log β, of shape ``shape``."""
        if self.next == self.chunk:
            jitter = torch.rand(
                self.chunk, self.count, generator=self.generator, dtype=torch.float64,
                device=self.generator.device,
            )  # fmt: skip
            u = torch.arange(self.count, dtype=torch.float64, device=jitter.device) + jitter
            u = u / self.count
            log_lo, log_hi = self.log_range
            rows = log_lo + (log_hi - log_lo) * u**self.power
            rows = rows.to(self.dtype).to(self.device).reshape(self.chunk, *self.shape)
            self.rows, self.next = rows.unbind(0), 0  # views: a step indexes a tuple
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
    blas : {"auto", "torch", "numpy"}, default "auto"
        Who forms the three (k, d) × (d, d) products eagerly (:func:`step_products`);
        a compiled ``objective`` forms them with torch.
    step_dtype : torch.dtype, optional
        The dtype of a step's (k, d) × (d, d) products (default: the model's); the
        gradients, Adam's state and :meth:`exact` stay in the model's dtype.
    whitening : (Tensor, float), optional
        ``(L, ridge)`` of the encoder's factor, ``P = L⁻¹``, ``L Lᵀ = S + ridge·I``: then
        ``P S`` and ``S Pᵀ`` are formed as ``Lᵀ − ridge·P`` (:func:`covariance_factors`),
        without the round-off of ``P @ S``.
    """

    def __init__(self, model, W, V, b, P, S, L, scale, weight, objective=None, *,
                 blas="auto", step_dtype=None, whitening=None):  # fmt: skip
        if not fusable(model, False):
            raise ValueError("model: the fused step takes a LatentMRVAE gated by η itself")
        as_choice(blas, "blas", BLAS)
        if not bool((P.triu(1) == 0).all()):
            raise ValueError("P must be lower triangular (the inverse of a Cholesky factor)")
        self.blas, self.step_dtype = blas, P.dtype if step_dtype is None else step_dtype
        self.model, self.W, self.V, self.b = model, W, V, b
        self.P, self.S, self.L = P, S, L
        self.PS, self.SPt = covariance_factors(S, P, whitening)
        self.scale, self.weight = float(scale), weight
        self.slopes = torch.stack([g.weight.detach() for g in model.gate_modules()])
        self.objective = objective
        self._constants: dict = {}
        self._works: dict = {}  # a Workspace per (count, weight)
        self._products()
        if objective is not None:  # constants: a CUDA graph reads them in place, uncopied
            for tensor in (self.P, self.S, self.SPt, self.slopes, L):
                if tensor is not None:
                    torch._dynamo.mark_static_address(tensor)

    def __call__(self, log_beta: torch.Tensor):
        with torch.no_grad():
            if self.objective is None:
                grads, parts = self._eager(log_beta, self.W, self.weight, self.step_dtype)
                loss, rows = DeferredLoss(parts), self._work(log_beta, self.weight).threshold_grads
            else:
                thresholds = torch.stack([g.bias for g in self.model.gate_modules()])
                loss, grads = self.objective(
                    log_beta, self.W, self.V, self.b, self.model.log_variance, thresholds,
                    self.slopes, self.P, self.S, self.SPt, self.L, self.scale, self.weight,
                )  # fmt: skip
                rows = None
        self._assign(grads, rows)
        return loss

    def _eager(self, log_beta: torch.Tensor, W: torch.Tensor, weight: str, dtype):
        """:func:`objective_parts` at ``log_beta`` with the encoder's ``W``, its products in
        ``dtype``: one stack for x's offsets (:func:`threshold_rows`), the constants formed
        once."""
        if dtype not in self._by_dtype:  # formed when first asked: Adam's, then the polish's
            self._by_dtype[dtype] = step_products(
                self.P, self.PS, self.SPt, dtype=dtype, blas=self.blas
            )
        constants = self.constants(log_beta.shape[0], weight)
        rho = self.model.log_variance
        biases = [g.bias for g in self.model.gate_modules()]
        rows = torch.stack(threshold_rows(biases, rho, constants.zero))
        return objective_parts(
            log_beta, W, self.V, self.b, rho, None, self.slopes, self.P, self.S, self.SPt,
            self.L, self.scale, weight, rows=rows, constants=constants,
            products=self._by_dtype[dtype], work=self._work(log_beta, weight),
        )  # fmt: skip

    def _work(self, log_beta: torch.Tensor, weight: str) -> Workspace:
        """The :class:`Workspace` of ``log_beta``'s count of β and ``weight``, formed once."""
        key = (log_beta.shape[0], weight)
        if key not in self._works:
            self._works[key] = Workspace(*key[:1], *self.W.shape, weight == "flat",
                                         self.W.dtype, self.W.device)  # fmt: skip
        return self._works[key]

    def constants(self, count: int, weight: str) -> Constants:
        """:func:`step_constants` of ``count`` β and ``weight``, formed once."""
        key = (count, weight)
        if key not in self._constants:
            self._constants[key] = step_constants(count, self.slopes, weight, self.scale)
        return self._constants[key]

    def exact(self, log_beta: torch.Tensor, weight: str, row_scale: torch.Tensor) -> torch.Tensor:
        """The objective at ``log_beta`` weighted by ``weight``, eagerly, with the encoder's
        rows trained scaled, ``E₁ = diag(1/row_scale) W P`` (``row_scale`` of shape (k, 1)):
        the polish's evaluation. Sets the same ``.grad`` as a step; returns a scalar tensor."""
        with torch.no_grad():
            grads, parts = self._eager(log_beta, self.W / row_scale, weight, self.P.dtype)
            self._assign(grads._replace(W=grads.W / row_scale))
            return objective_value(parts)

    def rewhitened(self, whitening=None) -> None:
        """Form ``P S`` and ``S Pᵀ`` again after ``P`` was changed in place (the polish's
        re-whitening); ``whitening``: ``P``'s ``(L, ridge)`` (:func:`covariance_factors`)."""
        with torch.no_grad():
            PS, SPt = covariance_factors(self.S, self.P, whitening)
            self.PS.copy_(PS)
            self.SPt.copy_(SPt)
        self._products()

    def _products(self) -> None:
        """Forget the :class:`Products` formed from the constants (copies, for numpy's)."""
        self._by_dtype: dict = {}

    def _assign(self, grads: Grads, rows=None) -> None:
        """Set the trained tensors' ``.grad``; ``rows``: ``grads.thresholds``' rows, as views
        formed once (a :class:`Workspace`'s), or None."""
        gates = self.model.gate_modules()
        self.W.grad, self.V.grad, self.b.grad = grads.W, grads.V, grads.b
        self.model.log_variance.grad = grads.log_variance
        encoder, covariance, decoder = gates
        if encoder.bias is covariance.bias is decoder.bias:  # one threshold per latent
            encoder.bias.grad = grads.shared
        else:
            rows = grads.thresholds.unbind(0) if rows is None else rows
            for gate, grad in zip(gates, rows, strict=True):
                gate.bias.grad = grad


class DeferredLoss:
    """A step's objective, formed from its :class:`Parts` when read: ``float(loss)`` or
    ``loss.value()`` (a scalar tensor), before the next step. The parts are the step's
    :class:`Workspace`, which the optimiser's update leaves as it was and the next step
    overwrites (the recipe reads a step's loss right after it)."""

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
