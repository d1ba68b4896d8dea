"""``python -m linvae.proofs``: run every symbolic claim and print its verdict.

Usage
-----
python -m linvae.proofs                          # table: id, verdict, statement, notes
python -m linvae.proofs --json                   # [{id, statement, verdict, details}, ...]
python -m linvae.proofs --markdown report.md     # one Markdown report of all claims
python -m linvae.proofs --write-reports proofs/  # proofs/appendix-a1.md, proofs/theorem1.md

Exit status: 0 when every check ran (a verdict "fails" is a finding, not an error); 1 when
a check raised (it is named on stderr, and no report file is written); 2 for bad usage.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

from linvae.symbolic.report import (
    render_markdown,
    render_table,
    run_claims,
    split_reports,
    to_json,
)


def write_atomic(path, text):
    """Write ``text`` to ``path`` through a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m linvae.proofs",
        description="Check every claim of appendix A (linear VAE, Theorem 1) and print verdicts.",
    )
    parser.add_argument("--json", action="store_true", help="print the claims as a JSON list")
    parser.add_argument(
        "--markdown", metavar="PATH", help="write one Markdown report of all claims"
    )
    parser.add_argument(
        "--write-reports",
        metavar="DIR",
        help="write DIR/appendix-a1.md and DIR/theorem1.md (the committed reports)",
    )
    return parser


def main(argv=None):
    """Entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    result = run_claims()
    records = [claim.to_dict() for claim in result.claims]
    if args.json:
        sys.stdout.write(to_json(records) + "\n")
    else:
        sys.stdout.write(render_table(records))
    for name, message in result.errors:
        print(f"error: check {name} could not run: {message}", file=sys.stderr)
    if result.errors:
        print("no report written: fix the failing checks first", file=sys.stderr)
        return 1
    if args.markdown:
        write_atomic(args.markdown, render_markdown(records, "Appendix A: every claim checked"))
    if args.write_reports:
        for name, (title, subset) in split_reports(records).items():
            write_atomic(Path(args.write_reports) / name, render_markdown(subset, title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
