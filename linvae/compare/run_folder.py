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
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from linvae._io import atomic_write_text, write_json
from linvae.analytic import MAX_GRID_POINTS
from linvae.mrvae.checkpoint import CheckpointError, load_legacy, load_models, save_models
from linvae.mrvae.train import TrainResult

from .config import CompareConfig
from .figures import figure_files, write_figures
from .report import REQUIRED_KEYS, render_markdown
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


# --- what report.json must hold ---------------------------------------------------------


class _Null:
    """A spec that also takes null."""

    def __init__(self, spec):
        self.spec = spec


class _List:
    """A spec for a list of ``item``: at most ``most`` long, or as long as the grid."""

    def __init__(self, item, most=MAX_GRID_POINTS, *, grid_long=False):
        self.item, self.most, self.grid_long = item, most, grid_long


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value) -> bool:
    try:
        return _is_number(value) and math.isfinite(value)
    except OverflowError:  # an integer beyond float64
        return False


#: The scalar specs: (test, what it must be).
_SCALARS = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "object": (lambda v: isinstance(v, dict), "an object"),
    "count": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "an integer >= 0",
    ),
    "size": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
        "an integer >= 1",
    ),
    "number": (_finite, "a finite number"),
    "positive": (lambda v: _finite(v) and v > 0, "a number > 0"),
}

_NUMBERS = _List("number", grid_long=True)
_CURVE = {"rate": _NUMBERS, "distortion": _NUMBERS, "loss": _NUMBERS}

#: What every report.json holds, typed; a key ending in ``?`` may be absent. The model
#: configs are checked further by the model they rebuild, ``config`` by CompareConfig.
REPORT_SCHEMA = {
    "linvae_version": "str",
    "config?": "object",
    "dataset": {"name": "str", "n": "size", "d": "size", "argument?": "str"},
    "latent": "size",
    "latent_requested?": "size",
    "betas": _List("positive"),
    "grid?": "str",
    "mrvae": {
        "steps": "count",
        "train_seconds": "number",
        "polish_seconds?": "number",
        "polish_evaluations?": "count",
        "revived_latents?": "count",
        "polish_iterations?": "count",
        "polish_form?": _Null("str"),
        "unmixed_pairs?": "count",
        "learning_rate?": _Null("positive"),
        "final_train_loss?": _Null("number"),
        "interrupted?": "bool",
        "config": {"class": "str", "d": "size", "k": "size"},
    },
    "beta_vae": _List(
        {
            "beta": "positive",
            "steps": "count",
            "train_seconds": "number",
            "final_train_loss?": _Null("number"),
        }
    ),
    "beta_vae_training?": {"form": "str", "members": "count", "seconds": "number"},
    "training?": "object",
    "device": "str",
    "seed": "count",
    "partial": "bool",
    "diverged?": _Null({"model": "str", "step": "count"}),
    "evaluation_error?": "str",
    "files?": {
        "weights?": "str",
        "baseline_weights?": _Null("str"),
        "figures?": "object",
        "markdown?": "str",
    },
    "units?": {"rate?": "str", "distortion?": "str", "excess?": "str", "peak?": "positive"},
    "warnings?": _List("str"),
}

#: What a report whose models were evaluated holds besides (all but one that says
#: ``evaluation_error``): the curves over the grid and each β-VAE's terms.
EVALUATED_SCHEMA = {
    "analytic": _CURVE,
    "mrvae": {**_CURVE, "excess": _NUMBERS, "excess_per_beta?": _NUMBERS},
    "beta_vae": _List(
        {"rate": "number", "distortion": "number", "loss": "number", "excess": "number"}
    ),
    "summary?": "object",
}


def _kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    return {dict: "an object", list: "a list", str: "a string"}.get(
        type(value), "a number" if _is_number(value) else type(value).__name__
    )


def _check(value, spec, where: str, grid: int) -> None:
    """Raise ValueError, naming ``where``, unless ``value`` is of ``spec``."""
    if isinstance(spec, _Null):
        if value is None:
            return
        if not isinstance(value, dict) and isinstance(spec.spec, dict):
            raise ValueError(f"{where} must be null or an object, got {_kind(value)}")
        spec = spec.spec
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise ValueError(f"{where} must be an object, got {_kind(value)}")
        for key, inner in spec.items():
            name = key.rstrip("?")
            if name in value:
                _check(value[name], inner, f"{where}.{name}" if where else name, grid)
            elif not key.endswith("?"):
                raise ValueError(f"lacks {where}.{name}" if where else f"lacks {name}")
    elif isinstance(spec, _List):
        if not isinstance(value, list):
            raise ValueError(f"{where} must be a list, got {_kind(value)}")
        if spec.grid_long and len(value) != grid:
            raise ValueError(f"{where} has {len(value)} values, the grid (betas) {grid}")
        if len(value) > spec.most:
            raise ValueError(f"{where} must hold at most {spec.most} values, got {len(value)}")
        for i, item in enumerate(value):
            _check(item, spec.item, f"{where}[{i}]", grid)
    else:
        test, expected = _SCALARS[spec]
        if not test(value):
            shown = f"{value!r}" if _is_number(value) else _kind(value)
            raise ValueError(f"{where} must be {expected}, got {shown}")


def check_report(report, path="report.json") -> dict:
    """``report`` if it is a report.json of the run format (:data:`REPORT_SCHEMA`, and
    :data:`EVALUATED_SCHEMA` unless it says ``evaluation_error``).

    Raises
    ------
    ValueError
        One line that names ``path`` and the first key at fault.
    """
    if not isinstance(report, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in report]
    if "evaluation_error" in report:
        missing = [key for key in missing if key != "analytic"]
    if missing:
        raise ValueError(f"{path} lacks the report keys {missing}")
    try:
        betas = report["betas"]
        _check(betas, REPORT_SCHEMA["betas"], "betas", 0)
        _check(report, REPORT_SCHEMA, "", len(betas))
        if "evaluation_error" not in report:
            _check(report, EVALUATED_SCHEMA, "", len(betas))
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    return report


def _no_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def read_report(path) -> dict:
    """The report.json at ``path``, checked whole by :func:`check_report`.

    Raises
    ------
    ValueError
        One line: not JSON (NaN and infinity are not), nested too deeply, or not of the
        run format.
    OSError
        If the file cannot be read.
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        report = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    except RecursionError:
        raise ValueError(f"{path} is nested too deeply for a report.json") from None
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    return check_report(report, path)


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


def _no_lock_file(folder: Path, error: OSError) -> RunFolderError:
    return RunFolderError(
        f"cannot create the lock file {LOCK} in {folder}: {error.strerror or error} (linvae "
        "needs a folder it can write files in)"
    )


def _check_lock_file(folder: Path) -> None:
    """Raise unless the lock file exists or can be made: a lock that timed out is held by
    another run only then."""
    try:
        os.close(os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o666))
    except OSError as error:
        raise _no_lock_file(folder, error) from None


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
        _check_lock_file(folder)  # filelock also times out where no file can be made
        raise RunFolderError(f"{folder} is in use by another linvae run ({LOCK})") from None
    except OSError as error:
        raise _no_lock_file(folder, error) from None
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
    and can be re-rendered with ``--from-run``. A report whose evaluation failed
    (``"evaluation_error"``) has no figures.

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
    evaluated = "evaluation_error" not in report  # else the weights and how they were trained
    report["files"] = {
        "weights": MRVAE_WEIGHTS,
        "baseline_weights": BASELINE_WEIGHTS if models.baselines else None,
        "figures": figure_files(report, formats) if evaluated else {},
        "markdown": REPORT_MARKDOWN,
    }
    write_json(folder / REPORT_JSON, report)
    atomic_write_text(folder / REPORT_MARKDOWN, render_markdown(report))
    if evaluated:
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
        # runs from before baseline_form trained their β-VAEs one after another
        return CompareConfig.from_dict({"baseline_form": "separate", **report["config"]})
    if "training" not in report:
        raise ValueError("it lacks config (or training, in a run of an earlier version)")
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
        revived_latents=entry.get("revived_latents", 0),
        polish_iterations=entry.get("polish_iterations", 0),
        polish_form=entry.get("polish_form"),
        unmixed_pairs=entry.get("unmixed_pairs", 0),
        learning_rate=entry.get("learning_rate"),
    )  # fmt: skip


def _models(folder: Path, report: dict):
    """The MR-VAE and [(β, model)] of a run (``.pt`` weights: a run of an earlier version),
    each refused unless it has the run's data dimension and latent size."""
    expected = {"d": report["dataset"]["d"], "k": report["latent"]}
    legacy = report.get("files", {}).get("weights", "mrvae.pt").endswith(".pt")
    if legacy:
        (mrvae,), _ = load_legacy(folder / "mrvae.pt", report["mrvae"]["config"], expected)
    else:
        (mrvae,), _ = load_models(folder / MRVAE_WEIGHTS, expected)
    if not report["beta_vae"]:
        return mrvae, []
    path = folder / ("beta_vaes.pt" if legacy else BASELINE_WEIGHTS)
    models, extra = (load_legacy if legacy else load_models)(path, expected=expected)
    betas = extra.get("betas")
    if not isinstance(betas, list) or len(betas) != len(models):
        raise CheckpointError(f"cannot read the weights {path}: it does not list one β per model")
    return mrvae, list(zip(betas, models, strict=True))


def _same(a, b) -> bool:
    """Whether two JSON values are equal, floats up to round-off."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if _is_number(a) and _is_number(b):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
    return a == b


def _check_weights_fit_report(folder: Path, report: dict, config, mrvae, baselines) -> None:
    """Refuse weights that are not the ones the report describes (copied from another run)."""
    recorded = report["mrvae"]["config"]
    held = mrvae.config()
    for key in sorted(set(recorded) | set(held)):
        if not _same(recorded.get(key), held.get(key)):
            raise RunFolderError(
                f"{folder}: the MR-VAE's weights hold a model with {key} = {held.get(key)!r}, "
                f"report.json records {key} = {recorded.get(key)!r}: they are not this run's"
            )
    entries = report["beta_vae"]
    if len(baselines) != len(entries):
        raise RunFolderError(
            f"{folder}: the weights hold {len(baselines)} β-VAEs, report.json lists {len(entries)}"
        )
    for (beta, _), entry in zip(baselines, entries, strict=True):
        if not _same(float(beta), entry["beta"]):
            raise RunFolderError(
                f"{folder}: the weights hold a β-VAE at β = {beta!r}, report.json lists it at "
                f"β = {entry['beta']!r}: they are not this run's"
            )
    requested = report.get("latent_requested", report["latent"])
    if config.latent != requested:
        raise RunFolderError(
            f"{folder / REPORT_JSON}: config.latent is {config.latent}, the report's latent "
            f"{requested}"
        )


def _one_line(error) -> str:
    return " ".join(str(error).split())


def load_run(folder) -> Run:
    """Read a run folder back: report.json, the config and the models with their weights.

    Raises
    ------
    RunFolderError
        One line naming the folder, if it has no readable report.json or one not of the run
        format (:func:`check_report`), the weights are missing, are not the models the
        report describes (another data dimension, latent size, configuration or β), do not
        fit them, hold NaN, or are a pickle payload.
    """
    folder = Path(folder)
    try:
        report = read_report(folder / REPORT_JSON)
    except OSError as error:
        raise RunFolderError(f"{folder}: {error.strerror or error}") from None
    except ValueError as error:
        raise RunFolderError(_one_line(error)) from None
    try:
        config = _config_of(report)
    except (KeyError, TypeError, ValueError) as error:
        raise RunFolderError(f"{folder / REPORT_JSON}: its config: {_one_line(error)}") from None
    try:
        mrvae, baselines = _models(folder, report)
    except CheckpointError as error:
        raise RunFolderError(_one_line(error)) from None
    except (OSError, KeyError, TypeError, ValueError, RuntimeError) as error:
        if isinstance(error, OSError) and error.strerror:
            error = f"{error.strerror}: {error.filename}"
        raise RunFolderError(f"{folder}: cannot rebuild the models: {_one_line(error)}") from None
    _check_weights_fit_report(folder, report, config, mrvae, baselines)
    models = TrainedModels(
        mrvae,
        _result(report["mrvae"], report["mrvae"].get("interrupted", False)),
        interrupted=report["partial"] and not report.get("diverged"),
        diverged=report.get("diverged"),
    )
    for (beta, model), entry in zip(baselines, report["beta_vae"], strict=True):
        models.baselines.append(Baseline(float(beta), model, _result(entry)))
    return Run(folder, report, config, models)
