"""Fault injection: every way a run, a file or an input can go wrong, and what the user gets.

Each test is one fault class of docs/faults.md. Signals go to a real subprocess; a full disk
and permission faults are simulated by a failing writer (the suite may run as root, which
ignores file modes).
"""

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import spectra_with_ties

from linvae import _io
from linvae._cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE
from linvae.analytic import (
    LinearVAEParams,
    Spectrum,
    gradients,
    moments,
    objective,
    optimum,
    rank,
    spectrum,
)
from linvae.analytic import cli as analytic_cli
from linvae.audit import load_npz
from linvae.compare import cli, run_folder, training
from linvae.data import file_moments
from linvae.mrvae import LinearVAE, TrainConfig
from linvae.mrvae.train import train
from linvae.proofs import cli as proofs_cli

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--steps", "6", "--baselines", "1", "--betas", "0.05:1:3", "--latent", "2", "--quiet"]
TINY += ["--polish", "5"]

pytestmark = pytest.mark.usefixtures("restore_torch_threads")


def one_line(capsys):
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("faults") / "run"
    assert cli.main([*TINY, "--out", str(out)]) == 0
    return out


# --- output paths ---------------------------------------------------------------------


def test_a_symlinked_output_is_written_through_and_the_link_stays(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    _io.atomic_write_text(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new"


def test_a_device_or_pipe_is_refused_not_replaced(tmp_path, capsys):
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(ValueError, match="it is a named pipe, not a regular file"):
        _io.atomic_write_text(pipe, "x")
    assert stat.S_ISFIFO(pipe.stat().st_mode)
    assert analytic_cli.main(["--betas", "1", "--quiet", "--json", str(pipe)]) == EXIT_USAGE
    assert "named pipe" in one_line(capsys)
    assert analytic_cli.main(["--betas", "1", "--quiet", "--json", "/dev/null"]) == EXIT_USAGE
    assert "character device" in one_line(capsys)


def test_new_files_get_the_umask_mode_and_replaced_files_keep_theirs(tmp_path):
    previous = os.umask(0o027)
    try:
        new = tmp_path / "new.txt"
        _io.atomic_write_text(new, "a")
        assert stat.S_IMODE(new.stat().st_mode) == 0o640
        kept = tmp_path / "kept.txt"
        kept.write_text("a")
        kept.chmod(0o604)
        _io.atomic_write_text(kept, "b")
        assert stat.S_IMODE(kept.stat().st_mode) == 0o604
    finally:
        os.umask(previous)


def test_the_file_and_its_folder_are_synced_before_success(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    _io.atomic_write_text(tmp_path / "f.txt", "x")
    assert synced == [False, True]  # the file, then the folder


def test_a_failing_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    path.write_text("old")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        _io.atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_figures_take_their_format_from_the_suffix(tmp_path, capsys):
    pdf = tmp_path / "curve.pdf"
    assert analytic_cli.main(["--betas", "0.1,1", "--quiet", "--plot", str(pdf)]) == 0
    assert pdf.read_bytes()[:5] == b"%PDF-"
    jpg = tmp_path / "curve.jpg"
    assert analytic_cli.main(["--betas", "0.1,1", "--quiet", "--plot", str(jpg)]) == EXIT_USAGE
    assert ".png, .svg, .pdf" in one_line(capsys) and not jpg.exists()


@pytest.mark.parametrize(
    ("main", "argv"),
    [
        (cli.main, [*TINY, "--out", ""]),
        (cli.main, ["--from-run", ""]),
        (analytic_cli.main, ["--json", ""]),
        (proofs_cli.main, ["--markdown", ""]),
    ],
)
def test_an_empty_path_is_refused(main, argv, capsys, monkeypatch):
    monkeypatch.setattr(proofs_cli, "run_claims", lambda: pytest.fail("must not run"))
    assert main(argv) == EXIT_USAGE
    assert "empty path" in one_line(capsys)


# --- run folders ----------------------------------------------------------------------


def test_a_folder_in_use_by_another_run_is_refused_before_training(tmp_path, capsys, monkeypatch):
    from filelock import FileLock

    monkeypatch.setattr(training, "fit", lambda *a, **k: pytest.fail("must not train"))
    out = tmp_path / "busy"
    out.mkdir()
    with FileLock(str(out / run_folder.LOCK)):
        assert cli.main([*TINY, "--out", str(out)]) == EXIT_USAGE
    assert "in use by another linvae run" in one_line(capsys)
    assert not (out / "report.json").exists()


@pytest.mark.skipif(not Path("/proc/sys").is_dir(), reason="needs Linux's /proc/sys")
def test_a_folder_where_no_lock_can_be_made_says_why_not_in_use(capsys, monkeypatch):
    monkeypatch.setattr(training, "fit", lambda *a, **k: pytest.fail("must not train"))
    assert cli.main([*TINY, "--out", "/proc/sys"]) == EXIT_USAGE  # no file can be made there
    err = one_line(capsys)
    assert "cannot create the lock file" in err and "in use" not in err


def test_from_run_never_overwrites_another_finished_run(finished_run, tmp_path, capsys):
    other = tmp_path / "other"
    assert cli.main([*TINY, "--out", str(other)]) == 0
    before = (other / "report.json").read_bytes()
    assert cli.main(["--from-run", str(finished_run), "--out", str(other), "--quiet"]) == 2
    assert "already holds a report.json" in one_line(capsys)
    assert (other / "report.json").read_bytes() == before


def test_out_that_is_a_file_is_one_line(tmp_path, capsys):
    file = tmp_path / "file"
    file.write_text("x")
    assert cli.main([*TINY, "--out", str(file)]) == EXIT_USAGE
    assert "--out" in one_line(capsys)


def test_a_read_only_working_directory_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def refuse(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    assert cli.main(TINY) == EXIT_USAGE
    assert "Permission denied" in one_line(capsys)


# --- failures after training ----------------------------------------------------------


def test_an_unwritable_folder_is_found_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(training, "fit", lambda *a, **k: pytest.fail("must not train"))

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(run_folder.tempfile, "NamedTemporaryFile", refuse)
    assert cli.main([*TINY, "--out", str(tmp_path / "ro")]) == EXIT_USAGE
    assert "cannot write in" in one_line(capsys)


def test_a_disk_too_full_for_the_run_is_found_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(training, "fit", lambda *a, **k: pytest.fail("must not train"))
    usage = run_folder.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(run_folder.shutil, "disk_usage", lambda path: usage._replace(free=1024))
    assert cli.main([*TINY, "--out", str(tmp_path / "full")]) == EXIT_USAGE
    assert "MiB free; the run needs about" in one_line(capsys)


def test_a_late_write_failure_keeps_what_was_trained(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    real = run_folder.save_models

    def disk_full_in_out(path, *args, **kwargs):
        if Path(path).parent == out:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(run_folder, "save_models", disk_full_in_out)
    assert cli.main([*TINY, "--out", str(out)]) == EXIT_FAILED
    err = capsys.readouterr().err
    rescue = Path(err.split("the run is in ")[1].strip())
    assert "No space left on device" in err and rescue.name.startswith("linvae-rescue-")
    run = run_folder.load_run(rescue)
    assert run.report["rescued_from"].startswith(str(out))
    assert len(run.models.baselines) == 1


def test_an_evaluation_that_fails_after_training_still_saves_the_weights(
    tmp_path, capsys, monkeypatch
):
    from linvae.compare import evaluate

    real = evaluate.excess_loss

    def optimum_too_high(loss, optimum_loss, *args, **kwargs):  # every model is now below it
        return real(loss, np.asarray(optimum_loss) + 1.0, *args, **kwargs)

    monkeypatch.setattr(evaluate, "excess_loss", optimum_too_high)
    out = tmp_path / "out"
    assert cli.main([*TINY, "--floor", "none", "--out", str(out)]) == EXIT_FAILED
    err = one_line(capsys)
    assert "below the analytic optimum" in err and "round-off" in err and "β = " in err
    assert f"the weights are in {out}" in err
    report = json.loads((out / "report.json").read_text())
    assert "below the analytic optimum" in report["evaluation_error"]
    assert "the evaluation after training failed" in (out / "report.md").read_text()
    from linvae.compare.display import ExcessDisplay

    with pytest.raises(ValueError, match="evaluation failed after training.*--from-run"):
        ExcessDisplay.from_run(out)  # no curves to draw: one line, not a KeyError
    monkeypatch.undo()  # the weights were kept: --from-run evaluates them again
    assert cli.main(["--from-run", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert "evaluation_error" not in report and len(report["beta_vae"]) == 1
    assert all(np.isfinite(report["mrvae"]["excess"]))


# --- divergence -----------------------------------------------------------------------


def test_a_diverging_run_stops_with_one_line_and_a_partial_report(tmp_path, capsys):
    out = tmp_path / "diverged"
    argv = ["--objective", "exact", "--lr", "1e6", "--steps", "300", "--baselines", "1"]
    argv += ["--betas", "0.05:1:3", "--latent", "2", "--quiet", "--out", str(out)]
    assert cli.main(argv) == EXIT_FAILED
    err = one_line(capsys)
    assert "training diverged at step" in err and "(lower --lr)" in err
    report = json.loads((out / "report.json").read_text())
    assert report["partial"] is True and report["diverged"]["model"] == "MR-VAE"
    assert report["beta_vae"] == []  # training stopped at the diverged model
    assert all(np.isfinite(report["mrvae"]["excess"]))
    assert "diverged at step" in (out / "report.md").read_text()


# --- signals (a real subprocess) -------------------------------------------------------


def _compare(argv, **options):
    return subprocess.Popen(
        [sys.executable, "-m", "linvae.compare", *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    )


@pytest.mark.slow
def test_sigterm_during_training_writes_a_partial_report_and_exits_130(tmp_path):
    out = tmp_path / "terminated"
    process = _compare(["--steps", "10000000", "--baselines", "1", "--latent", "2", "--out",
                        str(out), "--floor", "none"])  # fmt: skip
    deadline = time.monotonic() + 60
    while not (out / run_folder.LOCK).exists():  # the folder is locked just before training
        assert process.poll() is None and time.monotonic() < deadline, "training did not start"
        time.sleep(0.1)
    time.sleep(4.0)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == EXIT_INTERRUPTED, stderr
    report = json.loads((out / "report.json").read_text())
    assert report["partial"] is True and report["beta_vae"] == []
    assert report["mrvae"]["steps"] < 10_000_000
    assert "partial: training was interrupted" in stdout


def test_an_interrupt_before_the_first_step_still_gives_a_partial_report(tmp_path, monkeypatch):
    # SIGTERM (or Ctrl-C) while torch sets up the optimiser: nothing trained, nothing lost
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "fit", interrupted)
    out = tmp_path / "early"
    assert cli.main([*TINY, "--out", str(out)]) == EXIT_INTERRUPTED
    report = json.loads((out / "report.json").read_text())
    assert report["partial"] is True and report["mrvae"]["steps"] == 0


@pytest.mark.slow
def test_an_interrupt_while_writing_waits_for_the_whole_run(tmp_path):
    # the run sends itself SIGINT and SIGTERM while the figures are being drawn
    out = tmp_path / "held"
    program = f"""
import os, signal, sys
from linvae.compare import cli, run_folder
real = run_folder.write_figures
def interrupted(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGINT)
    os.kill(os.getpid(), signal.SIGTERM)
    return real(*args, **kwargs)
run_folder.write_figures = interrupted
sys.exit(cli.main({[*TINY, "--out", str(out)]!r}))
"""
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "interrupt received" in done.stderr and "Traceback" not in done.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["partial"] is False
    for name in ("rate_distortion", "excess", "responses"):
        assert (out / f"{name}.png").stat().st_size > 0
    assert run_folder.load_run(out).models.mrvae is not None


# --- one line for every user error ----------------------------------------------------


def test_an_unreadable_data_file_is_one_line(tmp_path, capsys, monkeypatch):
    path = tmp_path / "data.npy"
    np.save(path, np.zeros((4, 3)))
    import linvae.data._files as files

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(files, "open", refuse, raising=False)
    assert cli.main([*TINY, "--dataset", str(path), "--out", str(tmp_path / "o")]) == EXIT_USAGE
    assert "Permission denied" in one_line(capsys)


def test_a_covariance_too_large_for_memory_is_refused_before_allocating(tmp_path, capsys):
    path = tmp_path / "wide.npy"
    np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(2, 200_000)).flush()
    assert analytic_cli.main(["--dataset", str(path), "--quiet"]) == EXIT_USAGE
    err = one_line(capsys)
    assert "needs 298 GiB" in err and "file_moments" in err


def test_a_report_that_is_a_list_is_one_line(tmp_path, capsys):
    (tmp_path / "report.json").write_text("[1, 2]")
    assert cli.main(["--from-run", str(tmp_path), "--quiet"]) == EXIT_USAGE
    assert "does not hold a JSON object" in one_line(capsys)


def test_nan_weights_are_refused_in_from_run(finished_run, tmp_path, capsys):
    import shutil

    from linvae.mrvae.checkpoint import load_models, save_models

    copy = tmp_path / "copy"
    shutil.copytree(finished_run, copy)
    (model,), _ = load_models(copy / "mrvae.safetensors")
    with torch.no_grad():
        model.encoder1[0, 0] = float("nan")
    save_models(copy / "mrvae.safetensors", [model])
    assert cli.main(["--from-run", str(copy), "--out", str(tmp_path / "b"), "--quiet"]) == 2
    assert "NaN or infinite" in one_line(capsys)


class Payload:
    """A class a pickle would instantiate on load."""


def test_a_pickle_payload_in_a_checkpoint_is_refused_with_our_own_words(
    finished_run, tmp_path, capsys
):
    import shutil

    legacy = tmp_path / "legacy"
    shutil.copytree(finished_run, legacy)
    report = json.loads((legacy / "report.json").read_text())
    report["files"]["weights"] = "mrvae.pt"
    (legacy / "report.json").write_text(json.dumps(report))
    torch.save({"weights": Payload()}, legacy / "mrvae.pt")
    assert cli.main(["--from-run", str(legacy), "--out", str(tmp_path / "b"), "--quiet"]) == 2
    err = one_line(capsys)
    assert "a pickle payload" in err
    assert "weights_only" not in err and "arbitrary code" not in err


def _edited_copy(run, tmp_path, edit):
    """A copy of ``run`` whose report.json ``edit`` changed (or replaced by the text it returns)."""
    import shutil

    copy = tmp_path / "edited"
    shutil.copytree(run, copy)
    report = json.loads((copy / "report.json").read_text())
    text = edit(report)
    (copy / "report.json").write_text(json.dumps(report) if text is None else text)
    return copy


def test_weights_of_another_run_are_refused(finished_run, tmp_path, capsys):
    import shutil

    from linvae.audit import cli as audit_cli

    other = tmp_path / "k3"
    assert cli.main([*TINY, "--latent", "3", "--floor", "none", "--out", str(other)]) == 0
    for name in (run_folder.MRVAE_WEIGHTS, run_folder.BASELINE_WEIGHTS):
        shutil.copy(finished_run / name, other / name)  # k = 2 weights in a k = 3 run
    out = tmp_path / "b"
    assert cli.main(["--from-run", str(other), "--out", str(out), "--quiet"]) == EXIT_USAGE
    err = one_line(capsys)
    assert "k = 2" in err and "k = 3" in err and not out.exists()
    assert audit_cli.main([str(other), "--beta", "0.5"]) == EXIT_USAGE
    assert "k = 2" in one_line(capsys)


def _pop(key, inner):
    return lambda report: report[key].pop(inner) and None


def _set(key, value):
    return lambda report: report.update({key: value})


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (_set("files", []), "files must be an object, got a list"),
        (_set("mrvae", []), "mrvae must be an object, got a list"),
        (_pop("dataset", "n"), "lacks dataset.n"),
        (_set("diverged", {"step": 3}), "lacks diverged.model"),
        (_set("partial", "no"), "partial must be true or false, got a string"),
        (_set("diverged", "yes"), "diverged must be null or an object, got a string"),
        (_set("beta_vae", [{"beta": -1}]), "beta_vae[0].beta must be a number > 0"),
        (lambda report: '{"a": ' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
    ],
    ids=["files", "mrvae", "dataset.n", "diverged.model", "partial", "diverged", "beta", "deep"],
)
def test_a_report_json_is_checked_whole_with_one_line_naming_the_key(
    finished_run, tmp_path, capsys, edit, named
):
    copy = _edited_copy(finished_run, tmp_path, edit)
    out = tmp_path / "b"
    assert cli.main(["--from-run", str(copy), "--out", str(out), "--quiet"]) == EXIT_USAGE
    assert named in one_line(capsys)
    assert not out.exists()  # refused before --out was made


def test_a_grid_too_long_in_a_report_is_refused_before_evaluating(
    finished_run, tmp_path, capsys, monkeypatch
):
    from linvae.compare import evaluate

    monkeypatch.setattr(evaluate, "evaluate_model", lambda *a: pytest.fail("must not evaluate"))
    copy = _edited_copy(finished_run, tmp_path, _set("betas", [0.5] * 200_000))
    assert cli.main(["--from-run", str(copy), "--out", str(tmp_path / "b"), "--quiet"]) == 2
    assert "betas must hold at most 100000 values" in one_line(capsys)


def test_tensors_that_do_not_fit_are_one_line_naming_the_tensor(finished_run, tmp_path, capsys):
    from safetensors import safe_open
    from safetensors.torch import save

    copy = _edited_copy(finished_run, tmp_path, lambda report: None)
    weights = copy / run_folder.MRVAE_WEIGHTS
    with safe_open(str(weights), framework="pt") as handle:
        header = handle.metadata()
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    tensors["0.encoder1"] = torch.zeros(3, *tensors["0.encoder1"].shape[1:])  # a wrong shape
    del tensors["0.log_variance"]  # and a tensor missing
    weights.write_bytes(save(tensors, metadata=header))
    assert cli.main(["--from-run", str(copy), "--out", str(tmp_path / "b"), "--quiet"]) == 2
    err = one_line(capsys)
    assert "encoder1" in err and "log_variance" in err and "Error(s)" not in err


def test_proofs_check_their_output_paths_before_the_claims(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(proofs_cli, "run_claims", lambda: pytest.fail("must not run"))
    assert proofs_cli.main(["--markdown", str(tmp_path)]) == EXIT_USAGE
    assert "it is a directory" in one_line(capsys)


def test_a_grid_of_a_hundred_million_points_is_one_line(capsys, tmp_path):
    argv = ["--betas", "0.01:10:100000000", "--out", str(tmp_path / "o"), "--quiet"]
    assert cli.main(argv) == EXIT_USAGE
    assert "at most 100000 values" in one_line(capsys)


# --- numerics that never return garbage -----------------------------------------------


def test_objective_and_gradients_refuse_a_covariance_that_is_not_psd():
    S = np.array([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues -1 and 3: its diagonal looks fine
    params = LinearVAEParams(np.eye(2), np.ones(2), np.eye(2))
    with pytest.raises(ValueError, match="positive semidefinite, got an eigenvalue -1"):
        objective(params, np.zeros(2), S, 1.0)
    with pytest.raises(ValueError, match="positive semidefinite"):
        gradients(params, S, 1.0)


def test_overflowing_moments_raise_instead_of_nan():
    X = np.random.default_rng(0).standard_normal((20, 3)) * 1e200
    with pytest.raises(ValueError, match="overflows float64.*rescale X"):
        moments(X)


def test_an_overflowing_objective_raises_instead_of_inf():
    cov = np.diag([2.0, 1.0])
    params = optimum(cov, 2, 0.5)
    with pytest.raises(ValueError, match="the objective overflows float64"):
        objective(params._replace(E=params.E * 1e200), np.zeros(2), cov, 0.5)


def test_a_rank_deficient_float32_covariance_is_accepted():
    rng = np.random.default_rng(0)
    V = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    cov = ((V * [3.0, 2.0, 1.0, 0.5, 0.2, 0.0]) @ V.T).astype(np.float32)  # rank 5 in float32
    # its zero eigenvalue came out below the float64 cutoff, within the float32 one
    lowest = np.linalg.eigvalsh(cov.astype(np.float64))[0]
    assert -1e-4 < lowest < -1e6 * np.finfo(np.float64).eps * 3.0
    spec = spectrum(cov)
    assert spec.eigvals[-1] == 0.0
    assert np.isfinite(objective(optimum(cov, 3, 0.1), np.zeros(6), cov, 0.1).loss)


def test_a_spectrum_with_eigenvectors_that_are_not_orthonormal_is_refused():
    bad = Spectrum(np.array([2.0, 1.0]), np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="eigvecs must be orthonormal"):
        optimum(bad, 1, 0.5)


def test_complex_arrays_in_an_audit_npz_are_refused_naming_the_file(tmp_path):
    path = tmp_path / "model.npz"
    np.savez(path, E=np.eye(2) * (1 + 1j), D=np.eye(2), c=np.ones(2))
    with pytest.raises(ValueError, match=f"{path}: E must be real"):
        load_npz(path, np.zeros(2))


def test_file_moments_names_the_file_for_a_directory_and_for_nan(tmp_path):
    with pytest.raises(ValueError, match=f"cannot load '{tmp_path}': it is a directory"):
        file_moments(tmp_path)
    path = tmp_path / "nan.npy"
    X = np.ones((5, 2))
    X[3, 1] = np.nan
    np.save(path, X)
    with pytest.raises(ValueError, match=f"cannot load '{path}': X must be finite"):
        file_moments(path)


def test_training_on_a_read_only_npy_does_not_warn(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).standard_normal((20, 3)))
    X = np.load(path, mmap_mode="r")  # read-only, as linvae.data.load returns it
    train(LinearVAE(3, 2), X, TrainConfig(steps=2), beta=1.0)  # warnings are errors here


# --- values and API edges: round-off, underflow, integers, limits (issue 21 §2) --------


@pytest.mark.parametrize(
    "argv",
    [
        ["linvae.analytic", "--betas", "1"],
        ["linvae.analytic", "--help"],
        ["linvae.audit", "--help"],
        ["linvae", "--help"],
    ],
)
def test_a_closed_or_full_stdout_is_one_line_not_a_traceback(argv):
    with open("/dev/full", "w") as full:
        for stdout, before in ((None, lambda: os.close(1)), (full, None)):  # `>&-`, `> /dev/full`
            done = subprocess.run(
                [sys.executable, "-m", *argv], cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE,
                preexec_fn=before, text=True, check=False, timeout=120,
            )  # fmt: skip
            assert done.returncode == EXIT_USAGE, done.stderr
            assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
            assert "cannot write to stdout" in done.stderr


def test_a_covariance_that_underflows_is_refused_like_one_that_overflows():
    from linvae.data import load

    X, _ = load("digits")
    with pytest.raises(ValueError, match="underflows float64.*rescale X"):
        moments(X * 1e-160)  # variances about 1e-321: subnormal, their rank is lost
    with pytest.raises(ValueError, match="underflows float64.*rescale X"):
        moments(np.random.default_rng(0).standard_normal((20, 3)) * 1e-170)  # squares are 0
    with pytest.raises(ValueError, match="underflows float64"):
        spectrum(np.diag([3e-310, 1e-310]))
    assert rank(spectrum(moments(X * 1e-140).cov)) == rank(spectrum(moments(X).cov))


@pytest.mark.parametrize(
    ("dtype", "offset"), [(np.int64, 2**62), (np.uint64, 2**63), (np.int64, -(2**62))]
)
def test_large_integers_keep_their_variance(dtype, offset):
    small = np.random.default_rng(0).integers(0, 7, size=(50, 3))
    X = small.astype(dtype) + dtype(offset) if offset > 0 else small.astype(dtype) - (2**62)
    stats = moments(X, chunk_size=16)  # the reference of the centring spans the chunks
    np.testing.assert_allclose(stats.cov, np.cov(small.T, bias=True), rtol=1e-12, atol=1e-14)
    assert stats.mean[0] == pytest.approx(float(offset), rel=1e-15)


def test_a_file_of_integers_beyond_float64_is_refused_with_one_line(tmp_path, capsys):
    path = tmp_path / "big.npy"
    np.save(path, np.arange(12, dtype=np.uint64).reshape(4, 3) + np.uint64(2**63))
    assert analytic_cli.main(["--dataset", str(path), "--quiet"]) == EXIT_USAGE
    assert "beyond 2**53" in one_line(capsys)
    stats = file_moments(path)  # streamed moments centre in integer arithmetic
    np.testing.assert_allclose(np.diag(stats.cov), [11.25] * 3, rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(spectra_with_ties(max_dim=6), st.integers(1, 8), st.integers(-20, 0))
def test_rank_full_grid_and_collapsed_latents_share_one_round_off_rule(eigvals, k, tiny):
    from linvae.analytic import collapsed_latents, full_grid, numerical_rank, rank

    eigvals = np.append(eigvals, eigvals[0] * 10.0**tiny)  # an eigenvalue at or above round-off
    r = numerical_rank(eigvals)
    spec = Spectrum(np.sort(eigvals)[::-1], np.eye(eigvals.size))
    assert rank(spec) == r and collapsed_latents(eigvals, k) == max(0, k - r)
    if r:
        assert full_grid(eigvals, k)[0] == pytest.approx(spec.eigvals[min(k, r) - 1] / 2)
        assert spec.eigvals[r - 1] > 1e6 * np.finfo(float).eps * spec.eigvals[0]


def test_a_full_grid_of_too_many_points_is_one_value_error_before_allocating():
    from linvae.analytic import full_grid

    with pytest.raises(ValueError, match="points must be <= 100000, got 100001"):
        full_grid([2.0, 1.0], 2, points=100_001)


def test_values_that_leave_float64_are_refused_not_returned_as_zero_or_inf():
    from linvae.analytic import full_grid
    from linvae.audit import effective_beta

    with pytest.raises(ValueError, match="2·λ₁ overflows float64"):
        full_grid([1e308, 1.0], 2)
    with pytest.raises(ValueError, match="underflows float64"):
        effective_beta(1e-200, kl_weight=1e-200)
    with pytest.raises(ValueError, match="overflows float64"):
        effective_beta(1e200, kl_weight=1e200)
    assert effective_beta(2.0, kl_weight=0.5, reconstruction="mean", d=4) == 4.0  # still exact


def test_a_small_squared_error_is_not_lost_in_the_constant():
    from linvae.analytic import curve_in_units, optimum, rate_distortion
    from linvae.audit import audit

    eigvals = np.array([4e-14, 1e-14, 0.0])  # data of spread 2e-7: d/2·log 2π is 1e14 times more
    curve = rate_distortion(eigvals, 1, [2e-14])
    assert curve.squared_error[0] == pytest.approx(3e-14, rel=1e-12)  # β + 1e-14 + 0
    assert curve_in_units(curve, 3, distortion_unit="mse")[1][0] == pytest.approx(1e-14, rel=1e-12)
    assert curve_in_units(curve, 3, distortion_unit="psnr")[1][0] == pytest.approx(140.0)
    # the excess of a model off the optimum scales as the data's variance (scale covariance)
    excess = []
    for scale in (1.0, 1e-14):
        cov, beta = np.diag(eigvals / 1e-14 * scale), 2.0 * scale
        params = optimum(cov, 1, beta)
        excess.append(audit(params._replace(D=0.9 * params.D), (np.zeros(3), cov), beta).excess)
    assert excess[0] > 0.005
    assert excess[1] == pytest.approx(excess[0] * 1e-14, rel=1e-6)
    # compare's excess, formed without the constant: what a second latent is worth
    from linvae.compare import evaluate

    betas = np.array([5e-15, 2e-14])  # below and above λ₂ = 1e-14
    one, two = (evaluate.analytic_curve(np.diag(eigvals), k, betas) for k in (1, 2))
    gap = evaluate.excess_loss(*(evaluate.loss_above_constant(c, betas) for c in (one, two)))
    worth = 0.5 * (1e-14 - 5e-15) - 0.5 * 5e-15 * np.log(2.0)  # ½(λ₂ − β) − ½β log(λ₂/β)
    np.testing.assert_allclose(gap, [worth, 0.0], rtol=1e-9, atol=1e-30)


def test_psnr_refuses_a_peak_below_the_data_and_compare_takes_peak(tmp_path, capsys, monkeypatch):
    path = tmp_path / "pixels.npy"
    np.save(path, np.random.default_rng(0).uniform(0.0, 255.0, size=(40, 4)))
    argv = ["--dataset", str(path), "--distortion", "psnr", "--quiet"]
    assert analytic_cli.main(argv) == EXIT_USAGE
    assert "--peak 1 is below the largest value of the data" in one_line(capsys)
    assert analytic_cli.main([*argv, "--peak", "255"]) == 0
    monkeypatch.setattr(training, "fit", lambda *a, **k: pytest.fail("must not train"))
    compare = [*TINY, "--dataset", str(path), "--distortion", "psnr", "--out", str(tmp_path / "o")]
    assert cli.main(compare) == EXIT_USAGE
    assert "--peak 1 is below the largest value of the data" in one_line(capsys)
