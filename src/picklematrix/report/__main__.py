"""``python -m picklematrix.report``: the entry point of ``nox -s report`` (see :mod:`.build`)."""

import sys

from .build import main

sys.exit(main())
