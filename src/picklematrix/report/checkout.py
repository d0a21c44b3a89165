"""The picklematrix checkout the report and the review read: its asv.conf.json, matrix.toml, git HEAD and the
fingerprint commit its results are keyed by."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from picklematrix.envs.matrix import MatrixError, load_matrix
from picklematrix.record.asvconf import CONFIG_NAME
from picklematrix.record.fingerprint import fingerprint_or_none


class CheckoutError(Exception):
    """``--checkout DIR`` does not name a picklematrix checkout."""


def resolve_checkout(option: str | os.PathLike | None = None) -> Path | None:
    """The checkout: ``option`` (``--checkout DIR``), else the current directory if it holds asv.conf.json.

    ``nox -s report`` and ``nox -s review`` run from the checkout. Without one (another directory, no
    ``--checkout``) the report still builds the table, without asv's site; None says so.
    """
    if option is not None:
        path = Path(option).resolve()
        if not (path / CONFIG_NAME).is_file():
            raise CheckoutError(f"--checkout {option}: no {CONFIG_NAME} there; name the picklematrix checkout "
                                "the results were recorded from")
        return path
    cwd = Path.cwd()
    return cwd if (cwd / CONFIG_NAME).is_file() else None


def default_results_dir(checkout: Path | None) -> Path:
    """``$PICKLEMATRIX_RESULTS``, else the checkout's ``results/`` (the current directory's without one)."""
    return Path(os.environ.get("PICKLEMATRIX_RESULTS") or (checkout or Path.cwd()) / "results")


def git_head(checkout: Path | None) -> str | None:
    """The commit checked out in ``checkout`` (None without a checkout or git)."""
    if checkout is None:
        return None
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True,
                              timeout=30, check=False).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def fingerprint_head(checkout: Path | None) -> str | None:
    """The checkout's fingerprint commit (picklematrix.record.fingerprint): what its results are keyed by."""
    return fingerprint_or_none(checkout)


def matrix_order(checkout: Path | None, profile: str | None = None) -> tuple[list[str], str | None]:
    """(env ids in matrix.toml's profile order, the profile's baseline env id).

    ``$PICKLEMATRIX_MATRIX`` picks the file as it does for ``nox -s matrix``; ``profile`` the profile (default
    ``$PICKLEMATRIX_PROFILE``, else default). Without a usable matrix file envs are ordered by their versions
    and none is the baseline.
    """
    path = os.environ.get("PICKLEMATRIX_MATRIX") or (checkout / "matrix.toml" if checkout else None)
    if path is None:
        return [], None
    try:
        chosen = load_matrix(path).profile(profile or os.environ.get("PICKLEMATRIX_PROFILE") or "default")
        return [e.env_id for e in chosen.envs], chosen.baseline
    except (MatrixError, OSError):
        return [], None
