"""Checks of the loader options and the seeded subset they share."""

import numbers

import numpy as np


def as_seed(seed):
    """``seed`` as an int >= 0, else TypeError/ValueError naming ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, (numbers.Integral, np.integer)):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return int(seed)


def as_count(n, name="n"):
    """``n`` (an example count) as an int >= 2, or None; else TypeError/ValueError."""
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer or None, got {type(n).__name__}")
    if n < 2:
        raise ValueError(f"{name} must be >= 2 (a covariance needs two examples), got {n}")
    return int(n)


def as_patch_size(patch_size):
    """``patch_size`` as an int >= 1, else TypeError/ValueError naming ``patch_size``."""
    if isinstance(patch_size, bool) or not isinstance(patch_size, (numbers.Integral, np.integer)):
        raise TypeError(f"patch_size must be an integer, got {type(patch_size).__name__}")
    if patch_size < 1:
        raise ValueError(f"patch_size must be >= 1, got {patch_size}")
    return int(patch_size)


def subset_rows(total, n, seed, what):
    """Sorted row indices of a seeded random subset of ``n`` of ``total`` rows.

    Parameters
    ----------
    total : int
        Rows available.
    n : int
        Rows wanted, ``2 <= n <= total`` (already checked by :func:`as_count`).
    seed : int
        Seed of ``numpy.random.default_rng``.
    what : str
        The data set, for the error message.

    Returns
    -------
    ndarray of shape (n,)
        Distinct indices in increasing order, so that the rows keep their original order.

    Raises
    ------
    ValueError
        If ``n > total``.
    """
    if n > total:
        raise ValueError(f"n={n} exceeds the {total} examples of {what}")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(total, size=n, replace=False))
