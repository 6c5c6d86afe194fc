"""``python -m bridge``: the command line; see :mod:`bridge.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
