"""``python -m linvae.compare``: argv → :class:`CompareConfig` → a run folder, and a summary.

Every default is :class:`~linvae.compare.config.CompareConfig`'s: the parser shows them in
its help and passes on only the flags that were given.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from pathlib import Path

import numpy as np

from linvae._checks import resolve_device
from linvae._cli import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    UsageError,
    beta_range,
    command_parser,
    count,
    positive_float,
    positive_int,
    program,
    run_command,
    user_input,
)
from linvae._signals import interrupts_held
from linvae.analytic import DISTORTION_UNITS, RATE_UNITS, check_peak
from linvae.mrvae.gates import ACTIVATIONS, GATE_INPUTS
from linvae.mrvae.model import COVARIANCE_ACTIVATIONS
from linvae.mrvae.train import BETA_SAMPLINGS, COMPILE_MODES, OBJECTIVES

from .comparison import EvaluationError, load_data, prepare, reevaluate, run_comparison
from .config import BASELINE_FORMS, FLOORS, RECIPE_DEFAULTS, RECIPES, CompareConfig
from .report import render_summary
from .run_folder import check_space, load_run, locked, prepare_folder, save_run_or_rescue

PROG = program("compare")


def _pair_or_auto(text):
    return "auto" if text == "auto" else beta_range(text)


#: The flag of each CompareConfig field: (argparse options, help). Defaults are the config's.
_FLAGS = {
    "dataset": ({}, "a data set name or a file that linvae.data loads"),
    "n": ({"type": positive_int}, "examples to load (a seeded subset; patches: how many)"),
    "patch_size": ({"type": positive_int}, "side of the square patches of 'patches'"),
    "latent": ({"type": positive_int}, "latent size k"),
    "betas": ({}, "evaluation grid: full (from the spectrum), paper, LO:HI:N or B1,B2,..."),
    "baselines": ({"type": count}, "number of β-VAEs, log-spaced over the grid, 0 for none"),
    "baseline_form": (
        {"choices": BASELINE_FORMS},
        "how the β-VAEs train: separate (one after another) or bank (batched, all at once; "
        "the linvae recipe)",
    ),
    "recipe": ({"choices": RECIPES}, "how models are built and trained: linvae's or the paper's"),
    "steps": ({"type": positive_int}, "optimiser steps per model"),
    "epochs": ({"type": positive_int}, "paper recipe: passes over the data (sets the steps)"),
    "batch_size": ({"type": positive_int}, "examples (sampled) or β (exact) per step"),
    "lr": ({"type": positive_float}, "peak Adam learning rate"),
    "train_range": ({"type": _pair_or_auto}, "the MR-VAE's β range: LO:HI, or auto"),
    "polish": (
        {"type": count},
        "linvae recipe, exact objective: L-BFGS iterations (default: by the model's size, "
        "1500 from d·d·k ≈ 2.7e5 on, up to 15000 below)",
    ),
    "objective": ({"choices": OBJECTIVES}, "training objective (sampled: mini-batches)"),
    "beta_sampling": ({"choices": BETA_SAMPLINGS}, "paper recipe: log β drawn per ..."),
    "gate_input": ({"choices": GATE_INPUTS}, "paper recipe: what the gates see"),
    "encoder_gate": ({"choices": ACTIVATIONS}, "paper recipe: gate of both encoder layers"),
    "decoder_gate": ({"choices": ACTIVATIONS}, "paper recipe: gate of both decoder layers"),
    "covariance_gate": ({"choices": COVARIANCE_ACTIVATIONS}, "paper recipe: variance gate"),
    "hidden": ({"type": positive_int}, "paper recipe: hidden width of encoder and decoder"),
    "gate_thresholds": ({"choices": ("staggered", "shared")}, "paper recipe: initial thresholds"),
    "device": ({}, "auto, cpu, cuda or cuda:N"),
    "seed": ({"type": count}, "seed of data subsets, weights, batches, β and noise"),
    "threads": ({"type": positive_int}, "torch CPU threads while training"),
    "compile": ({"choices": COMPILE_MODES}, "torch.compile the training step"),
    "floor": ({"choices": FLOORS}, "representation floors in the report"),
}
_TRAINING = tuple(name for name in _FLAGS if name != "floor")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _text(value) -> str:
    return ":".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _shown(name: str, default) -> str:
    """A setting's default for the help: its own, or each recipe's when it is None."""
    if default is not None or name not in RECIPE_DEFAULTS["linvae"]:
        return _text(default)
    return "; ".join(
        f"{recipe}: {_text(values[name])}" for recipe, values in RECIPE_DEFAULTS.items()
    )


def add_config_flags(parser, *, skip=(), only=None) -> None:
    """Add one flag per :class:`CompareConfig` field to ``parser``: those named in ``only``
    (every field when None), but none named in ``skip``.

    An absent flag is absent from the parsed namespace (``argparse.SUPPRESS``), so
    :func:`config_from_args` keeps the config's own default; the help shows it.
    """
    unknown = set(only or ()) - set(_FLAGS)
    if unknown:
        raise ValueError(f"only names no CompareConfig field: {sorted(unknown)}")
    defaults = CompareConfig()
    names = [
        field.name
        for field in dataclasses.fields(CompareConfig)
        if (only is None or field.name in only) and field.name not in skip
    ]
    budget_flags = {"steps", "epochs"} & set(names)
    # argparse cannot print the usage of an empty group: make it only when it has flags.
    budget = parser.add_mutually_exclusive_group() if budget_flags else parser
    for name in names:
        options, text = _FLAGS[name]
        where = budget if name in budget_flags else parser
        where.add_argument(
            _flag(name), **options, default=argparse.SUPPRESS,
            help=f"{text} [{_shown(name, getattr(defaults, name))}]",
        )  # fmt: skip


def build_parser():
    """The parser: one flag per CompareConfig field, and where the run goes."""
    parser = command_parser("compare")
    add_config_flags(parser)
    parser.add_argument("--out", default=None, help="output folder [a new folder under ./runs/]")
    parser.add_argument("--svg", action="store_true", default=False, help="also write SVG figures")
    parser.add_argument(
        "--units", choices=RATE_UNITS, default="nats", help="rate in report.md and figures [nats]"
    )
    parser.add_argument(
        "--distortion",
        choices=DISTORTION_UNITS,
        default="nll",
        help="distortion in report.md and figures: nll (nats), mse per dimension, psnr [nll]",
    )
    parser.add_argument(
        "--peak",
        type=positive_float,
        default=1.0,
        help="the largest value of a datum, for psnr; at least the data's largest |x| [1]",
    )
    parser.add_argument(
        "--excess",
        choices=("per-beta", "nats"),
        default="per-beta",
        help="unit of the excess figure: excess/β (nats of rate, free of the data's scale) or "
        "nats per example [per-beta]",
    )
    parser.add_argument("--quiet", action="store_true", default=False, help="print nothing")
    parser.add_argument(
        "--from-run",
        metavar="DIR",
        default=None,
        help="re-evaluate a finished run from its weights, without training",
    )
    return parser


def config_from_args(args, base: CompareConfig | None = None) -> CompareConfig:
    """``base`` (the defaults when None) with the config flags that were given."""
    given = {name: getattr(args, name) for name in _FLAGS if hasattr(args, name)}
    try:
        return dataclasses.replace(base or CompareConfig(), **given)
    except (TypeError, ValueError) as error:
        field = str(error).split()[0]
        raise UsageError(f"{_flag(field)}: {error}" if field in _FLAGS else str(error)) from None


def _from_run(args, stack):
    given = [_flag(name) for name in _TRAINING if hasattr(args, name)]
    if given:
        raise UsageError(f"--from-run takes no training flags, got {', '.join(given)}")
    if not args.from_run.strip():
        raise UsageError("--from-run: an empty path: give a run folder")
    run = user_input("--from-run", load_run, args.from_run)
    if hasattr(args, "floor"):
        run.config = dataclasses.replace(run.config, floor=args.floor)
    out = run.folder if args.out is None else Path(args.out)
    if out != run.folder:
        out = user_input("--out", prepare_folder, args.out, run.config.dataset)
    user_input("--out", stack.enter_context, locked(out))
    data = None
    if args.distortion == "psnr":
        data = user_input("--from-run", load_data, run.config)
        _check_peak(args, data[0])
    return user_input("--from-run", reevaluate, run, data), out


def _check_peak(args, X) -> None:
    """``--peak`` against the data's largest |x|, for ``--distortion psnr``."""
    if args.distortion == "psnr":
        user_input("--peak", check_peak, args.peak, float(np.max(np.abs(X))))


def _train(args, stack):
    config = config_from_args(args)
    user_input("--device:", resolve_device, config.device)
    problem = user_input(f"--dataset {config.dataset}:", prepare, config)
    _check_peak(args, problem.X)
    for warning in problem.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    out = user_input("--out", prepare_folder, args.out, config.dataset)
    user_input("--out", stack.enter_context, locked(out))
    user_input("--out", check_space, out, config, problem.X.shape[1])
    try:
        comparison = run_comparison(
            config, problem=problem, progress=not args.quiet, guard_signals=True
        )
    except EvaluationError as error:  # saved as any run is, its report says what failed
        comparison = error.comparison
    return comparison, out


def run(args) -> int:
    """Train (or re-evaluate ``--from-run``), write the run folder, print the summary.

    Exit status: 0 done; 1 training diverged, the evaluation after training failed (the
    weights and the training record were saved), or the run could not be written where
    asked (it was saved elsewhere); 2 a bad flag, data set or folder; 130 interrupted
    (partial).
    """
    formats = ("png", "svg") if args.svg else ("png",)
    with contextlib.ExitStack() as stack:
        if args.from_run is not None:
            try:
                comparison, out = _from_run(args, stack)
            except EvaluationError as error:
                print(f"{PROG}: error: {error}; nothing was written", file=sys.stderr)
                return EXIT_FAILED
        else:
            comparison, out = _train(args, stack)
        comparison.report["units"] = {
            "rate": args.units,
            "distortion": args.distortion,
            "peak": args.peak,
            "excess": args.excess,
        }
        with interrupts_held("interrupt received: the run is being written, then linvae stops"):
            written, failure = user_input(
                "--out", save_run_or_rescue, out, comparison.report, comparison.models, formats
            )
    report = comparison.report
    evaluation_error = report.get("evaluation_error")
    if not args.quiet:
        summary = "" if evaluation_error else render_summary(report)
        print(summary + f"report: {written / 'report.md'}")
    if failure is not None:
        print(f"{PROG}: error: cannot write to {out} ({failure}); the run is in {written}",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    if evaluation_error:
        print(
            f"{PROG}: error: the evaluation after training failed: {evaluation_error}; nothing "
            f"trained is lost: the weights are in {written}, and --from-run evaluates them again",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if report.get("diverged") and args.from_run is None:
        diverged = report["diverged"]
        print(
            f"{PROG}: error: training diverged at step {diverged['step']} of the "
            f"{diverged['model']} (lower --lr); the report of what finished is in {written}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_INTERRUPTED if report["partial"] and args.from_run is None else EXIT_OK


def main(argv=None) -> int:
    """Entry point; returns the exit status (see :func:`run`)."""
    return run_command(PROG, build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
