"""Every setting of a comparison in one frozen dataclass: the one home of the defaults.

:class:`CompareConfig` is what the command line builds from its flags, what the library
takes, and what report.json records whole. Benchmarks and notebooks derive variants with
``dataclasses.replace(CompareConfig(), steps=...)``; nothing else restates a default.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

from linvae._checks import (
    as_beta_range,
    as_betas,
    as_choice,
    as_device_name,
    as_int,
    as_latent_size,
    as_positive,
    as_seed,
)
from linvae.analytic import DEFAULT_GRID, DEFAULT_LATENT, NAMED_GRIDS, parse_betas
from linvae.mrvae.gates import ACTIVATIONS, GATE_INPUTS
from linvae.mrvae.model import COVARIANCE_ACTIVATIONS
from linvae.mrvae.recipe import training_range
from linvae.mrvae.sampled import SampledConfig
from linvae.mrvae.train import BETA_SAMPLINGS, COMPILE_MODES, OBJECTIVES

#: The recipes: how the MR-VAE is built and trained. ``"linvae"`` reaches the optimum on the
#: whole curve (docs/results.md); ``"paper"`` is the paper's (appendix B, C.1).
RECIPES = ("linvae", "paper")

#: What a setting left at None means, recipe by recipe: the one home of these defaults.
#: ``hidden: "k"`` is the latent size; ``train_range: "auto"`` is the evaluation grid's range
#: with its bottom halved (:func:`linvae.mrvae.recipe.training_range`).
RECIPE_DEFAULTS = {
    "linvae": {
        "steps": 3000,
        "lr": 0.1,
        "batch_size": 16,
        "train_range": "auto",
        "polish": None,  # the recipe's budget of the model's size (polish_budget)
        "objective": "exact",
        "beta_sampling": "stratified",
        "gate_input": "log_beta",
        "encoder_gate": "sqrt",
        "decoder_gate": "sqrt",
        "covariance_gate": "hinge",
        "hidden": "k",
        "gate_thresholds": "square",
        "baseline_form": "separate",
    },
    "paper": {
        "steps": 10000,
        "lr": 0.01,
        "batch_size": 128,
        "train_range": (0.01, 10.0),
        "polish": 0,
        "objective": "sampled",
        "beta_sampling": "example",
        "gate_input": "standardized",
        "encoder_gate": "sigmoid",
        "decoder_gate": "sqrt",
        "covariance_gate": "sigmoid",
        "hidden": "k",
        "gate_thresholds": "staggered",
        "baseline_form": "separate",
    },
}

#: The linvae recipe on the sampled ELBO (``objective="sampled"``): what its settings left at
#: None take, :class:`~linvae.mrvae.sampled.SampledConfig`'s defaults (no polish).
SAMPLED_DEFAULTS = {
    "steps": SampledConfig().steps,
    "lr": SampledConfig().lr,
    "batch_size": SampledConfig().batch_size,
    "polish": 0,
    "baseline_form": "separate",  # the bank's sampled ELBO lacks the sampled recipe's parts
}

#: Settings the linvae recipe fixes: its model is Theorem 1's construction (on the exact or
#: the sampled objective). Another value is refused; ``--recipe paper`` trains any of them.
FIXED_BY_LINVAE = (
    "beta_sampling",
    "gate_input",
    "encoder_gate",
    "decoder_gate",
    "covariance_gate",
    "hidden",
    "gate_thresholds",
)

GATE_THRESHOLDS = ("staggered", "shared", "square")

#: How the β-VAEs are trained: "separate", one model after another, each by its recipe;
#: "bank", all at once as one :class:`~linvae.mrvae.bank.BetaVAEBank` (linvae recipe only).
BASELINE_FORMS = ("separate", "bank")
FLOORS = ("model", "paper", "none")


@dataclass(frozen=True)
class CompareConfig:
    """The settings of one comparison: data, models, training, evaluation.

    A setting left at None takes its recipe's value (:data:`RECIPE_DEFAULTS`);
    :meth:`resolved` fills them in, and report.json records the resolved config whole.

    Attributes
    ----------
    dataset : str
        A data set name or a file that :func:`linvae.data.load` reads.
    n : int or None
        Examples to load (:func:`linvae.data.load`'s ``n``: a seeded subset, or how many
        patches to draw); None for the data set's default.
    patch_size : int
        Side of the square patches of ``"patches"`` (d = patch_size²).
    latent : int
        Latent size k of every model; latents beyond the data dimension stay collapsed.
    betas : str or tuple of float
        The evaluation grid: ``"full"`` (from the spectrum: λ_k/2 to 2λ₁, see
        :func:`linvae.analytic.beta_grid`), ``"paper"`` (0.01:10:31), ``"LO:HI:N"``
        (log-spaced), ``"B1,B2,..."``, or the values themselves.
    baselines : int
        Number of β-VAEs, at log-spaced β over the grid's range, trained by the same
        recipe without gates; 0 for none.
    baseline_form : {"separate", "bank"} or None
        How the β-VAEs are trained. "separate": one after another, each by the recipe at its
        β (:func:`linvae.mrvae.recipe.train_recipe` or the sampled or paper recipe); "bank":
        all at once as one :class:`~linvae.mrvae.bank.BetaVAEBank`, a leading member axis,
        each member at its β (:func:`linvae.mrvae.bank.train_bank`: the same whitening,
        Adam steps and rate, then the recipe's polish on each member's exact loss, one
        L-BFGS for all members; on the sampled objective the bank's plain sampled ELBO,
        without the sampled recipe's estimator, antithetic draws and averaging). The linvae
        recipe only. None: "separate", the stronger baseline measured (docs/results.md: with
        its batched L-BFGS the bank is closer on digits in 70 % of the time, 4× farther at
        d = 784 in the same time; with the shared one before, 51 nats above the optimum on
        breast cancer).
    recipe : {"linvae", "paper"}
        How the models are built and trained: linvae's recipe (:mod:`linvae.mrvae.recipe`,
        one gate per latent, exact objective, whitening, L-BFGS polish) or the paper's
        (sigmoid encoder and covariance gates, σ_D decoder gates, hidden width k, the
        sampled ELBO with log β uniform over 0.01–10 per example).
    steps : int or None
        Optimiser steps per model (the recipe's Adam steps; not counting the polish).
    epochs : int or None
        ``recipe="paper"``: passes over the data per model, ``steps = epochs · ⌈n / batch⌉``.
    batch_size : int or None
        Examples per step (sampled objective) or values of β per step (exact objective).
    lr : float or None
        Peak Adam learning rate.
    train_range : (float, float), "auto" or None
        The MR-VAE's training range of β; "auto": the grid's, its bottom halved.
    polish : int or None
        ``recipe="linvae"``, exact objective: L-BFGS iterations after Adam; None: the
        recipe's budget of the model's size (:func:`linvae.mrvae.recipe.polish_budget`:
        1500 for d = 784 and 3025, about 3000 on digits, 15000 at d ≈ 30).
    objective, beta_sampling, gate_input, encoder_gate, decoder_gate, covariance_gate,
    hidden, gate_thresholds
        ``recipe="paper"``: the training objective, how log β is drawn, what the gates
        see, the gates of each layer, the hidden width (None: k) and the gates' initial
        thresholds. The linvae recipe fixes them (:data:`FIXED_BY_LINVAE`) but the
        objective: ``"sampled"`` trains it on mini-batches (:mod:`linvae.mrvae.sampled`,
        its settings left at None from :data:`SAMPLED_DEFAULTS`).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    seed : int
        Seed of data subsets, weights, batches, β and noise.
    threads : int
        torch's CPU threads while training.
    compile : {"none", "compile", "graph"}
        How the training step runs (:func:`linvae.mrvae._compiled.compiled_step`).
    floor : {"model", "paper", "none"}
        Which representation floors the report holds (:mod:`linvae.mrvae.floor`).
    """

    dataset: str = "digits"
    n: int | None = None
    patch_size: int = 28
    latent: int = DEFAULT_LATENT
    betas: str | tuple[float, ...] = DEFAULT_GRID
    baselines: int = 10
    baseline_form: str | None = None
    recipe: str = "linvae"
    steps: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    train_range: tuple[float, float] | str | None = None
    polish: int | None = None
    objective: str | None = None
    beta_sampling: str | None = None
    gate_input: str | None = None
    encoder_gate: str | None = None
    decoder_gate: str | None = None
    covariance_gate: str | None = None
    hidden: int | None = None
    gate_thresholds: str | None = None
    device: str = "auto"
    seed: int = 0
    threads: int = 1
    compile: str = "none"
    floor: str = "model"

    def __post_init__(self) -> None:
        dataset = self.dataset
        if isinstance(dataset, os.PathLike):
            dataset = os.fspath(dataset)
        if not isinstance(dataset, str) or not dataset:
            raise TypeError(f"dataset must be a non-empty str or path, got {dataset!r}")
        recipe = as_choice(self.recipe, "recipe", RECIPES)
        linvae = recipe == "linvae"

        def optional(name, check):
            value = getattr(self, name)
            return None if value is None else check(value)

        checked = {
            "dataset": dataset,
            "n": as_int(self.n, "n", minimum=2, optional=True),
            "patch_size": as_int(self.patch_size, "patch_size", minimum=1),
            "latent": as_latent_size(self.latent, "latent"),
            "betas": _as_grid_spec(self.betas),
            "baselines": as_int(self.baselines, "baselines", minimum=0),
            "baseline_form": optional(
                "baseline_form", lambda v: as_choice(v, "baseline_form", BASELINE_FORMS)
            ),
            "recipe": recipe,
            "steps": as_int(self.steps, "steps", minimum=1, optional=True),
            "epochs": as_int(self.epochs, "epochs", minimum=1, optional=True),
            "batch_size": as_int(self.batch_size, "batch_size", minimum=1, optional=True),
            "lr": optional("lr", lambda v: as_positive(v, "lr")),
            "train_range": optional("train_range", _as_train_range),
            "polish": as_int(self.polish, "polish", minimum=0, optional=True),
            "objective": optional("objective", lambda v: as_choice(v, "objective", OBJECTIVES)),
            "beta_sampling": optional(
                "beta_sampling",
                lambda v: as_choice(v, "beta_sampling", (*BETA_SAMPLINGS, "stratified")),
            ),
            "gate_input": optional("gate_input", lambda v: as_choice(v, "gate_input", GATE_INPUTS)),
            "encoder_gate": optional(
                "encoder_gate", lambda v: as_choice(v, "encoder_gate", ACTIVATIONS)
            ),
            "decoder_gate": optional(
                "decoder_gate", lambda v: as_choice(v, "decoder_gate", ACTIVATIONS)
            ),
            "covariance_gate": optional(
                "covariance_gate",
                lambda v: as_choice(v, "covariance_gate", COVARIANCE_ACTIVATIONS),
            ),
            "hidden": as_int(self.hidden, "hidden", minimum=1, optional=True),
            "gate_thresholds": optional(
                "gate_thresholds", lambda v: as_choice(v, "gate_thresholds", GATE_THRESHOLDS)
            ),
            "device": as_device_name(self.device),
            "seed": as_seed(self.seed),
            "threads": as_int(self.threads, "threads", minimum=1),
            "compile": as_choice(self.compile, "compile", COMPILE_MODES),
            "floor": as_choice(self.floor, "floor", FLOORS),
        }
        own = RECIPE_DEFAULTS[recipe]
        for name in FIXED_BY_LINVAE:
            value = checked[name]
            if name == "hidden" and value == checked["latent"]:
                continue
            if linvae and value is not None and value != own[name]:
                raise ValueError(
                    f"{name}={value!r} is fixed by the linvae recipe ({own[name]!r}: its model "
                    "is Theorem 1's construction); the paper recipe (recipe='paper') trains "
                    "other values"
                )
        for name, value in (("beta_sampling", "stratified"), ("gate_thresholds", "square")):
            if not linvae and checked[name] == value:
                raise ValueError(f"{name}={value!r} belongs to the linvae recipe")
        if linvae and checked["objective"] == "sampled" and checked["polish"]:
            raise ValueError(
                "polish applies to the linvae recipe's exact objective (objective='exact'), "
                "not the sampled one"
            )
        if linvae and checked["epochs"] is not None:
            raise ValueError("epochs applies to the paper recipe (the linvae recipe counts steps)")
        if not linvae and checked["polish"]:
            raise ValueError("polish applies to the linvae recipe")
        if not linvae and checked["baseline_form"] == "bank":
            raise ValueError(
                "baseline_form='bank' trains the linvae recipe's one-layer β-VAEs batched; the "
                "paper recipe's β-VAEs (two layers, its own training) are trained separately "
                "(baseline_form='separate')"
            )
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def resolved(self) -> CompareConfig:
        """The config with every setting left at None given its recipe's value."""
        defaults = RECIPE_DEFAULTS[self.recipe]
        if self.recipe == "linvae" and self.objective == "sampled":
            defaults = {**defaults, **SAMPLED_DEFAULTS}
        values = {
            name: default for name, default in defaults.items() if getattr(self, name) is None
        }
        if values.get("hidden") == "k":
            values["hidden"] = self.latent
        return dataclasses.replace(self, **values)

    def to_dict(self) -> dict:
        """Every setting as JSON builtins (tuples become lists)."""
        record = dataclasses.asdict(self)
        for name in ("betas", "train_range"):
            if isinstance(record[name], tuple):
                record[name] = list(record[name])
        return record

    @classmethod
    def from_dict(cls, record: dict) -> CompareConfig:
        """The config of :meth:`to_dict`; unknown keys raise ValueError, missing ones default."""
        if not isinstance(record, dict):
            raise TypeError(f"config must be a dict, got {type(record).__name__}")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(record) - known)
        if unknown:
            raise ValueError(f"config has unknown settings {unknown}")
        values = dict(record)
        for name in ("betas", "train_range"):
            if isinstance(values.get(name), list):
                values[name] = tuple(values[name])
        return cls(**values)

    def hidden_width(self) -> int:
        """The hidden width used: ``hidden``, or the recipe's (the latent size k)."""
        return self.resolved().hidden

    def steps_for(self, n: int) -> int:
        """Optimiser steps per model on ``n`` examples (``epochs`` sets them when given)."""
        config = self.resolved()
        if config.epochs is None:
            return config.steps
        return config.epochs * math.ceil(n / config.batch_size)

    def beta_range_for(self, grid) -> tuple[float, float]:
        """The MR-VAE's training range of β for the evaluation ``grid``."""
        train_range = self.resolved().train_range
        return training_range(grid) if train_range == "auto" else train_range


def _as_train_range(value):
    if isinstance(value, str):
        if value != "auto":
            raise TypeError(
                f"train_range must be a pair of floats (lo, hi), got {value!r} (or 'auto': the "
                "grid's range, its bottom halved)"
            )
        return value
    return as_beta_range(value, "train_range")


def _as_grid_spec(betas):
    """A grid as given (a named grid or text checked by parsing), or a tuple of floats."""
    if isinstance(betas, str):
        if betas not in NAMED_GRIDS:
            parse_betas(betas)
        return betas
    return tuple(float(beta) for beta in as_betas(betas, "betas"))
