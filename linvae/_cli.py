"""The one layout and error boundary of linvae's commands.

Each command is a module ``linvae/<name>/cli.py`` with ``PROG``, ``build_parser()`` and
``run(args) -> int``; its ``main(argv)`` is :func:`run_command`, and ``python -m
linvae.<name>`` and ``linvae <name>`` (the console script, :func:`dispatch`) both call it.
A user's mistake becomes :class:`UsageError`: one line on stderr and exit status 2, never
a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from collections.abc import Callable, Sequence

#: Exit statuses shared by every command (docs/architecture.md lists them).
EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and reports a failure (a proof check that raised)
EXIT_USAGE = 2  # a bad flag, data set, file or output path; nothing was done
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM: what finished was written, marked partial

#: The commands: name → (module with ``main(argv)``, what the command does).
COMMANDS = {
    "analytic": (
        "linvae.analytic.cli",
        "Rate and distortion of the optimal linear β-VAE (closed form, float64) on a grid of "
        "β, from the data's covariance alone.",
    ),
    "compare": (
        "linvae.compare.cli",
        "Train one linear MR-VAE and a set of β-VAEs, evaluate their exact rate and "
        "distortion on a grid of β, and report them against the analytic optimum.",
    ),
    "audit": (
        "linvae.audit.cli",
        "Audit a trained linear-Gaussian VAE against the analytic optimum: its excess loss "
        "split into encoder, bias and decoder parts, in nats per example.",
    ),
    "proofs": (
        "linvae.proofs.cli",
        "Check every claim of appendix A (linear VAE, Theorem 1) and print verdicts.",
    ),
}


class UsageError(Exception):
    """A bad flag, data set, file or output path: one line on stderr, exit status 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one :class:`UsageError` line, not the usage text."""

    def error(self, message):
        raise UsageError(message)


def program(name: str) -> str:
    """How the command ``name`` is called: ``python -m linvae.<name>``."""
    return f"python -m linvae.{name}"


def command_parser(name: str) -> Parser:
    """The parser of the command ``name``, with its program name and description."""
    return Parser(prog=program(name), description=COMMANDS[name][1])


def argument_type(convert: Callable, accept: Callable, expected: str) -> Callable:
    """An argparse ``type``: ``convert(text)`` when ``accept`` takes it, else one clear line."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


positive_int = argument_type(int, lambda value: value >= 1, "a positive integer")
count = argument_type(int, lambda value: value >= 0, "an integer >= 0")
positive_float = argument_type(
    float, lambda value: math.isfinite(value) and value > 0, "a positive number"
)


def _pair(text):
    lo, _, hi = text.partition(":")
    return float(lo), float(hi)


beta_range = argument_type(_pair, lambda pair: 0 < pair[0] < pair[1] < math.inf, "LO:HI")


def add_data_flags(parser, *, dataset_default="digits", dataset_help=None) -> None:
    """``--dataset``, ``--n`` and ``--seed``: which data :func:`linvae.data.load` reads."""
    parser.add_argument(
        "--dataset",
        default=dataset_default,
        help=dataset_help
        or f"digits, patches, gaussian, or a .npy/.npz/IDX file (default: {dataset_default})",
    )
    parser.add_argument(
        "--n", type=positive_int, default=None, help="number of examples (a seeded subset)"
    )
    parser.add_argument("--seed", type=count, default=0, help="seed of the data set (default: 0)")


def user_input(what: str, function: Callable, *arguments, **keywords):
    """``function(*arguments, **keywords)``, where a TypeError, ValueError or OSError is the
    user's input at fault: it becomes a :class:`UsageError` that starts with ``what``."""
    try:
        return function(*arguments, **keywords)
    except (TypeError, ValueError, MemoryError) as error:
        raise UsageError(f"{what} {error}") from None
    except OSError as error:
        where = f": {error.filename}" if error.filename else ""
        raise UsageError(f"{what} {error.strerror or error}{where}") from None


def run_command(prog: str, parser: argparse.ArgumentParser, run: Callable, argv) -> int:
    """Parse ``argv`` and call ``run(args)``; a :class:`UsageError` becomes one line, exit 2.

    ``run`` returns the exit status (None counts as 0); ``--help`` returns 0 after printing.
    """
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help (usage errors raise UsageError instead)
        return EXIT_OK if done.code is None else int(done.code)
    except UsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        status = run(args)
    except UsageError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK if status is None else int(status)


def dispatch(argv: Sequence[str] | None = None) -> int:
    """``linvae <command> [flags]``: the console script; ``linvae --help`` lists the commands."""
    argv = list(sys.argv[1:] if argv is None else argv)
    names = ", ".join(COMMANDS)
    if not argv or argv[0] in ("-h", "--help"):
        lines = [f"usage: linvae {{{names}}} [flags]", ""]
        lines += [f"  {name:<9} {description}" for name, (_, description) in COMMANDS.items()]
        lines += ["", "`linvae <command> --help` lists the flags of a command."]
        print("\n".join(lines))
        return EXIT_OK if argv else EXIT_USAGE
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"linvae: error: unknown command {command!r}; known are {names}", file=sys.stderr)
        return EXIT_USAGE
    return importlib.import_module(COMMANDS[command][0]).main(rest)
