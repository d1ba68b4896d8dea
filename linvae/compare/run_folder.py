"""A comparison's run folder: the files it holds, how they are written and read back.

One folder per run::

    report.json    the record (strict JSON): every number, the config, versions
    report.md      the human summary, rendered from report.json alone
    mrvae.pt       the MR-VAE's weights (torch, read with weights_only=True)
    beta_vaes.pt   the β-VAEs' weights, when there are any
    *.png, *.svg   the figures, rendered from report.json alone

Everything here is written atomically. ``python -m linvae.compare --from-run``, ``python -m
linvae.audit RUN`` and the benchmarks read a run through :func:`load_run` only.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from linvae._io import atomic_write_bytes, atomic_write_text, write_json
from linvae.mrvae.model import model_from_config
from linvae.mrvae.train import TrainResult

from .config import CompareConfig
from .figures import figure_files, write_figures
from .report import read_json, render_markdown
from .training import Baseline, TrainedModels

REPORT_JSON = "report.json"
REPORT_MARKDOWN = "report.md"
MRVAE_WEIGHTS = "mrvae.pt"
BASELINE_WEIGHTS = "beta_vaes.pt"


class RunFolderError(ValueError):
    """A run folder that cannot be used: missing, unreadable, or holding an unknown format."""


@dataclass
class Run:
    """A run read back from its folder: the report, the config and the rebuilt models."""

    folder: Path
    report: dict
    config: CompareConfig
    models: TrainedModels


def new_run_folder(dataset: str, root="runs") -> Path:
    """A new, empty folder ``root/<date>-<time>-<data set>`` (a suffix when taken)."""
    stem = Path(root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{Path(dataset).stem}"
    for attempt in range(1000):
        folder = stem if attempt == 0 else stem.with_name(f"{stem.name}-{attempt}")
        try:
            folder.mkdir(parents=True, exist_ok=False)
            return folder
        except FileExistsError:
            continue
    raise RunFolderError(f"could not create a new run folder beside {stem}")


def prepare_folder(out, dataset: str) -> Path:
    """The folder a new run writes to: ``out`` (created) or a new one under ./runs/.

    Raises
    ------
    RunFolderError
        If ``out`` already holds a report.json (a finished run is never overwritten) or
        cannot be created.
    """
    if out is None:
        return new_run_folder(dataset)
    folder = Path(out)
    if (folder / REPORT_JSON).exists():
        raise RunFolderError(f"{folder} already holds a {REPORT_JSON}; choose a new folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunFolderError(f"{folder}: {error.strerror or error}") from None
    return folder


def _state(model) -> dict:
    return {key: value.detach().cpu() for key, value in model.state_dict().items()}


def _save_torch(path: Path, state) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def save_run(folder, report: dict, models: TrainedModels, formats=("png",)) -> dict:
    """Write a run: the weights, then report.json and report.md, then the figures.

    The record comes before the figures: a run stopped while drawing still has its report
    and can be re-rendered with ``--from-run``.

    Returns
    -------
    dict
        The ``files`` entry added to the report (weights, figures, markdown).
    """
    folder = Path(folder)
    _save_torch(folder / MRVAE_WEIGHTS, _state(models.mrvae))
    if models.baselines:
        _save_torch(
            folder / BASELINE_WEIGHTS,
            {
                "betas": [baseline.beta for baseline in models.baselines],
                "config": models.baselines[0].model.config(),
                "state_dicts": [_state(baseline.model) for baseline in models.baselines],
            },
        )
    report["files"] = {
        "weights": MRVAE_WEIGHTS,
        "baseline_weights": BASELINE_WEIGHTS if models.baselines else None,
        "figures": figure_files(report, formats),
        "markdown": REPORT_MARKDOWN,
    }
    write_json(folder / REPORT_JSON, report)
    atomic_write_text(folder / REPORT_MARKDOWN, render_markdown(report))
    write_figures(report, folder, formats)
    return report["files"]


def _config_of(report: dict) -> CompareConfig:
    """The config a report was made with (reports before the config was recorded: rebuilt)."""
    if "config" in report:
        return CompareConfig.from_dict(report["config"])
    training, mrvae = report["training"], report["mrvae"]["config"]
    same_names = ("baselines", "objective", "steps", "batch_size", "lr", "beta_sampling")
    gates = ("gate_input", "encoder_gate", "decoder_gate", "covariance_gate", "hidden")
    return CompareConfig(
        dataset=report["dataset"]["argument"],
        latent=report.get("latent_requested", report["latent"]),
        betas=tuple(report["betas"]),
        train_range=tuple(training["beta_range"]),
        gate_thresholds="staggered" if mrvae.get("staggered", True) else "shared",
        seed=report["seed"],
        floor="paper"
        if "paper_floor" in report["mrvae"]
        else "model"
        if "floor" in report["mrvae"]
        else "none",
        **{name: training[name] for name in same_names},
        **{name: mrvae[name] for name in gates},
    )


def _result(entry: dict, interrupted=False) -> TrainResult:
    loss = entry.get("final_train_loss")
    return TrainResult(
        entry["steps"], entry["train_seconds"], interrupted, float("nan") if loss is None else loss
    )


def load_run(folder) -> Run:
    """Read a run folder back: report.json, the config and the models with their weights.

    Raises
    ------
    RunFolderError
        Naming the folder, if it has no readable report.json, the weights are missing or
        do not fit the models the report describes.
    """
    folder = Path(folder)
    try:
        report = read_json(folder / REPORT_JSON)
    except OSError as error:
        raise RunFolderError(f"{folder}: {error.strerror or error}") from None
    except ValueError as error:
        raise RunFolderError(str(error)) from None
    try:
        config = _config_of(report)
        mrvae = model_from_config(report["mrvae"]["config"])
        mrvae.load_state_dict(torch.load(folder / MRVAE_WEIGHTS, weights_only=True))
        models = TrainedModels(
            mrvae,
            _result(report["mrvae"], report["mrvae"].get("interrupted", False)),
            interrupted=bool(report["partial"]),
        )
        if report["beta_vae"]:
            state = torch.load(folder / BASELINE_WEIGHTS, weights_only=True)
            for beta, entry, weights in zip(
                state["betas"], report["beta_vae"], state["state_dicts"], strict=True
            ):
                model = model_from_config(state["config"])
                model.load_state_dict(weights)
                models.baselines.append(Baseline(float(beta), model, _result(entry)))
    except (OSError, KeyError, TypeError, ValueError, RuntimeError) as error:
        raise RunFolderError(f"{folder}: cannot rebuild the models: {error}") from None
    return Run(folder, report, config, models)
