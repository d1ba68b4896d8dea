"""The β-VAE loss of a linear (MR-)VAE in torch: sampled (the paper's) and exact.

Both return the loss to minimise, ``distortion + β · rate`` (eq. 13) in nats per example,
averaged over the batch, where each example (or each β of the batch) has its own β.

- :func:`sampled_loss`: the reparameterised ELBO on a mini-batch of data, one noise draw
  per example, with the KL term in closed form (eq. 14), as VAEs are trained.
- :func:`exact_loss`: the closed-form expectation over the data distribution and over
  ``q`` (eqs. 14–18), from the data's mean and covariance only; no sampling noise. It is
  the torch twin of :func:`linvae.analytic.objective`, extended by the latent offset and
  η-dependent decoder bias that FiLM gates produce.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .model import LinearMRVAE

LOG_2PI = math.log(2.0 * math.pi)


class LossTerms(NamedTuple):
    """A differentiable loss with its per-β terms.

    Attributes
    ----------
    loss : Tensor, scalar
        Mean over the batch of ``distortion + β · rate``.
    rate : Tensor of shape (n,)
        Per example (sampled) or per β (exact), nats.
    distortion : Tensor of shape (n,)
        Including ``d/2 log 2π``, nats.
    squared_error : Tensor of shape (n,)
        ``‖x − x̂‖²`` (sampled) or ``E‖x − x̂‖²`` (exact): ``distortion = d/2 log 2π +
        squared_error / 2``, formed without the constant, so that it keeps its digits where
        it is small beside it (data of tiny spread), as :class:`linvae.analytic.Terms` has it.
    """

    loss: torch.Tensor
    rate: torch.Tensor
    distortion: torch.Tensor
    squared_error: torch.Tensor


def sampled_loss(
    model: LinearMRVAE, x: torch.Tensor, log_beta: torch.Tensor, noise: torch.Tensor
) -> LossTerms:
    """The reparameterised negative ELBO of a mini-batch, one β per example (eq. 13).

    Parameters
    ----------
    model : LinearMRVAE
    x : Tensor of shape (n, d)
        A mini-batch of data.
    log_beta : Tensor of shape (n,)
        η = log β of each example.
    noise : Tensor of shape (n, k)
        Standard normal draws, z = μ + √c ⊙ noise.

    Returns
    -------
    LossTerms
        rate = KL(q(z|x) || N(0, I)) in closed form (eq. 14); distortion = −log p(x|z) at
        the sampled z (eq. 15).
    """
    reconstruction, mean, log_variance = model(x, log_beta, noise)
    rate = 0.5 * torch.sum(
        -log_variance + mean**2 + torch.exp(log_variance) - 1.0, dim=-1
    )  # eq. 14
    squared_error = torch.sum((x - reconstruction) ** 2, dim=-1)
    distortion = 0.5 * model.d * LOG_2PI + 0.5 * squared_error  # eq. 15
    loss = torch.mean(distortion + torch.exp(log_beta) * rate)
    return LossTerms(loss, rate, distortion, squared_error)


def _ungated(gate) -> bool:
    return gate.activation == "none"


def _gated_products(left: torch.Tensor, scale: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """``left @ diag(scale[b]) @ right`` for each b: (h, d), (B, d), (d, h) → (B, h, h).

    One (h, d) @ (d, B·h) GEMM against the gated copies of ``right`` side by side, instead
    of B broadcast products (which copy ``left`` B times).
    """
    batch, d = scale.shape
    h = right.shape[1]
    gated = (scale.T.unsqueeze(-1) * right.unsqueeze(1)).reshape(d, batch * h)  # (d, B·h)
    return (left @ gated).reshape(left.shape[0], batch, h).transpose(0, 1)


def _terms(log_beta, log_c, ESEt, offset, DtD, ESD, gap, cov) -> LossTerms:
    """Rate (eq. 14), distortion (eqs. 17–18) and their β-weighted mean from the per-β pieces
    that :func:`exact_loss` and :func:`exact_loss_tables` form each their own way.

    ``log_c`` (B, k), ``ESEt`` = E S Eᵀ (B, k, k), ``offset`` = t (B, k), ``DtD`` = DᵀD
    (B, k, k), ``ESD`` = E S D (B, k, k), ``gap`` = ‖m − b − D t‖² (B,), ``cov`` S (d, d).
    """
    c = torch.exp(log_c)
    rate = 0.5 * (
        -log_c.sum(-1)
        + torch.diagonal(ESEt, dim1=-2, dim2=-1).sum(-1)
        + (offset**2).sum(-1)
        + c.sum(-1)
        - c.shape[-1]
    )  # eq. 14
    residual = (
        torch.trace(cov)
        - 2.0 * torch.diagonal(ESD, dim1=-2, dim2=-1).sum(-1)  # tr(E S D) = tr(D E S)
        + (DtD * ESEt).sum((-2, -1))  # tr(D E S Eᵀ Dᵀ)
        + (c * torch.diagonal(DtD, dim1=-2, dim2=-1)).sum(-1)  # tr(D C Dᵀ)
        + gap
    )
    distortion = 0.5 * cov.shape[0] * LOG_2PI + 0.5 * residual  # eqs. 17–18
    loss = torch.mean(distortion + torch.exp(log_beta) * rate)
    return LossTerms(loss, rate, distortion, residual)


def exact_loss(
    model: LinearMRVAE,
    log_beta: torch.Tensor,
    mean: torch.Tensor,
    cov: torch.Tensor,
    *,
    encoder1: torch.Tensor | None = None,
    decoder2: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> LossTerms:
    """The exact expected loss at each β of a batch, from the data's moments (eqs. 14–18).

    .. math::

        \\text{rate} &= \\tfrac12\\big(-\\textstyle\\sum_j \\log c_j + \\operatorname{tr}(E S E^\\top)
            + \\lVert t\\rVert^2 + \\textstyle\\sum_j c_j - k\\big), \\\\
        \\text{distortion} &= \\tfrac d2 \\log 2\\pi + \\tfrac12\\big(\\operatorname{tr} S
            - 2 \\operatorname{tr}(E S D) + \\operatorname{tr}(D^\\top D\\, E S E^\\top)
            + \\textstyle\\sum_j c_j (D^\\top D)_{jj} + \\lVert m - b - D t \\rVert^2\\big),

    with ``E, c, D, b`` at β, ``t = E(m − input_mean)`` the latent offset. The torch twin
    of :func:`linvae.analytic.objective`, shaped for speed: the one d² product is
    ``E₁ S``, formed once per call; the decoder's output gates (B, d) enter through one
    (h, d) @ (d, B·h) GEMM against the gated copies of ``D₂`` side by side, and an ungated
    layer's products are formed once per call, so with ungated outer layers every per-β
    product is (h, h) or smaller.

    Parameters
    ----------
    model : LinearMRVAE
    log_beta : Tensor of shape (B,)
        η = log β, one term per entry.
    mean : Tensor of shape (d,)
        Data mean m.
    cov : Tensor of shape (d, d)
        Data covariance S (maximum likelihood).
    encoder1 : Tensor of shape (h, d), optional
        Use this matrix for the first encoder layer ``E₁`` instead of ``model.encoder1``
        (a reparameterisation such as the whitened ``E₁ = W P`` of
        :mod:`linvae.mrvae.recipe`; gradients flow into whatever built it).
    decoder2 : Tensor of shape (d, h), optional
        Likewise for the last decoder layer ``D₂`` (the recipe's ``D₂ = L V``).
    bias : Tensor of shape (d,), optional
        Likewise for the decoder bias ``b``.

    Returns
    -------
    LossTerms
        ``rate`` and ``distortion`` of shape (B,), and their β-weighted mean ``loss``.

    Notes
    -----
    A model with FiLM gates (η-dependent shifts) is computed by
    :func:`exact_loss_tables`, the form that takes them.
    """
    if "film" in (model.encoder_gate, model.decoder_gate, model.covariance_gate):
        if encoder1 is not None or decoder2 is not None or bias is not None:
            raise ValueError("encoder1, decoder2 and bias are not supported with FiLM gates")
        return exact_loss_tables(model, log_beta, mean, cov)
    E1 = model.encoder1 if encoder1 is None else encoder1
    D2 = model.decoder2 if decoder2 is None else decoder2
    b = model.bias if bias is None else bias
    E2, D1 = model.encoder2, model.decoder1

    s_e1 = model.encoder1_gate.scale(log_beta)  # (B, h)
    s_d1 = model.decoder1_gate.scale(log_beta)  # (B, h)
    log_c = model.log_variance_at(log_beta)  # (B, k)
    gated_e2 = not _ungated(model.encoder2_gate)
    gated_d2 = not _ungated(model.decoder2_gate)

    E1S = E1 @ cov  # (h, d): the one d² product
    E1SE1t = E1S @ E1.T  # (h, h)
    A = E2 * s_e1.unsqueeze(-2)  # E₂ diag(s_E1), (B, k, h)
    ESEt = A @ E1SE1t @ A.transpose(-1, -2)  # (B, k, k), before s_E2
    if gated_e2:
        s_e2 = model.encoder2_gate.scale(log_beta)  # (B, k)
        ESEt = s_e2.unsqueeze(-1) * ESEt * s_e2.unsqueeze(-2)

    # latent offset t = s_E2 ⊙ E₂ (s_E1 ⊙ E₁(m − m_in)), zero when m = m_in
    hidden_offset = s_e1 * ((mean - model.input_mean) @ E1.T)  # (B, h)
    offset = hidden_offset @ E2.T  # (B, k)
    if gated_e2:
        offset = s_e2 * offset

    if gated_d2:
        s_d2 = model.decoder2_gate.scale(log_beta)  # (B, d)
        G = _gated_products(D2.T, s_d2**2, D2)  # D₂ᵀ diag(s²) D₂, (B, h, h)
        N = _gated_products(E1S, s_d2, D2)  # E₁S diag(s) D₂, (B, h, h)
    else:
        G = D2.T @ D2  # (h, h), once
        N = E1S @ D2  # (h, h), once
    Q = s_d1.unsqueeze(-1) * D1  # diag(s_D1) D₁, (B, h, k)
    DtD = Q.transpose(-1, -2) @ G @ Q  # (B, k, k)
    ESD = A @ N @ Q  # (B, k, k), before s_E2
    if gated_e2:
        ESD = s_e2.unsqueeze(-1) * ESD

    decoded = (s_d1 * (offset @ D1.T)) @ D2.T  # D t, (B, d)
    if gated_d2:
        decoded = s_d2 * decoded
    gap = ((mean - b - decoded) ** 2).sum(-1)
    return _terms(log_beta, log_c, ESEt, offset, DtD, ESD, gap, cov)


def exact_loss_tables(
    model: LinearMRVAE, log_beta: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor
) -> LossTerms:
    """:func:`exact_loss` through (d, h, h) tables of row products: the reference form.

    The same value and gradients as :func:`exact_loss` (tested to 1e-12), slower: the tables
    are formed and differentiated at every call. It is the form that also takes FiLM
    shifts on every layer, so :func:`exact_loss` hands FiLM models to it. The terms are
    :func:`exact_loss`'s (eqs. 14–18), with the latent offset ``t = E(m − input_mean) + t_FiLM``.

    Parameters
    ----------
    model : LinearMRVAE
    log_beta : Tensor of shape (B,)
        η = log β, one term per entry.
    mean : Tensor of shape (d,)
        Data mean m.
    cov : Tensor of shape (d, d)
        Data covariance S (maximum likelihood).

    Returns
    -------
    LossTerms
        ``rate`` and ``distortion`` of shape (B,), and their β-weighted mean ``loss``.

    Notes
    -----
    The products are taken through the layers' factors: E₁SE₁ᵀ (h, h), E₁S (h, d) and two
    (d, h, h) tables of row products are formed once per call, then per β only (k, h),
    (h, h) and (k, k) products, and two (B, d) @ (d, h²) products for the d gates of the
    decoder's output layer. No (d, d) or (d, k) matrix is formed per β.
    """
    g = model.gates(log_beta)
    E1, E2, D1, D2 = model.encoder1, model.encoder2, model.decoder1, model.decoder2
    d = model.d

    E1S = E1 @ cov  # (h, d)
    E1SE1t = E1S @ E1.T  # (h, h)
    A = E2 * g.encoder1.unsqueeze(-2)  # E₂ diag(s_E1), (B, k, h)
    s2 = g.encoder2  # (B, k)
    ESEt = s2.unsqueeze(-1) * (A @ E1SE1t @ A.transpose(-1, -2)) * s2.unsqueeze(-2)  # (B, k, k)

    hidden_offset = g.encoder1 * ((mean - model.input_mean) @ E1.T)  # s_E1 ⊙ E₁(m − m_in)
    if g.encoder1_shift is not None:
        hidden_offset = hidden_offset + g.encoder1_shift
    offset = s2 * (hidden_offset @ E2.T)  # t, (B, k)
    if g.encoder2_shift is not None:
        offset = offset + g.encoder2_shift

    # The decoder's output gates s_D2 (B, d) sit between two d-contractions; each is one
    # (B, d) @ (d, h·h) product against per-call outer products of rows.
    h = D2.shape[1]
    batch = log_beta.shape[0]
    rows_D2 = D2.unsqueeze(-1) * D2.unsqueeze(-2)  # D₂[i, a] D₂[i, c], (d, h, h)
    rows_E1SD2 = E1S.T.unsqueeze(-1) * D2.unsqueeze(-2)  # (E₁S)[a, i] D₂[i, c], (d, h, h)
    G = (g.decoder2**2 @ rows_D2.reshape(d, h * h)).reshape(batch, h, h)  # D₂ᵀ diag(s²) D₂
    N = (g.decoder2 @ rows_E1SD2.reshape(d, h * h)).reshape(batch, h, h)  # E₁S diag(s) D₂
    Q = g.decoder1.unsqueeze(-1) * D1  # diag(s_D1) D₁, (B, h, k)
    DtD = Q.transpose(-1, -2) @ G @ Q  # (B, k, k)
    ESD = s2.unsqueeze(-1) * (A @ N @ Q)  # E S D, (B, k, k)

    bias = model.bias
    if g.decoder1_shift is not None:
        bias = bias + g.decoder2 * (g.decoder1_shift @ D2.T)
    if g.decoder2_shift is not None:
        bias = bias + g.decoder2_shift
    decoded_offset = g.decoder2 * ((g.decoder1 * (offset @ D1.T)) @ D2.T)  # D t, (B, d)
    gap = ((mean - bias - decoded_offset) ** 2).sum(-1)
    return _terms(log_beta, g.log_variance, ESEt, offset, DtD, ESD, gap, cov)
