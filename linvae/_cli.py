"""The one layout and error boundary of linvae's commands.

Each command is a module ``linvae/<name>/cli.py`` with ``PROG``, ``build_parser()`` and
``run(args) -> int``; its ``main(argv)`` is :func:`run_command`, and ``python -m
linvae.<name>`` and ``linvae <name>`` (the console script, :func:`dispatch`) both call it.
A user's mistake becomes :class:`UsageError`: one line on stderr and exit status 2, never
a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import math
import os
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
    "scoreboard": (
        "linvae.scoreboard.cli",
        "Train every one-model rate-distortion method (MR-VAEs, YOTO, gain units, a β-VAE "
        "bank) with both objectives at several budgets and score each exactly, against time.",
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


def one_line(message) -> str:
    """``message`` as one line: a library's text of several lines (torch's, say) joined."""
    return " ".join(str(message).split())


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


class StdoutError(UsageError):
    """Standard output cannot be written (closed, a full disk, a closed pipe)."""


class _GuardedStdout:
    """``sys.stdout`` inside the error boundary: a failed write is a :class:`StdoutError`."""

    def __init__(self, stream):
        self._stream = stream

    def _failed(self, error=None) -> StdoutError:
        why = "it is closed" if error is None else (error.strerror or str(error))
        return StdoutError(f"cannot write to stdout ({why})")

    def write(self, text):
        if self._stream is None:
            raise self._failed()
        try:
            return self._stream.write(text)
        except (OSError, ValueError) as error:  # ValueError: a closed file object
            raise self._failed(error if isinstance(error, OSError) else None) from None

    def flush(self):
        if self._stream is None:
            return
        try:
            self._stream.flush()
        except (OSError, ValueError) as error:
            raise self._failed(error if isinstance(error, OSError) else None) from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _drop_stdout(stream) -> None:
    """Point file descriptor 1 at the null device, so that the interpreter's last flush of
    what could not be written raises nothing more at exit."""
    if stream is None:
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass  # not a file descriptor (a test's captured stream): nothing is flushed at exit


@contextlib.contextmanager
def guarded_stdout(prog: str):
    """Run a command with ``sys.stdout`` inside the error boundary.

    Yields a one-item list; when writing (or the final flush of) standard output fails,
    one line goes to stderr and the item becomes :data:`EXIT_USAGE`, like any output path
    that cannot be written (``> /dev/full``, ``>&-``).
    """
    stream = sys.stdout
    result = [None]
    sys.stdout = _GuardedStdout(stream)
    try:
        try:
            yield result
        finally:
            sys.stdout.flush()
    except StdoutError as error:
        print(f"{prog}: error: {one_line(error)}", file=sys.stderr)
        _drop_stdout(stream)
        result[0] = EXIT_USAGE
    finally:
        sys.stdout = stream


def _parse_and_run(prog: str, parser: argparse.ArgumentParser, run: Callable, argv) -> int:
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help (usage errors raise UsageError instead)
        return EXIT_OK if done.code is None else int(done.code)
    except StdoutError:
        raise
    except UsageError as error:
        print(f"{prog}: error: {one_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        status = run(args)
    except StdoutError:
        raise
    except UsageError as error:
        print(f"{prog}: error: {one_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK if status is None else int(status)


def run_command(prog: str, parser: argparse.ArgumentParser, run: Callable, argv) -> int:
    """Parse ``argv`` and call ``run(args)``; a :class:`UsageError` becomes one line, exit 2.

    ``run`` returns the exit status (None counts as 0); ``--help`` returns 0 after printing.
    Standard output is inside the boundary: when it cannot be written, one line, exit 2.
    """
    with guarded_stdout(prog) as failed:
        status = _parse_and_run(prog, parser, run, argv)
    return status if failed[0] is None else failed[0]


def dispatch(argv: Sequence[str] | None = None) -> int:
    """``linvae <command> [flags]``: the console script; ``linvae --help`` lists the commands."""
    argv = list(sys.argv[1:] if argv is None else argv)
    names = ", ".join(COMMANDS)
    if not argv or argv[0] in ("-h", "--help"):
        lines = [f"usage: linvae {{{names}}} [flags]", ""]
        lines += [f"  {name:<9} {description}" for name, (_, description) in COMMANDS.items()]
        lines += ["", "`linvae <command> --help` lists the flags of a command."]
        with guarded_stdout("linvae") as failed:
            sys.stdout.write("\n".join(lines) + "\n")
        return failed[0] or (EXIT_OK if argv else EXIT_USAGE)
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"linvae: error: unknown command {command!r}; known are {names}", file=sys.stderr)
        return EXIT_USAGE
    return importlib.import_module(COMMANDS[command][0]).main(rest)
