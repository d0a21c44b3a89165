"""matrix.toml: the environments as data. Parsing, validation, profiles, env ids.

Runs in the orchestrating environment (nox, report, review), standard library
plus ``packaging``. Nothing is built from an invalid file: every problem is
reported with the entry that has it.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

from packaging.specifiers import InvalidSpecifier
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

# ABSENT: the one spelling of "not installed" in files people write and read; exclusions are
# version conditions exactly as case files write them.
from picklematrix.locations import builtin_or_expected, builtin_path
from picklematrix.versions import ABSENT, version_condition, version_matches

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

# The project's matrix: the checkout's matrix.toml, or the copy a wheel carries (locations.builtin_path).
MATRIX_FILE = builtin_or_expected("matrix.toml")
AXES = ("python", "cloudpickle", "dask", "pydantic")
ENV_ID = re.compile(r"^cp(?P<cloudpickle>[^-]+)-dask(?P<dask>[^-]+)-pyd(?P<pydantic>[^-]+)-py(?P<python>[^-+~]+)$")


class MatrixError(Exception):
    """matrix.toml is unusable; the message names every bad entry."""


@dataclass(frozen=True)
class Env:
    python: str
    cloudpickle: str
    dask: str
    pydantic: str
    # Pins besides the axes, as sorted ("name", "version") pairs: an env on demand from a user's requirements
    # file, a spec naming other packages, or an as-of date's whole dependency set (picklematrix.envs.spec) installs
    # them. Part of the env's identity (:meth:`identity_extra`): its env id and record name carry their digest.
    extra: tuple = ()

    @property
    def env_id(self) -> str:
        """``cp<v>-dask<v>-pyd<v>-py<v>``, and ``+<digest>`` of its extra pins when it has any."""
        digest = extra_digest(self.identity_extra())
        return f"cp{self.cloudpickle}-dask{self.dask}-pyd{self.pydantic}-py{self.python}" + (
            f"{EXTRA_SEPARATOR}{digest}" if digest else "")

    def identity_extra(self) -> dict:
        """The extra pins that make this env another env: :func:`identity_extra` of ``extra``."""
        return identity_extra(self.extra)

    def pins(self) -> dict:
        """Distribution -> exact version (pydantic left out when absent)."""
        out = {"cloudpickle": self.cloudpickle, "dask": self.dask, "distributed": self.dask}
        if self.pydantic != ABSENT:
            out["pydantic"] = self.pydantic
        return out

    def requirements(self) -> list[str]:
        return [f"{name}=={version}" for name, version in [*self.pins().items(), *self.extra]]

    def as_dict(self) -> dict:
        out = {"env_id": self.env_id, "python": self.python, "cloudpickle": self.cloudpickle,
               "dask": self.dask, "distributed": self.dask, "pydantic": self.pydantic}
        if self.extra:
            out["extra"] = dict(self.extra)
        return out


# --------------------------------------------------------------------------- identity beyond the axes
# An env's extra pins are part of its identity: two requirements files with the same axes but another tornado
# are two envs, two records. The identity is a digest of the extra pins (names canonical, versions normalized),
# leaving out pins equal to what every env gets anyway (picklematrix.pins.ENV): the same versions reached two
# ways are one env. The env's venv names them in EXTRA_FILE; VERSIONS_PROBE reports their installed versions
# and the digest of those (key EXTRA_KEY), which asv_requirements makes part of asv's env name and filters.
EXTRA_SEPARATOR = "+"
EXTRA_KEY = "extra"
EXTRA_FILE = "picklematrix-extra.json"


@functools.lru_cache(maxsize=None)
def harness_pins() -> dict:
    """{canonical name: version} of what every env installs besides its axes (picklematrix.pins.ENV)."""
    from packaging.requirements import Requirement

    from picklematrix import pins

    out = {}
    for text in pins.ENV:
        req = Requirement(text)
        out[canonicalize_name(req.name)] = next(iter(req.specifier)).version
    return dict(out)


def identity_extra(extra) -> dict:
    """{canonical name: version} of ``extra`` (pairs or a dict), without the axes and pins every env has."""
    harness, axes = harness_pins(), {*AXES, "distributed"}
    out = {}
    for name, version in (extra.items() if isinstance(extra, dict) else extra):
        name = canonicalize_name(name)
        if name in axes or (version is not None and harness.get(name) == version):
            continue
        out[name] = version
    return dict(sorted(out.items()))


def extra_digest(extra: dict):
    """8 hex digits naming a set of extra pins, or None for none. Also run inside envs (VERSIONS_PROBE)."""
    import hashlib
    import json

    from packaging.utils import canonicalize_name, canonicalize_version

    pairs = sorted([canonicalize_name(n), canonicalize_version(v) if v else "absent"] for n, v in extra.items())
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:8] if pairs else None


def extras_match(recorded: dict, wanted: dict) -> bool:
    """Whether a record's extra pins (installed versions, from its sidecar) are ``wanted`` (an env's
    :meth:`Env.identity_extra`): same names, equal versions."""
    recorded = identity_extra(recorded or {})
    if set(recorded) != set(wanted):
        return False
    try:
        return all(Version(recorded[n]) == Version(wanted[n]) for n in wanted)
    except (InvalidVersion, TypeError):
        return recorded == wanted


def installed_extra(prefix: str | None = None) -> dict:
    """{name: installed version} of the extra pins this env's venv names (EXTRA_FILE); {} for none.
    What ``picklematrix run`` records in the sidecar head (``extra``)."""
    import importlib.metadata
    import json
    import sys

    try:
        names = json.loads((Path(prefix or sys.prefix) / EXTRA_FILE).read_text())
    except (OSError, ValueError):
        return {}
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


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


# Run with an environment's interpreter: its installed versions as JSON, without importing them; with the
# extra pins its venv names (EXTRA_FILE), their versions and digest (the same extra_digest as here).
VERSIONS_PROBE = (
    "import importlib.metadata as m, json, os, platform, sys\n"
    "def v(n):\n"
    "    try:\n"
    "        return m.version(n)\n"
    "    except m.PackageNotFoundError:\n"
    "        return None\n"
    + inspect.getsource(extra_digest) +
    "out = {'python': platform.python_version(), 'versions': "
    "{n: v(n) for n in ('cloudpickle', 'dask', 'distributed', 'pydantic')}}\n"
    f"path = os.path.join(sys.prefix, {EXTRA_FILE!r})\n"
    "if os.path.exists(path):\n"
    "    out['extra'] = {n: v(n) for n in json.load(open(path))}\n"
    f"    out['versions'][{EXTRA_KEY!r}] = extra_digest(out['extra'])\n"
    "print(json.dumps(out))"
)


def asv_env_name(python_version: str, versions: dict) -> str:
    """The name asv gives an environment labelled by installed versions (see asv_env.py).

    Mirrors ``asv.environment.get_env_name("picklematrix", python, requirements, {})``;
    tests check the two agree on real result files.
    """
    parts = ["picklematrix", f"py{python_version}"]
    for name, version in sorted(asv_requirements(versions).items()):
        parts.append(f"{name}{version}")
    return "-".join(parts)


def asv_requirements(versions: dict) -> dict:
    """Installed versions as asv "requirements": shown as filters in the asv report. With extra pins (the
    probe's ``extra`` digest), ``extra: <digest>`` too: two envs that differ there are two asv envs."""
    out = {name: (versions.get(name) or ABSENT) for name in ("cloudpickle", "dask", "distributed", "pydantic")}
    if versions.get(EXTRA_KEY):
        out[EXTRA_KEY] = versions[EXTRA_KEY]
    return out


def parse_env_id(env_id: str) -> Env | None:
    """The Env an id names; None for anything else (an id with ``+<digest>`` names extra pins it cannot give)."""
    m = ENV_ID.match(env_id)
    return Env(**m.groupdict()) if m else None


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

    from picklematrix.envs.skew import load_pairs, skew_pairs

    pairs = load_pairs(data.get("skew", {}), parse_env_id, bad)
    profiles_data = data.get("profiles", {})
    if "default" not in profiles_data:
        bad("[profiles] needs a 'default' profile")
    for name, prof in profiles_data.items():
        label = f"[profiles.{name}]"
        for k in prof:
            if k not in ("description", "baseline", "envs", "product", "skew"):
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
        baseline = prof.get("baseline")
        if baseline is None:
            bad(f"{label} needs a 'baseline' env id (the A of every A/B review)")
        elif baseline not in {e.env_id for e in envs}:
            bad(f"{label}: baseline {baseline!r} is not one of the profile's envs")
        matrix.profiles[name] = Profile(name, prof.get("description", ""), baseline or "", envs,
                                        skew_pairs(pairs, prof.get("skew", []), label, bad))
    if problems:
        raise MatrixError("\n".join(problems))
    return matrix
