"""Where the harness's processes come from: cells and the workers of a cluster it owns.

Both fork from one ``multiprocessing`` forkserver that has imported dask,
distributed and the harness's cell module once. A cell process starts in a few
milliseconds instead of importing them, and so does a worker that replaces a
killed one (a spawned worker imports distributed afresh: about a second of CPU,
paid after every hung or killed cell). Each is still a process of its own: a
fork of the clean server, never of the harness or of another cell.

The server runs in a process group of its own (picklematrix.preload puts it there), and every
process forked from it inherits that group: cells, workers, and whatever a case starts in them.
:func:`end_children` ends the group, so that nothing outlives a run or holds its stdout open
(``picklematrix run | cat`` ends when the run does), however a cell left its processes (stopped,
hung, orphaned).

Where the platform has no forkserver (Windows), processes are spawned.
"""

from __future__ import annotations

import multiprocessing
import os
import signal

from picklematrix.preload import OWN_GROUP_VAR

# the process group of the server this process started (its pid), once started
_group = None

# picklematrix.preload: what a forked process's first Client would do, done once in the server
PRELOAD = ["picklematrix.run.cell", "dask", "distributed", "cloudpickle", "picklematrix.preload"]


def start_method() -> str:
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def process_context():
    """The multiprocessing context for cell processes, its server's preload set (before it starts)."""
    method = start_method()
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        _settle_distributed_preload()
        ctx.set_forkserver_preload(PRELOAD)
        _start_server()
    return ctx


def _start_server() -> None:
    """Start the forkserver now, in a process group of its own (see :func:`end_children`)."""
    global _group
    from multiprocessing import forkserver

    if _group is not None:
        return
    os.environ[OWN_GROUP_VAR] = "1"
    try:
        forkserver.ensure_running()
    finally:
        os.environ.pop(OWN_GROUP_VAR, None)
    # private, but in every Python this runs on (3.10-3.13); without it, nothing to end
    _group = getattr(forkserver._forkserver, "_forkserver_pid", None)


# Process groups the run started besides the server's (a cluster spawned from another env's interpreter,
# picklematrix.cluster.spawned): ended with it.
_adopted: set = set()


def adopt_group(pgid: int) -> None:
    """End the process group ``pgid`` with the run's own processes (see :func:`end_children`)."""
    _adopted.add(pgid)


def forget_group(pgid: int) -> None:
    _adopted.discard(pgid)


def end_children() -> None:
    """SIGKILL the server's process group: every cell and worker process still alive, and the server; and
    every adopted group (:func:`adopt_group`).

    For the end of a run (after its cluster was closed): what is left then is a process that would not
    end (a stopped or stuck worker, a cell's own child). The next use starts a new server.
    """
    global _group
    for pgid in list(_adopted):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
        _adopted.discard(pgid)
    group, _group = _group, None
    if group is None:
        return
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        # not yet in a group of its own (it had not finished its preload): then it has forked nothing
        try:
            os.kill(group, signal.SIGKILL)
        except OSError:
            pass
    try:
        from multiprocessing import forkserver

        # forget the dead server, so that a later process_context() starts a new one
        forkserver._forkserver._stop()
    except Exception:
        pass


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
