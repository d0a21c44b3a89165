"""What a cluster the harness starts may take: time to start, and memory per worker."""

from __future__ import annotations

import os

# How long starting a cluster may take: a scheduler and its workers are up in a few seconds (forked
# workers) to ten or so (spawned, on a loaded machine); a worker that cannot start would otherwise
# leave LocalCluster waiting forever, silently.
START_WITHIN_VAR = "PICKLEMATRIX_CLUSTER_START_WITHIN"
START_WITHIN = 60.0


# Worker memory limits. distributed's default, the machine's memory / the workers of one cluster,
# assumes each cluster is alone; here several run at once (nox runs envs side by side, one harness
# cluster each). The rule:
#   limit per worker = machine memory (distributed's reading: host, cgroup or RSS rlimit)
#                      x MEMORY_FRACTION / (workers of this cluster x clusters at once)
# with clusters at once from PICKLEMATRIX_CLUSTERS, else default_clusters() (the envs a nox run computes at once:
# picklematrix.record.recording.run_slot). PICKLEMATRIX_WORKER_MEMORY ("2GiB", bytes) sets the limit itself.
MEMORY_FRACTION = 0.5
CLUSTERS_VAR = "PICKLEMATRIX_CLUSTERS"
WORKER_MEMORY_VAR = "PICKLEMATRIX_WORKER_MEMORY"


def worker_memory_limit(n_workers: int) -> int:
    """Each worker's memory limit in bytes, by the rule above."""
    from dask.utils import parse_bytes
    from distributed.system import MEMORY_LIMIT

    given = os.environ.get(WORKER_MEMORY_VAR)
    if given:
        try:
            return parse_bytes(given)
        except ValueError:
            raise ValueError(f"{WORKER_MEMORY_VAR}={given!r}: expected a size such as 2GiB") from None
    return int(MEMORY_LIMIT * MEMORY_FRACTION / (max(1, n_workers) * clusters_at_once()))


def default_clusters() -> int:
    """The envs a nox run computes at once unless PICKLEMATRIX_CLUSTERS says: one per CPU. An env's run keeps
    about one and a half CPUs busy with its two lanes, less while it starts, ends, waits on a cell's timeout or
    records with asv, so more at once finish a profile sooner (on 2 CPUs, 3 at once: 312.1 s against 342.7 s,
    the same outcomes); but every timing is then taken on a machine with three times as many lanes as CPUs (the
    A/A pair's samples of a 20 ms cell reached 260 ms, and in one run of two its review called the ×1.1 threshold
    unsafe), and each worker's memory limit is smaller. Timings and memory come first here; set
    PICKLEMATRIX_CLUSTERS for a run that wants outcomes sooner."""
    return max(1, os.cpu_count() or 1)


def clusters_at_once() -> int:
    """How many clusters of the harness run at once on this machine: PICKLEMATRIX_CLUSTERS, else
    default_clusters(). (A run whose kernel cells take a lane of their own doubles it for both lanes:
    picklematrix.run.lanes.)"""
    clusters_text = os.environ.get(CLUSTERS_VAR) or str(default_clusters())
    if not clusters_text.isdigit() or int(clusters_text) < 1:
        raise ValueError(f"{CLUSTERS_VAR}={clusters_text!r}: use a whole number >= 1 (the envs that compute at once)")
    return int(clusters_text)


def start_within() -> float:
    """How long starting a cluster may take, in seconds (START_WITHIN_VAR, else START_WITHIN)."""
    text = os.environ.get(START_WITHIN_VAR)
    try:
        return float(text) if text else START_WITHIN
    except ValueError:
        raise ValueError(f"{START_WITHIN_VAR}={text!r}: expected seconds") from None
