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
- a requirements file of the user's own environment as it comes (``pip freeze``, a lock ``uv pip compile``
  wrote), spec words beside it if any (``freeze.txt python=3.10``): every ``name==version`` in it is installed
  (``--pins needed``: only those the env needs), plus what the harness needs. A line that cannot be reproduced
  from the index (an editable install, a local path, a VCS or URL requirement), a pin of the harness's own at
  another version (``picklematrix.pins.ENV``) and a pin that cannot be built or installed here (an old sdist
  whose build fails today, no wheel for this platform or Python) are skipped, each named (file, line, package,
  reason); the env keeps them (``Env.source``) and is shown as approximate. A freeze says nothing of its Python:
  it is given beside it or with ``--python``, else the default one is tried and an error says how to give it.

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

import dataclasses
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from picklematrix import pins
from picklematrix.envs.ids import Env, Skipped, Source, harness_pins, parse_env_id
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
    ``absent`` = not installed). ``source_text`` names it in messages."""

    python: str
    wanted: dict
    source_text: str
    exact: bool = False  # every axis pinned exactly (an env id, a requirements file): no resolver needed
    python_given: bool = False  # python named (an env id, a spec's python=, --python), not the default
    # read from a requirements file: the file, and its lines that will not be installed (Skipped)
    source: Source | None = None
    skipped: list = field(default_factory=list)
    lines: dict = field(default_factory=dict)  # the file's pins that may still be skipped: name -> (line, text)
    asked_absent: set = field(default_factory=set)  # names a word asked to be absent (``pydantic=absent``)


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
    request = Request(env.python, wanted, env.env_id, exact=True, python_given=True)
    if env.source is not None:  # a change to an env read from a requirements file: its pins may still be skipped
        request.source = env.source
        request.skipped = list(env.source.skipped)
        request.lines = _pin_lines(Path(env.source.file), set(wanted))
    return request


def split_file(text: str) -> tuple[Path | None, str]:
    """(the requirements file ``text`` names, the spec words beside it): ``freeze.txt python=3.10`` ->
    (freeze.txt, ``python=3.10``); (None, text) when it names no file."""
    text = text.strip()
    if is_file(text):
        return Path(text), ""
    first, _, rest = text.partition(" ")
    return (Path(first), rest.strip()) if first and is_file(first) else (None, text)


def parse(text: str, *, python: str | None = None, base: Env | None = None) -> Request:
    """An env id, a requirements file (a path that exists, with spec words beside it if any), or a spec;
    ``base`` is what a change applies to; ``python`` (``--python``) the Python of a requirements file or a spec
    that names none."""
    text = text.strip()
    env = parse_env_id(text)
    if env is not None:
        return from_env(env)
    path, words = split_file(text)
    if path is not None:
        return read_requirements(path, python=python, words=words)
    source = f"env spec {text!r}"
    base_id, digest = text.rpartition(EXTRA_SEPARATOR)[::2] if EXTRA_SEPARATOR in text else (text, "")
    if digest and parse_env_id(base_id) is not None:
        raise SpecError(f"{source}: an env id with extra pins (+{digest}) names a recorded env but cannot be built "
                        "from its id: name what it was built from (its requirements file, spec or --as-of date); "
                        "a review or report takes the id as it is")
    request = from_env(base) if base is not None else Request(python and python_minor(python, source) or DEFAULT_PYTHON,
                                                               {"pydantic": ABSENT}, source)
    request.source_text, request.exact = source, False
    _apply_words(request, text, source)
    if python and base is None and "python=" not in text:
        request.python = python_minor(python, source)
    return request


def _apply_words(request: Request, text: str, source: str) -> None:
    """``NAME=VALUE`` words applied to ``request``: python replaced, each package's specifier set (dask and
    distributed together); a word that is no exact pin makes the request one for the resolver."""
    for name, value in spec_words(text, source).items():
        if name == "python":
            request.python = python_minor(value, source)
            request.python_given = True
            continue
        spec = spec_value(name, value, source)
        if spec == ABSENT:
            request.asked_absent.add(name)
        for each in (name, *(("distributed" if name == "dask" else "dask",) if name in ("dask", "distributed")
                             else ())):  # they move together: one version for both
            request.wanted[each] = spec
            request.lines.pop(each, None)  # asked for beside the file: never skipped
        request.exact = request.exact and spec.startswith("==")


def change(base: Env, text: str) -> Request:
    """``--change pydantic=2.10.6``: ``base`` with these replaced."""
    return parse(text, base=base)


# --------------------------------------------------------------------------- requirements files as they come
# A requirements file of a user's environment (a ``pip freeze``, a compiled lock) is read line by line. A line
# that cannot be reproduced from the package index (an editable install, a local path, a VCS or URL requirement)
# is skipped and named, as is a pin the harness installs at another version (picklematrix.pins.ENV); every
# other pin is installed as written. Which pins cannot be built or installed here (an old sdist whose build
# fails today, no wheel for this platform or Python) only the resolver knows: :func:`resolve` asks it, skips
# the pin it names, and asks again (:func:`_compile_skipping`). The env records the lines skipped (its
# ``source``), and the review and the matrix page show it as approximate.
VCS = ("git+", "hg+", "svn+", "bzr+")
# a wheel's or an sdist's file name, whose version a URL line gives (conda's `numpy @ file:///.../numpy-1.26.4-...`)
DIST_FILE = re.compile(r"/(?P<name>[A-Za-z0-9][A-Za-z0-9._]*?)-(?P<version>\d[^-/]*?)(?:-[^/]*)?(?:\.whl|\.tar\.gz|\.zip)"
                       r"(?:#.*)?$")


def file_digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _logical_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of each logical line: continuations joined, comments (`` #...``) removed."""
    out, pending, first = [], "", 0
    for number, raw in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not pending:
            first = number
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        text = pending + raw
        pending = ""
        text = text.strip() if text.lstrip().startswith("#") else re.split(r"\s+#", text)[0].strip()
        out.append((first, text))
    if pending:
        out.append((first, pending.strip()))
    return out


def _pin_lines(path: Path, names: set) -> dict:
    """{name: (line number, text)} of the pins of ``path`` among ``names`` (a change to an env read from it)."""
    out = {}
    try:
        for number, text in _logical_lines(path):
            try:
                name = canonicalize_name(Requirement(re.sub(r"\s--hash=\S+", "", text)).name)
            except InvalidRequirement:
                continue
            if name in names:
                out[name] = (number, text)
    except OSError:
        pass
    return out


def _unreproducible(text: str) -> tuple[str | None, str | None, str | None]:
    """(package, reason, version from its file name) of a line that names no release on the index, or
    (None, None, None): an editable install, a local path, a VCS or URL requirement."""
    editable = re.match(r"^(-e|--editable)(\s+|=)(?P<target>.+)$", text)
    if editable:
        target = editable["target"].strip()
        egg = re.search(r"[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)", target)
        return (canonicalize_name(egg[1]) if egg else target, f"an editable install ({target.split('#')[0]}): "
                "built from a checkout, not from the package index", None)
    m = re.match(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*@\s*(?P<url>\S+)", text)
    if not m and not re.match(r"^(\.{0,2}/|~|[A-Za-z]:[\\/]|file:|git\+|https?://)", text):
        return None, None, None
    name = canonicalize_name(m["name"]) if m else text
    url = m["url"] if m else text
    dist = DIST_FILE.search(url)
    version = dist["version"] if dist and canonicalize_name(dist["name"]) == name else None
    try:
        version = version and str(Version(version))
    except InvalidVersion:
        version = None
    if url.startswith(VCS):
        return name, f"a VCS requirement ({url.split('#')[0]}): not a release on the package index", None
    if url.startswith("file:") or not re.match(r"^[a-z]+://", url):
        return name, "a local path (a conda package, a local build): not on the package index", version
    return name, f"a URL requirement ({url}): not a release on the package index", version


def read_requirements(path: Path, *, python: str | None = None, words: str = "") -> Request:
    """A requirements file as it comes (a ``pip freeze``, a compiled lock, a hand-written list), with ``words``
    (spec words written beside it: ``python=3.10``, ``dask=2024.8.0``) applied after it.

    Every ``name==version`` is pinned; ``name>=...`` or a bare name is resolved. A line that cannot be reproduced
    from the index (an editable install, a local path, a VCS or URL requirement), a line that is no requirement,
    and a pin of a package the harness installs at another version are skipped, each named in the request's
    ``skipped`` (file, line, package, reason). A URL whose file name gives a version (conda's
    ``numpy @ file:///.../numpy-1.26.4-cp310-...whl``) is pinned at that version. dask without distributed gets
    distributed at dask's version (the matrix moves them together).
    """
    source = f"requirements file {path}"
    shown = str(path)
    try:
        lines = _logical_lines(path)
    except OSError as e:
        raise SpecError(f"{path}: cannot read it ({e.strerror or e})") from None
    wanted: dict = {}
    pins: dict = {}
    skipped: list = []
    notes: list = []
    exact = True
    harness = harness_pins()
    from_names: dict = {}
    # the Python the env is for, as markers see it (a universal lock's lines for other Pythons are not its own)
    target = python_minor(spec_words(words, source).get("python") or python or DEFAULT_PYTHON, source)
    for number, text in lines:
        line = re.sub(r"\s--hash=\S+", "", text).strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-") and not re.match(r"^(-e|--editable)\b", line):
            if re.match(r"^(-r|--requirement|-c|--constraint)\b", line):
                skipped.append(Skipped(shown, number, line, "an included file is not read: name its lines in "
                                                            "this file", line))
            continue  # index options (-i, --extra-index-url, ...): the configured index is used
        name, reason, version = _unreproducible(line)
        if reason is not None and version is None:
            skipped.append(Skipped(shown, number, name, reason, line))
            from_names.setdefault(name, (number, line, reason))
            continue
        if reason is not None:  # a release's file: that version from the index
            req_name, spec = name, f"=={Version(version)}"
            notes.append(f"{shown}:{number}: {name}: {reason.split(':')[0]}; its file name gives version {version}: "
                         f"installed as {name}=={version} from the package index")
        else:
            try:
                req = Requirement(line)
            except InvalidRequirement as e:
                skipped.append(Skipped(shown, number, line.split()[0], f"not a requirement ({e})", line))
                continue
            if req.marker is not None and not req.marker.evaluate({"python_version": target,
                                                                   "python_full_version": f"{target}.0"}):
                continue  # a line for another Python or platform (a universal lock): not this env's
            req_name = canonicalize_name(req.name)
            if req.url:
                skipped.append(Skipped(shown, number, req_name, "a URL requirement: not on the package index", line))
                continue
            spec = str(req.specifier)
            pinned = [s for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
            if len(pinned) == 1 and len(req.specifier) == 1:
                spec = f"=={pinned[0].version}"
            else:
                exact = False
        if req_name in HARNESS:
            continue
        if req_name in harness and not SpecifierSet(spec).contains(harness[req_name], prereleases=True):
            skipped.append(Skipped(shown, number, req_name, f"the harness installs {req_name}=={harness[req_name]} "
                                                            "in every env (picklematrix.pins.ENV)", line))
            continue
        wanted[req_name] = spec
        pins[req_name] = (number, line)
    if "dask" in wanted and "distributed" not in wanted:
        wanted["distributed"] = wanted["dask"]
        notes.append(f"{shown}: pins dask but not distributed: distributed{wanted['dask']} is installed with it "
                     "(the matrix moves them together)")
    wanted.setdefault("pydantic", ABSENT)
    request = Request(python_minor(python or DEFAULT_PYTHON, source), wanted, source, exact=exact,
                      python_given=python is not None)
    request.source = Source(shown, file_digest(path), notes=tuple(notes))
    request.skipped, request.lines = skipped, pins
    if words:
        _apply_words(request, words, f"{source} ({words})")
    missing = [n for n in ("dask", "distributed", "cloudpickle") if n not in request.wanted]
    if missing:
        hint = "".join(f"; {n} is on line {from_names[n][0]} ({from_names[n][2].split(':')[0]}): give its version "
                       f"beside the file, e.g. --env '{path} {n}=<version>'" for n in missing if n in from_names)
        raise SpecError(f"{path}: pins no {', '.join(missing)}: an env needs dask, distributed and cloudpickle "
                        f"(it is a pip freeze of an environment dask runs in?){hint}")
    return request


def _compile(lines: list[str], python: str, as_of: str | None, uv: str, source: str, *,
             raw: bool = False) -> dict | tuple[int, str, dict]:
    """``uv pip compile`` of ``lines`` for ``python``: {canonical name: version}. With ``raw``, (exit status,
    uv's message, that dict) instead of raising SpecError."""
    command = [uv, "pip", "compile", "-", "--python", python, "--quiet", "--no-header", "--no-annotate"]
    if as_of:
        # the harness's own pins (pins.ENV) are newer than most dates asked about: they are exempt
        command += ["--exclude-newer", as_of, *(a for r in pins.ENV for a in
                                                ("--exclude-newer-package", f"{Requirement(r).name}=2100-01-01"))]
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.setdefault("UV_PYTHON_PREFERENCE", "only-system")
    proc = subprocess.run(command, input="\n".join(lines) + "\n", capture_output=True, text=True, env=env)
    found = {}
    for line in proc.stdout.splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, _, version = line.split(";")[0].strip().partition("==")
            found[canonicalize_name(name)] = version.strip()
    message = (proc.stderr or proc.stdout).strip()
    if raw:
        return proc.returncode, message, found
    if proc.returncode != 0:
        raise SpecError(f"{source}: cannot be resolved for python {python}"
                        + (f" as of {as_of}" if as_of else "") + f" (uv pip compile):\n{message[-5000:]}")
    return found


# What uv says of a requirement it cannot use (uv pip compile's message), by kind: the requirement is in backticks
# after "Failed to build" and the like, else the first NAME==VERSION of the explanation.
UV_BUILD = re.compile(r"Failed to (?:download and build|build|prepare metadata for|download|fetch)\s+`(?P<req>[^`]+)`")
UV_REQ = re.compile(r"(?<![\w.\-/`])(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?(?=(?:==|!=|>=|<=|~=|<|>| was "
                    r"not found| has no (?:wheels|versions?)))")
UV_PYTHON = ("matching Python ABI tag", "matching Python implementation tag", "Python version", "depends on Python",
             "requires-python", "Requires-Python")


def uv_culprit(message: str, eligible) -> tuple[str | None, str, str]:
    """(the package uv's message blames, of ``eligible`` names, or None; the kind: ``build``, ``python``,
    ``platform``, ``missing`` or ``conflict``; a short reason in uv's words)."""
    text = " ".join(message.split())
    build = UV_BUILD.search(message)
    if build:
        name = canonicalize_name(re.split(r"[=<>!~@ \[]", build["req"], maxsplit=1)[0])
        cause = next((ln.strip() for ln in message.splitlines()
                      if re.search(r"ModuleNotFoundError|ImportError|error in .* setup command|[Ee]rror: (?!Failed)",
                                   ln)), "")
        return (name if name in eligible else None), "build", (
            f"its build fails here ({cause[:200]})" if cause else "its build fails here")
    names = [canonicalize_name(m["name"]) for m in UV_REQ.finditer(text)]
    name = next((n for n in names if n in eligible), None)
    hint = next((ln.strip() for ln in message.splitlines() if ln.strip().startswith("hint:")), "")
    because = next((ln.strip() for ln in message.splitlines() if "Because" in ln), text)
    because = re.split(r",? (?:and )?(?:we can conclude|you require \S+, we)", because.removeprefix("cause:").strip())[0]
    hint = re.sub(r"^hint:\s*", "", hint)
    if "matching platform tag" in text:
        kind = "platform"
    elif any(p in text for p in UV_PYTHON):
        kind = "python"
    elif "was not found in the package registry" in text or "there is no version of" in text:
        kind = "missing"
    else:
        kind = "conflict"
    reason = {"platform": "no wheel for this platform", "python": "no release of it installs on this Python",
              "missing": "no such release on the package index",
              "conflict": "it conflicts with the harness's or another pin's requirements"}[kind]
    return name, kind, f"{reason} (uv: {because[:300]}" + (f"; {hint[:300]}" if hint else "") + ")"


def _compile_skipping(request: Request, lines_of, as_of, uv: str, extra_lines: list) -> dict:
    """``uv pip compile`` of the request's pins with ``extra_lines``, skipping each of its requirements file's
    pins that uv names as the one that cannot be built or installed here (``request.skipped`` grows), until it
    resolves. Raises SpecError when what fails is not such a pin (an axis, the harness's own), or when the
    file's pins need another Python than the default one, not given (saying how to give it)."""
    while True:
        code, message, found = _compile([*lines_of(request.wanted), *extra_lines], request.python, as_of, uv,
                                        request.source_text, raw=True)
        if code == 0:
            return found
        eligible = set(request.lines) - {*AXES, "distributed"}
        name, kind, reason = uv_culprit(message, eligible)
        if kind == "python" and not request.python_given:
            where = request.source.file if request.source else request.source_text
            raise SpecError(f"{where}: its pins do not install on python {request.python}, the default (a freeze does "
                            f"not say which Python it came from): {name or '?'}: {reason}.\nGive its Python beside it: "
                            f"--env '{where} python=3.X' (or --from, --base), or --python 3.X")
        if name is None:
            raise SpecError(f"{request.source_text}: cannot be resolved for python {request.python}"
                            + (f" as of {as_of}" if as_of else "") + f" (uv pip compile):\n{message[-5000:]}")
        number, text = request.lines.pop(name)
        request.skipped.append(Skipped(request.source.file if request.source else request.source_text, number,
                                       name, reason, text))
        request.wanted.pop(name, None)


def _declared() -> list[str]:
    """The checkout's declared dependencies besides the axes (what picklematrix.envs.venvs installs next to an env's
    pins); none outside a checkout."""
    from picklematrix.envs.venvs import harness_requirements

    checkout = checkout_root()
    try:
        return harness_requirements(checkout) if checkout is not None else []
    except (OSError, KeyError, ValueError):
        return []


def resolve(request: Request, *, as_of: str | None = None, uv: str = "uv", needed: set | None = None) -> Env:
    """Concrete pins for ``request``: the env to build. Raises :class:`SpecError` naming the request.

    A request read from a requirements file is resolved with what the harness installs beside it; each of its
    pins that cannot be built or installed here is skipped (:func:`_compile_skipping`), and the env keeps the
    file and the lines skipped (``Env.source``). ``needed`` (``--pins needed``: the modules the chosen cases
    import, :func:`case_imports`) keeps only the file's pins that the env needs (:func:`keep_needed`).
    """
    if as_of is not None and not DATE.match(as_of):
        raise SpecError(f"--as-of {as_of!r}: give a date, YYYY-MM-DD")
    if needed is not None and request.source is not None:
        keep_needed(request, needed, as_of, uv)
    if not request.exact or as_of or request.lines:
        def lines_of(wanted):
            return [f"{name}{spec}" for name, spec in wanted.items() if spec != ABSENT]

        # resolved with what the harness installs beside them, so that the pins are installable together (its
        # declared dependencies too: tomli on python 3.10 is then of that day as well, as of a date)
        harness = [*pins.ENV, *(_declared() if as_of or request.lines else [])]
        if request.lines:
            found = _compile_skipping(request, lines_of, as_of, uv, harness)
        else:
            found = _compile([*lines_of(request.wanted), *harness], request.python, as_of, uv, request.source_text)
        wanted = {name: (spec if spec == ABSENT else f"=={found[name]}") for name, spec in request.wanted.items()
                  if spec == ABSENT or name in found}
        for name in [n for n, spec in wanted.items() if spec == ABSENT and n in found]:
            # absent by default (a freeze that does not pin it, or whose line for it was skipped), yet the other
            # pins need it: it is installed, at the version resolved, and the env says so
            if name in request.asked_absent:
                raise SpecError(f"{request.source_text}: {name}=absent was asked for, but the other pins need it "
                                f"(uv resolved {name}=={found[name]}): drop {name}=absent, or the pins that need it")
            wanted[name] = f"=={found[name]}"
            if request.source is not None:
                request.source = dataclasses.replace(request.source, notes=(
                    *request.source.notes, f"{request.source.file}: pins no {name} it can install, and its other "
                    f"pins need it: {name}=={found[name]} is installed, as resolved"))
        for name in ("cloudpickle", "dask", "distributed"):
            if name not in wanted and name in found:
                wanted[name] = f"=={found[name]}"
        if as_of:
            # the whole dependency set as of that day: installed as pinned, nothing of today's index
            for name, version in found.items():
                if name not in wanted and name not in HARNESS:
                    wanted[name] = f"=={version}"
    else:
        wanted = dict(request.wanted)
    version = {name: spec[2:] for name, spec in wanted.items() if spec != ABSENT}
    if version.get("dask") != version.get("distributed"):
        raise SpecError(f"{request.source_text}: dask {version.get('dask')} and distributed "
                        f"{version.get('distributed')} differ: the matrix pins them to one version; name dask=<version>")
    for name in ("cloudpickle", "dask"):
        if name not in version:
            raise SpecError(f"{request.source_text}: no {name} version (name {name}=<version> or latest)")
    extra = tuple(sorted((name, v) for name, v in version.items() if name not in PACKAGES))
    source = None
    if request.source is not None:
        source = dataclasses.replace(request.source, skipped=tuple(request.skipped))
    return Env(python=request.python, cloudpickle=version["cloudpickle"], dask=version["dask"],
               pydantic=version.get("pydantic", ABSENT), extra=extra, source=source)


# --------------------------------------------------------------------------- --pins needed
# A freeze holds a whole environment: hundreds of pins, most of which no case imports. ``--pins needed`` installs
# only the dependency closure of the tracked packages, of the harness's own packages and of the packages the
# chosen cases import, each at the file's version: quicker to build, at the cost of what a left-out package does
# when it is installed (an import hook, a plugin dask loads through an entry point, a pickle reducer registered
# on import), which the env then does not show.
# Import names that are not their distribution's name (a module's distribution is known only once installed).
IMPORT_NAMES = {"sklearn": "scikit-learn", "skimage": "scikit-image", "yaml": "pyyaml", "PIL": "pillow",
                "cv2": "opencv-python", "bs4": "beautifulsoup4", "dateutil": "python-dateutil", "attr": "attrs",
                "zmq": "pyzmq", "jwt": "pyjwt", "OpenSSL": "pyopenssl", "git": "gitpython", "dotenv": "python-dotenv",
                "serial": "pyserial", "google": "protobuf", "Crypto": "pycryptodome", "fitz": "pymupdf",
                "tlz": "toolz", "sitk": "simpleitk", "SimpleITK": "simpleitk", "magic": "python-magic"}


def case_imports(case_dirs=None, only=None) -> set[str]:
    """The top-level modules the chosen cases import (their files read with ``ast``; the standard library left
    out): what ``--pins needed`` keeps besides the tracked packages. Raises SpecError for case folders that
    cannot be read."""
    import ast

    from picklematrix.run.corpus import CorpusError, load_corpus, select

    try:
        cases, _ = load_corpus([Path(d) for d in case_dirs] if case_dirs else None)
    except CorpusError as e:
        raise SpecError(f"--pins needed reads the cases' imports: {e}") from None
    modules = set()
    for case in select(cases, only or None):
        try:
            tree = ast.parse(case.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in sys.stdlib_module_names and m != "picklematrix"}


def _pin_of(module: str, names) -> str | None:
    """The pin among ``names`` a module is installed by: its own name, a known other one, ``py``/``python-`` +
    it."""
    guesses = [module, IMPORT_NAMES.get(module, module), f"py{module}", f"python-{module}", f"{module}-python"]
    return next((canonicalize_name(g) for g in guesses if canonicalize_name(g) in names), None)


def keep_needed(request: Request, modules: set[str], as_of, uv: str) -> None:
    """``--pins needed``: ``request`` keeps only the pins of its file in the dependency closure of the tracked
    packages, the harness's packages and the pins the modules in ``modules`` are installed by (each at the
    file's version: the closure is resolved with the file's pins as constraints). The rest are left out, named
    in ``request.source`` (``left_out``)."""
    file_pins = {n: spec for n, spec in request.wanted.items() if spec not in ("", ABSENT)}
    roots = [f"{n}{request.wanted[n]}" for n in PACKAGES if request.wanted.get(n) not in (None, ABSENT)]
    imported = {m: _pin_of(m, file_pins) for m in sorted(modules) if canonicalize_name(m) not in PACKAGES}
    roots += [f"{pin}{file_pins[pin]}" for pin in imported.values() if pin]
    unmatched = sorted(m for m, pin in imported.items() if pin is None)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="picklematrix-constraints-") as constraints:
        constraints.write("\n".join(f"{n}{spec}" for n, spec in file_pins.items()) + "\n")
        constraints.flush()
        code, message, found = _compile([*roots, *pins.ENV, f"-c {constraints.name}"], request.python, as_of, uv,
                                        request.source_text, raw=True)
    if code != 0:  # the file's pins do not resolve together: installing all of them tells which to skip
        request.source = dataclasses.replace(request.source, notes=(
            *request.source.notes, f"{request.source.file}: --pins needed: the closure does not resolve with the "
            f"file's pins as constraints, so every pin is installed: {' '.join(message.split())[-300:]}"))
        return
    left_out = sorted(n for n in request.wanted if n not in found and n not in PACKAGES and n in request.lines)
    for name in left_out:
        request.wanted.pop(name)
        request.lines.pop(name)
    request.source = dataclasses.replace(request.source, pins="needed", left_out=tuple(
        sorted({*request.source.left_out, *left_out})), notes=(
        *request.source.notes, f"{request.source.file}: --pins needed: {len(left_out)} pin(s) left out, "
        f"{len([n for n in request.wanted if n in file_pins])} kept (the closure of the tracked packages, the "
        "harness's and what the cases import)" + (f"; imported by the cases but pinned by no line of the file: "
                                                  f"{', '.join(unmatched)}" if unmatched else "")))


def skipped_lines(env: Env) -> list[str]:
    """What became of the lines of ``env``'s requirements file that it does not install as written: one warning
    per line skipped (file, line, package, why), then the notes (a version taken from a file name)."""
    if env.source is None:
        return []
    return ([f"{s.file}:{s.line}: skipped {s.package}: {s.reason}" for s in env.skipped] + list(env.source.notes)
            + [f"{env.source.file}: {len(env.skipped)} line(s) skipped: the env is approximate"] * bool(env.skipped))


def resolve_text(text: str, *, base: Env | None = None, python: str | None = None, as_of: str | None = None,
                 uv: str = "uv") -> Env:
    """:func:`parse` then :func:`resolve`."""
    return resolve(parse(text, python=python, base=base), as_of=as_of, uv=uv)


def is_spec(text: str) -> bool:
    """Whether a ``--from``/``--to`` value needs resolving here: a spec of several words, a requirements file, or
    ``name=`` with a specifier or ``latest``. A recorded env's id, asv name or ``name=version`` is the review's own."""
    text = text.strip()
    if split_file(text)[0] is not None:
        return True
    if ".." in text or parse_env_id(text) is not None:
        return False
    words = text.split()
    return len(words) > 1 or any(re.search(r"=(latest|~=|>=|<=|<|>|!=)", w) or "~=" in w for w in words)


__all__ = ["AXES", "Env", "Request", "SpecError", "change", "is_spec", "parse", "read_requirements", "resolve",
           "resolve_text"]
