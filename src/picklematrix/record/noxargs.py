"""What the noxfile's sessions make of their arguments: the envs on demand of ``nox -s matrix`` and the envs of
``nox -s review``, resolved (and recorded when missing) before the sessions run. Keeps the noxfile thin.

Runs in nox's interpreter: standard library, ``packaging`` and ``filelock``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from picklematrix import sidecar
from picklematrix.envs import skew, venvs
from picklematrix.envs import spec as envspec
from picklematrix.envs.matrix import MatrixError
from picklematrix.record import ondemand, recording, skew_envs

# Envs on demand are resolved once, when nox first loads the noxfile (nox -j runs each session in a nox process
# of its own, which loads it again: the environment hands them the first resolution, so that "latest" means one
# thing in one run).
ON_DEMAND_VAR = "_PICKLEMATRIX_ON_DEMAND"


class ArgsError(Exception):
    """Arguments that name no env that can be built; ``status`` is the session's exit status (2: bad input)."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


def posargs(argv: list[str]) -> list[str]:
    """What follows ``--`` on nox's command line."""
    return argv[argv.index("--") + 1:] if "--" in argv else []


def option(args: list[str], name: str, many: bool = False):
    """The value of ``name`` (``--opt VALUE`` or ``--opt=VALUE``) in ``args``: the last one, or all with ``many``."""
    found = [args[i + 1] for i, a in enumerate(args[:-1]) if a == name]
    found += [a.split("=", 1)[1] for a in args if a.startswith(name + "=")]
    return found if many else (found[-1] if found else None)


def without(args: list[str], drop: set) -> list[str]:
    """``args`` without the options in ``drop`` (``--opt VALUE`` and ``--opt=VALUE``)."""
    kept, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in drop:
            skip = True
            continue
        if a.split("=", 1)[0] in drop:
            continue
        kept.append(a)
    return kept


def matrix_selected(argv: list[str]) -> bool:
    """Whether this nox invocation runs the matrix session (the default session, or -s/--session matrix...)."""
    argv = argv[1:argv.index("--")] if "--" in argv else argv[1:]
    named = [a for i, a in enumerate(argv) if i and argv[i - 1] in ("-s", "--session", "--sessions", "-e")]
    named += [a.split("=", 1)[1] for a in argv if a.startswith(("--session=", "--sessions="))]
    return not named or any(n.startswith("matrix") for n in named)


def on_demand(args: list[str], matrix, profile: str) -> list:
    """The envs (and client/cluster pairs) ``--env``/``--change`` ask the matrix session for, resolved; [] for the
    profile's. Raises :class:`ArgsError` naming what cannot be resolved."""
    if ON_DEMAND_VAR in os.environ:
        return [skew_envs.pair_from_dict(d, ondemand.env_from_dict) if "client" in d else ondemand.env_from_dict(d)
                for d in json.loads(os.environ[ON_DEMAND_VAR])]
    specs, changes = option(args, "--env", many=True), option(args, "--change", many=True)
    if not specs and not changes:
        return []
    as_of = option(args, "--as-of")
    try:
        base = matrix.env(option(args, "--base") or matrix.profile(profile).baseline)
        one = lambda text: envspec.resolve(envspec.parse(text, base=base), as_of=as_of, uv=venvs.uv())  # noqa: E731
        # "<client>~<cluster>": a client/cluster skew pair on demand (as a pair's record id reads)
        resolved = [skew_envs.pair_on_demand(s, one) if skew.SEPARATOR in s else one(s) for s in specs]
        resolved += [envspec.resolve(envspec.change(base, c), as_of=as_of, uv=venvs.uv()) for c in changes]
    except (envspec.SpecError, MatrixError, venvs.EnvError) as e:
        raise ArgsError(f"picklematrix: cannot resolve the env asked for, nothing was built:\n{e}") from None
    os.environ[ON_DEMAND_VAR] = json.dumps([e.as_dict() for e in resolved])
    return resolved


def recorded_env_ids(results: Path) -> set[str]:
    """The env ids with a complete record in ``results``, at any fingerprint (the review shows older ones, marked)."""
    found = set()
    for path in Path(results).glob(f"*/*{sidecar.SUFFIX}"):
        try:
            sc = sidecar.read(path)
        except sidecar.SidecarError:
            continue
        if sc.complete and sc.head.get("env_id"):
            found.add(sc.head["env_id"])
    return found


def review_envs(args: list[str], matrix, profile: str, checkout: Path, results: Path, *, log=print,
                warn=print) -> list[str]:
    """The review's arguments with every env on demand resolved, recorded if missing, and named by its env id.

    Raises :class:`ArgsError` (status 2) for envs that cannot be resolved, and
    :class:`picklematrix.record.recording.RecordingError` when recording against ``--scheduler`` fails."""
    change = option(args, "--change")
    frm, to, as_of = option(args, "--from"), option(args, "--to"), option(args, "--as-of")
    scheduler = option(args, "--scheduler")
    on_demand_change = change is not None and ".." not in change
    if any(v and skew.SEPARATOR in v for v in (frm, to)):
        return args  # records of a client on another cluster, by their env ids: reviewed as recorded
    matrix_ids = {e.env_id for e in matrix.product()}
    if not scheduler and not on_demand_change and not any(v and (envspec.is_spec(v) or v in matrix_ids)
                                                          for v in (frm, to)):
        return args  # the review's own forms
    try:
        base = matrix.env(option(args, "--base") or matrix.profile(profile).baseline)
        env_from = envspec.resolve(envspec.parse(frm, base=base), as_of=as_of, uv=venvs.uv()) if frm else base
        if on_demand_change:
            env_to = envspec.resolve(envspec.change(env_from, change), as_of=as_of, uv=venvs.uv())
        else:
            env_to = envspec.resolve(envspec.parse(to, base=env_from), as_of=as_of, uv=venvs.uv()) if to else None
    except (envspec.SpecError, MatrixError, venvs.EnvError) as e:
        raise ArgsError(f"picklematrix: cannot resolve the env asked for:\n{e}") from None
    if env_to is None:
        raise ArgsError("say what to review against: --to ENV or --change NAME=VERSION")
    if scheduler:  # both envs as clients of the cluster at that address, reviewed by their records' ids
        source = skew_envs.given_cluster(scheduler, option(args, "--scheduler-security"))
        ids = [ondemand.record(env, checkout, results, log=log, warn=warn, cluster=source)
               for env in (env_from, env_to)]
        return ["--from", ids[0], "--to", ids[1], *without(args, {"--from", "--to", "--change", "--as-of", "--base",
                                                                 "--scheduler", "--scheduler-security"})]
    recorded = recorded_env_ids(results)
    for env, given in ((env_from, frm), (env_to, to or change)):
        # an env named by a spec is recorded (or found recorded) at the current fingerprint; a plain env id
        # already recorded under an older one is reviewed as it is, marked by the review
        if env.env_id in recorded and given is not None and not envspec.is_spec(given) and not on_demand_change:
            continue
        log(f"review: {given or 'the baseline'} is {env.env_id}; recording it if it is not yet")
        try:
            ondemand.record(env, checkout, results, log=log, warn=warn)
        except recording.RecordingError as e:
            # the review says what it can of an env that failed (an env error: "could not be built", status 2)
            warn(str(e))
    return ["--from", env_from.env_id, "--to", env_to.env_id,
            *without(args, {"--from", "--to", "--change", "--as-of", "--base"})]
