"""The orchestrating side of skew pairs (picklematrix.envs.skew): a pair's cluster env, built or reused and checked
like any env, as the cluster its recording computes on (a picklematrix.record.clusters.ClusterSource; a cluster at
an address is read there, :func:`picklematrix.record.clusters.probe`).

Runs in nox's interpreter (standard library, ``packaging``, ``filelock``); what needs distributed runs in an
env's interpreter (``python -m picklematrix versions``).
"""

from __future__ import annotations

import re
from pathlib import Path

from picklematrix.envs import venvs
from picklematrix.envs.skew import ClusterIdentity, SkewPair
from picklematrix.record import ondemand, recording, resultsdir
from picklematrix.record.clusters import ClusterSource


def cluster_source(pair: SkewPair, checkout: Path, results: Path, *, venv_root: Path | None = None,
                   warn=print) -> ClusterSource:
    """The pair's cluster env, built or reused (the env's own matrix venv if it has one, else
    ``<checkout>/.nox/on-demand/<env>``, where the review and the bisect build envs too) and checked against its pins, as a :class:`ClusterSource` started from its
    interpreter. An env that cannot be built is recorded as the pair's ``.env-error`` and raised as a
    :class:`picklematrix.record.recording.RecordingError` naming the pair."""
    env = pair.cluster
    built = matrix_venv(env, checkout)
    where = built or (venv_root or checkout / ".nox" / "on-demand") / ondemand.env_key(env)
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


