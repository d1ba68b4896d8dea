"""linvae's recipe on the sampled ELBO (mini-batches and reparameterised noise), one change
at a time, each MR-VAE judged by its exact excess on the full grid.

``python -m benchmarks.sampled_recipe [--rows NAME,...] [--baselines N] [--steps N]
[--dataset, --n, --patch-size, --latent, --seed, --threads of linvae.compare] [--out DIR]``

Every row trains one ``LatentMRVAE`` over the full grid's training range with
:func:`linvae.mrvae.sampled.train_sampled_recipe` (a :class:`SampledConfig` with the
row's settings) and reports its exact excess over the analytic optimum on the full grid:
max excess (nats), max excess/β, the β where they lie, the latents alive at the bottom β,
and the wall time (training, then the exact evaluation, the only O(d³) part). Rows
(:data:`ROWS`) are the default, and the default with one setting changed. ``--baselines
N``: also N β-VAEs trained the same way at their β (log-spaced over the grid), reported
by their max excess and max excess/β.

Writes ``sampled.json`` and ``sampled.md`` into ``--out``; each row is printed as it ends.
Single runs (one seed); wall times carry the machine's load.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import sys
import time

import numpy as np
import torch

from linvae._checks import resolve_device
from linvae.analytic import full_grid, moments, rate_distortion, spectrum
from linvae.compare.cli import add_config_flags, config_from_args
from linvae.compare.comparison import load_data
from linvae.compare.evaluate import evaluate_model, excess_loss, loss_above_constant
from linvae.compare.report import versions
from linvae.mrvae.model import LatentMRVAE, one_layer_vae
from linvae.mrvae.recipe import training_range
from linvae.mrvae.sampled import SampledConfig, leading_directions, train_sampled_recipe
from linvae.mrvae.threads import set_cpu_threads

from ._runs import command_line, log, measured_on, names_among, write_result

#: Each row: what it changes from the default SampledConfig.
ROWS = {
    "default": {},
    "reparameterised": {"estimator": "reparameterised"},
    "no-antithetic": {"antithetic": False},
    "example-beta": {"beta_sampling": "example"},
    "batch-beta": {"beta_sampling": "batch"},
    "inverse": {"beta_weight": "inverse"},
    "both": {"beta_weight": "both"},
    "no-average": {"average_from": None},
    "lowrank": {"precondition": "lowrank"},
    "scale": {"precondition": "scale"},
    "capped-10": {"precondition_spread": 10.0},
    "capped-100": {"precondition_spread": 100.0},
    "average-half": {"average_from": 0.5},
    "diagonal": {"precondition": "diagonal"},
    "revive": {"revive_at": (0.1, 0.2, 0.3, 0.45, 0.6)},
    "decoder-column": {"decoder_unit": "column"},
    "lowrank-lr-0.01": {"precondition": "lowrank", "lr": 0.01},
    "lowrank-lr-0.003": {"precondition": "lowrank", "lr": 0.003},
    "lowrank-lr-0.01-both": {"precondition": "lowrank", "lr": 0.01, "beta_weight": "both"},
    "batch-128": {"batch_size": 128},
    "close-full": {"close_fraction": 0.1},
    "momentum-0.99": {"momentum": 0.99},
    "lr-0.01": {"lr": 0.01},
    "lr-0.005": {"lr": 0.005},
    "lr-0.003": {"lr": 0.003},
    "lr-0.03": {"lr": 0.03},
    "lr-0.1": {"lr": 0.1},
    "steps-4000": {"steps": 4000},
    "paper-like": {
        "estimator": "reparameterised",
        "antithetic": False,
        "beta_sampling": "example",
        "batch_size": 128,
        "lr": 0.01,
        "average_from": None,
    },
}


def _excess(model, stats, grid, optimum):
    terms = evaluate_model(model, stats.mean, stats.cov, grid)
    return excess_loss(loss_above_constant(terms, grid), optimum, betas=grid)


def training_grid(X, k, seed):
    """The full grid (λ_k/2 … 2λ₁) from the data's leading 2k directions by subspace
    iteration in batches (:func:`linvae.mrvae.sampled.leading_directions`, 30 passes):
    no (d, d) matrix before training."""
    data = torch.as_tensor(X, dtype=torch.float64)
    rank = min(2 * k, data.shape[1])
    _, values = leading_directions(data, data.mean(0), rank, 30, 4096, seed)
    return full_grid(np.sort(values.numpy())[::-1][:k], k)


def measure(X, config, names, baselines, steps, log):
    """One dict per row (and one for the β-VAEs): excess, excess/β, live latents, times.

    Every model is trained before the data's covariance is formed, so the peak memory of
    training (``peak``) is read before the exact evaluation's."""
    k = config.latent
    grid = training_grid(X, k, config.seed)
    beta_range = training_range(grid)
    trained = []
    for name in names:
        set_cpu_threads(config.threads)
        settings = {"seed": config.seed, **ROWS[name]}
        if steps is not None:
            settings["steps"] = steps
        sampled = SampledConfig(**settings)
        model = LatentMRVAE(X.shape[1], k, beta_range=beta_range, seed=config.seed)
        cpu = time.process_time()
        result = train_sampled_recipe(model, X, beta_range, sampled, device=config.device)
        trained.append((name, model, result, time.process_time() - cpu))
        log(f"{name:<16} trained in {result.seconds:.1f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    stats = moments(X)
    eigvals = spectrum(stats.cov).eigvals
    optimum = loss_above_constant(rate_distortion(eigvals, k, grid)._asdict(), grid)
    setup_seconds = time.perf_counter() - started
    rows = []
    for name, model, result, cpu in trained:
        started = time.perf_counter()
        excess = _excess(model, stats, grid, optimum)
        singular = np.linalg.svd(model.params_at(float(grid[0])).D, compute_uv=False)
        row = {
            "row": name,
            "changes": ROWS[name],
            "max": float(excess.max()),
            "mean": float(excess.mean()),
            "argmax_beta": float(grid[int(np.argmax(excess))]),
            "max_over_beta": float((excess / grid).max()),
            "argmax_over_beta": float(grid[int(np.argmax(excess / grid))]),
            "live": int(np.sum(singular > 0.01)),
            "steps": result.steps,
            "seconds": result.seconds,
            "cpu_seconds": cpu,
            "evaluation_seconds": time.perf_counter() - started,
            "diverged_at": result.diverged_at,
            "revived": result.revived_latents,
            "learning_rate": result.learning_rate,
        }
        rows.append(row)
        log(
            f"{name:<16} max {row['max']:.2e} at {row['argmax_beta']:.3g}  max/β "
            f"{row['max_over_beta']:.2e} at {row['argmax_over_beta']:.3g}  live {row['live']}/{k}"
            f"  revived {result.revived_latents}  lr {result.learning_rate:.3g}"
            f"  {result.seconds:.1f} s ({cpu:.1f} s of CPU)"
        )
    if baselines:
        rows.append(_baselines(X, config, grid, stats, eigvals, baselines, steps, log))
    return rows, grid, setup_seconds, peak


def _baselines(X, config, grid, stats, eigvals, count, steps, log):
    """``count`` β-VAEs trained by the sampled recipe at their β, as one row."""
    k = config.latent
    betas = np.geomspace(float(grid.min()), float(grid.max()), count)
    optimum = loss_above_constant(rate_distortion(eigvals, k, betas)._asdict(), betas)
    settings = {"seed": config.seed} if steps is None else {"seed": config.seed, "steps": steps}
    excess, seconds = [], 0.0
    for beta, best in zip(betas, optimum, strict=True):
        model = one_layer_vae(X.shape[1], k, seed=config.seed)
        result = train_sampled_recipe(
            model, X, None, SampledConfig(**settings), beta=float(beta), device=config.device
        )
        seconds += result.seconds
        excess.append(float(_excess(model, stats, np.array([beta]), np.array([best]))[0]))
    excess = np.array(excess)
    row = {
        "row": f"{count} β-VAEs",
        "changes": {},
        "max": float(excess.max()),
        "mean": float(excess.mean()),
        "argmax_beta": float(betas[int(np.argmax(excess))]),
        "max_over_beta": float((excess / betas).max()),
        "argmax_over_beta": float(betas[int(np.argmax(excess / betas))]),
        "live": None,
        "steps": SampledConfig(**settings).steps,
        "seconds": seconds,
        "cpu_seconds": None,
        "evaluation_seconds": None,
        "diverged_at": None,
        "learning_rate": None,  # each its own (SampledConfig.lr None: from its β)
    }
    log(f"{row['row']:<16} max {row['max']:.2e}  max/β {row['max_over_beta']:.2e}  {seconds:.1f} s")
    return row


def markdown(rows, header, k):
    lines = [
        header,
        "",
        "| row | change | max excess | at β | max excess/β | at β | mean excess "
        f"| live of {k} at λ_k/2 | steps | Adam's lr | training s (CPU s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        change = ", ".join(f"{key}={value}" for key, value in r["changes"].items()) or "—"
        live = "—" if r["live"] is None else r["live"]
        cpu = "" if r["cpu_seconds"] is None else f" ({r['cpu_seconds']:.1f})"
        lr = "—" if r.get("learning_rate") is None else f"{r['learning_rate']:.3g}"
        lines.append(
            f"| `{r['row']}` | {change} | {r['max']:.2g} | {r['argmax_beta']:.3g} "
            f"| {r['max_over_beta']:.2g} | {r['argmax_over_beta']:.3g} | {r['mean']:.2g} "
            f"| {live} | {r['steps']} | {lr} | {r['seconds']:.1f}{cpu} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.sampled_recipe", description=__doc__)
    p.add_argument("--rows", type=names_among(ROWS, "rows"), default=["default"], help="[default]")
    p.add_argument("--baselines", type=int, default=0, help="β-VAEs trained the same way [0]")
    p.add_argument("--out", default="runs/benchmarks/sampled_recipe")
    add_config_flags(
        p, only=("dataset", "n", "patch_size", "latent", "steps", "seed", "threads", "device")
    )
    options = p.parse_args(argv)
    config = dataclasses.replace(config_from_args(options), baselines=0)
    device = resolve_device(config.device)
    X, info = load_data(config)
    start = time.perf_counter()
    rows, grid, setup, peak = measure(
        X, config, options.rows, options.baselines, getattr(options, "steps", None), log
    )
    header = (
        f"`{command_line('benchmarks.sampled_recipe', argv)}`: {info.name} (n = {info.n}, "
        f"d = {info.d}), k = {config.latent}, seed {config.seed}; full grid {grid[0]:.3g} … "
        f"{grid[-1]:.3g} ({grid.size} β); {measured_on(device)}, {config.threads} torch "
        f"thread(s); peak memory of training {peak:.0f} MiB; the exact evaluation's moments, "
        f"spectrum and optimum {setup:.1f} s; total {time.perf_counter() - start:.0f} s."
    )
    record = {"header": header, "versions": versions(), "rows": rows}
    write_result(options.out, "sampled", record, markdown(rows, header, config.latent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
