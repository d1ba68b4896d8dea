"""The compare report's representation floor and optimisation part (issue 7, for the MR-VAE)."""

import json

import numpy as np
import pytest

from linvae.compare import cli

pytestmark = pytest.mark.usefixtures("restore_torch_threads")

TINY = ["--steps", "12", "--baselines", "0", "--betas", "0.01:10:5", "--latent", "3", "--quiet"]


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("floor") / "out"
    assert cli.main([*TINY, "--floor", "paper", "--out", str(out)]) == 0
    return out


def test_exact_gates_have_a_zero_floor_and_the_excess_is_all_optimisation(paper_run):
    mrvae = json.loads((paper_run / "report.json").read_text())["mrvae"]
    floor = mrvae["floor"]
    assert floor["gates"] == {
        "encoder_gate": "sqrt",
        "decoder_gate": "sqrt",
        "covariance_gate": "hinge",
    }
    assert floor["upper_bound"] is True
    # Theorem 1's joint construction is exact for these gates (docs/theorem1.md)
    assert np.max(np.abs(floor["floor"])) <= 1e-10
    np.testing.assert_allclose(
        np.asarray(floor["optimisation_part"]) + floor["floor"], mrvae["excess"], rtol=0, atol=1e-15
    )


def test_the_paper_gates_leave_a_positive_floor(paper_run):
    report = json.loads((paper_run / "report.json").read_text())
    paper = report["mrvae"]["paper_floor"]
    assert paper["gates"] == {
        "encoder_gate": "sigmoid",
        "decoder_gate": "sqrt",
        "covariance_gate": "sigmoid",
    }
    floor = np.asarray(paper["floor"])
    assert floor.shape == (5,)
    assert np.all(floor >= -1e-10)  # an excess over the optimum
    assert floor.max() > 1e-4  # the sigmoid covariance gate cannot follow min(1, β/λ)
    assert "floor" in report["files"]["figures"]
    assert (paper_run / "floor.png").read_bytes()[:4] == b"\x89PNG"
    assert "Where the MR-VAE's excess comes from" in (paper_run / "report.md").read_text()


def test_floor_none_writes_no_floor(tmp_path):
    out = tmp_path / "out"
    assert cli.main([*TINY, "--floor", "none", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert "floor" not in report["mrvae"] and "floor" not in report["files"]["figures"]


def test_from_run_keeps_the_floors(paper_run, tmp_path):
    out = tmp_path / "again"
    assert cli.main(["--from-run", str(paper_run), "--out", str(out), "--quiet"]) == 0
    before = json.loads((paper_run / "report.json").read_text())["mrvae"]
    after = json.loads((out / "report.json").read_text())["mrvae"]
    assert after["paper_floor"]["floor"] == pytest.approx(
        before["paper_floor"]["floor"], rel=1e-9, abs=1e-12
    )


def test_compile_flag_is_checked_and_reaches_training(tmp_path, capsys):
    assert cli.main([*TINY, "--compile", "turbo", "--out", str(tmp_path / "x")]) == 2
    assert "--compile" in capsys.readouterr().err
    out = tmp_path / "graph"
    # 'graph' needs CUDA: on a CPU the run warns and trains eagerly, and still reports
    with pytest.warns(RuntimeWarning, match="needs a CUDA device"):
        code = cli.main(
            [*TINY, "--compile", "graph", "--floor", "none", "--device", "cpu", "--out", str(out)]
        )
    assert code == 0 and (out / "report.json").exists()
