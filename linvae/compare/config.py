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
from linvae.mrvae.train import BETA_SAMPLINGS, COMPILE_MODES, OBJECTIVES

#: The paper's training range of β (appendix C.1).
PAPER_RANGE = (0.01, 10.0)

GATE_THRESHOLDS = ("staggered", "shared")
FLOORS = ("model", "paper", "none")


@dataclass(frozen=True)
class CompareConfig:
    """The settings of one comparison: data, models, training, evaluation.

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
        The evaluation grid: ``"LO:HI:N"`` (log-spaced), ``"B1,B2,..."``, ``"paper"``
        (0.01:10:31) or ``"full"`` (from the spectrum, see
        :func:`linvae.analytic.beta_grid`); or the values themselves.
    baselines : int
        Number of β-VAEs, at log-spaced β over the grid's range; 0 for none.
    objective : {"sampled", "exact"}
        Training objective (:class:`linvae.mrvae.train.TrainConfig`).
    steps : int
        Optimiser steps per model (ignored when ``epochs`` is set).
    epochs : int or None
        Passes over the data per model: ``steps = epochs · ⌈n / batch_size⌉``.
    batch_size : int
        Examples per step (sampled) or values of β per step (exact).
    lr : float
        Peak Adam learning rate.
    beta_sampling : {"example", "batch"}
        The MR-VAE draws log β per example or per mini-batch.
    train_range : (float, float)
        The MR-VAE's training range of β.
    gate_input, encoder_gate, decoder_gate, covariance_gate
        The MR-VAE's gates (:class:`linvae.mrvae.model.LinearMRVAE`).
    hidden : int or None
        Width of the hidden layers of encoder and decoder; None for 2k.
    gate_thresholds : {"staggered", "shared"}
        Initial gate thresholds spread over the range or shared by all units.
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
    objective: str = "sampled"
    steps: int = 10000
    epochs: int | None = None
    batch_size: int = 128
    lr: float = 1e-2
    beta_sampling: str = "example"
    train_range: tuple[float, float] = PAPER_RANGE
    gate_input: str = "standardized"
    encoder_gate: str = "sqrt"
    decoder_gate: str = "sqrt"
    covariance_gate: str = "hinge"
    hidden: int | None = None
    gate_thresholds: str = "staggered"
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
        checked = {
            "dataset": dataset,
            "n": as_int(self.n, "n", minimum=2, optional=True),
            "patch_size": as_int(self.patch_size, "patch_size", minimum=1),
            "latent": as_latent_size(self.latent, "latent"),
            "betas": _as_grid_spec(self.betas),
            "baselines": as_int(self.baselines, "baselines", minimum=0),
            "objective": as_choice(self.objective, "objective", OBJECTIVES),
            "steps": as_int(self.steps, "steps", minimum=1),
            "epochs": as_int(self.epochs, "epochs", minimum=1, optional=True),
            "batch_size": as_int(self.batch_size, "batch_size", minimum=1),
            "lr": as_positive(self.lr, "lr"),
            "beta_sampling": as_choice(self.beta_sampling, "beta_sampling", BETA_SAMPLINGS),
            "train_range": as_beta_range(self.train_range, "train_range"),
            "gate_input": as_choice(self.gate_input, "gate_input", GATE_INPUTS),
            "encoder_gate": as_choice(self.encoder_gate, "encoder_gate", ACTIVATIONS),
            "decoder_gate": as_choice(self.decoder_gate, "decoder_gate", ACTIVATIONS),
            "covariance_gate": as_choice(
                self.covariance_gate, "covariance_gate", COVARIANCE_ACTIVATIONS
            ),
            "hidden": as_int(self.hidden, "hidden", minimum=1, optional=True),
            "gate_thresholds": as_choice(self.gate_thresholds, "gate_thresholds", GATE_THRESHOLDS),
            "device": as_device_name(self.device),
            "seed": as_seed(self.seed),
            "threads": as_int(self.threads, "threads", minimum=1),
            "compile": as_choice(self.compile, "compile", COMPILE_MODES),
            "floor": as_choice(self.floor, "floor", FLOORS),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)

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
        """The hidden width used: ``hidden``, or 2k when it is None."""
        return 2 * self.latent if self.hidden is None else self.hidden

    def steps_for(self, n: int) -> int:
        """Optimiser steps per model on ``n`` examples (``epochs`` sets them when given)."""
        if self.epochs is None:
            return self.steps
        return self.epochs * math.ceil(n / self.batch_size)


def _as_grid_spec(betas):
    """A grid as given (a named grid or text checked by parsing), or a tuple of floats."""
    if isinstance(betas, str):
        if betas not in NAMED_GRIDS:
            parse_betas(betas)
        return betas
    return tuple(float(beta) for beta in as_betas(betas, "betas"))
