"""What a compute call did, observed on the client: submitted, sent, graph bytes, tasks' errors, pickling errors logged.

Where the work went is watched on the client (did it hand a graph to
distributed, did the "update-graph" message leave), not inferred from the
method's name; and distributed's "Failed to serialize" log names the error of
the last pickling attempt, which the raised exception may only wrap.
Runs inside every matrix environment (any distributed from 2024.6.2 on).
"""

from __future__ import annotations

import functools
import logging


class PickleLogCapture(logging.Handler):
    """Collects the exceptions distributed logs while pickling ("Failed to serialize")."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.exceptions = []

    def emit(self, record):
        if record.exc_info and record.exc_info[1] is not None:
            self.exceptions.append(record.exc_info[1])


def _nbytes(frame) -> int:
    try:
        return memoryview(frame).nbytes
    except TypeError:
        return 0


def _graph_bytes(msg: dict) -> int:
    """Size of the serialized graph in an "update-graph" message, across distributed versions."""
    frames = []
    if "graph_frames" in msg:  # distributed <= 2024.x: serialize(ToPickle(dsk))
        frames = list(msg["graph_frames"])
    for key in ("expr_ser", "graph"):  # newer: Serialized(header, frames)
        ser = msg.get(key)
        if ser is not None and hasattr(ser, "frames"):
            frames.extend(ser.frames)
    return sum(_nbytes(f) for f in frames)


class Tap:
    """Observes, on the client, whether work was submitted to and sent to the scheduler, and which exceptions
    the scheduler reported as tasks' errors (``erred``: (exception, traceback) pairs, as "task-erred" brought
    them)."""

    def __init__(self, client, emit):
        self.submitted = False
        self.sent = False
        self.graph_bytes = 0
        self.erred: list = []
        self.emit = emit
        self.client = client
        graph_to_futures = client._graph_to_futures
        send = client._send_to_scheduler

        @functools.wraps(graph_to_futures)
        def _graph_to_futures(*args, **kwargs):
            if not self.submitted:
                self.submitted = True
                self._event({"event": "submitted"})
            return graph_to_futures(*args, **kwargs)

        @functools.wraps(send)
        def _send_to_scheduler(msg):
            if isinstance(msg, dict) and msg.get("op") == "update-graph":
                self.sent = True
                self.graph_bytes += _graph_bytes(msg)
                self._event({"event": "sent", "graph_bytes": self.graph_bytes})
            return send(msg)

        # Instance attributes shadow the methods for this client only.
        client._graph_to_futures = _graph_to_futures
        client._send_to_scheduler = _send_to_scheduler

        # The client's handler of the scheduler's "task-erred" (an entry of this client's own dict, looked up
        # for each message): the exception it gets is the one the compute call raises, with the cluster's
        # traceback, which says whose code raised it (picklematrix.outcomes.classify).
        handlers = getattr(client, "_stream_handlers", None)
        self._erred_handler = handlers.get("task-erred") if isinstance(handlers, dict) else None
        if self._erred_handler is not None:
            handle = self._erred_handler

            @functools.wraps(handle)
            def _task_erred(key=None, exception=None, traceback=None, **kwargs):
                handled = handle(key=key, exception=exception, traceback=traceback, **kwargs)
                # the exception as the handler rebuilt it (from the pickled bytes the message holds) for the
                # key's future: the very object a call waiting on that future raises
                state = getattr(client, "futures", {}).get(key)
                if state is not None and getattr(state, "exception", None) is not None:
                    self.erred.append((state.exception, getattr(state, "traceback", None)))
                return handled

            self._tapped_erred = _task_erred
            handlers["task-erred"] = _task_erred

    def remove(self):
        for name in ("_graph_to_futures", "_send_to_scheduler"):
            self.client.__dict__.pop(name, None)
        handlers = getattr(self.client, "_stream_handlers", None)
        if self._erred_handler is not None and handlers.get("task-erred") is self._tapped_erred:
            handlers["task-erred"] = self._erred_handler

    def _event(self, event):
        try:
            self.emit(event)
        except Exception:
            pass
