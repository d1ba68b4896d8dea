"""``python -m linvae.audit``: see :mod:`linvae.audit.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
