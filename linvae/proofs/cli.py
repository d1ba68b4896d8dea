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

import sys
from pathlib import Path

from linvae._cli import EXIT_FAILED, command_parser, program, run_command, user_input
from linvae._io import atomic_write_text, check_output
from linvae.symbolic.report import (
    REPORTS,
    render_markdown,
    render_table,
    run_claims,
    split_reports,
    to_json,
)

PROG = program("proofs")


def build_parser():
    parser = command_parser("proofs")
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


def _check_outputs(args) -> None:
    """The report paths, checked before the (long) run of the claims."""
    if args.markdown is not None:
        user_input("--markdown", check_output, args.markdown, make_folder=True)
    if args.write_reports is not None:
        for name in REPORTS:
            user_input(
                "--write-reports", check_output, Path(args.write_reports) / name, make_folder=True
            )


def run(args) -> int:
    """Run the claims, print them, write the reports asked for; 1 if a check raised."""
    _check_outputs(args)
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
        return EXIT_FAILED
    if args.markdown:
        text = render_markdown(records, "Appendix A: every claim checked")
        user_input("--markdown", atomic_write_text, args.markdown, text)
    if args.write_reports:
        for name, (title, subset) in split_reports(records).items():
            path = Path(args.write_reports) / name
            user_input("--write-reports", atomic_write_text, path, render_markdown(subset, title))
    return 0


def main(argv=None) -> int:
    """Entry point; returns the exit status."""
    return run_command(PROG, build_parser(), run, argv)
