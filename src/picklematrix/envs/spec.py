"""Envs on demand: an env named by a spec, a change to another env, or a user's requirements file, resolved to
concrete pins (a :class:`picklematrix.envs.ids.Env`) with ``uv pip compile``.

Accepted wherever an env is built on demand (``nox -s matrix -- --env ...``, ``nox -s review -- --from ...``,
``nox -s bisect -- --base ...``):

- an env id from matrix.toml's scheme: ``cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11`` (taken as is);
- a spec, ``NAME=VALUE`` words: ``python=3.11 dask=2024.6.2 cloudpickle=3.0.0 pydantic=~=2.10``. VALUE is a
  version, a PEP 440 specifier (``~=2.10``, ``>=2.9,<2.10``; ``pydantic~=2.10`` works too), ``latest``, or
  ``absent`` (not installed). Unnamed: python is the default python (the profile baseline's), cloudpickle is
  what the resolver picks, pydantic is absent. dask and distributed move together: naming one pins both to one
  version. Any other package may be named too; it is installed at the version it resolves to;
- a change to a base env: ``--change pydantic=2.10.6`` (the base env's pins, with these replaced);
- a requirements file of the user's own environment (``pip freeze``, or a lock ``uv pip compile`` wrote):
  every ``name==version`` in it is installed, plus what the harness needs. A pin there that conflicts with the
  harness's own (``picklematrix.pins.ENV``) is an env error in which uv names both requirements.

``as_of`` (``--as-of 2024-10-01``) resolves as the package index stood that day (uv's ``--exclude-newer``), and
not only the packages named: the whole dependency set (tornado, toolz, ...) is resolved as of that day and
pinned as the env's extra pins, so that its install takes nothing newer. The harness's own pins
(``picklematrix.pins.ENV``, installed from their hashed lock) are exempt from the date and stay as they are.

An env is identified by what is installed in it: the axes' versions and its extra pins (the pins besides the
axes, from a requirements file, a spec naming other packages, or an as-of date's dependency set;
:meth:`picklematrix.envs.ids.Env.identity_extra`). The extra pins give the env id a ``+<digest>`` suffix and the
record's asv name an ``extra<digest>`` part, so two requirements files with the same axes but another tornado
are two envs with two records, and an env without extra pins keeps its matrix.toml id and record. The same
versions reached two ways are one env: names and versions are compared normalized, and a pin equal to the
harness's own (every env has it) is no extra pin.

Interpreters are never downloaded (UV_PYTHON_DOWNLOADS=never): they come from the machine (pyenv).
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from picklematrix import pins
from picklematrix.envs.ids import Env, parse_env_id
from picklematrix.locations import checkout_root
from picklematrix.versions import ABSENT, AXES, EXTRA_SEPARATOR, PACKAGES

DEFAULT_PYTHON = "3.11"
SPEC_OPS = ("~=", "==", "!=", "<=", ">=", "<", ">", "===")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ][0-9:]+Z?)?$")
# what a requirements file may not pin: the harness installs itself (the checkout, editable)
HARNESS = {"picklematrix"}


class SpecError(Exception):
    """A spec, change or requirements file cannot be turned into an env; the message names it and what to do."""


@dataclass
class Request:
    """What was asked for, before resolution: python (a minor version) and name -> specifier ('' = latest,
    ``absent`` = not installed). ``source`` names it in messages."""

    python: str
    wanted: dict
    source: str
    exact: bool = False  # every axis pinned exactly (an env id, a requirements file): no resolver needed


def python_minor(version: str, source: str) -> str:
    """``3.11`` of a spec's ``python=3.11.7``; ``source`` names where it was written, for the error."""
    parts = version.strip().split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts):
        raise SpecError(f"{source}: python={version!r}: give a version such as 3.11")
    return ".".join(parts[:2])


def spec_value(name: str, value: str, source: str) -> str:
    """A spec's VALUE as a specifier: ``2.9.2`` -> ``==2.9.2``, ``latest`` -> '', ``absent`` stays."""
    value = value.strip()
    if value in ("latest", ""):
        return ""
    if value == ABSENT:
        return ABSENT
    spec = value if value.startswith(SPEC_OPS) else f"=={value}"
    try:
        SpecifierSet(spec)
    except InvalidSpecifier:
        raise SpecError(f"{source}: {name}={value}: not a version, specifier (~=2.10, >=2.9,<2.10), 'latest' or "
                        "'absent'") from None
    return spec


def spec_words(text: str, source: str) -> dict:
    """``NAME=VALUE`` / ``NAME~=2.10`` words -> {canonical name: value text}."""
    out = {}
    for word in text.split():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(=?)(.*)$", word)
        if not m or not (m.group(2) or m.group(3).startswith(SPEC_OPS)):
            raise SpecError(f"{source}: {word!r} is not NAME=VALUE (e.g. pydantic=2.9.2, pydantic=~=2.10, "
                            "dask=latest, pydantic=absent)")
        out[canonicalize_name(m.group(1)) if m.group(1) != "python" else "python"] = m.group(3)
    return out


def is_file(text: str) -> bool:
    """Whether ``text`` names an existing file (a long spec is no file name, and no error either)."""
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


def from_env(env: Env) -> Request:
    wanted = {k: f"=={v}" for k, v in env.pins().items()}
    wanted.update({k: f"=={v}" for k, v in env.extra})
    if env.pydantic == ABSENT:
        wanted["pydantic"] = ABSENT
    return Request(env.python, wanted, env.env_id, exact=True)


def parse(text: str, *, python: str | None = None, base: Env | None = None) -> Request:
    """An env id, a requirements file (a path that exists), or a spec; ``base`` is what a change applies to."""
    text = text.strip()
    env = parse_env_id(text)
    if env is not None:
        return from_env(env)
    if is_file(text):
        return read_requirements(Path(text), python=python)
    source = f"env spec {text!r}"
    base_id, digest = text.rpartition(EXTRA_SEPARATOR)[::2] if EXTRA_SEPARATOR in text else (text, "")
    if digest and parse_env_id(base_id) is not None:
        raise SpecError(f"{source}: an env id with extra pins (+{digest}) names a recorded env but cannot be built "
                        "from its id: name what it was built from (its requirements file, spec or --as-of date); "
                        "a review or report takes the id as it is")
    request = from_env(base) if base is not None else Request(python and python_minor(python, source) or DEFAULT_PYTHON,
                                                               {"pydantic": ABSENT}, source)
    request.source, request.exact = source, False
    for name, value in spec_words(text, source).items():
        if name == "python":
            request.python = python_minor(value, source)
            continue
        spec = spec_value(name, value, source)
        request.wanted[name] = spec
        if name in ("dask", "distributed"):  # they move together: one version for both
            request.wanted["distributed" if name == "dask" else "dask"] = spec
    if python and base is None and "python=" not in text:
        request.python = python_minor(python, source)
    return request


def change(base: Env, text: str) -> Request:
    """``--change pydantic=2.10.6``: ``base`` with these replaced."""
    return parse(text, base=base)


def read_requirements(path: Path, *, python: str | None = None) -> Request:
    """A ``pip freeze`` or compiled lock: every ``name==version`` pinned; options, hashes, comments skipped.

    A line that is not ``name==version`` (an editable install, a URL, a range) cannot be reproduced from the
    index: it is refused, naming the file and line.
    """
    source = f"requirements file {path}"
    wanted: dict = {}
    text = path.read_text().replace("\\\n", " ")
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"\s--hash=\S+", "", raw.split(" #")[0]).strip()
        if not line or line.startswith("#") or line.startswith("--") and not line.startswith("-e"):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement as e:
            raise SpecError(f"{path}:{number}: {raw.strip()!r} is not a requirement ({e})") from None
        name = canonicalize_name(req.name)
        if name in HARNESS:
            continue
        pinned = [s for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
        if req.url or len(pinned) != 1 or len(req.specifier) != 1:
            raise SpecError(f"{path}:{number}: {raw.strip()!r} is not pinned to one version (name==version): "
                            "an env is rebuilt from the package index, so every line must name a version")
        wanted[name] = f"=={pinned[0].version}"
    missing = [n for n in ("dask", "distributed", "cloudpickle") if n not in wanted]
    if missing:
        raise SpecError(f"{path}: pins no {', '.join(missing)}: an env needs dask, distributed and cloudpickle "
                        "(it is a pip freeze of an environment dask runs in?)")
    wanted.setdefault("pydantic", ABSENT)
    return Request(python_minor(python or DEFAULT_PYTHON, source), wanted, source, exact=True)


def _compile(lines: list[str], python: str, as_of: str | None, uv: str, source: str) -> dict:
    """``uv pip compile`` of ``lines`` for ``python``: {canonical name: version}."""
    command = [uv, "pip", "compile", "-", "--python", python, "--quiet", "--no-header", "--no-annotate"]
    if as_of:
        # the harness's own pins (pins.ENV) are newer than most dates asked about: they are exempt
        command += ["--exclude-newer", as_of, *(a for r in pins.ENV for a in
                                                ("--exclude-newer-package", f"{Requirement(r).name}=2100-01-01"))]
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.setdefault("UV_PYTHON_PREFERENCE", "only-system")
    proc = subprocess.run(command, input="\n".join(lines) + "\n", capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SpecError(f"{source}: cannot be resolved for python {python}"
                        + (f" as of {as_of}" if as_of else "") + f" (uv pip compile):\n"
                        f"{(proc.stderr or proc.stdout).strip()[-5000:]}")
    found = {}
    for line in proc.stdout.splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, _, version = line.split(";")[0].strip().partition("==")
            found[canonicalize_name(name)] = version.strip()
    return found


def _declared() -> list[str]:
    """The checkout's declared dependencies besides the axes (what picklematrix.envs.venvs installs next to an env's
    pins); none outside a checkout."""
    from picklematrix.envs.venvs import harness_requirements

    checkout = checkout_root()
    try:
        return harness_requirements(checkout) if checkout is not None else []
    except (OSError, KeyError, ValueError):
        return []


def resolve(request: Request, *, as_of: str | None = None, uv: str = "uv") -> Env:
    """Concrete pins for ``request``: the env to build. Raises :class:`SpecError` naming the request."""
    if as_of is not None and not DATE.match(as_of):
        raise SpecError(f"--as-of {as_of!r}: give a date, YYYY-MM-DD")
    wanted = dict(request.wanted)
    if not request.exact or as_of:
        lines = [f"{name}{spec}" for name, spec in wanted.items() if spec != ABSENT]
        # resolved with what the harness installs beside them, so that the pins are installable together (as of
        # a date, its declared dependencies too: tomli on python 3.10 is then of that day as well)
        found = _compile([*lines, *pins.ENV, *(_declared() if as_of else [])], request.python, as_of, uv,
                         request.source)
        wanted = {name: (spec if spec == ABSENT else f"=={found[name]}") for name, spec in wanted.items()
                  if spec == ABSENT or name in found}
        for name in ("cloudpickle", "dask", "distributed"):
            if name not in wanted and name in found:
                wanted[name] = f"=={found[name]}"
        if as_of:
            # the whole dependency set as of that day: installed as pinned, nothing of today's index
            for name, version in found.items():
                if name not in wanted and name not in HARNESS:
                    wanted[name] = f"=={version}"
    version = {name: spec[2:] for name, spec in wanted.items() if spec != ABSENT}
    if version.get("dask") != version.get("distributed"):
        raise SpecError(f"{request.source}: dask {version.get('dask')} and distributed {version.get('distributed')}"
                        " differ: the matrix pins them to one version; name dask=<version>")
    for name in ("cloudpickle", "dask"):
        if name not in version:
            raise SpecError(f"{request.source}: no {name} version (name {name}=<version> or latest)")
    extra = tuple(sorted((name, v) for name, v in version.items() if name not in PACKAGES))
    return Env(python=request.python, cloudpickle=version["cloudpickle"], dask=version["dask"],
               pydantic=version.get("pydantic", ABSENT), extra=extra)


def resolve_text(text: str, *, base: Env | None = None, python: str | None = None, as_of: str | None = None,
                 uv: str = "uv") -> Env:
    """:func:`parse` then :func:`resolve`."""
    return resolve(parse(text, python=python, base=base), as_of=as_of, uv=uv)


def is_spec(text: str) -> bool:
    """Whether a ``--from``/``--to`` value needs resolving here: a spec of several words, a requirements file, or
    ``name=`` with a specifier or ``latest``. A recorded env's id, asv name or ``name=version`` is the review's own."""
    text = text.strip()
    if is_file(text):
        return True
    if ".." in text or parse_env_id(text) is not None:
        return False
    words = text.split()
    return len(words) > 1 or any(re.search(r"=(latest|~=|>=|<=|<|>|!=)", w) or "~=" in w for w in words)


__all__ = ["AXES", "Env", "Request", "SpecError", "change", "is_spec", "parse", "read_requirements", "resolve",
           "resolve_text"]
