"""What the harness knows of one cell while and after it runs (an Attempt), and how long it waits for it.

A cell runs elsewhere: in a process of its own (script context) or in the
kernel. Its events ("compute-start", "submitted", "sent", "received", then "result") come
back as they happen and are folded into an :class:`Attempt`, so that the
harness still knows where the work went when the cell hangs or dies before it
could answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from picklematrix import outcomes as oc
from picklematrix.run.methods import METHODS

# The case's timeout covers each compute call (each timing sample gets it
# anew). Connecting a client and defining the cell get this much on top. For
# a method with a wait of its own (Client.compute) the parent waits GRACE
# longer, so that a child whose own wait ran out can still say so: sending one
# small message. A call without one (dask.compute) would say nothing in that
# second: it is stopped when the case's timeout is up.
CONNECT_ALLOWANCE = 15.0
GRACE = 1.0
# events after which the cell's compute clock starts again
CLOCK_EVENTS = ("compute-start", "sample")


def compute_wait(case, method: str) -> float:
    """How long the harness waits for one compute call of ``case`` by ``method``."""
    return case.timeout + (GRACE if METHODS[method].own_wait else 0.0)


@dataclass
class Attempt:
    """One cell's run as the harness saw it: where its work got to, its answer, or how it ended without one."""

    submitted: bool = False  # the client handed a graph to distributed
    sent: bool = False  # the graph left for the scheduler
    compute_started: bool = False
    received: bool = False  # the compute call returned a value (before the case's check() looked at it)
    targets_cluster: bool | None = None  # dask's scheduler for the call was the distributed client
    answer: dict | None = None  # the cell's "result" event (outcome, root_cause, seconds, ...)
    timed_out: bool = False
    # Without an answer: how it ended (a process's exit status, or where the kernel died).
    died: int | str | None = None
    log_path: str | None = None  # the cell process's output (script context)

    def absorb(self, event: dict) -> None:
        """Fold one event of the cell into what is known of it."""
        kind = event.get("event")
        if kind == "submitted":
            self.submitted = True
        elif kind == "sent":
            self.sent = True
        elif kind == "received":
            self.received = True
        elif kind == "compute-start":
            self.compute_started = True
            self.targets_cluster = event.get("targets_cluster")
        elif kind == "result":
            self.answer = dict(self.answer or {}, **event)

    def fail(self, root_cause: dict | None, detail: str, outcome: str = oc.HARNESS_ERROR) -> "Attempt":
        """Answer for the cell: the harness (not the cell's compute call) decided how it ended."""
        self.answer = dict(self.answer or {}, event="result", outcome=outcome, root_cause=root_cause, detail=detail)
        return self
