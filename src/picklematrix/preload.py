"""Imported once by each server that forks processes which then connect a Client: warm-up before forking.

A ``distributed.Client`` reads, on connecting, the versions of Python and of
the packages it compares with the scheduler's
(``distributed.versions.get_versions``: it imports each package in distributed
2024.x and reads package metadata in later releases), and imports tornado's
asyncio bridge. In a freshly forked process that took about 10 ms before its
first connect, paid again by every cell process, every asv benchmark process
and every worker. Done here, before forking, each fork inherits the result.

Nothing a cell could observe changes: its process connects its client before
the cell's code runs, and that connect would have done the same.

Runs inside every matrix environment; best effort (an API that moved costs
only the warm-up).
"""

from __future__ import annotations


def warm_up() -> None:
    try:
        import tornado.platform.asyncio  # noqa: F401
        from distributed.versions import get_versions

        get_versions()
    except Exception:
        pass


warm_up()
