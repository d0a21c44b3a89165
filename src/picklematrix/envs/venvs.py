"""Building and checking environments with uv: a matrix env, the asv tools venv, the tests' browser.

A matrix env gets its axes' pins plus :data:`picklematrix.pins.ENV` (from its hashed lock, locks/env.txt)
and this checkout (editable),
is byte-compiled, and is checked against its pins by reading what is installed. Runs in the
orchestrating interpreter (nox's): standard library, ``packaging`` and ``filelock`` only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from filelock import FileLock

from picklematrix import pins
from picklematrix.envs.ids import VERSIONS_PROBE, extras_match
from picklematrix.versions import ABSENT, EXTRA_FILE

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


class EnvError(Exception):
    """An environment cannot be built or is not what its pins say; ``stage`` is "install" or "verify"."""

    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage = stage


def uv() -> str:
    """The uv executable: the one installed beside nox (``nox[uv]``), else the first on PATH."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
    if found is None:
        raise EnvError("install", "uv not found on PATH: run nox through ./nox, which installs nox[uv] "
                                  "(see src/picklematrix/pins.py NOX)")
    return found


def lock(path: Path) -> FileLock:
    """An exclusive lock on ``path``: envs run in parallel (nox -j), shared things are done one at a time."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path))


def venv_python(venv: str | Path) -> str:
    return str(Path(venv) / "bin" / "python")


# An env's packages are byte-compiled once, after installing. uv leaves that to the first import, and under
# PYTHONDONTWRITEBYTECODE=1 (common in images and CI) no import writes a .pyc: every process of a run (the
# harness, its forkserver, each kernel, asv's discovery and benchmark server) then compiled distributed,
# IPython, ... from source again, a fifth of a harness run's CPU. (pip, and so asv's own envs, compile at
# install.) compileall skips what is up to date: a warm env costs a tenth of a second.
COMPILE_PACKAGES = ("import compileall, sysconfig\n"
                    "compileall.compile_dir(sysconfig.get_path('purelib'), quiet=2)")


def compile_packages(python: str) -> str | None:
    """Byte-compile ``python``'s site-packages; what went wrong, if anything (the env works without it, slower).

    A file that does not compile (a template, another Python's test file) is not an error: compileall
    goes on, and the import system never meets it either.
    """
    proc = subprocess.run([python, "-c", COMPILE_PACKAGES], capture_output=True, text=True)
    return None if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["?"])[-1]


def _editable_stamp(python: str) -> Path:
    return Path(python).parents[1] / "picklematrix-editable.txt"


def _editable_wanted(checkout: Path) -> str:
    return f"{checkout}\n{hashlib.sha256((checkout / 'pyproject.toml').read_bytes()).hexdigest()}\n"


def installed_editable(python: str, checkout: Path) -> bool:
    """The env has ``checkout`` installed editable, from its current pyproject.toml: no reinstall needed.

    uv rebuilds an editable install every time it is asked for one (a setuptools build: 2-3 s a
    session, where checking the pinned packages takes a tenth of a second). Installed from another
    checkout, or by other means, or before pyproject.toml changed: installed again.
    """
    stamp = _editable_stamp(python)
    if not stamp.exists() or stamp.read_text() != _editable_wanted(checkout):
        return False
    found = next(Path(python).parents[1].glob("lib/python*/site-packages/picklematrix-*.dist-info/direct_url.json"),
                 None)
    try:
        url = json.loads(found.read_text()) if found else {}
    except (OSError, ValueError):
        return False
    return url.get("url") == checkout.as_uri() and bool(url.get("dir_info", {}).get("editable"))


def run_streamed(command: list[str], on_line=None) -> tuple[int, str]:
    """Run ``command``; (its exit status, its whole output). ``on_line(line)`` sees each line as it comes (uv's
    "Downloading torch (866.1MiB)": a heavy install's progress)."""
    if on_line is None:
        proc = subprocess.run(command, capture_output=True, text=True)
        return proc.returncode, (proc.stderr or proc.stdout)
    out = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                          text=True, errors="replace") as proc:
        for line in proc.stdout:
            out.append(line)
            on_line(line.rstrip("\n"))
    return proc.returncode, "".join(out)


def install(python: str, requirements: list[str], checkout: Path, checkout_deps: bool = True, on_line=None) -> None:
    """``requirements`` and ``checkout`` (editable, unless already there) into ``python``'s env.

    ``checkout_deps=False`` installs the checkout without its dependencies (dask, distributed, ...):
    what the asv tools venv needs of it is the asv plugin and the report, which do not import them.
    ``on_line``: each line of uv's output as it comes (:func:`run_streamed`).
    """
    this_checkout = [] if installed_editable(python, checkout) else ["-e", str(checkout)]
    if checkout_deps:
        steps = [[*requirements, *this_checkout]]
    else:
        steps = [requirements, ["--no-deps", *this_checkout] if this_checkout else []]
    for args in filter(None, steps):
        code, output = run_streamed([uv(), "pip", "install", "-p", python, *args], on_line)
        if code != 0:
            raise EnvError("install", output.strip())
    if this_checkout:
        _editable_stamp(python).write_text(_editable_wanted(checkout))


def installed_versions(python: str) -> dict:
    """``{"python": "3.11.7", "versions": {name: version or None}}`` of the matrix's distributions."""
    proc = subprocess.run([python, "-c", VERSIONS_PROBE], capture_output=True, text=True)
    if proc.returncode != 0:
        raise EnvError("verify", f"{python} cannot report its versions: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout)


def pin_mismatches(env, found: dict) -> list[str]:
    """What ``found`` (see :func:`installed_versions`) has other than ``env``'s pins, one phrase each."""
    versions = found["versions"]
    wrong = [f"{name} {versions.get(name)} (pinned {version})"
             for name, version in env.pins().items() if versions.get(name) != version]
    if env.pydantic == ABSENT and versions.get("pydantic"):
        wrong.append(f"pydantic {versions['pydantic']} (pinned: absent)")
    installed = found.get("extra") or {}
    for name, version in env.identity_extra().items():
        if not extras_match({name: installed.get(name)}, {name: version}):
            wrong.append(f"{name} {installed.get(name)} (pinned {version})")
    if not found["python"].startswith(env.python + "."):
        wrong.append(f"python {found['python']} (pinned {env.python})")
    return wrong


def name_extra_pins(python: str, env) -> None:
    """Name ``env``'s extra pins in its venv (picklematrix.versions.EXTRA_FILE): the version probe and the
    harness run report their installed versions, which are part of the env's identity (its record's name)."""
    stamp = Path(python).parents[1] / EXTRA_FILE
    names = sorted(env.identity_extra())
    if names:
        stamp.write_text(json.dumps(names) + "\n")
    else:
        stamp.unlink(missing_ok=True)


def harness_requirements(checkout: Path) -> list[str]:
    """The checkout's declared dependencies (pyproject.toml) other than the matrix's axes."""
    from packaging.requirements import Requirement

    from picklematrix.versions import AXES

    declared = tomllib.loads((checkout / "pyproject.toml").read_text())["project"]["dependencies"]
    axes = {*AXES, "distributed"}
    return [r for r in declared if Requirement(r).name.lower() not in axes]


# What the last successful prepare() of a venv found, and of what (prepared_fingerprint): the next one with the same
# fingerprint has nothing to install, compile or verify.
PREPARED_FILE = "picklematrix-prepared.json"


def _sources_and_bytecode(site: Path) -> list:
    """How many ``.py`` files ``site`` holds, how many byte-compiled ones, and the newest source's mtime: a
    removed ``__pycache__`` or an edited source changes it (compile_packages has work to do)."""
    sources = compiled = newest = 0
    todo = [str(site)]
    while todo:
        with os.scandir(todo.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    todo.append(entry.path)
                elif entry.name.endswith(".pyc"):
                    compiled += 1
                elif entry.name.endswith(".py"):
                    sources += 1
                    newest = max(newest, entry.stat(follow_symlinks=False).st_mtime_ns)
    return [sources, compiled, newest]


def prepared_fingerprint(env, python: str, checkout: Path) -> dict | None:
    """What prepare() would install into ``python``'s venv and what the venv holds: the env's requirements, the
    harness's lock and requirements, the editable checkout, the interpreter (its file), every distribution
    installed (its dist-info directory: a name and a version) and its files' byte-compiled state. Any install,
    uninstall or upgrade changes it, and so does a removed ``__pycache__``. None when it cannot be read (then
    prepare() does its whole work)."""
    try:
        interpreter = Path(os.path.realpath(python)).stat()
        venv = Path(python).parents[1]
        site = sorted(venv.glob("lib/python*/site-packages"))
        found = {
            "requirements": [*env.requirements(), *harness_requirements(checkout),
                             sorted(env.identity_extra().items())],
            "lock": hashlib.sha256(pins.lock_path("env").read_bytes()).hexdigest(),
            "editable": installed_editable(python, checkout) and _editable_wanted(checkout),
            "interpreter": [os.path.realpath(python), interpreter.st_size, interpreter.st_mtime_ns,
                            (venv / "pyvenv.cfg").read_text()],
            "installed": sorted(d.name for s in site for d in s.iterdir() if d.name.endswith(".dist-info")),
            "compiled": [_sources_and_bytecode(s) for s in site],
        }
    except (OSError, ValueError):
        return None
    return json.loads(json.dumps(found))  # as it reads back from PREPARED_FILE (lists, not tuples)


def prepare(env, python: str, checkout: Path, warn=print, on_line=None) -> dict:
    """Install ``env``'s pins and the harness into the venv of ``python``, byte-compile it, check its versions.

    Returns :func:`installed_versions`; raises :class:`EnvError` naming the env when it cannot be built
    or is not what its pins say. ``on_line``: each line of uv's output as it comes (its progress).
    A venv whose :func:`prepared_fingerprint` is the one its last successful prepare left is not touched: that
    prepare's finding is returned (a warm env's session skips a uv no-op, a byte-compile check and the version
    probe: most of a second).
    """
    done = Path(python).parents[1] / PREPARED_FILE
    fingerprint = prepared_fingerprint(env, python, checkout)
    try:
        last = json.loads(done.read_text())
    except (OSError, ValueError):
        last = None
    if fingerprint is not None and isinstance(last, dict) and last.get("fingerprint") == fingerprint:
        return last["found"]
    done.unlink(missing_ok=True)
    try:
        # ENV from its lock: uv checks the hashes it gives (the axes' pins and all dependencies have none).
        # The checkout goes in without its declared dependencies, and with those that are not axes: an env's
        # axes are whatever it pins (a bisect goes below the harness's declared floors, cloudpickle 2.1.0 say),
        # and whether the harness runs there is what the recording finds out.
        install(python, [*env.requirements(), "-r", str(pins.lock_path("env")), *harness_requirements(checkout)],
                checkout, checkout_deps=False, on_line=on_line)
    except EnvError as e:
        raise EnvError("install", f"{env.env_id}: cannot install {' '.join(env.requirements())}:\n{e}") from None
    if on_line is not None:
        on_line("Byte-compiling the env's packages")  # (minutes for a freeze's gigabytes: the console says so)
    problem = compile_packages(python)
    if problem:
        warn(f"{env.env_id}: could not byte-compile its packages ({problem}); it runs slower")
    name_extra_pins(python, env)
    found = installed_versions(python)
    wrong = pin_mismatches(env, found)
    if wrong:
        raise EnvError("verify", f"{env.env_id}: installed versions differ from the pins: {'; '.join(wrong)}")
    fingerprint = prepared_fingerprint(env, python, checkout)
    if fingerprint is not None and not problem:
        with contextlib.suppress(OSError):
            done.write_text(json.dumps({"fingerprint": fingerprint, "found": found}) + "\n")
    return found


def tools_python(checkout: Path, venv: Path | None = None) -> str:
    """An interpreter with asv, the report's needs and this checkout (for asv's env plugin), built once.

    ``venv`` defaults to ``PICKLEMATRIX_TOOLS_VENV`` or ``<checkout>/.nox/_tools``; built with the
    interpreter running this code (nox's), rebuilt when :data:`picklematrix.pins.TOOLS` changes.
    """
    venv = Path(venv or os.environ.get("PICKLEMATRIX_TOOLS_VENV") or checkout / ".nox" / "_tools")
    locked = pins.lock_path("tools")
    try:
        lock_hash = hashlib.sha256(locked.read_bytes()).hexdigest()
    except OSError as e:
        raise EnvError("install", f"cannot read {locked}, the asv tools venv's hashed lock ({e.strerror or e}): "
                                  "it is part of the checkout; regenerate it with "
                                  "`python3 src/picklematrix/pins.py lock`") from None
    with lock(venv.parent / f".{venv.name}.lock"):
        python = venv_python(venv)
        stamp = venv / "picklematrix-tools.txt"
        wanted = "\n".join([*pins.TOOLS, f"lock {lock_hash}", f"-e {checkout} --no-deps", "byte-compiled"])
        if Path(python).exists() and stamp.exists() and stamp.read_text() == wanted:
            return python
        proc = subprocess.run([uv(), "venv", "-q", "--allow-existing", "-p", sys.executable, str(venv)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise EnvError("install", f"cannot make the asv tools venv {venv} (PICKLEMATRIX_TOOLS_VENV) with "
                                      f"{sys.executable}: {proc.stderr.strip()[-2000:]}")
        # every package from the hashed lock (--require-hashes: one that is not the locked file is refused);
        # the checkout itself goes in editable, without hashes (it is this source tree)
        install(python, ["--require-hashes", "-r", str(locked)], checkout, checkout_deps=False)
        problem = compile_packages(python)
        if problem:
            print(f"picklematrix: could not byte-compile the asv tools venv {venv} ({problem}); asv runs slower",
                  file=sys.stderr)
        stamp.write_text(wanted)
        return python


# --------------------------------------------------------------------------- the tests' browser

CHROMIUM_VAR = "PICKLEMATRIX_CHROMIUM"
INSTALL_BROWSER_VAR = "PICKLEMATRIX_INSTALL_BROWSER"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_INSTALL = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]


def find_chromium() -> str | None:
    """The browser the browser test drives: ``PICKLEMATRIX_CHROMIUM``, else the first of CHROMIUM_NAMES on PATH."""
    given = os.environ.get(CHROMIUM_VAR)
    if given:
        return given if os.access(given, os.X_OK) else None
    return next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)


def chromium_missing() -> str:
    """Why the browser test cannot run here and what to do about it."""
    given = os.environ.get(CHROMIUM_VAR)
    where = (f"{CHROMIUM_VAR}={given} is not an executable" if given
             else f"none of {', '.join(CHROMIUM_NAMES)} is on PATH")
    return (f"no chromium for the browser test (tests/test_browser.py drives the published site in one): {where}. "
            f"Install it (Debian: `apt-get update && {' '.join(CHROMIUM_INSTALL)}`), point {CHROMIUM_VAR} at one, "
            f"or set {INSTALL_BROWSER_VAR}=1 to let `nox -s tests` install Debian's chromium (root, apt-get).")


def install_chromium_commands() -> list[list[str]] | None:
    """The apt-get commands that install Debian's chromium, when this process may run them (root, apt-get)."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    return [["apt-get", "update", "-qq"], CHROMIUM_INSTALL]
