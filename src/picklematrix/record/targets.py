"""What ``matrix`` records, from its arguments: the profile's envs and skew pairs, or the envs on demand that
``--env``/``--change`` name.

A :class:`Target` is known without uv or the network (nox lists one session per target when it loads the
noxfile: an id and the Python its venv is made with) and resolved to concrete pins only when it is recorded
(:meth:`Target.resolve`): ``latest`` means what the index holds when that session runs. Standard library and
``packaging``: runs in nox's interpreter.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

from picklematrix.envs import spec as envspec
from picklematrix.envs.ids import Env, parse_env_id
from picklematrix.envs.matrix import Matrix
from picklematrix.envs.skew import SkewPair, pair_on_demand, split_pair

CHANGE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)=(?:(?P<a>[^=.,][^=,]*?)\.\.)?(?P<b>[^=,.][^=,]*)$")


# The session of a profile's A/A copy of its baseline: matrix(aa-<baseline env id>).
AA_PREFIX = "aa-"


def _replicating() -> bool:
    """PICKLEMATRIX_REPLICATE asks every env's session for copies (the baseline's A/A pair among them)."""
    text = os.environ.get("PICKLEMATRIX_REPLICATE", "1")
    return text.isdigit() and int(text) > 1


class TargetError(ValueError):
    """Arguments that name no env that can be built; the message names the argument."""


@dataclass(frozen=True)
class Target:
    """One thing ``matrix`` records: an env, a skew pair, or a spec resolved when its session runs."""

    session_id: str  # the nox session's parameter: matrix(<session_id>)
    python: str  # the client env's Python (the session's venv)
    env: Env | SkewPair | None = None  # known as it is
    text: str | None = None  # else: a spec to resolve (envspec.parse's text, or a change to ``base``)
    base: Env | None = None
    as_of: str | None = None
    given_python: str | None = None  # --python: the Python of a requirements file or a spec that names none
    replica: int = 1  # 2: the A/A copy of ``env`` (a profile's ``aa_pair``), recorded under "<machine>-rep2"

    @property
    def is_pair(self) -> bool:
        return isinstance(self.env, SkewPair) or (self.text is not None and split_pair(self.text) is not None)

    def resolve(self, uv: str, needed: set | None = None) -> Env | SkewPair:
        """The env (or pair) to record, with concrete pins; raises envspec.SpecError naming the spec. ``needed``
        (``--pins needed``): the modules the chosen cases import (picklematrix.envs.spec.case_imports)."""
        if self.env is not None and (isinstance(self.env, SkewPair) or self.as_of is None):
            return self.env

        def one(text):
            return envspec.resolve(envspec.parse(text, base=self.base, python=self.given_python), as_of=self.as_of,
                                   uv=uv, needed=needed)

        if self.env is not None:  # an env id, as of a date: its whole dependency set of that day
            return envspec.resolve(envspec.from_env(self.env), as_of=self.as_of, uv=uv)
        if split_pair(self.text):
            return pair_on_demand(self.text, one)
        return one(self.text)


def session_id(text: str) -> str:
    """A nox session parameter for a spec, in the characters nox keeps as they are (word characters, ``.``,
    ``+``, ``-``): ``pydantic=2.10.6`` -> ``pydantic2.10.6``, a requirements file by its name, a pair as
    ``<client>-on-<cluster>``; a digest of the text is added where characters were dropped (``~=2.10``)."""
    pair = split_pair(text)
    if pair:
        return f"{session_id(pair[0])}-on-{session_id(pair[1])}"
    text = text.strip()
    path, rest = envspec.split_file(text)
    if path is not None:
        return re.sub(r"[^\w.+-]+", "-", path.name) + (f"-{session_id(rest)}" if rest else "")
    words = [w.replace("=", "", 1) for w in text.split()]
    kept = "-".join(re.sub(r"[^\w.+-]+", "", w) for w in words)
    if kept != "-".join(words):
        kept += "-" + hashlib.sha256(text.encode()).hexdigest()[:6]
    return kept


def _on_demand(text: str, base: Env, as_of: str | None, python: str | None = None) -> Target:
    """A target for ``--env TEXT``: an env id or a pair of env ids as it is, anything else resolved later."""
    pair = split_pair(text)
    if pair:
        ids = [parse_env_id(side) for side in pair]
        if ids[0] is not None and ids[0] == ids[1]:  # (specs are compared once resolved: pair_on_demand)
            raise TargetError(f"--env {text!r}: client and cluster are the same env ({ids[0].env_id}): that is "
                              "no skew")
        client = envspec.parse(pair[0], base=base, python=python).python if pair[0] else base.python
        return Target(session_id(text), client, text=text.strip(), base=base, as_of=as_of, given_python=python)
    request = envspec.parse(text, base=base, python=python)  # reads a requirements file; no uv
    env = parse_env_id(text.strip())
    if env is not None:
        return Target(env.env_id, env.python, env=env, as_of=as_of)
    return Target(session_id(text), request.python, text=text, base=base, as_of=as_of, given_python=python)


def change_texts(change: str) -> list[str]:
    """``NAME=B`` -> [``NAME=B``]; ``NAME=A..B`` -> [``NAME=A``, ``NAME=B``] (the change's two ends)."""
    m = CHANGE.match(change.strip())
    if not m:
        raise TargetError(f"--change {change!r}: write NAME=B or NAME=A..B (e.g. pydantic=2.10.6, "
                          "pydantic=2.8.2..2.9.2)")
    name = m.group("name")
    return [f"{name}={v}" for v in (m.group("a"), m.group("b")) if v]


def base_env(args, matrix: Matrix) -> Env:
    """``--base``, else the profile's baseline."""
    text = args.base or matrix.profile(args.profile or "default").baseline
    env = parse_env_id(text)
    if env is None:
        raise TargetError(f"--base {text!r} is not an env id (cp<v>-dask<v>-pyd<v>-py<v>)")
    return env


def longest_first(found: list[Target]) -> list[Target]:
    """``found`` in the order nox should start them, most work first, so that the run does not end waiting on a
    long one started last: a skew pair of two Python minors (most of its cells bring its cluster down and it is
    started again), then the other skew pairs (a cluster of their own to start), then the envs, each group in
    its own order."""
    def work(t: Target) -> int:
        if not t.is_pair:
            return 0
        if not isinstance(t.env, SkewPair):  # a pair on demand: its Pythons are known once it is resolved
            return 1
        return 2 if t.env.client.python != t.env.cluster.python else 1

    return sorted(found, key=work, reverse=True)


def targets(args, matrix: Matrix) -> list[Target]:
    """What ``matrix`` records for these arguments: the envs ``--env`` and ``--change`` name, else the profile's
    envs and skew pairs. Raises :class:`TargetError` or envspec.SpecError (a requirements file that is no
    requirements file, a spec that is no spec), MatrixError (an unknown profile)."""
    profile = matrix.profile(args.profile or "default")
    if not (args.env or args.change):
        out = [Target(e.env_id, e.python, env=e, as_of=args.as_of) for e in profile.envs]
        out += [Target(p.session_id, p.client.python, env=p) for p in profile.skew]
        if profile.aa_pair and not _replicating():
            # a session of its own (a venv of its own), so that nox runs it beside the others
            base = next(e for e in profile.envs if e.env_id == profile.baseline)
            out.append(Target(f"{AA_PREFIX}{base.env_id}", base.python, env=base, as_of=args.as_of, replica=2))
        return out
    base = base_env(args, matrix)
    python = getattr(args, "python", None)
    out = [_on_demand(text, base, args.as_of, python) for text in args.env or []]
    if args.change:  # NAME=B is the base with NAME at B, as --env NAME=B is
        out += [_on_demand(text, base, args.as_of) for text in change_texts(args.change)]
    unique = {}
    for t in out:
        unique.setdefault(t.session_id, t)
    return list(unique.values())
