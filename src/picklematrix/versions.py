"""The tracked packages, their installed versions, the env id they read as, and version conditions.

:data:`TRACKED` is the one list of what an env is identified by (python first). :func:`env_id_of` is the one
function from installed versions to an env id (``cp<v>-dask<v>-pyd<v>-py<v>``); :class:`picklematrix.envs.ids.Env`
names the envs matrix.toml and specs describe by the same scheme. Conditions are written by people (case files'
``expect_when``, matrix.toml's ``[[exclude]]``): one parser, :func:`version_condition`, reads both.

Runs inside every matrix environment: standard library + ``packaging``.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import re
import sys
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

ABSENT = "absent"  # the one spelling of "not installed" in files people write and read (JSON says null)
# What an env is identified by and a result keyed by, python first: the one list.
TRACKED = ("python", "cloudpickle", "dask", "distributed", "pydantic")
# the distributions among them (python apart)
PACKAGES = TRACKED[1:]
# matrix.toml's axes: distributed always follows dask there
AXES = tuple(k for k in TRACKED if k != "distributed")
# An env id: cp<cloudpickle>-dask<dask>-pyd<pydantic>-py<python minor>, then +<digest> of its extra pins (pins
# besides these, picklematrix.envs.ids.identity_extra), then ~<cluster env id> for a record made on another env's
# cluster (picklematrix.envs.skew).
ENV_ID = re.compile(r"^cp(?P<cloudpickle>[^-]+)-dask(?P<dask>[^-]+)-pyd(?P<pydantic>[^-]+)-py(?P<python>[^-+~]+)$")
EXTRA_SEPARATOR = "+"
# The file in an env's venv naming its extra pins (written by picklematrix.envs.venvs), and the key under which
# their digest joins the versions (picklematrix.envs.ids.VERSIONS_PROBE, asv's requirements).
EXTRA_FILE = "picklematrix-extra.json"
EXTRA_KEY = "extra"


def short_python(version: str) -> str:
    """``3.11.7`` (or distributed's ``3.11.7.final.0``) -> ``3.11``."""
    return ".".join(str(version).split(".")[:2])


def format_env_id(python: str, cloudpickle: str, dask: str, pydantic: str, digest: str | None = None) -> str:
    """The env id of these versions (``python`` as its minor version), with ``+<digest>`` of extra pins if any."""
    return f"cp{cloudpickle}-dask{dask}-pyd{pydantic}-py{python}" + (f"{EXTRA_SEPARATOR}{digest}" if digest else "")


def env_id_of(python: str, versions: dict, digest: str | None = None) -> str:
    """The env id installed versions read as: ``versions`` maps :data:`PACKAGES` to versions (None or missing:
    not installed; distributed missing: as dask), ``digest`` names extra pins. distributed follows dask in the
    id unless they differ (``dask2026.8.0+distributed2026.7.1``)."""
    v = {k: (versions.get(k) or ABSENT) for k in PACKAGES}
    if "distributed" not in versions:
        v["distributed"] = v["dask"]
    dask = v["dask"] if v["dask"] == v["distributed"] else f"{v['dask']}+distributed{v['distributed']}"
    return format_env_id(short_python(python), v["cloudpickle"], dask, v["pydantic"], digest)


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution, without importing it."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment_versions() -> dict:
    """Versions that expectations and results are keyed by. Never imports pydantic."""
    return {"python": platform.python_version(), "versions": {name: installed_version(name) for name in PACKAGES}}


def installed_extra(prefix: str | None = None) -> dict:
    """{name: installed version} of the extra pins this env's venv names (EXTRA_FILE); {} for none.
    What ``picklematrix run`` records in the sidecar head (``extra``)."""
    try:
        names = json.loads((Path(prefix or sys.prefix) / EXTRA_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return {name: installed_version(name) for name in names}


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
