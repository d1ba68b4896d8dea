"""Symbolic verification of appendix A: every claim of the paper with a computed verdict.

Modules
-------
claims
    The :class:`Claim` record and the rule that turns checks into a verdict.
algebra
    The linear VAE in sympy: exact expectations, KL, the trace formulas.
appendix_a1
    Eqs. 14-23 re-derived (KL, likelihood, gradients, critical points, optimum).
water_filling
    Rate and distortion at the optimum and reverse water-filling.
gates, constructions
    σ_E, σ_D and the hinge in numpy and sympy; Theorem 1's gated layers in float64.
theorem1
    Theorem 1 step by step, and its two readings (fixed decoder / joint optimum).
gate_fit
    Numeric witnesses: the best gate product found for a response function.
report
    Run all claims; table, JSON and Markdown rendering.
"""

from linvae.symbolic.claims import VERDICTS, Claim
from linvae.symbolic.constructions import (
    GatedLayer,
    covariance_response_layers,
    decoder_response_layers,
    encoder_response_layers,
    gated_weight,
    joint_covariance_layers,
    joint_encoder_layers,
    two_layer,
)
from linvae.symbolic.gates import hinge, sigmoid, sqrt_gate
from linvae.symbolic.report import ALL_CLAIMS, run_claims

__all__ = [
    "ALL_CLAIMS",
    "VERDICTS",
    "Claim",
    "GatedLayer",
    "covariance_response_layers",
    "decoder_response_layers",
    "encoder_response_layers",
    "gated_weight",
    "hinge",
    "joint_covariance_layers",
    "joint_encoder_layers",
    "run_claims",
    "sigmoid",
    "sqrt_gate",
    "two_layer",
]
