"""Side effects shared by the commands: atomic files and a strict JSON serialiser.

The serialiser accepts only JSON's own types and numpy numbers and arrays; anything else
raises TypeError naming where it was (no ``default=str``), and NaN or infinity raise
ValueError, so a report never holds a value a program cannot parse back.

Every file linvae writes goes through :func:`atomic_write_bytes`: a reader sees the old
file or the new one, never half of one, and a symbolic link, a file's mode and a device
are treated as a user expects (docs/faults.md).
"""

from __future__ import annotations

import errno
import json
import math
import os
import platform
import stat
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


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "directory"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISFIFO, "named pipe"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"


def output_target(path) -> Path:
    """Where writing ``path`` lands: the file itself, or the end of its symbolic links.

    Raises
    ------
    ValueError
        For an empty path, or an existing target that is not a regular file (a directory,
        a device such as /dev/stdout, a pipe): linvae replaces files, never those.
    """
    if isinstance(path, str) and not path.strip():
        raise ValueError("an empty path: give a file name")
    path = Path(path)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return target
    if not stat.S_ISREG(mode):
        raise ValueError(f"cannot write {path}: it is a {_kind(mode)}, not a regular file")
    return target


def check_output(path, *, make_folder: bool = False) -> Path:
    """Check, before any work, that a file can be written at ``path``; return the target.

    The target (:func:`output_target`) must be a regular file or absent, and its folder must
    exist (``make_folder``: it is created) and be a folder.

    Raises
    ------
    ValueError
        Naming the path and what is wrong with it.
    """
    target = output_target(path)
    folder = target.parent
    if make_folder and not folder.exists():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ValueError(f"cannot create the folder {folder}: {error.strerror}") from None
    if not folder.is_dir():
        raise ValueError(f"cannot write {path}: the folder {folder} does not exist")
    return target


def _new_file_mode() -> int:
    """The mode a new file gets from the umask: 0o666 & ~umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (file systems that cannot sync a folder pass)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never half.

    The bytes go to a temporary file beside the target, which is synced to disk, given the
    target's mode (a new file: the mode the umask gives), renamed onto the target, and the
    folder is synced before this returns. A symbolic link is written through: the file it
    points to is replaced and the link stays. A directory, device or pipe is refused.

    Raises
    ------
    ValueError
        For an empty path or a target that is not a regular file.
    OSError
        When the folder cannot be written (permissions, a full disk); the old file, if
        any, is left as it was and no temporary file remains.
    """
    target = output_target(path)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = _new_file_mode()
    directory = target.parent
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), mode)
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def atomic_write_text(path, text: str) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


#: The figure formats linvae writes, by file suffix.
FIGURE_FORMATS = ("png", "svg", "pdf")


def figure_format(path) -> str:
    """The format a figure's file name asks for (its suffix), or ValueError naming the choices."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FIGURE_FORMATS:
        raise ValueError(
            f"cannot write a figure to {path}: the name must end in "
            + ", ".join(f".{fmt}" for fmt in FIGURE_FORMATS)
        )
    return suffix


def write_figure(figure, path, fmt=None, **savefig) -> None:
    """Render a matplotlib figure and write it atomically, without a creation date.

    ``fmt`` defaults to the path's suffix (:data:`FIGURE_FORMATS`; another suffix raises
    ValueError); the PNG has no "Software" and the SVG and PDF no date entry, so a
    regenerated figure is byte-identical. Extra keywords (``dpi``, ``bbox_inches``) go to
    ``Figure.savefig``.
    """
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fmt = fmt or figure_format(path)
    if figure.canvas is None or type(figure.canvas).__name__ == "FigureCanvasBase":
        FigureCanvasAgg(figure)  # a bare Figure() has no canvas to render with
    buffer = io.BytesIO()
    metadata = {"png": {"Software": None}, "svg": {"Date": None}}.get(fmt, {"CreationDate": None})
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "linvae"}):  # SVG ids from content, not random
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
