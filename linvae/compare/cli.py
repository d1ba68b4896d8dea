"""``python -m linvae.compare``: train one MR-VAE and β-VAEs, evaluate exactly, report.

Side effects live here (argument parsing, data loading, training loops, progress on
stderr, files); the mathematics is in :mod:`linvae.analytic`, :mod:`linvae.mrvae` and
:mod:`linvae.compare.evaluate`.

Exit codes: 0 on success (also after Ctrl-C: the report of what finished is written and
marked partial), 2 with one line on stderr for a bad flag, data set or run folder.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

import linvae
from linvae._io import atomic_write_bytes, atomic_write_text, git_revision, write_json
from linvae.analytic import moments, parse_betas
from linvae.data import load
from linvae.mrvae.gates import ACTIVATIONS, GATE_INPUTS
from linvae.mrvae.model import COVARIANCE_ACTIVATIONS, LinearMRVAE, LinearVAE, model_from_config
from linvae.mrvae.train import (
    BETA_SAMPLINGS,
    COMPILE_MODES,
    OBJECTIVES,
    ProgressBar,
    TrainConfig,
    TrainResult,
    resolve_device,
    train,
)

from . import evaluate
from .figures import write_figures
from .report import read_json, render_markdown, summarise, versions

#: Defaults of the training flags (chosen by the measurements in docs/results.md).
DEFAULTS = {
    "dataset": "digits",
    "latent": 32,
    "betas": "0.01:10:31",
    "baselines": 10,
    "objective": "sampled",
    "steps": 10000,
    "batch_size": 128,
    "lr": 1e-2,
    "device": "auto",
    "seed": 0,
    "beta_sampling": "example",
    "train_range": "0.01:10",
    "gate_input": "standardized",
    "encoder_gate": "sqrt",
    "decoder_gate": "sqrt",
    "covariance_gate": "hinge",
    "hidden": None,
    "gate_thresholds": "staggered",
}

_TRAINING_FLAGS = (
    "dataset", "latent", "betas", "baselines", "objective", "steps", "epochs", "batch_size",
    "lr", "device", "seed", "beta_sampling", "train_range", "gate_input", "encoder_gate",
    "decoder_gate", "covariance_gate", "hidden", "gate_thresholds",
)  # fmt: skip

MRVAE_WEIGHTS = "mrvae.pt"
BASELINE_WEIGHTS = "beta_vaes.pt"


class UsageError(Exception):
    """A bad flag, data set or run folder: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse prints the whole usage)
        raise UsageError(message)


def _argument_type(convert, accept, expected):
    """An argparse type: ``convert(text)`` if ``accept`` takes it, else "expected …, got …"."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _argument_type(int, lambda value: value >= 1, "a positive integer")
_count = _argument_type(int, lambda value: value >= 0, "an integer >= 0")
_positive_float = _argument_type(
    float, lambda value: math.isfinite(value) and value > 0, "a positive number"
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; training flags default to None and are resolved by DEFAULTS."""
    p = _Parser(
        prog="python -m linvae.compare",
        description="Train one linear MR-VAE and a set of β-VAEs, evaluate their exact rate "
        "and distortion on a grid of β, and report them against the analytic optimum.",
    )
    d = DEFAULTS
    p.add_argument(
        "--dataset", help=f"a data set name or file that linvae.data loads [{d['dataset']}]"
    )
    p.add_argument(
        "--latent", type=_positive_int, help=f"latent size k, capped at d [{d['latent']}]"
    )
    p.add_argument("--betas", help=f"evaluation grid LO:HI:N, log-spaced [{d['betas']}]")
    p.add_argument(
        "--baselines",
        type=_count,
        help=f"number of β-VAEs at log-spaced β over the grid's range, 0 for none [{d['baselines']}]",
    )
    p.add_argument("--objective", choices=OBJECTIVES, help=f"training objective [{d['objective']}]")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--steps", type=_positive_int, help=f"optimiser steps per model [{d['steps']}]"
    )
    budget.add_argument(
        "--epochs",
        type=_positive_int,
        help="passes over the data per model (steps = epochs × ⌈n / batch⌉)",
    )
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        help=f"examples per step (sampled) or values of β per step (exact) [{d['batch_size']}]",
    )
    p.add_argument("--lr", type=_positive_float, help=f"peak Adam learning rate [{d['lr']}]")
    p.add_argument("--device", help=f"auto, cpu, cuda or cuda:N [{d['device']}]")
    p.add_argument(
        "--seed",
        type=_count,
        help=f"seed of data subsets, weights, batches, β and noise [{d['seed']}]",
    )
    p.add_argument(
        "--beta-sampling",
        choices=BETA_SAMPLINGS,
        help=f"MR-VAE draws log β per example or per mini-batch [{d['beta_sampling']}]",
    )
    p.add_argument(
        "--train-range",
        help=f"LO:HI, the MR-VAE's training range of β [{d['train_range']}]",
    )
    p.add_argument(
        "--gate-input", choices=GATE_INPUTS, help=f"what the gates see [{d['gate_input']}]"
    )
    p.add_argument(
        "--hidden",
        type=_positive_int,
        help="width of the hidden layer of encoder and decoder [2 × the latent size k]",
    )
    p.add_argument(
        "--gate-thresholds",
        choices=("staggered", "shared"),
        help="initial thresholds of the unit gates: spread over the range (better for large k)"
        f" or one for all (better for small k) [{d['gate_thresholds']}]",
    )
    p.add_argument("--encoder-gate", choices=ACTIVATIONS, help=f"[{d['encoder_gate']}]")
    p.add_argument("--decoder-gate", choices=ACTIVATIONS, help=f"[{d['decoder_gate']}]")
    p.add_argument(
        "--covariance-gate", choices=COVARIANCE_ACTIVATIONS, help=f"[{d['covariance_gate']}]"
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        help="torch CPU threads; 1 is fastest for these small matrices [1]",
    )
    p.add_argument(
        "--compile",
        choices=COMPILE_MODES,
        help="torch.compile the training step ('graph': with CUDA graphs, GPU only; tens of "
        "seconds of compilation first, then 1.2-2.8x faster steps measured on CPU) [none]",
    )
    p.add_argument(
        "--floor",
        choices=("model", "paper", "none"),
        help="representation floor per β: of the trained gates (free for exact gates), also of "
        "the paper's gates (about a minute of L-BFGS on digits), or none [model]",
    )
    p.add_argument("--out", help="output folder [a new folder under ./runs/]")
    p.add_argument("--svg", action="store_true", help="also write the figures as SVG")
    p.add_argument("--quiet", action="store_true", help="no progress and no summary output")
    p.add_argument(
        "--from-run",
        metavar="DIR",
        help="regenerate the report of a finished run from its weights, without training",
    )
    return p


def _parse_range(text):
    parts = text.split(":")
    try:
        lo, hi = (float(v) for v in parts)
    except ValueError:
        raise UsageError(f"--train-range must be LO:HI with 0 < LO < HI, got {text!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi):
        raise UsageError(f"--train-range must be LO:HI with 0 < LO < HI, got {text!r}")
    return lo, hi


def _resolve(args) -> dict:
    """Flags with defaults filled in and checked; raises UsageError."""
    settings = {key: (getattr(args, key) if getattr(args, key) is not None else value)
                for key, value in DEFAULTS.items()}  # fmt: skip
    try:
        settings["betas"] = np.asarray(parse_betas(settings["betas"]), dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise UsageError(f"--betas: {error}") from None
    settings["train_range"] = _parse_range(settings["train_range"])
    try:
        settings["device"] = str(resolve_device(settings["device"]))
    except (TypeError, ValueError) as error:
        raise UsageError(f"--device: {error}") from None
    settings["epochs"] = args.epochs
    settings["threads"] = 1 if args.threads is None else args.threads
    settings["floor"] = "model" if args.floor is None else args.floor
    settings["compile"] = "none" if args.compile is None else args.compile
    return settings


def _new_run_folder(dataset: str) -> Path:
    stem = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{Path(dataset).stem}"
    for attempt in range(1000):
        folder = stem if attempt == 0 else stem.with_name(f"{stem.name}-{attempt}")
        try:
            folder.mkdir(parents=True, exist_ok=False)
            return folder
        except FileExistsError:
            continue
    raise UsageError(f"could not create a new run folder beside {stem}")


def _output_folder(out, dataset) -> Path:
    if out is None:
        return _new_run_folder(dataset)
    folder = Path(out)
    if (folder / "report.json").exists():
        raise UsageError(f"--out {folder} already holds a report.json; choose a new folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--out {folder}: {error.strerror or error}") from None
    return folder


def _load_data(name, seed):
    try:
        return load(name, seed=seed)
    except (TypeError, ValueError, OSError) as error:
        raise UsageError(f"--dataset {name}: {error}") from None


def _save_state(path: Path, state) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _cpu_state(model):
    return {key: value.detach().cpu() for key, value in model.state_dict().items()}


class _Models:
    """What training produced: the MR-VAE and the finished β-VAEs, with their results."""

    def __init__(self, mrvae, mrvae_result, baselines):
        self.mrvae = mrvae
        self.mrvae_result = mrvae_result
        self.baselines = baselines  # list of (beta, model, TrainResult)


def _train_all(X, settings, k, quiet) -> tuple[_Models, bool]:
    config = TrainConfig(
        steps=settings["steps"],
        batch_size=settings["batch_size"],
        lr=settings["lr"],
        objective=settings["objective"],
        beta_sampling=settings["beta_sampling"],
        beta_range=settings["train_range"],
        seed=settings["seed"],
        compile=settings["compile"],
    )
    d = X.shape[1]

    def bar(name):
        return None if quiet else ProgressBar(name)

    mrvae = LinearMRVAE(
        d,
        k,
        settings["encoder_gate"],
        settings["decoder_gate"],
        settings["covariance_gate"],
        hidden=settings["hidden"],
        staggered=settings["gate_thresholds"] == "staggered",
        gate_input=settings["gate_input"],
        beta_range=settings["train_range"],
        seed=settings["seed"],
    )
    progress = bar("MR-VAE")
    result = train(mrvae, X, config, device=settings["device"], progress=progress)
    if progress is not None:
        progress.close("interrupted" if result.interrupted else "")
    interrupted = result.interrupted
    baselines = []
    # the baselines span the evaluation grid (the paper's 10 β over 0.01–10)
    lo, hi = float(np.min(settings["betas"])), float(np.max(settings["betas"]))
    for beta in np.geomspace(lo, hi, settings["baselines"]) if settings["baselines"] else []:
        if interrupted:
            break
        model = LinearVAE(d, k, hidden=settings["hidden"], seed=settings["seed"])
        progress = bar(f"β-VAE β={beta:.3g}")
        outcome = train(
            model, X, config, beta=float(beta), device=settings["device"], progress=progress
        )
        if progress is not None:
            progress.close("interrupted" if outcome.interrupted else "")
        if outcome.interrupted:
            interrupted = True  # an unfinished β-VAE is left out of the report
            break
        baselines.append((float(beta), model, outcome))
    return _Models(mrvae, result, baselines), interrupted


def build_report(models: _Models, stats, info, settings, k, dataset_argument, partial) -> dict:
    """The report.json content: exact evaluation of every model (never sampled)."""
    betas = settings["betas"]
    mean, cov = stats.mean, stats.cov
    analytic = evaluate.analytic_curve(cov, k, betas)
    mr = evaluate.evaluate_model(models.mrvae, mean, cov, betas)
    mr["excess"] = evaluate.excess_loss(mr["loss"], analytic["loss"])
    mr_report = {
        **mr,
        "train_seconds": models.mrvae_result.seconds,
        "steps": models.mrvae_result.steps,
        "final_train_loss": models.mrvae_result.final_loss
        if math.isfinite(models.mrvae_result.final_loss)
        else None,
        "interrupted": models.mrvae_result.interrupted,
        "config": models.mrvae.config(),
        "response": evaluate.response_functions(models.mrvae, cov, k, betas),
    }
    floors = evaluate.representation_floors(
        models.mrvae.config(), cov, k, betas, mr["excess"], settings.get("floor", "model")
    )
    if "model" in floors:
        mr_report["floor"] = floors["model"]
    if "paper" in floors:
        mr_report["paper_floor"] = floors["paper"]
    baseline_reports = []
    if models.baselines:
        own = np.array([beta for beta, _, _ in models.baselines])
        optimum_own = evaluate.analytic_curve(cov, k, own)
        mr_own = evaluate.evaluate_model(models.mrvae, mean, cov, own)
        mr_report["at_baseline_betas"] = {
            "betas": own,
            "excess": evaluate.excess_loss(mr_own["loss"], optimum_own["loss"]),
        }
        for i, (beta, model, result) in enumerate(models.baselines):
            terms = evaluate.exact_terms(model, beta, mean, cov)
            baseline_reports.append(
                {
                    "beta": beta,
                    "rate": terms.rate,
                    "distortion": terms.distortion,
                    "loss": terms.loss,
                    "excess": float(
                        evaluate.excess_loss([terms.loss], [optimum_own["loss"][i]])[0]
                    ),
                    "train_seconds": result.seconds,
                    "steps": result.steps,
                }
            )
    report = {
        "linvae_version": linvae.__version__,
        "versions": versions(),
        "git_revision": git_revision(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "dataset": {
            "name": info.name,
            "n": info.n,
            "d": info.d,
            "source": info.source,
            "argument": str(dataset_argument),
        },
        "latent": k,
        "latent_requested": settings["latent"],
        "betas": betas,
        "analytic": analytic,
        "mrvae": mr_report,
        "beta_vae": baseline_reports,
        "training": {
            "objective": settings["objective"],
            "steps": settings["steps"],
            "epochs": settings["epochs"],
            "batch_size": settings["batch_size"],
            "lr": settings["lr"],
            "warmup_fraction": TrainConfig.warmup_fraction,
            "beta_sampling": settings["beta_sampling"],
            "beta_range": list(settings["train_range"]),
            "baselines": settings["baselines"],
        },
        "device": settings["device"],
        "seed": settings["seed"],
        "partial": bool(partial),
    }
    report["summary"] = summarise(report)
    return report


def _write_outputs(report, out: Path, svg: bool, baselines_state) -> None:
    formats = ("png", "svg") if svg else ("png",)
    report["files"] = {
        "weights": MRVAE_WEIGHTS,
        "baseline_weights": BASELINE_WEIGHTS if baselines_state is not None else None,
        "figures": write_figures(report, out, formats),
        "markdown": "report.md",
    }
    write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", render_markdown(report))


def _print_summary(report, out: Path) -> None:
    s = report["summary"]
    line = (
        f"MR-VAE excess over the optimum: max {s['mrvae_excess_max']:.4g}, mean "
        f"{s['mrvae_excess_mean']:.4g} nats/example ({s['mrvae_train_seconds']:.1f} s)"
    )
    print(line)
    if s["beta_vae_count"]:
        print(
            f"{s['beta_vae_count']} β-VAEs at their β: max {s['beta_vae_excess_max']:.4g}, mean "
            f"{s['beta_vae_excess_mean']:.4g} nats/example ({s['beta_vae_train_seconds']:.1f} s)"
        )
    if report["partial"]:
        print("partial: training was interrupted")
    print(f"report: {out / 'report.md'}")


def run(args) -> Path:
    """Train, evaluate and write a report; returns the output folder. Raises UsageError."""
    settings = _resolve(args)
    X, info = _load_data(settings["dataset"], settings["seed"])
    n, d = X.shape
    k = min(settings["latent"], d)
    if settings["hidden"] is None:
        settings["hidden"] = 2 * k  # measured better than k (docs/results.md)
    if settings["epochs"] is not None:
        settings["steps"] = settings["epochs"] * math.ceil(n / settings["batch_size"])
    out = _output_folder(args.out, settings["dataset"])
    torch.set_num_threads(settings["threads"])
    stats = moments(X)
    models, partial = _train_all(X, settings, k, args.quiet)
    _save_state(out / MRVAE_WEIGHTS, _cpu_state(models.mrvae))
    baselines_state = None
    if models.baselines:
        baselines_state = {
            "betas": [beta for beta, _, _ in models.baselines],
            "config": models.baselines[0][1].config(),
            "state_dicts": [_cpu_state(model) for _, model, _ in models.baselines],
        }
        _save_state(out / BASELINE_WEIGHTS, baselines_state)
    report = build_report(models, stats, info, settings, k, settings["dataset"], partial)
    report["beta_vae_training"] = [
        {"beta": beta, "final_train_loss": result.final_loss}
        for beta, _, result in models.baselines
    ]
    _write_outputs(report, out, args.svg, baselines_state)
    if not args.quiet:
        _print_summary(report, out)
    return out


def regenerate(args) -> Path:
    """``--from-run DIR``: rebuild the models from their weights, re-evaluate, rewrite."""
    given = [
        f"--{name.replace('_', '-')}" for name in _TRAINING_FLAGS if getattr(args, name) is not None
    ]
    if given:
        raise UsageError(f"--from-run takes no training flags, got {', '.join(given)}")
    source = Path(args.from_run)
    try:
        old = read_json(source / "report.json")
    except (OSError, ValueError) as error:
        raise UsageError(f"--from-run {source}: {error}") from None
    try:
        mrvae = model_from_config(old["mrvae"]["config"])
        mrvae.load_state_dict(torch.load(source / MRVAE_WEIGHTS, weights_only=True))
        baselines = []
        if old["beta_vae"]:
            state = torch.load(source / BASELINE_WEIGHTS, weights_only=True)
            for beta, entry, weights in zip(
                state["betas"], old["beta_vae"], state["state_dicts"], strict=True
            ):
                model = model_from_config(state["config"])
                model.load_state_dict(weights)
                result = TrainResult(entry["steps"], entry["train_seconds"], False, float("nan"))
                baselines.append((float(beta), model, result))
    except (OSError, KeyError, ValueError, RuntimeError) as error:
        raise UsageError(f"--from-run {source}: cannot rebuild the models: {error}") from None
    training = old["training"]
    X, info = _load_data(old["dataset"]["argument"], old["seed"])
    if (info.n, info.d) != (old["dataset"]["n"], old["dataset"]["d"]):
        raise UsageError(
            f"--from-run {source}: the data set now has (n, d) = ({info.n}, {info.d}), the run "
            f"had ({old['dataset']['n']}, {old['dataset']['d']})"
        )
    settings = {
        "betas": np.asarray(old["betas"], dtype=np.float64),
        "latent": old.get("latent_requested", old["latent"]),
        "objective": training["objective"],
        "steps": training["steps"],
        "epochs": training["epochs"],
        "batch_size": training["batch_size"],
        "lr": training["lr"],
        "beta_sampling": training["beta_sampling"],
        "train_range": tuple(training["beta_range"]),
        "baselines": training["baselines"],
        "device": old["device"],
        "seed": old["seed"],
        "floor": args.floor
        or (
            "none"
            if "floor" not in old["mrvae"]
            else "paper"
            if "paper_floor" in old["mrvae"]
            else "model"
        ),
    }
    mr = old["mrvae"]
    result = TrainResult(mr["steps"], mr["train_seconds"], mr.get("interrupted", False),
                         mr.get("final_train_loss") or float("nan"))  # fmt: skip
    models = _Models(mrvae, result, baselines)
    report = build_report(models, moments(X), info, settings, old["latent"],
                          old["dataset"]["argument"], old["partial"])  # fmt: skip
    report["regenerated_from"] = str(source)
    if "beta_vae_training" in old:
        report["beta_vae_training"] = old["beta_vae_training"]
    out = source if args.out is None else Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if out != source:
        _save_state(out / MRVAE_WEIGHTS, _cpu_state(mrvae))
        if baselines:
            atomic_write_bytes(out / BASELINE_WEIGHTS, (source / BASELINE_WEIGHTS).read_bytes())
    _write_outputs(report, out, args.svg, baselines or None)
    if not args.quiet:
        _print_summary(report, out)
    return out


def main(argv=None) -> int:
    """Entry point; returns the exit code (0, or 2 for a usage error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.from_run is not None:
            regenerate(args)
        else:
            run(args)
    except UsageError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    return 0
