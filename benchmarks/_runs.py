"""What the quality benchmarks do around their measurement: the command line and the
machine a table was measured on, progress lines, and the result written to ``--out``."""

import argparse
import sys
from pathlib import Path

from linvae._io import atomic_write_text, write_json

from ._timing import machine


def command_line(module: str, argv) -> str:
    """``python -m <module> ARGS``, the command that reproduces a table."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python -m", module, *args])


def measured_on(device) -> str:
    """This machine's CPU for a CPU run, else the torch device."""
    return machine() if device.type == "cpu" else f"GPU ({device})"


def log(line: str) -> None:
    """One progress line on stderr, at once (stdout carries the table)."""
    print(line, file=sys.stderr, flush=True)


def write_result(out, stem: str, record: dict, table: str) -> Path:
    """``<stem>.json`` (``record``) and ``<stem>.md`` (``table``) in ``out``, each written
    atomically; the table is printed too. Returns the folder."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f"{stem}.json", record)
    atomic_write_text(out / f"{stem}.md", table)
    print(table)
    return out


def _ints(text: str, minimum: int, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v]
    except ValueError:
        values = []
    if not values or min(values) < minimum:
        raise argparse.ArgumentTypeError(f"expected {what} a,b,..., got {text!r}")
    return values


def positive_ints(text: str) -> list[int]:
    """An argparse type: a comma-separated list of positive integers ("64,784")."""
    return _ints(text, 1, "positive integers")


def non_negative_ints(text: str) -> list[int]:
    """An argparse type: a comma-separated list of integers ≥ 0 ("0,250,500")."""
    return _ints(text, 0, "integers >= 0")


def names_among(known, what: str):
    """An argparse type: a comma-separated list of names, each one of ``known``; ``what``
    names them in the error ("rows", "cases")."""

    def parse(text: str) -> list[str]:
        names = [v for v in text.split(",") if v]
        if not names or any(v not in known for v in names):
            raise argparse.ArgumentTypeError(
                f"{what} must be among {', '.join(known)}; got {text!r}"
            )
        return names

    return parse
