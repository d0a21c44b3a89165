"""Envs and their ids: an Env names the versions it pins, and its extra pins are part of its identity.

The id scheme itself (``cp<v>-dask<v>-pyd<v>-py<v>``) and the function from installed versions to an id are
picklematrix.versions'. Also here: the probe that reads an env's installed versions, and asv's name for an env.
Standard library plus ``packaging``: runs in nox's interpreter and inside envs (``extra_digest``).
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from picklematrix.versions import (
    ABSENT,
    AXES,
    ENV_ID,
    EXTRA_FILE,
    EXTRA_KEY,
    PACKAGES,
    format_env_id,
)


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
    # Where its pins came from, when from a requirements file (:class:`Source`): the file and the lines it could
    # not install (an approximate env). Not part of its identity (what is installed is): not compared.
    source: Source | None = field(default=None, compare=False)

    @property
    def env_id(self) -> str:
        """``cp<v>-dask<v>-pyd<v>-py<v>``, and ``+<digest>`` of its extra pins when it has any."""
        return format_env_id(self.python, self.cloudpickle, self.dask, self.pydantic,
                             extra_digest(self.identity_extra()))

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

    @property
    def skipped(self) -> tuple:
        """The lines of its requirements file it does not install (:class:`Skipped`); () when it installs all."""
        return self.source.skipped if self.source else ()

    def as_dict(self) -> dict:
        out = {"env_id": self.env_id, "python": self.python, "cloudpickle": self.cloudpickle,
               "dask": self.dask, "distributed": self.dask, "pydantic": self.pydantic}
        if self.extra:
            out["extra"] = dict(self.extra)
        if self.source is not None:
            out["requirements"] = self.source.as_dict()
        return out


@dataclass(frozen=True)
class Skipped:
    """A line of a requirements file that an env does not install, and why (picklematrix.envs.spec)."""

    file: str
    line: int  # 1-based; 0 when it is not known
    package: str  # its canonical name, or the line's text when it names none
    reason: str
    text: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.package}: {self.reason}" + (
            f" ({self.text})" if self.text and self.text != self.package else "")

    def as_dict(self) -> dict:
        return {"line": self.line, "package": self.package, "reason": self.reason, "text": self.text}


@dataclass(frozen=True)
class Source:
    """The requirements file an env was read from: its path, its content's digest, the lines not installed."""

    file: str
    sha256: str
    skipped: tuple = ()  # of Skipped
    notes: tuple = ()  # what else became of its lines (a version taken from a file name): for the console only
    pins: str = "all"  # "needed": only the closure the cases need (--pins needed), the rest left out
    left_out: tuple = ()  # of names, with pins="needed"

    def as_dict(self) -> dict:
        """As the env's record keeps it (the sidecar head's ``requirements``, docs/results.md)."""
        return {"file": self.file, "sha256": self.sha256, "skipped": [s.as_dict() for s in self.skipped],
                "pins": self.pins, "left_out": list(self.left_out)}

    @classmethod
    def from_dict(cls, data: dict) -> Source:
        return cls(data["file"], data.get("sha256") or "",
                   tuple(Skipped(data["file"], s.get("line", 0), s.get("package", "?"), s.get("reason", ""),
                                 s.get("text", "")) for s in data.get("skipped") or []),
                   pins=data.get("pins") or "all", left_out=tuple(data.get("left_out") or ()))


# --------------------------------------------------------------------------- identity beyond the axes
# An env's extra pins are part of its identity: two requirements files with the same axes but another tornado
# are two envs, two records. The identity is a digest of the extra pins (names canonical, versions normalized),
# leaving out pins equal to what every env gets anyway (picklematrix.pins.ENV): the same versions reached two
# ways are one env. The env's venv names them in EXTRA_FILE; VERSIONS_PROBE reports their installed versions
# and the digest of those (key EXTRA_KEY), which asv_requirements makes part of asv's env name and filters.
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
    f"{{n: v(n) for n in {PACKAGES!r}}}}}\n"
    f"path = os.path.join(sys.prefix, {EXTRA_FILE!r})\n"
    "if os.path.exists(path):\n"
    "    out['extra'] = {n: v(n) for n in json.load(open(path))}\n"
    f"    out['versions'][{EXTRA_KEY!r}] = extra_digest(out['extra'])\n"
    "print(json.dumps(out))"
)


# A record's corpus is part of its identity: the built-in corpus names no corpus (its records keep their names),
# a user's case folders are named by their content digest (picklematrix.run.corpus.case_digest), as an asv
# requirement ``cases`` (CORPUS_KEY) in the env's name: ``picklematrix-py3.11.7-cases1a2b3c4d-cloudpickle...``.
# The recording hands the digest to asv's env plugin in CORPUS_VAR. So a run of another corpus never replaces a
# record: the built-in corpus and a user's, recorded in one checkout, are two records.
CORPUS_KEY = "cases"
CORPUS_VAR = "PICKLEMATRIX_CORPUS_DIGEST"
CORPUS_DIGITS = 8


def corpus_versions(versions: dict, case_digest: str | None) -> dict:
    """``versions`` with the corpus a record ran (its case folders' digest, None for the built-in corpus) as the
    ``cases`` requirement its asv name carries."""
    return {**versions, CORPUS_KEY: case_digest[:CORPUS_DIGITS]} if case_digest else dict(versions)


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
    probe's ``extra`` digest), ``extra: <digest>`` too: two envs that differ there are two asv envs; with a user's
    corpus (:func:`corpus_versions`), ``cases: <digest>``: two corpora are two records."""
    out = {name: (versions.get(name) or ABSENT) for name in PACKAGES}
    for key in (EXTRA_KEY, CORPUS_KEY):
        if versions.get(key):
            out[key] = versions[key]
    return out


def parse_env_id(env_id: str) -> Env | None:
    """The Env an id names; None for anything else (an id with ``+<digest>`` names extra pins it cannot give)."""
    m = ENV_ID.match(env_id)
    return Env(**m.groupdict()) if m else None
