"""One bad value, one answer: every public entry point that takes a seed, a latent size, a β,
a β range or a device refuses the same bad value with the same exception and words."""

import numpy as np
import pytest

from linvae import _checks, analytic, audit, data
from linvae.compare import CompareConfig
from linvae.construction import decoder_response_layers
from linvae.mrvae import LinearMRVAE, LinearVAE, TrainConfig
from linvae.mrvae.floor import representation_floor
from linvae.mrvae.gates import Gate
from linvae.mrvae.train import train

COV = np.diag([3.0, 1.0, 0.2])
X = data.gaussian_data(8, [3.0, 1.0, 0.2], seed=0)[0]
PARAMS = analytic.optimum(COV, 2, 0.5)

# Each entry: a call taking the bad value of one argument.
SEEDS = {
    "load": lambda seed: data.load("digits", n=4, seed=seed),
    "gaussian_data": lambda seed: data.gaussian_data(8, [1.0, 0.5], seed=seed),
    "LinearMRVAE": lambda seed: LinearMRVAE(3, 2, seed=seed),
    "LinearVAE": lambda seed: LinearVAE(3, 2, seed=seed),
    "TrainConfig": lambda seed: TrainConfig(seed=seed),
    "CompareConfig": lambda seed: CompareConfig(seed=seed),
    "representation_floor": lambda seed: representation_floor(COV, 2, [0.5], seed=seed),
}
LATENT_SIZES = {
    "optimum": lambda k: analytic.optimum(COV, k, 0.5),
    "decoder_optimum": lambda k: analytic.decoder_optimum(COV, k, 0.5),
    "rate_distortion": lambda k: analytic.rate_distortion(np.diag(COV), k, [0.5]),
    "LinearMRVAE": lambda k: LinearMRVAE(3, k),
    "LinearVAE": lambda k: LinearVAE(3, k),
    "representation_floor": lambda k: representation_floor(COV, k, [0.5]),
    "decoder_response_layers": lambda k: decoder_response_layers(np.diag(COV), np.eye(3), k),
}
BETAS = {
    "optimum": lambda beta: analytic.optimum(COV, 2, beta),
    "encoder_optimum": lambda beta: analytic.encoder_optimum(PARAMS.D, beta),
    "covariance_optimum": lambda beta: analytic.covariance_optimum(PARAMS.D, beta),
    "decoder_optimum": lambda beta: analytic.decoder_optimum(COV, 2, beta),
    "best_response": lambda beta: analytic.best_response(PARAMS.D, beta),
    "objective": lambda beta: analytic.objective(PARAMS, np.zeros(3), COV, beta),
    "gradients": lambda beta: analytic.gradients(PARAMS, COV, beta),
    "audit": lambda beta: audit.audit(PARAMS, (np.zeros(3), COV), beta),
    "effective_beta": lambda beta: audit.effective_beta(beta),
    "params_at": lambda beta: LinearMRVAE(3, 2).params_at(beta),
    "train": lambda beta: train(LinearVAE(3, 2), X, TrainConfig(steps=1), beta=beta),
}
BETA_RANGES = {
    "Gate": lambda value: Gate(2, beta_range=value),
    "LinearMRVAE": lambda value: LinearMRVAE(3, 2, beta_range=value),
    "TrainConfig": lambda value: TrainConfig(beta_range=value),
    "CompareConfig": lambda value: CompareConfig(train_range=value),
}
DEVICES = {
    "moments": lambda device: analytic.moments(X, device=device),
    "spectrum": lambda device: analytic.spectrum(COV, device=device),
    "resolve_device": lambda device: _checks.resolve_device(device),
    "train": lambda device: train(
        LinearVAE(3, 2), X, TrainConfig(steps=1), beta=1.0, device=device
    ),
    "CompareConfig": lambda device: CompareConfig(device=device),
}


def _cases(calls, bad_values):
    return [
        pytest.param(call, value, error, message, id=f"{name}-{value!r}")
        for name, call in calls.items()
        for value, error, message in bad_values
    ]


def _named(message, name):
    """The expected message with the argument's own name (``train_range`` in CompareConfig)."""
    return message.replace("beta_range", name)


@pytest.mark.parametrize(
    ("call", "value", "error", "message"),
    _cases(
        SEEDS,
        [
            (1.5, TypeError, "seed must be an integer, got float"),
            ("0", TypeError, "seed must be an integer, got str"),
            (True, TypeError, "seed must be an integer, got bool"),
            (-1, ValueError, "seed must be >= 0, got -1"),
        ],
    ),
)
def test_a_bad_seed_gets_the_same_answer_everywhere(call, value, error, message):
    with pytest.raises(error, match=f"^{message}$"):
        call(value)


@pytest.mark.parametrize(
    ("call", "value", "error", "message"),
    _cases(
        LATENT_SIZES,
        [
            (2.0, TypeError, "k must be an integer, got float"),
            (0, ValueError, "k must be >= 1, got 0"),
            (-3, ValueError, "k must be >= 1, got -3"),
        ],
    ),
)
def test_a_bad_latent_size_gets_the_same_answer_everywhere(call, value, error, message):
    with pytest.raises(error, match=f"^{message}$"):
        call(value)


def test_the_compare_config_names_its_latent_size_latent():
    with pytest.raises(TypeError, match="^latent must be an integer, got float$"):
        CompareConfig(latent=2.0)
    with pytest.raises(ValueError, match="^latent must be >= 1, got 0$"):
        CompareConfig(latent=0)


@pytest.mark.parametrize(
    ("call", "value", "error", "message"),
    _cases(
        BETAS,
        [
            (0.0, ValueError, "beta must be finite and > 0, got 0.0"),
            (-1, ValueError, "beta must be finite and > 0, got -1.0"),
            (float("nan"), ValueError, "beta must be finite and > 0, got nan"),
            (float("inf"), ValueError, "beta must be finite and > 0, got inf"),
            ("1", TypeError, "beta must be a real number, got str"),
            (True, TypeError, "beta must be a real number, got bool"),
        ],
    ),
)
def test_a_bad_beta_gets_the_same_answer_everywhere(call, value, error, message):
    with pytest.raises(error, match=f"^{message}$"):
        call(value)


@pytest.mark.parametrize(
    ("call", "value", "error", "message"),
    _cases(
        BETA_RANGES,
        [
            ((1.0, 0.1), ValueError, r"beta_range must satisfy 0 < lo < hi \(finite\), got"),
            ((0.0, 1.0), ValueError, r"beta_range must satisfy 0 < lo < hi \(finite\), got"),
            ("wide", TypeError, r"beta_range must be a pair of floats \(lo, hi\), got 'wide'"),
        ],
    ),
)
def test_a_bad_beta_range_gets_the_same_answer_everywhere(call, value, error, message, request):
    name = "train_range" if "CompareConfig" in request.node.callspec.id else "beta_range"
    with pytest.raises(error, match=f"^{_named(message, name)}"):
        call(value)


@pytest.mark.parametrize(
    ("call", "value", "error", "message"),
    _cases(
        DEVICES,
        [
            ("tpu", ValueError, "device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'tpu'"),
            (3, TypeError, "device must be a str or torch.device, got int"),
        ],
    ),
)
def test_a_bad_device_gets_the_same_answer_everywhere(call, value, error, message):
    with pytest.raises(error, match=f"^{message}$"):
        call(value)


@pytest.mark.parametrize(
    ("check", "value", "error", "message"),
    [
        (
            lambda v: _checks.as_int(v, "steps", minimum=1),
            2.5,
            TypeError,
            "steps must be an integer",
        ),
        (lambda v: _checks.as_int(v, "steps", minimum=1), np.int64(0), ValueError, ">= 1, got 0"),
        (lambda v: _checks.as_int(v, "n", optional=True), 1.0, TypeError, "integer or None"),
        (lambda v: _checks.as_positive(v, "lr"), np.float32("nan"), ValueError, "finite and > 0"),
        (lambda v: _checks.as_fraction(v, "w"), 1.0, ValueError, r"w must be in \[0, 1\)"),
        (lambda v: _checks.as_choice(v, "objective", ("a", "b")), "c", ValueError, "one of"),
        (lambda v: _checks.as_betas(v), [], ValueError, "betas must not be empty"),
        (lambda v: _checks.as_betas(v), [[1.0]], ValueError, "scalar or 1-D"),
        (lambda v: _checks.as_float_array(v, "X"), [1.0, np.inf], ValueError, "X must be finite"),
        (lambda v: _checks.as_float_array(v, "X"), [1j], TypeError, "X must be real"),
        (
            lambda v: _checks.as_float_array(v, "eigvals"),
            [1.0, [2.0, 3.0]],
            ValueError,
            "eigvals must be a rectangular array",
        ),
    ],
)
def test_the_checks_themselves(check, value, error, message):
    with pytest.raises(error, match=message):
        check(value)


def test_good_values_come_back_canonical():
    assert _checks.as_int(np.int32(3), "k") == 3 and type(_checks.as_int(np.int32(3), "k")) is int
    assert _checks.as_beta(np.float32(0.5)) == 0.5
    assert _checks.as_beta_range([0.1, 10]) == (0.1, 10.0)
    assert _checks.as_int(None, "n", optional=True) is None
    assert _checks.as_device_name("cuda:1") == "cuda:1"
