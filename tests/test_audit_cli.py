"""python -m linvae.audit end to end: .npz models, conventions, compare runs, one-line errors."""

import json

import numpy as np
import pytest
import torch

from linvae.analytic import LinearVAEParams, moments, optimum
from linvae.audit import audit
from linvae.audit.cli import main
from linvae.data import load


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    """A perturbed optimum on digits (k = 8, β = 0.05) with an off-mean bias, as a .npz."""
    X, _ = load("digits")
    stats = moments(X)
    best = optimum(stats.cov, 8, 0.05)
    rng = np.random.default_rng(0)
    params = LinearVAEParams(best.E + 0.01 * rng.standard_normal(best.E.shape), best.c, best.D)
    bias = stats.mean + 0.05
    path = tmp_path_factory.mktemp("models") / "model.npz"
    np.savez(path, E=params.E, c=params.c, D=params.D, b=bias)
    return path, params, bias, stats


def test_json_holds_the_exact_audit(digits_model, capsys, tmp_path):
    path, params, bias, stats = digits_model
    out = tmp_path / "audit.json"
    assert (
        main([str(path), "--dataset", "digits", "--beta", "0.05", "--json", "--out", str(out)]) == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == printed
    expected = audit(params, stats, 0.05, decoder_bias=bias)
    record = printed["audit"]
    assert record["loss"]["loss"] == pytest.approx(expected.loss.loss, rel=1e-14)
    assert record["excess"] == pytest.approx(expected.excess, rel=1e-10)
    assert record["parts"]["bias"] == pytest.approx(expected.bias, rel=1e-12)
    assert printed["beta_effective"] == 0.05
    assert printed["dataset"]["d"] == 64


def test_text_summary_and_convention(digits_model, capsys):
    path = digits_model[0]
    argv = [str(path), "--dataset", "digits", "--beta", "0.05", "--convention", "kl=mean"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "effective beta 0.00625" in text  # 0.05 / k with k = 8
    assert "excess" in text and "decoder" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["missing.npz", "--dataset", "digits", "--beta", "1"], "does not exist"),
        (["{model}", "--dataset", "digits"], "required: --beta"),
        (["{model}", "--beta", "1"], "--dataset is required"),
        (["{model}", "--dataset", "digits", "--beta", "-1"], "beta must be finite and > 0"),
        (["{model}", "--dataset", "digits", "--beta", "1", "--convention", "x=1"], "unknown"),
        (["{model}", "--dataset", "gaussian", "--beta", "1"], "the model has d=64"),
        (
            ["{model}", "--dataset", "digits", "--beta", "1", "--convention", "likelihood=bce"],
            "outside the linear-Gaussian family",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(digits_model, capsys, argv, message):
    argv = [a.replace("{model}", str(digits_model[0])) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err


@pytest.mark.slow
def test_a_compare_run_is_audited_at_its_reported_loss(tmp_path, capsys):
    from linvae.compare import cli as compare_cli

    threads = torch.get_num_threads()
    out = tmp_path / "run"
    tiny = ["--steps", "12", "--baselines", "0", "--betas", "0.01:10:5", "--latent", "3"]
    try:
        assert compare_cli.main([*tiny, "--quiet", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)  # the compare CLI sets one thread
    report = json.loads((out / "report.json").read_text())
    capsys.readouterr()
    beta = report["betas"][2]
    assert main([str(out), "--beta", repr(beta), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["model_kind"] == "linvae.compare MR-VAE"
    reported = report["mrvae"]["loss"][2]
    assert record["audit"]["loss"]["loss"] == pytest.approx(reported, rel=1e-12)
    assert record["audit"]["excess"] == pytest.approx(report["mrvae"]["excess"][2], rel=1e-9)
