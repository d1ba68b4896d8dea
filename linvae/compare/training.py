"""Train the models of a comparison: one MR-VAE and β-VAE baselines, as a config says."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from linvae._progress import TrainingBar
from linvae.analytic import moments
from linvae.mrvae.bank import BetaVAEBank, member_objectives, train_bank
from linvae.mrvae.maps import exact_maps_loss
from linvae.mrvae.model import LatentMRVAE, LinearMRVAE, LinearVAE, one_layer_vae
from linvae.mrvae.recipe import RecipeConfig, polish_budget, train_recipe
from linvae.mrvae.sampled import LR_MAX, SampledConfig, train_sampled_recipe
from linvae.mrvae.threads import cpu_threads
from linvae.mrvae.train import TrainConfig, TrainResult, train

from .config import CompareConfig


@dataclass(frozen=True)
class Baseline:
    """One β-VAE: its β, the trained model and what its training did."""

    beta: float
    model: LinearVAE
    result: TrainResult


@dataclass
class TrainedModels:
    """What :func:`train_models` produced.

    Attributes
    ----------
    mrvae : LinearMRVAE
    mrvae_result : TrainResult
    baselines : list of Baseline
        The β-VAEs that finished, in increasing β.
    interrupted : bool
        True when Ctrl-C (or SIGTERM) stopped training; an unfinished β-VAE is left out.
    diverged : dict or None
        ``{"model": name, "step": n}`` when a model's loss stopped being finite: training
        stopped there. A diverged MR-VAE keeps its last finite weights; a diverged β-VAE
        is left out.
    """

    mrvae: LinearMRVAE
    mrvae_result: TrainResult
    baselines: list[Baseline] = field(default_factory=list)
    interrupted: bool = False
    diverged: dict | None = None

    @property
    def partial(self) -> bool:
        """Whether training stopped before every model finished."""
        return self.interrupted or self.diverged is not None


def train_config(config: CompareConfig, n: int, grid):
    """How every model of the comparison trains on ``n`` examples for the evaluation ``grid``.

    A :class:`~linvae.mrvae.recipe.RecipeConfig` for the linvae recipe, a
    :class:`~linvae.mrvae.sampled.SampledConfig` for it on the sampled objective, a
    :class:`~linvae.mrvae.train.TrainConfig` for the paper's (its β range from ``grid``
    when the range is "auto").
    """
    config = config.resolved()
    if config.recipe == "linvae" and config.objective == "sampled":
        return SampledConfig(
            steps=config.steps, batch_size=config.batch_size, lr=config.lr, seed=config.seed
        )
    if config.recipe == "linvae":
        return RecipeConfig(
            steps=config.steps,
            betas_per_step=config.batch_size,
            lr=config.lr,
            polish_iterations=config.polish,
            seed=config.seed,
            compile=config.compile,
        )
    return TrainConfig(
        steps=config.steps_for(n),
        batch_size=config.batch_size,
        lr=config.lr,
        objective=config.objective,
        beta_sampling=config.beta_sampling,
        beta_range=config.beta_range_for(grid),
        seed=config.seed,
        compile=config.compile,
    )


def new_mrvae(config: CompareConfig, d: int, grid) -> LinearMRVAE:
    """The untrained MR-VAE of the config for data of dimension ``d`` and the grid ``grid``."""
    config = config.resolved()
    beta_range = config.beta_range_for(grid)
    if config.recipe == "linvae":
        return LatentMRVAE(d, config.latent, beta_range=beta_range, seed=config.seed)
    return LinearMRVAE(
        d,
        config.latent,
        config.encoder_gate,
        config.decoder_gate,
        config.covariance_gate,
        hidden=config.hidden,
        staggered=config.gate_thresholds == "staggered",
        gate_input=config.gate_input,
        beta_range=beta_range,
        seed=config.seed,
    )


def new_baseline(config: CompareConfig, d: int) -> LinearVAE:
    """An untrained β-VAE of the config: the MR-VAE's layers without gates."""
    config = config.resolved()
    if config.recipe == "linvae":
        return one_layer_vae(d, config.latent, seed=config.seed)
    return LinearVAE(d, config.latent, hidden=config.hidden, seed=config.seed)


def fit(model, X, config: CompareConfig, grid, *, beta=None, progress=None) -> TrainResult:
    """Train ``model`` on ``X`` (n, d) as the config's recipe says: over the β range of the
    grid, or at the one ``beta``. ``progress`` is called as ``progress(step, steps, loss,
    elapsed)``."""
    settings = train_config(config, X.shape[0], grid)
    if isinstance(settings, SampledConfig):
        return train_sampled_recipe(
            model, X, config.beta_range_for(grid), settings, beta=beta, device=config.device,
            progress=progress,
        )  # fmt: skip
    if isinstance(settings, RecipeConfig):
        return train_recipe(
            model, X, settings, beta_range=config.beta_range_for(grid), beta=beta,
            device=config.device, progress=progress,
        )  # fmt: skip
    return train(model, X, settings, beta=beta, device=config.device, progress=progress)


def baseline_betas(config: CompareConfig, grid) -> np.ndarray:
    """The β of the β-VAEs: ``config.baselines`` values log-spaced over the grid's range."""
    if config.baselines == 0:
        return np.zeros(0)
    grid = np.asarray(grid, dtype=np.float64)
    return np.geomspace(float(grid.min()), float(grid.max()), config.baselines)


def _with_bar(name: str, progress: bool, run) -> TrainResult:
    """``run(bar)``'s TrainResult, with a progress bar named ``name`` when ``progress``
    closed on how training ended; Ctrl-C before the first step is an interrupted result
    (training loops stop cleanly on it within)."""
    bar = TrainingBar(name) if progress else None
    try:
        result = run(bar)
    except KeyboardInterrupt:
        result = TrainResult(0, 0.0, True, float("nan"))
    if bar is not None:
        bar.close(
            "interrupted"
            if result.interrupted
            else f"diverged at step {result.diverged_at}"
            if result.diverged_at is not None
            else ""
        )
    return result


def _trained(model, X, config: CompareConfig, grid, name, beta, progress: bool) -> TrainResult:
    return _with_bar(
        name, progress, lambda bar: fit(model, X, config, grid, beta=beta, progress=bar)
    )


def train_mrvae(X, config: CompareConfig, grid, *, progress: bool = False):
    """The config's MR-VAE trained on ``X`` (n, d): ``(model, TrainResult)``."""
    model = new_mrvae(config, X.shape[1], grid)
    with cpu_threads(config.threads):
        return model, _trained(model, X, config, grid, "MR-VAE", None, progress)


def _diverged(name: str, result: TrainResult) -> dict | None:
    if result.diverged_at is None:
        return None
    return {"model": name, "step": result.diverged_at}


#: The name of the bank in progress bars and in ``diverged``.
BANK_NAME = "β-VAE bank"


def new_bank(config: CompareConfig, d: int, grid) -> BetaVAEBank:
    """The untrained bank of the config's β-VAEs: one member at each of
    :func:`baseline_betas`, the range's bottom its whitening ridge (as in ``train_bank``).

    Raises
    ------
    ValueError
        If the β-VAEs' β are not distinct (a grid of one β and more than one β-VAE).
    """
    betas = baseline_betas(config, grid)
    if betas.size > 1 and np.any(np.diff(betas) <= 0):
        raise ValueError(
            f"baseline_form='bank' needs distinct β, and the grid's range is one β "
            f"({betas[0]:.6g}) for {betas.size} β-VAEs: use baselines=1 or "
            "baseline_form='separate'"
        )
    lo = float(betas[0])
    hi = float(betas[-1]) if betas.size > 1 else 2.0 * lo  # one member: only lo counts (ridge)
    return BetaVAEBank(d, config.latent, betas.size, (lo, hi), member_betas=betas, seed=config.seed)


def train_bank_baselines(X, config: CompareConfig, grid, *, progress: bool = False):
    """The config's β-VAEs trained on ``X`` as one batched bank (``baseline_form="bank"``):
    ``(list of Baseline, interrupted, diverged)``, as :func:`train_baselines`.

    Every member trains at once at its own β (:func:`linvae.mrvae.bank.train_bank`): on
    the exact objective the linvae recipe's steps, learning rate and polish budget (``polish``,
    or :func:`linvae.mrvae.recipe.polish_budget` of one member's size), the recipe's polish
    (``recipe_polish``); on the sampled one, the bank's sampled ELBO with the config's steps,
    batch size (per member) and learning rate. Each member is then an ordinary one-layer
    β-VAE (:meth:`BetaVAEBank.member_model`). Its ``TrainResult`` is the bank's with
    ``seconds`` and ``polish_seconds`` divided among the N members (the bank's time is their
    sum) and ``final_loss`` its own polish objective. Ctrl-C or a loss no longer finite
    leaves every member out.
    """
    config = config.resolved()
    bank = new_bank(config, X.shape[1], grid)
    members = bank.members
    exact = config.objective == "exact"
    polish = polish_budget(bank.d, bank.k) if config.polish is None else config.polish

    # the bank's own sampled ELBO has no data-derived rate (SampledConfig.lr None): it
    # keeps the sampled recipe's ceiling, the fixed rate it was measured with
    lr = LR_MAX if config.lr is None else config.lr

    def run(bar):
        return train_bank(
            bank, X, objective=config.objective, steps=config.steps, lr=lr,
            batch_size=config.batch_size, polish=polish if exact else 0, seed=config.seed,
            recipe_polish=exact, device=config.device, progress=bar,
        )  # fmt: skip

    result = _with_bar(f"{BANK_NAME} ({members})", progress, run)
    if result.interrupted or result.diverged_at is not None:
        return [], result.interrupted, _diverged(BANK_NAME, result)
    stats = moments(X)
    with torch.no_grad():
        mean, cov = (torch.as_tensor(t, dtype=bank.W.dtype, device=bank.W.device)
                     for t in (stats.mean, stats.cov))  # fmt: skip
        terms = exact_maps_loss(bank.member_maps(), bank.log_betas, mean, cov)
        finals = member_objectives(terms, bank.log_betas, bank.scale).tolist()
    share = dataclasses.replace(
        result, seconds=result.seconds / members, polish_seconds=result.polish_seconds / members
    )
    baselines = []
    for i, (beta, final) in enumerate(zip(baseline_betas(config, grid), finals, strict=True)):
        own = dataclasses.replace(share, final_loss=final)
        baselines.append(Baseline(float(beta), bank.member_model(i).cpu(), own))
    return baselines, False, None


def train_baselines(X, config: CompareConfig, grid, *, progress: bool = False):
    """The config's β-VAEs trained on ``X``: ``(list of Baseline, interrupted, diverged)``.

    ``baseline_form="bank"``: :func:`train_bank_baselines`. Otherwise one after another;
    Ctrl-C, or a loss that is no longer finite, stops at the β-VAE being trained, which is
    left out; ``diverged`` is then ``{"model": name, "step": n}``.
    """
    if config.resolved().baseline_form == "bank" and config.baselines:
        with cpu_threads(config.threads):
            return train_bank_baselines(X, config, grid, progress=progress)
    baselines = []
    with cpu_threads(config.threads):
        for beta in baseline_betas(config, grid):
            model = new_baseline(config, X.shape[1])
            name = f"β-VAE β={beta:.3g}"
            result = _trained(model, X, config, grid, name, float(beta), progress)
            if result.interrupted or result.diverged_at is not None:
                return baselines, result.interrupted, _diverged(name, result)
            baselines.append(Baseline(float(beta), model, result))
    return baselines, False, None


def train_models(X, config: CompareConfig, grid, *, progress: bool = False) -> TrainedModels:
    """Train the MR-VAE, then each β-VAE, on ``X`` as ``config`` says.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    config : CompareConfig
    grid : array_like of shape (m,)
        The evaluation grid: the β-VAEs span its range.
    progress : bool
        Draw a progress bar per model on stderr.

    Returns
    -------
    TrainedModels
        Ctrl-C stops training and is reported by ``interrupted``, not raised.
    """
    mrvae, result = train_mrvae(X, config, grid, progress=progress)
    models = TrainedModels(
        mrvae, result, interrupted=result.interrupted, diverged=_diverged("MR-VAE", result)
    )
    if not models.partial:
        models.baselines, models.interrupted, models.diverged = train_baselines(
            X, config, grid, progress=progress
        )
    return models
