"""Loading recorded results: asv result files, outcome sidecars and environment errors, and their Problems."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from picklematrix import sidecar
from picklematrix.envs import skew
from picklematrix.outcomes import OUTCOMES
from picklematrix.report import asv_results
from picklematrix.report.checkout import fingerprint_head
from picklematrix.report.naming import (
    corpus_label,
    distinguish,
    extra_label,
    name_cells,
    source_label,
    source_note,
)
from picklematrix.report.problems import BadInput, Problem, check_machine_json, name_partial
from picklematrix.run.selection import COMPUTE
from picklematrix.versions import ABSENT, EXTRA_KEY, PACKAGES, env_id_of

REPLICA = re.compile(r"^(?P<base>.+)-rep(?P<n>\d+)$")
VERSION_NAMES = PACKAGES
RESULT_SUFFIXES = (".json", sidecar.SUFFIX, ".env-error")
# What the review and the bisect write into the results directory: not machines (a bisect's .json is no asv result)
NOT_MACHINES = ("reviews", "bisect")


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
    case_dirs: list = field(default_factory=list)  # the corpus dirs the sidecar says the run read
    case_digest: str | None = None  # their content digest: the record's corpus (None: the built-in one)
    show_corpus: bool = False  # its label names its corpus: records of several corpora are shown (naming)
    asv_path: Path | None = None
    sidecar_path: Path | None = None
    error_path: Path | None = None
    error: dict | None = None  # {"stage", "message", "env"} of an environment error
    asv_result: object = None  # asv.results.Results
    complete: bool = True
    missing: list = field(default_factory=list)  # of a partial record: cells the complete ones have, it lacks
    partial_path: Path | None = None  # a ``.partial`` an interrupted re-recording of this env left beside it
    mtime: float = 0.0
    notes: list = field(default_factory=list)  # caveats shown with this env (partial run, no timings, ...)
    fingerprint_note: str | None = None  # set when shown although recorded under an older fingerprint
    extra: dict = field(default_factory=dict)  # its extra pins' installed versions (the sidecar's ``extra``)
    requirements: dict = field(default_factory=dict)  # the requirements file it was read from (sidecar.requirements)
    label_extra: dict = field(default_factory=dict)  # those that tell it from envs of the same axes (naming)
    extra_count: int = 0

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
        lines = [f"py{self.python}", f"cloudpickle {v.get('cloudpickle') or ABSENT}",
                 f"dask {v.get('dask') or ABSENT}"]
        if v.get("distributed") != v.get("dask"):
            lines.append(f"distributed {v.get('distributed') or ABSENT}")
        lines.append(f"pydantic {v.get('pydantic') or ABSENT}")
        if self.env_id and skew.SEPARATOR in self.env_id:
            # a client on another env's cluster (picklematrix.envs.skew): what differs first, then the client's
            lines = [skew.skew_label(self.env_id), f"client {lines[0]}", *lines[1:]]
        return lines + extra_label(self) + source_label(self.requirements) + corpus_label(self)


@dataclass
class ResultSet:
    """Every loadable recording of a results directory, the problems met, and the harness commit shown.

    ``commit`` is a fingerprint commit (picklematrix.record.fingerprint: the last commit touching the code recordings
    depend on). An env recorded only under an older fingerprint is shown too, marked with it (``older``).
    """

    results_dir: Path
    recordings: list  # every loadable recording, all commits
    problems: list
    commit: str  # the harness commit the report shows
    benchmarks: dict | None
    older: list = field(default_factory=list)  # shown with ``commit``'s: envs recorded only at older fingerprints

    def current(self) -> list[Recording]:
        return [r for r in self.recordings if r.commit == self.commit] + self.older


def derive_env_id(python: str | None, versions: dict, digest: str | None = None) -> str | None:
    """The env id for installed versions and an extra pins' digest (asv's ``extra``), as ``nox -s matrix`` names
    it (picklematrix.versions.env_id_of); None without python, cloudpickle or dask (no env of the matrix)."""
    if not python or not versions.get("cloudpickle") or not versions.get("dask"):
        return None
    return env_id_of(python, versions, digest)


def _load_json(path: Path):
    with open(path) as f:
        return json.load(f)


def load_results(results_dir, commit: str | None = None, checkout: Path | None = None) -> ResultSet:
    """Every recording under ``results_dir`` that can be read; every file that cannot is a Problem.

    ``commit`` (a prefix is enough) picks the harness commit the report shows; default: the commit checked
    out in ``checkout`` if it has results, else the one with the most envs.
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
    for mdir in sorted(p for p in results_dir.iterdir() if p.is_dir() and p.name not in NOT_MACHINES):
        files = sorted(p for p in mdir.iterdir() if p.is_file())
        if not any(p.suffix in RESULT_SUFFIXES and p.name != "machine.json" for p in files):
            continue
        check_machine_json(mdir, problems)
        recordings.extend(_load_machine(mdir.name, files, problems))
    if not recordings:
        raise BadInput(f"{results_dir}: no results (expected <machine>/<commit>-<env>.json/.outcomes from "
                       "`nox -s matrix`)" + ("; unreadable: " + "; ".join(map(str, problems)) if problems else ""))
    distinguish(recordings)
    chosen = _choose_commit(recordings, commit, checkout)
    # An env recorded only under an older fingerprint is still an answer: shown, marked with its commit.
    # With an explicit --commit only that commit is shown (the user asked for that state of the code).
    older = [] if commit else _older_recordings(recordings, chosen)
    _name_missing_cells([r for r in recordings if r.commit == chosen], problems)
    for r in recordings:
        if r.commit != chosen:
            shown = any(r is o for o in older)
            for path in (r.asv_path, r.sidecar_path, r.error_path):
                if path is not None:
                    problems.append(Problem(str(path), f"recorded by harness commit {r.commit[:8]}, not "
                                                       f"{chosen[:8]} which this report shows" + (
                                                           ": shown, marked with its commit, since this env has "
                                                           f"no record at {chosen[:8]} (`nox -s matrix` records "
                                                           "it again)" if shown else
                                                           f" (asv's graphs include it; `--commit "
                                                           f"{r.commit[:8]}` shows its table)")))
    return ResultSet(results_dir, recordings, problems, chosen, benchmarks, older)


def only_corpus(rs: ResultSet, case_dirs=None) -> ResultSet:
    """``rs`` with only the records of one corpus, and the env errors: a review compares like with like. The
    corpus is that of ``case_dirs`` (``--cases``: their content digest) when given; else the built-in corpus when
    a record ran it, else the one user corpus recorded. When no record ran the corpus asked for, or several user
    corpora and no built-in one were recorded, a :class:`BadInput` names the corpora recorded."""
    from picklematrix.run.corpus import case_digest

    held = {r.case_digest for r in rs.recordings if not r.is_error}
    if case_dirs:
        digest = case_digest([Path(d) for d in case_dirs])
    elif None in held or len(held) <= 1:
        digest = None if None in held or not held else next(iter(held))
    else:
        names = "; ".join(sorted({corpus_name(r) for r in rs.recordings if not r.is_error}))
        raise BadInput(f"{rs.results_dir}: records of several corpora and none of the built-in one ({names}): "
                       "say which to review with --cases DIR")
    keep = [r for r in rs.recordings if r.is_error or r.case_digest == digest]
    if not any(not r.is_error for r in keep) and held:
        wanted = "the built-in corpus" if digest is None else f"the case folders with digest {digest[:8]}"
        names = "; ".join(sorted({corpus_name(r) for r in rs.recordings if not r.is_error}))
        raise BadInput(f"{rs.results_dir}: no record of {wanted} (recorded: {names}); review a corpus that was "
                       "recorded (--cases DIR, or none for the built-in one)")
    gone = {str(p) for r in rs.recordings if not any(r is k for k in keep)
            for p in (r.asv_path, r.sidecar_path, r.error_path) if p is not None}
    return ResultSet(rs.results_dir, keep, [p for p in rs.problems if p.path not in gone], rs.commit, rs.benchmarks,
                     [r for r in rs.older if any(r is k for k in keep)])


def corpus_name(rec: Recording) -> str:
    """Which corpus a record ran, in words: ``the built-in corpus``, or its case folders and digest."""
    if not rec.case_digest:
        return "the built-in corpus"
    return f"case folders {', '.join(rec.case_dirs) or '?'} (digest {rec.case_digest[:8]})"


def _older_recordings(recordings: list, chosen: str) -> list[Recording]:
    """For each env (machine and env id or asv env name) without a record at ``chosen``: its newest record at
    another fingerprint, with a note naming that commit. An env error there counts as that env's record."""
    def keys(r):
        return {(r.machine, r.env_name), (r.machine, r.env_id or r.env_name)}

    have = set().union(*(keys(r) for r in recordings if r.commit == chosen))
    newest: dict = {}
    for r in sorted((r for r in recordings if r.commit != chosen), key=lambda r: r.mtime, reverse=True):
        if keys(r) & have or any(keys(r) & keys(o) for o in newest.values()):
            continue
        newest[(r.machine, r.env_name)] = r
    for r in newest.values():
        r.fingerprint_note = (f"recorded under an older fingerprint, commit {r.commit[:8]} (the code it depends on "
                              f"changed since: {chosen[:8]}); `nox -s matrix` records it again")
        r.notes.append(r.fingerprint_note)
    return sorted(newest.values(), key=lambda r: (r.machine, r.env_name))


def _name_missing_cells(current: list, problems: list) -> None:
    """A partial record's missing cells: those the complete records of the same commit and corpus have and it
    lacks."""
    for r in current:
        if r.complete or r.is_error:
            continue
        expected = {k for o in current if o.complete and not o.is_error and o.case_digest == r.case_digest
                    for k in o.cells}
        r.missing = sorted(expected - set(r.cells))
        if r.missing:
            problems.append(Problem(str(r.sidecar_path), f"partial record: {len(r.missing)} cell(s) the other "
                                                         f"envs have were never run: {name_cells(r.missing)}"))


def _choose_commit(recordings: list, commit: str | None, checkout: Path | None) -> str:
    """The harness commit to show, made the full hash on every recording of it that has only its short form."""
    commits = {r.commit for r in recordings}
    if commit:
        matches = {c for c in commits if c.startswith(commit) or (len(c) == 8 and commit.startswith(c))}
        if len(matches) != 1:
            known = ", ".join(sorted(c[:8] for c in commits))
            raise BadInput(f"--commit {commit}: {'ambiguous' if matches else 'no results for it'} "
                           f"(results exist for harness commits {known})")
        chosen = matches.pop()
    else:
        chosen = _default_commit(recordings, fingerprint_head(checkout))
    # a short (file-name) commit and its full hash are the same commit
    full = {r.commit for r in recordings if len(r.commit) > 8 and r.commit.startswith(chosen[:8])}
    if full:
        chosen = full.pop()
        for r in recordings:
            if r.commit == chosen[:8]:
                r.commit = chosen
    return chosen


def _default_commit(recordings, head: str | None) -> str:
    """The checkout's fingerprint commit if it has results; else the commit with the most envs (newest wins ties).

    ``head`` is the fingerprint (picklematrix.record.fingerprint), not HEAD: a docs-only commit keeps every result."""
    if head and any(head.startswith(r.commit[:8]) for r in recordings):
        return next(r.commit for r in recordings if head.startswith(r.commit[:8]))
    counts: dict[str, list] = {}
    for r in recordings:
        counts.setdefault(r.commit[:8], []).append(r)
    best = max(counts.values(), key=lambda rs: (len(rs), max(r.mtime for r in rs)))
    return max(best, key=lambda r: len(r.commit)).commit


def _load_machine(machine: str, files: list, problems: list) -> list[Recording]:
    by_stem: dict[str, dict] = {}
    partials: dict[str, Path] = {}
    for path in files:
        if path.name.endswith(sidecar.SUFFIX + sidecar.PARTIAL):
            partials[path.name[: -len(sidecar.SUFFIX + sidecar.PARTIAL)]] = path
        elif path.name != "machine.json" and path.suffix in RESULT_SUFFIXES:
            by_stem.setdefault(path.stem, {})[path.suffix] = path
    out = []
    for stem, path in sorted(partials.items()):
        name_partial(path, sidecar.SUFFIX in by_stem.get(stem, {}), problems)
    for stem, paths in sorted(by_stem.items()):
        commit8, _, env_name = stem.partition("-")
        rec = Recording(machine=machine, commit=commit8, env_name=env_name or stem)
        rec.mtime = max(p.stat().st_mtime for p in paths.values())
        if ".env-error" in paths:
            if _load_env_error(rec, paths[".env-error"], problems):
                out.append(rec)
            continue
        result = None
        if ".json" in paths:
            rec.asv_path = paths[".json"]
            result, wrong = asv_results.load(rec.asv_path, machine)
            if wrong:
                problems.append(Problem(str(rec.asv_path), wrong))
        if sidecar.SUFFIX in paths:
            rec.sidecar_path = paths[sidecar.SUFFIX]
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
        rec.partial_path = partials.get(stem)
        if rec.cells or rec.timings:
            out.append(rec)
    return out


def _load_env_error(rec: Recording, path: Path, problems: list) -> bool:
    rec.error_path = path
    try:
        data = _load_json(path)
    except (OSError, ValueError) as e:
        problems.append(Problem(str(path), f"unreadable environment error ({e})"))
        return False
    env = data.get("env") or {}
    rec.error = {"stage": data.get("stage", "?"), "message": str(data.get("message", "")), "env": env}
    rec.env_id = env.get("env_id") or rec.env_name
    rec.commit = data.get("commit") or rec.commit
    return True


def _load_sidecar(rec: Recording, problems: list) -> None:
    path = rec.sidecar_path
    try:
        sc = sidecar.read(path, outcomes=OUTCOMES)
    except sidecar.SidecarError as e:
        # the error names the file; the Problem names it once
        problems.append(Problem(str(path), "unreadable outcome sidecar: " + str(e).removeprefix(f"{path}: ")))
        return
    rec.python = sc.python
    rec.versions = sc.versions
    rec.env_id = sc.head.get("env_id") or rec.env_id
    rec.extra = sc.extra
    rec.requirements = sc.requirements
    if rec.requirements:
        rec.notes.append(source_note(rec.requirements))
    rec.case_dirs = [str(d) for d in sc.head.get("case_dirs") or []]
    rec.case_digest = sc.head.get("case_digest") or None
    if rec.case_digest:
        rec.notes.append(f"corpus: {corpus_name(rec)}")
    commit = sc.head.get("commit")
    if commit:
        if not commit.startswith(rec.commit):
            problems.append(Problem(str(path), f"says harness commit {commit[:8]} but its name says "
                                               f"{rec.commit}: the file was renamed or copied; using {rec.commit}"))
        else:
            rec.commit = commit
    rec.complete = sc.complete
    if not sc.complete:
        rec.notes.append("partial run: the harness stopped before the end")
        problems.append(Problem(str(path), f"partial run (complete: false): the harness stopped after "
                                           f"{len(sc.cells) + sc.malformed} cells; those are shown, the rest "
                                           "were never run"))
    rec.cells = {(f"{c['family']}/{c['case']}", c["method"], c["context"]): c for c in sc.cells}
    if sc.malformed:
        problems.append(Problem(str(path), f"{sc.malformed} malformed cell(s) left out (missing fields or an "
                                           f"unknown outcome; known: {', '.join(OUTCOMES)})"))


def _merge_asv(rec: Recording, result, problems: list) -> None:
    if not rec.commit or not result.commit_hash.startswith(rec.commit[:8]):
        problems.append(Problem(str(rec.asv_path), f"asv says commit {result.commit_hash[:8]}, the file name "
                                                   f"says {rec.commit[:8]}"))
    if len(result.commit_hash) > len(rec.commit):
        rec.commit = result.commit_hash
    if rec.sidecar_path is None:
        _cells_from_asv(rec, result, problems)
    else:
        if result.params.get("python") and rec.python and result.params["python"] != rec.python:
            problems.append(Problem(str(rec.asv_path), f"asv ran python {result.params['python']}, the sidecar "
                                                       f"says {rec.python}: not the same environment"))
        for name in VERSION_NAMES:
            asv_v = asv_results.asv_version(result, name)
            if rec.versions and asv_v != rec.versions.get(name):
                problems.append(Problem(str(rec.asv_path), f"asv ran {name} {asv_v}, the sidecar says "
                                                           f"{rec.versions.get(name)}: not the same environment"))
    rec.env_name = result.env_name
    rec.asv_result = result
    rec.timings = asv_results.unrolled(result, COMPUTE)
    rec.benchmark_versions = dict(result.benchmark_version)


def _cells_from_asv(rec: Recording, result, problems: list) -> None:
    """No sidecar: asv's outcome codes still say what happened, without root causes."""
    rec.python = result.params.get("python")
    rec.versions = {k: asv_results.asv_version(result, k) for k in VERSION_NAMES}
    rec.env_id = rec.env_id or derive_env_id(rec.python, rec.versions, asv_results.asv_version(result, EXTRA_KEY))
    rec.notes.append("no outcome sidecar: outcomes from asv's codes, no root causes")
    problems.append(Problem(str(rec.asv_path), f"asv result without its outcome sidecar "
                                               f"({rec.asv_path.stem}{sidecar.SUFFIX}): outcomes come from asv's "
                                               "outcome codes, root causes are unknown"))
    rec.cells.update(asv_results.cells_from_codes(result))
