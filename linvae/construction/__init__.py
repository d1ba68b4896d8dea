"""Theorem 1's gated construction in float64: the layers that reproduce the optimum.

numpy and scipy only; :mod:`linvae.symbolic` proves the same construction in sympy, and
:mod:`linvae.mrvae.floor` starts the MR-VAE's representation floor from it.

Modules
-------
gates
    σ_E (sigmoid), σ_D (sqrt) and the hinge, elementwise in float64.
layers
    :class:`GatedLayer` and the two-layer constructions of Theorem 1 (eqs. 25-39), for a
    fixed decoder (reading (a)) and for the joint optimum (reading (b)).
fit
    The best product of two gates found for a response function (a numeric witness).
"""

from .fit import GateFit, best_gate_product_fit
from .gates import GATES, gate_function, hinge, sigmoid, sqrt_gate
from .layers import (
    GatedLayer,
    constant_layer,
    covariance_response_layers,
    decoder_response_layers,
    encoder_response_layers,
    gated_weight,
    joint_covariance_layers,
    joint_encoder_layers,
    two_layer,
)

__all__ = [
    "GATES",
    "GateFit",
    "GatedLayer",
    "best_gate_product_fit",
    "constant_layer",
    "covariance_response_layers",
    "decoder_response_layers",
    "encoder_response_layers",
    "gate_function",
    "gated_weight",
    "hinge",
    "joint_covariance_layers",
    "joint_encoder_layers",
    "sigmoid",
    "sqrt_gate",
    "two_layer",
]
