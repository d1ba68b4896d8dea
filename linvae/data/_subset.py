"""The seeded subset of rows that every loader draws the same way."""

import numpy as np


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
