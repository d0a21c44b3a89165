"""The cluster a run computes on, as its command line names it: started here, at an address, or from another env."""

from __future__ import annotations

from picklematrix.cluster.base import BaseCluster
from picklematrix.cluster.existing import ExistingCluster
from picklematrix.cluster.local import OwnedCluster
from picklematrix.cluster.spawned import SpawnedCluster


def open_cluster(address: str | None = None, *, n_workers: int = 2, restartable: bool = False,
                 cluster_python: str | None = None) -> BaseCluster:
    """The cluster a run computes on, ready: the one at ``address``; else one started from ``cluster_python``
    (another env's interpreter: picklematrix.cluster.spawned); else a new ``LocalCluster``."""
    if cluster_python is not None:
        return SpawnedCluster(cluster_python, n_workers).start()
    if address is None:
        return OwnedCluster(n_workers).start()
    return ExistingCluster(address, restartable=restartable).start()
