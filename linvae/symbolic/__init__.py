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
gates
    σ_E, σ_D and the hinge in sympy (their float64 twins and Theorem 1's gated layers in
    float64 are :mod:`linvae.construction`).
theorem1
    Theorem 1 step by step, and its two readings (fixed decoder / joint optimum).
report
    Run all claims; table, JSON and Markdown rendering.
"""

from linvae.symbolic.claims import VERDICTS, Claim
from linvae.symbolic.report import ALL_CLAIMS, run_claims

__all__ = ["ALL_CLAIMS", "VERDICTS", "Claim", "run_claims"]
