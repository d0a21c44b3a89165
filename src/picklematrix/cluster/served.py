"""Serving a cluster to other processes: ``picklematrix cluster --state-file F``.

For asv's benchmark processes when asv runs them by hand (their ``PICKLEMATRIX_SCHEDULER``), and for runs at
``--scheduler``: whoever starts it reads its address from the state file and stops it with SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import threading

from picklematrix.cluster.local import OwnedCluster
from picklematrix.processes import end_children


def serve(state_file: str, n_workers: int = 2, python: str | None = None) -> None:
    """Start a cluster (from another env's interpreter ``python``, when given) and run it until SIGTERM/SIGINT.

    Once it is up, ``state_file`` holds ``{"address", "pid", "workers"}`` (written in one step);
    it is removed when the cluster stops.
    """
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        if python is not None:
            from picklematrix.cluster.spawned import SpawnedCluster

            cluster = SpawnedCluster(python, n_workers)
        else:
            cluster = OwnedCluster(n_workers)
        with cluster:
            tmp = state_file + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"address": cluster.address, "pid": os.getpid(), "workers": cluster.n_workers}, f)
            os.replace(tmp, state_file)
            try:
                while not stop.wait(0.5):
                    pass
            finally:
                try:
                    os.unlink(state_file)
                except OSError:
                    pass
    finally:
        # a worker that would not close (stopped, wedged by a benchmark) must not outlive the cluster
        end_children()


def command(args) -> int:
    """``picklematrix cluster``: :func:`serve` from parsed arguments."""
    serve(args.state_file, n_workers=args.workers, python=args.cluster_python)
    return 0
