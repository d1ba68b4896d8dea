"""Train one MR-VAE and β-VAE baselines, evaluate them exactly, report against the optimum.

A library with a thin command line (``python -m linvae.compare``)::

    from linvae.compare import CompareConfig, run_comparison, save_run
    comparison = run_comparison(CompareConfig(steps=2000))
    comparison.excess           # the MR-VAE's excess over the optimum at each β

Modules
-------
config
    :class:`CompareConfig`, the one home of every default, and the evaluation grids.
training
    :func:`train_models`: the MR-VAE and the β-VAEs of a config.
evaluate
    Exact rate, distortion, loss and excess of trained models; response functions; floors.
report
    :func:`build_report` (report.json) and the Markdown rendered from it.
display
    :class:`RateDistortionDisplay`, :class:`ExcessDisplay`, :class:`ResponseDisplay`: the
    figures as objects for notebooks (``from_run``, ``from_curve``, ``plot(ax=None)``).
figures
    The figures of a run folder, drawn by the displays.
run_folder
    :func:`save_run` and :func:`load_run`: the files of a run and how they are read back.
comparison
    :func:`run_comparison` (data → training → evaluation → report) and :func:`reevaluate`.
cli
    The command line: flags → CompareConfig → run folder.
"""

from .comparison import Comparison, EvaluationError, load_data, reevaluate, run_comparison
from .config import CompareConfig
from .display import ExcessDisplay, RateDistortionDisplay, ResponseDisplay
from .evaluate import BelowOptimumError, evaluate_model, exact_terms, excess_loss
from .report import build_report
from .run_folder import Run, RunFolderError, load_run, save_run
from .training import TrainedModels, train_models

__all__ = [
    "BelowOptimumError",
    "CompareConfig",
    "Comparison",
    "EvaluationError",
    "ExcessDisplay",
    "RateDistortionDisplay",
    "ResponseDisplay",
    "Run",
    "RunFolderError",
    "TrainedModels",
    "build_report",
    "evaluate_model",
    "exact_terms",
    "excess_loss",
    "load_data",
    "load_run",
    "reevaluate",
    "run_comparison",
    "save_run",
    "train_models",
]
