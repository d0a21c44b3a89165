"""The orchestrating side of skew recordings (picklematrix.envs.skew): a skew pair's cluster env, built and checked
like any env, and the identity of a cluster at an address, read from it.

Runs in nox's interpreter (standard library, ``packaging``, ``filelock``); what needs distributed runs in an
env's interpreter (``python -m picklematrix versions``).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

from picklematrix.envs import venvs
from picklematrix.envs.skew import SEPARATOR, ClusterIdentity, ClusterSource, SkewPair
from picklematrix.envs.spec import SpecError
from picklematrix.record import ondemand, recording, resultsdir


def cluster_source(pair: SkewPair, checkout: Path, results: Path, *, venvs: Path | None = None,
                   warn=print) -> ClusterSource:
    """The pair's cluster env, built or reused (the env's own matrix venv if it has one, else
    ``<checkout>/.nox/on-demand/<env>``, where the review and the bisect build envs too) and checked against its pins, as a :class:`ClusterSource` started from its
    interpreter. An env that cannot be built is recorded as the pair's ``.env-error`` and raised as a
    :class:`picklematrix.record.recording.RecordingError` naming the pair."""
    env = pair.cluster
    built = matrix_venv(env, checkout)
    where = built or (venvs or checkout / ".nox" / "on-demand") / ondemand.env_key(env)
    try:
        python = venvs.venv_python(where) if built else ondemand.make_venv(env, where)
        found = venvs.prepare(env, python, checkout, warn=warn)
    except venvs.EnvError as e:
        commit, machine = recording.recording_target(checkout)
        path = resultsdir.record_env_error(resultsdir.Target(results, commit, machine), pair.client, e.stage,
                                           f"the cluster env of skew pair {pair.name}: {e}", env_id=pair.env_id)
        raise recording.RecordingError(f"skew pair {pair.name}: its cluster env {env.env_id} cannot be built:\n{e}"
                                       f"\n(recorded in {path})") from None
    return ClusterSource(ClusterIdentity(found["python"], found["versions"]), python=python)


def matrix_venv(env, checkout: Path) -> Path | None:
    """The venv ``nox -s "matrix(<env id>)"`` built for ``env``, when there is one (nox names a session's venv
    after the session, every run of non-word characters a '-'); its pins are checked again before use (uv locks
    a venv while it installs, so a matrix session of that env running meanwhile is safe)."""
    where = checkout / ".nox" / ("matrix-" + re.sub(r"\W+", "-", env.env_id))
    return where if Path(venvs.venv_python(where)).exists() else None


def given_cluster(address: str, security: str | None = None) -> ClusterSource:
    """A cluster at ``address`` that someone else runs: its identity is read when an env records against it
    (:func:`probe`)."""
    if security is not None and not Path(security).is_file():
        raise recording.RecordingError(f"--scheduler-security {security}: no such file")
    return ClusterSource(None, address=address, security=str(Path(security).resolve()) if security else None)


def probe(source: ClusterSource, python: str, log=print) -> ClusterSource:
    """``source`` with its identity, as distributed's version check in ``python``'s env reports its workers
    (``python -m picklematrix versions --scheduler ...``); its mismatch warning is logged."""
    command = [python, "-m", "picklematrix", "versions", *source.harness_args()]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise recording.RecordingError(f"cannot read the versions of the cluster at {source.address} from "
                                       f"{python}: {(proc.stderr or proc.stdout).strip()[-2000:]}")
    report = json.loads(proc.stdout)
    if report.get("mismatch"):
        log(f"cluster at {source.address}: distributed's version check: "
            + " ".join(report["mismatch"].split())[:600])
    ident = report["identity"]
    return ClusterSource(ClusterIdentity(ident["python"], ident["versions"]), address=source.address,
                         security=source.security)


def pair_on_demand(text: str, resolve) -> SkewPair:
    """A skew pair named on the command line (``--env "<client>~<cluster>"``, each side an env id or a spec that
    ``resolve`` turns into an env), as the record id of a pair reads: recorded as a pair of matrix.toml is."""
    client_text, _, cluster_text = text.partition(SEPARATOR)
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
