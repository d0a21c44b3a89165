"""What a recording depends on, as one real commit: the last commit that touched the fingerprinted paths.

Results used to be keyed by the harness's HEAD, so any commit (a README fix, a new env in matrix.toml)
orphaned every earlier result. A recording depends on the code that runs inside an env, the case files,
the benchmark suite, asv's configuration and how envs are built and recorded; it does not depend on the
docs, the report and review code, matrix.toml (an env's identity is its installed versions, in the result's
file name), the tests, CI files or the noxfile (which only declares sessions). So results are keyed by the
last commit that touched anything else: ``git log -1 --format=%H -- . <excludes>``. That is a real commit
(asv's ``--set-commit-hash`` needs one and its graphs order by it) and it stays the same across commits that
touch only excluded paths.

The paths are excluded, not included: a file nobody thought of (a new module, a new case family) changes the
fingerprint, which costs a re-recording; the other way round it would silently keep a stale result.

Changing one case re-records the whole env, not only that case's cells: an env's record is one asv result
and one sidecar, and a case's cells share the env's kernel and cluster with the cases after it (a case that
changes process-global state changes what follows), so a record mixing two fingerprints would describe no
run that happened.

A user's own case folders (``PICKLEMATRIX_CASES``, ``--cases``) usually live outside the checkout, where no
commit of it sees them: their content is part of the key too. A recording notes the digest of the case
folders it ran (:func:`case_digest`, the sidecar head's ``case_digest``), and a record counts as already
recorded only when the digest of the folders asked for now is the same (:func:`case_mismatch`): editing a
case file there re-records, saying why.

Standard library only: the recording imports it in nox's interpreter, the report in the tools venv. The digest
itself is picklematrix.run.corpus's (``case_digest``), which ``picklematrix run`` records inside every env.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
from pathlib import Path

from picklematrix import sidecar as sidecars
from picklematrix.run.corpus import case_digest

CASES_VAR = "PICKLEMATRIX_CASES"

# Paths whose changes cannot change a recording (git pathspecs, relative to the checkout's top).
NOT_FINGERPRINTED = (
    "docs", "README.md", "LICENSE", "matrix.toml", "tests", ".github", ".ci", "bench", "noxfile.py", ".gitignore",
    "src/picklematrix/report", "src/picklematrix/workflow_lint.py", "src/picklematrix/record/shards.py",
    "src/picklematrix/record/bisect.py", "src/picklematrix/envs/spec.py", "src/picklematrix/record/ondemand.py",
    "src/picklematrix/record/fingerprint.py", "src/picklematrix/record/targets.py",
    "src/picklematrix/record/sessions.py",
)
# (envs/spec, ondemand, targets and sessions only choose and build envs: a record is named by the versions actually
# installed, which the recording checks; fingerprint.py only names the key)


def pathspec() -> list[str]:
    """The fingerprinted paths as git pathspecs: everything but :data:`NOT_FINGERPRINTED`."""
    return [":/", *(f":(top,exclude){p}" for p in NOT_FINGERPRINTED)]


class FingerprintError(Exception):
    """The checkout's fingerprint cannot be read; the message names the checkout and the git failure."""


def _git(checkout: Path, *args) -> str:
    try:
        return subprocess.run(["git", *args], cwd=checkout, capture_output=True, text=True, check=True,
                              timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        detail = getattr(e, "stderr", None) or e
        raise FingerprintError(f"cannot read the results' fingerprint (the last commit that touched the code a "
                               f"recording depends on): git {' '.join(args[:2])} failed in {checkout}: "
                               f"{str(detail).strip()}") from None


def fingerprint_commit(checkout: Path) -> str:
    """The full hash of the last commit touching a fingerprinted path (HEAD's, in a repository without one)."""
    found = _git(checkout, "log", "-1", "--format=%H", "HEAD", "--", *pathspec())
    return found or _git(checkout, "rev-parse", "HEAD")


def dirty_paths(checkout: Path) -> str:
    """``git status --porcelain`` of the fingerprinted paths only: an uncommitted README does not matter."""
    return _git(checkout, "status", "--porcelain", "--", *pathspec())


def fingerprint_or_none(checkout: Path | None) -> str | None:
    """:func:`fingerprint_commit`, or None without a checkout or git (the report then picks by count)."""
    if checkout is None:
        return None
    try:
        return fingerprint_commit(checkout)
    except FingerprintError:
        return None


def case_dirs_asked() -> list[str]:
    """The case folders ``PICKLEMATRIX_CASES`` names (os.pathsep-separated), as the recording passes them on."""
    return [d for d in os.environ.get(CASES_VAR, "").split(os.pathsep) if d]


def case_mismatch(head: dict, dirs=None) -> str | None:
    """Why a record (its sidecar head) does not describe the case folders asked for now (``dirs``, default
    PICKLEMATRIX_CASES), or None when it does: their content digest differs from the one it recorded."""
    dirs = case_dirs_asked() if dirs is None else list(dirs)
    wanted, recorded = case_digest(dirs), head.get("case_digest")
    if wanted == recorded:
        return None
    if wanted is None:
        return (f"it ran the case folders {', '.join(map(str, head.get('case_dirs') or [])) or '?'}, and the "
                "built-in corpus is asked for now")
    if recorded is None:
        return (f"it records no digest of its case folders (recorded before they were part of the key, or with "
                f"the built-in corpus), and {CASES_VAR}={os.pathsep.join(map(str, dirs))} is asked for now")
    return (f"the case folders changed since it was recorded (content digest {recorded} then, {wanted} now: "
            f"{', '.join(map(str, dirs))})")


def edited_folders(directory: Path, prefix: str, env_id: str, dirs=None) -> list[str]:
    """Why the records of ``env_id`` in ``directory`` (sidecars named ``<prefix>*``, one fingerprint commit)
    that ran the very case folders asked for now (``dirs``, default PICKLEMATRIX_CASES) no longer describe them:
    the folders were edited since (:func:`case_mismatch`), each reason naming the record, which stays (a corpus
    is part of a record's name, picklematrix.envs.ids.corpus_versions). [] when none was."""
    dirs = case_dirs_asked() if dirs is None else list(dirs)
    if not dirs:
        return []
    wanted = [Path(d).resolve() for d in dirs]
    found = []
    for path in sorted(Path(directory).glob(f"{glob.escape(prefix)}*{sidecars.SUFFIX}")):
        try:
            head = sidecars.read(path).head
        except sidecars.SidecarError:
            continue
        if head.get("env_id") == env_id and [Path(d).resolve() for d in head.get("case_dirs") or []] == wanted:
            why = case_mismatch(head, dirs)
            if why:
                found.append(f"{why}; the record of the folders as they were stays beside it ({path.name})")
    return found


def stale_reason(result_file: Path, sidecar_path: Path) -> str:
    """What a recording says when it records again an env whose files are there but do not count as recorded
    (picklematrix.record.resultsdir.recorded): a changed case folder, or an incomplete record."""
    try:
        head = json.loads(Path(sidecar_path).read_text())
    except (OSError, ValueError):
        head = None
    if isinstance(head, dict) and head.get("complete", True) and Path(result_file).exists():
        why = case_mismatch(head)
        if why:
            return f"{why}: recording again"
    return "its record is incomplete (a partial sidecar or no asv result): recording again"
