"""python -m linvae.compare end to end on a tiny budget: report, reload, interrupt, bad flags."""

import json
import math
import sys

import numpy as np
import pytest
import torch

from linvae._cli import EXIT_INTERRUPTED
from linvae.analytic import moments, rate_distortion, spectrum
from linvae.compare import cli, run_folder, training
from linvae.compare.report import REQUIRED_KEYS
from linvae.data import load
from linvae.mrvae import _step as step_module
from linvae.mrvae import recipe as recipe_module
from linvae.mrvae import train as train_module
from linvae.mrvae.bank import BetaVAEBank
from linvae.mrvae.checkpoint import load_models
from linvae.mrvae.model import LinearVAE

SIZE = ["--steps", "12", "--baselines", "2", "--betas", "0.01:10:5", "--latent", "3", "--quiet"]
TINY = [*SIZE, "--polish", "10"]  # linvae's recipe, the default
PAPER = [*SIZE, "--recipe", "paper"]  # the paper's recipe: the sampled ELBO


pytestmark = pytest.mark.usefixtures("restore_torch_threads")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    assert cli.main([*TINY, "--out", str(out), "--svg"]) == 0
    return out


def test_report_has_the_issue_keys_and_aligned_lists(tiny_run):
    report = json.loads((tiny_run / "report.json").read_text())
    for key in REQUIRED_KEYS:
        assert key in report, key
    m = len(report["betas"])
    assert m == 5
    for key in ("rate", "distortion", "loss"):
        assert len(report["analytic"][key]) == m
    for key in ("rate", "distortion", "loss", "excess"):
        assert len(report["mrvae"][key]) == m
    assert {"train_seconds", "steps"} <= set(report["mrvae"])
    assert report["mrvae"]["steps"] == 12
    assert [b["beta"] for b in report["beta_vae"]] == pytest.approx([0.01, 10.0], rel=1e-12)
    for baseline in report["beta_vae"]:
        assert {"beta", "rate", "distortion", "loss", "excess", "train_seconds"} <= set(baseline)
    assert report["dataset"] == {**report["dataset"], "name": "digits", "n": 1797, "d": 64}
    assert report["latent"] == 3
    assert report["config"]["recipe"] == "linvae" and report["config"]["hidden"] == 3  # k
    assert report["mrvae"]["config"]["class"] == "LatentMRVAE"
    assert report["partial"] is False
    assert report["device"] == "cpu"
    assert report["seed"] == 0
    assert set(report["versions"]) == {"python", "numpy", "scipy", "torch", "linvae"}


def test_report_numbers_are_the_exact_evaluation_of_the_saved_model(tiny_run):
    # reload the weights independently and recompute with linvae.analytic
    report = json.loads((tiny_run / "report.json").read_text())
    (model,), _ = load_models(tiny_run / "mrvae.safetensors")
    assert model.config() == report["mrvae"]["config"]
    X, _ = load("digits")
    stats = moments(X)
    from linvae.compare.evaluate import exact_terms

    optimum = rate_distortion(spectrum(stats.cov).eigvals, 3, report["betas"])
    for i, beta in enumerate(report["betas"]):
        terms = exact_terms(model, beta, stats.mean, stats.cov)
        assert report["mrvae"]["loss"][i] == pytest.approx(terms.loss, rel=1e-12)
        assert report["mrvae"]["excess"][i] == pytest.approx(
            terms.loss - optimum.loss[i], abs=1e-10
        )
        assert report["mrvae"]["excess"][i] >= -1e-9
        assert report["analytic"]["loss"][i] == pytest.approx(optimum.loss[i], rel=1e-12)


def test_run_writes_markdown_figures_and_weights(tiny_run):
    markdown = (tiny_run / "report.md").read_text()
    assert "max excess" in markdown and "digits" in markdown
    mrvae = json.loads((tiny_run / "report.json").read_text())["mrvae"]
    assert mrvae["polish_evaluations"] > 0 and 0 < mrvae["polish_seconds"] < mrvae["train_seconds"]
    assert f"(12 steps + L-BFGS {mrvae['polish_seconds']:.1f} s" in markdown
    assert "reads the data's mean and covariance and the β range, never the analytic" in markdown
    for name in ("rate_distortion", "excess", "responses"):
        assert (tiny_run / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (tiny_run / f"{name}.svg").read_bytes()[:500]
        assert f"({name}.png)" in markdown
    models, extra = load_models(tiny_run / "beta_vaes.safetensors")
    assert len(models) == 2 and extra["betas"] == [b["beta"] for b in json.loads(
        (tiny_run / "report.json").read_text())["beta_vae"]]  # fmt: skip
    assert not list(tiny_run.glob(".*.tmp"))  # no temporary file left behind


def test_from_run_regenerates_the_same_report_without_training(tiny_run, tmp_path, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("--from-run must not train")

    monkeypatch.setattr(training, "fit", no_training)
    out = tmp_path / "again"
    assert cli.main(["--from-run", str(tiny_run), "--out", str(out), "--quiet"]) == 0
    old = json.loads((tiny_run / "report.json").read_text())
    new = json.loads((out / "report.json").read_text())
    for key in ("betas", "analytic", "beta_vae", "latent", "dataset", "partial", "seed"):
        assert new[key] == old[key], key
    for key in ("rate", "distortion", "loss", "excess", "steps", "train_seconds", "polish_seconds"):
        assert new["mrvae"][key] == old["mrvae"][key], key
    assert new["regenerated_from"] == str(tiny_run)
    assert (out / "report.md").exists() and (out / "excess.png").exists()


@pytest.mark.parametrize("recipe", ["linvae", "bank", "paper"])
def test_interrupt_writes_a_partial_report(tmp_path, monkeypatch, recipe):
    if recipe == "bank":  # the MR-VAE finishes, the bank of β-VAEs is interrupted

        def interrupted_bank(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(BetaVAEBank, "exact_loss", interrupted_bank)
    else:
        module, name = (
            (recipe_module, "exact_loss") if recipe == "linvae" else (train_module, "sampled_loss")
        )
        original = getattr(module, name)

        def interrupted_later(model, *args, **kwargs):
            if isinstance(model, LinearVAE):  # the MR-VAE finishes, the first β-VAE is not
                raise KeyboardInterrupt
            return original(model, *args, **kwargs)

        monkeypatch.setattr(module, name, interrupted_later)
    out = tmp_path / "partial"
    argv = {
        "linvae": [*TINY, "--baseline-form", "separate"],
        "bank": [*TINY, "--baseline-form", "bank"],
        "paper": PAPER,
    }[recipe]
    assert cli.main([*argv, "--out", str(out)]) == EXIT_INTERRUPTED  # 130: a partial run
    report = json.loads((out / "report.json").read_text())
    assert report["partial"] is True
    assert report["mrvae"]["steps"] == 12
    assert report["beta_vae"] == []  # the unfinished β-VAE is left out
    assert "Partial run" in (out / "report.md").read_text()


@pytest.mark.parametrize("recipe", ["linvae", "paper"])
def test_interrupt_during_the_mrvae_still_reports_it(tmp_path, monkeypatch, recipe):
    # linvae's MR-VAE: Adam's fused step (linvae.mrvae._step), the loss in closed form
    module, name = (
        (step_module, "objective_parts") if recipe == "linvae" else (train_module, "sampled_loss")
    )
    calls = {"n": 0}
    original = getattr(module, name)

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, interrupted)
    out = tmp_path / "partial"
    argv = TINY if recipe == "linvae" else PAPER
    assert cli.main([*argv, "--out", str(out)]) == EXIT_INTERRUPTED
    report = json.loads((out / "report.json").read_text())
    assert report["partial"] is True and report["mrvae"]["steps"] == 3
    assert all(math.isfinite(v) for v in report["mrvae"]["excess"])


def test_default_out_is_a_new_folder_under_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = run_folder.new_run_folder("digits")
    second = run_folder.new_run_folder("digits")
    assert first.parent.name == "runs" and second.parent.name == "runs"
    assert first != second and first.is_dir() and second.is_dir()


def test_epochs_set_the_steps(tmp_path):
    out = tmp_path / "epochs"
    args = [a for a in PAPER if a not in ("--steps", "12")]
    assert (
        cli.main(
            [*args, "--epochs", "1", "--batch-size", "600", "--baselines", "0", "--out", str(out)]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert report["mrvae"]["steps"] == 3  # ⌈1797 / 600⌉
    assert report["beta_vae"] == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--steps", "0"], "--steps"),
        (["--steps", "5", "--epochs", "1"], "not allowed with argument"),
        (["--betas", "ten"], "--betas"),
        (["--objective", "elbo"], "--objective"),
        (["--dataset", "no-such-file.npy"], "--dataset"),
        (["--dataset", "cifar"], "unknown data set"),
        (
            ["--device", "cuda:0"] if not torch.cuda.is_available() else ["--device", "tpu"],
            "--device",
        ),
        (["--train-range", "1:0.1"], "--train-range"),
        (["--from-run", "no-such-run"], "--from-run"),
        (["--from-run", ".", "--steps", "3"], "takes no training flags"),
        (["--lr", "-1"], "--lr"),
        (["--baseline-form", "batched"], "--baseline-form"),
        (["--recipe", "paper", "--baseline-form", "bank"], "baseline_form='bank'"),
        (["--wrong"], "unrecognized arguments"),
    ],
)
def test_bad_flags_exit_2_with_one_line(argv, message, capsys, tmp_path):
    code = cli.main([*argv, "--out", str(tmp_path / "never"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and message in err, err


def test_out_folder_with_a_report_is_not_overwritten(tiny_run, capsys):
    before = (tiny_run / "report.json").read_bytes()
    assert cli.main([*TINY, "--out", str(tiny_run)]) == 2
    assert "already holds a report.json" in capsys.readouterr().err
    assert (tiny_run / "report.json").read_bytes() == before


def test_progress_goes_to_stderr_on_a_terminal_and_quiet_silences_it(tmp_path, capsys, monkeypatch):
    args = ["--steps", "3", "--baselines", "1", "--betas", "0.1:1:2", "--latent", "2"]
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # as on a terminal
    assert cli.main([*args, "--out", str(tmp_path / "loud")]) == 0
    captured = capsys.readouterr()
    assert "MR-VAE" in captured.err and "3/3" in captured.err and "β-VAE" in captured.err
    assert "report:" in captured.out
    assert cli.main([*args, "--out", str(tmp_path / "quiet"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_linvaes_recipe_on_the_sampled_objective_runs_end_to_end(tmp_path):
    out = tmp_path / "sampled"
    args = ["--objective", "sampled", "--steps", "6", "--baselines", "2", "--betas", "0.1:1:3"]
    assert cli.main([*args, "--latent", "2", "--quiet", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["training"]["recipe"] == "linvae"
    assert report["training"]["objective"] == "sampled"
    assert report["config"]["polish"] == 0 and report["mrvae"]["config"]["class"] == "LatentMRVAE"
    assert report["mrvae"]["steps"] == 6 and [b["steps"] for b in report["beta_vae"]] == [6, 6]
    rate = report["mrvae"]["learning_rate"]  # lr left at None: resolved from the data
    assert report["config"]["lr"] is None and 0 < rate <= 0.03
    markdown = (out / "report.md").read_text()
    assert "on the sampled ELBO" in markdown and f"Adam's peak rate {rate:.3g}" in markdown


def test_exact_objective_runs_end_to_end(tmp_path):
    out = tmp_path / "exact"
    args = ["--objective", "exact", "--steps", "5", "--baselines", "2", "--betas", "0.1:1:3"]
    args += ["--train-range", "0.001:10", "--recipe", "paper"]
    assert cli.main([*args, "--latent", "2", "--quiet", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["training"]["objective"] == "exact"
    assert report["training"]["beta_range"] == [0.001, 10.0]
    assert report["mrvae"]["config"]["beta_range"] == [0.001, 10.0]
    # the baselines span the evaluation grid, not the training range
    assert [b["beta"] for b in report["beta_vae"]] == pytest.approx([0.1, 1.0], rel=1e-12)
    assert np.all(np.asarray(report["mrvae"]["excess"]) >= -1e-9)
