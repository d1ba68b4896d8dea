"""Gates: the per-unit scaling of pre-activations by a function of log β (appendix B.2).

A gate of ``features`` output units computes, for a batch of η = log β,

.. math::

    s(\\eta) = \\mathrm{act}(w \\odot g(\\eta) + b), \\qquad s \\in \\mathbb{R}^{n \\times \\text{features}},

with one ``(w, b)`` pair per unit (the appendix's Listing 1: ``nn.Linear(1, features)``
followed by an activation), and multiplies a layer's pre-activations by it. ``g`` is the
identity (the paper's Algorithm 1) or the standardisation of η over the uniform sampling
range (zero mean, unit variance; the authors' public code).

Activations
-----------
``"sigmoid"``
    σ_E(x) = 1 / (1 + e^{-x}) (eq. 25–26, 30–31).
``"sqrt"``
    σ_D(x) = max(0, 1 − eˣ)^{1/2} (eq. 37–38); exactly 0 for x ≥ 0. Its derivative
    −eˣ / (2 σ_D(x)) diverges as x → 0⁻; :func:`sqrt_gate` caps it (see there).
``"hinge"``
    min(1, eˣ) = 1 − σ_D(x)², the complement of the sqrt gate. Not in the paper: it makes
    the joint optimum of the posterior variance, C*(β) = min(1, β/λ), exactly
    representable (a sigmoid cannot: its knee is too soft by a factor 2 at β = λ).
``"film"``
    FiLM (Perez et al., 2018): an affine scale ``w g + b`` and an affine shift
    ``w' g + b'`` (appendix D's ablation). The shift makes a layer affine in its input.
``"none"``
    No gate: scale 1 and no parameters (the β-VAE).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from linvae._checks import as_beta_range, as_choice, as_int

#: The activations a gate accepts.
ACTIVATIONS = ("sigmoid", "sqrt", "hinge", "film", "none")

#: How the gate sees η: ``"log_beta"`` (identity) or ``"standardized"`` over the range.
GATE_INPUTS = ("log_beta", "standardized")

#: How a gate's initial value varies with β.
TRENDS = ("flat", "decreasing", "increasing")

#: The default sampling range of β for training, (0.01, 10) as in the paper (appendix C.1).
DEFAULT_BETA_RANGE = (0.01, 10.0)

# The initial pre-activation of each activation: well inside the gate's open range, so
# that every gate starts trainable (a sqrt gate started at x >= 0 is 0 with zero gradient).
_INITIAL_PREACTIVATION = {
    "sigmoid": 0.0,  # σ(0) = 1/2, the steepest point
    "sqrt": -math.log(2.0),  # σ_D(-log 2) = 2^{-1/2}
    "hinge": -math.log(2.0),  # min(1, 1/2) = 1/2
    "film": 1.0,  # unit scale
}


class _SqrtGate(torch.autograd.Function):
    """σ_D(x) = max(0, 1 − eˣ)^{1/2} with a capped derivative (eq. 37–38)."""

    @staticmethod
    def forward(ctx, x, min_value):
        y = torch.sqrt(torch.clamp(-torch.expm1(x), min=0.0))
        ctx.save_for_backward(x, y)
        ctx.min_value = min_value
        return y

    @staticmethod
    def backward(ctx, grad_output):
        x, y = ctx.saved_tensors
        # dσ_D/dx = −eˣ / (2 σ_D(x)) for x < 0, and 0 where the gate is closed (x >= 0).
        slope = -torch.exp(x) / (2.0 * torch.clamp(y, min=ctx.min_value))
        slope = torch.where(y > 0, slope, torch.zeros_like(slope))
        return grad_output * slope, None


def sqrt_gate(x: torch.Tensor) -> torch.Tensor:
    """The sqrt gate σ_D(x) = max(0, 1 − eˣ)^{1/2} of eq. 37–38, elementwise.

    Parameters
    ----------
    x : Tensor of any shape
        Pre-activations of the gate.

    Returns
    -------
    Tensor of the shape of ``x``
        Values in [0, 1): exactly 0 for x >= 0.

    Notes
    -----
    The exact derivative −eˣ / (2 σ_D(x)) diverges as x → 0⁻. The backward pass divides
    by max(σ_D(x), √ε) instead (ε the dtype's machine epsilon), which equals the exact
    derivative wherever σ_D(x) >= √ε, i.e. for x < log(1 − ε) ≈ −ε, and bounds it by
    1 / (2√ε) closer to 0. The derivative is 0 for x >= 0 (the gate is closed).
    """
    min_value = math.sqrt(torch.finfo(x.dtype).eps)
    return _SqrtGate.apply(x, min_value)


def hinge_gate(x: torch.Tensor) -> torch.Tensor:
    """min(1, eˣ) = 1 − σ_D(x)², elementwise, computed as exp(min(x, 0)) (never 0)."""
    return torch.exp(torch.clamp(x, max=0.0))


def sigmoid_gate(x: torch.Tensor) -> torch.Tensor:
    """σ_E(x) = 1 / (1 + e^{-x}) of eq. 25–26, elementwise."""
    return torch.sigmoid(x)


_SCALE_FUNCTIONS = {
    "sigmoid": sigmoid_gate,
    "sqrt": sqrt_gate,
    "hinge": hinge_gate,
    "film": lambda x: x,
}


def gate_input_affine(
    gate_input: str, beta_range: tuple[float, float] = DEFAULT_BETA_RANGE
) -> tuple[float, float]:
    """The map η ↦ (η − center) / scale that a gate applies before its affine layer.

    Parameters
    ----------
    gate_input : {"log_beta", "standardized"}
        ``"log_beta"``: identity, (center, scale) = (0, 1). ``"standardized"``: the mean
        and standard deviation of η ~ Uniform(log lo, log hi), i.e. center = (log lo +
        log hi)/2 and scale = (log hi − log lo)/√12.
    beta_range : (float, float)
        (lo, hi) with 0 < lo < hi, the sampling range of β.

    Returns
    -------
    (float, float)
        ``(center, scale)``.
    """
    as_choice(gate_input, "gate_input", GATE_INPUTS)
    lo, hi = as_beta_range(beta_range)
    if gate_input == "log_beta":
        return 0.0, 1.0
    log_lo, log_hi = math.log(lo), math.log(hi)
    return (log_lo + log_hi) / 2.0, (log_hi - log_lo) / math.sqrt(12.0)


#: Staggered thresholds span the range from its top down to this fraction above its bottom.
STAGGER_BOTTOM = 0.15


def _initial_lines(activation, trend, beta_range, features, stagger):
    """Per-unit (slope in η, pre-activation at the middle of the log range) of a new gate.

    The initial pre-activation is x(η) = slope (η − anchor) + offset: the anchor is where a
    sigmoid gate is ½, a hinge gate reaches 1 and a sqrt gate nearly closes (offset −0.1).
    """
    lo, hi = as_beta_range(beta_range)
    log_lo, log_hi = math.log(lo), math.log(hi)
    mid = (log_lo + log_hi) / 2.0
    if trend == "flat" or activation == "film":
        value = _INITIAL_PREACTIVATION[activation]
        return torch.zeros(features, dtype=torch.float64), torch.full(
            (features,), value, dtype=torch.float64
        )
    sign = 1.0 if trend == "increasing" else -1.0
    slope = {"sigmoid": 0.5 * sign, "hinge": sign, "sqrt": -0.5 * sign}[activation]
    offset = -0.1 if activation == "sqrt" else 0.0
    if stagger:
        bottom = log_lo + STAGGER_BOTTOM * (log_hi - log_lo)
        anchors = torch.linspace(log_hi, bottom, features, dtype=torch.float64)
    elif activation == "sqrt":
        anchors = torch.full(
            (features,), log_hi if trend == "decreasing" else log_lo, dtype=torch.float64
        )
    else:
        anchors = torch.full((features,), mid, dtype=torch.float64)
    return torch.full((features,), slope, dtype=torch.float64), slope * (mid - anchors) + offset


class Gate(nn.Module):
    """Per-unit gate of a layer's pre-activations by a function of η = log β (Listing 1).

    Parameters
    ----------
    features : int
        Number of output units gated (one (w, b) pair each).
    activation : {"sigmoid", "sqrt", "hinge", "film", "none"}
        The gate's activation (see the module docstring).
    gate_input : {"standardized", "log_beta"}
        Whether the affine map sees η standardised over ``beta_range`` or η itself.
    beta_range : (float, float)
        The training range of β, used by the standardisation.
    dtype : torch.dtype
        Floating dtype of the parameters.

    trend : {"decreasing", "increasing", "flat"}, default "flat"
        How the initial gate varies with β (see Notes).
    stagger : bool, default False
        Give unit j its own initial threshold, log-spaced from the top of the range down
        to 15% above its bottom (see Notes).

    Notes
    -----
    Initialisation, as a function of η (the same for both gate inputs):

    - ``"flat"``: w = 0 and the gate open with a nonzero gradient: σ(0) = 1/2,
      σ_D(−log 2) = 2^{-1/2}, min(1, e^{−log 2}) = 1/2, FiLM scale 1 and shift 0.
    - ``"decreasing"`` / ``"increasing"``: the sign of Theorem 1's construction (encoder
      and decoder gates close as β grows, eq. 27 and 36; the covariance opens, eq. 29).
      sigmoid: x = ∓½(η − η_mid) (½ at the middle of the range, ≈ 0.85 and 0.15 at its
      ends); sqrt: x = ±½(η − η_end) − 0.1, open on the whole range and nearly closed
      (0.31) at its far end η_end; hinge: x = ±(η − η_mid) (slope 1 as in eq. 32).
      A sqrt gate started flat is pushed shut by the large β of the range before its unit
      has learned a direction, and a closed sqrt gate has no gradient: the unit is dead.
      Started decreasing, it can be shut at large β and open at small β at once.
    - ``stagger=True``: the anchors (sigmoid ½, hinge 1, sqrt nearly shut) of the units are
      spread over the range instead of shared, as Theorem 1's construction spreads
      ``s_i = 2 log S_ii`` and ``q_i = −ξ_i`` over the spectrum. A unit reserved for small β
      then feels no pull to collapse from the large β, where it is shut.
    """

    def __init__(
        self,
        features: int,
        activation: str = "sigmoid",
        *,
        gate_input: str = "standardized",
        beta_range: tuple[float, float] = DEFAULT_BETA_RANGE,
        dtype: torch.dtype = torch.float64,
        trend: str = "flat",
        stagger: bool = False,
    ) -> None:
        super().__init__()
        as_choice(trend, "trend", TRENDS)
        as_choice(activation, "activation", ACTIVATIONS)
        self.features = as_int(features, "features", minimum=1)
        self.activation = activation
        self.gate_input = gate_input
        center, scale = gate_input_affine(gate_input, beta_range)
        self.register_buffer("input_center", torch.tensor(center, dtype=dtype))
        self.register_buffer("input_scale", torch.tensor(scale, dtype=dtype))
        if activation == "none":
            return
        slope, value_at_mid = _initial_lines(activation, trend, beta_range, features, stagger)
        # x(η) = slope (η − η_mid) + value_at_mid = w (η − center)/scale + b
        mid = sum(math.log(v) for v in as_beta_range(beta_range)) / 2.0
        self.weight = nn.Parameter((slope * scale).to(dtype))
        self.bias = nn.Parameter((value_at_mid + slope * (center - mid)).to(dtype))
        if activation == "film":
            self.shift_weight = nn.Parameter(torch.zeros(features, dtype=dtype))
            self.shift_bias = nn.Parameter(torch.zeros(features, dtype=dtype))

    @property
    def has_shift(self) -> bool:
        """Whether the gate adds an η-dependent shift (FiLM) to the pre-activations."""
        return self.activation == "film"

    def _input(self, log_beta: torch.Tensor) -> torch.Tensor:
        """g(η) of shape (n, 1) from η of shape (n,)."""
        log_beta = log_beta.to(self.input_center.dtype)
        return ((log_beta - self.input_center) / self.input_scale).unsqueeze(-1)

    def scale(self, log_beta: torch.Tensor) -> torch.Tensor:
        """The multiplicative gate s(η) = act(w g(η) + b), of shape (n, features), η of shape (n,)."""
        if self.activation == "none":
            return torch.ones(
                (*log_beta.shape, self.features),
                dtype=self.input_center.dtype,
                device=self.input_center.device,
            )
        return _SCALE_FUNCTIONS[self.activation](self.weight * self._input(log_beta) + self.bias)

    def shift(self, log_beta: torch.Tensor) -> torch.Tensor | None:
        """The additive FiLM shift w' g(η) + b' of shape (n, features), or None for other gates."""
        if not self.has_shift:
            return None
        return self.shift_weight * self._input(log_beta) + self.shift_bias

    def forward(self, pre_activations: torch.Tensor, log_beta: torch.Tensor) -> torch.Tensor:
        """Gate pre-activations of shape (n, features) with η of shape (n,), per example."""
        if self.activation == "none":
            return pre_activations
        gated = self.scale(log_beta) * pre_activations
        shift = self.shift(log_beta)
        return gated if shift is None else gated + shift
