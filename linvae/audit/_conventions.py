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

from linvae._checks import as_beta

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
        ``β_eff`` > 0: audit the trained model with ``audit(..., beta=β_eff)``. Losses in
        the user's units are ``2h/(σ² n_rec)`` times ours, up to a constant.

    Raises
    ------
    ValueError
        On a non-Gaussian ``likelihood`` (naming why it is outside the family), an unknown
        reduction, a missing ``d``/``k``, or a non-positive weight or variance.
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
    return beta * kl_weight * variance * n_rec / (2.0 * h * n_kl)


def parse_convention(text):
    """Keyword arguments of :func:`effective_beta` from ``"key=value,key=value"``.

    Keys: ``reconstruction``, ``half``, ``kl``, ``kl_weight``, ``decoder_variance``,
    ``likelihood``. Raises ValueError naming the offending item.
    """
    if not isinstance(text, str):
        raise TypeError(f"convention must be a string, got {type(text).__name__}")
    options = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
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
