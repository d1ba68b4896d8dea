"""``python -m benchmarks [--quick]``: run every benchmark and rewrite docs/benchmarks.md.

Each section is the table its benchmark prints, with the command that produced it and the
machine it ran on; the file is written atomically. ``--quick`` runs smaller sizes (for a
smoke run, not for the record). On a machine with CUDA the GPU rows are added.
"""

import argparse
import sys
from pathlib import Path

from linvae._io import atomic_write_text
from linvae.mrvae.threads import cpu_threads

from . import analytic, moments, training
from ._timing import machine

HEADER = """# Benchmarks

Written by `python -m benchmarks` (do not edit by hand). Timings are medians of repeated
runs; a ratio compares two rows measured in the same run on the same machine. The test
suite never times anything: targets live here.

GPU figures are owed until this command runs on a machine with CUDA, which adds the GPU
rows (moments on the device, training throughput on the device). The quality of training
(excess over the optimum, time to target, what each part of the recipe buys) is in
[results.md](results.md), with its commands.
"""


def sections(quick):
    """(title, markdown table) of each benchmark, measured now."""
    size = {"d": 256, "n_betas": 10_000, "n": 10_000} if quick else {}
    flags = " --d 256 --n 10000" if quick else ""
    rows = analytic.run(**size)
    yield (
        "Closed forms: the curve and the moments",
        analytic.render(rows, f"python -m benchmarks.analytic{flags}"),
    )
    n = 50_000 if quick else 250_000
    rows, peak = moments.run(n, 784, min(n, 100_000), "cpu", 65_536)
    yield (
        "Moments at scale (CPU)",
        moments.render(rows, peak, f"python -m benchmarks.moments --n {n}", "cpu"),
    )
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    if cuda:
        rows, peak = moments.run(n, 784, min(n, 100_000), "cuda", 65_536)
        yield (
            "Moments at scale (GPU)",
            moments.render(
                rows, peak, f"python -m benchmarks.moments --n {n} --device cuda", "cuda"
            ),
        )
    yield from training_sections(quick, cuda)
    yield from step_ops_sections(quick, cuda)
    yield "The proofs", proofs_section()


def proofs_section():
    """Wall time of every symbolic claim, as ``python -m linvae.proofs`` runs them."""
    import time

    from linvae.symbolic import run_claims

    started = time.perf_counter()
    result = run_claims()
    seconds = time.perf_counter() - started
    return (
        f"`python -m linvae.proofs` ran its {len(result.claims)} claims in {seconds:.0f} s on "
        f"{machine()} ({len(result.errors)} checks raised).\n"
    )


def training_sections(quick, cuda):
    """Training speed: sampled throughput against the plain VAE, exact step cost (one thread)."""
    import torch

    with cpu_threads(1):  # as the CLI: faster for these small products on the CPU
        for device in ("cpu", "cuda") if cuda else ("cpu",):
            rows, cost = training.run_throughput(torch.device(device), [1024, 4096], quick)
            command = f"python -m benchmarks.training throughput --device {device}"
            where = training._where(torch.device(device))
            yield (
                f"Training speed ({device.upper() if device == 'cpu' else 'GPU'})",
                training.render_throughput(rows, cost, command, where),
            )


def step_ops_sections(quick, cuda):
    """Aten operations per step of linvae's recipe and its Adam's wall time (one thread)."""

    from . import step_ops

    sizes = [64] if quick else [64, 784]
    steps = 300 if quick else 3000
    with cpu_threads(1):
        for device, modes in [("cpu", ["autograd", "fused", "compiled"])] + (
            [("cuda", ["autograd", "fused", "graph"])] if cuda else []
        ):
            rows = step_ops.run(sizes, modes, 32, steps, 100, device)
            command = (
                f"python -m benchmarks.step_ops --sizes {','.join(map(str, sizes))} "
                f"--steps {steps} --modes {','.join(modes)} --device {device}"
            )
            yield (
                f"Operations per training step ({device.upper() if device == 'cpu' else 'GPU'})",
                step_ops.render(rows, command, steps, device),
            )


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--out", default=str(Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md")
    )
    args = parser.parse_args(argv)
    parts = [HEADER]
    for title, table in sections(args.quick):
        print(f"## {title}\n\n{table}", flush=True)
        parts.append(f"\n## {title}\n\n{table}")
    atomic_write_text(args.out, "".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
