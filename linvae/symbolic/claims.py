"""The record of one checked claim and the rule that turns checks into a verdict.

A verdict is never written by hand: each claim function computes whether the appendix's
statement *as written* holds and, when it does not, whether a stated correction holds,
and :func:`verdict` maps those two booleans to one of :data:`VERDICTS`.
"""

from typing import NamedTuple

import sympy as sp

VERDICTS = ("holds", "holds-with-correction", "fails")

#: Whose statement a claim checks: the appendix's own (its equations and the paper's gates,
#: under either reading), or one linvae adds (other gates and readings, rate-distortion facts).
SOURCES = ("paper", "linvae")

# How a claim was established; recorded in ``details["method"]``.
PROVED = "proved symbolically"
SUBSTITUTED = "checked by exact substitution"
COUNTEREXAMPLE = "exact counterexample"
NUMERIC_WITNESS = "numeric witness in float64"


class Claim(NamedTuple):
    """One statement of the appendix with its computed verdict.

    Attributes
    ----------
    id : str
        Stable identifier, e.g. ``"A1.eq14"``; the prefix names the report it goes to.
    statement : str
        The claim in one line, in the appendix's notation.
    verdict : str
        One of :data:`VERDICTS`.
    details : dict of str to str
        ``method`` (how it was established), ``evidence`` (what was computed), ``source``
        (one of :data:`SOURCES`), and where they apply ``assumptions`` and ``correction``.
    """

    id: str
    statement: str
    verdict: str
    details: dict

    def to_dict(self):
        """The claim as a JSON-ready dict with keys id, statement, verdict, details."""
        return {
            "id": self.id,
            "statement": self.statement,
            "verdict": self.verdict,
            "details": dict(self.details),
        }


def verdict(as_written, corrected=None):
    """Map the outcome of the checks to a verdict.

    Parameters
    ----------
    as_written : bool
        Whether the statement as the appendix writes it was verified.
    corrected : bool or None
        Whether the stated correction was verified (None: no correction was tried).

    Returns
    -------
    str
        ``"holds"`` if ``as_written``; ``"holds-with-correction"`` if only the corrected
        statement holds; ``"fails"`` otherwise.
    """
    if not isinstance(as_written, bool) or not (corrected is None or isinstance(corrected, bool)):
        raise TypeError(
            f"as_written must be a bool and corrected a bool or None, "
            f"got {type(as_written).__name__} and {type(corrected).__name__}"
        )
    if as_written:
        return "holds"
    if corrected:
        return "holds-with-correction"
    return "fails"


def is_zero(expr, method="expand"):
    """Whether a sympy scalar or matrix is identically zero.

    ``cancel`` puts a rational function in canonical form p/q with p, q coprime, so a
    difference of rational expressions is identically zero iff its cancelled numerator is
    the zero polynomial: a proof, not a floating-point test. Logarithms of positive symbols
    are expanded first (log(ab) = log a + log b).

    Parameters
    ----------
    expr : Expr or Matrix
    method : {"expand", "cancel"}
        ``"expand"`` (polynomial-heavy identities): expand, then cancel. ``"cancel"``
        (large rational functions, where expanding first is slow): cancel, and only if
        that is not 0, expand and cancel again.
    """
    if method not in ("expand", "cancel"):
        raise ValueError(f"method must be 'expand' or 'cancel', got {method!r}")
    entries = expr if isinstance(expr, sp.MatrixBase) else [expr]
    for entry in entries:
        value = sp.cancel(entry) if method == "cancel" else sp.Integer(1)
        if value != 0:
            value = sp.cancel(sp.expand(sp.expand_log(entry)))
        if value != 0:
            return False
    return True


def show(expr):
    """A compact, deterministic string of a sympy expression or matrix for the report."""
    if isinstance(expr, sp.MatrixBase):
        return str(expr.tolist())
    return str(expr)


def make_claim(claim_id, statement, as_written, corrected=None, *, source="paper", **details):
    """Build a :class:`Claim` whose verdict is computed by :func:`verdict`.

    ``details`` values must be strings; a missing ``method`` or ``evidence`` is an error,
    so that every verdict says how it was reached. ``source`` says whose statement it is
    (:data:`SOURCES`): the paper's, or one linvae adds to test alternatives.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    details = {**details, "source": source}
    for key in ("method", "evidence"):
        if key not in details:
            raise ValueError(f"details of claim {claim_id!r} must include {key!r}")
    for key, value in details.items():
        if not isinstance(value, str):
            raise TypeError(
                f"details[{key!r}] of claim {claim_id!r} must be a str, got {type(value).__name__}"
            )
    return Claim(claim_id, statement, verdict(as_written, corrected), details)
