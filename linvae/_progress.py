"""The one progress idiom: tqdm's bar (``tqdm.auto``: a widget in a notebook, a line in a
terminal), silent when stderr is not a terminal, for files, training and the floor fit."""

from __future__ import annotations

import math
import sys


def bar(description: str, total: int | None, *, unit: str = "it", file=None, **options):
    """A ``tqdm.auto`` bar on stderr that draws only on a terminal (or in a notebook).

    ``options`` go to tqdm (``disable=False`` forces it on, ``disable=True`` off).
    """
    from tqdm.auto import tqdm

    settings = {"disable": None, "mininterval": 0.2, "dynamic_ncols": True, "leave": True}
    settings.update(options)
    return tqdm(
        total=total, desc=description, unit=unit, file=sys.stderr if file is None else file,
        **settings,
    )  # fmt: skip


class TrainingBar:
    """A progress callback of :func:`linvae.mrvae.train.train` drawn by tqdm.

    Call it as ``progress(step, steps, loss, elapsed)``; the running loss goes in the bar's
    postfix when it changes. :meth:`close` ends the bar with an optional note.
    """

    def __init__(self, description: str, *, file=None, **options):
        self.description, self.file, self.options = description, file, options
        self._bar = None
        self._loss = math.nan

    def __call__(self, step: int, steps: int, loss: float, elapsed: float) -> None:
        if self._bar is None:
            self._bar = bar(self.description, steps, unit="step", file=self.file, **self.options)
        if loss != self._loss and math.isfinite(loss):
            self._loss = loss
            self._bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        self._bar.update(step - self._bar.n)

    def close(self, note: str = "") -> None:
        """End the bar (with a note such as "interrupted")."""
        if self._bar is not None:
            if note:
                self._bar.set_postfix_str(note, refresh=False)
            self._bar.close()
