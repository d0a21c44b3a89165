"""Warm-up before forking, in each server that forks processes which then connect a Client: the harness's forkserver
(it imports this module: that does it), asv's benchmark server and the kernels' zygote (``warm()``).

A ``distributed.Client`` reads, on connecting, the versions of Python and of
the packages it compares with the scheduler's
(``distributed.versions.get_versions``: it imports each package in distributed
2024.x and reads package metadata in later releases), and imports tornado's
asyncio bridge. In a freshly forked process that took about 10 ms before its
first connect, paid again by every cell process, every asv benchmark process
and every worker. Done here, before forking, each fork inherits the result.

Nothing a cell could observe changes: its process connects its client before
the cell's code runs, and that connect would have done the same.

The tracked packages the harness itself does not import (pydantic) are imported
here too: a case that defines a model imported pydantic afresh in each cell
process, and a worker that unpickled one in each worker (36 script cells of the
built-in corpus; about 12 ms of each one's wall time here). pydantic 2 imports
most of itself only at the first use of ``BaseModel`` (some 45 modules, 36 ms
of CPU here, in every cell that defines a model): that first use is made here
too (``FIRST_USE``). The cell's ``import pydantic`` then finds the modules the
server imported, as a second import in one process does. A package
that is not installed, or fails to import, is left to the cell as it was: the
modules its attempt added are removed, and the cell meets the same error
itself.

Runs inside every matrix environment; best effort (an API that moved costs
only the warm-up).
"""

from __future__ import annotations

import importlib
import os
import sys

# Set only while the harness's forkserver starts (picklematrix.processes sets it), so that the server alone sees
# it: importing this module there does all of the above at once (see the end of the module), and the server
# leads a process group of its own (own_group reads and removes it). Any other process that wants the warm-up
# calls warm() (asv's benchmark processes, the kernels' zygote): importing this module does nothing there.
OWN_GROUP_VAR = "PICKLEMATRIX_FORKSERVER_OWN_GROUP"


def own_group() -> None:
    """In the harness's forkserver: lead a process group of its own, which every cell and worker forked from it
    inherits, so that the harness can end them all at once. The variable is removed from the environment, so
    that no forked process sees it."""

    if os.environ.pop(OWN_GROUP_VAR, None):
        try:
            os.setpgid(0, 0)
        except OSError:
            pass


# Attributes whose first use completes a tracked package's import (a lazy ``__getattr__``): used once here.
FIRST_USE = {"pydantic": ("BaseModel",)}


def import_tracked() -> None:
    """Import each tracked package not imported yet, and use what completes its import (see the module doc);
    best effort, leaving nothing of a failed import behind."""
    from picklematrix.versions import PACKAGES

    for name in PACKAGES:
        if name in sys.modules:
            continue
        before = set(sys.modules)
        try:
            module = importlib.import_module(name)
            for attribute in FIRST_USE.get(name, ()):
                getattr(module, attribute)
        except Exception:
            for added in set(sys.modules) - before:
                del sys.modules[added]


def warm_up() -> None:
    try:
        import tornado.platform.asyncio  # noqa: F401
        from distributed.versions import get_versions

        get_versions()
    except Exception:
        pass


def warm() -> None:
    """The tracked packages imported and a Client's one-time set-up done, in this process (see the module doc)."""
    import_tracked()
    warm_up()


if OWN_GROUP_VAR in os.environ:  # the harness's forkserver, importing its preload list
    own_group()
    warm()
