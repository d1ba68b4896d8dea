"""``python -m linvae.scoreboard`` end to end on a small problem, its plug-in, its failures,
and the arithmetic of its comparisons."""

import json
import textwrap

import numpy as np
import pytest

from linvae._cli import EXIT_USAGE
from linvae.methods import REGISTRY
from linvae.scoreboard import leaderboard
from linvae.scoreboard.board import at_time, equal_time
from linvae.scoreboard.cli import main

TINY = ["--dataset", "gaussian", "--n", "60", "--latent", "2", "--betas", "0.05:2:5",
        "--budgets", "3,6", "--floor-iterations", "3", "--bank-check-steps", "2"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.usefixtures("restore_torch_threads")
def test_the_scoreboard_runs_end_to_end(tmp_path, capsys, monkeypatch):
    plugin = tmp_path / "my_method.py"
    plugin.write_text(
        textwrap.dedent(
            """
            import numpy as np, torch
            from linvae.analytic import moments, optimum

            def oracle(X, beta_range, budget):
                stats = moments(X)
                k = budget.latent

                def maps(log_beta):
                    rows = [optimum(stats.cov, k, float(np.exp(e))) for e in log_beta.tolist()]
                    E = torch.as_tensor(np.stack([r.E for r in rows]))
                    c = torch.as_tensor(np.stack([r.c for r in rows]))
                    D = torch.as_tensor(np.stack([r.D for r in rows]))
                    m = torch.as_tensor(stats.mean)
                    return E, c, D, -(E @ m), m.expand(len(rows), -1)

                return maps
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    paths = {flag: tmp_path / name for flag, name in
             (("--json", "s.json"), ("--markdown", "s.md"), ("--plot", "s.png"))}  # fmt: skip
    argv = [*TINY, "--plugin", "my_method:oracle"]
    argv += [str(part) for flag, path in paths.items() for part in (flag, path)]
    assert main(argv) == 0
    record = json.loads(paths["--json"].read_text())
    names = set(REGISTRY) | {"oracle"}
    runs = {(r["method"], r["objective"], r["steps"]) for r in record["runs"]}
    assert runs == {(n, o, s) for n in names for o in ("exact", "sampled") for s in (3, 6)}
    for run in record["runs"]:
        excess = np.array(run["excess"])
        assert run["max_excess"] == pytest.approx(excess.max())
        assert run["mean_excess"] == pytest.approx(excess.mean())
        assert run["max_excess_over_beta"] == pytest.approx(
            np.max(excess / np.array(record["betas"]))
        )
        assert excess.min() > -1e-9 and run["seconds"] > 0
        if run["method"] == "oracle":
            assert run["max_excess"] < 1e-9
    assert set(record["floors"]) == set(REGISTRY)  # the user's method has no floor
    assert record["floors"]["mrvae-linvae"]["max_excess"] < 1e-9  # Theorem 1: exact
    assert set(record["equal_time"]) == {"mrvae-linvae", "mrvae-paper"}
    assert record["bank_batched"]["members"] >= 2
    markdown = paths["--markdown"].read_text()
    assert markdown == capsys.readouterr().out
    assert "## Leaderboard" in markdown and "`oracle`" in markdown
    assert paths["--plot"].read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--methods", "vq-vae"], "--methods: unknown ['vq-vae']"),
        (["--objectives", "elbo"], "--objectives"),
        (["--budgets", "0"], "--budgets"),
        (["--plugin", "nomodule"], "MODULE:FUNCTION"),
        (["--plugin", "no_such_module_here:f"], "--plugin"),
        (["--plot", "x.txt"], "--plot"),
    ],
)
def test_a_bad_flag_is_one_line_and_exit_2(flags, message, capsys):
    assert main([*TINY, *flags]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_equal_time_interpolates_log_log_between_budgets():
    runs = [
        {"method": "mrvae-linvae", "objective": "exact", "steps": s, "seconds": t,
         "max_excess": e, "mean_excess": e / 10}
        for s, t, e in ((10, 1.0, 1.0), (100, 10.0, 0.01))
    ] + [{"method": "beta-vae-bank", "objective": "exact", "steps": 5, "seconds": np.sqrt(10.0),
          "max_excess": 0.05, "mean_excess": 0.001}]  # fmt: skip
    # at the geometric middle of the times the log-log value is the geometric middle, 0.1
    assert at_time(runs[:2], np.sqrt(10.0), "max_excess") == pytest.approx(0.1)
    assert at_time(runs[:2], 20.0, "max_excess") is None
    (row,) = equal_time(runs, "mrvae-linvae")
    assert row["ratio_max_excess"] == pytest.approx(0.5)
    assert row["ratio_mean_excess"] == pytest.approx(0.1)


def test_the_leaderboard_ranks_each_methods_largest_budget():
    runs = [
        {"method": "a", "objective": "exact", "steps": 10, "max_excess": 0.1},
        {"method": "a", "objective": "exact", "steps": 100, "max_excess": 0.3},
        {"method": "b", "objective": "exact", "steps": 100, "max_excess": 0.2},
    ]
    ranked = leaderboard({"runs": runs})
    assert [(r["method"], r["steps"]) for r in ranked] == [("b", 100), ("a", 100)]


def test_an_interrupt_stops_the_scoreboard_even_when_the_trainer_swallows_it():
    """Ctrl-C inside a method whose loop catches it (as linvae's loops do) still ends the
    scoreboard: the runs before it are kept, the cut one is left out, partial is set."""
    import contextlib
    import os
    import signal

    import torch

    from linvae.data import load
    from linvae.methods import custom
    from linvae.scoreboard import run_scoreboard

    def still(X, beta_range, budget):  # one fixed β-VAE, no training
        k, d = budget.latent, X.shape[1]

        def maps(log_beta):
            B = log_beta.shape[0]
            E = torch.eye(k, d, dtype=torch.float64).expand(B, k, d)
            return (E, torch.ones(B, k, dtype=torch.float64), E.transpose(1, 2),
                    torch.zeros(B, k, dtype=torch.float64), torch.zeros(B, d, dtype=torch.float64))  # fmt: skip

        return maps

    def interrupted(X, beta_range, budget):
        # a trainer that stops early on Ctrl-C and returns what it has
        with contextlib.suppress(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
        return still(X, beta_range, budget)

    def never(X, beta_range, budget):
        raise AssertionError("the scoreboard went on after the interrupt")

    X, _ = load("gaussian", n=40, eigvals=[2.0, 1.0, 0.5])
    methods = [custom("still", still), custom("cut", interrupted), custom("never", never)]
    # Ctrl-C as an interactive session has it: a job started in the background by a
    # non-interactive shell inherits SIGINT ignored, and the kill above would do nothing
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        record = run_scoreboard(X, [0.1, 1.0], (0.05, 1.0), latent=2, methods=methods,
                                budgets=(1,), objectives=("exact",))  # fmt: skip
        restored = signal.getsignal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert record["partial"] is True
    assert [r["method"] for r in record["runs"]] == ["still"]
    assert restored is signal.default_int_handler  # the scoreboard put back what it found
