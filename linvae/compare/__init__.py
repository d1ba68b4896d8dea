"""Train one MR-VAE and β-VAE baselines, evaluate them exactly, report against the optimum.

``python -m linvae.compare --help`` lists the flags; :func:`run` and :func:`regenerate`
are the same two paths from Python.

Modules
-------
evaluate
    Exact rate, distortion, loss and excess of trained models; response functions.
report
    The strict JSON report, atomic writes, the Markdown summary.
figures
    The rate-distortion plane, the excess loss, the response functions.
cli
    The command line.
"""

from .cli import main, regenerate, run
from .evaluate import BelowOptimumError, evaluate_model, exact_terms, excess_loss

__all__ = [
    "BelowOptimumError",
    "evaluate_model",
    "exact_terms",
    "excess_loss",
    "main",
    "regenerate",
    "run",
]
