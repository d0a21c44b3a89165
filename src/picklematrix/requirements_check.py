"""Optional parts of picklematrix: whether they are installed, and what to install when not.

``pip install picklematrix`` is enough to list the corpus and run it in the script context.
The kernel context and the report/review need more; pyproject.toml declares those as extras,
and this module names the extra to install instead of failing later on an ImportError.
Standard library only: it runs before anything optional is imported.
"""

from __future__ import annotations

import importlib.metadata
import sys

# extra -> the distributions it adds (pyproject.toml's [project.optional-dependencies];
# tests/test_corpus.py checks the two agree)
EXTRAS = {
    "kernel": ("ipykernel", "jupyter_client"),
    "report": ("asv", "asv_runner", "jinja2"),
}


class MissingExtra(Exception):
    """An optional part is needed but not installed; the message says what to install."""


def missing(extra: str) -> list[str]:
    """The distributions of ``extra`` that are not installed in this interpreter's environment."""
    out = []
    for name in EXTRAS[extra]:
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out.append(name)
    return out


def require(extra: str, purpose: str) -> None:
    """Raise MissingExtra, naming ``pip install "picklematrix[<extra>]"``, if part of ``extra`` is missing.

    ``purpose`` says what needs it, e.g. ``"the kernel context"``. Call it before starting
    anything (a cluster, a kernel), so that nothing is half done when it fails.
    """
    absent = missing(extra)
    if absent:
        raise MissingExtra(
            f"{purpose} needs {' and '.join(absent)}, not installed for {sys.executable}: "
            f'pip install "picklematrix[{extra}]" (installed with uv tool or pipx: install '
            f'"picklematrix[{extra}]" again with --force)'
        )
