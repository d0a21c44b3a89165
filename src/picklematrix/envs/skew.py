"""Client and cluster on different versions: skew pairs (matrix.toml ``[skew.NAME]``) and clusters the harness
did not start (``--scheduler ADDRESS``).

A recording normally computes on a cluster of its own env. With a :class:`ClusterSource` it computes elsewhere:

- ``python``: a cluster started from another env's interpreter with dask's own commands (``dask scheduler``,
  ``dask worker``; picklematrix.cluster.spawned), owned by the run (replaced when a cell breaks it);
- ``address``: a cluster someone else runs, never restarted (``security``: a TLS security file).

Either way the cluster's versions are read from it and join the client env's in the record's identity: the
record's env id is ``<client env id>~<cluster env id>`` and its asv name carries ``cluster-*`` requirements.
Runs in the orchestrating interpreter (standard library and ``packaging``).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

from picklematrix.versions import ABSENT

# The packages that make up an env's identity, as recorded (python apart).
PACKAGES = ("cloudpickle", "dask", "distributed", "pydantic")
SEPARATOR = "~"
SKEW_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# Read by picklematrix.record.asv_env when asv labels the env: the cluster's identity (JSON), so that asv's name and
# filters carry it.
ASV_CLUSTER_VAR = "PICKLEMATRIX_ASV_CLUSTER"


def short_python(version: str) -> str:
    """``3.11.7`` (or distributed's ``3.11.7.final.0``) -> ``3.11``."""
    return ".".join(str(version).split(".")[:2])


def env_id_of(python: str, versions: dict) -> str:
    """The env id an installed set of versions reads as (the matrix.toml scheme; distributed follows dask)."""
    from picklematrix.envs.matrix import Env

    v = {k: (versions.get(k) or ABSENT) for k in PACKAGES}
    dask = v["dask"] if v["dask"] == v["distributed"] else f"{v['dask']}+distributed{v['distributed']}"
    return Env(python=short_python(python), cloudpickle=v["cloudpickle"], dask=dask, pydantic=v["pydantic"]).env_id


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


def skew_label(env_id: str) -> str:
    """``client pyd2.9.2 / cluster pyd2.8.2``: a skew record's env id with only what differs spelled out (the
    env id as it is for an env of one side)."""
    client, cluster = split_env_id(env_id)
    if cluster is None:
        return env_id
    from picklematrix.envs.matrix import parse_env_id

    a, b = parse_env_id(client), parse_env_id(cluster)
    if a is None or b is None:  # (an env with extra pins: its id carries their digest)
        return f"client {client} / cluster {cluster}"
    short = {"cloudpickle": "cp", "dask": "dask", "pydantic": "pyd", "python": "py"}
    differ = [k for k in ("python", "cloudpickle", "dask", "pydantic") if getattr(a, k) != getattr(b, k)]
    if not differ:
        return f"client / cluster {client}"
    side = lambda env: " ".join(f"{short[k]}{getattr(env, k)}" for k in differ)  # noqa: E731
    return f"client {side(a)} / cluster {side(b)}"


@dataclass(frozen=True)
class ClusterSource:
    """Where a recording's cells compute, when not on a cluster of the client env's own (see the module doc)."""

    identity: ClusterIdentity | None  # None: a cluster at an address, not yet asked (picklematrix.record.skew_envs.probe)
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
        """What ``asv run`` needs: the cluster's identity (for picklematrix.record.asv_env) and TLS, if any."""
        return {ASV_CLUSTER_VAR: json.dumps(self.identity.as_dict()),
                **(tls_environ(self.security) if self.security else {})}


@dataclass(frozen=True)
class SkewPair:
    """A matrix.toml ``[skew.NAME]`` entry: the client (notebook) from one env, the cluster from another."""

    name: str
    client: object  # picklematrix.envs.matrix.Env
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

TLS_KEYS = {"ca_file": "DASK_DISTRIBUTED__COMM__TLS__CA_FILE",
            "cert": "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT",
            "key": "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY"}


class SecurityError(ValueError):
    """A ``--scheduler-security`` file is unusable; the message names it and the key."""


def tls_environ(path: str) -> dict:
    """dask's settings (DASK_* variables) for the TLS client of a ``--scheduler-security`` TOML file:
    ``ca_file``, ``cert`` and ``key``, paths relative to the file. Only paths are read here: the
    certificates' contents stay in their files, out of every result and log."""
    from pathlib import Path

    from picklematrix.envs.matrix import tomllib

    file = Path(path)
    try:
        data = tomllib.loads(file.read_text())
    except OSError as e:
        raise SecurityError(f"--scheduler-security {path}: cannot read it ({e.strerror or e})") from None
    except tomllib.TOMLDecodeError as e:
        raise SecurityError(f"--scheduler-security {path}: not valid TOML: {e}") from None
    unknown = sorted(set(data) - set(TLS_KEYS))
    if unknown:
        raise SecurityError(f"--scheduler-security {path}: unknown key(s) {', '.join(unknown)} "
                            f"(known: {', '.join(TLS_KEYS)})")
    out = {"DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True"}
    for key, var in TLS_KEYS.items():
        if key not in data:
            raise SecurityError(f"--scheduler-security {path}: {key} is missing (a path to the PEM file)")
        where = (file.parent / str(data[key])).resolve()
        if not where.is_file():
            raise SecurityError(f"--scheduler-security {path}: {key} = {data[key]!r}: no such file ({where})")
        out[var] = str(where)
    return out


# --------------------------------------------------------------------------- matrix.toml [skew.NAME]

PAIR_KEYS = ("client", "cluster", "question")


def load_pairs(table: dict, parse_env_id, bad) -> dict:
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
