"""``python -m linvae <command>``: the same as the console script ``linvae <command>``."""

import sys

from ._cli import dispatch

if __name__ == "__main__":
    sys.exit(dispatch())
