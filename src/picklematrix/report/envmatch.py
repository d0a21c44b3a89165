"""Picking recorded envs by an env spec, by what is installed in them (the report's ``--env``).

An env spec names recorded envs the way ``nox -s matrix`` names envs to build (picklematrix.envs.spec):

- a recorded env's id, asv env name or ``machine/env name``: that env;
- ``NAME=VALUE`` words, ``pydantic=2.9.2 python=3.11`` (VALUE a version, a specifier such as ``~=2.10``, or
  ``absent``): every recorded env whose installed versions satisfy each word; what the spec does not name matches
  anything (an axis, or a package besides them, among the env's extra pins);
- a requirements file (a ``pip freeze``): the envs recorded from it, with its axes and its extra pins.
"""

from __future__ import annotations

from packaging.specifiers import SpecifierSet

from picklematrix.envs import spec as envspec
from picklematrix.envs.ids import extras_match, identity_extra
from picklematrix.report.problems import BadInput
from picklematrix.report.results import ResultSet
from picklematrix.versions import ABSENT, AXES, PACKAGES


def _word_matches(rec, name: str, spec: str) -> bool:
    if name == "python":
        return bool(rec.python) and (rec.python + ".").startswith(spec.lstrip("=") + ".")
    installed = (rec.versions or {}).get(name) if name in (*AXES, "distributed") else (rec.extra or {}).get(name)
    if spec == ABSENT:
        return not installed
    return bool(installed) and SpecifierSet(spec).contains(installed, prereleases=True)


def _spec_words(text: str) -> dict:
    """``NAME=VALUE`` words as {name: specifier or ``absent``}; ``latest`` cannot pick a recorded env."""
    source = f"--env {text!r}"
    out = {}
    try:
        for name, value in envspec.spec_words(text, source).items():
            if name == "python":
                out[name] = envspec.python_minor(value, source)
                continue
            spec = envspec.spec_value(name, value, source)
            if spec == "":
                raise BadInput(f"{source}: {name}={value or 'latest'} cannot pick a recorded env (what is "
                               "latest today need not be what was recorded); give a version or a specifier")
            out[name] = spec
    except envspec.SpecError as e:
        raise BadInput(str(e)) from None
    if "dask" in out and "distributed" not in out:
        out["distributed"] = out["dask"]
    return out


def matcher(text: str):
    """A predicate on recordings for one env spec (see the module doc)."""
    text = text.strip()
    path, words = envspec.split_file(text)
    if path is not None:
        try:
            request = envspec.read_requirements(path, words=words)
        except envspec.SpecError as e:
            raise BadInput(str(e)) from None
        pins = {n: s for n, s in request.wanted.items()}
        axes = {n: pins.pop(n) for n in PACKAGES if n in pins}
        if request.python_given:
            axes["python"] = request.python
        wanted = identity_extra({n: s.lstrip("=") for n, s in pins.items() if s.startswith("==")})
        digest = envspec.file_digest(path)
        # an env recorded from this file (its content's digest in the record), however many of its lines it could
        # not install, with the axes the file pins (or words beside it: a pydantic it does not pin may have been
        # installed as resolved); else one with its axes and every pin it has
        named = {*request.lines, *(envspec.spec_words(words, f"--env {text!r}") if words else {}), "python"}
        if "dask" in named:
            named.add("distributed")
        given = {n: s for n, s in axes.items() if n in named}
        return lambda r: not r.is_error and (
            ((r.requirements or {}).get("sha256") == digest and all(_word_matches(r, n, s) for n, s in given.items()))
            or (all(_word_matches(r, n, s) for n, s in axes.items()) and extras_match(r.extra, wanted)))
    if "=" not in text and not text.startswith(envspec.SPEC_OPS):  # an id, asv env name or machine/env name
        return lambda r: text in (r.key, r.env_name, r.env_id)
    words = _spec_words(text)
    return lambda r: not r.is_error and all(_word_matches(r, n, s) for n, s in words.items())


def select_envs(rs: ResultSet, specs: list[str]) -> ResultSet:
    """``rs`` with only the recordings (and their problems) that match one of ``specs``; a spec that matches no
    recorded env is :class:`BadInput`, listing what is recorded."""
    if not specs:
        return rs
    shown = rs.current()
    keep: list = []
    for spec in specs:
        test = matcher(spec)
        found = [r for r in shown if test(r)]
        if not found:
            listed = "\n".join(f"  {r.key}  ({r.short_label}: {', '.join(r.version_label())})" for r in shown)
            raise BadInput(f"--env {spec!r} matches no env recorded in {rs.results_dir} (commit {rs.commit[:8]}); "
                           f"recorded:\n{listed or '  (none)'}\nname one of these by its id, or by versions "
                           "it has (e.g. --env 'pydantic=2.9.2 python=3.11')")
        keep += [r for r in found if not any(r is k for k in keep)]
    dropped = [r for r in rs.recordings + rs.older if not any(r is k for k in keep)]
    gone = {str(p) for r in dropped for p in (r.asv_path, r.sidecar_path, r.error_path) if p is not None}
    return ResultSet(rs.results_dir, [r for r in rs.recordings if any(r is k for k in keep)],
                     [p for p in rs.problems if p.path not in gone], rs.commit, rs.benchmarks,
                     [r for r in rs.older if any(r is k for k in keep)])

