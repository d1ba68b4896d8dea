"""A whole comparison from Python: data → training → exact evaluation → report.

:func:`run_comparison` is what ``python -m linvae.compare`` runs; :func:`reevaluate` is
what ``--from-run`` runs on a run read back by :func:`linvae.compare.run_folder.load_run`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from linvae._checks import resolve_device
from linvae._signals import interrupts_held, terminate_as_interrupt
from linvae.analytic import beta_grid, moments, spectrum
from linvae.data import load

from .config import CompareConfig
from .evaluate import BelowOptimumError
from .report import build_report, training_record
from .training import TrainedModels, train_models


class EvaluationError(RuntimeError):
    """The exact evaluation after training failed; the trained models are not lost.

    Attributes
    ----------
    comparison : Comparison
        The config, the trained models and their :func:`~linvae.compare.report.training_record`
        with ``"evaluation_error"`` (the message): :func:`~linvae.compare.run_folder.save_run`
        writes it, and ``--from-run`` evaluates the saved weights again.
    """

    def __init__(self, message: str, comparison: Comparison):
        super().__init__(message)
        self.comparison = comparison


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if isinstance(error, BelowOptimumError) else f"{type(error).__name__}: {text}"


@dataclass
class Comparison:
    """One comparison: its config, the trained models and the report of their evaluation.

    Attributes
    ----------
    config : CompareConfig
    models : TrainedModels
    report : dict
        The report.json content (:func:`linvae.compare.report.build_report`).
    """

    config: CompareConfig
    models: TrainedModels
    report: dict

    @property
    def betas(self) -> np.ndarray:
        """The evaluation grid, shape (m,)."""
        return np.asarray(self.report["betas"], dtype=np.float64)

    @property
    def excess(self) -> np.ndarray:
        """The MR-VAE's excess loss over the optimum at each β of the grid, shape (m,)."""
        return np.asarray(self.report["mrvae"]["excess"], dtype=np.float64)

    @property
    def partial(self) -> bool:
        """Whether training was interrupted (the report covers what finished)."""
        return bool(self.report["partial"])

    def to_dict(self) -> dict:
        """The report as a dict (numpy arrays included; :mod:`linvae._io` writes it as JSON)."""
        return self.report

    def plot(self, ax=None, *, rate_unit="nats", distortion_unit="nll"):
        """The rate-distortion plane: the optimum, the MR-VAE and the β-VAEs.

        Returns
        -------
        list of matplotlib artists
            The lines drawn, the optimum first (the axes are ``lines[0].axes``).
        """
        from .display import RateDistortionDisplay

        display = RateDistortionDisplay.from_report(self.report)
        return display.plot(ax, rate_unit=rate_unit, distortion_unit=distortion_unit).lines_

    def _repr_markdown_(self) -> str:
        from .report import render_markdown

        return render_markdown({**self.report, "files": {}})


def load_data(config: CompareConfig):
    """``(X, info)`` of the config's data set, drawn with its seed."""
    return load(config.dataset, n=config.n, seed=config.seed, patch_size=config.patch_size)


@dataclass
class Problem:
    """What a comparison is trained and judged on: the data, its exact statistics, the grid.

    Attributes
    ----------
    X : ndarray of shape (n, d)
    info : DatasetInfo
    stats : Moments
    spectrum : Spectrum
        Of ``stats.cov``.
    grid : ndarray of shape (m,)
    grid_note : str
        Which grid it is and why.
    device : str
        Where the models train.
    warnings : tuple of str
        Lines for the user about the data (:func:`feature_scale_warning`); the command
        prints them on stderr.
    """

    X: np.ndarray
    info: object
    stats: object
    spectrum: object
    grid: np.ndarray
    grid_note: str
    device: str
    warnings: tuple = ()


#: Features whose variances differ by more than this factor get one warning line.
FEATURE_SCALE_SPREAD = 1e6


def feature_scale_warning(cov) -> str | None:
    """One line when the features' variances (diagonal of ``cov``, (d, d)) differ by more
    than :data:`FEATURE_SCALE_SPREAD` (constant features aside), else None."""
    variances = np.diagonal(np.asarray(cov, dtype=np.float64))
    positive = variances[variances > 0]
    if positive.size < 2 or positive.max() <= FEATURE_SCALE_SPREAD * positive.min():
        return None
    decades = np.log10(positive.max() / positive.min())
    return (
        f"the features' variances span {decades:.1f} decades ({positive.min():.3g} to "
        f"{positive.max():.3g}); linvae trains on the data as given, since the decoder's "
        "noise is isotropic in the data's units and standardising would change the problem, "
        "and conditions training by whitening the encoder with the data's covariance; "
        "standardise the features yourself if their units are arbitrary"
    )


def prepare(config: CompareConfig, data=None) -> Problem:
    """Load the data (unless given), its moments and spectrum, the grid and the device.

    Everything that can go wrong with the user's input goes wrong here, before training.

    Raises
    ------
    TypeError, ValueError, OSError
        For a data set that cannot be loaded or whose covariance does not fit in memory,
        a grid that cannot be built, or a device that is not there.
    """
    if not isinstance(config, CompareConfig):
        raise TypeError(f"config must be a CompareConfig, got {type(config).__name__}")
    device = str(resolve_device(config.device))
    X, info = load_data(config) if data is None else data
    stats = moments(X)
    spec = spectrum(stats.cov)
    grid, note = beta_grid(config.betas, spec.eigvals, config.latent)
    warning = feature_scale_warning(stats.cov)
    return Problem(X, info, stats, spec, grid, note, device, () if warning is None else (warning,))


def run_comparison(
    config: CompareConfig | None = None,
    *,
    data=None,
    problem: Problem | None = None,
    progress: bool = False,
    guard_signals: bool = False,
):
    """Train one MR-VAE and the β-VAEs of ``config``, evaluate them exactly, build the report.

    Parameters
    ----------
    config : CompareConfig, optional
        The defaults when None.
    data : (X, DatasetInfo), optional
        The data; loaded from ``config.dataset`` when None.
    problem : Problem, optional
        The data already prepared by :func:`prepare` (then ``data`` is not used).
    progress : bool
        Draw a progress bar per model on stderr.
    guard_signals : bool
        For a command line: SIGTERM stops training as Ctrl-C does, and during the
        evaluation after training both signals are held until the report is built.

    Returns
    -------
    Comparison
        Ctrl-C during training, or a loss that stops being finite, ends training early; the
        report says ``partial`` (and ``diverged``).

    Raises
    ------
    TypeError, ValueError, OSError
        From :func:`prepare`, before any training.
    EvaluationError
        If the evaluation after training fails (e.g. a :class:`BelowOptimumError`); its
        ``comparison`` holds the trained models and the report of their training.
    """
    config = CompareConfig() if config is None else config
    problem = prepare(config, data) if problem is None else problem
    training = terminate_as_interrupt() if guard_signals else contextlib.nullcontext()
    with training:
        models = train_models(problem.X, config, problem.grid, progress=progress)
    evaluating = (
        interrupts_held("interrupt received: finishing the report of what was trained")
        if guard_signals
        else contextlib.nullcontext()
    )
    with evaluating:
        try:
            report = build_report(
                models, problem.stats, problem.info, config, problem.grid,
                grid_note=problem.grid_note, device=problem.device, spectrum=problem.spectrum,
                progress=progress,
            )  # fmt: skip
        except Exception as error:  # whatever fails after training, the models are kept
            report = training_record(
                models, problem.info, config, problem.grid, grid_note=problem.grid_note,
                device=problem.device,
            )  # fmt: skip
            report["evaluation_error"] = _one_line(error)
            report["warnings"] = list(problem.warnings)
            raise EvaluationError(
                f"the evaluation after training failed: {report['evaluation_error']}",
                Comparison(config, models, report),
            ) from error
    report["warnings"] = list(problem.warnings)
    return Comparison(config, models, report)


def reevaluate(run, data=None) -> Comparison:
    """The report of a run read back from its folder, evaluated again without training.

    Raises
    ------
    ValueError
        If the data set now has another size than the run's.
    EvaluationError
        If the evaluation fails (the run's folder is left as it was).
    """
    X, info = load_data(run.config) if data is None else data
    old = run.report
    if (info.n, info.d) != (old["dataset"]["n"], old["dataset"]["d"]):
        raise ValueError(
            f"the data set now has (n, d) = ({info.n}, {info.d}), the run had "
            f"({old['dataset']['n']}, {old['dataset']['d']})"
        )
    stats = moments(X)
    spec = spectrum(stats.cov)
    grid = np.asarray(old["betas"], dtype=np.float64)
    note = old.get("grid", "the run's grid")
    try:
        report = build_report(
            run.models, stats, info, run.config, grid, grid_note=note, device=old["device"],
            spectrum=spec,
        )  # fmt: skip
    except Exception as error:  # the run's own report and weights stay as they are
        raise EvaluationError(
            f"the evaluation of {run.folder} failed: {_one_line(error)}",
            Comparison(run.config, run.models, old),
        ) from error
    report["regenerated_from"] = str(run.folder)
    return Comparison(run.config, run.models, report)
