"""``python -m linvae.scoreboard``: every one-model rate-distortion method, scored exactly.

Trains each method of :mod:`linvae.methods` (and any ``--plugin``) with each objective at
each budget on one CPU thread, scores it against the analytic optimum, fits each family's
floor; prints the Markdown leaderboard, writes ``--json``, ``--markdown`` and ``--plot``
(atomically). Ctrl-C or SIGTERM stops it: what finished is written, marked partial, exit
130.
"""

from __future__ import annotations

import importlib
import sys
import time

from .._cli import (
    EXIT_INTERRUPTED,
    UsageError,
    add_data_flags,
    argument_type,
    command_parser,
    count,
    positive_int,
    program,
    run_command,
    user_input,
)
from .._io import check_output, figure_format, git_revision, versions, write_json

PROG = program("scoreboard")

DEFAULT_BUDGETS = (300, 1000, 3000)
DEFAULT_OBJECTIVES = ("exact", "sampled")


def _steps_list(text):
    values = tuple(int(part) for part in text.split(","))
    return values if values else None


budgets = argument_type(_steps_list, lambda v: all(x >= 1 for x in v), "STEPS[,STEPS...] >= 1")


def build_parser():
    from ..analytic import DEFAULT_GRID, DEFAULT_LATENT

    parser = command_parser("scoreboard")
    add_data_flags(parser)
    parser.add_argument("--latent", type=positive_int, default=DEFAULT_LATENT,
                        help=f"latent size k (default: {DEFAULT_LATENT})")  # fmt: skip
    parser.add_argument(
        "--betas", default=DEFAULT_GRID,
        help=f"the evaluation grid: full, paper, 'LO:HI:N' or a comma list (default: {DEFAULT_GRID})",
    )  # fmt: skip
    parser.add_argument(
        "--methods", default="all",
        help="comma list of registered methods, or all (default: all)",
    )  # fmt: skip
    parser.add_argument(
        "--objectives", default=",".join(DEFAULT_OBJECTIVES),
        help="comma list of exact, sampled (default: exact,sampled)",
    )  # fmt: skip
    parser.add_argument(
        "--budgets", type=budgets, default=DEFAULT_BUDGETS,
        help="steps of each run, a comma list; each run from scratch "
        f"(default: {','.join(map(str, DEFAULT_BUDGETS))})",
    )  # fmt: skip
    parser.add_argument(
        "--floor-iterations", type=count, default=300,
        help="L-BFGS iterations of each family's floor fit; 0: no floors (default: 300)",
    )  # fmt: skip
    parser.add_argument(
        "--bank-check-steps", type=count, default=200,
        help="steps of the bank's batched-against-sequential timing; 0: none (default: 200)",
    )  # fmt: skip
    parser.add_argument(
        "--plugin", action="append", default=[], metavar="MODULE:FUNCTION",
        help="a user's method: FUNCTION(X, beta_range, budget) of an importable MODULE "
        "(repeatable; docs/scoreboard.md)",
    )  # fmt: skip
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch CPU threads (default: 1)")  # fmt: skip
    parser.add_argument("--json", metavar="PATH", help="write the whole record as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="write the leaderboard as Markdown")
    parser.add_argument("--plot", metavar="PATH", help="write score against time (PNG/SVG)")
    parser.add_argument("--quiet", action="store_true", help="print no leaderboard")
    return parser


def _methods(args):
    from ..methods import REGISTRY, custom

    names = list(REGISTRY) if args.methods == "all" else args.methods.split(",")
    unknown = [name for name in names if name not in REGISTRY]
    if unknown:
        raise UsageError(f"--methods: unknown {unknown}; known are {', '.join(REGISTRY)}")
    chosen = [REGISTRY[name] for name in names]
    for spec in args.plugin:
        module, _, function = spec.partition(":")
        if not module or not function:
            raise UsageError(f"--plugin: expected MODULE:FUNCTION, got {spec!r}")
        try:
            train = getattr(importlib.import_module(module), function)
        except (ImportError, AttributeError) as error:
            raise UsageError(f"--plugin {spec}: {error}") from None
        chosen.append(user_input(f"--plugin {spec}:", custom, function, train))
    return chosen


def _objectives(text):
    objectives = text.split(",")
    bad = [o for o in objectives if o not in DEFAULT_OBJECTIVES]
    if bad or not objectives:
        raise UsageError(f"--objectives: expected a comma list of exact, sampled, got {text!r}")
    return objectives


def run(args) -> int:
    """The command: run the scoreboard, print the leaderboard, write the files asked for."""
    import torch

    from .._signals import interrupts_held, terminate_as_interrupt
    from ..analytic import beta_grid, moments, spectrum
    from ..data import load
    from ..mrvae.recipe import training_range
    from .board import run_scoreboard
    from .report import render_figure, render_markdown

    for flag, path in (("--json", args.json), ("--markdown", args.markdown), ("--plot", args.plot)):
        if path is not None:
            user_input(flag, check_output, path)
    if args.plot is not None:
        user_input("--plot", figure_format, args.plot)
    methods = _methods(args)
    objectives = _objectives(args.objectives)
    started = time.perf_counter()
    X, info = user_input(
        f"--dataset {args.dataset}:", lambda: load(args.dataset, n=args.n, seed=args.seed)
    )
    stats = user_input("--dataset:", moments, X)
    grid, note = user_input("--betas", beta_grid, args.betas, spectrum(stats.cov).eigvals,
                            args.latent)  # fmt: skip
    beta_range = training_range(grid)
    torch.set_num_threads(args.threads)

    def progress(text):
        if not args.quiet:
            print(f"[{time.perf_counter() - started:7.1f} s] {text}", file=sys.stderr, flush=True)

    with terminate_as_interrupt():
        board = run_scoreboard(
            X, grid, beta_range, latent=args.latent, methods=methods, objectives=objectives,
            budgets=args.budgets, floor_iterations=args.floor_iterations,
            bank_check_steps=args.bank_check_steps, seed=args.seed, progress=progress,
        )  # fmt: skip
    record = {
        "linvae_version": versions()["linvae"],
        "versions": versions(torch=True),
        "git_revision": git_revision(),
        "dataset": {**info.to_dict(), "n": int(X.shape[0]), "d": int(X.shape[1])},
        "latent": args.latent,
        "betas": grid.tolist(),
        "grid": note,
        "beta_range": list(beta_range),
        "budgets": list(args.budgets),
        "objectives": objectives,
        "methods": [{"name": m.name, "description": m.description} for m in methods],
        "floor_iterations": args.floor_iterations,
        **board,
        "seconds": time.perf_counter() - started,
    }
    markdown = render_markdown(record)
    with interrupts_held("writing the scoreboard; it stops when the files are written"):
        if not args.quiet:
            sys.stdout.write(markdown)
        if args.json:
            user_input("--json", write_json, args.json, record)
        if args.markdown:
            from .._io import atomic_write_text

            user_input("--markdown", atomic_write_text, args.markdown, markdown)
        if args.plot:
            user_input("--plot", render_figure, record, args.plot)
    return EXIT_INTERRUPTED if record["partial"] else 0


def main(argv=None) -> int:
    """Entry point of ``python -m linvae.scoreboard``; returns the exit status."""
    return run_command(PROG, build_parser(), run, argv)
