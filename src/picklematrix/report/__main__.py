"""``python -m picklematrix.report``: ``picklematrix report`` (the command line is picklematrix.cli's)."""

import sys

from picklematrix.cli import main

sys.exit(main(["report", *sys.argv[1:]]))
