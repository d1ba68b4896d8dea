"""Side effects shared by the commands: atomic files and a strict JSON serialiser.

The serialiser accepts only JSON's own types and numpy numbers and arrays; anything else
raises TypeError naming where it was (no ``default=str``), and NaN or infinity raise
ValueError, so a report never holds a value a program cannot parse back.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import tempfile
from pathlib import Path

import numpy as np


def to_json_builtin(value, path: str = "report"):
    """``value`` as JSON builtins: dict (str keys), list, str, int, float, bool, None.

    Raises
    ------
    TypeError
        On a type the report does not know, naming where in the structure it was.
    ValueError
        On NaN or infinity (JSON has no such numbers).
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{path} is {number}: JSON has no NaN or infinity")
        return number
    if isinstance(value, (np.ndarray, list, tuple)):
        return [to_json_builtin(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path} has a key {key!r} of type {type(key).__name__}, not str")
            out[key] = to_json_builtin(item, f"{path}.{key}")
        return out
    raise TypeError(f"{path} has type {type(value).__name__}, which the report does not serialise")


def dumps(record) -> str:
    """``record`` as indented JSON text (see :func:`to_json_builtin`)."""
    return json.dumps(to_json_builtin(record), indent=2, allow_nan=False) + "\n"


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it onto ``path``."""
    path = Path(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def atomic_write_text(path, text: str) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_figure(figure, path, fmt=None, **savefig) -> None:
    """Render a matplotlib figure and write it atomically, without a creation date.

    ``fmt`` defaults to the path's extension (``.svg`` or else PNG); the PNG has no
    "Software" and the SVG no "Date" entry, so a regenerated figure is byte-identical.
    Extra keywords (``dpi``, ``bbox_inches``) go to ``Figure.savefig``.
    """
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fmt = fmt or ("svg" if str(path).lower().endswith(".svg") else "png")
    if figure.canvas is None or type(figure.canvas).__name__ == "FigureCanvasBase":
        FigureCanvasAgg(figure)  # a bare Figure() has no canvas to render with
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    figure.savefig(buffer, format=fmt, metadata=metadata, **savefig)
    atomic_write_bytes(path, buffer.getvalue())


def write_json(path, record) -> None:
    """Serialise ``record`` strictly and write it atomically."""
    atomic_write_text(path, dumps(record))


def git_revision() -> str | None:
    """The git commit of the linvae source tree (``+dirty`` if modified), or None."""
    source = Path(__file__).resolve().parent
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=10
        )
        if revision.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "."],
            cwd=source.parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    dirty = status.returncode == 0 and status.stdout.strip() != ""
    return revision.stdout.strip() + ("+dirty" if dirty else "")


def versions(*, torch: bool = False) -> dict:
    """Versions of python, numpy, scipy, linvae and, when asked, torch."""
    import scipy

    import linvae

    found = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "linvae": linvae.__version__,
    }
    if torch:
        import torch as torch_module

        found["torch"] = torch_module.__version__
    return found
