"""Loading and validating the case corpus, and resolving what a cell should do.

A case is one file, ``<corpus>/<family>/<case_id>.py``: the notebook cell a user
would write, with a literal ``CASE = {...}`` dict of metadata near the top. The
metadata is read with :mod:`ast`; loading the corpus never executes a case.

Runs inside every matrix environment: standard library + ``packaging`` only.
"""

from __future__ import annotations

import ast
import fnmatch
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from packaging.specifiers import InvalidSpecifier

from picklematrix.locations import builtin_or_expected, builtin_path
from picklematrix.outcomes import OUTCOMES
from picklematrix.versions import ABSENT, TRACKED, installed_version, version_condition, version_matches

DEFAULT_TIMEOUT = 30.0
CONTEXTS = ("script", "kernel")
# The cluster's side of a version condition: ``cluster_pydantic`` reads the pydantic of the scheduler and workers
# (a skew pair's cluster env, a --scheduler cluster), ``pydantic`` the client's. On a cluster of the client's own
# env both read the same versions.
CLUSTER_PREFIX = "cluster_"
CLUSTER_KEYS = tuple(CLUSTER_PREFIX + k for k in TRACKED)
VERSION_KEYS = (*TRACKED, *CLUSTER_KEYS)
CONDITION_KEYS = ("method", "context", *VERSION_KEYS)
CASE_KEYS = {
    "family": str,
    "summary": str,
    "tags": list,
    "timeout": (int, float),
    "requires": list,
    "expect": str,
    "expect_when": list,
    "contexts": list,
}

# What a case file looks like, for errors about a corpus that has none.
CASE_FILE_HINT = ("a case is <dir>/<family>/<case_id>.py with a literal CASE = {...} dict at the top "
                  "(see docs/cases.md)")


# The built-in corpus. When it is missing (a broken install) this still names where it was looked
# for, so that load_corpus's "not a directory" error says where.
BUILTIN_CASES = builtin_or_expected("cases")


@dataclass(frozen=True)
class CaseProblem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class Case:
    case_id: str
    family: str
    path: str
    source: str
    summary: str
    expect: str
    tags: list = field(default_factory=list)
    timeout: float = DEFAULT_TIMEOUT
    requires: list = field(default_factory=list)
    expect_when: list = field(default_factory=list)
    contexts: list = field(default_factory=lambda: list(CONTEXTS))

    def missing_requirements(self) -> list[str]:
        return [name for name in self.requires if installed_version(name) is None]


class CorpusError(Exception):
    """The corpus cannot be used at all (e.g. a --cases directory is missing)."""


def _known_methods() -> tuple:
    from picklematrix.run.methods import METHODS  # late: methods imports dask

    return tuple(METHODS)


def case_files(root: Path) -> list[Path]:
    """The case files under ``root``, sorted.

    Left out, judged by the path *relative to root* (a corpus may itself live under a hidden
    directory such as ``~/.cache`` or ``~/.local``): anything under a directory whose name starts
    with ``.`` (``.ipynb_checkpoints``, ``.git``) or ``__pycache__``, and files whose name starts
    with ``.`` or ``_`` (helpers next to the cases).
    """
    out = []
    for path in root.rglob("*.py"):
        *folders, name = path.relative_to(root).parts
        if name.startswith((".", "_")) or any(f.startswith(".") or f == "__pycache__" for f in folders):
            continue
        out.append(path)
    return sorted(out)


def load_corpus(dirs=None, *, method_names=None) -> tuple[list[Case], list[CaseProblem]]:
    """Every valid case under ``dirs`` (default: the built-in corpus), and every problem.

    A broken case is reported and left out; the others still load. Raises CorpusError when a
    directory is missing or holds no case file at all: an empty corpus is a mistake (a wrong
    path, a checkout without its cases), never a run with nothing to report.
    """
    if not dirs:
        if builtin_path("cases") is None:
            raise CorpusError(f"the built-in corpus is not installed (looked for {BUILTIN_CASES}, and for cases/ "
                              "in a checkout): reinstall picklematrix, or pass --cases DIR")
        dirs = [BUILTIN_CASES]
    dirs = [Path(d) for d in dirs]
    method_names = tuple(method_names) if method_names is not None else _known_methods()
    cases: list[Case] = []
    problems: list[CaseProblem] = []
    seen: dict[str, str] = {}
    for d in dirs:
        if not d.is_dir():
            raise CorpusError(f"--cases {d}: not a directory ({CASE_FILE_HINT})")
        files = case_files(d)
        if not files:
            raise CorpusError(f"--cases {d}: no case files in it ({CASE_FILE_HINT}; files and folders starting "
                              "with '.' or '_' are skipped)")
        for path in files:
            case, found = _load_case(path, d, method_names)
            problems.extend(found)
            if case is None:
                continue
            if case.case_id in seen:
                problems.append(
                    CaseProblem(str(path), 1, f"duplicate case id {case.case_id!r} (also {seen[case.case_id]})")
                )
                continue
            seen[case.case_id] = str(path)
            cases.append(case)
    return cases, problems


def _load_case(path: Path, root: Path, method_names) -> tuple[Case | None, list[CaseProblem]]:
    spath = str(path)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return None, [CaseProblem(spath, 1, f"cannot read case: {e}")]
    try:
        tree = ast.parse(source, filename=spath)
    except SyntaxError as e:
        return None, [CaseProblem(spath, e.lineno or 1, f"syntax error: {e.msg}")]

    node = None
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "CASE" for t in stmt.targets
        ):
            node = stmt
            break
    if node is None:
        return None, [CaseProblem(spath, 1, "no CASE = {...} metadata dict at the top level")]
    try:
        meta = ast.literal_eval(node.value)
    except ValueError as e:
        bad = next((n for n in ast.walk(node.value) if not isinstance(
            n, (ast.Dict, ast.List, ast.Tuple, ast.Constant, ast.UnaryOp, ast.USub, ast.Load))), node.value)
        return None, [CaseProblem(spath, getattr(bad, "lineno", node.lineno),
                                  f"CASE must be a literal dict: {ast.unparse(bad)!r} is not a literal ({e})")]
    if not isinstance(meta, dict):
        return None, [CaseProblem(spath, node.lineno, "CASE must be a dict")]

    problems = []

    def problem(msg, line=None):
        problems.append(CaseProblem(spath, line or node.lineno, msg))

    key_lines = {}
    rule_lines = []
    if isinstance(node.value, ast.Dict):
        for k, v in zip(node.value.keys, node.value.values):
            if isinstance(k, ast.Constant):
                key_lines[k.value] = k.lineno
                if k.value == "expect_when" and isinstance(v, (ast.List, ast.Tuple)):
                    rule_lines = [e.lineno for e in v.elts]

    for key, value in meta.items():
        if key not in CASE_KEYS:
            problem(f"unknown CASE key {key!r} (known: {', '.join(CASE_KEYS)})", key_lines.get(key))
        elif not isinstance(value, CASE_KEYS[key]):
            problem(f"CASE[{key!r}] has the wrong type {type(value).__name__}", key_lines.get(key))

    rel = path.relative_to(root)
    dir_family = rel.parts[0] if len(rel.parts) > 1 else None
    family = meta.get("family", dir_family)
    if not family:
        problem("CASE has no 'family' and the file is not in a family folder")
    elif dir_family and family != dir_family:
        problem(f"CASE['family'] is {family!r} but the file is in folder {dir_family!r}", key_lines.get("family"))

    summary = meta.get("summary") or ast.get_docstring(tree) or ""
    if not summary.strip():
        problem("CASE has no 'summary' and the module has no docstring")

    expect = meta.get("expect")
    if expect is None:
        problem("CASE has no 'expect' outcome")
    elif expect not in OUTCOMES:
        problem(f"unknown outcome {expect!r} in 'expect' (known: {', '.join(OUTCOMES)})", key_lines.get("expect"))

    for key in ("tags", "requires", "contexts"):
        if isinstance(meta.get(key), list) and not all(isinstance(x, str) for x in meta[key]):
            problem(f"CASE[{key!r}] must be a list of strings", key_lines.get(key))
    for ctx in meta.get("contexts", []) if isinstance(meta.get("contexts"), list) else []:
        if ctx not in CONTEXTS:
            problem(f"unknown context {ctx!r} in 'contexts' (known: {', '.join(CONTEXTS)})", key_lines.get("contexts"))

    timeout = meta.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, (int, float)) and not timeout > 0:
        problem("CASE['timeout'] must be a positive number of seconds", key_lines.get("timeout"))

    expect_when = meta.get("expect_when", [])
    if isinstance(expect_when, list):
        for i, rule in enumerate(expect_when):
            line = rule_lines[i] if i < len(rule_lines) else key_lines.get("expect_when")
            for msg in _rule_problems(rule, method_names):
                problem(f"expect_when[{i}]: {msg}", line)

    if problems:
        return None, problems
    return (
        Case(
            case_id=path.stem,
            family=family,
            path=spath,
            source=source,
            summary=summary.strip().splitlines()[0],
            expect=expect,
            tags=list(meta.get("tags", [])),
            timeout=float(timeout),
            requires=list(meta.get("requires", [])),
            expect_when=[(dict(c), o) for c, o in expect_when],
            contexts=list(meta.get("contexts", CONTEXTS)),
        ),
        [],
    )


def _rule_problems(rule, method_names) -> list[str]:
    if not (isinstance(rule, (list, tuple)) and len(rule) == 2 and isinstance(rule[0], dict)):
        return ["must be a [conditions-dict, outcome] pair"]
    conditions, outcome = rule
    out = []
    if outcome not in OUTCOMES:
        out.append(f"unknown outcome {outcome!r} (known: {', '.join(OUTCOMES)})")
    for key, value in conditions.items():
        if key not in CONDITION_KEYS:
            out.append(f"unknown condition key {key!r} (known: {', '.join(CONDITION_KEYS)})")
            continue
        if not isinstance(value, str):
            out.append(f"condition {key!r} must be a string, got {type(value).__name__}")
            continue
        if key == "method" and value not in method_names:
            out.append(f"unknown method {value!r} (known: {', '.join(method_names)})")
        elif key == "context" and value not in CONTEXTS:
            out.append(f"unknown context {value!r} (known: {', '.join(CONTEXTS)})")
        elif key in VERSION_KEYS and value != ABSENT:
            try:
                version_condition(value)
            except InvalidSpecifier as e:
                out.append(f"bad version specifier {value!r} for {key!r}: {e}")
    return out


def condition_versions(client: dict, cluster: dict | None = None) -> dict:
    """The versions an ``expect_when`` rule reads: ``client``'s (flat, ``{"python": ..., "pydantic": ...}``) under
    their own names, and ``cluster``'s under ``cluster_<name>``; ``cluster`` None (a cluster of the client's own
    env): the client's on both sides."""
    cluster = client if cluster is None else cluster
    return {**{k: client.get(k) for k in TRACKED}, **{CLUSTER_PREFIX + k: cluster.get(k) for k in TRACKED}}


def conditions_match(conditions: dict, *, method: str, context: str, versions: dict) -> bool:
    """Do all of an ``expect_when`` rule's conditions hold for this cell? ``versions``: as
    :func:`condition_versions` gives them (a plain ``{name: version}`` of the client counts for both sides)."""
    for key, value in conditions.items():
        if key == "method":
            if value != method:
                return False
        elif key == "context":
            if value != context:
                return False
        elif not version_matches(value, _version_of(versions, key)):
            return False
    return True


def _version_of(versions: dict, key: str):
    if key in versions or not key.startswith(CLUSTER_PREFIX):
        return versions.get(key)
    return versions.get(key[len(CLUSTER_PREFIX):])  # no cluster named: the cluster is the client's own env


def expected_outcome(case: Case, *, method: str, context: str, versions: dict, method_default=None) -> str:
    """Resolution order: the case's expect_when (first match), the method's default, the case's expect."""
    for conditions, outcome in case.expect_when:
        if conditions_match(conditions, method=method, context=context, versions=versions):
            return outcome
    if method_default is not None:
        return method_default
    return case.expect


def select(cases: list[Case], only: list[str] | None) -> list[Case]:
    if not only:
        return cases
    return [c for c in cases if any(fnmatch.fnmatchcase(c.case_id, g) or fnmatch.fnmatchcase(f"{c.family}/{c.case_id}", g) for g in only)]


def relpath(path: str) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


# Not part of a case folder's content: caches and version-control or editor leftovers.
NOT_CONTENT = ("__pycache__", ".pytest_cache", ".git", ".ipynb_checkpoints")


def case_digest(dirs) -> str | None:
    """A digest of the content of the case folders ``dirs`` (every file, by its path inside its folder, in
    the order given), or None without folders (the built-in corpus, which the fingerprint commit covers).

    Where the folders are does not count, only what they hold: the same cases copied elsewhere are the same.
    """
    dirs = [Path(d) for d in dirs or []]
    if not dirs:
        return None
    digest = hashlib.sha256()
    for index, top in enumerate(dirs):
        if not top.is_dir():
            digest.update(f"{index}:missing\n".encode())
            continue
        for path in sorted(p for p in top.rglob("*") if p.is_file()):
            rel = path.relative_to(top)
            if any(part in NOT_CONTENT for part in rel.parts) or path.suffix in (".pyc", ".pyo"):
                continue
            digest.update(f"{index}:{rel.as_posix()}:".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]
