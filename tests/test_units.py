"""Bits, MSE and PSNR: the optimal curve in the units of the rate-distortion literature is
Shannon's R(D) of a diagonal Gaussian source, computed here independently."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import betas, spectra_with_ties

from linvae.analytic import distortion_in, rate_distortion, rate_in
from linvae.analytic.cli import main


def shannon(eigvals, theta):
    """R(D) of N(0, diag(λ)) under squared error at water level θ (Cover & Thomas 10.3.3):
    R = Σ_i ½ log₂⁺(λ_i / θ) bits, D = Σ_i min(λ_i, θ); written in plain Python."""
    rate = sum(0.5 * math.log2(lam / theta) for lam in eigvals if lam > theta)
    distortion = sum(min(lam, theta) for lam in eigvals)
    return rate, distortion


@given(spectra_with_ties(max_dim=8), betas(1e-3, 1e3))
def test_the_curve_in_bits_and_mse_is_shannons_rate_distortion_function(eigvals, theta):
    d = eigvals.shape[0]
    curve = rate_distortion(eigvals, d, [theta])  # k = d: every direction may be active
    rate_bits = float(rate_in(curve.rate, "bits")[0])
    mse = float(distortion_in(curve.distortion, d, "mse")[0])
    expected_rate, expected_distortion = shannon(eigvals.tolist(), theta)
    scale = max(1.0, float(eigvals.sum()))
    assert rate_bits == pytest.approx(expected_rate, rel=1e-12, abs=1e-12)
    assert mse * d == pytest.approx(expected_distortion, rel=1e-12, abs=1e-12 * scale)


@given(st.floats(1e-6, 1e3), st.integers(1, 1000), st.floats(0.1, 300))
def test_psnr_is_ten_log10_of_peak_squared_over_mse(mse, d, peak):
    distortion = 0.5 * d * math.log(2 * math.pi) + 0.5 * d * mse  # nats, per example
    assert float(distortion_in(distortion, d, "mse")) == pytest.approx(mse, rel=1e-9)
    psnr = float(distortion_in(distortion, d, "psnr", peak=peak))
    assert psnr == pytest.approx(10 * math.log10(peak**2 / mse), rel=1e-9, abs=1e-9)


def test_nats_and_nll_are_unchanged_and_bits_divide_by_log_2():
    values = np.array([0.0, 1.0, 2.5])
    np.testing.assert_array_equal(rate_in(values, "nats"), values)
    np.testing.assert_array_equal(distortion_in(values, 3, "nll"), values)
    np.testing.assert_allclose(rate_in(values, "bits"), values / math.log(2), rtol=1e-15)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: rate_in(1.0, "bytes"), "rate_unit must be one of"),
    (lambda: distortion_in(1.0, 3, "snr"), "distortion_unit must be one of"),
    (lambda: distortion_in(1.0, 3, "psnr", peak=0.0), "peak must be finite and > 0"),
])  # fmt: skip
def test_bad_units_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_the_command_writes_the_curve_in_bits_and_mse(tmp_path):
    path = tmp_path / "curve.json"
    argv = ["--units", "bits", "--distortion", "mse", "--betas", "0.01,0.1,1", "--quiet"]
    assert main([*argv, "--json", str(path)]) == 0
    record = json.loads(path.read_text())
    assert record["units"]["rate"] == "bits" and record["units"]["distortion"] == "mse"
    nats = tmp_path / "nats.json"
    assert main(["--betas", "0.01,0.1,1", "--quiet", "--json", str(nats)]) == 0
    reference = json.loads(nats.read_text())
    d = record["dataset"]["d"]
    np.testing.assert_allclose(
        record["rate"], np.asarray(reference["rate"]) / math.log(2), rtol=1e-14
    )
    np.testing.assert_allclose(
        record["distortion"], distortion_in(reference["distortion"], d, "mse"), rtol=1e-14
    )
    assert record["loss"] == reference["loss"]  # the objective stays in nats
