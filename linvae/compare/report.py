"""The comparison report: built from the trained models by exact evaluation, then rendered.

The JSON report (:func:`build_report`) is the record; the Markdown report and the figures
are rendered from it alone, so a run folder can be re-rendered without its models. It is
written by :mod:`linvae._io`'s strict serialiser: only JSON's own types and numpy numbers and
arrays, no NaN or infinity.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

import linvae
from linvae import _io
from linvae.analytic import distortion_in, rate_in
from linvae.mrvae.recipe import adam_dtype

from . import evaluate
from .config import CompareConfig
from .training import TrainedModels, train_config

#: Keys every report.json has (issue 4); the whole format: ``run_folder.REPORT_SCHEMA``.
REQUIRED_KEYS = (
    "linvae_version",
    "dataset",
    "latent",
    "betas",
    "analytic",
    "mrvae",
    "beta_vae",
    "device",
    "seed",
    "partial",
)


def read_json(path) -> dict:
    """Read a report.json; ValueError (one line) unless it is a JSON object of the run format,
    checked whole by :func:`linvae.compare.run_folder.read_report`."""
    from .run_folder import read_report

    return read_report(path)


def read_evaluated(path) -> dict:
    """:func:`read_json` of a run whose models were evaluated; ValueError (one line) for
    one whose evaluation failed after training (it says ``evaluation_error``)."""
    report = read_json(path)
    if "evaluation_error" in report:
        raise ValueError(
            f"{path} holds a run whose evaluation failed after training, so it has no curves "
            "to show: python -m linvae.compare --from-run FOLDER evaluates its weights again"
        )
    return report


def versions() -> dict:
    """Versions of python, numpy, scipy, torch and linvae."""
    return _io.versions(torch=True)


def _finite_or_none(value: float):
    return value if math.isfinite(value) else None


def _trained(result) -> dict:
    """What a model's training did, as the report records it."""
    return {
        "train_seconds": result.seconds,
        "steps": result.steps,
        "polish_seconds": result.polish_seconds,
        "polish_evaluations": result.polish_evaluations,
        "revived_latents": result.revived_latents,
        "polish_iterations": result.polish_iterations,
        "polish_form": result.polish_form,
        "unmixed_pairs": result.unmixed_pairs,
        "learning_rate": result.learning_rate,
        "final_train_loss": _finite_or_none(result.final_loss),
        "interrupted": result.interrupted,
    }


def baseline_training(models: TrainedModels, config: CompareConfig) -> dict:
    """How the β-VAEs were trained: ``form`` ("separate" or "bank", :class:`CompareConfig`'s
    ``baseline_form``), ``members`` (those that finished) and ``seconds``, their training
    time in all (a bank's: one time for all its members, each of which records its share)."""
    return {
        "form": config.resolved().baseline_form,
        "members": len(models.baselines),
        "seconds": float(sum(baseline.result.seconds for baseline in models.baselines)),
    }


def training_record(
    models: TrainedModels, info, config: CompareConfig, grid, *, grid_note: str, device: str
) -> dict:
    """The report of a comparison before its evaluation: what was trained, how, on what.

    What :func:`build_report` adds the exact evaluation to. Saved alone (with
    ``"evaluation_error"``) when the evaluation fails, so that the trained models are kept
    and ``--from-run`` can evaluate them again.

    Parameters
    ----------
    models : TrainedModels
    info : DatasetInfo
    config : CompareConfig
    grid : ndarray of shape (m,)
        The evaluation grid of β.
    grid_note : str
    device : str

    Returns
    -------
    dict
        JSON-ready: every key of report.json but the evaluated ones (``analytic``, the
        curves and terms of the models, ``summary``).
    """
    betas = np.asarray(grid, dtype=np.float64)
    return {
        "linvae_version": linvae.__version__,
        "versions": versions(),
        "git_revision": _io.git_revision(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": config.resolved().to_dict(),
        "dataset": {
            "name": info.name,
            "n": info.n,
            "d": info.d,
            "source": info.source,
            "argument": config.dataset,
        },
        "latent": config.latent,
        "betas": betas,
        "grid": grid_note,
        "mrvae": {**_trained(models.mrvae_result), "config": models.mrvae.config()},
        "beta_vae": [
            {
                "beta": baseline.beta,
                "train_seconds": baseline.result.seconds,
                "steps": baseline.result.steps,
                "final_train_loss": _finite_or_none(baseline.result.final_loss),
            }
            for baseline in models.baselines
        ],
        "beta_vae_training": baseline_training(models, config),
        "training": {
            "recipe": config.recipe,
            **train_config(config, info.n, betas).to_dict(),
            "beta_range": list(config.beta_range_for(betas)),
        },
        "device": device,
        "seed": config.seed,
        "partial": models.partial,
        "diverged": models.diverged,
    }


def build_report(
    models: TrainedModels,
    stats,
    info,
    config: CompareConfig,
    grid,
    *,
    grid_note: str,
    device: str,
    spectrum=None,
    progress: bool = False,
) -> dict:
    """The report.json content: the exact evaluation of every model, never sampled.

    Parameters
    ----------
    models : TrainedModels
    stats : Moments
        The data's mean (d,) and covariance (d, d).
    info : DatasetInfo
    config : CompareConfig
        Recorded whole under ``"config"``; the resolved training settings under
        ``"training"``.
    grid : ndarray of shape (m,)
        The evaluation grid of β.
    grid_note : str
        Which grid it is and why (:func:`linvae.analytic.beta_grid`).
    device : str
        The device the models were trained on.
    spectrum : Spectrum, optional
        Of ``stats.cov``; computed when not given.
    progress : bool
        Draw the floor fits' progress (they can take a minute).

    Returns
    -------
    dict
        JSON-ready (numpy arrays allowed): :func:`training_record` with the evaluation;
        ``summary`` holds the headline numbers.

    Raises
    ------
    BelowOptimumError
        If a model's exact loss lies below the optimum beyond round-off.
    """
    from linvae.analytic import as_spectrum, covariance_factor

    k = config.latent
    mean, cov = stats.mean, stats.cov
    spec = as_spectrum(cov if spectrum is None else spectrum)
    betas = np.asarray(grid, dtype=np.float64)
    record = training_record(models, info, config, betas, grid_note=grid_note, device=device)
    analytic = evaluate.analytic_curve(spec, k, betas)
    factor = covariance_factor(cov, spec)  # one eigendecomposition for every evaluation
    mr = evaluate.evaluate_model(models.mrvae, mean, cov, betas, factor=factor)
    above = evaluate.loss_above_constant  # the excess keeps its digits for data of tiny spread
    mr["excess"] = evaluate.excess_loss(
        above(mr, betas), above(analytic, betas), betas=betas, model="the MR-VAE"
    )
    mr["excess_per_beta"] = mr["excess"] / betas
    mr_report = {
        **mr,
        **record["mrvae"],
        "response": evaluate.response_functions(models.mrvae, spec, k, betas),
    }
    floors = evaluate.representation_floors(
        models.mrvae.config(), spec, k, betas, mr["excess"], config.floor, progress
    )
    if "model" in floors:
        mr_report["floor"] = floors["model"]
    if "paper" in floors:
        mr_report["paper_floor"] = floors["paper"]
    baseline_reports = []
    if models.baselines:
        own = np.array([baseline.beta for baseline in models.baselines])
        optimum_own = evaluate.analytic_curve(spec, k, own)
        mr_own = evaluate.evaluate_model(models.mrvae, mean, cov, own, factor=factor)
        at_excess = evaluate.excess_loss(
            above(mr_own, own), above(optimum_own, own), betas=own, model="the MR-VAE"
        )
        mr_report["at_baseline_betas"] = {
            "betas": own,
            "excess": at_excess,
            "excess_per_beta": at_excess / own,
        }
        for baseline, optimum_loss, trained in zip(
            models.baselines, above(optimum_own, own), record["beta_vae"], strict=True
        ):
            terms = evaluate.exact_terms(baseline.model, baseline.beta, mean, cov, factor=factor)
            excess = evaluate.excess_loss(
                [0.5 * terms.squared_error + baseline.beta * terms.rate],
                [optimum_loss],
                betas=[baseline.beta],
                model="the β-VAE",
            )
            excess = float(excess[0])
            baseline_reports.append(
                {
                    "beta": baseline.beta,
                    "rate": terms.rate,
                    "distortion": terms.distortion,
                    "squared_error": terms.squared_error,
                    "loss": terms.loss,
                    "excess": excess,
                    "excess_per_beta": excess / baseline.beta,
                    **{key: value for key, value in trained.items() if key != "beta"},
                }
            )
    report = {}
    for key, value in record.items():
        if key == "mrvae":
            report["analytic"] = analytic
            value = mr_report
        elif key == "beta_vae":
            value = baseline_reports
        report[key] = value
    report["summary"] = summarise(report)
    return report


def summarise(report: dict) -> dict:
    """Largest and mean excess of the MR-VAE (grid) and of the β-VAEs (own β), and times.

    Each excess twice: in nats per example, and per β (``excess/β``, the excess of the
    Lagrangian ``R + D/β`` in nats of rate), which is free of the data's scale.
    """
    mrvae = report["mrvae"]
    baselines = report["beta_vae"]
    per_beta = mrvae["excess_per_beta"]
    summary = {
        "mrvae_excess_max": float(np.max(mrvae["excess"])),
        "mrvae_excess_mean": float(np.mean(mrvae["excess"])),
        "mrvae_excess_per_beta_max": float(np.max(per_beta)),
        "mrvae_excess_per_beta_mean": float(np.mean(per_beta)),
        "mrvae_train_seconds": mrvae["train_seconds"],
        "beta_vae_count": len(baselines),
        "beta_vae_train_seconds": float(sum(b["train_seconds"] for b in baselines)),
        "beta_vae_form": report.get("beta_vae_training", {}).get("form", "separate"),
    }
    if baselines:
        excess = [b["excess"] for b in baselines]
        summary["beta_vae_excess_max"] = float(np.max(excess))
        summary["beta_vae_excess_mean"] = float(np.mean(excess))
        excess_per_beta = [b["excess_per_beta"] for b in baselines]
        summary["beta_vae_excess_per_beta_max"] = float(np.max(excess_per_beta))
        summary["beta_vae_excess_per_beta_mean"] = float(np.mean(excess_per_beta))
        at = mrvae.get("at_baseline_betas")
        if at:
            summary["mrvae_excess_at_baseline_betas_max"] = float(np.max(at["excess"]))
            summary["mrvae_excess_at_baseline_betas_mean"] = float(np.mean(at["excess"]))
            summary["mrvae_excess_per_beta_at_baseline_betas_max"] = float(
                np.max(at["excess_per_beta"])
            )
    return summary


def render_summary(report: dict) -> str:
    """The headline numbers of a report, a line each (what the command prints)."""
    s = report["summary"]
    lines = [
        f"MR-VAE excess over the optimum: max {s['mrvae_excess_per_beta_max']:.4g}, mean "
        f"{s['mrvae_excess_per_beta_mean']:.4g} excess/β (nats of rate); max "
        f"{s['mrvae_excess_max']:.4g}, mean {s['mrvae_excess_mean']:.4g} nats/example "
        f"({s['mrvae_train_seconds']:.1f} s)"
    ]
    if s["beta_vae_count"]:
        lines.append(
            f"{s['beta_vae_count']} β-VAEs at their β: max "
            f"{s['beta_vae_excess_per_beta_max']:.4g} excess/β; max "
            f"{s['beta_vae_excess_max']:.4g}, mean {s['beta_vae_excess_mean']:.4g} nats/example "
            f"({s['beta_vae_train_seconds']:.1f} s"
            f"{', one batched bank' if s.get('beta_vae_form') == 'bank' else ''})"
        )
    if report["partial"] and not report.get("diverged"):
        lines.append("partial: training was interrupted")
    return "\n".join(lines) + "\n"


def _steps(entry: dict) -> str:
    """ "3000 steps" and, after a polish, "+ L-BFGS 5.2 s"."""
    text = f"{entry['steps']} steps"
    if entry.get("polish_evaluations"):
        text += f" + L-BFGS {entry['polish_seconds']:.1f} s"
    revived = entry.get("revived_latents", 0)
    if revived:
        text += f", {revived} shut latent{'s' if revived > 1 else ''} revived"
    unmixed = entry.get("unmixed_pairs", 0)
    if unmixed:
        text += f", {unmixed} pair{'s' if unmixed > 1 else ''} of latents unmixed"
    if entry.get("learning_rate") is not None:
        text += f", Adam's peak rate {entry['learning_rate']:.3g}"
    return text


def _fmt(value, digits=4):
    return "—" if value is None else f"{value:.{digits}g}"


def _polish_words(train: dict, trained: dict) -> str:
    """The L-BFGS polish as the report's settings and the MR-VAE's training have it (older
    reports lack the newer settings and say only the iterations)."""
    iterations = train["polish_iterations"]
    if iterations is None:  # the recipe's budget, as the training resolved it
        iterations = trained.get("polish_iterations", "the model size's")
    words = f"{iterations} L-BFGS iterations"
    rounds = train.get("polish_rounds", 1)
    if rounds > 1:
        words += f" in {rounds} runs"
        if not train.get("revive"):
            words += " (the gates kept open between them)"
    weight = train.get("polish_weight")
    if weight is not None:
        unit = {"inverse": "R + D/β", "flat": "the loss", "both": "R + D/β plus the loss"}
        words += f" on {unit.get(weight, weight)}"
    if train.get("precondition_polish"):
        words += ", preconditioned per latent"
    if trained.get("polish_form") == "residual":
        words += ", the squared error as sums of squares (a spectrum too wide for the trace's"
        words += " round-off)"
    if train.get("revive") and rounds > 1:
        words += (
            ", each latent a run shut re-pointed at the residual's leading directions and "
            "opened between them"
        )
    return words


def _training_line(report: dict) -> str:
    """One sentence on how the models were trained, from the report's recipe and settings."""
    train, config = report["training"], report["mrvae"]["config"]
    lo, hi = (_fmt(value) for value in train["beta_range"])
    if train.get("recipe", "paper") == "linvae" and train.get("objective") == "sampled":
        draws = (
            "half as many examples, each with ε and −ε"
            if train.get("antithetic")
            else "one noise draw per example"
        )
        return (
            f"linvae's recipe on the sampled ELBO: one σ_D gate per latent on encoder and "
            f"decoder and a hinge on the variance; mini-batches of {train['batch_size']} "
            f"reparameterised draws ({draws}), one β each over {lo}–{hi} (log β "
            f"= log lo + (log hi − log lo)·u^{train['beta_power']:g}, u "
            f"{train['beta_sampling']}), rate estimator `{train['estimator']}`, encoder "
            f"preconditioned `{train['precondition']}` from the data (no d×d matrix), Adam lr "
            f"{_fmt(train['lr'])} over {train['steps']} steps ({train['warmup_fraction']:.0%} "
            "warm-up, cosine decay), iterates averaged from "
            f"{train['average_from']}; the β-VAEs alike, each at its β, without gates."
        )
    if train.get("recipe", "paper") == "linvae":
        precision = train.get("adam_precision", "float64")
        float32 = adam_dtype(precision, config.get("d", 0), torch.float64) == torch.float32
        products = ", its (k, d) × (d, d) products in float32" if float32 else ""
        return (
            f"linvae's recipe: one σ_D gate per latent on encoder and decoder and a hinge on "
            f"the variance (Theorem 1's construction); the exact objective at "
            f"{train['betas_per_step']} β per step over {lo}–{hi} (log β = log lo + (log hi − "
            f"log lo)·u^{train['beta_power']:g}, u stratified), "
            "the encoder whitened by the data's covariance and the decoder in the data's global "
            f"scale (scale-covariant: data aX train the model of X scaled), Adam lr "
            f"{_fmt(train['lr'])} in those units over "
            f"{train['steps']} steps ({train['warmup_fraction']:.0%} warm-up, cosine decay"
            f"{products}), then {_polish_words(train, report['mrvae'])}; the β-VAEs alike, each at its β, without gates. "
            "Training reads the data's mean and covariance and the β range, never the "
            "analytic optimum."
        )
    return (
        f"objective `{train['objective']}`, {train['steps']} steps per model, batch "
        f"{train['batch_size']}, Adam lr {_fmt(train['lr'])} with "
        f"{train['warmup_fraction']:.0%} warm-up and cosine decay; MR-VAE β ~ logUniform"
        f"({lo}, {hi}) per {train['beta_sampling']}; gates {config['encoder_gate']} / "
        f"{config['covariance_gate']} / {config['decoder_gate']} (encoder / covariance / "
        f"decoder), gate input {config['gate_input']}, hidden width {config['hidden']}."
    )


def _threads_and_compile(report: dict) -> str:
    config = report.get("config")
    if not config:
        return ""
    return f" ({config['threads']} torch thread(s), compile `{config['compile']}`)"


def _setting_lines(report: dict) -> list:
    """The report's data and training, a bullet each (before the grid's)."""
    data = report["dataset"]
    return [
        f"- Data: **{data['name']}**, n = {data['n']}, d = {data['d']}; latent k = "
        f"{report['latent']}.",
        f"- Training: {_training_line(report)}",
        f"- Device `{report['device']}`{_threads_and_compile(report)}, seed {report['seed']}, "
        f"linvae {report['linvae_version']} (git {report.get('git_revision') or 'unknown'}).",
    ]


def _unevaluated_markdown(report: dict) -> str:
    """report.md of a run whose models were trained and saved but whose evaluation failed."""
    lines = [
        "# linvae.compare: one MR-VAE and β-VAEs against the exact optimum",
        "",
        f"> **Not evaluated**: the evaluation after training failed: "
        f"{report['evaluation_error']}. The trained weights are saved in this folder; "
        "`python -m linvae.compare --from-run` on it evaluates them again.",
        "",
        *_setting_lines(report),
        f"- Grid: {len(report['betas'])} values of β ({report.get('grid', 'log-spaced')}).",
        "",
    ]
    return "\n".join(lines)


def render_markdown(report: dict) -> str:
    """The human summary of a report.json, with its figures embedded (rendered from JSON only)."""
    if report.get("evaluation_error"):
        return _unevaluated_markdown(report)
    s = report["summary"]
    data = report["dataset"]
    units = report.get("units", {})
    rate_unit, distortion_unit = units.get("rate", "nats"), units.get("distortion", "nll")
    d = data["d"]
    lines = [
        "# linvae.compare: one MR-VAE and β-VAEs against the exact optimum",
        "",
    ]
    if report.get("diverged"):
        diverged = report["diverged"]
        lines += [
            f"> **Partial run**: training of the {diverged['model']} diverged at step "
            f"{diverged['step']} (a lower learning rate helps); the numbers below are for "
            "what finished, the MR-VAE at its last finite weights.",
            "",
        ]
    elif report["partial"]:
        lines += [
            "> **Partial run**: training was interrupted (Ctrl-C or SIGTERM); the numbers "
            "below are for what finished.",
            "",
        ]
    betas = report["betas"]
    settings = _setting_lines(report)
    lines += [
        settings[0],
        f"- Grid: {len(betas)} values of β from {_fmt(betas[0])} to {_fmt(betas[-1])} "
        f"({report.get('grid', 'log-spaced')}); losses in nats per example, distortion "
        "including d/2·log 2π.",
        *settings[1:],
        "",
        "## Excess loss over the analytic optimum",
        "",
        "Excess/β is the excess of the Lagrangian R + D/β, in nats of rate: free of the data's "
        "scale (data aX at a²β give the same), so it compares across data sets. Excess in "
        "nats per example is a²-fold at scale a.",
        "",
        "| model | β evaluated | max excess/β | max excess | mean excess | training time |",
        "|---|---|---|---|---|---|",
        f"| MR-VAE (one model) | the grid ({len(betas)}) | "
        f"{_fmt(s.get('mrvae_excess_per_beta_max'))} | {_fmt(s['mrvae_excess_max'])} | "
        f"{_fmt(s['mrvae_excess_mean'])} | {s['mrvae_train_seconds']:.1f} s "
        f"({_steps(report['mrvae'])}) |",
    ]
    bank = s.get("beta_vae_form") == "bank"
    if s["beta_vae_count"]:
        lines += [
            f"| MR-VAE (one model) | the β-VAEs' β ({s['beta_vae_count']}) | "
            f"{_fmt(s.get('mrvae_excess_per_beta_at_baseline_betas_max'))} | "
            f"{_fmt(s.get('mrvae_excess_at_baseline_betas_max'))} | "
            f"{_fmt(s.get('mrvae_excess_at_baseline_betas_mean'))} | (same model) |",
            f"| {s['beta_vae_count']} β-VAEs{' (one batched bank)' if bank else ''} | each its "
            f"own β | {_fmt(s.get('beta_vae_excess_per_beta_max'))} | "
            f"{_fmt(s['beta_vae_excess_max'])} | {_fmt(s['beta_vae_excess_mean'])} | "
            f"{s['beta_vae_train_seconds']:.1f} s {'at once' if bank else 'in all'} |",
        ]
    lines += [""]
    if report["beta_vae"]:
        if bank:
            lines += [
                "The β-VAEs were trained at once as one batched bank (a leading member axis, "
                "each member at its own β): each row's time is its share, the bank's over "
                f"{len(report['beta_vae'])}.",
                "",
            ]
        lines += [
            f"| β-VAE at β | rate ({rate_unit}) | distortion ({distortion_unit}) | loss | excess "
            "| MR-VAE excess at β | time |",
            "|---|---|---|---|---|---|---|",
        ]
        at = report["mrvae"].get("at_baseline_betas") or {
            "excess": [None] * len(report["beta_vae"])
        }
        for baseline, mr_excess in zip(report["beta_vae"], at["excess"], strict=True):
            rate = float(rate_in(baseline["rate"], rate_unit))
            distortion = float(
                distortion_in(
                    baseline["distortion"],
                    d,
                    distortion_unit,
                    units.get("peak", 1.0),
                    squared_error=baseline.get("squared_error"),
                )
            )
            lines.append(
                f"| {_fmt(baseline['beta'])} | {_fmt(rate)} | "
                f"{_fmt(distortion, 6)} | {_fmt(baseline['loss'], 6)} | "
                f"{_fmt(baseline['excess'])} | {_fmt(mr_excess)} | "
                f"{baseline['train_seconds']:.1f} s |"
            )
        lines += [""]
    mrvae = report["mrvae"]
    if "floor" in mrvae:
        floor = np.asarray(mrvae["floor"]["floor"])
        part = np.asarray(mrvae["floor"]["optimisation_part"])
        lines += [
            "## Where the MR-VAE's excess comes from",
            "",
            "The representation floor is the excess of the gate family's best single parameter "
            "set, fitted to the analytic optimum over the grid (linvae.audit.floor); it is an "
            "upper bound on the true floor, so the optimisation part (excess − floor) can dip "
            "slightly below 0.",
            "",
            "| gates (encoder / decoder / covariance) | max floor | mean floor | fit time |",
            "|---|---|---|---|",
        ]
        for entry in (mrvae["floor"], mrvae.get("paper_floor")):
            if entry is not None:
                g = entry["gates"]
                lines.append(
                    f"| {g['encoder_gate']} / {g['decoder_gate']} / {g['covariance_gate']} | "
                    f"{_fmt(float(np.max(entry['floor'])))} | "
                    f"{_fmt(float(np.mean(entry['floor'])))} | {entry['seconds']:.1f} s |"
                )
        lines += [
            "",
            f"Optimisation part of the trained model: max {_fmt(float(np.max(part)))}, mean "
            f"{_fmt(float(np.mean(part)))} nats (floor max {_fmt(float(np.max(floor)))}).",
            "",
        ]
    figures = report.get("files", {}).get("figures", {})
    titles = {
        "rate_distortion": "Rate-distortion plane",
        "excess": "Excess loss against β",
        "responses": "Learned against analytic response functions",
        "floor": "Excess = representation floor + optimisation part",
    }
    for key, title in titles.items():
        if key in figures and figures[key].get("png"):
            lines += [f"## {title}", "", f"![{title}]({figures[key]['png']})", ""]
    return "\n".join(lines)
