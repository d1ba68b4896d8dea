"""``python -m linvae.proofs``: run every claim of :mod:`linvae.symbolic` and report verdicts."""

from .cli import main

__all__ = ["main"]
