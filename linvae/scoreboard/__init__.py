"""An exact scoreboard of one-model rate-distortion methods (``python -m linvae.scoreboard``).

:func:`run_scoreboard` trains every method of :mod:`linvae.methods` with both objectives
at several budgets, scores each exactly against the analytic optimum, fits each family's
representation floor, and times it all; :func:`render_markdown` and :func:`render_figure`
report it (docs/scoreboard.md).
"""

from .board import run_scoreboard
from .report import leaderboard, render_figure, render_markdown

__all__ = ["leaderboard", "render_figure", "render_markdown", "run_scoreboard"]
