"""``python -m linvae.scoreboard``: see :mod:`linvae.scoreboard.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
