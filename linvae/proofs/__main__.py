"""``python -m linvae.proofs``: see :mod:`linvae.proofs.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
