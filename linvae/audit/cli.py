"""``python -m linvae.audit MODEL --dataset NAME|FILE --beta B``: audit a trained linear VAE.

MODEL is a ``.npz`` of arrays (keys in :mod:`linvae.audit._files`) or a run folder of
``python -m linvae.compare`` (its ``mrvae.pt`` with the ``report.json`` beside it; the MR-VAE
is audited at β). ``--convention`` maps the training loss convention to the β of the
unit-variance model. Prints the summary, or the JSON record with ``--json``; ``--out``
writes the JSON atomically. Bad input: one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from linvae._io import dumps, git_revision, versions, write_json

from ._audit import STATUS_TOLERANCE
from ._conventions import effective_beta, parse_convention
from ._files import load_npz
from ._model import AffineVAE, audit_model
from ._mrvae import mrvae_at

PROG = "python -m linvae.audit"


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Audit a trained linear-Gaussian VAE against the analytic optimum: its "
        "excess loss split into encoder, bias and decoder parts, in nats per example.",
    )
    parser.add_argument("model", help="a .npz of arrays, or a linvae.compare run folder")
    parser.add_argument(
        "--dataset",
        default=None,
        help="digits, patches, gaussian, or a .npy/.npz/IDX file (default for a compare run: "
        "its data set; required for a .npz)",
    )
    parser.add_argument("--beta", type=float, required=True, help="the β the model was trained at")
    parser.add_argument(
        "--convention",
        default="",
        help="the training loss convention as key=value pairs, e.g. "
        "'reconstruction=mean,half=false,kl=sum,kl_weight=1,decoder_variance=1' "
        "(default: the unit-variance model, β as given)",
    )
    parser.add_argument("--n", type=int, default=None, help="number of examples (a seeded subset)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data set (default: 0)")
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
    """(report dict, folder) if ``path`` is a compare run folder or its mrvae.pt, else None."""
    folder = path if path.is_dir() else path.parent
    if path.is_dir() or path.name == "mrvae.pt":
        report_path = folder / "report.json"
        if not report_path.is_file():
            raise UsageError(f"{path}: no report.json beside the weights (not a compare run)")
        try:
            return json.loads(report_path.read_text()), folder
        except (OSError, ValueError) as error:
            raise UsageError(f"{report_path}: unreadable ({error})") from None
    return None


def _mrvae_at(report, folder: Path, beta: float) -> AffineVAE:
    """The compare run's MR-VAE, rebuilt from report.json and mrvae.pt, at β."""
    import torch

    from linvae.mrvae.model import model_from_config

    try:
        model = model_from_config(report["mrvae"]["config"])
        model.load_state_dict(torch.load(folder / "mrvae.pt", weights_only=True))
    except (OSError, KeyError, TypeError, ValueError, RuntimeError) as error:
        raise UsageError(f"{folder}: cannot rebuild the MR-VAE: {error}") from None
    return mrvae_at(model, beta)


def run(args) -> dict:
    """The audit record of the command line ``args``; raises UsageError on bad input."""
    from linvae.data import load

    model_path = Path(args.model)
    if not model_path.exists():
        raise UsageError(f"MODEL {model_path} does not exist")
    found = _compare_run(model_path)
    run_report, run_folder = found if found is not None else (None, None)
    dataset, seed = args.dataset, args.seed
    if dataset is None:
        if run_report is None:
            raise UsageError("--dataset is required for a .npz model")
        # the run's own data set, drawn with the run's seed
        dataset = run_report.get("dataset", {}).get("argument", "digits")
        seed = run_report.get("seed", seed)
    try:
        options = parse_convention(args.convention)
        X, info = load(dataset, n=args.n, seed=seed)
        mean = X.mean(axis=0)
        if run_report is None:
            model = load_npz(model_path, mean)
        else:
            model = _mrvae_at(run_report, run_folder, args.beta)
        d, k = X.shape[1], model.encoder_weight.shape[0]
        beta = effective_beta(args.beta, **options, d=d, k=k)
        result = audit_model(model, X, beta, tol=args.tol)
    except (ValueError, TypeError, FileNotFoundError) as error:
        raise UsageError(str(error)) from None
    return {
        "versions": versions(torch=run_report is not None),
        "git_revision": git_revision(),
        "model": str(model_path),
        "model_kind": "npz" if run_report is None else "linvae.compare MR-VAE",
        "dataset": {**info.to_dict(), "n": int(X.shape[0]), "d": int(X.shape[1])},
        "beta_given": args.beta,
        "convention": options,
        "beta_effective": beta,
        "units": "nats per example; distortion includes d/2·log 2π",
        "audit": result.to_dict(),
        "_summary": result.summary(),
    }


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        record = run(args)
        summary = record.pop("_summary")
        if args.out:
            write_json(args.out, record)
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"{PROG}: error: cannot write: {error}", file=sys.stderr)
        return 2
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
