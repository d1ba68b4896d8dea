"""torch modules made of ``nn.Linear`` layers, collapsed to an :class:`AffineVAE`.

Any depth of linear layers without non-linearities computes an affine map. Rather than
trusting a module's ``forward`` to be the composition of its children, the map is
*identified* from the module itself, in float64, at ``x = 0`` and at the unit vectors, and
then *verified* on random inputs; a leaf module that is not linear is refused by name first.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from ._model import AffineVAE, NotLinearError

#: torch.nn leaf modules that are affine: linear layers and identity or shape-only modules.
#: Every other torch.nn leaf (activations, normalisation, dropout, convolutions, ...) is
#: refused by name; a custom leaf is accepted if its forward passes the affine check.
_LINEAR_LEAVES = ("Linear", "Identity", "Flatten")

# A verified map may differ from the identified one by round-off only: this many float64
# epsilons of the largest output or weight product.
_VERIFY_ULPS = 1e6


def check_linear_modules(module, name):
    """Raise NotLinearError naming the first leaf of ``module`` that is not a linear layer."""
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(module).__name__}")
    for path, child in module.named_modules():
        leaf = len(list(child.children())) == 0
        from_torch_nn = type(child).__module__.startswith("torch.nn")
        if leaf and from_torch_nn and type(child).__name__ not in _LINEAR_LEAVES:
            where = f"{name}.{path}" if path else name
            raise NotLinearError(
                f"{where} ({type(child).__name__}) is not a linear layer: linvae audits "
                "linear-Gaussian VAEs only (nn.Linear layers, nn.Identity, nn.Flatten; no "
                "activation, normalisation, dropout or convolution)"
            )


def identify_affine(function, d, name):
    """``(W (p, d), a (p,))`` with ``function(x) = x Wᵀ + a`` on float64 rows x, verified.

    ``function`` maps a float64 tensor (n, d) to a tensor (n, p). Raises NotLinearError if
    ``function`` is not affine on random inputs (to round-off).
    """
    probes = torch.cat([torch.zeros(1, d, dtype=torch.float64), torch.eye(d, dtype=torch.float64)])
    with torch.no_grad():
        values = function(probes)
        if not isinstance(values, torch.Tensor) or values.ndim != 2 or values.shape[0] != d + 1:
            shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values)
            raise ValueError(f"{name} must map (n, {d}) inputs to (n, p) outputs, got {shape}")
        values = values.to(torch.float64).numpy()
        bias = values[0].copy()
        weight = (values[1:] - bias).T.copy()  # (p, d)
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(8, d, generator=generator, dtype=torch.float64) * 3.0
        out = function(x).to(torch.float64).numpy()
    expected = x.numpy() @ weight.T + bias
    scale = np.max(np.abs(x.numpy())) * np.max(np.abs(weight), initial=0.0) * d + np.max(
        np.abs(bias), initial=0.0
    )
    error = float(np.max(np.abs(out - expected)))
    if not np.isfinite(error) or error > _VERIFY_ULPS * np.finfo(np.float64).eps * max(scale, 1.0):
        raise NotLinearError(
            f"{name} is not affine in its input (its forward departs from x Wᵀ + a by "
            f"{error:.3g} on random inputs): linvae audits linear-Gaussian VAEs only"
        )
    return weight, bias


def _as_float64(module):
    return copy.deepcopy(module).to(torch.float64)


def _first_in_features(module, name):
    for child in module.modules():
        if isinstance(child, torch.nn.Linear):
            return child.in_features
    raise ValueError(f"{name} has no nn.Linear layer to read the data size from; pass d=")


def from_torch(encoder, decoder, log_variance="split", *, d=None):
    """Collapse torch modules of ``nn.Linear`` layers to an :class:`AffineVAE`.

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps x (n, d) to the posterior mean (n, k); or to (n, 2k), mean then log-variance,
        with ``log_variance="split"``; or to a pair ``(mean, log_variance)`` with
        ``log_variance="pair"``.
    decoder : torch.nn.Module
        Maps z (n, k) to the mean of p(x|z) (n, d) (unit variance; see ``effective_beta``
        for another σ²).
    log_variance : {"split", "pair"}, torch.Tensor of shape (k,), or torch.nn.Module
        Where the posterior log-variance comes from: a free parameter (a tensor), a module
        of ``nn.Linear`` layers of x (linear in x), or the encoder's output.
    d : int, optional
        The data size; read from the encoder's first ``nn.Linear`` by default.

    Returns
    -------
    AffineVAE
        In float64; its ``mode`` is ``"fixed"`` when the log-variance does not depend on x.

    Raises
    ------
    NotLinearError
        (a TypeError) naming the first module that is not a linear layer, or a module whose
        forward is not affine.
    TypeError, ValueError
        On arguments of the wrong kind or outputs of inconsistent shapes.
    """
    check_linear_modules(encoder, "encoder")
    check_linear_modules(decoder, "decoder")
    if d is None:
        d = _first_in_features(encoder, "encoder")
    encoder64 = _as_float64(encoder)
    decoder64 = _as_float64(decoder)

    if isinstance(log_variance, str):
        if log_variance not in ("split", "pair"):
            raise ValueError(
                f"log_variance must be 'split', 'pair', a tensor or a module, got {log_variance!r}"
            )
        if log_variance == "pair":

            def both(x):
                mean, log_var = encoder64(x)
                return torch.cat([mean, log_var], dim=-1)

            weight, bias = identify_affine(both, d, "encoder")
        else:
            weight, bias = identify_affine(encoder64, d, "encoder")
        if weight.shape[0] % 2:
            raise ValueError(
                f"encoder must output mean and log-variance (2k columns), got {weight.shape[0]}"
            )
        k = weight.shape[0] // 2
        E, e, F, f = weight[:k], bias[:k], weight[k:], bias[k:]
    elif isinstance(log_variance, torch.nn.Module):
        check_linear_modules(log_variance, "log_variance")
        E, e = identify_affine(encoder64, d, "encoder")
        F, f = identify_affine(_as_float64(log_variance), d, "log_variance")
        if F.shape[0] != E.shape[0]:
            raise ValueError(
                f"log_variance must output k={E.shape[0]} columns like the encoder, got {F.shape[0]}"
            )
    elif isinstance(log_variance, torch.Tensor):
        E, e = identify_affine(encoder64, d, "encoder")
        f = log_variance.detach().cpu().to(torch.float64).numpy().reshape(-1).copy()
        if f.shape != (E.shape[0],):
            raise ValueError(f"log_variance must have shape ({E.shape[0]},), got {tuple(f.shape)}")
        F = None
    else:
        raise TypeError(
            "log_variance must be 'split', 'pair', a tensor or a module, "
            f"got {type(log_variance).__name__}"
        )
    k = E.shape[0]
    D, b = identify_affine(decoder64, k, "decoder")
    if D.shape[0] != d:
        raise ValueError(f"decoder must output d={d} columns, got {D.shape[0]}")
    if F is not None and not np.any(F):
        F = None
    return AffineVAE(E, e, f, D, b, F)
