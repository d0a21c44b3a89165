"""``nox -s report``: asv's HTML site working offline, an outcome matrix page, matrix.md and matrix.json.

    python -m picklematrix.report [--results DIR] [--html DIR] [--commit REV] [--strict]

Runs in the orchestrating environment (asv 0.6.6, jinja2; see ``tools_python()`` in noxfile.py).

- ``asv publish`` runs over a *staged* copy of the results holding only files that load, so one truncated
  or foreign file costs that file, named in the report, and never the whole site.
- asv's pages load jQuery, flot, bootstrap, stupidtable and blueimp-md5 from CDNs. The same files come from
  pinned npm packages (``WEB_ASSETS``, fetched with ``npm pack`` into a cache outside git, checked against the
  registry's integrity hash), are copied into ``<html>/vendor/`` and the pages are pointed at them. Where the
  package's file is byte-identical to what asv asked for, asv's own ``integrity`` attribute stays, so the
  browser checks it.
- The matrix page (``<html>/matrix.html``), ``<results>/matrix.md`` and ``<results>/matrix.json`` show one
  harness commit (the newest by default): rows are cases, columns environments, a cell holds the outcome of
  every compute method x context.

Exit status: 0 built (problems with individual result files are listed, not fatal); 1 built only in part
(asv publish or the web assets failed; or ``--strict`` and some result file had a problem); 2 bad input
(no results, unknown ``--commit``).
"""

from __future__ import annotations

import argparse
import ast
import base64
import datetime
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from .corpus import CONTEXTS
from .matrix import Env, MatrixError, load_matrix
from .methods import METHODS
from .outcomes import CODE_OUTCOMES, FAILURES, OUTCOMES, PASS, RAN_LOCALLY, TIMEOUT

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = Path(__file__).resolve().parent / "templates"

OUTCOME_KEY = "cells.Outcome.track_outcome"
GRAPH_KEY = "cells.GraphSize.track_graph_bytes"
TIME_KEY = "cells.Compute.time_compute"
REPLICA = re.compile(r"^(?P<base>.+)-rep(?P<n>\d+)$")
MATRIX_JSON_FORMAT = 1

EXIT_OK, EXIT_PARTIAL, EXIT_BAD_INPUT = 0, 1, 2

# Outcomes that count as "the object did not make it" when comparing envs; a timeout is one too.
BAD = frozenset(FAILURES | {TIMEOUT})

# Short marks for the matrix cells; the legend on the page spells them out.
OUTCOME_MARKS = {
    "pass": "✓", "wrong-result": "W", "serialize-error": "S", "deserialize-error": "D", "task-error": "T",
    "ran-locally": "L", "timeout": "Z", "worker-died": "K", "not-applicable": "·", "harness-error": "H",
}


class BadInput(Exception):
    """The command cannot do anything useful with what it was given (exit 2)."""


# --------------------------------------------------------------------------- loading results


@dataclass
class Problem:
    """Something wrong with one results file; the report is built without it (or without part of it)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class Recording:
    """One environment recorded on one machine for one harness commit, or an env that could not be built."""

    machine: str
    commit: str
    env_name: str  # asv's env name; the env id for an environment error
    env_id: str | None = None
    python: str | None = None
    versions: dict = field(default_factory=dict)
    cells: dict = field(default_factory=dict)  # (family/case, method, context) -> sidecar cell
    timings: dict = field(default_factory=dict)  # (family/case, method, context) -> (value, stats, samples)
    benchmark_versions: dict = field(default_factory=dict)
    asv_path: Path | None = None
    sidecar_path: Path | None = None
    error_path: Path | None = None
    error: dict | None = None  # {"stage", "message"} of an environment error
    asv_result: object = None  # asv.results.Results
    complete: bool = True
    mtime: float = 0.0
    notes: list = field(default_factory=list)  # caveats shown with this env (partial run, no timings, ...)

    @property
    def key(self) -> str:
        return f"{self.machine}/{self.env_name}"

    @property
    def is_error(self) -> bool:
        return self.error is not None

    @property
    def replica_of(self) -> str | None:
        """The machine this is an A/A copy of (``PICKLEMATRIX_REPLICATE`` records copies as ``<machine>-rep<i>``)."""
        m = REPLICA.match(self.machine)
        return m.group("base") if m else None

    @property
    def short_label(self) -> str:
        return self.env_id or self.env_name

    def version_label(self) -> list[str]:
        """Installed versions, one per line, as the column header shows them."""
        if self.is_error and not self.python:
            env = self.error.get("env", {}) if self.error else {}
            return [f"py{env.get('python', '?')}", f"cloudpickle {env.get('cloudpickle', '?')}",
                    f"dask {env.get('dask', '?')}", f"pydantic {env.get('pydantic', '?')}"]
        v = self.versions
        lines = [f"py{self.python}", f"cloudpickle {v.get('cloudpickle') or 'absent'}",
                 f"dask {v.get('dask') or 'absent'}"]
        if v.get("distributed") != v.get("dask"):
            lines.append(f"distributed {v.get('distributed') or 'absent'}")
        lines.append(f"pydantic {v.get('pydantic') or 'absent'}")
        return lines


@dataclass
class ResultSet:
    results_dir: Path
    recordings: list  # every loadable recording, all commits
    problems: list
    commit: str  # the harness commit the matrix shows
    benchmarks: dict | None

    def current(self) -> list[Recording]:
        return [r for r in self.recordings if r.commit == self.commit]


def _param_value(text) -> str:
    # asv stores param values as their repr: "'functions/lambda_square'"
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return str(text)
    return value if isinstance(value, str) else str(value)


def _unrolled(result, key) -> dict:
    """{(case, method, context): (value, stats, samples)} of one benchmark in one asv result."""
    from asv.commands.compare import unroll_result

    params = result.get_result_params(key)
    if not params:
        return {}
    out = {}
    combos = list(_product(params))
    values = result.get_result_value(key, params)
    stats = result.get_result_stats(key, params)
    samples = result.get_result_samples(key, params)
    for combo, (_name, value, stat, sample) in zip(combos, unroll_result(key, params, values, stats, samples)):
        out[tuple(_param_value(p) for p in combo)] = (value, stat, sample)
    return out


def _product(params):
    import itertools

    return itertools.product(*params)


def _isna(value) -> bool:
    """asv's "no value": None (failed) or NaN (skipped, n/a)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def derive_env_id(python: str | None, versions: dict) -> str | None:
    """matrix.toml's env id for installed versions (python by minor version), as ``nox -s matrix`` names it."""
    if not python or not versions.get("cloudpickle") or not versions.get("dask"):
        return None
    return Env(python=".".join(python.split(".")[:2]), cloudpickle=versions["cloudpickle"], dask=versions["dask"],
               pydantic=versions.get("pydantic") or "none").env_id


def _load_json(path: Path):
    with open(path) as f:
        return json.load(f)


def _valid_cell(cell) -> bool:
    return (isinstance(cell, dict) and all(isinstance(cell.get(k), str) for k in
                                           ("case", "family", "method", "context", "outcome"))
            and cell["outcome"] in OUTCOMES)


def _load_asv_result(path: Path, machine: str, problems: list):
    from asv import util as asv_util
    from asv.results import Results

    try:
        return Results.load(str(path), machine_name=machine)
    except asv_util.UserError as e:
        problems.append(Problem(str(path), f"not a loadable asv result (truncated or corrupt?): {e}"))
    except (KeyError, TypeError, ValueError) as e:
        problems.append(Problem(str(path), f"not an asv result file: {type(e).__name__}: {e}"))
    return None


def load_results(results_dir, commit: str | None = None) -> ResultSet:
    """Every recording under ``results_dir`` that can be read; every file that cannot is a Problem.

    ``commit`` (a prefix is enough) picks the harness commit the matrix shows; default: the commit of the
    most recently written results.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise BadInput(f"{results_dir}: no such results directory (record some with `nox -s matrix`)")
    problems: list[Problem] = []
    benchmarks = None
    bpath = results_dir / "benchmarks.json"
    if bpath.exists():
        try:
            benchmarks = _load_json(bpath)
        except (OSError, ValueError) as e:
            problems.append(Problem(str(bpath), f"unreadable ({e}); asv's graphs need it: re-run `nox -s matrix`"))
    recordings: list[Recording] = []
    for mdir in sorted(p for p in results_dir.iterdir() if p.is_dir()):
        files = sorted(p for p in mdir.iterdir() if p.is_file())
        if not any(p.suffix in (".json", ".outcomes", ".env-error") and p.name != "machine.json" for p in files):
            continue
        machine = mdir.name
        mjson = mdir / "machine.json"
        try:
            mdata = _load_json(mjson)
            if mdata.get("machine") != machine:
                problems.append(Problem(str(mjson), f"names machine {mdata.get('machine')!r}, but lives in "
                                                     f"{machine}/: asv will not read this directory"))
        except FileNotFoundError:
            problems.append(Problem(str(mjson), "missing: asv skips this machine's results (its timings are "
                                                "left out; outcomes are still shown)"))
        except (OSError, ValueError) as e:
            problems.append(Problem(str(mjson), f"unreadable ({e}): asv skips this machine's results"))
        recordings.extend(_load_machine(machine, files, problems))
    if not recordings:
        raise BadInput(f"{results_dir}: no results (expected <machine>/<commit>-<env>.json/.outcomes from "
                       "`nox -s matrix`)" + ("; unreadable: " + "; ".join(map(str, problems)) if problems else ""))
    commits = {r.commit for r in recordings}
    if commit:
        matches = {c for c in commits if c.startswith(commit) or (len(c) == 8 and commit.startswith(c))}
        if len(matches) != 1:
            known = ", ".join(sorted(c[:8] for c in commits))
            raise BadInput(f"--commit {commit}: {'ambiguous' if matches else 'no results for it'} "
                           f"(results exist for harness commits {known})")
        chosen = matches.pop()
    else:
        chosen = _default_commit(recordings)
    # a short (file-name) commit and its full hash are the same commit
    full = {r.commit for r in recordings if len(r.commit) > 8 and r.commit.startswith(chosen[:8])}
    if full:
        chosen = full.pop()
        for r in recordings:
            if r.commit == chosen[:8]:
                r.commit = chosen
    for r in recordings:
        if r.commit != chosen:
            for path in (r.asv_path, r.sidecar_path, r.error_path):
                if path is not None:
                    problems.append(Problem(str(path), f"recorded by harness commit {r.commit[:8]}, not "
                                                       f"{chosen[:8]} which this matrix shows (asv's graphs "
                                                       f"include it; `--commit {r.commit[:8]}` shows its matrix)"))
    return ResultSet(results_dir, recordings, problems, chosen, benchmarks)


def _git_head() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=30, check=False).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _default_commit(recordings) -> str:
    """The checked-out harness commit if it has results; else the commit with the most envs (newest wins ties)."""
    head = _git_head()
    if head and any(head.startswith(r.commit[:8]) for r in recordings):
        return next(r.commit for r in recordings if head.startswith(r.commit[:8]))
    counts: dict[str, list] = {}
    for r in recordings:
        counts.setdefault(r.commit[:8], []).append(r)
    best = max(counts.values(), key=lambda rs: (len(rs), max(r.mtime for r in rs)))
    return max(best, key=lambda r: len(r.commit)).commit


def _load_machine(machine: str, files: list, problems: list) -> list[Recording]:
    by_stem: dict[str, dict] = {}
    for path in files:
        if path.name == "machine.json":
            continue
        if path.suffix in (".json", ".outcomes", ".env-error"):
            by_stem.setdefault(path.stem, {})[path.suffix] = path
    out = []
    for stem, paths in sorted(by_stem.items()):
        commit8 = stem.split("-", 1)[0]
        rec = Recording(machine=machine, commit=commit8, env_name=stem.split("-", 1)[-1])
        rec.mtime = max(p.stat().st_mtime for p in paths.values())
        if ".env-error" in paths:
            rec.error_path = paths[".env-error"]
            try:
                data = _load_json(rec.error_path)
                rec.error = {"stage": data.get("stage", "?"), "message": str(data.get("message", "")),
                             "env": data.get("env") or {}}
                rec.env_id = (data.get("env") or {}).get("env_id") or rec.env_name
                rec.commit = data.get("commit") or commit8
            except (OSError, ValueError) as e:
                problems.append(Problem(str(rec.error_path), f"unreadable environment error ({e})"))
                continue
            out.append(rec)
            continue
        result = None
        if ".json" in paths:
            rec.asv_path = paths[".json"]
            result = _load_asv_result(rec.asv_path, machine, problems)
        if ".outcomes" in paths:
            rec.sidecar_path = paths[".outcomes"]
            _load_sidecar(rec, problems)
        if result is not None:
            _merge_asv(rec, result, problems)
            if not rec.cells and not rec.timings:  # nothing to show, but asv can still graph it
                out.append(rec)
                continue
        elif rec.asv_path is None and rec.sidecar_path is not None and rec.cells:
            rec.notes.append("no asv result next to the sidecar: no timings")
            problems.append(Problem(str(rec.sidecar_path), f"outcome sidecar without its asv result "
                                                           f"({stem}.json): `asv run` did not finish for this env; "
                                                           "outcomes are shown, timings are not"))
        elif rec.asv_path is not None and rec.sidecar_path is not None and rec.cells:
            rec.notes.append("asv result unreadable: no timings")
        if not rec.cells and not rec.timings:
            continue
        out.append(rec)
    return out


def _load_sidecar(rec: Recording, problems: list) -> None:
    path = rec.sidecar_path
    try:
        data = _load_json(path)
    except (OSError, ValueError) as e:
        problems.append(Problem(str(path), f"unreadable outcome sidecar (truncated?): {e}"))
        return
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        problems.append(Problem(str(path), "not an outcome sidecar (no 'cells' list)"))
        return
    env = data.get("env") or {}
    rec.python = env.get("python")
    rec.versions = dict(env.get("versions") or {})
    rec.env_id = data.get("env_id") or rec.env_id
    if data.get("commit"):
        if not data["commit"].startswith(rec.commit):
            problems.append(Problem(str(path), f"says harness commit {data['commit'][:8]} but its name says "
                                               f"{rec.commit}: the file was renamed or copied; using {rec.commit}"))
        else:
            rec.commit = data["commit"]
    rec.complete = bool(data.get("complete", True))
    if not rec.complete:
        rec.notes.append("partial run: the harness stopped before the end")
        problems.append(Problem(str(path), f"partial run (complete: false): the harness stopped after "
                                           f"{len(data['cells'])} cells; those are shown"))
    bad = 0
    for cell in data["cells"]:
        if not _valid_cell(cell):
            bad += 1
            continue
        rec.cells[(f"{cell['family']}/{cell['case']}", cell["method"], cell["context"])] = cell
    if bad:
        problems.append(Problem(str(path), f"{bad} malformed cell(s) left out (missing fields or an unknown "
                                           f"outcome; known: {', '.join(OUTCOMES)})"))


def _merge_asv(rec: Recording, result, problems: list) -> None:
    if not rec.commit or not result.commit_hash.startswith(rec.commit[:8]):
        problems.append(Problem(str(rec.asv_path), f"asv says commit {result.commit_hash[:8]}, the file name "
                                                   f"says {rec.commit[:8]}"))
    if len(result.commit_hash) > len(rec.commit):
        rec.commit = result.commit_hash
    if rec.sidecar_path is None:
        # no sidecar: asv's outcome codes still say what happened, without root causes
        rec.python = result.params.get("python")
        rec.versions = {k: (None if result.params.get(k) in (None, "none") else result.params.get(k))
                        for k in ("cloudpickle", "dask", "distributed", "pydantic")}
        rec.env_id = rec.env_id or derive_env_id(rec.python, rec.versions)
        rec.notes.append("no outcome sidecar: outcomes from asv's codes, no root causes")
        problems.append(Problem(str(rec.asv_path), f"asv result without its outcome sidecar "
                                                   f"({rec.asv_path.stem}.outcomes): outcomes come from asv's "
                                                   "outcome codes, root causes are unknown"))
        for (case, method, context), (value, _s, _x) in _unrolled(result, OUTCOME_KEY).items():
            if _isna(value):
                continue
            family, _, case_id = case.partition("/")
            rec.cells[(case, method, context)] = {
                "case": case_id, "family": family, "method": method, "context": context,
                "outcome": CODE_OUTCOMES.get(int(value), "harness-error"), "expected": None, "surprise": False,
                "root_cause": None, "seconds": None, "graph_bytes": None, "detail": "from asv's outcome code"}
    else:
        for name in ("python",):
            if result.params.get(name) and rec.python and result.params[name] != rec.python:
                problems.append(Problem(str(rec.asv_path), f"asv ran python {result.params[name]}, the sidecar "
                                                           f"says {rec.python}: not the same environment"))
        for name in ("cloudpickle", "dask", "distributed", "pydantic"):
            asv_v = result.params.get(name)
            asv_v = None if asv_v in (None, "none") else asv_v
            if rec.versions and asv_v != rec.versions.get(name):
                problems.append(Problem(str(rec.asv_path), f"asv ran {name} {asv_v}, the sidecar says "
                                                           f"{rec.versions.get(name)}: not the same environment"))
    rec.env_name = result.env_name
    rec.asv_result = result
    rec.timings = _unrolled(result, TIME_KEY)
    rec.benchmark_versions = dict(result.benchmark_version)


# --------------------------------------------------------------------------- the matrix


def _matrix_order():
    """(env ids in matrix.toml's profile order, the profile's baseline env id)."""
    try:
        matrix = load_matrix(os.environ.get("PICKLEMATRIX_MATRIX") or (ROOT / "matrix.toml"))
        profile = matrix.profile(os.environ.get("PICKLEMATRIX_PROFILE", "default"))
        return [e.env_id for e in profile.envs], profile.baseline
    except (MatrixError, OSError):  # no usable matrix file: order by versions, no baseline
        return [], None


def order_envs(recordings: list, order: list, baseline: str | None) -> list[Recording]:
    """Baseline first, then matrix.toml's order, then the rest; each A/A copy right after its original."""

    def rank(r: Recording):
        eid = r.env_id or ""
        pos = order.index(eid) if eid in order else len(order)
        return (eid != baseline, pos, r.is_error, r.python or "", sorted((r.versions or {}).items(),
                                                                        key=str), r.replica_of is not None,
                r.machine)

    return sorted(recordings, key=rank)


def _cell_view(cell: dict | None) -> dict | None:
    if cell is None:
        return None
    rc = cell.get("root_cause")
    return {"outcome": cell["outcome"], "expected": cell.get("expected"), "surprise": bool(cell.get("surprise")),
            "root_cause": ({"type": str(rc.get("type")), "message": str(rc.get("message"))}
                           if isinstance(rc, dict) else None),
            "detail": cell.get("detail"), "seconds": cell.get("seconds"), "graph_bytes": cell.get("graph_bytes")}


# the order the harness runs them in
METHOD_ORDER = tuple(METHODS)
CONTEXT_ORDER = CONTEXTS


def cell_sort_key(key: tuple) -> tuple:
    """(family/case, method, context) in the order the harness runs them; unknown names after, by name."""
    case, method, context = key
    return (case, METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method,
            CONTEXT_ORDER.index(context) if context in CONTEXT_ORDER else len(CONTEXT_ORDER), context)


def _ordered(values, preferred) -> list:
    seen = list(dict.fromkeys(values))
    return [v for v in preferred if v in seen] + sorted(v for v in seen if v not in preferred)


def _case_summaries(recordings) -> dict:
    """{family/case: summary} from the corpus (built-in plus any case dirs the sidecars name)."""
    from .corpus import BUILTIN_CASES, CorpusError, load_corpus

    try:
        dirs = [BUILTIN_CASES]
        for r in recordings:
            if r.sidecar_path is not None:
                try:
                    for d in _load_json(r.sidecar_path).get("case_dirs") or []:
                        if Path(d).is_dir() and Path(d) not in dirs:
                            dirs.append(Path(d))
                except (OSError, ValueError):
                    pass
        cases, _ = load_corpus(dirs)
        return {f"{c.family}/{c.case_id}": c.summary for c in cases}
    except (CorpusError, OSError, ValueError):  # summaries are a nicety: never fail the report over them
        return {}


def build_matrix(rs: ResultSet, order=None, baseline=None) -> dict:
    """The matrix as data: what matrix.json holds and the page and matrix.md render."""
    if order is None:
        order, baseline = _matrix_order()
    recs = order_envs(rs.current(), order, baseline)
    methods = _ordered([k[1] for r in recs for k in r.cells], METHOD_ORDER)
    contexts = _ordered([k[2] for r in recs for k in r.cells], CONTEXT_ORDER)
    case_keys = sorted({k[0] for r in recs for k in r.cells})
    summaries = _case_summaries(recs)
    keys = {r.key for r in recs}
    envs = []
    for r in recs:
        counts = {}
        for c in r.cells.values():
            counts[c["outcome"]] = counts.get(c["outcome"], 0) + 1
        replica_key = f"{r.replica_of}/{r.env_name}" if r.replica_of else None
        envs.append({
            "key": r.key, "machine": r.machine, "env_name": r.env_name, "env_id": r.env_id, "python": r.python,
            "versions": r.versions, "label": r.version_label(), "kind": "env-error" if r.is_error else "result",
            "baseline": bool(baseline and r.env_id == baseline and not r.replica_of),
            "replica_of": replica_key if replica_key in keys else None,
            "complete": r.complete, "notes": list(r.notes),
            "files": {k: str(p) for k, p in (("asv", r.asv_path), ("sidecar", r.sidecar_path),
                                              ("env_error", r.error_path)) if p is not None},
            "error": ({"stage": r.error["stage"], "message": r.error["message"]} if r.is_error else None),
            "counts": counts, "surprises": sum(1 for c in r.cells.values() if c.get("surprise")),
            "timed_cells": sum(1 for v in r.timings.values() if not _isna(v[0])),
        })
    cases = []
    for case in case_keys:
        family, _, case_id = case.partition("/")
        cells = {}
        for r in recs:
            if r.is_error:
                continue
            cells[r.key] = {f"{m}|{c}": _cell_view(r.cells.get((case, m, c))) for m in methods for c in contexts}
        compared = [r for r in recs if not r.is_error and not r.replica_of]
        outcomes = {m + "|" + c: {(cells[r.key][m + "|" + c] or {}).get("outcome") for r in compared}
                    for m in methods for c in contexts}
        cases.append({
            "key": case, "family": family, "case": case_id, "summary": summaries.get(case, ""),
            "differs": any(len(v) > 1 for v in outcomes.values()),
            "surprise": any((v or {}).get("surprise") for cc in cells.values() for v in cc.values()),
            "cells": cells,
        })
    return {
        "format": MATRIX_JSON_FORMAT,
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "results_dir": str(rs.results_dir), "commit": rs.commit, "baseline": baseline,
        "outcomes": list(OUTCOMES), "failures": sorted(FAILURES), "methods": methods, "contexts": contexts,
        "environments": envs, "cases": cases,
        "problems": [{"file": p.path, "message": p.message} for p in rs.problems],
    }


def asv_graph_url(benchmark: str, case_key: str, env: dict | None = None) -> str:
    """A link into asv's page for one case's graph (asv matches params by their repr).

    The x axis stays asv's default (harness commits): asv 0.6.6 draws nothing with a string param as x axis.
    """
    parts = [f"p-case={quote(repr(case_key), safe='')}"]
    if env:
        for name in ("cloudpickle", "dask", "pydantic"):
            value = (env.get("versions") or {}).get(name)
            parts.append(f"{name}={quote(value or 'none', safe='')}")
    return f"index.html#{benchmark}?{'&'.join(parts)}"


# --------------------------------------------------------------------------- rendering


def jinja_env():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["plural"] = lambda n, word: f"{n} {word}" + ("" if n == 1 else "s")
    env.globals.update(marks=OUTCOME_MARKS, outcome_list=OUTCOMES, asv_graph_url=asv_graph_url,
                       failures=BAD, short_method=short_method)
    return env


def short_method(name: str) -> str:
    return {"dask.compute": "d.c", "dask.compute(client=)": "d.c(client=)", "Client.compute": "C.c"}.get(name, name)


def outcome_class(outcome: str | None) -> str:
    if outcome is None:
        return "o-missing"
    return "o-" + outcome


def render_matrix_html(matrix: dict, reviews: list) -> str:
    env = jinja_env()
    env.globals["outcome_class"] = outcome_class
    families = list(dict.fromkeys(c["family"] for c in matrix["cases"]))
    base = next((e["key"] for e in matrix["environments"] if e["baseline"]), None)
    review_for = {r["to_key"]: r for r in reversed(reviews) if r.get("to_key") and r.get("from_key") == base}
    return env.get_template("matrix.html.j2").render(m=matrix, families=families, reviews=reviews,
                                                     review_for=review_for,
                                                     css=(TEMPLATES / "picklematrix.css").read_text())


def md_code(text) -> str:
    """``text`` as a markdown code span that survives a table cell (``|``) and HTML-looking text (``<lambda>``)."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    ticks = max((len(m) for m in re.findall(r"`+", text)), default=0) + 1
    fence = "`" * ticks
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_text(text) -> str:
    """Plain text safe in a markdown table cell: no HTML, no pipes, one line."""
    text = " ".join(str(text).split())
    # "_" stays: GFM never reads an underscore inside a word (paths, env vars) as emphasis
    for ch, rep in (("\\", "\\\\"), ("|", "\\|"), ("<", "&lt;"), (">", "&gt;"), ("*", "\\*"),
                    ("[", "\\["), ("]", "\\]"), ("`", "\\`")):
        text = text.replace(ch, rep)
    return text


def _cell_md(v: dict | None) -> str:
    if v is None:
        return "–"
    mark = OUTCOME_MARKS.get(v["outcome"], "?")
    out = f"{mark} {v['outcome']}"
    if v.get("surprise"):
        out += f" ❗(expected {v.get('expected')})"
    if v.get("root_cause") and v["outcome"] != PASS:
        out += " " + md_code(f"{v['root_cause']['type']}: {v['root_cause']['message']}"[:160])
    return out


MD_LIMIT = 60000  # a GitHub comment holds 65536 characters


def render_matrix_md(matrix: dict) -> str:
    envs = matrix["environments"]
    results = [e for e in envs if e["kind"] == "result"]
    compared = [e for e in results if not e["replica_of"]]
    lines = [f"## picklematrix outcome matrix (harness commit `{matrix['commit'][:8]}`)", ""]
    ncells = len(matrix["methods"]) * len(matrix["contexts"])
    lines.append(f"{len(compared)} environment{'' if len(compared) == 1 else 's'}"
                 + (f" (+{len(results) - len(compared)} A/A cop{'y' if len(results) - len(compared) == 1 else 'ies'})"
                    if len(results) > len(compared) else "")
                 + (f", {len(envs) - len(results)} could not be built" if len(envs) > len(results) else "")
                 + f"; {len(matrix['cases'])} cases × {ncells} cell{'' if ncells == 1 else 's'} "
                 + f"({', '.join(matrix['methods'])} × {', '.join(matrix['contexts'])}).")
    lines += ["", "| environment | versions | pass | failed | ran locally | other | surprises |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for e in envs:
        name = md_code(e["env_id"] or e["env_name"]) + (" (baseline)" if e["baseline"] else "") + \
            (f" (A/A copy, {md_text(e['machine'])})" if e["replica_of"] else "")
        if e["kind"] == "env-error":
            first = next((ln for ln in e["error"]["message"].splitlines() if ln.strip()), "")
            lines.append(f"| {name} | could not be built ({md_text(e['error']['stage'])}) | "
                         f"{md_code(first[:200])} | | | | |")
            continue
        c = e["counts"]
        failed = sum(n for o, n in c.items() if o in BAD)
        other = sum(n for o, n in c.items() if o not in BAD and o not in (PASS, RAN_LOCALLY))
        notes = (" — " + "; ".join(md_text(n) for n in e["notes"])) if e["notes"] else ""
        lines.append(f"| {name} | {md_text(', '.join(e['label']))}{notes} | {c.get(PASS, 0)} | {failed} | "
                     f"{c.get(RAN_LOCALLY, 0)} | {other} | {e['surprises']} |")
    differing = [c for c in matrix["cases"] if c["differs"]]
    if compared and differing:
        lines += ["", "### Cells whose outcome differs between environments", "",
                  "| case | method @ context | " + " | ".join(md_code(e["env_id"] or e["env_name"])
                                                       for e in compared) + " |",
                  "|---|---|" + "---|" * len(compared)]
        for case in differing:
            for mc in (f"{m}|{c}" for m in matrix["methods"] for c in matrix["contexts"]):
                values = [case["cells"][e["key"]][mc] for e in compared]
                if len({(v or {}).get("outcome") for v in values}) <= 1:
                    continue
                m, c = mc.split("|")
                lines.append(f"| {md_code(case['key'])} | {md_text(m)} @ {md_text(c)} | "
                             + " | ".join(_cell_md(v) for v in values) + " |")
    surprises = [(case, e, mc, case["cells"][e["key"]][mc]) for case in matrix["cases"] for e in compared
                 for mc in case["cells"].get(e["key"], {}) if (case["cells"][e["key"]][mc] or {}).get("surprise")]
    if surprises:
        lines += ["", f"### Surprises: {len(surprises)} cells differ from their case's expectation", ""]
        for case, e, mc, v in surprises:
            m, c = mc.split("|")
            lines.append(f"- {md_code(case['key'])} {md_text(m)} @ {md_text(c)} on {md_code(e['env_id'])}: "
                         f"{_cell_md(v)}")
    if matrix["problems"]:
        lines += ["", f"### Problems with the results ({len(matrix['problems'])})", ""]
        lines += [f"- {md_code(p['file'])}: {md_text(p['message'])}" for p in matrix["problems"]]
    lines += ["", "Outcome marks: " + ", ".join(f"{m} {o}" for o, m in OUTCOME_MARKS.items()) + ".", ""]
    text = "\n".join(lines)
    if len(text) > MD_LIMIT:
        cut = text.rfind("\n", 0, MD_LIMIT - 200)
        text = text[:cut] + "\n\n… cut to fit a PR comment: the whole matrix is in matrix.json and matrix.html.\n"
    return text


# --------------------------------------------------------------------------- web assets (pinned npm packages)


@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    integrity: str  # the registry's dist.integrity: a tarball that does not match is rejected

    @property
    def dirname(self) -> str:
        return f"{self.name}-{self.version}"


@dataclass(frozen=True)
class WebAsset:
    url: str  # what asv's index.html loads
    package: NpmPackage
    path: str  # the same file inside the npm package
    also: tuple = ()  # files the asset loads in turn (bootstrap's css -> ../fonts/)


_JQUERY = NpmPackage("jquery", "3.3.1", "sha512-Ubldcmxp5np52/ENotGxlLe6aGMvmF4R8S6tZjsP6Knsaxd/xp3Zrh50cG93lR6nPXyUFwzN3ZSOQI0wRJNdGg==")
_FLOT = NpmPackage("flot", "0.8.3", "sha512-xg2otcTJDvS+ERK+my4wxG/ASq90QURXtoM4LhacCq0jQW2jbyjdttbRNqU2cPykrpMvJ6b2uSp6SAgYAzj9tQ==")
_ORDERBARS = NpmPackage("flot-orderbars", "1.0.0", "sha512-Jv51fvzevUjNXEeozpwEKfPjhiZhfiJddv0WHjduUTCmSF+7T5K7C9c9Y1wIVmUhDBv5fLMjgbwKecT0GIKPZA==")
# cdnjs's "stupidtable" 1.0.1 is not on npm; the same plugin (joequery/Stupid-Table-Plugin) is published as
# stupid-table-plugin, whose only release 1.1.3 keeps the API asv uses (stupidtable(), stupidsort()).
_STUPIDTABLE = NpmPackage("stupid-table-plugin", "1.1.3", "sha512-2Vk7XouQPxUQPRe9w0Fu7ZZ8kHLK7rDoLMsCgtKxRNJ7f4dSOGvW9CkHsq5wD6QsaEnWoyLBYH3xOEsrK3yWBg==")
_MD5 = NpmPackage("blueimp-md5", "2.19.0", "sha512-DRQrD6gJyy8FbiE4s+bDoXS9hiW3Vbx5uCdwvcCf3zLHL+Iv7LtGHLpr+GZV8rHG8tK766FGYBwRbu8pELTt+w==")
_BOOTSTRAP = NpmPackage("bootstrap", "3.1.1", "sha512-TAzqS8E/ISpVHP29gYhy+1NSV+FJwApDVQhDfgLYsIuUDJiqJzH2DfORN5tiu+Ie2iBLrzEG34t4Rf465cigqg==")
_GLYPHS = tuple(f"dist/fonts/glyphicons-halflings-regular.{ext}" for ext in ("eot", "svg", "ttf", "woff"))

# Every CDN file asv 0.6.6's index.html loads. flot's npm package ships the unminified 0.8.3 sources (cdnjs
# serves a minified build of the same release).
WEB_ASSETS = (
    WebAsset("https://code.jquery.com/jquery-3.3.1.min.js", _JQUERY, "dist/jquery.min.js"),
    WebAsset("https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js", _FLOT, "jquery.flot.js"),
    WebAsset("https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js", _FLOT,
             "jquery.flot.time.js"),
    WebAsset("https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js", _FLOT,
             "jquery.flot.selection.js"),
    WebAsset("https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js", _FLOT,
             "jquery.flot.categories.js"),
    WebAsset("https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js", _ORDERBARS,
             "js/jquery.flot.orderBars.js"),
    WebAsset("https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js", _STUPIDTABLE,
             "stupidtable.min.js"),
    WebAsset("https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js", _MD5, "js/md5.min.js"),
    WebAsset("https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js", _BOOTSTRAP,
             "dist/js/bootstrap.min.js"),
    WebAsset("https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css", _BOOTSTRAP,
             "dist/css/bootstrap.min.css", also=_GLYPHS),
)
LICENSE_NAMES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENSE-MIT", "MIT-LICENSE.txt")


class AssetError(Exception):
    """The offline copies of asv's web assets could not be made."""


def asset_cache_dir() -> Path:
    if os.environ.get("PICKLEMATRIX_ASSET_CACHE"):
        return Path(os.environ["PICKLEMATRIX_ASSET_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "picklematrix" / "npm"


def _sri(data: bytes, algorithm: str) -> str:
    return f"{algorithm}-{base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def _matches_integrity(data: bytes, integrity: str) -> bool:
    return any(_sri(data, token.split("-", 1)[0]) == token for token in integrity.split()
               if token.split("-", 1)[0] in ("sha256", "sha384", "sha512"))


def fetch_package(pkg: NpmPackage, cache: Path) -> Path:
    """The package's tarball, from the cache or the npm registry (``npm pack``), checked against its pin."""
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"{pkg.name.replace('/', '-').lstrip('@')}-{pkg.version}.tgz"
    if tarball.exists() and _matches_integrity(tarball.read_bytes(), pkg.integrity):
        return tarball
    npm = shutil.which("npm")
    if npm is None:
        raise AssetError(f"npm not found: asv's pages need {pkg.name}@{pkg.version} from the npm registry "
                         f"(install Node.js and npm, e.g. `apt-get install npm`, or put the tarball in {cache})")
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        proc = subprocess.run([npm, "pack", f"{pkg.name}@{pkg.version}", "--pack-destination", tmp, "--json",
                               "--ignore-scripts"], capture_output=True, text=True, timeout=300, check=False)
        packed = list(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or len(packed) != 1:
            raise AssetError(f"npm pack {pkg.name}@{pkg.version} failed (exit {proc.returncode}):\n"
                             f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
        data = packed[0].read_bytes()
        if not _matches_integrity(data, pkg.integrity):
            raise AssetError(f"{pkg.name}@{pkg.version} from the registry does not match its pinned integrity "
                             f"{pkg.integrity[:30]}… (got {_sri(data, 'sha512')[:30]}…): refusing to use it")
        os.replace(packed[0], tarball)
    return tarball


def _extract(tarball: Path, members: list, dest: Path) -> None:
    with tarfile.open(tarball, "r:gz") as tar:
        names = {m.name: m for m in tar.getmembers() if m.isfile()}
        for member in members:
            info = names.get(f"package/{member}")
            if info is None:
                raise AssetError(f"{tarball.name} has no {member}")
            target = dest / member
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(info).read())


def vendor_assets(site: Path, cache: Path | None = None) -> dict:
    """Copy every pinned asset (and each package's licence) into ``<site>/vendor/<pkg>-<version>/``."""
    cache = cache or asset_cache_dir()
    vendor = site / "vendor"
    packages: dict[NpmPackage, list] = {}
    for asset in WEB_ASSETS:
        packages.setdefault(asset.package, []).extend([asset.path, *asset.also])
    manifest = {}
    for pkg, members in packages.items():
        tarball = fetch_package(pkg, cache)
        with tarfile.open(tarball, "r:gz") as tar:
            licenses = [m.name[len("package/"):] for m in tar.getmembers()
                        if m.isfile() and m.name[len("package/"):] in LICENSE_NAMES]
        _extract(tarball, sorted(set(members) | set(licenses)), vendor / pkg.dirname)
        manifest[pkg.dirname] = {"npm": f"{pkg.name}@{pkg.version}", "integrity": pkg.integrity,
                                 "files": sorted(set(members)), "licenses": licenses}
    (vendor / "ASSETS.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


_TAG = re.compile(r"<(script|link)\b([^>]*)>", re.IGNORECASE)
_ATTR = re.compile(r'([\w:-]+)\s*=\s*"([^"]*)"')


def localize_html(html: str, site: Path) -> tuple[str, list]:
    """Point every CDN ``<script>``/``<link>`` at the vendored copy. Returns (html, what was done)."""
    by_url = {a.url: a for a in WEB_ASSETS}
    done = []

    def fix(m):
        tag, attrs = m.group(1), m.group(2)
        attr = "src" if tag.lower() == "script" else "href"
        found = dict(_ATTR.findall(attrs))
        url = found.get(attr, "")
        if not re.match(r"(?i)^(https?:)?//", url):
            return m.group(0)
        if tag.lower() == "link" and found.get("rel", "").lower() not in ("stylesheet", "preload",
                                                                          "modulepreload", "icon"):
            return m.group(0)  # e.g. rel="alternate": a link, not something the page loads
        asset = by_url.get(url)
        if asset is None:
            raise AssetError(f"asv's page loads {url}, which has no pinned local copy: add it to WEB_ASSETS "
                             "in src/picklematrix/report.py")
        local = f"vendor/{asset.package.dirname}/{asset.path}"
        data = (site / local).read_bytes()
        keep_sri = "integrity" in found and _matches_integrity(data, found["integrity"])
        new = re.sub(rf'\b{attr}\s*=\s*"[^"]*"', f'{attr}="{local}"', attrs, count=1)
        for name in ("crossorigin", "referrerpolicy") + (() if keep_sri else ("integrity",)):
            new = re.sub(rf'\s+{name}(\s*=\s*"[^"]*")?', "", new)
        done.append({"url": url, "local": local, "integrity_checked": keep_sri})
        return f"<{tag}{new}>"

    return _TAG.sub(fix, html), done


def remote_loads(html: str) -> list[str]:
    """URLs a page would fetch from another host (scripts, stylesheets, images, frames)."""
    out = []
    for m in re.finditer(r"<(script|link|img|iframe|source|embed)\b([^>]*)>", html, re.IGNORECASE):
        attrs = dict(_ATTR.findall(m.group(2)))
        if m.group(1).lower() == "link" and attrs.get("rel", "").lower() in ("alternate", "canonical"):
            continue
        for name in ("src", "href"):
            if re.match(r"(?i)^(https?:)?//", attrs.get(name, "")):
                out.append(attrs[name])
    return out


# --------------------------------------------------------------------------- asv publish


def stage_results(rs: ResultSet, stage: Path) -> dict:
    """A results dir asv can publish without tripping: only loadable files, one benchmarks.json for all.

    ``benchmarks.json`` is rewritten by every ``asv run`` with the params of that run's corpus
    (``PICKLEMATRIX_ONLY``); asv drops from its graphs every result whose params it does not list. The staged
    copy lists every case/method/context some result has. Returns {benchmark: values added per param}.
    """
    machines = set()
    union: dict[str, list] = {}
    for r in rs.recordings:
        if r.asv_path is None or r.asv_result is None:
            continue
        machine_json = r.asv_path.parent / "machine.json"
        if not machine_json.exists():
            continue
        dest = stage / r.machine
        dest.mkdir(parents=True, exist_ok=True)
        if r.machine not in machines:
            shutil.copy2(machine_json, dest / "machine.json")
            machines.add(r.machine)
        shutil.copy2(r.asv_path, dest / r.asv_path.name)
        for key in (OUTCOME_KEY, GRAPH_KEY, TIME_KEY):
            slots = union.setdefault(key, [])
            for i, values in enumerate(r.asv_result.get_result_params(key) or []):
                while len(slots) <= i:
                    slots.append([])
                slots[i].extend(v for v in values if v not in slots[i])
    if not rs.benchmarks:
        return {}
    benchmarks = json.loads(json.dumps(rs.benchmarks))
    widened = {}
    for key, params in union.items():
        old = (benchmarks.get(key) or {}).get("params")
        if not old or len(old) != len(params):
            continue
        new = [_merge_params(o, u) for o, u in zip(old, params)]
        if new != old:
            widened[key] = [len(n) - len(o) for o, n in zip(old, new)]
            benchmarks[key]["params"] = new
    (stage / "benchmarks.json").write_text(json.dumps(benchmarks, indent=1))
    return widened


def _merge_params(old: list, found: list) -> list:
    added = [v for v in found if v not in old]
    if not added:
        return list(old)
    merged = list(old) + added
    if all("/" in _param_value(v) for v in merged):  # case keys: family/case, sorted as the suite sorts them
        merged.sort(key=_param_value)
    return merged


def asv_publish(rs: ResultSet, site: Path, repo: Path = ROOT) -> tuple[bool, str, dict]:
    """Run the real ``asv publish`` into ``site``. Returns (ok, asv's output, params widened)."""
    with tempfile.TemporaryDirectory(prefix="picklematrix-publish-") as tmp:
        stage = Path(tmp) / "results"
        stage.mkdir()
        widened = stage_results(rs, stage)
        if not any(stage.glob("*/machine.json")):
            return False, "no asv result could be published (every asv result file was unreadable or missing)", {}
        if not (stage / "benchmarks.json").exists():
            return False, f"{rs.results_dir / 'benchmarks.json'} is missing or unreadable: asv cannot publish", {}
        conf = {
            "version": 1, "project": "picklematrix", "project_url": "matrix.html", "repo": str(repo),
            "branches": ["HEAD"], "dvcs": "git", "environment_type": "picklematrix",
            "plugins": [".picklematrix.asv_env"], "benchmark_dir": str(ROOT / "benchmarks"),
            "results_dir": str(stage), "html_dir": str(site), "env_dir": str(Path(tmp) / "env"),
            "matrix": {},
        }
        conf_path = Path(tmp) / "asv.conf.json"
        conf_path.write_text(json.dumps(conf, indent=1))
        proc = subprocess.run([sys.executable, "-m", "asv", "publish", "--config", str(conf_path)],
                              capture_output=True, text=True, timeout=600, cwd=tmp, check=False)
        output = (proc.stdout + proc.stderr).strip()
        ok = proc.returncode == 0 and (site / "index.html").exists()
        return ok, output, widened


# --------------------------------------------------------------------------- the whole report


def default_html_dir(results_dir: Path) -> Path:
    """Where the site goes: ``<repo>/html`` for the default results dir, else next to the results dir."""
    results_dir = results_dir.resolve()
    return ROOT / "html" if results_dir == (ROOT / "results").resolve() else results_dir.parent / "html"


NAV_LINK = '<li id="nav-li-matrix"><a href="matrix.html">Outcome matrix</a></li>'


def _add_nav(html: str) -> str:
    anchor = '<li id="nav-li-regressions">'
    if anchor in html and NAV_LINK not in html:
        return html.replace(anchor, NAV_LINK + "\n\t" + anchor, 1)
    return html


@dataclass
class ReportOutcome:
    site: Path
    matrix: dict
    problems: list  # Problems with result files
    failures: list  # parts of the report that could not be built
    assets: list = field(default_factory=list)


def build_report(results_dir, html_dir=None, commit=None, asset_cache=None, repo=ROOT, log=print) -> ReportOutcome:
    """Everything ``nox -s report`` writes. Raises BadInput when there is nothing to report."""
    results_dir = Path(results_dir).resolve()
    site = Path(html_dir).resolve() if html_dir else default_html_dir(results_dir)
    rs = load_results(results_dir, commit)
    failures: list[str] = []
    site.parent.mkdir(parents=True, exist_ok=True)
    ok, output, widened = asv_publish(rs, site, repo)
    if not ok:
        failures.append(f"asv publish failed; the matrix page is still written:\n{output[-4000:]}")
        site.mkdir(parents=True, exist_ok=True)
    else:
        log(f"asv publish: {site / 'index.html'}")
        for key, added in widened.items():
            rs.problems.append(Problem(str(results_dir / "benchmarks.json"),
                                       f"lists fewer params for {key} than the results have (an `asv run` with "
                                       f"PICKLEMATRIX_ONLY rewrote it); widened for the report by {added}"))
    assets = []
    if ok:
        try:
            vendor_assets(site, Path(asset_cache) if asset_cache else None)
            index = site / "index.html"
            html, assets = localize_html(index.read_text(), site)
            index.write_text(_add_nav(html))
        except (AssetError, OSError, subprocess.SubprocessError) as e:
            failures.append(f"asv's pages still load their scripts from CDNs (no internet, no graphs): {e}")
    matrix = build_matrix(rs)
    saved = copy_saved_reviews(results_dir, site)
    reviews = saved + write_baseline_reviews(rs, matrix, site, failures, skip={r["href"] for r in saved})
    (site / "matrix.html").write_text(render_matrix_html(matrix, reviews))
    matrix_json, matrix_md = json.dumps(matrix, indent=1) + "\n", render_matrix_md(matrix)
    for where in (results_dir, site):
        (where / "matrix.json").write_text(matrix_json)
        (where / "matrix.md").write_text(matrix_md)
    for page in site.glob("*.html"):
        remote = remote_loads(page.read_text())
        if remote and ok and not any("CDNs" in f for f in failures):
            failures.append(f"{page} still loads from other hosts: {', '.join(remote)}")
    return ReportOutcome(site, matrix, rs.problems, failures, assets)


def write_baseline_reviews(rs: ResultSet, matrix: dict, site: Path, failures: list, skip=frozenset()) -> list:
    """A review of baseline -> each other env (same machine), linked from the matrix page's column headers.

    A review of the same pair saved by ``nox -s review`` (in ``skip``) is kept as it is.
    """
    from .review import build_review, render_review_html

    base = next((e for e in matrix["environments"] if e["baseline"]), None)
    if base is None:
        return []
    by_key = {r.key: r for r in rs.current()}
    out = []
    for e in matrix["environments"]:
        if e["kind"] != "result" or e["replica_of"] or e["key"] == base["key"] or e["machine"] != base["machine"]:
            continue
        try:
            review = build_review(rs, by_key[base["key"]], by_key[e["key"]])
            name = f"reviews/{review['slug']}.html"
            if name in skip:
                continue
            page = render_review_html(review)
        except Exception as exc:  # noqa: BLE001 -- one review must not cost the page; the failure is reported
            failures.append(f"review {base['env_id']} -> {e['env_id']}: {type(exc).__name__}: {exc}")
            continue
        (site / "reviews").mkdir(exist_ok=True)
        (site / name).write_text(page)
        out.append({"href": name, "from": review["from"]["label"], "to": review["to"]["label"],
                    "from_key": base["key"], "to_key": e["key"], "verdict": review["verdict"], "status": review["exit_status"]})
    return out


def copy_saved_reviews(results_dir: Path, site: Path) -> list:
    """Reviews written by ``nox -s review`` (``<results>/reviews/*.html``), copied into the site."""
    out = []
    for page in sorted((results_dir / "reviews").glob("*.html")):
        (site / "reviews").mkdir(exist_ok=True)
        shutil.copy2(page, site / "reviews" / page.name)
        meta = page.with_suffix(".meta")
        info = {}
        if meta.exists():
            try:
                info = _load_json(meta)
            except (OSError, ValueError):
                info = {}
        out.append({"href": f"reviews/{page.name}", "from": info.get("from", page.stem),
                    "to": info.get("to", ""), "from_key": info.get("from_key"), "to_key": info.get("to_key"), "verdict": info.get("verdict", ""),
                    "status": info.get("exit_status")})
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m picklematrix.report", description=__doc__.splitlines()[0])
    p.add_argument("--results", default=os.environ.get("PICKLEMATRIX_RESULTS", str(ROOT / "results")),
                   help="results directory (default: $PICKLEMATRIX_RESULTS or ./results)")
    p.add_argument("--html", help="where the site goes (default: ./html, or <results>/../html)")
    p.add_argument("--commit", help="harness commit whose matrix to show (default: the newest results)")
    p.add_argument("--asset-cache", help="npm tarball cache (default: $PICKLEMATRIX_ASSET_CACHE or "
                                         "~/.cache/picklematrix/npm)")
    p.add_argument("--strict", action="store_true", help="exit 1 when any result file had a problem")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        out = build_report(args.results, args.html, args.commit, args.asset_cache)
    except BadInput as e:
        print(f"picklematrix report: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for p in out.problems:
        print(f"warning: {p}", file=sys.stderr)
    for f in out.failures:
        print(f"error: {f}", file=sys.stderr)
    results = Path(args.results)
    print(f"matrix page: {out.site / 'matrix.html'}\nasv site:    {out.site / 'index.html'}\n"
          f"summary:     {results / 'matrix.md'}, {results / 'matrix.json'}\n"
          f"browse:      python3 -m http.server --bind 127.0.0.1 --directory {out.site} 8080")
    if out.failures or (args.strict and out.problems):
        return EXIT_PARTIAL
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
