"""What a training method is, the registry, and the plug-in of a user's own method.

A method is a model family, an objective and a schedule: a function ``train(X,
beta_range, budget) -> Trained`` (and, for a registered family, its representation floor).
Whatever it trains, it is scored through its linear maps per β
(:class:`linvae.mrvae.maps.Maps`), so every method is scored the same way
(:func:`linvae.methods.scoring.score`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from linvae._checks import as_choice, as_int, as_seed
from linvae.mrvae.maps import OBJECTIVES, Maps, check_maps, maps_of_model
from linvae.mrvae.model import LinearMRVAE


@dataclass(frozen=True)
class Budget:
    """What a method may spend, and on what.

    Attributes
    ----------
    steps : int
        Optimiser steps (each method's own step; its wall time is measured beside).
    latent : int
        Latent size k.
    objective : {"exact", "sampled"}
        The exact objective from the data's moments, or the sampled ELBO on mini-batches.
    seed : int
    """

    steps: int
    latent: int
    objective: str = "exact"
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", as_int(self.steps, "steps", minimum=1))
        object.__setattr__(self, "latent", as_int(self.latent, "latent", minimum=1))
        object.__setattr__(self, "objective", as_choice(self.objective, "objective", OBJECTIVES))
        object.__setattr__(self, "seed", as_seed(self.seed))


MapsFunction = Callable[[torch.Tensor], Maps]


@dataclass
class Trained:
    """A trained method: its maps per β and what it was.

    Attributes
    ----------
    maps : callable
        ``maps(log_beta (B,) float64) -> Maps`` (uncentred encoder ``E x + offset``).
    model : object
        The trained model (a module of :mod:`linvae.mrvae`, a user's object).
    notes : dict
        JSON builtins: settings, optimiser steps, anything worth recording.
    variants : dict
        Other readings of the same trained model, name → maps function (the bank's
        nearest member beside its interpolation), scored beside it.
    """

    maps: MapsFunction
    model: object = None
    notes: dict = field(default_factory=dict)
    variants: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    """A registered or user-supplied training method.

    Attributes
    ----------
    name : str
    description : str
    train : callable
        ``train(X (n, d) ndarray, beta_range (lo, hi), budget: Budget)``, returning a
        :class:`Trained`, a maps function, or a model with ``encode(x, log_beta) -> (mean,
        log_variance)`` and ``decode(z, log_beta) -> x̂`` (linear in x and z; read by
        :func:`probed_maps`).
    floor : callable or None
        ``floor(trained, X, betas, beta_range, iterations) -> (Trained, start)``: the family
        fitted to the analytic optimum on the grid (its representation floor, an upper
        bound, is that model's score) and a sentence saying where the fit started.
    """

    name: str
    description: str
    train: Callable
    floor: Callable | None = None


REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add a method to :data:`REGISTRY` under its name (a new name only)."""
    if not isinstance(method, Method):
        raise TypeError(f"method must be a Method, got {type(method).__name__}")
    if method.name in REGISTRY:
        raise ValueError(f"a method named {method.name!r} is already registered")
    REGISTRY[method.name] = method
    return method


def get(name: str) -> Method:
    """The registered method ``name``."""
    return REGISTRY[as_choice(name, "method", tuple(REGISTRY))]


def custom(name: str, train: Callable, description: str = "a user's method") -> Method:
    """A user's method, scored as the registered ones (not registered).

    ``train(X, beta_range, budget)`` returns a :class:`Trained`, a maps function, or a
    model with ``encode``/``decode`` (see :class:`Method`).
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {name!r}")
    if not callable(train):
        raise TypeError(f"train must be callable, got {type(train).__name__}")
    return Method(name, description, train)


def as_trained(result, d: int, k: int) -> Trained:
    """What a method's ``train`` returned, as a :class:`Trained`.

    Raises
    ------
    TypeError
        If it is none of a Trained, a LinearMRVAE, a model with ``encode``/``decode``, or a
        callable of log β.
    """
    if isinstance(result, Trained):
        return result
    if isinstance(result, LinearMRVAE):
        return Trained(lambda log_beta: maps_of_model(result, log_beta), result)
    if hasattr(result, "encode") and hasattr(result, "decode"):
        return Trained(probed_maps(result.encode, result.decode, d, k), result)
    if callable(result):
        return Trained(result)
    raise TypeError(
        "a method's train must return a Trained, a maps function of log β, or a model with "
        f"encode(x, log_beta) and decode(z, log_beta); got {type(result).__name__}"
    )


def _as64(tensor) -> torch.Tensor:
    return torch.as_tensor(tensor).detach().to(torch.float64)


def probed_maps(encode: Callable, decode: Callable, d: int, k: int) -> MapsFunction:
    """The maps of a linear-Gaussian model known only by ``encode`` and ``decode``.

    ``encode(x (n, d), log_beta (n,)) -> (mean (n, k), log_variance (n, k))`` and
    ``decode(z (n, k), log_beta (n,)) -> x̂ (n, d)`` are read at x = 0 and the unit
    vectors: ``offset = μ(0)``, ``E e_i = μ(e_i) − μ(0)``, ``bias = x̂(0)``, ``D e_j = x̂(e_j)
    − x̂(0)``; one random point more checks that the model is affine with a variance free
    of x (ValueError if not: such a model has no exact score).
    """
    d, k = as_int(d, "d", minimum=1), as_int(k, "k", minimum=1)

    def maps(log_beta: torch.Tensor) -> Maps:
        B = log_beta.shape[0]
        probe_x = torch.cat([torch.zeros(1, d), torch.eye(d)]).to(torch.float64)
        probe_z = torch.cat([torch.zeros(1, k), torch.eye(k)]).to(torch.float64)
        generator = torch.Generator().manual_seed(0)
        check_x = torch.randn(1, d, generator=generator, dtype=torch.float64)
        check_z = torch.randn(1, k, generator=generator, dtype=torch.float64)
        xs = torch.cat([probe_x, check_x]).repeat(B, 1)  # (B·(d+2), d)
        zs = torch.cat([probe_z, check_z]).repeat(B, 1)  # (B·(k+2), k)
        with torch.no_grad():
            mu, log_var = encode(xs, log_beta.repeat_interleave(d + 2))
            xhat = decode(zs, log_beta.repeat_interleave(k + 2))
        single = torch.as_tensor(mu).dtype != torch.float64
        mu, log_var = _as64(mu).reshape(B, d + 2, k), _as64(log_var).reshape(B, d + 2, k)
        xhat = _as64(xhat).reshape(B, k + 2, d)
        offset, bias = mu[:, 0], xhat[:, 0]
        E = (mu[:, 1 : d + 1] - offset.unsqueeze(1)).transpose(1, 2)  # (B, k, d)
        D = (xhat[:, 1 : k + 1] - bias.unsqueeze(1)).transpose(1, 2)  # (B, d, k)
        predicted_mu = (E @ check_x[0]) + offset
        predicted_x = (D @ check_z[0]) + bias
        size = 1.0 + float(mu.abs().max() + xhat.abs().max())
        tolerance = size * (1e-3 if single else 1e-9)
        if (
            float((predicted_mu - mu[:, -1]).abs().max()) > tolerance
            or float((predicted_x - xhat[:, -1]).abs().max()) > tolerance
            or float((log_var - log_var[:, :1]).abs().max()) > tolerance
        ):
            raise ValueError(
                "the model is not linear-Gaussian: its posterior mean or reconstruction is "
                "not affine, or its variance depends on x"
            )
        return Maps(E, torch.exp(log_var[:, 0]), D, offset, bias)

    return maps


def trained_maps(trained: Trained, log_beta) -> Maps:
    """The checked float64 maps of a trained method at η (B,)."""
    log_beta = torch.as_tensor(np.asarray(log_beta, dtype=np.float64))
    with torch.no_grad():
        maps = check_maps(trained.maps(log_beta), batch=log_beta.shape[0])
    return Maps(*(_as64(t) for t in maps))
