"""Spreading a profile over machines: the plan (which envs), a shard's share of them, and merging their results.

Any CI system can run the matrix on many runners with three steps, each a command of its own:

    ./nox -s plan -- --json plan.json          the profile's envs, one entry per job (a CI job matrix)
    ./nox -s matrix -- --shard K/N             on runner K of N: only the envs of shard K
    ./nox -s merge -- A/ B/ ...                every runner's results directory, merged into --results

A shard's envs are every N-th env of the profile, in the profile's order, starting at the K-th: shards of one
plan never share an env, and together they hold every env. Merging copies each runner's files into one
results directory. An env recorded by two runners is an error naming both (the report would otherwise show
whichever copy came last): only byte-identical copies of one file (the same artifact downloaded twice) and
the files every ``asv run`` rewrites (``benchmarks.json``, ``<machine>/machine.json``) may meet. An env's logs
(``logs/<machine>/<commit8>-<env id>/``, picklematrix.record.logs) are no result: when two copies of one env's logs
differ (it was recorded again), the later recording's are kept, whole, and the merge says so.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from picklematrix.envs.matrix import MatrixError, load_matrix
from picklematrix.record.logs import LOGS, started_at
from picklematrix.record.targets import AA_PREFIX

SHARD = re.compile(r"^(?P<k>\d+)/(?P<n>\d+)$")
# Files every asv run of a results directory writes: each runner has its own copy of them.
SHARED_NAMES = ("benchmarks.json", "machine.json")


class ShardError(Exception):
    """A shard spec, a plan or a merge cannot be used; the message names the culprit and what to do."""


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` as (K, N), 1 <= K <= N."""
    m = SHARD.match(text.strip())
    if not m or not 1 <= int(m["k"]) <= int(m["n"]):
        raise ShardError(f"--shard {text!r}: write K/N with 1 <= K <= N (e.g. --shard 2/5: the second of five)")
    return int(m["k"]), int(m["n"])


def shard_envs(env_ids: list[str], k: int, n: int) -> list[str]:
    """Shard K of N: every N-th env of the profile's order, starting at the K-th."""
    return [env_id for i, env_id in enumerate(env_ids) if i % n == k - 1]


def pins_key(env) -> str:
    """A short digest of what an env installs: a CI cache key that changes exactly when its pins do."""
    text = json.dumps({"python": env.python, **env.pins()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan(matrix, profile: str) -> dict:
    """The profile's envs as a CI job matrix: ``{"profile", "baseline", "include": [{env_id, python, session,
    pins_key, aa}, ...]}`` (GitHub Actions reads ``include`` as one job per entry): its envs, its skew pairs and,
    with ``aa_pair``, the baseline's A/A copy."""
    prof = matrix.profile(profile)
    # a client/cluster skew pair needs both envs' interpreters: "python" lists them one per line (as
    # actions/setup-python's python-version takes several), client first
    include = [{"env_id": e.env_id, "python": e.python, "session": f"matrix({e.env_id})", "pins_key": pins_key(e),
                "aa": False} for e in prof.envs]
    include += [{"env_id": pair.env_id, "python": "\n".join(dict.fromkeys([pair.client.python, pair.cluster.python])),
                 "session": f"matrix({pair.session_id})", "pins_key": f"{pins_key(pair.client)}-{pins_key(pair.cluster)}",
                 "aa": False} for pair in prof.skew]
    if prof.aa_pair:
        # the baseline's A/A copy (picklematrix.record.targets): a job of its own at the head's code only, for the
        # review's noise; a pull request's base side has no use for it ("aa": the workflow skips that side)
        base = next(e for e in prof.envs if e.env_id == prof.baseline)
        include.append({"env_id": f"{AA_PREFIX}{base.env_id}", "python": base.python,
                        "session": f"matrix({AA_PREFIX}{base.env_id})", "pins_key": pins_key(base), "aa": True})
    return {"profile": prof.name, "baseline": prof.baseline, "include": include}


@dataclass
class Merged:
    """What a merge did: files copied, identical copies met, and shared files that differed."""

    copied: int = 0
    identical: int = 0
    notes: list = field(default_factory=list)


def _result_files(root: Path):
    if root.is_dir():
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if not path.name.startswith(".") and not path.name.endswith((".lock", ".partial")):
                yield path.relative_to(root)  # (locks and unfinished records are never part of a result)


def merge(sources: list[Path], dest: Path) -> Merged:
    """Copy every file of every source results directory into ``dest``; raise ShardError on a conflict.

    Nothing is written when there is a conflict: every source is checked against every other (and against
    what ``dest`` already holds) first.
    """
    dest = Path(dest)
    out = Merged()
    owner: dict[Path, Path] = {}  # relative path -> the directory whose copy is kept (the first met)
    log_copies: dict[Path, list[Path]] = {}  # logs/<machine>/<env dir> -> the directories holding a copy
    conflicts = []
    for root in [dest, *map(Path, sources)]:
        if root != dest and not root.is_dir():
            raise ShardError(f"{root}: not a results directory (each shard's results/, e.g. a downloaded artifact)")
        for rel in _result_files(root):
            if rel.parts[0] == LOGS and len(rel.parts) > 3:
                log_copies.setdefault(Path(*rel.parts[:3]), [])
                if root not in log_copies[Path(*rel.parts[:3])]:
                    log_copies[Path(*rel.parts[:3])].append(root)
                continue
            first = owner.setdefault(rel, root)
            if first == root:
                continue
            if filecmp.cmp(first / rel, root / rel, shallow=False):
                out.identical += 1
            elif rel.name in SHARED_NAMES:
                out.notes.append(f"{rel}: kept {first}'s copy ({root}'s differs: every asv run rewrites it)")
            else:
                conflicts.append(f"{rel}: recorded by both {first} and {root}")
    if conflicts:
        raise ShardError("the same env was recorded by two shards, with different results; merge only one of "
                         "them:\n  " + "\n  ".join(conflicts))
    for rel, root in owner.items():
        if root != dest:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, dest / rel)
            out.copied += 1
    for rel, roots in log_copies.items():
        _merge_logs(rel, roots, dest, out)
    return out


def _merge_logs(rel: Path, roots: list[Path], dest: Path, out: Merged) -> None:
    """One env's log directory: the copy of the latest recording among ``roots``, whole, into ``dest``."""
    kept = max(roots, key=lambda root: started_at(root / rel))  # (the first met, of equals)
    others = [root for root in roots if root != kept]
    if any(not _same_tree(kept / rel, root / rel) for root in others):
        out.notes.append(f"{rel}: logs of two recordings of this env; kept {kept}'s, the later one")
    else:
        out.identical += len(others)
    if kept == dest:
        return
    shutil.rmtree(dest / rel, ignore_errors=True)
    for file in (p for p in (kept / rel).rglob("*") if p.is_file()):
        (dest / rel / file.relative_to(kept / rel)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, dest / rel / file.relative_to(kept / rel))
        out.copied += 1


def _same_tree(a: Path, b: Path) -> bool:
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    return files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()) and all(
        filecmp.cmp(a / f, b / f, shallow=False) for f in files)


def plan_command(args) -> int:
    """``picklematrix plan`` and ``./nox -s plan``: the plan as JSON on stdout (and in ``--json``)."""
    try:
        text = json.dumps(plan(load_matrix(os.environ.get("PICKLEMATRIX_MATRIX")), args.profile or "default"))
    except MatrixError as e:
        print(f"picklematrix plan: {e}", file=sys.stderr)
        return 2
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)
    return 0


def merge_command(args) -> int:
    """``picklematrix merge`` and ``./nox -s merge``: the shards' results directories merged into ``--results``."""
    dest = Path(args.results or "results")
    try:
        merged = merge([Path(d) for d in args.dirs], dest)
    except ShardError as e:
        print(f"picklematrix merge: {e}", file=sys.stderr)
        return 2
    for note in merged.notes:
        print(f"warning: {note}", file=sys.stderr)
    print(f"merged {len(args.dirs)} results directories into {dest}: {merged.copied} files copied, "
          f"{merged.identical} identical copies met")
    return 0
