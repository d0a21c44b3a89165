"""``python -m picklematrix``: the command line (picklematrix.cli)."""

import sys

from picklematrix.cli import main

if __name__ == "__main__":
    sys.exit(main())
