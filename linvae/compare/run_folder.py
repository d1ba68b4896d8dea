"""A comparison's run folder: the files it holds, how they are written and read back.

One folder per run::

    report.json             the record (strict JSON): every number, the config, versions
    report.md               the human summary, rendered from report.json alone
    mrvae.safetensors       the MR-VAE's weights, its config in the metadata
    beta_vaes.safetensors   the β-VAEs' weights and their β, when there are any
    *.png, *.svg            the figures, rendered from report.json alone
    .linvae.lock            held while a run writes here (filelock)

Everything here is written atomically, the record before the figures. A folder is locked
while a run uses it, and a folder that holds a report.json is never written over by a new
run. ``python -m linvae.compare --from-run``, ``python -m linvae.audit RUN`` and the
benchmarks read a run through :func:`load_run` only; runs of earlier versions (``.pt``
weights, read with ``weights_only=True``) still load.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from linvae._io import atomic_write_text, write_json
from linvae.mrvae.checkpoint import CheckpointError, load_legacy, load_models, save_models
from linvae.mrvae.train import TrainResult

from .config import CompareConfig
from .figures import figure_files, write_figures
from .report import read_json, render_markdown
from .training import Baseline, TrainedModels

REPORT_JSON = "report.json"
REPORT_MARKDOWN = "report.md"
MRVAE_WEIGHTS = "mrvae.safetensors"
BASELINE_WEIGHTS = "beta_vaes.safetensors"
LOCK = ".linvae.lock"

#: What a run's files take besides the weights: report.json, report.md and the figures.
REPORT_BYTES = 4 * 2**20


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
        except OSError as error:
            raise RunFolderError(f"cannot create {folder}: {error.strerror or error}") from None
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
    if isinstance(out, str) and not out.strip():
        raise RunFolderError("an empty path: give a folder name")
    folder = Path(out)
    if (folder / REPORT_JSON).exists():
        raise RunFolderError(f"{folder} already holds a {REPORT_JSON}; choose a new folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunFolderError(f"{folder}: {error.strerror or error}") from None
    return folder


@contextlib.contextmanager
def locked(folder):
    """Hold the folder's lock (:data:`LOCK`, filelock) for the duration; refuse if it is held.

    Raises
    ------
    RunFolderError
        If another run holds the folder, or the lock file cannot be created there (the
        folder is not writable).
    """
    from filelock import FileLock, Timeout

    folder = Path(folder)
    lock = FileLock(str(folder / LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RunFolderError(f"{folder} is in use by another linvae run ({LOCK})") from None
    except OSError as error:
        raise RunFolderError(f"cannot write in {folder}: {error.strerror or error}") from None
    try:
        yield folder
    finally:
        lock.release()


def check_space(folder, config: CompareConfig, d: int) -> None:
    """Refuse, before training, a folder that cannot take the run's files.

    A probe file is written and removed; the free space must hold the weights of every
    model (float64) and :data:`REPORT_BYTES` for the report and figures.
    """
    folder = Path(folder)
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe."):
            pass
        free = shutil.disk_usage(folder).free
    except OSError as error:
        raise RunFolderError(f"cannot write in {folder}: {error.strerror or error}") from None
    k, h = config.latent, config.hidden_width()
    per_model = 8 * (2 * d * h + 2 * h * k + 4 * (2 * h + k + d) + 2 * k + 2 * d)
    needed = per_model * (1 + config.baselines) + REPORT_BYTES
    if free < needed:
        raise RunFolderError(
            f"{folder} has {free / 2**20:.1f} MiB free; the run needs about "
            f"{needed / 2**20:.1f} MiB"
        )


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
    save_models(folder / MRVAE_WEIGHTS, [models.mrvae])
    if models.baselines:
        save_models(
            folder / BASELINE_WEIGHTS,
            [baseline.model for baseline in models.baselines],
            betas=[baseline.beta for baseline in models.baselines],
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


def save_run_or_rescue(folder, report: dict, models: TrainedModels, formats=("png",)):
    """:func:`save_run` to ``folder``; if that fails (a full disk, a folder gone read-only),
    to a new folder of its own under the system's temporary folder: the trained models are
    not lost.

    Returns
    -------
    (Path, str or None)
        The folder written, and why ``folder`` could not be (None when it was).

    Raises
    ------
    RunFolderError
        If neither could be written.
    """
    try:
        save_run(folder, report, models, formats)
        return Path(folder), None
    except (OSError, ValueError) as error:
        reason = (error.strerror or str(error)) if isinstance(error, OSError) else str(error)
    rescue = Path(tempfile.mkdtemp(prefix="linvae-rescue-"))
    report["rescued_from"] = f"{folder}: {reason}"
    try:
        save_run(rescue, report, models, formats)
    except (OSError, ValueError) as error:
        raise RunFolderError(
            f"cannot write the run to {folder} ({reason}) nor to {rescue} ({error}): the trained "
            "models are lost"
        ) from None
    return rescue, reason


def _config_of(report: dict) -> CompareConfig:
    """The config a report was made with (reports before the config was recorded: rebuilt)."""
    if "config" in report:
        return CompareConfig.from_dict(report["config"])
    training, mrvae = report["training"], report["mrvae"]["config"]
    same_names = ("baselines", "objective", "steps", "batch_size", "lr", "beta_sampling")
    gates = ("gate_input", "encoder_gate", "decoder_gate", "covariance_gate", "hidden")
    return CompareConfig(
        recipe="paper",  # the LinearMRVAE family and its training, with the run's own gates
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
    ).resolved()


def _result(entry: dict, interrupted=False) -> TrainResult:
    loss = entry.get("final_train_loss")
    return TrainResult(
        entry["steps"], entry["train_seconds"], interrupted, float("nan") if loss is None else loss,
        polish_seconds=entry.get("polish_seconds", 0.0),
        polish_evaluations=entry.get("polish_evaluations", 0),
    )  # fmt: skip


def _models(folder: Path, report: dict):
    """The MR-VAE and [(β, model)] of a run (``.pt`` weights: a run of an earlier version)."""
    legacy = report.get("files", {}).get("weights", "mrvae.pt").endswith(".pt")
    if legacy:
        (mrvae,), _ = load_legacy(folder / "mrvae.pt", report["mrvae"]["config"])
    else:
        (mrvae,), _ = load_models(folder / MRVAE_WEIGHTS)
    if not report["beta_vae"]:
        return mrvae, []
    read = load_legacy if legacy else load_models
    models, extra = read(folder / ("beta_vaes.pt" if legacy else BASELINE_WEIGHTS))
    return mrvae, list(zip(extra["betas"], models, strict=True))


def load_run(folder) -> Run:
    """Read a run folder back: report.json, the config and the models with their weights.

    Raises
    ------
    RunFolderError
        Naming the folder, if it has no readable report.json, the weights are missing, do
        not fit the models the report describes, hold NaN, or are a pickle payload.
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
        mrvae, baselines = _models(folder, report)
        models = TrainedModels(
            mrvae,
            _result(report["mrvae"], report["mrvae"].get("interrupted", False)),
            interrupted=bool(report["partial"]) and not report.get("diverged"),
            diverged=report.get("diverged"),
        )
        for (beta, model), entry in zip(baselines, report["beta_vae"], strict=True):
            models.baselines.append(Baseline(float(beta), model, _result(entry)))
    except CheckpointError as error:
        raise RunFolderError(str(error)) from None
    except (OSError, KeyError, TypeError, ValueError, RuntimeError) as error:
        raise RunFolderError(f"{folder}: cannot rebuild the models: {error}") from None
    return Run(folder, report, config, models)
