"""The scoreboard: every method, both objectives, several budgets, scored exactly, timed.

Each run trains a method from scratch for a budget of steps on one CPU thread (wall time
measured around its ``train``) and scores its maps on the grid against the analytic
optimum (:func:`linvae.methods.score`). Each family's representation floor is fitted once
to the analytic optimum on the grid (the method's ``floor``, started from its construction
or its exact-objective model of the largest budget); the excess above it is optimisation.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time

import numpy as np
import torch

from linvae._checks import as_betas, as_choice, as_int
from linvae.analytic import moments
from linvae.methods import Budget, Method, Trained, as_trained, score, summary
from linvae.methods.beta_vae_bank import MEMBERS
from linvae.mrvae.bank import BetaVAEBank, train_bank

#: What a run's record keeps of its score (the per-β arrays beside).
SCORE_FIELDS = (
    "max_excess",
    "mean_excess",
    "max_excess_over_beta",
    "mean_excess_over_beta",
    "worst_beta",
    "live_latents",
    "optimum_live_latents",
)


def _score_record(scored: dict) -> dict:
    record = {name: scored[name] for name in SCORE_FIELDS}
    record["excess"] = np.asarray(scored["excess"]).tolist()
    return record


def run_method(method: Method, X, beta_range, budget: Budget, mean, cov, betas):
    """Train one method for one budget, time it and score it: ``(record, Trained)``.

    ``seconds`` is the wall time of its ``train``; ``cpu_seconds`` the process's CPU time
    over it (the same on an idle machine with one thread, steadier on a shared one).
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    trained = as_trained(method.train(X, beta_range, budget), X.shape[1], budget.latent)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    record = {
        "method": method.name,
        "objective": budget.objective,
        "steps": budget.steps,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        **_score_record(score(trained, mean, cov, betas)),
        "notes": trained.notes,
        "variants": {
            name: _score_record(score(Trained(maps), mean, cov, betas))
            for name, maps in trained.variants.items()
        },
    }
    return record, trained


def fit_floor(method: Method, trained: Trained, X, betas, beta_range, iterations, mean, cov):
    """The family's floor on the grid: its excess profile and summary, or None."""
    if method.floor is None:
        return None
    started = time.perf_counter()
    fitted, start = method.floor(trained, X, betas, beta_range, iterations)
    scored = score(fitted, mean, cov, betas)
    return {
        **{name: scored[name] for name in ("max_excess", "mean_excess", "live_latents")},
        "max_excess_over_beta": scored["max_excess_over_beta"],
        "mean_excess_over_beta": scored["mean_excess_over_beta"],
        "excess": np.asarray(scored["excess"]).tolist(),
        "start": start,
        "iterations": iterations,
        "upper_bound": True,
        "seconds": time.perf_counter() - started,
        "variants": {
            name: summary(score(Trained(maps), mean, cov, betas)["excess"], betas)
            for name, maps in fitted.variants.items()
        },
    }


def at_time(runs: list[dict], seconds: float, key: str, clock: str = "seconds") -> float | None:
    """A method's ``key`` at ``seconds`` of ``clock`` (``"seconds"``: wall time,
    ``"cpu_seconds"``: CPU time), interpolated log-log between its budgets; None outside
    the times it was run for."""
    points = sorted((r[clock], r[key]) for r in runs)
    times = np.log([t for t, _ in points])
    values = [v for _, v in points]
    if not points or not (times[0] <= math.log(seconds) <= times[-1]) or min(values) <= 0:
        return None
    return float(np.exp(np.interp(math.log(seconds), times, np.log(values))))


def equal_time(
    runs: list[dict], against: str, reference: str = "beta-vae-bank", clock: str = "seconds"
) -> list[dict]:
    """The reference method's runs against ``against`` at the same time of ``clock`` (wall
    or CPU, see :func:`at_time`), per objective: their max and mean excess and the ratios
    (reference / against)."""
    rows = []
    for objective in sorted({r["objective"] for r in runs}):
        mine = [r for r in runs if r["method"] == reference and r["objective"] == objective]
        theirs = [r for r in runs if r["method"] == against and r["objective"] == objective]
        for run in mine:
            row = {"objective": objective, "steps": run["steps"], "seconds": run[clock]}
            for key in ("max_excess", "mean_excess"):
                other = at_time(theirs, run[clock], key, clock) if theirs else None
                row[key] = run[key]
                row[f"{against}_{key}"] = other
                row[f"ratio_{key}"] = None if other is None else run[key] / other
            rows.append(row)
    return rows


def bank_batched_against_sequential(X, latent, beta_range, members, steps, seed=0) -> dict:
    """Wall time of the bank trained batched against its members trained one by one
    (the same mathematics: each member's loss and Adam are its own), exact objective."""
    batched = BetaVAEBank(X.shape[1], latent, members, beta_range, seed=seed)
    started = time.perf_counter()
    train_bank(batched, X, steps=steps, seed=seed)
    batched_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for i, beta in enumerate(batched.betas):
        single = BetaVAEBank(X.shape[1], latent, 1, beta_range, seed=seed + i, member_betas=[beta])
        train_bank(single, X, steps=steps, seed=seed)
    sequential_seconds = time.perf_counter() - started
    return {
        "members": members,
        "steps": steps,
        "batched_seconds": batched_seconds,
        "sequential_seconds": sequential_seconds,
        "speedup": sequential_seconds / batched_seconds,
    }


@contextlib.contextmanager
def _interrupts_seen():
    """Inside, Ctrl-C and SIGTERM raise KeyboardInterrupt and are recorded in the yielded
    list: a trainer that catches the interrupt and returns early (every loop of linvae does)
    still stops the scoreboard after it."""
    seen: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return

    def handler(signum, frame):
        seen.append(signum)
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield seen
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_scoreboard(
    X,
    betas,
    beta_range,
    *,
    latent: int,
    methods: list[Method],
    objectives=("exact", "sampled"),
    budgets=(300, 1000, 3000),
    floor_iterations: int = 300,
    bank_check_steps: int = 200,
    seed: int = 0,
    progress=None,
) -> dict:
    """Run every method at every objective and budget; fit each family's floor.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    betas : array_like of shape (m,)
        The evaluation grid.
    beta_range : (float, float)
        Every method's training range.
    latent : int
    methods : list of Method
    objectives : sequence of {"exact", "sampled"}
    budgets : sequence of int
        Steps per run, each run from scratch.
    floor_iterations : int
        L-BFGS iterations of each floor fit (0: no floors).
    bank_check_steps : int
        Steps of the bank's batched-against-sequential timing (0: none).
    progress : callable, optional
        ``progress(text)`` before each run.

    Returns
    -------
    dict
        ``runs`` (one record per method, objective and budget: steps, seconds, scores,
        per-β excess), ``floors`` (per method), ``equal_time`` (the bank against each
        MR-VAE), ``bank_batched``; ``partial`` if Ctrl-C stopped it.
    """
    X = np.asarray(X, dtype=np.float64)
    betas = as_betas(betas)
    latent = as_int(latent, "latent", minimum=1)
    objectives = [as_choice(o, "objective", ("exact", "sampled")) for o in objectives]
    budgets = sorted(as_int(b, "budget", minimum=1) for b in budgets)
    stats = moments(X)
    runs, floors, partial = [], {}, False
    bank_batched = None
    with _interrupts_seen() as seen:
        partial = _run_all(
            X, betas, beta_range, latent, methods, objectives, budgets, floor_iterations,
            seed, progress, stats, runs, floors, seen,
        )  # fmt: skip
        if not partial and bank_check_steps and any(m.name == "beta-vae-bank" for m in methods):
            if progress is not None:
                progress("bank: batched against sequential")
            try:
                bank_batched = bank_batched_against_sequential(
                    X, latent, beta_range, MEMBERS, bank_check_steps, seed
                )
            except KeyboardInterrupt:
                partial = True
            partial = partial or bool(seen)
    names = {r["method"] for r in runs}
    return {
        "runs": runs,
        "floors": floors,
        "equal_time": {
            other: equal_time(runs, other)
            for other in ("mrvae-linvae", "mrvae-paper")
            if other in names and "beta-vae-bank" in names
        },
        "equal_cpu_time": {
            other: equal_time(runs, other, clock="cpu_seconds")
            for other in ("mrvae-linvae", "mrvae-paper")
            if other in names and "beta-vae-bank" in names
        },
        "bank_batched": bank_batched,
        "threads": torch.get_num_threads(),
        "partial": partial,
    }


def _run_all(X, betas, beta_range, latent, methods, objectives, budgets, floor_iterations,
             seed, progress, stats, runs, floors, seen) -> bool:  # fmt: skip
    """The runs and floors of :func:`run_scoreboard`, appended to ``runs`` and ``floors``;
    True when an interrupt stopped them (the run it cut short is left out)."""
    try:
        for method in methods:
            # one untimed step first: imports, allocations and caches are not the method's
            method.train(X, beta_range, Budget(1, latent, objectives[0], seed))
            largest_exact = None
            for objective in objectives:
                for steps in budgets:
                    if progress is not None:
                        progress(f"{method.name} {objective} {steps} steps")
                    budget = Budget(steps, latent, objective, seed)
                    record, trained = run_method(
                        method, X, beta_range, budget, stats.mean, stats.cov, betas
                    )
                    if seen:
                        return True
                    runs.append(record)
                    if objective == "exact" and steps == budgets[-1]:
                        largest_exact = trained
            if floor_iterations and largest_exact is not None and method.floor is not None:
                if progress is not None:
                    progress(f"{method.name} floor")
                floor = fit_floor(
                    method, largest_exact, X, betas, beta_range, floor_iterations,
                    stats.mean, stats.cov,
                )  # fmt: skip
                if seen:
                    return True
                floors[method.name] = floor
    except KeyboardInterrupt:
        return True
    return False
