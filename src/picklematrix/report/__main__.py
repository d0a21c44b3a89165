"""``python -m picklematrix.report``: the entry point of ``nox -s report`` (see :mod:`.build`)."""

import sys

from picklematrix.report.build import main

sys.exit(main())
