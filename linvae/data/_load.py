"""The single entry point: a data set by name or a user file by path."""

import os

from .._checks import as_int, as_seed
from ._embedded import digits, patches
from ._files import SUPPORTED_FILES, load_file, looks_like_path
from ._gaussian import gaussian

KNOWN_DATASETS = ("digits", "patches", "gaussian")


def load(name="digits", *, n=None, seed=0, patch_size=28, eigvals=None, mean=None, key=None):
    """Load a data set as a float64 (n, d) matrix, without any network access.

    Parameters
    ----------
    name : str or os.PathLike, default "digits"
        ``"digits"``: scikit-learn's 1,797 handwritten digits, 8×8, divided by 16 into [0, 1].
        ``"patches"``: grayscale ``patch_size``² patches of the two photographs that
        scikit-learn ships, luminance in [0, 1], half from each. ``"gaussian"``: synthetic
        data whose sample mean is ``mean`` and whose ML covariance is V diag(eigvals) Vᵀ
        exactly (see :func:`gaussian_data`). Anything else is a path to a ``.npy``,
        ``.npz`` or MNIST IDX file (``*-ubyte``, ``*.idx``, gzipped or not); a file named
        like a data set is reached with a path such as ``"./digits"``.
    n : int, optional
        Number of examples, at least 2. digits and files: None keeps all, an int takes a
        seeded random subset without replacement, kept in the original order. patches:
        default 10,000. gaussian: default 1,000, at least d + 1.
    seed : int, default 0
        Seed of every random choice (``numpy.random.default_rng``).
    patch_size : int, default 28
        Side of a patch; used by ``"patches"`` only.
    eigvals : array_like of shape (d,), optional
        ``"gaussian"`` only: the spectrum, ≥ 0; default ``logspace(1, -2, 16)``
        (16 values from 10 down to 0.01).
    mean : array_like of shape (d,), optional
        ``"gaussian"`` only: the exact sample mean; default zeros.
    key : str, optional
        ``.npz`` only: the array to read; None reads the archive's only array.

    Returns
    -------
    X : ndarray of shape (n, d)
        C-contiguous float64. Images are flattened row-major; uint8 files are divided by
        255 (``info.scale``). A float64 ``.npy`` read whole comes back as a read-only
        memory map.
    info : DatasetInfo
        Name, size, source, image shape, scale, a description and the seed.

    Raises
    ------
    TypeError
        If an option has the wrong type.
    ValueError
        If ``name`` is no known data set and no file path, an option is out of range or
        applies to another data set, or a file is bad (unknown extension, wrong IDX magic
        number, truncated, non-numeric, NaN/inf, fewer than two examples, not flattenable
        to (n, d)); the message names the file. A missing file raises
        ``DataFileNotFoundError``, a subclass of both FileNotFoundError and ValueError.
    """
    seed = as_seed(seed)
    n = as_int(n, "n", minimum=2, optional=True)
    patch_size = as_int(patch_size, "patch_size", minimum=1)
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(
            f"name must be a data set name or a file path (str or os.PathLike), "
            f"got {type(name).__name__}"
        )
    if isinstance(name, str) and name in KNOWN_DATASETS:
        dataset = name
    elif isinstance(name, os.PathLike) or looks_like_path(name):
        dataset = "file"
    else:
        raise ValueError(
            f"unknown data set name {name!r}; known are {', '.join(KNOWN_DATASETS)}, "
            f"or a path to a file ({SUPPORTED_FILES})"
        )

    for option, value, owner in (("eigvals", eigvals, "gaussian"), ("mean", mean, "gaussian")):
        if value is not None and dataset != owner:
            raise ValueError(f"{option} applies only to the {owner!r} data set, not to {name!r}")
    if key is not None and dataset != "file":
        raise ValueError(f"key applies only to .npz files, not to the {name!r} data set")

    if dataset == "digits":
        return digits(n, seed)
    if dataset == "patches":
        return patches(n, seed, patch_size)
    if dataset == "gaussian":
        return gaussian(n, seed, eigvals, mean)
    return load_file(name, n, seed, key)
