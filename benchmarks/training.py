"""Training speed: throughput of the sampled objective, cost of the exact one, time to target.

Every model is built from ``linvae.compare``'s :class:`CompareConfig` (its defaults,
changed by the same flags as ``python -m linvae.compare``): no setting is restated here.

``python -m benchmarks.training throughput [--device cpu] [--batch-sizes 1024,4096]``
    (a) examples/s of the sampled objective (the paper recipe's) for its ``LinearMRVAE``
    and for the plain ``LinearVAE`` of the same size, each through
    :func:`linvae.mrvae.train.train`, at d = 64 and d = 784 (k = 32), as a ratio measured
    in one run; and the wall time of one exact-objective step against the number of β
    per step: the paper recipe's model through the (d, h, h) tables
    (:func:`~linvae.mrvae.objectives.exact_loss_tables`) and through
    :func:`~linvae.mrvae.objectives.exact_loss`, and the linvae recipe's step
    (:class:`~linvae.mrvae.model.LatentMRVAE`, whitened encoder ``W P``).

``python -m benchmarks.training compile [--device cpu]``
    Per-step time of ``train`` eager against ``TrainConfig(compile="compile")``, and the
    wall time of the first steps, which hold the compilation.

``python -m benchmarks.training diagnose [any flag of python -m linvae.compare]``
    One MR-VAE trained as the config says; its excess at each β of the grid, its live
    latent units, and how much of the excess the dead ones explain.

``python -m benchmarks.training target --recipe paper [--baseline-steps N]
[--check-every 250] [--target 0.01] [any flag of python -m linvae.compare]``
    (b) wall time until the MR-VAE is within ``--target`` nats/example of the analytic
    optimum at every β of the config's grid, checked every ``--check-every`` steps with
    :func:`linvae.compare.evaluate.evaluate_model` (exact, float64; the checks are not
    counted in the time), beside the time the config's β-VAE baselines need to reach it at
    their own β. A run that reaches the target stops there; one that does not reports the
    best max excess it reached and its time. The linvae recipe is timed by budget instead
    (``python -m benchmarks.compare_quality``): its schedule depends on its budget and its
    encoder is written at the end, so a model checked mid-run is not what a budget trains.

Wall times depend on the machine and its load (this one: 2 shared cores); compare rows of
one run only. One torch thread (``--threads``), as the CLI.
"""

import argparse
import dataclasses
import math
import sys
import time

import numpy as np
import torch

from linvae._checks import resolve_device
from linvae.analytic import beta_grid, moments, rate_distortion, spectrum
from linvae.compare.cli import add_config_flags, config_from_args
from linvae.compare.comparison import load_data
from linvae.compare.config import CompareConfig
from linvae.compare.evaluate import evaluate_model, excess_loss
from linvae.compare.training import baseline_betas, fit, new_baseline, new_mrvae, train_config
from linvae.data import load
from linvae.mrvae.model import LatentMRVAE
from linvae.mrvae.objectives import exact_loss, exact_loss_tables
from linvae.mrvae.recipe import whitening_factor
from linvae.mrvae.threads import set_cpu_threads
from linvae.mrvae.train import TrainConfig, train

from ._runs import log
from ._timing import machine, median_seconds

#: The paper recipe's settings: the sampled objective and its model are the paper's.
PAPER = CompareConfig(recipe="paper")


def _mrvae(d, k):
    """The paper recipe's MR-VAE with latent size ``k`` (its training range is fixed)."""
    return new_mrvae(dataclasses.replace(PAPER, latent=k), d, grid=None)


def _vae(d, k):
    """The paper recipe's β-VAE: the MR-VAE's layers without gates."""
    return new_baseline(dataclasses.replace(PAPER, latent=k), d)


def _where(device):
    return machine() if device.type == "cpu" else torch.cuda.get_device_name(device)


# -- (a) throughput ----------------------------------------------------------------------


def throughput(d, k, batch_sizes, device, steps=40, repeats=3):
    """Examples/s of the sampled objective, MR-VAE and plain VAE, eager and compiled.

    The data are standard normal, (2 × max batch, d): throughput does not depend on them.
    Each figure is the median over ``repeats`` runs of ``steps`` steps (after one warm-up
    run, which for ``compile="compile"`` holds the compilation) of the wall time
    :func:`train` reports. Each column trains one model throughout (a fresh model could
    make torch.compile recompile inside a timed run).
    """
    X = np.random.default_rng(0).standard_normal((2 * max(batch_sizes), d))
    rows = []
    for batch_size in batch_sizes:
        rates = {}
        for name, model, beta, mode in (
            ("mrvae", _mrvae(d, k), None, "none"),
            ("mrvae_compiled", _mrvae(d, k), None, "compile"),
            ("vae", _vae(d, k), 1.0, "none"),
            ("vae_compiled", _vae(d, k), 1.0, "compile"),
        ):
            config = TrainConfig(
                steps=steps, batch_size=batch_size, objective="sampled", compile=mode
            )

            def run(model=model, beta=beta, config=config):
                return train(model, X, config, beta=beta, device=device).seconds

            run()  # warm-up (and compilation)
            seconds = float(np.median([run() for _ in range(repeats)]))
            rates[name] = steps * batch_size / seconds
        rows.append({"d": d, "k": k, "batch": batch_size, **rates})
    return rows


def exact_step_cost(d, k, betas_per_step, device, repeats=5):
    """Seconds of one exact-objective forward and backward pass, per number of β per step.

    Three forms: the paper recipe's model through the (d, h, h) tables and through
    :func:`exact_loss`, and the linvae recipe's step (:class:`LatentMRVAE`, encoder
    ``E₁ = W P`` with ``P`` the whitening factor, the gradient reaching ``W``).
    """
    rng = np.random.default_rng(0)
    A = rng.standard_normal((d, d))
    cov = torch.as_tensor(A @ A.T / d, device=device)
    mean = torch.zeros(d, dtype=torch.float64, device=device)
    paper = _mrvae(d, k).to(device)
    latent = LatentMRVAE(d, k, beta_range=(0.01, 10.0)).to(device)
    W = latent.encoder1.detach().clone().requires_grad_(True)
    P = whitening_factor(cov, 0.01)

    def timed(loss):
        def step():
            paper.zero_grad(set_to_none=True)
            latent.zero_grad(set_to_none=True)
            W.grad = None
            loss().backward()
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        return median_seconds(step, repeats=repeats)

    rows = []
    for count in betas_per_step:
        log_beta = torch.linspace(math.log(0.01), math.log(10.0), count, dtype=torch.float64)
        log_beta = log_beta.to(device)
        rows.append({
            "d": d,
            "betas": count,
            "paper_tables": timed(
                lambda b=log_beta: exact_loss_tables(paper, b, mean, cov).loss
            ),
            "paper": timed(lambda b=log_beta: exact_loss(paper, b, mean, cov).loss),
            "recipe": timed(
                lambda b=log_beta: exact_loss(latent, b, mean, cov, encoder1=W @ P).loss
            ),
        })  # fmt: skip
    return rows


def render_throughput(rows, cost, command, where):
    lines = [
        f"Device: {where}; one torch thread; `{command}`. Sampled objective (one noise draw "
        "and one β per example), float64, the MR-VAE of `linvae.compare --recipe paper` "
        "against its β-VAE (the same layers without gates); median of 3 "
        'runs of 40 steps through `train`; `compile`: `TrainConfig(compile="compile")` '
        "(torch.compile, inductor), compilation excluded.",
        "",
        "| d | k | batch | MR-VAE examples/s | plain VAE examples/s | MR-VAE / plain "
        "| MR-VAE, `compile` | plain VAE, `compile` | MR-VAE / plain, both compiled |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['d']} | {r['k']} | {r['batch']} | {r['mrvae']:,.0f} | {r['vae']:,.0f} "
            f"| {r['mrvae'] / r['vae']:.2f} | {r['mrvae_compiled']:,.0f} "
            f"| {r['vae_compiled']:,.0f} | {r['mrvae_compiled'] / r['vae_compiled']:.2f} |"
        )
    lines += [
        "",
        "Exact objective, ms of one forward and backward pass (k = 32), median of 5: the "
        "paper recipe's model (gates on the hidden units, h = k) through the (d, h, h) tables "
        "(`exact_loss_tables`) and through `exact_loss`, and the linvae recipe's step "
        "(`LatentMRVAE`, whitened encoder `W P`):",
        "",
        "| d | β per step | paper model, tables | paper model, `exact_loss` "
        "| tables / `exact_loss` | linvae recipe's step |",
        "|---|---|---|---|---|---|",
    ]
    for r in cost:
        lines.append(
            f"| {r['d']} | {r['betas']} | {1e3 * r['paper_tables']:.2f} "
            f"| {1e3 * r['paper']:.2f} | {r['paper_tables'] / r['paper']:.1f} "
            f"| {1e3 * r['recipe']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def run_throughput(device, batch_sizes, quick=False):
    """(rows, cost) of the throughput table: d = 64 and 784 (d = 64 only with ``quick``)."""
    sizes = (64,) if quick else (64, 784)
    rows = [row for d in sizes for row in throughput(d, 32, batch_sizes, device)]
    cost = [row for d in sizes for row in exact_step_cost(d, 32, (1, 16, 64), device)]
    return rows, cost


def compile_cost(device, steps=(200, 400, 10)):
    """Per-step time of :func:`train`, eager against ``compile="compile"``, and compile time.

    Three cases: digits with the exact objective (32 β per step), digits sampled (batch
    128), standard normal d = 784 sampled (batch 4096). For each mode a model trains 5 steps
    (the compilation, when compiling: its wall time is reported) and then the timed run.
    """
    digits, _ = load("digits")
    wide = np.random.default_rng(0).standard_normal((8192, 784))
    cases = (
        ("d = 64, exact, 32 β per step", digits, "exact", 32, steps[0]),
        ("d = 64, sampled, batch 128", digits, "sampled", 128, steps[1]),
        ("d = 784, sampled, batch 4096", wide, "sampled", 4096, steps[2]),
    )
    rows = []
    for name, X, objective, batch_size, count in cases:
        row = {"case": name}
        for mode in ("none", "compile"):
            model = _mrvae(X.shape[1], 32)
            first = TrainConfig(steps=5, batch_size=batch_size, objective=objective, compile=mode)
            start = time.perf_counter()
            train(model, X, first, device=device)
            row[f"first_{mode}"] = time.perf_counter() - start
            timed = TrainConfig(
                steps=count, batch_size=batch_size, objective=objective, compile=mode
            )
            row[mode] = train(model, X, timed, device=device).seconds / count
        rows.append(row)
    return rows


def render_compile(rows, command, where):
    lines = [
        f"Device: {where}; one torch thread; `{command}`.",
        "",
        "| case | eager ms/step | `compile` ms/step | speed-up | first 5 steps, eager "
        "| first 5 steps with compilation |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {1e3 * r['none']:.2f} | {1e3 * r['compile']:.2f} "
            f"| {r['none'] / r['compile']:.2f} | {r['first_none']:.1f} s "
            f"| {r['first_compile']:.1f} s |"
        )
    return "\n".join(lines) + "\n"


# -- (b) time to target --------------------------------------------------------------------


class _Stop(KeyboardInterrupt):
    """Raised by the check to end a run that reached the target (train stops cleanly)."""


def time_to_target(model, X, config, stats, betas, optimum, target, check_every, beta, device):
    """Train ``model``, checking its max exact excess over ``betas`` every ``check_every`` steps.

    Returns
    -------
    dict
        ``reached`` (bool), ``seconds`` (training wall time until the first check within
        ``target``, or of the whole budget; the checks' own time excluded), ``steps``,
        ``best`` (the smallest max excess seen), ``best_seconds`` and ``best_beta`` (where
        that max lies), ``final`` (the max excess at the end).
    """
    state = {
        "checks": 0.0,
        "best": math.inf,
        "best_seconds": math.nan,
        "best_beta": math.nan,
        "reached": None,
    }

    def check(step, steps, loss, elapsed):
        if step % check_every and step != steps:
            return
        start = time.perf_counter()
        if device.type == "cuda":  # the queued steps are training time
            torch.cuda.synchronize(device)
        trained = elapsed + (time.perf_counter() - start) - state["checks"]
        start = time.perf_counter()
        loss = evaluate_model(model, stats.mean, stats.cov, betas)["loss"]
        excess = excess_loss(loss, optimum)
        worst = float(excess.max())
        state["checks"] += time.perf_counter() - start
        if worst < state["best"]:
            state["best"], state["best_seconds"] = worst, trained
            state["best_beta"] = float(betas[int(np.argmax(excess))])
        if worst <= target:
            state["reached"] = (trained, step)
            raise _Stop

    result = train(model, X, config, beta=beta, device=device, progress=check)  # paper recipe
    if state["reached"] is None and result.interrupted:
        raise KeyboardInterrupt  # a real Ctrl-C
    loss = evaluate_model(model, stats.mean, stats.cov, betas)["loss"]
    final = float(excess_loss(loss, optimum).max())
    reached = state["reached"] is not None
    seconds, steps = (
        state["reached"] if reached else (result.seconds - state["checks"], result.steps)
    )
    return {
        "reached": reached,
        "seconds": seconds,
        "steps": steps,
        "best": state["best"],
        "best_seconds": state["best_seconds"],
        "best_beta": state["best_beta"],
        "final": final,
    }


def _problem(config):
    """(X, info, moments, eigenvalues, grid, optimum on the grid) of a config."""
    X, info = load_data(config)
    stats = moments(X)
    eigvals = spectrum(stats.cov).eigvals
    grid, _ = beta_grid(config.betas, eigvals, config.latent)
    return X, info, stats, eigvals, grid, rate_distortion(eigvals, config.latent, grid).loss


def run_target(config, options, device, log):
    X, info, stats, eigvals, grid, optimum = _problem(config)
    k = config.latent
    model = new_mrvae(config, X.shape[1], grid)
    mr = time_to_target(
        model, X, train_config(config, info.n, grid), stats, grid, optimum, options.target,
        options.check_every, None, device,
    )  # fmt: skip
    log(f"MR-VAE: {mr}")
    baselines = []
    if options.baseline_steps:
        base_config = train_config(
            dataclasses.replace(config, steps=options.baseline_steps), info.n, grid
        )
        for beta in baseline_betas(config, grid):
            opt = [exact_optimum(eigvals, k, beta)]
            model = new_baseline(config, X.shape[1])
            row = time_to_target(
                model, X, base_config, stats, [beta], opt, options.target, options.check_every,
                float(beta), device,
            )  # fmt: skip
            row["beta"] = float(beta)
            baselines.append(row)
            log(f"  β-VAE β={beta:.3g}: {row}")
    return info, grid, mr, baselines


def exact_optimum(eigvals, k, beta):
    return float(rate_distortion(eigvals, k, [beta]).loss[0])


def render_target(config, options, info, grid, mr, baselines, where):
    def cell(row):
        if row["reached"]:
            return f"reached in **{row['seconds']:.1f} s** ({row['steps']} steps)"
        return (
            f"not reached in {row['seconds']:.1f} s ({row['steps']} steps); best max excess "
            f"{row['best']:.4f} (at β = {row['best_beta']:.3g}) at {row['best_seconds']:.1f} s"
        )

    lines = [
        f"{info.name} (n = {info.n}, d = {info.d}); config {config.resolved().to_dict()}; β-VAEs "
        f"{options.baseline_steps} steps; checked every {options.check_every} steps; {where}.",
        "",
        f"- one MR-VAE, max excess over the {grid.size} β ≤ {options.target}: {cell(mr)}",
    ]
    if baselines:
        total = sum(r["seconds"] for r in baselines)
        missed = [f"{r['beta']:.3g}" for r in baselines if not r["reached"]]
        worst = max(r["final"] for r in baselines)
        lines.append(
            f"- {len(baselines)} β-VAEs, each at its own β: {total:.1f} s in all; "
            + (f"not reached at β = {', '.join(missed)}; " if missed else "all reached; ")
            + f"largest final excess {worst:.4f}"
        )
    return "\n".join(lines) + "\n"


def diagnose(config, device):
    """Train one MR-VAE for the budget, then its excess along the grid and its live units.

    A latent unit is alive at β when D(β) has a singular value above 0.01 for it; the
    optimum restricted to that many units, against the k-unit optimum, is the part of the
    excess the dead units explain.
    """
    X, info, stats, eigvals, grid, optimum = _problem(config)
    k = config.latent
    model = new_mrvae(config, X.shape[1], grid)
    result = fit(model, X, config, grid)
    excess = excess_loss(evaluate_model(model, stats.mean, stats.cov, grid)["loss"], optimum)
    lines = [
        f"{info.name} (d = {info.d}), config {config.resolved().to_dict()}: {result.steps} steps in "
        f"{result.seconds:.1f} s; max excess {excess.max():.4f} at β = "
        f"{grid[int(np.argmax(excess))]:.3g}",
        "",
        "| β | excess | live units | units active at the optimum "
        "| optimum with the live units only, above the k-unit optimum |",
        "|---|---|---|---|---|",
    ]
    for beta, value in zip(grid, excess, strict=True):
        singular = np.linalg.svd(model.params_at(beta).D, compute_uv=False)
        alive = int(np.sum(singular > 0.01))
        active = int(np.sum(eigvals[:k] > beta))
        gap = exact_optimum(eigvals, max(alive, 1), beta) - exact_optimum(eigvals, k, beta)
        lines.append(f"| {beta:.3g} | {value:.4f} | {alive} | {active} | {gap:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.training")
    p.add_argument("what", choices=("throughput", "compile", "target", "diagnose"))
    p.add_argument("--batch-sizes", default="1024,4096", help="throughput: examples per step")
    p.add_argument("--baseline-steps", type=int, default=None, help="target: [the config's]")
    p.add_argument("--check-every", type=int, default=250)
    p.add_argument("--target", type=float, default=0.01)
    add_config_flags(p)
    options = p.parse_args(argv)
    config = config_from_args(options)
    if options.what == "target" and config.recipe != "paper":
        p.error(
            "target checks the MR-VAE during its training, which suits the paper recipe "
            "only (add --recipe paper); the linvae recipe's schedule depends on its budget "
            "and its encoder is written at the end: time it by budget with "
            "python -m benchmarks.compare_quality"
        )
    if options.baseline_steps is None:
        options.baseline_steps = config.resolved().steps
    set_cpu_threads(config.threads)
    device = resolve_device(config.device)
    where = _where(device)
    if options.what == "throughput":
        sizes = [int(v) for v in options.batch_sizes.split(",")]
        rows, cost = run_throughput(device, sizes)
        command = f"python -m benchmarks.training throughput --device {device}"
        print(render_throughput(rows, cost, command, where))
        return 0
    if options.what == "diagnose":
        print(diagnose(config, device))
        return 0
    if options.what == "compile":
        command = f"python -m benchmarks.training compile --device {device}"
        print(render_compile(compile_cost(device), command, where))
        return 0
    info, grid, mr, baselines = run_target(config, options, device, log)
    print(render_target(config, options, info, grid, mr, baselines, where))
    return 0


if __name__ == "__main__":
    sys.exit(main())
