"""``python -m linvae.analytic``: see :mod:`linvae.analytic.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
