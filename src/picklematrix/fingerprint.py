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

Standard library only: the noxfile imports it in nox's interpreter, the report in the tools venv.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

# Paths whose changes cannot change a recording (git pathspecs, relative to the checkout's top).
NOT_FINGERPRINTED = (
    "docs", "README.md", "matrix.toml", "tests", ".github", ".ci", "bench", "noxfile.py", ".gitignore",
    "src/picklematrix/report", "src/picklematrix/workflow_lint.py", "src/picklematrix/shards.py",
    "src/picklematrix/bisect.py", "src/picklematrix/envspec.py", "src/picklematrix/ondemand.py",
    "src/picklematrix/fingerprint.py",
)
# (envspec and ondemand only choose and build envs: a record is named by the versions actually installed, which
# the recording checks; fingerprint.py only names the key)


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
