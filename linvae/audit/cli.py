"""``python -m linvae.audit MODEL --dataset NAME|FILE --beta B``: audit a trained linear VAE.

MODEL is a ``.npz`` of arrays (keys in :mod:`linvae.audit._files`) or a run folder of
``python -m linvae.compare`` (read by :func:`linvae.compare.run_folder.load_run`; the MR-VAE
is audited at β). ``--convention`` maps the training loss convention to the β of the
unit-variance model. Prints the summary, or the JSON record with ``--json``; ``--out``
writes the JSON atomically. Bad input: one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

from linvae._cli import (
    UsageError,
    add_data_flags,
    command_parser,
    program,
    run_command,
    user_input,
)
from linvae._io import check_output, dumps, git_revision, versions, write_json

from ._audit import STATUS_TOLERANCE
from ._conventions import PRESETS, effective_beta, parse_convention
from ._files import load_npz
from ._model import audit_model
from ._mrvae import mrvae_at

PROG = program("audit")


def build_parser():
    parser = command_parser("audit")
    parser.add_argument("model", help="a .npz of arrays, or a linvae.compare run folder")
    add_data_flags(
        parser,
        dataset_default=None,
        dataset_help="digits, patches, gaussian, or a .npy/.npz/IDX file (default for a compare "
        "run: its data set; required for a .npz)",
    )
    parser.add_argument("--beta", type=float, required=True, help="the β the model was trained at")
    parser.add_argument(
        "--convention",
        default="",
        help="the training loss convention: a preset named after its library ("
        + ", ".join(PRESETS)
        + "), e.g. 'pytorch-vae,batch_size=144' or 'gaussian-nll,decoder_variance=0.1', or "
        "key=value pairs, e.g. 'reconstruction=mean,half=false,kl=sum,kl_weight=1' "
        "(default: the unit-variance model, β as given; docs/audit.md lists them)",
    )
    parser.add_argument(
        "--tol",
        type=float,
        default=STATUS_TOLERANCE,
        help=f"rate (nats) at or below which a latent counts as collapsed (default: {STATUS_TOLERANCE:g})",
    )
    parser.add_argument("--json", action="store_true", help="print the JSON record, not the text")
    parser.add_argument("--out", metavar="PATH", help="also write the JSON record to PATH")
    return parser


def _compare_run(path: Path):
    """The compare run whose folder (or MR-VAE weights) ``path`` is, or None for other files."""
    from linvae.compare.run_folder import MRVAE_WEIGHTS, RunFolderError, load_run

    if not (path.is_dir() or path.name in (MRVAE_WEIGHTS, "mrvae.pt")):
        return None
    try:
        return load_run(path if path.is_dir() else path.parent)
    except RunFolderError as error:
        raise UsageError(f"{path}: not a readable compare run ({error})") from None


def run(args) -> dict:
    """The audit record of the command line ``args``; raises UsageError on bad input."""
    from linvae.data import load

    if args.out is not None:
        user_input("--out", check_output, args.out)
    model_path = Path(args.model)
    if not args.model.strip() or not model_path.exists():
        raise UsageError(f"MODEL {args.model!r} does not exist")
    compare_run = _compare_run(model_path)
    if args.dataset is None and compare_run is None:
        raise UsageError("--dataset is required for a .npz model")
    try:
        if args.dataset is None:  # the run's own data, drawn as the run drew them
            from linvae.compare.comparison import load_data

            X, info = load_data(compare_run.config)
        else:
            X, info = load(args.dataset, n=args.n, seed=args.seed)
        options = parse_convention(args.convention, n=X.shape[0])
        mean = X.mean(axis=0)
        if compare_run is None:
            model = load_npz(model_path, mean)
        else:
            model = mrvae_at(compare_run.models.mrvae, args.beta)
        d, k = X.shape[1], model.encoder_weight.shape[0]
        beta = effective_beta(args.beta, **options, d=d, k=k)
        result = audit_model(model, X, beta, tol=args.tol)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None
    except OSError as error:
        raise UsageError(f"{error.strerror or error}: {error.filename or args.model}") from None
    return {
        "versions": versions(torch=compare_run is not None),
        "git_revision": git_revision(),
        "model": str(model_path),
        "model_kind": "npz" if compare_run is None else "linvae.compare MR-VAE",
        "dataset": {**info.to_dict(), "n": int(X.shape[0]), "d": int(X.shape[1])},
        "beta_given": args.beta,
        "convention": options,
        "beta_effective": beta,
        "units": "nats per example; distortion includes d/2·log 2π",
        "audit": result.to_dict(),
        "_summary": result.summary(),
    }


def print_record(args, record) -> int:
    """The command: audit, write ``--out``, print the summary or the JSON record."""
    summary = record.pop("_summary")
    if args.out:
        user_input("--out", write_json, args.out, record)
    if args.json:
        sys.stdout.write(dumps(record))
    else:
        if record["beta_effective"] != record["beta_given"]:
            print(
                f"effective beta {record['beta_effective']:.6g} (given {record['beta_given']:.6g} "
                f"under {record['convention']})"
            )
        print(summary)
    return 0


def main(argv=None) -> int:
    """Entry point; returns the exit status (0, or 2 with one line for bad input)."""
    return run_command(PROG, build_parser(), lambda args: print_record(args, run(args)), argv)
