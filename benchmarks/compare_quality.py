"""Quality against training budget: one MR-VAE against β-VAEs, exact excess over the optimum.

``python -m benchmarks.compare_quality [--steps 2500,5000,10000,20000] [--baseline-steps ...]
[--objective sampled] [--covariance-gate hinge] [--device cpu] [--out DIR]``

For each budget S (optimiser steps per model), on digits with k = 32:

1. one MR-VAE trained for S steps, its exact excess loss over the analytic optimum on the
   31-point grid 0.01:10 (max, mean, and max over β ≥ 0.05), and its wall time;
2. ten β-VAEs at log-spaced β in [0.01, 10], S steps each, their excess at their own β
   (max, mean) and their total wall time; and the MR-VAE's excess at those ten β.

Writes ``quality.json`` (strict serialiser), ``quality.md`` and ``quality.png`` into
``--out``. Wall times depend on the machine and its load: compare rows of one run only.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from linvae._io import atomic_write_bytes, atomic_write_text, write_json
from linvae.analytic import moments, rate_distortion, spectrum
from linvae.compare.evaluate import evaluate_model, exact_terms, excess_loss
from linvae.compare.report import versions
from linvae.data import load
from linvae.mrvae.model import LinearMRVAE, LinearVAE
from linvae.mrvae.train import TrainConfig, resolve_device, train

from ._timing import machine


def parse_steps(text):
    return [int(v) for v in text.split(",") if v]


def measure(X, k, grid, budgets, baseline_budgets, options, device, log):
    stats = moments(X)
    eigvals = spectrum(stats.cov).eigvals
    optimum = rate_distortion(eigvals, k, grid).loss
    baseline_betas = np.geomspace(0.01, 10.0, options.baselines)
    baseline_optimum = rate_distortion(eigvals, k, baseline_betas).loss
    rows = []
    for steps in sorted(set(budgets) | set(baseline_budgets)):
        config = TrainConfig(
            steps=steps, lr=options.lr, batch_size=options.batch_size,
            objective=options.objective, seed=options.seed, beta_range=options.beta_range,
        )  # fmt: skip
        row = {"steps": steps}
        if steps in budgets:
            model = LinearMRVAE(
                X.shape[1], k, options.encoder_gate, options.decoder_gate, options.covariance_gate,
                hidden=options.hidden, gate_input=options.gate_input, seed=options.seed, beta_range=options.beta_range,
            )  # fmt: skip
            result = train(model, X, config, device=device)
            excess = excess_loss(
                evaluate_model(model, stats.mean, stats.cov, grid)["loss"], optimum
            )
            at_baselines = excess_loss(
                evaluate_model(model, stats.mean, stats.cov, baseline_betas)["loss"],
                baseline_optimum,
            )
            row["mrvae"] = {
                "seconds": result.seconds,
                "excess": excess,
                "excess_max": float(excess.max()),
                "excess_mean": float(excess.mean()),
                "excess_max_beta_ge_0.05": float(excess[grid >= 0.05].max()),
                "excess_at_baseline_betas_max": float(at_baselines.max()),
                "excess_at_baseline_betas_mean": float(at_baselines.mean()),
            }
            log(f"MR-VAE  {steps:>6} steps {result.seconds:7.1f} s  excess max "
                f"{excess.max():.4f} mean {excess.mean():.4f}")  # fmt: skip
        if steps in baseline_budgets and options.baselines:
            seconds, excess = 0.0, []
            for i, beta in enumerate(baseline_betas):
                model = LinearVAE(X.shape[1], k, hidden=options.hidden, seed=options.seed)
                result = train(model, X, config, beta=float(beta), device=device)
                seconds += result.seconds
                loss = exact_terms(model, float(beta), stats.mean, stats.cov).loss
                excess.append(float(excess_loss([loss], [baseline_optimum[i]])[0]))
            row["beta_vaes"] = {
                "seconds": seconds,
                "betas": baseline_betas,
                "excess": excess,
                "excess_max": float(np.max(excess)),
                "excess_mean": float(np.mean(excess)),
            }
            log(f"β-VAEs  {steps:>6} steps {seconds:7.1f} s  excess max "
                f"{np.max(excess):.4f} mean {np.mean(excess):.4f}")  # fmt: skip
        rows.append(row)
    return rows


def markdown(rows, header):
    lines = [
        header,
        "",
        "| steps per model | MR-VAE time | MR-VAE max / mean excess (31 β) | MR-VAE max, β ≥ 0.05 "
        "| MR-VAE max / mean at the 10 β | 10 β-VAEs time | β-VAEs max / mean excess |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        mr, bv = row.get("mrvae"), row.get("beta_vaes")
        cells = [str(row["steps"])]
        if mr:
            cells += [
                f"{mr['seconds']:.1f} s",
                f"{mr['excess_max']:.4f} / {mr['excess_mean']:.4f}",
                f"{mr['excess_max_beta_ge_0.05']:.4f}",
                f"{mr['excess_at_baseline_betas_max']:.4f} / {mr['excess_at_baseline_betas_mean']:.4f}",
            ]
        else:
            cells += ["—"] * 4
        cells += (
            [f"{bv['seconds']:.1f} s", f"{bv['excess_max']:.4f} / {bv['excess_mean']:.4f}"]
            if bv
            else ["—"] * 2
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(rows, grid):
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 4.0))
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    mr = [
        (r["mrvae"]["seconds"], r["mrvae"]["excess_max"], r["mrvae"]["excess_mean"])
        for r in rows
        if "mrvae" in r
    ]
    bv = [
        (r["beta_vaes"]["seconds"], r["beta_vaes"]["excess_max"], r["beta_vaes"]["excess_mean"])
        for r in rows
        if "beta_vaes" in r
    ]
    for points, label, color in ((mr, "one MR-VAE", "C0"), (bv, "10 β-VAEs", "C3")):
        if points:
            t, mx, mean = np.array(points).T
            left.plot(t, mx, "o-", color=color, label=f"{label}: max")
            left.plot(t, mean, "o--", color=color, mfc="none", label=f"{label}: mean")
    left.axhline(0.01, color="k", ls=":", lw=1)
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("wall time of training (s)")
    left.set_ylabel("excess loss (nats / example)")
    left.legend(frameon=False, fontsize=8)
    for r in rows:
        if "mrvae" in r:
            right.plot(grid, np.maximum(r["mrvae"]["excess"], 1e-6), label=f"{r['steps']} steps")
    right.axhline(0.01, color="k", ls=":", lw=1)
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("β")
    right.set_ylabel("MR-VAE excess (nats / example)")
    right.legend(frameon=False, fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.compare_quality")
    p.add_argument("--steps", type=parse_steps, default=[2500, 5000, 10000, 20000])
    p.add_argument("--baseline-steps", type=parse_steps, default=[2500, 5000, 10000])
    p.add_argument("--baselines", type=int, default=10)
    p.add_argument("--objective", default="sampled")
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--encoder-gate", default="sqrt")
    p.add_argument("--decoder-gate", default="sqrt")
    p.add_argument("--covariance-gate", default="hinge")
    p.add_argument("--gate-input", default="standardized")
    p.add_argument("--latent", type=int, default=32)
    p.add_argument("--hidden", type=int, default=None, help="hidden width [2 × the latent size]")
    p.add_argument("--train-range", default="0.01:10", help="LO:HI of the MR-VAE's β")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="runs/benchmarks/compare_quality")
    options = p.parse_args(argv)
    options.beta_range = tuple(float(v) for v in options.train_range.split(":"))
    options.hidden = options.hidden or 2 * options.latent
    torch.set_num_threads(options.threads)
    device = resolve_device(options.device)
    X, info = load("digits")
    grid = np.geomspace(0.01, 10.0, 31)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = measure(X, options.latent, grid, options.steps, options.baseline_steps, options, device,
                   lambda line: print(line, file=sys.stderr, flush=True))  # fmt: skip
    where = machine() if device.type == "cpu" else torch.cuda.get_device_name(device)
    header = (
        f"digits (n = {info.n}, d = {info.d}), k = {options.latent}, objective {options.objective}, "
        f"lr {options.lr}, batch {options.batch_size}, gates {options.encoder_gate} / "
        f"{options.covariance_gate} / {options.decoder_gate} (encoder / covariance / decoder), "
        f"MR-VAE β range {options.train_range}, hidden width {options.hidden or options.latent}, "
        f"device {device} ({where}), {options.threads} thread(s); total "
        f"{time.perf_counter() - start:.0f} s."
    )
    write_json(out / "quality.json", {"settings": vars(options) | {"device": str(device)},
                                      "machine": where, "versions": versions(), "grid": grid,
                                      "rows": rows})  # fmt: skip
    atomic_write_text(out / "quality.md", markdown(rows, header))
    atomic_write_bytes(out / "quality.png", figure(rows, grid))
    print(markdown(rows, header))
    return 0


if __name__ == "__main__":
    sys.exit(main())
