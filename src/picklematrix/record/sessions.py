"""What ``matrix`` and ``review`` do with their parsed arguments, under nox and as ``picklematrix`` commands alike.

- ``matrix``: each target (picklematrix.record.targets) resolved, built and recorded: in the nox session's own
  venv (``./nox -s matrix``, one session per target, side by side), or one after another in the env's matrix venv
  or ``.nox/on-demand/`` (``picklematrix matrix`` from a checkout). ``--dry-run`` resolves and lists them, builds
  nothing.
- ``review``: envs the review names on demand (a spec, a requirements file, ``--change``, ``--scheduler``) are
  resolved and recorded first, then reviewed by their env ids in the tools venv (``picklematrix review``).

Runs in nox's interpreter: standard library, ``packaging`` and ``filelock``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from picklematrix.envs import spec as envspec
from picklematrix.envs import venvs
from picklematrix.envs.ids import Env
from picklematrix.envs.matrix import MatrixError, load_matrix
from picklematrix.envs.skew import SkewPair, split_pair
from picklematrix.locations import checkout_root
from picklematrix.record import fingerprint, ondemand, recording, skew_envs
from picklematrix.record.clusters import given_cluster
from picklematrix.record.shards import shard_envs
from picklematrix.record.targets import Target, TargetError, base_env, change_texts, targets
from picklematrix.run.corpus import case_digest

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
BAD_ENV = (envspec.SpecError, MatrixError, TargetError, venvs.EnvError)


def matrix_file() -> Path | None:
    """``$PICKLEMATRIX_MATRIX``, else the project's matrix.toml (picklematrix.envs.matrix.MATRIX_FILE)."""
    given = os.environ.get("PICKLEMATRIX_MATRIX")
    return Path(given) if given else None


def results_dir(args, checkout: Path) -> Path:
    return Path(args.results or checkout / "results").resolve()


def skip_reason(target: Target, args, every: list[str]) -> str | None:
    """Why a matrix session does not record its target for these arguments (nox then skips it), or None."""
    if args.shard and target.session_id not in shard_envs(every, *args.shard):
        k, n = args.shard
        return f"not in shard {k}/{n} of profile {args.profile or 'default'!r}"
    if args.scheduler and target.is_pair:
        return f"{target.session_id} brings its own cluster; --scheduler records the envs against {args.scheduler}"
    return None


def needed_modules(args) -> set | None:
    """``--pins needed``: the modules the chosen cases import (``--cases``/``--only``, else their variables);
    None for ``--pins all``."""
    if getattr(args, "pins", "all") != "needed":
        return None
    dirs = getattr(args, "cases", None) or [d for d in os.environ.get("PICKLEMATRIX_CASES", "").split(os.pathsep) if d]
    only = getattr(args, "only", None) or [g for g in os.environ.get("PICKLEMATRIX_ONLY", "").split(",") if g]
    return envspec.case_imports(dirs or None, only or None)


def warn_source(env, warn, seen: set | None = None) -> None:
    """Name each line of ``env``'s requirements file it does not install (file, line, package, why), once."""
    for line in envspec.skipped_lines(env) if isinstance(env, Env) else []:
        if seen is None or line not in seen:
            warn(line)
            if seen is not None:
                seen.add(line)


def record_target(target: Target, args, checkout: Path, *, python: str | None = None, tmp: Path | None = None,
                  log=print, warn=print) -> list[str]:
    """Resolve ``target`` and record it (``args.dry_run``: only say what it is); the record env ids.

    ``python``: the venv to build it in (a nox session's), else the env's matrix venv or ``.nox/on-demand/``.
    Raises envspec.SpecError (a spec that resolves to nothing), picklematrix.record.recording.RecordingError.
    """
    found = target.resolve(venvs.uv(), needed=needed_modules(args))
    warn_source(found, warn)
    if args.dry_run:
        log(f"{target.session_id}: {_describe(found)} (--dry-run: nothing built)")
        return [found.env_id]
    results = results_dir(args, checkout)
    with ondemand.selection(args.only, args.cases):
        if isinstance(found, SkewPair):
            log(f"{found.env_id}: {found.label}: {found.question}")
            cluster = skew_envs.cluster_source(found, checkout, results, warn=warn)
            client = found.client
        else:
            cluster = given_cluster(args.scheduler, args.scheduler_security) if args.scheduler else None
            client = found
        if python is None:
            where = skew_envs.matrix_venv(client, checkout) or checkout / ".nox" / "on-demand" / client.env_id
            python = ondemand.make_venv(client, where)
            tmp = where / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        replicas = [target.replica] if target.replica > 1 else range(1, recording.replicate_count() + 1)
        return [recording.record_env(client, python, checkout, results, tmp.resolve(), replica=replica,
                                     cluster=cluster, force=args.force, log=log, warn=warn)
                for replica in replicas]


def _describe(found) -> str:
    if isinstance(found, SkewPair):
        return f"client {found.client.env_id} on a cluster of {found.cluster.env_id}"
    pins = found.requirements()
    shown = " ".join(pins[:8]) + (f" and {len(pins) - 8} more pins" if len(pins) > 8 else "")
    return f"{found.env_id} ({shown}, python {found.python})"


def matrix_command(args) -> int:
    """``picklematrix matrix``: the targets of ``./nox -s matrix`` with the same arguments, one after another."""
    checkout = checkout_root() or (Path.cwd() if (Path.cwd() / "asv.conf.json").is_file() else None)
    if checkout is None:
        print("picklematrix matrix: records from a checkout of picklematrix (its asv.conf.json and benchmarks/): "
              "run it there, or use `picklematrix run` in an env you built", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        matrix = load_matrix(matrix_file())
        chosen = targets(args, matrix)
    except BAD_ENV as e:
        print(f"picklematrix matrix: nothing was built:\n{e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    recording.remember_run_commit(checkout)
    every = [t.session_id for t in chosen]
    failed = []
    for target in chosen:
        reason = skip_reason(target, args, every)
        if reason:
            print(f"{target.session_id}: skipped: {reason}")
            continue
        try:
            record_target(target, args, checkout)
        except BAD_ENV as e:
            print(f"picklematrix matrix: {target.session_id}: cannot resolve it:\n{e}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except recording.RecordingError as e:
            print(f"picklematrix matrix: {target.session_id}: {e}", file=sys.stderr)
            failed.append(target.session_id)
    if failed:
        print(f"picklematrix matrix: {len(failed)} of {len(chosen)} failed: {', '.join(failed)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


# --------------------------------------------------------------------------- the review's envs on demand


def recorded_env_ids(results: Path, corpus: str | None = None) -> set[str]:
    """The env ids with a complete record of the corpus ``corpus`` (a user's case folders' digest, None the
    built-in one) in ``results``, at any fingerprint (the review shows older ones, marked)."""
    from picklematrix import sidecar

    found = set()
    for path in Path(results).glob(f"*/*{sidecar.SUFFIX}"):
        try:
            sc = sidecar.read(path)
        except sidecar.SidecarError:
            continue
        if sc.complete and sc.head.get("env_id") and (sc.head.get("case_digest") or None) == corpus:
            found.add(sc.head["env_id"])
    return found


def _needs_recording(args, matrix) -> bool:
    """Whether the review names an env that may not be recorded yet (else it is the report's to pick)."""
    if any(v and split_pair(v) for v in (args.from_env, args.to_env)):
        return False  # records of a client on another cluster, by their env ids: reviewed as recorded
    if args.scheduler or args.change:
        return True
    matrix_ids = {e.env_id for e in matrix.product()}
    return any(v and (envspec.is_spec(v) or v in matrix_ids) for v in (args.from_env, args.to_env))


def review_envs(args, checkout: Path, *, log=print, warn=print) -> tuple[str, str] | None:
    """(from, to) env ids for a review whose envs are named on demand, each recorded if missing; None when the
    review names recorded envs only (it picks them itself). Raises TargetError, envspec.SpecError, MatrixError,
    venvs.EnvError for envs that cannot be resolved, RecordingError when recording against ``--scheduler`` fails."""
    matrix = load_matrix(matrix_file())
    if args.base_rev or args.head_rev or args.newest or not _needs_recording(args, matrix):
        return None
    uv = venvs.uv()
    base = base_env(args, matrix)

    needed, seen = needed_modules(args), set()

    def resolve(text: str, start: Env) -> Env:
        env = envspec.resolve(envspec.parse(text, base=start, python=args.python), as_of=args.as_of, uv=uv,
                              needed=needed)
        warn_source(env, warn, seen)
        return env

    if args.change:
        if args.to_env:
            raise TargetError(f"--change {args.change} names the env after the change: give it or --to, not both")
        ends = change_texts(args.change)
        start = resolve(args.from_env, base) if args.from_env else base
        env_from = resolve(ends[0], start) if len(ends) == 2 else start
        env_to = resolve(ends[-1], start)
    else:
        env_from = resolve(args.from_env, base) if args.from_env else base
        if not args.to_env:
            raise TargetError("say what to review against: --to ENV or --change NAME=[A..]B")
        env_to = resolve(args.to_env, env_from)
    results = results_dir(args, checkout)
    with ondemand.selection(None, getattr(args, "cases", None)):  # the corpus the review compares
        if args.scheduler:  # both envs as clients of the cluster at that address, reviewed by their records' ids
            source = given_cluster(args.scheduler, args.scheduler_security)
            return tuple(ondemand.record(env, checkout, results, log=log, warn=warn, cluster=source)
                         for env in (env_from, env_to))
        _record_for_review(args, checkout, results, env_from, env_to, log, warn)
    return env_from.env_id, env_to.env_id


def _record_for_review(args, checkout, results, env_from, env_to, log, warn) -> None:
    recorded = recorded_env_ids(results, case_digest(fingerprint.case_dirs_asked()))
    for env, given in ((env_from, args.from_env), (env_to, args.to_env)):
        # an env named by its id and already recorded (at any fingerprint) is reviewed as it is, marked by the
        # review when older; anything else is recorded (or found recorded) at the current fingerprint
        if env.env_id in recorded and given is not None and not envspec.is_spec(given):
            continue
        log(f"review: {given or args.change or 'the baseline'} is {env.env_id}; recording it if it is not yet")
        try:
            ondemand.record(env, checkout, results, log=log, warn=warn)
        except recording.RecordingError as e:
            # the review says what it can of an env that failed (an env error: "could not be built", status 2)
            warn(str(e))


# The review's options that only choose envs: once they are recorded, the review gets their ids instead.
CHOOSING = ("from_env", "to_env", "change", "base", "as_of", "scheduler", "scheduler_security")


def with_ids(args: argparse.Namespace, ids: tuple[str, str] | None) -> argparse.Namespace:
    """The review's arguments with its envs on demand replaced by their recorded ``ids`` (unchanged for None)."""
    if ids is None:
        return args
    out = argparse.Namespace(**vars(args))
    for dest in CHOOSING:
        setattr(out, dest, None)
    out.from_env, out.to_env = ids
    return out
