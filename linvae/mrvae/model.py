"""The linear MR-VAE (Theorem 1's parameterisation, appendix A.2) and its β-VAE baseline.

The model, for η = log β (per example):

.. math::

    \\mu(x, \\eta) &= s_{E2}(\\eta) \\odot E_2\\,(s_{E1}(\\eta) \\odot E_1 (x - m)),
        \\qquad E(\\eta) = \\operatorname{diag}(s_{E2}) E_2 \\operatorname{diag}(s_{E1}) E_1
        \\quad \\text{(eq. 25–26)}, \\\\
    c(\\eta) &= e^{\\rho} \\odot s_C(\\eta) \\quad \\text{(positive by construction; cf. eq. 30–31)}, \\\\
    \\hat x(z, \\eta) &= s_{D2}(\\eta) \\odot D_2\\,(s_{D1}(\\eta) \\odot D_1 z) + b,
        \\qquad D(\\eta) = \\operatorname{diag}(s_{D2}) D_2 \\operatorname{diag}(s_{D1}) D_1
        \\quad \\text{(eq. 37–38)},

with ``q(z|x) = N(μ, diag(c))``, ``p(x|z) = N(x̂, I)`` and prior ``N(0, I)`` (eq. 12). Every
gate scales the pre-activations of its layer per example (appendix B.2); the forward pass
never builds a per-example weight matrix.

Choices the appendix leaves open, made here:

- ``m`` is a fixed buffer, the training data's mean (``input_mean``; eq. 12 uses μ_MLE); the
  decoder bias ``b`` is learned and not gated.
- The covariance is one gated diagonal layer ``c = e^ρ ⊙ s_C(η)``: the appendix's
  ``C⁽²⁾C⁽¹⁾`` with positive bases ``e^{ρ1}, e^{ρ2}`` is the same family as a product of
  gates, and the second factor is constant in the construction of eq. 32. A FiLM
  covariance gate acts on the log-variance: ``log c = s(η) ρ + shift(η)``. The sqrt gate is
  refused for the covariance (it reaches 0).
- FiLM shifts make the layers affine; the model then has an η-dependent latent offset
  ``t(η)`` and decoder bias, which :meth:`LinearMRVAE.latent_offset` and
  :meth:`LinearMRVAE.decoder_bias` return, so the objective stays exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from linvae._checks import (
    as_beta,
    as_beta_range,
    as_choice,
    as_int,
    as_latent_size,
    as_positive,
    as_seed,
)
from linvae.analytic import LinearVAEParams

from .gates import ACTIVATIONS, DEFAULT_BETA_RANGE, GATE_INPUTS, Gate

COVARIANCE_ACTIVATIONS = tuple(a for a in ACTIVATIONS if a != "sqrt")


class GateValues(NamedTuple):
    """The gates of every layer for a batch of η, each of shape (n, units).

    ``*_shift`` are the FiLM shifts, or None for gates without a shift.
    """

    encoder1: torch.Tensor  # (n, hidden)
    encoder2: torch.Tensor  # (n, k)
    log_variance: torch.Tensor  # (n, k), log c(η)
    decoder1: torch.Tensor  # (n, hidden)
    decoder2: torch.Tensor  # (n, d)
    encoder1_shift: torch.Tensor | None
    encoder2_shift: torch.Tensor | None
    decoder1_shift: torch.Tensor | None
    decoder2_shift: torch.Tensor | None


class LinearMRVAE(nn.Module):
    """Linear MR-VAE: two-layer gated encoder and decoder, gated diagonal covariance.

    Parameters
    ----------
    d : int
        Data dimension.
    k : int
        Latent dimension.
    encoder_gate : {"sigmoid", "sqrt", "hinge", "film", "none"}, default "sigmoid"
        Activation of the gates of both encoder layers (σ_E, eq. 25–26).
    decoder_gate : {"sigmoid", "sqrt", "hinge", "film", "none"}, default "sqrt"
        Activation of the gates of both decoder layers (σ_D, eq. 37–38).
    covariance_gate : {"sigmoid", "hinge", "film", "none"}, default "sigmoid"
        Activation of the covariance gate (eq. 30–31).
    hidden : int, optional
        Width of the hidden layer of the encoder and of the decoder; default ``k``.
    gate_input : {"standardized", "log_beta"}, default "standardized"
        What the gates' affine maps see: η standardised over ``beta_range`` (the authors'
        code) or η itself (the paper's Algorithm 1). The model class is the same.
    beta_range : (float, float), default (0.01, 10)
        The training range of β (used by the standardisation).
    seed : int, default 0
        Seed of the initial weights (a private generator: the global RNG is untouched).
    dtype : torch.dtype, default torch.float64
    staggered : bool, default True
        Initialise the gates of latent and hidden unit j with their own threshold in β
        (log-spaced over the range), not one shared by all units; see
        :class:`linvae.mrvae.gates.Gate`. Only the initial values differ. It helps many
        latents reach units reserved for small β; with few latents a unit started with a
        threshold at the bottom of the range is shut, without gradient, on most of it
        (measured in the history of docs/results.md).

    Notes
    -----
    Initial weights are Gaussian with variance 1/fan-in and ``ρ = 0``. The gates start
    with the trends in β of Theorem 1's construction: encoder and decoder gates closing as
    β grows, the covariance gate opening (see :class:`linvae.mrvae.gates.Gate`).
    """

    def __init__(
        self,
        d: int,
        k: int,
        encoder_gate: str = "sigmoid",
        decoder_gate: str = "sqrt",
        covariance_gate: str = "sigmoid",
        hidden: int | None = None,
        *,
        gate_input: str = "standardized",
        beta_range: tuple[float, float] = DEFAULT_BETA_RANGE,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
        staggered: bool = True,
    ) -> None:
        super().__init__()
        self.d = as_int(d, "d", minimum=1)
        self.k = as_latent_size(k)
        self.hidden = self.k if hidden is None else as_int(hidden, "hidden", minimum=1)
        self.encoder_gate = as_choice(encoder_gate, "encoder_gate", ACTIVATIONS)
        self.decoder_gate = as_choice(decoder_gate, "decoder_gate", ACTIVATIONS)
        self.covariance_gate = as_choice(covariance_gate, "covariance_gate", COVARIANCE_ACTIVATIONS)
        self.gate_input = as_choice(gate_input, "gate_input", GATE_INPUTS)
        self.staggered = bool(staggered)
        self.beta_range = as_beta_range(beta_range)
        seed = as_seed(seed)
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")

        generator = torch.Generator().manual_seed(int(seed))

        def weight(rows, cols):
            w = torch.randn(rows, cols, generator=generator, dtype=torch.float64) / np.sqrt(cols)
            return nn.Parameter(w.to(dtype))

        h = self.hidden
        gate_options = {"gate_input": gate_input, "beta_range": self.beta_range, "dtype": dtype}
        self.encoder1 = weight(h, self.d)  # E_base⁽¹⁾ (h, d)
        self.encoder2 = weight(self.k, h)  # E_base⁽²⁾ (k, h)
        self.decoder1 = weight(h, self.k)  # D_base⁽¹⁾ (h, k)
        self.decoder2 = weight(self.d, h)  # D_base⁽²⁾ (d, h)
        self.log_variance = nn.Parameter(torch.zeros(self.k, dtype=dtype))  # ρ
        self.bias = nn.Parameter(torch.zeros(self.d, dtype=dtype))  # b
        self.register_buffer("input_mean", torch.zeros(self.d, dtype=dtype))  # m
        # initial trends in β follow Theorem 1's construction (see Gate's notes); the gates
        # of latent and hidden units get staggered thresholds, the d output gates a shared one
        stagger = {"stagger": staggered}
        shrink = {**gate_options, "trend": "decreasing"}
        self.encoder1_gate = Gate(h, encoder_gate, **shrink, **stagger)
        self.encoder2_gate = Gate(self.k, encoder_gate, **shrink, **stagger)
        self.covariance_gate_module = Gate(
            self.k, covariance_gate, **gate_options, trend="increasing", **stagger
        )
        self.decoder1_gate = Gate(h, decoder_gate, **shrink, **stagger)
        self.decoder2_gate = Gate(self.d, decoder_gate, **shrink)

    # -- configuration -----------------------------------------------------------------

    def config(self) -> dict:
        """The constructor's arguments as JSON builtins, to rebuild the model (``from_config``)."""
        return {
            "class": type(self).__name__,
            "d": self.d,
            "k": self.k,
            "hidden": self.hidden,
            "encoder_gate": self.encoder_gate,
            "decoder_gate": self.decoder_gate,
            "covariance_gate": self.covariance_gate,
            "gate_input": self.gate_input,
            "beta_range": list(self.beta_range),
            "staggered": self.staggered,
        }

    @property
    def dtype(self) -> torch.dtype:
        return self.encoder1.dtype

    @property
    def device(self) -> torch.device:
        return self.encoder1.device

    def set_input_mean(self, mean) -> None:
        """Set the encoder's centring ``m`` (the buffer ``input_mean``) to ``mean`` of shape (d,)."""
        mean = torch.as_tensor(np.asarray(mean, dtype=np.float64))
        if mean.shape != (self.d,):
            raise ValueError(f"mean must have shape ({self.d},), got {tuple(mean.shape)}")
        if not torch.isfinite(mean).all():
            raise ValueError("mean must be finite")
        with torch.no_grad():
            self.input_mean.copy_(mean.to(self.input_mean))

    # -- gates ---------------------------------------------------------------------------

    def log_variance_at(self, log_beta: torch.Tensor) -> torch.Tensor:
        """log c(η) of shape (n, k) for η of shape (n,)."""
        cov_gate = self.covariance_gate_module
        if self.covariance_gate == "film":
            log_c = cov_gate.scale(log_beta) * self.log_variance + cov_gate.shift(log_beta)
        elif self.covariance_gate == "sigmoid":
            # log(e^ρ σ(x)) = ρ − softplus(−x), stable for every x
            x = cov_gate.weight * cov_gate._input(log_beta) + cov_gate.bias
            log_c = self.log_variance - nn.functional.softplus(-x)
        elif self.covariance_gate == "hinge":
            x = cov_gate.weight * cov_gate._input(log_beta) + cov_gate.bias
            log_c = self.log_variance + torch.clamp(x, max=0.0)  # log(e^ρ min(1, eˣ))
        else:
            log_c = self.log_variance.expand(*log_beta.shape, self.k)
        return log_c

    def gates(self, log_beta: torch.Tensor) -> GateValues:
        """All gate values for η of shape (n,) (see :class:`GateValues`)."""
        return GateValues(
            encoder1=self.encoder1_gate.scale(log_beta),
            encoder2=self.encoder2_gate.scale(log_beta),
            log_variance=self.log_variance_at(log_beta),
            decoder1=self.decoder1_gate.scale(log_beta),
            decoder2=self.decoder2_gate.scale(log_beta),
            encoder1_shift=self.encoder1_gate.shift(log_beta),
            encoder2_shift=self.encoder2_gate.shift(log_beta),
            decoder1_shift=self.decoder1_gate.shift(log_beta),
            decoder2_shift=self.decoder2_gate.shift(log_beta),
        )

    # -- forward pass (per example, gating pre-activations) ------------------------------

    def encode(self, x: torch.Tensor, log_beta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean (n, k) and log-variance log c (n, k) for data x (n, d) and η (n,)."""
        pre = (x - self.input_mean) @ self.encoder1.T  # E₁(x − m), (n, h)
        hidden = self.encoder1_gate(pre, log_beta)  # eq. 25
        mean = self.encoder2_gate(hidden @ self.encoder2.T, log_beta)  # eq. 26
        return mean, self.log_variance_at(log_beta)

    def decode(self, z: torch.Tensor, log_beta: torch.Tensor) -> torch.Tensor:
        """Mean of p(x|z), shape (n, d), for latents z (n, k) and η (n,)."""
        hidden = self.decoder1_gate(z @ self.decoder1.T, log_beta)  # eq. 37
        return self.decoder2_gate(hidden @ self.decoder2.T, log_beta) + self.bias  # eq. 38

    def forward(
        self, x: torch.Tensor, log_beta: torch.Tensor, noise: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction (n, d), posterior mean (n, k) and log-variance (n, k).

        ``noise`` (n, k) is standard normal: z = μ + √c ⊙ noise (reparameterisation).
        """
        mean, log_variance = self.encode(x, log_beta)
        z = mean + torch.exp(0.5 * log_variance) * noise
        return self.decode(z, log_beta), mean, log_variance

    # -- the η-dependent matrices, for the analytic module -------------------------------

    def matrices(self, log_beta: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """E(η) (n, k, d), c(η) (n, k), D(η) (n, d, k), offset t(η) (n, k), bias (n, d).

        Differentiable; for evaluation and tests (the training objectives use the factors).
        ``t(η)`` is the latent mean at x = ``input_mean`` (nonzero only with FiLM shifts);
        the bias is that of x̂ at z = 0.
        """
        g = self.gates(log_beta)
        E = g.encoder2.unsqueeze(-1) * (self.encoder2 * g.encoder1.unsqueeze(-2)) @ self.encoder1
        D = (g.decoder2.unsqueeze(-1) * self.decoder2) @ (g.decoder1.unsqueeze(-1) * self.decoder1)
        offset = torch.zeros_like(g.encoder2)
        if g.encoder1_shift is not None:
            offset = offset + g.encoder2 * (g.encoder1_shift @ self.encoder2.T)
        if g.encoder2_shift is not None:
            offset = offset + g.encoder2_shift
        bias = self.bias.expand(*log_beta.shape, self.d)
        if g.decoder1_shift is not None:
            bias = bias + g.decoder2 * (g.decoder1_shift @ self.decoder2.T)
        if g.decoder2_shift is not None:
            bias = bias + g.decoder2_shift
        return E, torch.exp(g.log_variance), D, offset, bias

    def _at(self, beta) -> tuple[torch.Tensor, ...]:
        beta = as_beta(beta)
        log_beta = torch.tensor([np.log(beta)], dtype=self.dtype, device=self.device)
        with torch.no_grad():
            return tuple(t[0] for t in self.matrices(log_beta))

    def params_at(self, beta: float) -> LinearVAEParams:
        """``(E(β) (k, d), c(β) (k,), D(β) (d, k))`` as float64 numpy copies.

        The model's posterior is ``N(E(β)(x − m) + t(β), diag(c(β)))`` with ``m`` the
        buffer ``input_mean`` and ``t`` the :meth:`latent_offset` (zero without FiLM).
        """
        E, c, D, _, _ = self._at(beta)
        return LinearVAEParams(
            *(t.detach().cpu().to(torch.float64).numpy().copy() for t in (E, c, D))
        )

    def latent_offset(self, beta: float) -> np.ndarray:
        """t(β) of shape (k,): the posterior mean at x = ``input_mean`` (0 without FiLM)."""
        return self._at(beta)[3].detach().cpu().to(torch.float64).numpy().copy()

    def decoder_bias(self, beta: float | None = None) -> np.ndarray:
        """The mean of p(x|z=0), shape (d,): ``b``, plus FiLM shifts at β if any.

        ``beta`` is needed only for a model with a FiLM decoder gate.
        """
        if self.decoder_gate != "film":
            return self.bias.detach().cpu().to(torch.float64).numpy().copy()
        if beta is None:
            raise ValueError("beta is required: a FiLM decoder's bias depends on β")
        return self._at(beta)[4].detach().cpu().to(torch.float64).numpy().copy()


class LinearVAE(LinearMRVAE):
    """The β-VAE baseline: the same two-layer linear VAE without gates, for one β.

    Parameters
    ----------
    d, k, hidden, seed, dtype
        As for :class:`LinearMRVAE`.
    """

    def __init__(
        self,
        d: int,
        k: int,
        hidden: int | None = None,
        *,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__(
            d,
            k,
            "none",
            "none",
            "none",
            hidden,
            seed=seed,
            dtype=dtype,
        )
        with torch.no_grad():
            self.log_variance.fill_(float(np.log(0.5)))  # c = 1/2, as the gated models start

    def config(self) -> dict:
        return {"class": type(self).__name__, "d": self.d, "k": self.k, "hidden": self.hidden}


#: No threshold of a :class:`LatentMRVAE` starts lower than this share of the log range.
THRESHOLD_FLOOR = 0.05


def _fix_unit_slope(gate: Gate) -> None:
    """Freeze a gate's slope in η at +1 (Theorem 1's h = 1, eq. 36), keeping its threshold.

    The pre-activation ``w (η − center)/scale + b`` becomes ``η − η₀``, with η₀ where the
    initial one crosses 0; ``w`` is no longer trained.
    """
    with torch.no_grad():
        w, b = gate.weight, gate.bias
        crossing = gate.input_center - b * gate.input_scale / w  # η₀ per unit
        w.copy_(gate.input_scale.expand_as(w))  # slope 1 in η
        b.copy_((gate.input_center - crossing) / gate.input_scale * w)
    w.requires_grad_(False)


def _freeze_inner_layers_at_identity(model: LinearMRVAE) -> None:
    """Set the inner layers ``E₂ = D₁ = I`` (hidden = k) and stop training them, so that
    ``E = E₁`` and ``D = D₂`` up to the gates."""
    eye = torch.eye(model.k, dtype=model.encoder2.dtype)
    with torch.no_grad():
        model.encoder2.copy_(eye)
        model.decoder1.copy_(eye)
    model.encoder2.requires_grad_(False)
    model.decoder1.requires_grad_(False)


class LatentMRVAE(LinearMRVAE):
    r"""The MR-VAE of Theorem 1's joint construction: one gate per latent, nothing else gated.

    .. math::

        E(\eta) = \operatorname{diag}(\sigma_D(\eta - a_j))\,E_1,\qquad
        D(\eta) = D_2\,\operatorname{diag}(\sigma_D(\eta - b_j)),\qquad
        c(\eta) = e^{\rho} \odot \min(1, e^{\eta - g_j}),

    σ_D(x) = max(0, 1 − eˣ)^{1/2} (eqs. 37–38) with slope 1 in η = log β (eq. 36's h = 1)
    and the hinge covariance gate. The joint optimum is in the family at every β (eqs.
    21–23 with R = I, which a diagonal posterior forces up to a signed permutation:
    ``E* = diag(σ_D(η − ξ)) Λ^{-1/2}Uᵀ``, ``D* = UΛ^{1/2} diag(σ_D(η − ξ))``,
    ``c* = min(1, e^{η − ξ})``, ξ = log λ; docs/theorem1.md, reading (b)): its
    representation floor is 0. As a :class:`LinearMRVAE` it has hidden = k, ``E₂ = D₁ = I``
    frozen, the first encoder and last decoder layers ungated.

    Parameters
    ----------
    d, k : int
        Data and latent dimension.
    beta_range : (float, float)
        The training range (lo, hi) of β; the thresholds start inside it.
    seed : int, default 0
    dtype : torch.dtype, default float64
    threshold_power : float, default 2.0
        Latent j's three thresholds start at ``log lo + (log hi − log lo) max(q_j^p, 0.05)``,
        q_j = (k − j − ½)/k: with ``p > 1`` more of them at small β, where more latents are
        active at the optimum (docs/results.md).
    """

    def __init__(
        self,
        d: int,
        k: int,
        *,
        beta_range: tuple[float, float] = DEFAULT_BETA_RANGE,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
        threshold_power: float = 2.0,
    ) -> None:
        super().__init__(
            d, k, "sqrt", "sqrt", "hinge", k, beta_range=beta_range, seed=seed, dtype=dtype,
            gate_input="log_beta",
        )  # fmt: skip
        options = {"beta_range": self.beta_range, "dtype": dtype, "gate_input": "log_beta"}
        shrink = {**options, "trend": "decreasing", "stagger": True}
        self.encoder1_gate = Gate(self.k, "none", **options)
        self.encoder2_gate = Gate(self.k, "sqrt", **shrink)
        self.decoder1_gate = Gate(self.k, "sqrt", **shrink)
        self.decoder2_gate = Gate(self.d, "none", **options)
        _freeze_inner_layers_at_identity(self)
        self.threshold_power = as_positive(threshold_power, "threshold_power")
        log_lo, log_hi = (math.log(v) for v in self.beta_range)
        q = (torch.arange(self.k, 0, -1, dtype=torch.float64) - 0.5) / self.k
        share = torch.clamp(q**self.threshold_power, min=THRESHOLD_FLOOR)
        thresholds = log_lo + (log_hi - log_lo) * share  # η₀ of latent j, descending
        for gate in self.gate_modules():
            _fix_unit_slope(gate)
            with torch.no_grad():
                gate.bias.copy_((gate.input_center - thresholds).to(gate.bias))

    def gate_modules(self) -> list[Gate]:
        """The three gates per latent: encoder, covariance, decoder."""
        return [self.encoder2_gate, self.covariance_gate_module, self.decoder1_gate]

    def config(self) -> dict:
        return {
            "class": type(self).__name__,
            "d": self.d,
            "k": self.k,
            "beta_range": list(self.beta_range),
            "threshold_power": self.threshold_power,
        }

    def keep_open(self, log_beta_min: float, latents: torch.Tensor | None = None) -> None:
        """Keep every σ_D gate open (with a gradient) below ``log_beta_min``.

        A gate σ_D(η − η₀) is shut, with zero gradient, for η ≥ η₀; one shut on the whole
        range leaves its latent dead for good. Clamping the thresholds to η₀ ≥
        ``log_beta_min`` (a projection after each step) rules that out; a threshold the
        two gates share is clamped once, at the lower bound (:meth:`open_projection`).
        ``latents``: a bool mask (k,), only those kept open (default all).
        """
        self.open_projection(log_beta_min, latents)()

    def open_projection(
        self, log_beta_min: float, latents: torch.Tensor | None = None
    ) -> Callable[[], None]:
        """:meth:`keep_open` at ``log_beta_min`` as a function of no argument, for a
        projection after every step: its bounds ``input_center − log_beta_min`` are formed
        here, as tensors (no read back from the device), so that a call is one operation
        for both gates; a latent outside ``latents`` gets no bound (+∞). It clamps the
        gates' thresholds as they are now, tied or not: form it again after they are tied
        or replaced."""
        encoder, decoder = self.encoder2_gate, self.decoder1_gate
        with torch.no_grad():
            if encoder.bias is decoder.bias:  # tied (the recipe's share_thresholds_from)
                bounds = [torch.minimum(encoder.input_center, decoder.input_center) - log_beta_min]
                biases = [encoder.bias]
            else:
                bounds = torch._foreach_sub(
                    [encoder.input_center, decoder.input_center], log_beta_min
                )
                biases = [encoder.bias, decoder.bias]
            if latents is not None:
                bounds = [torch.where(latents, bound, math.inf) for bound in bounds]

        def project() -> None:
            with torch.no_grad():
                torch._foreach_clamp_max_(biases, bounds)

        return project

    def shut_latents(self, log_beta_min: float) -> torch.Tensor:
        """Which latents are dead above ``log_beta_min``: a bool tensor ``(k,)``, True where
        the encoder's or the decoder's σ_D gate is 0 at every η ≥ ``log_beta_min`` (its
        threshold ``η₀ = input_center − bias`` at or below it), which leaves the latent
        without a gradient there."""
        with torch.no_grad():
            shut = [
                gate.input_center - gate.bias <= log_beta_min
                for gate in (self.encoder2_gate, self.decoder1_gate)
            ]
        return shut[0] | shut[1]


def one_layer_vae(d: int, k: int, *, seed: int = 0, dtype: torch.dtype = torch.float64):
    """The linear VAE of eq. 12 with one layer each (the β-VAE of :class:`LatentMRVAE`).

    A :class:`LinearVAE` with hidden = k whose inner layers ``E₂ = D₁ = I`` are frozen, so
    ``E = E₁`` and ``D = D₂``.
    """
    model = LinearVAE(d, k, hidden=k, seed=seed, dtype=dtype)
    _freeze_inner_layers_at_identity(model)
    return model


def model_from_config(config: dict, dtype: torch.dtype = torch.float64) -> LinearMRVAE:
    """Rebuild an (untrained) model from :meth:`LinearMRVAE.config`.

    Raises
    ------
    ValueError
        If ``config`` names no known class or lacks a field.
    """
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    options = dict(config)
    name = options.pop("class", None)
    try:
        if name == "LinearMRVAE":
            options["beta_range"] = tuple(options["beta_range"])
            return LinearMRVAE(**options, dtype=dtype)
        if name == "LinearVAE":
            return LinearVAE(**options, dtype=dtype)
        if name == "LatentMRVAE":
            options["beta_range"] = tuple(options["beta_range"])
            return LatentMRVAE(**options, dtype=dtype)
    except (KeyError, TypeError) as error:
        raise ValueError(f"config of {name} is incomplete or malformed: {error}") from None
    raise ValueError(
        f"config['class'] must be 'LinearMRVAE', 'LinearVAE' or 'LatentMRVAE', got {name!r}"
    )
