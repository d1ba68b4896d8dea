"""`python -m linvae.analytic` end to end: table, JSON, CSV, plot, and one-line errors."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from linvae.analytic import moments, rate_distortion, spectrum
from linvae.analytic.cli import main
from linvae.data import load


def test_json_and_csv_hold_the_curve_of_the_data(tmp_path, capsys):
    json_path, csv_path = tmp_path / "curve.json", tmp_path / "curve.csv"
    code = main(
        ["--latent", "8", "--betas", "0.1:10:5", "--json", str(json_path), "--csv", str(csv_path)]
    )
    assert code == 0
    table = capsys.readouterr().out
    assert "n = 1797, d = 64" in table and "k = 8" in table
    record = json.loads(json_path.read_text())
    X, _ = load("digits")
    expected = rate_distortion(spectrum(moments(X).cov).eigvals, 8, np.geomspace(0.1, 10, 5))
    np.testing.assert_allclose(record["loss"], expected.loss, rtol=1e-14)
    np.testing.assert_allclose(record["rate"], expected.rate, rtol=1e-14)
    assert record["dataset"]["rank"] < 64  # digits has constant pixels
    assert len(record["betas"]) == len(record["active_latents"]) == 5
    with csv_path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["distortion"]) for r in rows] == pytest.approx(expected.distortion, rel=1e-15)


def test_latents_beyond_the_data_dimension_give_the_curve_of_k_equal_d(tmp_path):
    paths = [tmp_path / "64.json", tmp_path / "65.json"]
    for k, path in zip(("64", "65"), paths, strict=True):
        assert main(["--latent", k, "--betas", "0.01:1:4", "--json", str(path), "--quiet"]) == 0
    at_64, at_65 = (json.loads(path.read_text()) for path in paths)
    assert at_65["latent"] == 65
    assert at_65["loss"] == at_64["loss"]


def test_plot_is_written_as_png(tmp_path):
    path = tmp_path / "rd.png"
    assert main(["--betas", "0.1,1", "--plot", str(path), "--quiet"]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--latent", "0"], "--latent: expected a positive integer, got '0'"),
        (["--dataset", "nonexistent"], "unknown data set name 'nonexistent'"),
        (["--betas", "1:0"], "betas must be"),
        (["--dataset", "missing.npy"], "missing.npy"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "linvae.analytic", "--latent", "4", "--betas", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "optimal linear β-VAE on digits" in result.stdout
