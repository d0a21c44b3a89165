"""Client and cluster on different versions: skew pairs (matrix.toml ``[skew.NAME]``) and clusters the harness
did not start (``--scheduler ADDRESS``).

A recording normally computes on a cluster of its own env. With a :class:`ClusterSource` it computes elsewhere:

- ``python``: a cluster started from another env's interpreter with dask's own commands (``dask scheduler``,
  ``dask worker``; picklematrix.cluster_spawn), owned by the run (replaced when a cell breaks it);
- ``address``: a cluster someone else runs, never restarted (``security``: a TLS security file).

Either way the cluster's versions are read from it and join the client env's in the record's identity: the
record's env id is ``<client env id>~<cluster env id>`` and its asv name carries ``cluster-*`` requirements.
Runs in the orchestrating interpreter (standard library and ``packaging``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from .versions import ABSENT

# The packages that make up an env's identity, as recorded (python apart).
PACKAGES = ("cloudpickle", "dask", "distributed", "pydantic")
SEPARATOR = "~"
SKEW_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# Read by picklematrix.asv_env when asv labels the env: the cluster's identity (JSON), so that asv's name and
# filters carry it.
ASV_CLUSTER_VAR = "PICKLEMATRIX_ASV_CLUSTER"


def short_python(version: str) -> str:
    """``3.11.7`` (or distributed's ``3.11.7.final.0``) -> ``3.11``."""
    return ".".join(str(version).split(".")[:2])


def env_id_of(python: str, versions: dict) -> str:
    """The env id an installed set of versions reads as (the matrix.toml scheme; distributed follows dask)."""
    v = {k: (versions.get(k) or ABSENT) for k in PACKAGES}
    dask = v["dask"] if v["dask"] == v["distributed"] else f"{v['dask']}+distributed{v['distributed']}"
    return f"cp{v['cloudpickle']}-dask{dask}-pyd{v['pydantic']}-py{short_python(python)}"


@dataclass(frozen=True)
class ClusterIdentity:
    """What a cluster runs: its python and packages (as its workers report them)."""

    python: str
    versions: dict = field(hash=False)

    @property
    def env_id(self) -> str:
        return env_id_of(self.python, self.versions)

    def as_dict(self) -> dict:
        return {"env_id": self.env_id, "python": self.python, "versions": dict(self.versions)}

    @classmethod
    def from_dict(cls, data: dict) -> "ClusterIdentity":
        return cls(python=data["python"], versions=dict(data["versions"]))

    def asv_requirements(self) -> dict:
        """asv "requirements" naming the cluster's side: shown as filters in the asv report."""
        out = {f"cluster-{k}": (self.versions.get(k) or ABSENT) for k in PACKAGES}
        out["cluster-python"] = short_python(self.python)
        return out


def record_env_id(client_env_id: str, cluster: ClusterIdentity | None) -> str:
    """The env id of a record: the client env's, with the cluster's after ``~`` when it is another."""
    return client_env_id if cluster is None else f"{client_env_id}{SEPARATOR}{cluster.env_id}"


def split_env_id(env_id: str) -> tuple[str, str | None]:
    """(client env id, cluster env id or None) of a record's env id."""
    client, _, cluster = env_id.partition(SEPARATOR)
    return client, (cluster or None)


ID_PART = re.compile(r"^cp(?P<cloudpickle>[^-]+)-dask(?P<dask>.+?)-pyd(?P<pydantic>[^-]+)-py(?P<python>[^-]+)$")


def skew_label(env_id: str) -> str:
    """``client pyd2.9.2 / cluster pyd2.8.2``: a skew record's env id with only what differs spelled out (the
    env id as it is for an env of one side)."""
    client, cluster = split_env_id(env_id)
    if cluster is None:
        return env_id
    a, b = ID_PART.match(client), ID_PART.match(cluster)
    if a is None or b is None:
        return f"client {client} / cluster {cluster}"
    short = {"cloudpickle": "cp", "dask": "dask", "pydantic": "pyd", "python": "py"}
    differ = [k for k in ("python", "cloudpickle", "dask", "pydantic") if a[k] != b[k]]
    if not differ:
        return f"client / cluster {client}"
    side = lambda m: " ".join(f"{short[k]}{m[k]}" for k in differ)  # noqa: E731
    return f"client {side(a)} / cluster {side(b)}"


@dataclass(frozen=True)
class ClusterSource:
    """Where a recording's cells compute, when not on a cluster of the client env's own (see the module doc)."""

    identity: ClusterIdentity
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
        return {ASV_CLUSTER_VAR: json.dumps(self.identity.as_dict())}


@dataclass(frozen=True)
class SkewPair:
    """A matrix.toml ``[skew.NAME]`` entry: the client (notebook) from one env, the cluster from another."""

    name: str
    client: object  # picklematrix.matrix.Env
    cluster: object
    question: str

    @property
    def session_id(self) -> str:
        """The id nox parametrizes the matrix session with: ``skew-<name>``."""
        return f"skew-{self.name}"

    @property
    def env_id(self) -> str:
        """The record's env id, by the two envs' pins (what they install is checked when built)."""
        return f"{self.client.env_id}{SEPARATOR}{self.cluster.env_id}"

    @property
    def label(self) -> str:
        return skew_label(self.env_id)

    def as_dict(self) -> dict:
        return {"name": self.name, "question": self.question, "client": self.client.as_dict(),
                "cluster": self.cluster.as_dict()}


def record_name(asv_name: str, cluster: ClusterIdentity | None) -> str:
    """A record's name (its asv env name, its result and sidecar files): the client env's asv name, and the
    cluster's env id when it computes on another env's cluster. picklematrix.asv_env names asv's env so."""
    return asv_name if cluster is None else f"{asv_name}-cluster-{cluster.env_id}"
