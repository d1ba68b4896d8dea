"""Time to the same excess: one MR-VAE trained by the sampled route (mini-batches of the
data) against one trained by the exact route (the data's mean and covariance), on the same
data and β range.

``python -m benchmarks.time_to_excess [--sampled-steps 4000,8000] [--polish-budgets
0,250,500,1000,1500] [--exact-steps N] [--dataset, --n, --patch-size, --latent, --seed,
--threads, --device of linvae.compare] [--out DIR]``

- **Exact route** (:func:`linvae.mrvae.recipe.train_recipe`): Adam alone (its default
  steps, or ``--exact-steps``; no polish), then from a copy of that state each polish
  budget of ``--polish-budgets`` (``RecipeConfig(resume=True, steps=0,
  polish_iterations=N)``; 0: Adam alone). A row's time is the Adam run's wall time (the
  moments and the whitening included) plus that polish's own time (its run's setup, which
  a single run would not pay twice, left out).
- **Sampled route** (:func:`linvae.mrvae.sampled.train_sampled_recipe`): the default
  :class:`~linvae.mrvae.sampled.SampledConfig` with each number of ``--sampled-steps``; a
  row's time is the call's wall time (the data passes for its units included).

Both train over the training range of the same full grid (from the data's exact spectrum,
formed before any training and not timed) and are judged by their exact excess on that grid
(not timed). Then, for each sampled row, the fastest exact row whose max excess is at or
below the sampled row's (the exact route's time to that excess is at most its time) and
the slowest exact row still above it (at least its time, a longer exact run ending no
worse), each with the ratio of its time to the sampled row's (exact over sampled; a lower
bound above 1: the sampled route was faster to that excess). Single runs (one seed); wall
times carry the machine's load, and both routes run in one process, one after the other.

Writes ``time_to_excess.json`` and ``time_to_excess.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import time

import numpy as np

from linvae._checks import resolve_device
from linvae.analytic import full_grid, moments, rate_distortion, spectrum
from linvae.compare.cli import add_config_flags, config_from_args
from linvae.compare.comparison import load_data
from linvae.compare.evaluate import loss_above_constant
from linvae.mrvae.model import LatentMRVAE
from linvae.mrvae.recipe import RecipeConfig, train_recipe, training_range
from linvae.mrvae.sampled import SampledConfig, train_sampled_recipe
from linvae.mrvae.threads import set_cpu_threads

from ._runs import command_line, log, measured_on, non_negative_ints, positive_ints, write_result
from .sampled_recipe import _excess


def judged(model, stats, grid, optimum) -> dict:
    """Max excess (nats) and max excess/β of ``model`` on ``grid``, with their β."""
    excess = _excess(model, stats, grid, optimum)
    return {
        "max": float(excess.max()),
        "argmax_beta": float(grid[int(np.argmax(excess))]),
        "max_over_beta": float((excess / grid).max()),
        "argmax_over_beta": float(grid[int(np.argmax(excess / grid))]),
    }


def warm_up(device) -> None:
    """Both routes once on a small problem, untimed: the first call of a process pays for
    lazy imports and initialisation (1.9 s measured for the exact route at d = 16)."""
    X = np.random.default_rng(0).standard_normal((256, 8))
    model = LatentMRVAE(8, 2, beta_range=(0.1, 10.0))
    train_recipe(model, X, RecipeConfig(steps=2, polish_iterations=2), device=device)
    model = LatentMRVAE(8, 2, beta_range=(0.1, 10.0))
    train_sampled_recipe(model, X, None, SampledConfig(steps=2, batch_size=16), device=device)


def exact_rows(X, beta_range, config, budgets, adam_steps, device) -> list:
    """(setting, seconds, model) for Adam alone and each polish budget from its state."""
    k = config.latent
    adam_settings = {"seed": config.seed, "polish_iterations": 0}
    if adam_steps is not None:
        adam_settings["steps"] = adam_steps
    model = LatentMRVAE(X.shape[1], k, beta_range=beta_range, seed=config.seed)
    started = time.perf_counter()
    result = train_recipe(
        model, X, RecipeConfig(**adam_settings), beta_range=beta_range, device=device
    )
    adam_seconds = time.perf_counter() - started
    log(f"exact: Adam ({result.steps} steps) in {adam_seconds:.1f} s")
    rows = []
    for budget in budgets:
        if budget == 0:
            rows.append((f"Adam {result.steps} steps", adam_seconds, model))
            continue
        polished = copy.deepcopy(model)
        settings = RecipeConfig(seed=config.seed, resume=True, steps=0, polish_iterations=budget)
        polish = train_recipe(polished, X, settings, beta_range=beta_range, device=device)
        seconds = adam_seconds + polish.polish_seconds
        log(f"exact: + polish {budget} in {polish.polish_seconds:.1f} s")
        rows.append((f"Adam {result.steps} steps + polish {budget}", seconds, polished))
    return rows


def sampled_rows(X, beta_range, config, steps_list, device) -> list:
    """(setting, seconds, model) for the sampled recipe's default at each number of steps."""
    rows = []
    for steps in steps_list:
        model = LatentMRVAE(X.shape[1], config.latent, beta_range=beta_range, seed=config.seed)
        started = time.perf_counter()
        train_sampled_recipe(
            model, X, beta_range, SampledConfig(seed=config.seed, steps=steps), device=device
        )
        seconds = time.perf_counter() - started
        log(f"sampled: {steps} steps in {seconds:.1f} s")
        rows.append((f"{steps} steps", seconds, model))
    return rows


def race(rows) -> list:
    """For each sampled row, the fastest exact row at or below its max excess (the exact
    route's time to it is at most that row's) and the slowest exact row still above it
    (at least that row's, where a longer run ends no worse)."""
    exact = [r for r in rows if r["route"] == "exact"]
    verdicts = []
    for r in (r for r in rows if r["route"] == "sampled"):
        reached = [e for e in exact if e["max"] <= r["max"]]
        above = [e for e in exact if e["max"] > r["max"]]
        best = min(reached, key=lambda e: e["seconds"]) if reached else None
        short = max(above, key=lambda e: e["seconds"]) if above else None
        verdicts.append(
            {
                "sampled": r["setting"],
                "max": r["max"],
                "sampled_seconds": r["seconds"],
                "exact": None if best is None else best["setting"],
                "exact_seconds": None if best is None else best["seconds"],
                "exact_over_sampled": None if best is None else best["seconds"] / r["seconds"],
                "exact_above": None if short is None else short["setting"],
                "exact_above_seconds": None if short is None else short["seconds"],
                "exact_above_over_sampled": None
                if short is None
                else short["seconds"] / r["seconds"],
            }
        )
    return verdicts


def markdown(rows, verdicts, header) -> str:
    lines = [
        header,
        "",
        "| route | setting | max excess, nats | at β | max excess/β | at β | training s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['route']} | {r['setting']} | {r['max']:.2g} | {r['argmax_beta']:.3g} "
            f"| {r['max_over_beta']:.2g} | {r['argmax_over_beta']:.3g} | {r['seconds']:.1f} |"
        )
    lines += [
        "",
        "| sampled row | its max excess | its time, s | the slowest exact row still above "
        "| its time, s (exact / sampled) | the fastest exact row as close "
        "| its time, s (exact / sampled) |",
        "|---|---|---|---|---|---|---|",
    ]

    def cell(setting, seconds, ratio):
        if setting is None:
            return "none measured | —"
        return f"{setting} | {seconds:.1f} ({ratio:.2f}×)"

    for v in verdicts:
        above = cell(v["exact_above"], v["exact_above_seconds"], v["exact_above_over_sampled"])
        close = cell(v["exact"], v["exact_seconds"], v["exact_over_sampled"])
        lines.append(
            f"| {v['sampled']} | {v['max']:.2g} | {v['sampled_seconds']:.1f} | {above} | {close} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.time_to_excess", description=__doc__)
    p.add_argument("--sampled-steps", type=positive_ints, default=[4000, 8000])
    p.add_argument("--polish-budgets", type=non_negative_ints, default=[0, 250, 500, 1000, 1500])
    p.add_argument("--exact-steps", type=int, default=None, help="Adam's [the recipe's]")
    p.add_argument("--out", default="runs/benchmarks/time_to_excess")
    add_config_flags(p, only=("dataset", "n", "patch_size", "latent", "seed", "threads", "device"))
    options = p.parse_args(argv)
    if options.exact_steps is not None and options.exact_steps < 1:
        p.error("--exact-steps must be >= 1")
    config = dataclasses.replace(config_from_args(options), baselines=0)
    device = resolve_device(config.device)
    set_cpu_threads(config.threads)
    X, info = load_data(config)
    started = time.perf_counter()
    stats = moments(X)
    eigvals = spectrum(stats.cov).eigvals
    grid = full_grid(eigvals, config.latent)
    optimum = loss_above_constant(rate_distortion(eigvals, config.latent, grid)._asdict(), grid)
    beta_range = training_range(grid)
    warm_up(device)
    trained = [
        ("exact", *row)
        for row in exact_rows(
            X, beta_range, config, options.polish_budgets, options.exact_steps, device
        )
    ]
    trained += [
        ("sampled", *row)
        for row in sampled_rows(X, beta_range, config, options.sampled_steps, device)
    ]
    rows = []
    for route, setting, seconds, model in trained:
        row = {"route": route, "setting": setting, "seconds": seconds}
        row.update(judged(model, stats, grid, optimum))
        rows.append(row)
        log(f"{route} {setting}: max {row['max']:.3g} nats, max/β {row['max_over_beta']:.3g}")
    verdicts = race(rows)
    header = (
        f"`{command_line('benchmarks.time_to_excess', argv)}`: {info.name} (n = {info.n}, "
        f"d = {info.d}), k = {config.latent}, seed {config.seed}; full grid {grid[0]:.3g} … "
        f"{grid[-1]:.3g} ({grid.size} β); {measured_on(device)}, {config.threads} torch "
        f"thread(s); total {time.perf_counter() - started:.0f} s."
    )
    record = {"header": header, "rows": rows, "race": verdicts}
    write_result(options.out, "time_to_excess", record, markdown(rows, verdicts, header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
