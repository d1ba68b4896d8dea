"""Training speed: throughput of the sampled objective, cost of the exact one, time to target.

``python -m benchmarks.training throughput [--device cpu] [--batch-sizes 1024,4096]``
    (a) examples/s of the sampled objective for the gated ``LinearMRVAE`` (the CLI's gates:
    sqrt / hinge / sqrt, hidden 2k) and for the plain ``LinearVAE`` of the same size, each
    through :func:`linvae.mrvae.train.train`, at d = 64 and d = 784 (k = 32), as a ratio
    measured in one run; and the wall time of one exact-objective step against the number
    of β per step (the cost of :func:`linvae.mrvae.objectives.exact_loss`).

``python -m benchmarks.training compile [--device cpu]``
    Per-step time of ``train`` eager against ``TrainConfig(compile="compile")``, and the
    wall time of the first steps, which hold the compilation.

``python -m benchmarks.training diagnose`` (the options of ``target``)
    One MR-VAE trained for ``--steps``; its excess at each β of the grid, its live latent
    units, and how much of the excess the dead ones explain.

``python -m benchmarks.training target [--dataset digits|patches] [--objective sampled|exact]
[--steps 10000] [--baseline-steps 10000] [--check-every 250] [--train-range 0.01:10]
[--compile none|compile|graph]``
    (b) wall time until the MR-VAE is within ``--target`` (0.01) nats/example of the analytic
    optimum at every β of the grid 0.01:10:31, checked every ``--check-every`` steps with
    :func:`linvae.compare.evaluate.evaluate_model` (exact, float64; the checks are not
    counted in the time), beside the time the 10 β-VAE baselines (log-spaced over the grid)
    need to reach it at their own β. A run that reaches the target stops there; one that
    does not reports the best max excess it reached and its time.

Wall times depend on the machine and its load (this one: 2 shared cores); compare rows of
one run only. One torch thread (``--threads``), as the CLI.
"""

import argparse
import math
import sys
import time

import numpy as np
import torch

from linvae.analytic import moments, rate_distortion, spectrum
from linvae.compare.evaluate import evaluate_model, excess_loss
from linvae.data import load
from linvae.mrvae.model import LinearMRVAE, LinearVAE
from linvae.mrvae.objectives import exact_loss
from linvae.mrvae.train import TrainConfig, resolve_device, train

from ._timing import machine, median_seconds

GATES = ("sqrt", "sqrt", "hinge")  # encoder, decoder, covariance: the CLI's defaults
GRID = np.geomspace(0.01, 10.0, 31)


def _mrvae(d, k, hidden, beta_range=(0.01, 10.0)):
    return LinearMRVAE(d, k, *GATES, hidden=hidden, beta_range=beta_range)


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
            ("mrvae", _mrvae(d, k, 2 * k), None, "none"),
            ("mrvae_compiled", _mrvae(d, k, 2 * k), None, "compile"),
            ("vae", LinearVAE(d, k, hidden=2 * k), 1.0, "none"),
            ("vae_compiled", LinearVAE(d, k, hidden=2 * k), 1.0, "compile"),
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
    """Seconds of one exact-objective forward and backward pass, per number of β per step."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((d, d))
    cov = torch.as_tensor(A @ A.T / d, device=device)
    mean = torch.zeros(d, dtype=torch.float64, device=device)
    model = _mrvae(d, k, 2 * k).to(device)
    rows = []
    for count in betas_per_step:
        log_beta = torch.linspace(math.log(0.01), math.log(10.0), count, dtype=torch.float64)
        log_beta = log_beta.to(device)

        def step(log_beta=log_beta):
            model.zero_grad(set_to_none=True)
            exact_loss(model, log_beta, mean, cov).loss.backward()
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        rows.append({"d": d, "betas": count, "seconds": median_seconds(step, repeats=repeats)})
    return rows


def render_throughput(rows, cost, command, where):
    lines = [
        f"Device: {where}; one torch thread; `{command}`. Sampled objective (one noise draw "
        "and one β per example), float64, gates sqrt / hinge / sqrt, hidden 2k; median of 3 "
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
        "Exact objective, one forward and backward pass (k = 32, hidden 64), median of 5:",
        "",
        "| d | β per step | ms per step | ms per β |",
        "|---|---|---|---|",
    ]
    for r in cost:
        ms = 1e3 * r["seconds"]
        lines.append(f"| {r['d']} | {r['betas']} | {ms:.2f} | {ms / r['betas']:.3f} |")
    return "\n".join(lines) + "\n"


def run_throughput(device, batch_sizes, quick=False):
    """(rows, cost) of the throughput table: d = 64 and 784 (d = 64 only with ``quick``)."""
    sizes = (64,) if quick else (64, 784)
    rows = [row for d in sizes for row in throughput(d, 32, batch_sizes, device)]
    cost = [row for d in sizes for row in exact_step_cost(d, 32, (1, 8, 32, 128), device)]
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
            model = _mrvae(X.shape[1], 32, 64)
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

    result = train(model, X, config, beta=beta, device=device, progress=check)
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


def run_target(options, device, log):
    X, info = load(options.dataset, **({"n": options.n} if options.n else {}))
    k, hidden = options.latent, 2 * options.latent
    stats = moments(X)
    eigvals = spectrum(stats.cov).eigvals
    optimum = rate_distortion(eigvals, k, GRID).loss
    beta_range = tuple(float(v) for v in options.train_range.split(":"))
    common = {
        "objective": options.objective,
        "lr": options.lr,
        "seed": options.seed,
        "compile": options.compile,
    }
    batch = options.batch_size or (32 if options.objective == "exact" else 128)
    config = TrainConfig(steps=options.steps, batch_size=batch, beta_range=beta_range, **common)
    model = _mrvae(X.shape[1], k, hidden, beta_range)
    mr = time_to_target(
        model, X, config, stats, GRID, optimum, options.target, options.check_every, None, device
    )
    log(f"MR-VAE {options.objective} range {options.train_range}: {mr}")
    baselines = []
    if options.baseline_steps:
        betas = np.geomspace(GRID[0], GRID[-1], 10)
        base_config = TrainConfig(steps=options.baseline_steps, batch_size=batch, **common)
        for beta in betas:
            opt = [exact_optimum(eigvals, k, beta)]
            row = time_to_target(
                LinearVAE(X.shape[1], k, hidden=hidden, seed=options.seed), X, base_config,
                stats, [beta], opt, options.target, options.check_every, float(beta), device,
            )  # fmt: skip
            row["beta"] = float(beta)
            baselines.append(row)
            log(f"  β-VAE β={beta:.3g}: {row}")
    return info, mr, baselines


def exact_optimum(eigvals, k, beta):
    return float(rate_distortion(eigvals, k, [beta]).loss[0])


def render_target(options, info, mr, baselines, where):
    def cell(row):
        if row["reached"]:
            return f"reached in **{row['seconds']:.1f} s** ({row['steps']} steps)"
        return (
            f"not reached in {row['seconds']:.1f} s ({row['steps']} steps); best max excess "
            f"{row['best']:.4f} (at β = {row['best_beta']:.3g}) at {row['best_seconds']:.1f} s"
        )

    lines = [
        f"{options.dataset} (n = {info.n}, d = {info.d}), k = {options.latent}, hidden "
        f"{2 * options.latent}, objective {options.objective}, lr {options.lr}, MR-VAE range "
        f"{options.train_range}, budget {options.steps} steps (β-VAEs {options.baseline_steps}), "
        f"checked every {options.check_every} steps, compile {options.compile}; {where}.",
        "",
        f"- one MR-VAE, max excess over the 31 β ≤ {options.target}: {cell(mr)}",
    ]
    if baselines:
        total = sum(r["seconds"] for r in baselines)
        missed = [f"{r['beta']:.3g}" for r in baselines if not r["reached"]]
        worst = max(r["final"] for r in baselines)
        lines.append(
            f"- 10 β-VAEs, each at its own β: {total:.1f} s in all; "
            + (f"not reached at β = {', '.join(missed)}; " if missed else "all reached; ")
            + f"largest final excess {worst:.4f}"
        )
    return "\n".join(lines) + "\n"


def diagnose(options, device):
    """Train one MR-VAE for the budget, then its excess along the grid and its live units.

    A latent unit is alive at β when D(β) has a singular value above 0.01 for it; the
    optimum restricted to that many units, against the k-unit optimum, is the part of the
    excess the dead units explain (docs/results.md, "What limits the MR-VAE").
    """
    X, info = load(options.dataset, **({"n": options.n} if options.n else {}))
    k = options.latent
    stats = moments(X)
    eigvals = spectrum(stats.cov).eigvals
    beta_range = tuple(float(v) for v in options.train_range.split(":"))
    config = TrainConfig(
        steps=options.steps,
        batch_size=options.batch_size or (32 if options.objective == "exact" else 128),
        lr=options.lr,
        objective=options.objective,
        beta_range=beta_range,
        seed=options.seed,
        compile=options.compile,
    )
    model = _mrvae(X.shape[1], k, 2 * k, beta_range)
    result = train(model, X, config, device=device)
    loss = evaluate_model(model, stats.mean, stats.cov, GRID)["loss"]
    excess = excess_loss(loss, rate_distortion(eigvals, k, GRID).loss)
    lines = [
        f"{options.dataset} (d = {info.d}), {options.objective}, range {options.train_range}, "
        f"{options.steps} steps in {result.seconds:.1f} s; max excess {excess.max():.4f} "
        f"at β = {GRID[int(np.argmax(excess))]:.3g}",
        "",
        "| β | excess | live units | units active at the optimum "
        "| optimum with the live units only, above the k-unit optimum |",
        "|---|---|---|---|---|",
    ]
    for beta, value in zip(GRID, excess, strict=True):
        singular = np.linalg.svd(model.params_at(beta).D, compute_uv=False)
        alive = int(np.sum(singular > 0.01))
        active = int(np.sum(eigvals[:k] > beta))
        gap = exact_optimum(eigvals, alive, beta) - exact_optimum(eigvals, k, beta)
        lines.append(f"| {beta:.3g} | {value:.4f} | {alive} | {active} | {gap:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.training")
    p.add_argument("what", choices=("throughput", "compile", "target", "diagnose"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-sizes", default="1024,4096")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--n", type=int, default=None, help="rows of the data set (patches: 60000)")
    p.add_argument("--latent", type=int, default=32)
    p.add_argument("--objective", default="sampled")
    p.add_argument("--steps", type=int, default=10000)
    p.add_argument("--baseline-steps", type=int, default=10000)
    p.add_argument("--batch-size", type=int, default=None, help="[128 sampled, 32 β exact]")
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--train-range", default="0.01:10")
    p.add_argument("--check-every", type=int, default=250)
    p.add_argument("--target", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compile", default="none", help="TrainConfig.compile: none|compile|graph")
    options = p.parse_args(argv)
    torch.set_num_threads(options.threads)
    device = resolve_device(options.device)
    where = _where(device)
    if options.what == "throughput":
        sizes = [int(v) for v in options.batch_sizes.split(",")]
        rows, cost = run_throughput(device, sizes)
        command = f"python -m benchmarks.training throughput --device {options.device}"
        print(render_throughput(rows, cost, command, where))
        return 0
    if options.what == "diagnose":
        print(diagnose(options, device))
        return 0
    if options.what == "compile":
        command = f"python -m benchmarks.training compile --device {options.device}"
        print(render_compile(compile_cost(device), command, where))
        return 0
    info, mr, baselines = run_target(
        options, device, lambda line: print(line, file=sys.stderr, flush=True)
    )
    print(render_target(options, info, mr, baselines, where))
    return 0


if __name__ == "__main__":
    sys.exit(main())
