"""Model weights on disk: safetensors, with each model's config beside its tensors.

A checkpoint is one ``.safetensors`` file holding the tensors of one or more models (named
``"<i>.<parameter>"``) and, in its metadata, each model's :meth:`LinearMRVAE.config` and any
extra fields the caller adds (the β of each β-VAE). safetensors stores raw tensors and a
JSON header only: reading one can run no code, unlike a pickle (torch's ``.pt`` format).
Checkpoints written by earlier versions (``.pt``) are still read, with
``torch.load(weights_only=True)``; a ``.pt`` that holds anything but tensors is refused
with one line of linvae's, never torch's advice to load it unsafely.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch

from linvae._io import atomic_write_bytes

from .model import LinearMRVAE, model_from_config

FORMAT = "linvae-weights/1"


class CheckpointError(ValueError):
    """A weights file that cannot be read back: unknown format, wrong tensors, NaN, a pickle."""


def _fail(path, fault) -> CheckpointError:
    return CheckpointError(f"cannot read the weights {path}: {fault}")


def save_models(path, models, **metadata) -> None:
    """Write ``models`` (LinearMRVAE or LinearVAE) as one safetensors file, atomically.

    ``metadata`` values must be JSON-serialisable; they come back from :func:`load_models`.
    """
    from safetensors.torch import save

    tensors = {}
    for i, model in enumerate(models):
        for name, tensor in model.state_dict().items():
            tensors[f"{i}.{name}"] = tensor.detach().cpu().contiguous()
    header = {"format": FORMAT, "configs": json.dumps([model.config() for model in models])}
    header.update({key: json.dumps(value) for key, value in metadata.items()})
    atomic_write_bytes(path, save(tensors, metadata=header))


def _check_finite(path, state: dict) -> None:
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise _fail(path, f"{name} holds NaN or infinite values")


def _shape(tensor) -> str:
    return " × ".join(map(str, tensor.shape)) or "a scalar"


def _misfit(model, state: dict) -> str | None:
    """What keeps ``state`` from fitting ``model``, in one line (None when it fits)."""
    if not isinstance(state, dict):
        return f"expected a dict of tensors, got {type(state).__name__}"
    expected = model.state_dict()
    faults = [f"{name} is not a tensor" for name, t in state.items() if not torch.is_tensor(t)]
    faults += [f"{name} is missing" for name in expected if name not in state]
    state = {name: tensor for name, tensor in state.items() if torch.is_tensor(tensor)}
    faults += [f"{name} is not one of the model's" for name in state if name not in expected]
    faults += [
        f"{name} is {_shape(state[name])}, the model's {_shape(tensor)}"
        for name, tensor in expected.items()
        if name in state and tuple(state[name].shape) != tuple(tensor.shape)
    ]
    if not faults:
        return None
    more = f" and {len(faults) - 3} more" if len(faults) > 3 else ""
    return "; ".join(faults[:3]) + more


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _check_expected(path, config, expected) -> None:
    for key, value in (expected or {}).items():
        if not isinstance(config, dict) or config.get(key) != value:
            got = config.get(key) if isinstance(config, dict) else None
            raise _fail(
                path, f"it holds a model with {key} = {got!r}, the run's has {key} = {value}"
            )


def _rebuild(path, config: dict, state: dict, expected=None) -> LinearMRVAE:
    _check_expected(path, config, expected)
    try:
        model = model_from_config(config)
        fault = _misfit(model, state)
        if fault is None:
            model.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError, KeyError) as error:
        fault = _one_line(error)
    if fault is not None:
        raise _fail(path, f"the tensors do not fit the model they describe ({fault})")
    _check_finite(path, state)
    return model


def load_models(path, expected: dict | None = None) -> tuple[list[LinearMRVAE], dict]:
    """The models of a safetensors checkpoint and its extra metadata.

    ``expected`` (e.g. ``{"d": 64, "k": 8}``) are fields every model's config must have
    (checked before a model is built).

    Raises
    ------
    CheckpointError
        Naming the file, one line: not a linvae checkpoint, a model that is not ``expected``,
        tensors that do not fit the configs, or NaN/inf weights.
    OSError
        If the file cannot be opened.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except SafetensorError as error:
        raise _fail(path, f"not a safetensors file ({_one_line(error)})") from None
    if header.get("format") != FORMAT:
        raise _fail(path, f"not a linvae checkpoint (format {header.get('format')!r})")
    try:
        configs = json.loads(header.pop("configs"))
        extra = {key: json.loads(value) for key, value in header.items() if key != "format"}
    except (KeyError, ValueError) as error:
        raise _fail(path, f"its metadata is not readable ({_one_line(error)})") from None
    if not isinstance(configs, list):
        raise _fail(path, f"its configs are not a list, got {type(configs).__name__}")
    models = []
    for i, config in enumerate(configs):
        prefix = f"{i}."
        state = {name[len(prefix) :]: t for name, t in tensors.items() if name.startswith(prefix)}
        models.append(_rebuild(path, config, state, expected))
    return models, extra


def load_legacy(
    path, config: dict | None = None, expected: dict | None = None
) -> tuple[list[LinearMRVAE], dict]:
    """The models of a ``.pt`` file of an earlier version, read with ``weights_only=True``.

    Two layouts: a state dict (one model; its ``config`` comes from the run's report), or
    ``{"betas", "config", "state_dicts"}`` (the β-VAEs). ``expected`` as for
    :func:`load_models`. Returns what :func:`load_models` returns.

    Raises
    ------
    CheckpointError
        If the file holds anything but tensors and plain containers (a pickle payload), or
        tensors that do not fit.
    """
    try:
        state = torch.load(path, weights_only=True)
    except pickle.UnpicklingError:
        raise _fail(
            path,
            "it holds Python objects other than tensors (a pickle payload), which linvae does "
            "not load",
        ) from None
    except (RuntimeError, EOFError, ValueError) as error:
        first = (str(error).splitlines() or ["unreadable"])[0]
        raise _fail(path, f"not a torch weights file ({first})") from None
    if not isinstance(state, dict):
        raise _fail(path, f"expected a dict of tensors, got {type(state).__name__}")
    if "state_dicts" in state:
        models = [
            _rebuild(path, state["config"], weights, expected) for weights in state["state_dicts"]
        ]
        return models, {"betas": [float(beta) for beta in state["betas"]]}
    if config is None:
        raise _fail(path, "a bare state dict needs the model's config")
    return [_rebuild(path, config, state, expected)], {}
