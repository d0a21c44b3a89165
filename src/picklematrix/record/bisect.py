"""``bisect``: the first release of a package between two versions whose outcomes differ from the first's.

    ./nox -s bisect -- --change pydantic=2.8.2..2.9.2 --only GLOB [--base ENV] [--cases DIR] [--pre] [--as-of DATE]

The releases in between come from the configured package index (UV_DEFAULT_INDEX, UV_INDEX_URL or PIP_INDEX_URL,
a mirror included, UV_INDEX's first; PyPI when none is set), read as PEP 691 JSON or PEP 503 HTML; for
``python``, from the interpreters uv finds on this machine (pyenv's, setup-python's, the system's), since none is
downloaded. Each step is an env: the base (``--base``, an env id, spec or
requirements file, see picklematrix.envs.spec; default the profile's baseline) with the package at that release
(dask and distributed move together), recorded exactly as ``nox -s matrix`` records it
(picklematrix.record.ondemand), with only the chosen cases (``--only``, else PICKLEMATRIX_ONLY's globs) of the
chosen corpus (``--cases``, default the built-in one).
The search is a binary search for the first release whose outcomes for those cells differ from A's:
a fix or a break, whichever it is. A release that cannot be built or installed is skipped, its error kept, and
the search goes on with its neighbours.

The steps' records go to ``results/bisect/runs/<selection>/<env>/`` (a results directory per env, since a
partial corpus must not mix with the matrix's records, and envs differing only in a package outside the axes
would otherwise share a record); the next bisect over the same cells reuses them. The answer goes to
``results/bisect/<package>-<A>..<B>.md`` and ``.json``.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html.parser
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from picklematrix import sidecar as sidecars
from picklematrix.envs import spec as envspec
from picklematrix.envs import venvs
from picklematrix.envs.ids import Env, parse_env_id
from picklematrix.envs.matrix import MatrixError, load_matrix
from picklematrix.locations import checkout_root
from picklematrix.outcomes import PASS
from picklematrix.record import fingerprint, ondemand, recording
from picklematrix.record.sessions import matrix_file, needed_modules, results_dir, warn_source
from picklematrix.record.targets import CHANGE, TargetError, base_env
from picklematrix.versions import TRACKED

# The package index releases are listed from: uv's (UV_DEFAULT_INDEX, else its older name UV_INDEX_URL), else
# pip's (PIP_INDEX_URL), else PyPI. UV_INDEX's indexes come first, as uv's own "first index" rule has it: the
# first index that has a package is the only one uv installs it from.
DEFAULT_INDEX = "https://pypi.org/simple"
INDEX_VARS = ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL")
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
# each tracked package's field of an Env (distributed moves with dask)
AXIS_FIELDS = {name: "dask" if name == "distributed" else name for name in TRACKED}


class BisectError(Exception):
    """The bisect cannot start: bad versions, no releases, the endpoints not recordable; the message says why."""


@dataclass
class Step:
    version: str
    status: str  # "same", "differs", "error"
    env_id: str
    error: str | None = None
    outcomes: dict = field(default_factory=dict)  # cell key -> outcome


def configured_indexes(environ=None) -> list[tuple[str, str]]:
    """[(index URL, where it was configured)] in the order uv asks them for a package: UV_INDEX's (space-separated,
    ``name=URL`` allowed), then the default index (:data:`INDEX_VARS`, else PyPI)."""
    environ = os.environ if environ is None else environ
    out = [(entry.split("=", 1)[1] if re.match(r"^[\w.-]+=\w+://", entry) else entry, "UV_INDEX")
           for entry in (environ.get("UV_INDEX") or "").split()]
    default = next(((environ[v], v) for v in INDEX_VARS if environ.get(v)), (DEFAULT_INDEX, "the default"))
    return out + [default]


def shown_url(url: str) -> str:
    """``url`` without its credentials (a mirror's ``https://user:token@host/simple``): for messages."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def _fetch(url: str, timeout: float) -> tuple[str, str]:
    """(content type, body) of a simple index page, asking for PEP 691's JSON first; credentials in the URL are
    sent as basic authentication."""
    parts = urllib.parse.urlsplit(url)
    headers = {"Accept": f"{SIMPLE_JSON}, text/html;q=0.1"}
    if "@" in parts.netloc:
        userinfo, host = parts.netloc.rsplit("@", 1)
        headers["Authorization"] = "Basic " + base64.b64encode(urllib.parse.unquote(userinfo).encode()).decode()
        url = urllib.parse.urlunsplit(parts._replace(netloc=host))
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as f:
        return f.headers.get_content_type(), f.read().decode("utf-8", errors="replace")


class _Links(html.parser.HTMLParser):
    """The anchors of a PEP 503 page: (file name, yanked)."""

    def __init__(self):
        super().__init__()
        self.files: list = []
        self._yanked = None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            attrs = dict(attrs)
            self._yanked = "data-yanked" in attrs
            self.files.append([None, self._yanked])

    def handle_data(self, data):
        if self.files and self.files[-1][0] is None:
            self.files[-1][0] = data.strip()


def _release_of(filename: str, name: str) -> str | None:
    """The version a distribution file's name gives (``cloudpickle-3.1.0-py3-none-any.whl``,
    ``cloudpickle-3.1.0.tar.gz``), or None for a file of another project or an unparseable name."""
    from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename

    try:
        if filename.endswith(".whl"):
            project, version, *_ = parse_wheel_filename(filename)
        else:
            project, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return str(version) if project == canonicalize_name(name) else None


def index_versions(name: str, *, pre: bool = False, timeout: float = 30, environ=None) -> tuple[list[str], str]:
    """(every release of ``name`` on the configured index that is not yanked, oldest first (pre-releases only with
    ``pre``); the index's URL, credentials left out). The first index (:func:`configured_indexes`) that has the
    package answers: its simple page (PEP 691 JSON, else PEP 503 HTML), a release counted when one of its files
    is not yanked."""
    errors = []
    for index, where in configured_indexes(environ):
        url = f"{index.rstrip('/')}/{canonicalize_name(name)}/"
        try:
            kind, body = _fetch(url, timeout)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                continue  # not on this index: the next one
            errors.append(f"{shown_url(url)} ({where}): HTTP {e.code}")
            continue
        except OSError as e:
            errors.append(f"{shown_url(url)} ({where}): {getattr(e, 'reason', None) or e}")
            continue
        if kind == SIMPLE_JSON or body.lstrip().startswith("{"):
            files = [(f.get("filename", ""), bool(f.get("yanked"))) for f in json.loads(body).get("files", [])]
        else:
            links = _Links()
            links.feed(body)
            files = [(f or "", yanked) for f, yanked in links.files]
        found = {}
        for filename, yanked in files:
            version = _release_of(filename, name)
            if version is not None:
                found[version] = found.get(version, False) or not yanked
        out = [v for v, available in found.items() if available and (pre or not Version(v).is_prerelease)]
        return sorted(out, key=Version), shown_url(index)
    raise BisectError(f"cannot list the releases of {name}: "
                      + ("; ".join(errors) if errors else "no configured index has it ("
                         + ", ".join(f"{shown_url(i)} ({w})" for i, w in configured_indexes(environ)) + ")"))


def pypi_versions(name: str, *, pre: bool = False, timeout: float = 30) -> list[str]:
    """Every release of ``name`` on the configured index (:func:`index_versions`; PyPI unless configured)."""
    return index_versions(name, pre=pre, timeout=timeout)[0]


def python_versions(uv: str | None = None) -> list[str]:
    """The minor versions of CPython this machine has, as uv finds them (``uv python list --only-installed``:
    pyenv's, actions/setup-python's, the system's, uv's own installs as its preference allows): bisecting Python
    never downloads one."""
    command = [uv or venvs.uv(), "python", "list", "--only-installed", "--output-format", "json"]
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.setdefault("UV_PYTHON_PREFERENCE", "only-system")
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    try:
        found = json.loads(proc.stdout or "[]")
    except ValueError:
        raise BisectError(f"cannot list this machine's interpreters ({' '.join(command)}): "
                          f"{(proc.stderr or proc.stdout).strip()[-1000:]}") from None
    minors = {".".join(str(i.get("version", "")).split(".")[:2]) for i in found
              if i.get("implementation") == "cpython" and i.get("variant", "default") == "default"}
    return sorted((m for m in minors if re.fullmatch(r"3\.\d+", m)), key=Version)


def between(versions: list[str], lo: str, hi: str) -> list[str]:
    """The versions strictly between ``lo`` and ``hi`` (either order), ascending from ``lo`` toward ``hi``."""
    a, b = Version(lo), Version(hi)
    inside = [v for v in versions if min(a, b) < Version(v) < max(a, b)]
    return sorted(inside, key=Version, reverse=a > b)


def with_version(base: Env, package: str, version: str) -> Env:
    """``base`` with ``package`` at ``version``: an axis is replaced (dask moves distributed too), any other
    package is an extra pin."""
    name = canonicalize_name(package) if package != "python" else "python"
    if name in AXIS_FIELDS:
        return dataclasses.replace(base, **{AXIS_FIELDS[name]: version})
    extra = dict(base.extra)
    extra[name] = version
    return dataclasses.replace(base, extra=tuple(sorted(extra.items())))


def selection_key(cases: list[str], case_dirs: list[str]) -> str:
    text = json.dumps({"only": sorted(cases), "cases": [str(Path(d).resolve()) for d in case_dirs]})
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _outcomes(results: Path, commit: str, env: Env) -> dict | None:
    """The cell outcomes of ``env``'s complete record at ``commit`` in ``results``, or None."""
    sc = ondemand.find_record(results, commit, env)
    return None if sc is None else {sidecars.cell_key(c): c["outcome"] for c in sc.cells}


def run_step(env: Env, version: str, checkout: Path, runs: Path, *, log=print, warn=print) -> Step:
    """Record ``env`` (or reuse its record) and read its outcomes; an env that cannot be built is an error step."""
    results = runs / ondemand.env_key(env)
    try:
        ondemand.record(env, checkout, results, log=log, warn=warn)
    except recording.RecordingError as e:
        done = _outcomes(results, fingerprint.fingerprint_commit(checkout), env)
        if done is None:  # (a record with broken case files, or a failed benchmark, still has outcomes)
            return Step(version, "error", env.env_id, error=str(e).strip()[-3000:])
        warn(f"{env.env_id}: {str(e).strip()[-500:]}")
    outcomes = _outcomes(results, fingerprint.fingerprint_commit(checkout), env)
    if outcomes is None:
        return Step(version, "error", env.env_id, error=f"no complete record in {results} after recording")
    if not outcomes:
        return Step(version, "error", env.env_id, error="the record has no cells: no case matches the --only globs")
    return Step(version, "", env.env_id, outcomes=outcomes)


def changed(a: dict, b: dict) -> dict:
    """cell -> (outcome in a, outcome in b), for every cell whose outcome differs (missing: None)."""
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def bisect(package: str, lo: str, hi: str, base: Env, checkout: Path, out_dir: Path, *, cases: list[str],
           case_dirs: list[str], pre: bool = False, versions: list[str] | None = None, log=print,
           warn=print) -> dict:
    """The search; returns the report as data (and writes it, markdown and JSON, into ``out_dir``)."""
    if not cases:
        raise BisectError("name the cells to watch with --only GLOB (e.g. --only notebook/dask_11448_report): "
                          "every step records only those cases")
    for v in (lo, hi):
        try:
            Version(v)
        except InvalidVersion:
            raise BisectError(f"--change {package}={lo}..{hi}: {v!r} is not a version") from None
    if Version(lo) == Version(hi):
        raise BisectError(f"--change {package}={lo}..{hi}: both ends are {lo}: nothing to bisect")
    index = None
    if versions is None:
        if package == "python":
            versions, index = python_versions(), "the interpreters uv finds on this machine"
        else:
            versions, index = index_versions(package, pre=pre)
    inner = between(versions, lo, hi)
    runs = out_dir / "runs" / selection_key(cases, case_dirs)
    tried: dict[str, Step] = {}

    def step(version: str) -> Step:
        if version not in tried:
            env = with_version(base, package, version)
            log(f"bisect {package}: trying {version} ({env.env_id})")
            tried[version] = run_step(env, version, checkout, runs, log=log, warn=warn)
        return tried[version]

    with ondemand.selection(cases, case_dirs or None):
        first = step(lo)
        if first.status == "error":
            raise BisectError(f"--change {package}={lo}..: {lo} ({first.env_id}) cannot be recorded, so there is nothing to "
                              f"compare with:\n{first.error}")
        first.status = "same"

        def differs(version: str) -> bool | None:
            s = step(version)
            if s.status == "error":
                return None
            d = bool(changed(first.outcomes, s.outcomes))
            s.status = "differs" if d else "same"
            return d

        last = differs(hi)
        if last is None:
            raise BisectError(f"--change {package}=..{hi}: {hi} ({tried[hi].env_id}) cannot be recorded:\n{tried[hi].error}")
        found, skipped_near = first_differing([lo, *inner, hi], differs) if last else (None, [])
    report = _report(package, lo, hi, base, cases, case_dirs, inner, tried, first, found, skipped_near, pre)
    report["releases_from"] = index
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{canonicalize_name(package) if package != 'python' else 'python'}-{lo}..{hi}"
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    (out_dir / f"{stem}.md").write_text(markdown(report))
    report["paths"] = [str(out_dir / f"{stem}.md"), str(out_dir / f"{stem}.json")]
    return report


def first_differing(candidates: list[str], differs) -> tuple[str, list[str]]:
    """(the first of ``candidates`` for which ``differs`` is true, the unbuildable ones just before it).

    ``candidates[0]`` is known not to differ and ``candidates[-1]`` to differ; ``differs(v)`` is None when ``v``
    cannot be built: that release is skipped and its nearest buildable neighbour tried instead. When nothing
    between the last same and the first differing release can be built, those are returned as the second item:
    any of them may be the first.
    """
    good, bad = 0, len(candidates) - 1
    while bad - good > 1:
        mid = (good + bad) // 2
        order = sorted(range(good + 1, bad), key=lambda i: (abs(i - mid), i))
        verdict = None
        for i in order:
            verdict = differs(candidates[i])
            if verdict is not None:
                mid = i
                break
        if verdict is None:
            return candidates[bad], candidates[good + 1:bad]
        good, bad = (good, mid) if verdict else (mid, bad)
    return candidates[bad], []


def _kind(a: str | None, b: str | None) -> str:
    if a != PASS and b == PASS:
        return "fixed"
    if a == PASS and b not in (PASS, None):
        return "broken"
    return "changed"


def _report(package, lo, hi, base, cases, case_dirs, inner, tried, first, found, skipped_near, pre) -> dict:
    cells = []
    if found is not None:
        for key, (a, b) in changed(first.outcomes, tried[found].outcomes).items():
            cells.append({"cell": key, "from": a, "to": b, "kind": _kind(a, b)})
    kinds = sorted({c["kind"] for c in cells})
    return {
        "package": package, "from": lo, "to": hi, "base": base.as_dict(), "cases": cases,
        "case_dirs": [str(d) for d in case_dirs], "pre_releases": pre, "releases_between": inner,
        "first_differing": found, "kind": "+".join(kinds) if kinds else None,
        "skipped_next_to_it": skipped_near, "cells": cells,
        "tried": [{"version": s.version, "env_id": s.env_id, "status": s.status, "error": s.error,
                   "outcomes": s.outcomes} for s in sorted(tried.values(), key=lambda s: Version(s.version))],
    }


def markdown(report: dict) -> str:
    p, lo, hi = report["package"], report["from"], report["to"]
    lines = [f"# Bisect: {p} {lo} .. {hi}", "",
             f"Base env: `{report['base']['env_id']}`, with {p} at each release; cases: {', '.join(f'`{c}`' for c in report['cases'])}"
             + (f" from {', '.join(report['case_dirs'])}" if report["case_dirs"] else " (built-in corpus)") + ".",
             f"Releases between: {', '.join(report['releases_between']) or 'none'}"
             + (" (pre-releases included)" if report["pre_releases"] else " (pre-releases left out)")
             + (f", from {report['releases_from']}." if report.get("releases_from") else "."), ""]
    found = report["first_differing"]
    if found is None:
        lines.append(f"**No change**: the chosen cells have the same outcomes under {p} {hi} as under {lo}.")
    else:
        lines.append(f"**{p} {found}** is the first release whose outcomes differ from {lo}'s ({report['kind']}).")
        if report["skipped_next_to_it"]:
            lines.append(f"Releases just before it could not be built, so any of them may be the first: "
                         f"{', '.join(report['skipped_next_to_it'])}.")
        lines += ["", "| cell | " + lo + " | " + found + " | |", "|---|---|---|---|"]
        # a cell key's '|' would split a markdown table's cell, even inside backticks
        lines += [f"| `{c['cell'].replace('|', ' ', 1).replace('|', ' @', 1)}` | {c['from']} | {c['to']} | "
                  f"{c['kind']} |" for c in report["cells"]]
    lines += ["", "Every release tried:", "", "| release | env | result |", "|---|---|---|"]
    for s in report["tried"]:
        result = s["status"] if s["status"] != "error" else "could not be built or recorded: " + " ".join(
            (s["error"] or "").split())[-400:].replace("|", "\\|")
        lines.append(f"| {s['version']} | `{s['env_id']}` | {result} |")
    return "\n".join(lines) + "\n"


def command(args) -> int:
    """``picklematrix bisect`` and ``./nox -s bisect``: the search for ``--change NAME=A..B``; 0 with an answer,
    2 on bad input."""
    checkout = checkout_root() or Path.cwd()
    if os.environ.get("PIP_INDEX_URL") and not any(os.environ.get(v) for v in INDEX_VARS[:2]):
        # the releases listed from pip's index are installed from it too: uv reads only its own variables
        os.environ["UV_DEFAULT_INDEX"] = os.environ["PIP_INDEX_URL"]
    try:
        m = CHANGE.match((args.change or "").strip())
        if not m or not m.group("a"):
            raise BisectError("say what to bisect: --change NAME=A..B (e.g. --change pydantic=2.8.2..2.9.2) "
                              "--only GLOB")
        matrix = load_matrix(matrix_file())
        if (args.base and parse_env_id(args.base) is None) or args.as_of:  # a spec, or an env as of a date
            base = envspec.resolve(envspec.parse(args.base or base_env(args, matrix).env_id, python=args.python),
                                   as_of=args.as_of, uv=venvs.uv(), needed=needed_modules(args))
            warn_source(base, lambda line: print(f"bisect: {line}", file=sys.stderr))
        else:
            base = base_env(args, matrix)
        report = bisect(m.group("name"), m.group("a"), m.group("b"), base, checkout,
                        results_dir(args, checkout) / "bisect", cases=args.only or [], case_dirs=args.cases or [],
                        pre=args.pre)
    except (BisectError, envspec.SpecError, MatrixError, TargetError, venvs.EnvError) as e:
        print(f"picklematrix bisect: {e}", file=sys.stderr)
        return 2
    print(markdown(report))
    print(f"bisect: written {' and '.join(report['paths'])}", file=sys.stderr)
    return 0
