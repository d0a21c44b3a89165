"""What runs inside the IPython kernel for the kernel context: the reset before each case and the compute cell.

The harness (picklematrix.kernel) executes these as notebook cells. The
compute cell's events and result go to stdout as marked JSON lines
(``KERNEL_MARK``), which the harness reads from the kernel's iopub stream.
Runs inside every matrix environment, in the kernel's process.
"""

from __future__ import annotations

import sys
import threading

from .cell import compute_phase

KERNEL_MARK = "\x1epicklematrix-event "

# The last kernel cell's client, closing in a thread of the kernel (see kernel_compute), and how long
# the next case's kernel_reset waits for that close (it gives ``close`` 5 s).
_closing: tuple | None = None
CLOSE_WAIT = 10.0


def kernel_reset() -> None:
    """Called by the harness inside a Jupyter kernel before each case: a fresh notebook.

    Waits until the previous case's ``client`` has closed (``kernel_compute``
    closes it in a thread), or closes it (a case that did not get as far as
    its compute cell), then does what ``%reset -f`` does
    (``InteractiveShell.reset(new_session=False)``: namespace, output cache,
    aliases) except its full ``gc.collect()``, which costs more than the rest of
    a cell (about 60 ms with dask, distributed and pydantic loaded); the
    interpreter's own collector still runs as it would in a notebook. Then it
    drops the ``from __future__`` flags an earlier case left: IPython keeps
    them for every later cell, ``%reset`` included.
    """
    import __future__
    import gc

    global _closing
    closed = None
    if _closing is not None:
        thread, closed = _closing
        _closing = None
        thread.join(CLOSE_WAIT)
    shell = get_ipython()  # noqa: F821 - only ever called inside an IPython kernel
    old = shell.user_ns.get("client")
    if old is not None and old is not closed and type(old).__module__.startswith("distributed"):
        try:
            old.close(timeout=5)
        except Exception:
            pass
    collect = gc.collect
    gc.collect = lambda generation=2: 0
    try:
        shell.reset(new_session=False)
    finally:
        gc.collect = collect
    for name in __future__.all_feature_names:
        shell.compile.flags &= ~getattr(__future__, name).compiler_flag


def kernel_compute(method_name: str, *, case_id: str, timeout: float, samples: int = 1,
                   events_path: str | None = None) -> None:
    """Called by the harness inside a Jupyter kernel, after the case's cell ran there.

    Events and the result go to stdout as marked JSON lines: the harness reads
    them from the kernel's iopub stream, as they are printed. They are also
    appended to ``events_path``: a write to a file is done when ``write``
    returns, while output on iopub is lost if the task kills the kernel
    before zmq sends it.
    """
    import json

    shell = get_ipython()  # noqa: F821 - only ever called inside an IPython kernel
    ns = shell.user_ns

    def emit(event):
        sys.__stdout__.flush()
        line = json.dumps(event, default=str)
        if events_path:
            with open(events_path, "a") as f:
                f.write(line + "\n")
        print(KERNEL_MARK + line, flush=True)

    client = ns.get("client")
    result = compute_phase(ns, client, method_name, case_id=case_id, context="kernel", timeout=timeout,
                           samples=samples, emit=emit)
    emit(result)
    # As the script context's process does once its result is sent, the client closes while the harness
    # checks the cluster: in a thread, so that this cell is done now. The next case's kernel_reset
    # waits for it before anything else runs in the kernel.
    global _closing

    def close():
        try:
            client.close(timeout=5)
        except Exception:
            pass

    thread = threading.Thread(target=close, name="picklematrix-close-client", daemon=True)
    thread.start()
    _closing = (thread, client)
