"""matrix.toml: the environments as data. Parsing, validation, axes, exclusions, profiles and their skew pairs.

Runs in the orchestrating environment (nox, report, review), standard library
plus ``packaging``. Nothing is built from an invalid file: every problem is
reported with the entry that has it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from packaging.specifiers import InvalidSpecifier
from packaging.version import InvalidVersion, Version

# ABSENT: the one spelling of "not installed" in files people write and read; exclusions are
# version conditions exactly as case files write them.
from picklematrix.envs.ids import Env, parse_env_id
from picklematrix.envs.skew import load_pairs, skew_pairs
from picklematrix.locations import builtin_or_expected, builtin_path
from picklematrix.versions import ABSENT, AXES, version_condition, version_matches

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

# The project's matrix: the checkout's matrix.toml, or the copy a wheel carries (locations.builtin_path).
MATRIX_FILE = builtin_or_expected("matrix.toml")


class MatrixError(Exception):
    """matrix.toml is unusable; the message names every bad entry."""


@dataclass
class Exclusion:
    conditions: dict
    reason: str

    def matches(self, env: Env) -> bool:
        """All of the entry's conditions hold for ``env`` (``pydantic = "absent"`` matches an env without it)."""
        return all(version_matches(condition, None if getattr(env, axis) == ABSENT else getattr(env, axis))
                   for axis, condition in self.conditions.items())


@dataclass
class Profile:
    name: str
    description: str
    baseline: str
    envs: list
    # client/cluster skew pairs (picklematrix.envs.skew.SkewPair) the profile records besides its envs
    skew: list = field(default_factory=list)
    # record the baseline twice: an A/A pair (the copy under machine "<machine>-rep2"), the noise every review's
    # timing verdict is tested against
    aa_pair: bool = False


@dataclass
class Matrix:
    axes: dict
    exclusions: list
    profiles: dict
    path: str = str(MATRIX_FILE)

    def excluded(self, env: Env) -> Exclusion | None:
        return next((x for x in self.exclusions if x.matches(env)), None)

    def product(self) -> list[Env]:
        envs = [Env(python=p, cloudpickle=c, dask=d, pydantic=y)
                for p, c, d, y in itertools.product(*(self.axes[a] for a in AXES))]
        return [e for e in envs if self.excluded(e) is None]

    def profile(self, name: str) -> Profile:
        if name not in self.profiles:
            raise MatrixError(f"{self.path}: unknown profile {name!r} (known: {', '.join(self.profiles)})")
        return self.profiles[name]

    def env(self, env_id: str) -> Env:
        env = parse_env_id(env_id)
        if env is None:
            raise MatrixError(f"{env_id!r} is not an environment id (cp<v>-dask<v>-pyd<v>-py<v>)")
        return env


def load_matrix(path: str | Path | None = None) -> Matrix:
    """Read and validate a matrix file (default: the project's own, :data:`MATRIX_FILE`).

    Raises MatrixError naming every bad entry; nothing is returned from an invalid file.
    """
    if path is None:
        if builtin_path("matrix.toml") is None:
            raise MatrixError(f"the built-in matrix is not installed (looked for {MATRIX_FILE}, and for matrix.toml "
                              "in a checkout): reinstall picklematrix, or name a matrix file")
        path = MATRIX_FILE
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise MatrixError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise MatrixError(f"{path}: not valid TOML: {e}") from None
    problems: list[str] = []
    where = str(path)

    def bad(msg):
        problems.append(f"{where}: {msg}")

    for key in data:
        if key == "common":
            bad("[common] is no longer read: the harness's own packages are pinned in src/picklematrix/pins.py "
                "(ENV); delete the table")
        elif key not in ("axes", "exclude", "profiles", "skew"):
            bad(f"unknown top-level table [{key}] (known: axes, exclude, profiles, skew)")

    axes = data.get("axes", {})
    for axis in axes:
        if axis not in AXES:
            bad(f"[axes] unknown axis {axis!r} (known: {', '.join(AXES)}; distributed always follows dask)")
    for axis in AXES:
        values = axes.get(axis)
        if not isinstance(values, list) or not values:
            bad(f"[axes] {axis} must be a non-empty list of versions")
            continue
        for v in values:
            if axis == "pydantic" and v == ABSENT:
                continue
            if not isinstance(v, str) or "-" in v:
                bad(f"[axes] {axis}: {v!r} is not a version string")
                continue
            try:
                Version(v)
            except InvalidVersion:
                bad(f"[axes] {axis}: {v!r} is not a valid version")
        if len(set(map(str, values))) != len(values):
            bad(f"[axes] {axis} lists a version twice")

    exclusions = []
    for i, entry in enumerate(data.get("exclude", [])):
        label = f"[[exclude]] #{i + 1}"
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            bad(f"{label} needs a 'reason'")
        conditions = {k: v for k, v in entry.items() if k != "reason"}
        if not conditions:
            bad(f"{label} has no conditions")
        for k, v in conditions.items():
            if k not in AXES:
                bad(f"{label}: unknown axis {k!r}")
                continue
            if k == "pydantic" and v == ABSENT:
                continue
            try:
                version_condition(v)  # a TOML number (python = 3.10, read as 3.1) is refused here, not misread
            except InvalidSpecifier as e:
                bad(f"{label}: {k} = {v!r}: {e}")
        exclusions.append(Exclusion(conditions, reason or ""))


    matrix = Matrix(axes=axes, exclusions=exclusions, profiles={}, path=where)
    if problems:
        raise MatrixError("\n".join(problems))

    pairs = load_pairs(data.get("skew", {}), bad)
    profiles_data = data.get("profiles", {})
    if "default" not in profiles_data:
        bad("[profiles] needs a 'default' profile")
    for name, prof in profiles_data.items():
        label = f"[profiles.{name}]"
        for k in prof:
            if k not in ("description", "baseline", "envs", "product", "skew", "aa_pair"):
                bad(f"{label}: unknown key {k!r}")
        if prof.get("product"):
            envs = matrix.product()
        else:
            ids = prof.get("envs")
            if not isinstance(ids, list) or not ids:
                bad(f"{label} needs 'envs' (a list of env ids) or product = true")
                continue
            envs = []
            seen = set()
            for env_id in ids:
                if env_id in seen:
                    bad(f"{label}: duplicate env id {env_id!r}")
                    continue
                seen.add(env_id)
                env = parse_env_id(env_id) if isinstance(env_id, str) else None
                if env is None:
                    bad(f"{label}: {env_id!r} is not an env id like cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11")
                    continue
                for axis in AXES:
                    if getattr(env, axis) not in axes.get(axis, []):
                        bad(f"{label}: {env_id}: {axis} {getattr(env, axis)} is not on the {axis} axis "
                            f"({', '.join(axes.get(axis, []))})")
                excl = matrix.excluded(env)
                if excl is not None:
                    bad(f"{label}: {env_id} is excluded: {excl.reason}")
                envs.append(env)
        aa_pair = prof.get("aa_pair", False)
        if not isinstance(aa_pair, bool):
            bad(f"{label}: aa_pair = {aa_pair!r}: write true (record the baseline's A/A pair) or false")
        baseline = prof.get("baseline")
        if baseline is None:
            bad(f"{label} needs a 'baseline' env id (the A of every A/B review)")
        elif baseline not in {e.env_id for e in envs}:
            bad(f"{label}: baseline {baseline!r} is not one of the profile's envs")
        matrix.profiles[name] = Profile(name, prof.get("description", ""), baseline or "", envs,
                                        skew_pairs(pairs, prof.get("skew", []), label, bad), aa_pair is True)
    if problems:
        raise MatrixError("\n".join(problems))
    return matrix
