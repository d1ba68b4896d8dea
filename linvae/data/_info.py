"""What a loader says about the data set it returns."""

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    """Provenance of a data set returned by :func:`linvae.data.load`.

    Attributes
    ----------
    name : str
        ``"digits"``, ``"patches"``, ``"gaussian"``, or the file name of a user file.
    n : int
        Number of examples (rows of ``X``).
    d : int
        Number of values per example (columns of ``X``).
    source : str
        Where the values came from: the scikit-learn function, ``"synthetic"``, or the
        absolute path of the file.
    image_shape : tuple of int or None
        Shape of one example before flattening (``(8, 8)`` for digits, ``(h, w)`` or
        ``(h, w, c)`` for image files); None when the data were already (n, d).
    scale : float or None
        What the raw values were divided by (16 for digits, 255 for 8-bit pixels);
        None when the values are kept as they were.
    description : str
        One human-readable sentence or two: the subset drawn, the spectrum, the conversion.
    seed : int or None
        Seed of every random choice made (subset, patches, synthetic draw); None when
        nothing random was drawn.
    eigvals : tuple of float or None
        For ``"gaussian"``: the spectrum of the population covariance, which is also the
        exact spectrum of the sample covariance (descending order is not imposed).
    """

    name: str
    n: int
    d: int
    source: str
    image_shape: tuple[int, ...] | None
    scale: float | None
    description: str
    seed: int | None = None
    eigvals: tuple[float, ...] | None = None

    def to_dict(self):
        """The fields as JSON-serialisable builtins (tuples become lists).

        Returns
        -------
        dict
            ``{field: value}`` with values of type str, int, float, list or None.
        """
        return {
            field.name: _json_builtin(getattr(self, field.name))
            for field in dataclasses.fields(self)
        }


def _json_builtin(value):
    """``value`` with tuples turned into lists and numpy scalars into Python numbers."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, (tuple, list)):
        return [_json_builtin(item) for item in value]
    if isinstance(value, int):
        return int(value)
    return float(value)
