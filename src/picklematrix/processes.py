"""Where the harness's processes come from: cells and the workers of a cluster it owns.

Both fork from one ``multiprocessing`` forkserver that has imported dask,
distributed and the harness's cell module once. A cell process starts in a few
milliseconds instead of importing them, and so does a worker that replaces a
killed one (a spawned worker imports distributed afresh: about a second of CPU,
paid after every hung or killed cell). Each is still a process of its own: a
fork of the clean server, never of the harness or of another cell.

Where the platform has no forkserver (Windows), processes are spawned.
"""

from __future__ import annotations

import multiprocessing

# picklematrix.preload: what a forked process's first Client would do, done once in the server
PRELOAD = ["picklematrix.cell", "dask", "distributed", "cloudpickle", "picklematrix.preload"]


def start_method() -> str:
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def process_context():
    """The multiprocessing context for cell processes, its server's preload set (before it starts)."""
    method = start_method()
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        _settle_distributed_preload()
        ctx.set_forkserver_preload(PRELOAD)
    return ctx


def use_for_workers() -> None:
    """Make the nannies of clusters started in this process fork their workers from the same server.

    distributed reads ``distributed.worker.multiprocessing-method`` whenever a
    nanny (re)starts its worker, so this is set for the process, not in a
    ``with`` block.
    """
    import dask

    if start_method() == "forkserver":
        dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"})
        process_context()


def _settle_distributed_preload() -> None:
    """Let distributed set its forkserver preload list now, so that ours, set after it, is the one used.

    ``distributed.utils.get_mp_context`` sets its own list the first time it
    runs with the forkserver method, and never again; if that came after ours,
    it would replace it.
    """
    try:
        import dask
        from distributed.utils import get_mp_context
    except ImportError:
        return
    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        get_mp_context()
