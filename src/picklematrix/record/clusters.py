"""Where a recording's cells compute when not on a cluster of the client env's own (a :class:`ClusterSource`).

- ``python``: a cluster started from another env's interpreter with dask's own commands (``dask scheduler``,
  ``dask worker``; picklematrix.cluster.spawned), owned by the run (replaced when a cell breaks it): a skew
  pair's cluster env (picklematrix.record.skew_envs builds it);
- ``address``: a cluster someone else runs (``--scheduler ADDRESS``), never restarted (``security``: a TLS
  security file); its identity is read from it when an env records against it (:func:`probe`).

Runs in nox's interpreter (standard library); what needs distributed runs in an env's interpreter
(``python -m picklematrix versions``).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from picklematrix.envs.skew import ASV_CLUSTER_VAR, ClusterIdentity
from picklematrix.record.resultsdir import RecordingError


@dataclass(frozen=True)
class ClusterSource:
    """Where a recording's cells compute, when not on a cluster of the client env's own (see the module doc)."""

    identity: ClusterIdentity | None  # None: a cluster at an address, not yet asked (:func:`probe`)
    python: str | None = None     # the cluster env's interpreter: started from it (owned)
    address: str | None = None    # an existing cluster (not owned)
    security: str | None = None   # TLS security file for ``address``

    def harness_args(self) -> list[str]:
        """``picklematrix run`` arguments that compute there."""
        if self.python is not None:
            return ["--cluster-python", self.python]
        args = ["--scheduler", self.address]
        return args + (["--scheduler-security", self.security] if self.security else [])

    def asv_environ(self) -> dict:
        """What asv's record needs: the cluster's identity (picklematrix.record.asv_env names the env by it).
        asv connects to no cluster: the timings are the harness run's."""
        return {ASV_CLUSTER_VAR: json.dumps(self.identity.as_dict())}


def given_cluster(address: str, security: str | None = None) -> ClusterSource:
    """A cluster at ``address`` that someone else runs: its identity is read when an env records against it
    (:func:`probe`)."""
    if security is not None and not Path(security).is_file():
        raise RecordingError(f"--scheduler-security {security}: no such file")
    return ClusterSource(None, address=address, security=str(Path(security).resolve()) if security else None)


def probe(source: ClusterSource, python: str, log=print) -> ClusterSource:
    """``source`` with its identity, as distributed's version check in ``python``'s env reports its workers
    (``python -m picklematrix versions --scheduler ...``); its mismatch warning is logged."""
    command = [python, "-m", "picklematrix", "versions", *source.harness_args()]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RecordingError(f"cannot read the versions of the cluster at {source.address} from "
                             f"{python}: {(proc.stderr or proc.stdout).strip()[-2000:]}")
    report = json.loads(proc.stdout)
    if report.get("mismatch"):
        log(f"cluster at {source.address}: distributed's version check: "
            + " ".join(report["mismatch"].split())[:600])
    ident = report["identity"]
    return ClusterSource(ClusterIdentity(ident["python"], ident["versions"]), address=source.address,
                         security=source.security)
