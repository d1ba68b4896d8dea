r"""A training loss convention mapped to the β of the unit-variance model (docs/audit.md).

A user's per-example loss of a Gaussian-decoder VAE is, for some convention,

.. math::

    \ell_{\text{user}} = \frac{h}{\sigma^2 \, n_{\text{rec}}} \lVert x - \hat x \rVert^2
        + \frac{w}{n_{\text{kl}}} \sum_{j=1}^k \mathrm{KL}_j + \text{const},

with ``h = ½`` (the Gaussian log-likelihood) or ``1`` (a plain squared error), ``n_rec = 1``
(summed over the d pixels) or ``d`` (averaged), ``n_kl = 1`` or ``k``, ``w`` an extra KL
weight and ``σ²`` the fixed decoder variance. Dividing by the positive constant
``2h / (σ² n_rec)`` changes no minimiser and gives ``½‖x − x̂‖² + β_eff Σ_j KL_j``, the
unit-variance β-VAE loss (eq. 13) with

.. math::

    \beta_{\text{eff}} = \frac{w \, \sigma^2 \, n_{\text{rec}}}{2 h \, n_{\text{kl}}}.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from linvae._checks import as_beta, as_int

RECONSTRUCTIONS = ("sum", "mean")
KL_REDUCTIONS = ("sum", "mean")
LIKELIHOODS = ("gaussian",)

# Likelihoods users name that are outside the linear-Gaussian family, with the reason.
_OUTSIDE = {
    "bernoulli": "a Bernoulli decoder (binary cross-entropy) is not Gaussian",
    "bce": "binary cross-entropy is a Bernoulli decoder, not a Gaussian one",
    "categorical": "a categorical decoder is not Gaussian",
    "laplace": "a Laplace decoder (L1 loss) is not Gaussian",
    "l1": "an L1 reconstruction loss is a Laplace decoder, not a Gaussian one",
    "beta": "a Beta decoder is not Gaussian",
    "logistic": "a (discretised) logistic decoder is not Gaussian",
}


def _choice(value, name, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def _size(value, name, needed_for):
    if value is None:
        raise ValueError(f"{name} is required with {needed_for}")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Convention:
    """A loss convention named after where it came from, as its library writes the loss.

    Attributes
    ----------
    name : str
        The preset's name (``effective_beta(β, preset=name)``, ``--convention name``).
    source : str
        The library and class.
    loss : str
        The loss line as the library writes it.
    options : dict
        The :func:`effective_beta` keywords it amounts to.
    needs : tuple of str
        Keywords the user must give (a KL weight, a variance), or ``batch_size`` and ``n``.
    """

    name: str
    source: str
    loss: str
    options: dict
    needs: tuple = ()


#: The presets: each library's β-VAE loss as the β of the unit-variance model (docs/audit.md).
PRESETS = {
    convention.name: convention
    for convention in (
        Convention(
            "unit",
            "the unit-variance model of eq. 13 (linvae's own)",
            "0.5 * ((x - x_hat) ** 2).sum(-1) + beta * kl.sum(-1)",
            {},
        ),
        Convention(
            "pythae",
            "pythae 0.1.2 BetaVAE (and VAE, beta = 1), reconstruction_loss='mse'",
            "0.5 * F.mse_loss(recon_x, x, reduction='none').sum(dim=-1) + self.beta * KLD",
            {"reconstruction": "sum", "half": True},
        ),
        Convention(
            "pythae-0.1.1",
            "pythae before 0.1.2 BetaVAE, reconstruction_loss='mse' (no ½)",
            "F.mse_loss(recon_x, x, reduction='none').sum(dim=-1) + self.beta * KLD",
            {"reconstruction": "sum", "half": False},
        ),
        Convention(
            "pytorch-vae",
            "PyTorch-VAE (AntixK) BetaVAE, loss_type='H'",
            "F.mse_loss(recons, input) + self.beta * kld_weight * kld_loss",
            {"reconstruction": "mean", "half": False},
            needs=("kld_weight",),
        ),
        Convention(
            "mse-sum",
            "a plain training loop",
            "F.mse_loss(x_hat, x, reduction='sum') + beta * kl.sum()",
            {"reconstruction": "sum", "half": False},
        ),
        Convention(
            "gaussian-nll",
            "a Gaussian decoder of fixed variance σ²",
            "0.5 * ((x - x_hat) ** 2).sum(-1) / sigma**2 + beta * kl.sum(-1)",
            {"reconstruction": "sum", "half": True},
            needs=("decoder_variance",),
        ),
    )
}


def preset_options(name, *, kld_weight=None, batch_size=None, n=None, decoder_variance=None):
    """The :func:`effective_beta` keywords of the preset ``name``.

    ``pytorch-vae`` needs its ``kld_weight``: give it, or ``batch_size`` and the data set
    size ``n`` (PyTorch-VAE's default, ``kld_weight = batch_size / n``). ``gaussian-nll``
    needs the ``decoder_variance`` σ².

    Raises
    ------
    ValueError
        For an unknown name or a missing value.
    """
    if name not in PRESETS:
        raise ValueError(f"convention must be one of {tuple(PRESETS)}, got {name!r}")
    options = dict(PRESETS[name].options)
    if name == "pytorch-vae":
        if kld_weight is None:
            if batch_size is None or n is None:
                raise ValueError(
                    "the pytorch-vae convention needs kld_weight, or batch_size and n (its "
                    "default kld_weight is batch_size / n)"
                )
            kld_weight = as_int(batch_size, "batch_size", minimum=1) / as_int(n, "n", minimum=1)
        options["kl_weight"] = as_beta(kld_weight, "kld_weight")
    elif kld_weight is not None or batch_size is not None:
        raise ValueError(f"kld_weight and batch_size belong to pytorch-vae, not to {name!r}")
    if name == "gaussian-nll":
        if decoder_variance is None:
            raise ValueError("the gaussian-nll convention needs decoder_variance (σ²)")
        options["decoder_variance"] = as_beta(decoder_variance, "decoder_variance")
    elif decoder_variance is not None:
        raise ValueError(f"decoder_variance belongs to gaussian-nll, not to {name!r}")
    return options


def effective_beta(
    beta=1.0,
    *,
    reconstruction="sum",
    half=True,
    kl="sum",
    kl_weight=1.0,
    decoder_variance=1.0,
    likelihood="gaussian",
    d=None,
    k=None,
):
    r"""The β of the unit-variance model (eq. 13) that a training convention optimises.

    The user's loss is ``(h / (σ² n_rec)) ‖x − x̂‖² + (β · w / n_kl) Σ_j KL_j`` (see the module
    docstring); it has the same minimisers as ``½‖x − x̂‖² + β_eff Σ_j KL_j`` with
    ``β_eff = β w σ² n_rec / (2 h n_kl)``.

    Parameters
    ----------
    beta : float, default 1.0
        The user's KL weight β (``1`` for a plain VAE).
    reconstruction : {"sum", "mean"}, default "sum"
        Squared error summed over the ``d`` data dimensions or averaged over them
        (``F.mse_loss(..., reduction="mean")`` per example).
    half : bool, default True
        Whether the squared error carries the ``½`` of the Gaussian log-likelihood
        (``True``) or is a plain ``‖x − x̂‖²`` (``False``, an MSE loss).
    kl : {"sum", "mean"}, default "sum"
        KL summed over the ``k`` latents or averaged over them.
    kl_weight : float, default 1.0
        An extra factor on the KL term (e.g. ``batch_size / N`` of a minibatch estimator).
    decoder_variance : float, default 1.0
        The fixed σ² of ``p(x|z) = N(x̂, σ² I)``; the squared error is divided by it.
    likelihood : str, default "gaussian"
        Only ``"gaussian"``: any other decoder is outside the linear-Gaussian family.
    d, k : int, optional
        Data and latent sizes; required with ``reconstruction="mean"`` and ``kl="mean"``.

    Returns
    -------
    float
        ``β_eff``, a normal float64 > 0: audit the trained model with ``audit(..., beta=β_eff)``. Losses in
        the user's units are ``2h/(σ² n_rec)`` times ours, up to a constant.

    Raises
    ------
    ValueError
        On a non-Gaussian ``likelihood`` (naming why it is outside the family), an unknown
        reduction, a missing ``d``/``k``, a non-positive weight or variance, or a ``β_eff``
        that overflows float64 or underflows below its smallest normal number.
    TypeError
        If a weight is not a real number or ``half`` not a bool.
    """
    if not isinstance(likelihood, str):
        raise TypeError(f"likelihood must be a string, got {type(likelihood).__name__}")
    if likelihood.lower() != "gaussian":
        reason = _OUTSIDE.get(likelihood.lower(), f"the likelihood {likelihood!r} is not Gaussian")
        raise ValueError(
            f"likelihood={likelihood!r} is outside the linear-Gaussian family: {reason}; the "
            "linear VAE's optimum (and this β) exists only for a Gaussian decoder N(Dz + b, σ²I)"
        )
    beta = as_beta(beta)
    kl_weight = as_beta(kl_weight, "kl_weight")
    variance = as_beta(decoder_variance, "decoder_variance")
    if not isinstance(half, bool):
        raise TypeError(f"half must be True or False, got {type(half).__name__}")
    _choice(reconstruction, "reconstruction", RECONSTRUCTIONS)
    _choice(kl, "kl", KL_REDUCTIONS)
    n_rec = _size(d, "d", 'reconstruction="mean"') if reconstruction == "mean" else 1
    n_kl = _size(k, "k", 'kl="mean"') if kl == "mean" else 1
    h = 0.5 if half else 1.0
    effective = beta * kl_weight * variance * n_rec / (2.0 * h * n_kl)
    if not np.finfo(np.float64).tiny <= effective <= np.finfo(np.float64).max:
        where = "overflows" if effective > 1.0 else "underflows"
        raise ValueError(
            f"the effective β = β·kl_weight·decoder_variance·{n_rec}/({2.0 * h:g}·{n_kl}) "
            f"{where} float64 (β = {beta:.3g}, kl_weight = {kl_weight:.3g}, decoder_variance = "
            f"{variance:.3g}): rescale them"
        )
    return effective


def parse_convention(text, *, n=None):
    """Keyword arguments of :func:`effective_beta` from ``"key=value,key=value"``, or from a
    preset's name first: ``"pytorch-vae,kld_weight=0.01"``, ``"mse-sum"``.

    Keys: ``reconstruction``, ``half``, ``kl``, ``kl_weight``, ``decoder_variance``,
    ``likelihood``; after a preset, the values it needs (``kld_weight`` or ``batch_size``,
    ``decoder_variance``). ``n`` is the data set size (for ``batch_size``). Raises
    ValueError naming the offending item.
    """
    if not isinstance(text, str):
        raise TypeError(f"convention must be a string, got {type(text).__name__}")
    items = [part.strip() for part in text.split(",") if part.strip()]
    if items and "=" not in items[0]:
        if items[0] not in PRESETS:
            raise ValueError(
                f"convention item {items[0]!r} must be key=value or a preset name "
                f"({', '.join(PRESETS)})"
            )
        return _parse_preset(items[0], items[1:], n)
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            raise ValueError(f"convention item {item!r} must be key=value")
        if key in ("reconstruction", "kl", "likelihood"):
            options[key] = value
        elif key == "half":
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"convention half={value!r} must be true or false")
            options[key] = value.lower() in ("true", "1", "yes")
        elif key in ("kl_weight", "decoder_variance"):
            try:
                options[key] = float(value)
            except ValueError:
                raise ValueError(f"convention {key}={value!r} must be a number") from None
        else:
            raise ValueError(
                f"convention key {key!r} is unknown; expected reconstruction, half, kl, "
                "kl_weight, decoder_variance or likelihood"
            )
    return options


def _parse_preset(name, items, n):
    """The options of a preset named in a convention string, with its ``key=value`` extras."""
    extras = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in ("kld_weight", "batch_size", "decoder_variance"):
            raise ValueError(
                f"convention item {item!r} after a preset must be kld_weight=, batch_size= or "
                "decoder_variance="
            )
        try:
            extras[key] = int(value) if key == "batch_size" else float(value)
        except ValueError:
            raise ValueError(f"convention {key}={value!r} must be a number") from None
    return preset_options(name, n=n, **extras)
