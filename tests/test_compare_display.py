"""The display objects: built from a run, a report or a curve; plotted into any axes; the
figures of a run folder are theirs."""

import math

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from linvae.analytic import distortion_in, rate_distortion, spectrum
from linvae.compare import (
    CompareConfig,
    ExcessDisplay,
    RateDistortionDisplay,
    ResponseDisplay,
    run_comparison,
    save_run,
)

matplotlib.use("Agg")
COV = np.diag([4.0, 1.0, 0.25, 0.0])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("display")
    comparison = run_comparison(
        CompareConfig(latent=2, steps=20, baselines=2, betas="0.05:2:5", floor="model")
    )
    save_run(folder, comparison.report, comparison.models)
    return folder, comparison


def axes():
    return Figure().add_subplot()


def test_from_curve_draws_the_optimum_in_any_units():
    display = RateDistortionDisplay.from_curve(COV, 2, betas="0.1:8:6")
    display.plot(axes(), rate_unit="bits", distortion_unit="mse")
    rate, mse = display.lines_[0].get_data()
    curve = rate_distortion(spectrum(COV).eigvals, 2, np.geomspace(0.1, 8, 6))
    np.testing.assert_allclose(rate, curve.rate / math.log(2), rtol=1e-14)
    np.testing.assert_allclose(mse, distortion_in(curve.distortion, 4, "mse"), rtol=1e-14)
    assert display.ax_.get_xlabel() == "rate (bits / example)"


def test_your_own_model_overlays_the_optimum_in_three_lines():
    display = RateDistortionDisplay.from_curve(COV, 2, betas="full")
    display.add_point("my VAE", 1.0, 6.0)
    display.plot(axes())
    assert [line.get_label() for line in display.lines_] == ["analytic optimum", "my VAE"]
    assert display.lines_[1].get_data()[0].tolist() == [1.0]


def test_from_run_holds_the_report_curves(run):
    folder, comparison = run
    display = RateDistortionDisplay.from_run(folder)
    np.testing.assert_array_equal(display.curves[0]["rate"], comparison.report["mrvae"]["rate"])
    display.plot(axes())
    assert [line.get_label() for line in display.lines_] == ["analytic optimum", "MR-VAE", "β-VAEs"]
    excess = ExcessDisplay.from_run(folder).plot(axes())
    assert excess.lines_[0].get_label() == "MR-VAE (one model)"
    floor = ExcessDisplay.from_run(folder, floor=True).plot(axes())
    assert "representation floor" in floor.lines_[1].get_label()
    responses = ResponseDisplay.from_run(folder).plot(Figure().subplots(1, 2))
    assert len(responses.axes_) == 2


def test_a_comparison_plots_itself_and_returns_the_artists(run):
    _, comparison = run
    lines = comparison.plot(axes(), rate_unit="bits")
    assert lines[0].get_label() == "analytic optimum"
    assert lines[0].axes.get_xlabel() == "rate (bits / example)"
    assert "max excess" in comparison._repr_markdown_()
    assert comparison.to_dict() is comparison.report and comparison.excess.shape == (5,)


def test_bad_units_are_named():
    with pytest.raises(ValueError, match="units must be one of"):
        RateDistortionDisplay.from_curve(COV, 2).plot(axes(), rate_unit="bytes")
