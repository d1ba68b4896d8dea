"""The data sets shipped inside scikit-learn: handwritten digits and photograph patches.

Both are read from files installed with scikit-learn (``sklearn/datasets/data`` and
``sklearn/datasets/images``); neither function can reach the network.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._info import DatasetInfo
from ._subset import subset_rows

DIGITS_SCALE = 16.0
PIXEL_SCALE = 255.0
DEFAULT_PATCH_COUNT = 10_000
# ITU-R BT.601 luma weights in thousandths (the weights of Pillow's "L" conversion): integer
# arithmetic makes white exactly 255_000 / 255_000 = 1.0, with no round-off above 1.
LUMA_WEIGHTS_PER_MILLE = np.array([299, 587, 114], dtype=np.int64)


def digits(n, seed):
    """scikit-learn's 8×8 handwritten digits, pixel values divided by 16 into [0, 1].

    Parameters
    ----------
    n : int or None
        None keeps all 1,797 images in their original order; an int takes a seeded random
        subset of that many images without replacement, kept in their original order.
    seed : int
        Seed of the subset.

    Returns
    -------
    X : ndarray of shape (n, 64)
        Row-major flattened images, values in {0, 1/16, ..., 1}.
    info : DatasetInfo
    """
    from sklearn.datasets import load_digits

    raw = load_digits().data  # (1797, 64), integer values 0..16 stored as float64
    total = raw.shape[0]
    if n is None:
        rows, subset = slice(None), f"all {total} images"
        seed_used = None
    else:
        rows = subset_rows(total, n, seed, "the digits data set")
        subset, seed_used = f"{n} of {total} images drawn without replacement (seed {seed})", seed
    X = np.ascontiguousarray(raw[rows] / DIGITS_SCALE, dtype=np.float64)
    info = DatasetInfo(
        name="digits",
        n=X.shape[0],
        d=X.shape[1],
        source="sklearn.datasets.load_digits",
        image_shape=(8, 8),
        scale=DIGITS_SCALE,
        description=f"8x8 handwritten digits, pixel values 0..16 divided by 16; {subset}.",
        seed=seed_used,
    )
    return X, info


def _sample_photographs():
    """The two photographs scikit-learn ships, as luminance in [0, 1].

    Returns
    -------
    list of (str, ndarray of shape (h, w))
        ``(file name, gray image)`` for china.jpg and flower.jpg, in that order.
    """
    from pathlib import Path

    from sklearn.datasets import load_sample_images

    photographs = load_sample_images()  # decodes the JPEGs with Pillow; no download
    gray = []
    for filename, rgb in zip(photographs.filenames, photographs.images, strict=True):
        luma = rgb.astype(np.int64) @ LUMA_WEIGHTS_PER_MILLE  # 0..255_000
        gray.append((Path(filename).name, luma / (1000.0 * PIXEL_SCALE)))
    return gray


def patches(n, seed, patch_size):
    """Grayscale square patches of the photographs that scikit-learn ships.

    Half of the patches (one more when ``n`` is odd) come from china.jpg, the rest from
    flower.jpg (both 427×640). In each image the top-left corners are drawn uniformly
    without replacement among all valid positions, so no patch repeats; the rows of both
    images are then shuffled together with the same generator.

    Parameters
    ----------
    n : int or None
        Number of patches; None means 10,000.
    seed : int
        Seed of ``numpy.random.default_rng`` for the positions and the shuffle.
    patch_size : int
        Side of the square patch, 1 to 427.

    Returns
    -------
    X : ndarray of shape (n, patch_size²)
        Row-major flattened patches, luminance ``(0.299 R + 0.587 G + 0.114 B) / 255``
        in [0, 1].
    info : DatasetInfo

    Raises
    ------
    ValueError
        If a patch does not fit in the photographs or ``n`` exceeds the distinct positions.
    """
    n = DEFAULT_PATCH_COUNT if n is None else n
    images = _sample_photographs()
    smallest = min(min(image.shape) for _, image in images)
    if patch_size > smallest:
        raise ValueError(
            f"patch_size={patch_size} exceeds the smaller side of the photographs ({smallest})"
        )
    rng = np.random.default_rng(seed)
    counts = [n - n // 2, n // 2]
    blocks = []
    for (filename, image), count in zip(images, counts, strict=True):
        windows = sliding_window_view(image, (patch_size, patch_size))  # (h', w', p, p) view
        positions = windows.shape[0] * windows.shape[1]
        if count > positions:
            raise ValueError(
                f"n={n} asks for {count} patches of {filename}, which has only {positions} "
                f"distinct {patch_size}x{patch_size} positions"
            )
        corners = rng.choice(positions, size=count, replace=False)
        rows, cols = np.divmod(corners, windows.shape[1])
        blocks.append(windows[rows, cols].reshape(count, patch_size * patch_size))
    X = np.concatenate(blocks)[rng.permutation(n)]
    X = np.ascontiguousarray(X, dtype=np.float64)
    info = DatasetInfo(
        name="patches",
        n=n,
        d=patch_size * patch_size,
        source="sklearn.datasets.load_sample_images (china.jpg, flower.jpg)",
        image_shape=(patch_size, patch_size),
        scale=PIXEL_SCALE,
        description=(
            f"{n} grayscale {patch_size}x{patch_size} patches, {counts[0]} from china.jpg and "
            f"{counts[1]} from flower.jpg at distinct random positions (seed {seed}), "
            "luminance 0.299 R + 0.587 G + 0.114 B divided by 255, rows shuffled."
        ),
        seed=seed,
    )
    return X, info
