"""Client and cluster on different versions: skew pairs (matrix.toml ``[skew.NAME]``, or ``--env
"<client>~<cluster>"``) and the identity of a record made on another env's cluster.

A recording normally computes on a cluster of its own env. When it computes elsewhere (a skew pair's cluster
env, or a cluster at ``--scheduler ADDRESS``: picklematrix.record.clusters), the cluster's versions are read
from it and join the client env's in the record's identity: the record's env id is ``<client env id>~<cluster
env id>`` and its asv name carries ``cluster-*`` requirements. Standard library and ``packaging``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from picklematrix.envs.ids import parse_env_id
from picklematrix.envs.spec import SpecError
from picklematrix.versions import ABSENT, AXES, PACKAGES, env_id_of, short_python

SEPARATOR = "~"
# "~" between a client and a cluster, not the "~=" of a version specifier (pydantic=~=2.10)
PAIR = re.compile(r"~(?!=)")
SKEW_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# Read by picklematrix.record.asv_env when asv labels the env: the cluster's identity (JSON), so that asv's name and
# filters carry it.
ASV_CLUSTER_VAR = "PICKLEMATRIX_ASV_CLUSTER"


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


def split_pair(text: str) -> tuple[str, str] | None:
    """(client, cluster) of ``<client>~<cluster>`` on a command line (each an env id or a spec), else None."""
    parts = PAIR.split(text, maxsplit=1)
    return (parts[0].strip(), parts[1].strip()) if len(parts) == 2 else None


def record_env_id(client_env_id: str, cluster: ClusterIdentity | None) -> str:
    """The env id of a record: the client env's, with the cluster's after ``~`` when it is another."""
    return client_env_id if cluster is None else f"{client_env_id}{SEPARATOR}{cluster.env_id}"


def split_env_id(env_id: str) -> tuple[str, str | None]:
    """(client env id, cluster env id or None) of a record's env id."""
    client, _, cluster = env_id.partition(SEPARATOR)
    return client, (cluster or None)


def skew_label(env_id: str) -> str:
    """``client pyd2.9.2 / cluster pyd2.8.2``: a skew record's env id with only what differs spelled out (the
    env id as it is for an env of one side)."""
    client, cluster = split_env_id(env_id)
    if cluster is None:
        return env_id
    a, b = parse_env_id(client), parse_env_id(cluster)
    if a is None or b is None:  # (an env with extra pins: its id carries their digest)
        return f"client {client} / cluster {cluster}"
    short = {"cloudpickle": "cp", "dask": "dask", "pydantic": "pyd", "python": "py"}
    differ = [k for k in AXES if getattr(a, k) != getattr(b, k)]
    if not differ:
        return f"client / cluster {client}"
    side = lambda env: " ".join(f"{short[k]}{getattr(env, k)}" for k in differ)  # noqa: E731
    return f"client {side(a)} / cluster {side(b)}"


@dataclass(frozen=True)
class SkewPair:
    """A matrix.toml ``[skew.NAME]`` entry: the client (notebook) from one env, the cluster from another."""

    name: str
    client: object  # picklematrix.envs.ids.Env
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
    cluster's env id when it computes on another env's cluster. picklematrix.record.asv_env names asv's env so."""
    # a digest: asv names result files after the env only up to 127 characters (beyond, "env-<md5>"); the
    # record's sidecar head and asv's cluster-* requirements spell the cluster out
    if cluster is None:
        return asv_name
    return f"{asv_name}-cluster-{hashlib.sha256(cluster.env_id.encode()).hexdigest()[:8]}"


# --------------------------------------------------------------------------- TLS for --scheduler tls://


# --------------------------------------------------------------------------- matrix.toml [skew.NAME]

PAIR_KEYS = ("client", "cluster", "question")


def load_pairs(table: dict, bad) -> dict:
    """{name: SkewPair} of matrix.toml's ``[skew.NAME]`` tables; each problem goes to ``bad(message)``.

    A pair names two env ids (any versions: they need not be on the axes, envs are built on demand) and the
    question it answers."""
    pairs = {}
    if not isinstance(table, dict):
        bad("[skew] must hold tables: [skew.<name>] with client, cluster and question")
        return pairs
    for name, entry in table.items():
        label = f"[skew.{name}]"
        if not SKEW_NAME.match(name):
            bad(f"{label}: name it with lower-case letters, digits and '-' (it names the nox session skew-{name})")
            continue
        if not isinstance(entry, dict):
            bad(f"{label} must be a table of client, cluster and question")
            continue
        for k in entry:
            if k not in PAIR_KEYS:
                bad(f"{label}: unknown key {k!r} (known: {', '.join(PAIR_KEYS)})")
        sides = {}
        for side in ("client", "cluster"):
            text = entry.get(side)
            env = parse_env_id(text) if isinstance(text, str) else None
            if env is None:
                bad(f"{label}: {side} = {text!r} is not an env id like cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11")
            sides[side] = env
        question = entry.get("question")
        if not isinstance(question, str) or not question.strip():
            bad(f"{label} needs a 'question': what the pair answers (e.g. can the notebook image move first?)")
        if None in sides.values():
            continue
        if sides["client"] == sides["cluster"]:
            bad(f"{label}: client and cluster are the same env ({sides['client'].env_id}): that is not a skew")
            continue
        pairs[name] = SkewPair(name, sides["client"], sides["cluster"], (question or "").strip())
    return pairs


def skew_pairs(pairs: dict, names, label: str, bad) -> list:
    """The pairs a profile's ``skew = [...]`` names, in its order."""
    if not isinstance(names, list):
        bad(f"{label}: skew must be a list of [skew.<name>] names")
        return []
    out = []
    for name in names:
        if name not in pairs:
            bad(f"{label}: skew pair {name!r} is not defined (known: {', '.join(pairs) or 'none'}; "
                f"add a [skew.{name}] table)")
        elif pairs[name] in out:
            bad(f"{label}: skew pair {name!r} is listed twice")
        else:
            out.append(pairs[name])
    return out


def pair_on_demand(text: str, resolve) -> SkewPair:
    """A skew pair named on the command line (``--env "<client>~<cluster>"``, each side an env id or a spec that
    ``resolve`` turns into an env), as the record id of a pair reads: recorded as a pair of matrix.toml is."""
    client_text, cluster_text = split_pair(text) or (text, "")
    if not client_text.strip() or not cluster_text.strip():
        raise SpecError(f"--env {text!r}: a client/cluster pair reads <client env>{SEPARATOR}<cluster env>")
    client, cluster = resolve(client_text.strip()), resolve(cluster_text.strip())
    if client == cluster:
        raise SpecError(f"--env {text!r}: client and cluster are the same env ({client.env_id}): that is no skew")
    name = "on-demand-" + hashlib.sha256(f"{client.env_id}{SEPARATOR}{cluster.env_id}".encode()).hexdigest()[:8]
    return SkewPair(name, client, cluster, f"--env {text}")


def pair_from_dict(data: dict, env_from_dict) -> SkewPair:
    """The inverse of ``SkewPair.as_dict()``."""
    return SkewPair(data["name"], env_from_dict(data["client"]), env_from_dict(data["cluster"]), data["question"])
