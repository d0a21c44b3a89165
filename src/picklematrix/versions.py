"""Installed versions and version conditions: what a cell's expectation and an env's exclusion are keyed by.

Conditions are written by people (case files' ``expect_when``, matrix.toml's ``[[exclude]]``): one parser,
:func:`version_condition`, reads both. Runs inside every matrix environment: standard library + ``packaging``.
"""

from __future__ import annotations

import importlib.metadata
import platform

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

ABSENT = "absent"  # the one spelling of "not installed" in files people write and read (JSON says null)
VERSION_KEYS = ("python", "cloudpickle", "dask", "distributed", "pydantic")


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution, without importing it."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment_versions() -> dict:
    """Versions that expectations and results are keyed by. Never imports pydantic."""
    return {
        "python": platform.python_version(),
        "versions": {
            name: installed_version(name)
            for name in ("cloudpickle", "dask", "distributed", "pydantic")
        },
    }


def flat_versions(env: dict) -> dict:
    return {"python": env["python"], **env["versions"]}



_CONDITION_HELP = ("write a version (2.9: any 2.9.x), 'absent', or PEP 440 specifiers joined by commas "
                   "(>=2.9, <2.9, ~=2.9, !=2.9.1, ==2.9.2, >=2.5,<2.9)")


def version_condition(text: str) -> SpecifierSet:
    """A version condition as people write it in case files and matrix.toml, as a SpecifierSet.

    Comma-separated clauses, all of which must hold. A clause is a PEP 440 specifier (``>=2.9``,
    ``<2.9``, ``~=2.9``, ``!=2.9.1``, ``==2.9.2``, ``==2.9.*``) or a bare version, which means that
    release series: ``2.9`` is ``==2.9.*`` (2.9.0, 2.9.2, ...), ``3`` any 3.x, ``2024.6.2`` that
    release (and any 2024.6.2.x). A bare version with a pre-, post-, dev- or local part
    (``2.9.0rc1``) means exactly that version. (PEP 440 alone would read ``==2.9`` as 2.9.0 only,
    which is never what ``"python": "3.11"`` means.) ``"absent"`` is not handled here: see
    :func:`version_matches`. Raises InvalidSpecifier saying what is wrong and what to write.
    """
    if not isinstance(text, str):
        raise InvalidSpecifier(f"{text!r} is a {type(text).__name__}, not a string: quote it; {_CONDITION_HELP}")
    clauses = [c.strip() for c in text.split(",")]
    if not all(clauses):
        raise InvalidSpecifier(f"{text!r} has an empty clause; {_CONDITION_HELP}")
    specifiers = []
    for clause in clauses:
        culprit = repr(clause) if len(clauses) == 1 else f"{clause!r} in {text!r}"
        if clause[0].isdigit():
            series = clause[:-2] if clause.endswith(".*") else clause
            try:
                version = Version(series)
            except InvalidVersion:
                raise InvalidSpecifier(f"{culprit} is not a version; {_CONDITION_HELP}") from None
            exact = clause == series and (version.pre or version.post is not None or version.dev is not None
                                          or version.local)
            clause = f"=={clause}" if exact or clause != series else f"=={clause}.*"
        elif clause.startswith("=") and not clause.startswith(("==", "===")):
            raise InvalidSpecifier(f"{culprit}: write {'=' + clause!r}, or a bare version for its series")
        try:
            specifiers.append(SpecifierSet(clause))
        except InvalidSpecifier:
            raise InvalidSpecifier(f"{culprit} is not a version specifier; {_CONDITION_HELP}") from None
    out = SpecifierSet()
    for spec in specifiers:
        out &= spec
    return out


def version_matches(condition: str, installed: str | None) -> bool:
    """Does an installed version (None: not installed) meet a condition (see :func:`version_condition`)?

    ``"absent"`` matches only a package that is not installed, and any other condition only one
    that is. Pre-releases count as what they are a pre-release of. An installed version that is
    not PEP 440 matches nothing.
    """
    if condition == ABSENT or installed is None:
        return condition == ABSENT and installed is None
    try:
        return version_condition(condition).contains(Version(installed), prereleases=True)
    except InvalidVersion:
        return False
