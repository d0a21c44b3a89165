"""What recording an env shows a person: a few progress lines on the console, the full output in files.

**The console** gets one line per env and phase, with the time since the env began::

    cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11: cells 120/480 (1 surprise) 0:41

Phases: ``build`` (uv, byte-compiling; a heavy install's progress as uv reports it: packages resolved,
large downloads done and their bytes, ``build: 230 packages resolved, downloads 3/12 (640 MiB of 2.8 GiB)``),
``verify ok: <versions>``, ``cluster`` (the harness starting its cluster and kernel), ``cells k/n``, ``asv``
(asv's record of the run), ``merge``. A phase is shown when it begins; within one the line is repeated at most
every :data:`HEARTBEAT` seconds and at least that often (a heartbeat): an env that works is never silent for
longer. The lines are plain text (no carriage return, no colour).

Under ``nox --parallel`` each session's output is buffered by nox and printed in one block when the session
ends. So when the console is not a terminal (CI, ``| tee``), nox's own process relays the lines instead: the
noxfile calls :func:`setup_console` when it loads, which makes a directory the sessions' lines are appended
to (named in ``_PICKLEMATRIX_CONSOLE``, inherited by the sessions' nox processes) and a thread that prints
them as they come. On a terminal, nox's status board shows each session's latest line, live. A session whose
nox process is gone (killed: nobody would see its output) stops, as it would writing to a closed pipe.

While an env records, SIGTERM (and SIGHUP, unless ignored, as under nohup) stops its recording as Ctrl-C
would: the step under way ends its processes (:func:`run_logged`) and the recording fails, so nothing it
started outlives it. The stop of a session whose nox process is gone is the same SIGTERM, sent to itself, so
it works where SIGINT is ignored (a job started in the background by a shell).

**The files**: ``results/logs/<machine>/<commit8>-<env id>/`` (:func:`log_dir`) holds ``env.log`` (the env's
build and versions), ``harness.log`` (``picklematrix run``'s whole output: a line per cell, the outcome
table) and ``asv.log`` (asv's record: its discovery of the benchmarks, what it recorded). A failure's message
on the console ends with the relevant last lines of one (:func:`tail`) and its path.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from picklematrix.run import progress

HEARTBEAT = 8.0  # seconds: at most one line per env this often within a phase, and at least one
RELAY_POLL = 0.1  # seconds between two looks of nox's process at the sessions' lines
# A session's last lines are printed before nox prints its end: the session marks its file done (this suffix) and
# waits, at most RELAY_WAIT seconds, for the relay to print the file to its end and remove the mark.
DONE = ".done"
RELAY_WAIT = 2.0
CONSOLE_VAR = "_PICKLEMATRIX_CONSOLE"
LOGS = "logs"  # results/logs/
STARTED = "# recording started "  # env.log's first line: which of two copies of an env's logs is newer
TAIL_LINES = 30
# uv pip install: "Resolved 230 packages in 1.2s", "Downloading torch (866.1MiB)", " Downloaded torch",
# "Prepared 12 packages in 40s", "Installed 230 packages in 3s", "Building e==1.4.5"
UV_COUNT = re.compile(r"^\s*(Resolved|Prepared|Installed|Uninstalled|Audited) (\d+) packages?")
UV_DOWNLOAD = re.compile(r"^\s*(Downloading|Downloaded) (\S+)(?: \(([\d.]+)\s*([KMGT]?i?B)\))?")
UV_BUILD = re.compile(r"^\s*(Building|Built) (\S+)")
COMPILING = "Byte-compiling"  # what picklematrix.envs.venvs.prepare says after installing, before compileall
SIZE = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "kB": 10**3, "MB": 10**6, "GB": 10**9}
_ERROR = re.compile(r"Traceback|Error|error:|[Ff]ailed|FAILED|Exception")


def log_dir(results: Path, machine: str, commit: str, env_id: str) -> Path:
    """Where the logs of one recording go: ``results/logs/<machine>/<commit8>-<env id>/``."""
    return Path(results) / LOGS / machine / f"{commit[:8]}-{env_id}"


def elapsed(seconds: float) -> str:
    """``0:41``, ``12:05``, ``1:02:03``."""
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def started_line() -> str:
    return STARTED + datetime.now(timezone.utc).isoformat(timespec="seconds") + "\n"


def started_at(directory: Path) -> float:
    """When the recording whose logs are in ``directory`` started (env.log's first line), else its newest
    file's mtime: the later of two copies of one env's logs is the one a merge keeps."""
    with contextlib.suppress(OSError, ValueError):
        first = (Path(directory) / "env.log").read_text().split("\n", 1)[0]
        if first.startswith(STARTED):
            return datetime.fromisoformat(first[len(STARTED):]).timestamp()
    return max((p.stat().st_mtime for p in Path(directory).rglob("*") if p.is_file()), default=0.0)


def tail(path: Path, n: int = TAIL_LINES, skip=None) -> str:
    """The relevant last lines of a log: up to ``n`` ending at its last error line (a traceback's exception,
    asv's "failed", the harness's "error:"), or its last ``n`` lines; lines ``skip(line)`` says are noise
    (the harness's per-cell lines) left out."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError as e:
        return f"({path} cannot be read: {e.strerror or e})"
    lines = [line for line in lines if not (skip and skip(line))]
    errors = [i for i, line in enumerate(lines) if _ERROR.search(line)]
    end = errors[-1] + 1 if errors else len(lines)
    return "\n".join(lines[max(0, end - n):end])


def failure(message: str, path: Path, skip=None) -> str:
    """``message``, then the relevant last lines of the log at ``path`` and where the whole log is."""
    return f"{message}. The last lines of {path}:\n{tail(path, skip=skip)}\n(the whole log: {path})"


def size_text(n: float) -> str:
    """``866 MiB``, ``2.8 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit in ("B", "KiB", "MiB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class InstallProgress:
    """What uv's lines say of an install in progress, as one phrase: packages resolved, the large downloads
    (uv names those over a few MiB, with their size) done of those started, and their bytes."""

    def __init__(self):
        self.counts: dict = {}
        self.sizes: dict = {}  # package -> bytes, of the downloads uv announced
        self.done: set = set()
        self.building = None

    def line(self, line: str) -> bool:
        """Take one line of uv's output; whether it said something new."""
        m = UV_COUNT.match(line)
        if m:  # (the largest of the install's uv steps: the checkout's own, one package, comes after the env's)
            self.counts[m[1].lower()] = max(int(m[2]), self.counts.get(m[1].lower(), 0))
            return True
        if line.startswith(COMPILING):
            self.building = COMPILING
            return True
        m = UV_DOWNLOAD.match(line)
        if m:
            if m[1] == "Downloading":
                self.sizes[m[2]] = float(m[3]) * SIZE.get(m[4], 1) if m[3] else 0.0
            else:
                self.done.add(m[2])
            return True
        m = UV_BUILD.match(line)
        if m:
            self.building = m[2] if m[1] == "Building" else None
            return True
        return False

    def text(self) -> str:
        parts = []
        if "resolved" in self.counts:
            parts.append(f"{self.counts['resolved']} packages resolved")
        if self.sizes:
            total = sum(self.sizes.values())
            got = sum(v for k, v in self.sizes.items() if k in self.done)
            parts.append(f"downloads {len(self.done & set(self.sizes))}/{len(self.sizes)} "
                         f"({size_text(got)} of {size_text(total)})")
        if self.building:
            parts.append("byte-compiling" if self.building == COMPILING else f"building {self.building}")
        for key in ("prepared", "installed"):
            if key in self.counts:
                parts.append(f"{self.counts[key]} {key}")
        return ", ".join(parts)


def run_logged(command: list[str], env: dict, log_file: Path, on_line=None, poll: float = 0.25) -> int:
    """Run ``command`` with its stdout and stderr appended to ``log_file``; ``on_line(line)`` for each line as
    it comes; the exit code.

    The output goes to the file, not a pipe: a process the command leaves behind (a worker) holding the
    pipe open would keep a reader waiting for its end.
    """
    log_file = Path(log_file)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out, open(log_file, "rb") as reader:
        out.write(f"$ {' '.join(command)}\n".encode())
        out.flush()
        reader.seek(out.tell())
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        pending = b""
        try:
            while True:
                code = proc.poll()
                chunk = reader.read()
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    if on_line is not None:
                        on_line(line.decode(errors="replace"))
                if code is not None:
                    break
                if not chunk:
                    time.sleep(poll)
        finally:
            if proc.poll() is None:  # interrupted (Ctrl-C, an error in on_line): the command goes too
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if pending and on_line is not None:
            on_line(pending.decode(errors="replace"))
    return code


class EnvConsole:
    """The console lines of one env: :meth:`phase` shows one now, :meth:`status` at most every ``interval``
    seconds; a thread repeats the current one when nothing was shown for ``interval`` (a heartbeat).

    Lines go to the relay of nox's process (:func:`setup_console`) when there is one, else to ``log``.
    """

    def __init__(self, env_id: str, log=print, interval: float = HEARTBEAT):
        self.env_id = env_id
        self.interval = interval
        self.started = time.monotonic()
        self.text = "starting"
        self.logs: Path | None = None  # the env's log directory, once there is one
        self._surprises = 0
        self._install = InstallProgress()
        self._last = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._relay = None
        relay_dir = os.environ.get(CONSOLE_VAR)
        owner = re.search(r"picklematrix-console-(\d+)-", relay_dir or "")
        self._owner = int(owner[1]) if owner else None  # the nox process that prints the lines
        self._owner_is_parent = self._owner == os.getppid()  # (a session's nox process under --parallel)
        if relay_dir and os.path.isdir(relay_dir):
            safe = re.sub(r"[^A-Za-z0-9_.~-]", "_", env_id)
            with contextlib.suppress(OSError):
                self._relay = open(os.path.join(relay_dir, f"{os.getpid()}-{safe}.lines"), "a")
        self._log = log
        self._thread = threading.Thread(target=self._beat, name=f"console {env_id}", daemon=True)
        self._handlers: dict = {}  # the stop signals' previous handlers, while ours are installed

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._handlers[signum] = signal.signal(signum, _stop)
        self._thread.start()
        return self

    def __exit__(self, kind, error, traceback):
        if error is not None:  # the message itself ends the session's output (nox prints it)
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            self.phase(f"failed in {self.text.split(' ')[0]}: {first[:160]}")
        self._stop.set()
        self._thread.join()
        for signum, handler in self._handlers.items():
            signal.signal(signum, handler)
        self._handlers = {}
        if self._relay is not None:
            # the last line printed before nox prints the session's end: the relay says when (see DONE)
            self._relay.close()
            done = self._relay.name + DONE
            with contextlib.suppress(OSError):
                open(done, "w").close()
                deadline = time.monotonic() + RELAY_WAIT
                while os.path.exists(done) and time.monotonic() < deadline and not self._owner_gone():
                    time.sleep(0.01)

    def phase(self, text: str) -> None:
        """A phase begins: shown now."""
        with self._lock:
            self.text = text
            self._show()

    def status(self, text: str) -> None:
        """Progress within a phase: shown if nothing was for ``interval`` seconds."""
        with self._lock:
            self.text = text
            if time.monotonic() - self._last >= self.interval:
                self._show()

    def harness_line(self, line: str) -> None:
        """A line of ``picklematrix run``'s output: a cell done is progress (picklematrix.run.progress)."""
        cell = progress.parse(line)
        if cell is None:
            return
        self._surprises += cell.surprise
        text = f"cells {cell.done}/{cell.total}" + (
            f" ({self._surprises} surprise{'s' if self._surprises > 1 else ''})" if self._surprises else "")
        (self.phase if cell.done == 1 else self.status)(text)

    def build_line(self, line: str) -> None:
        """A line of ``uv pip install``'s output: packages resolved, large downloads and their bytes, builds."""
        if self._install.line(line):
            self.status(f"build: {self._install.text()}")

    def _show(self) -> None:
        line = f"{self.env_id}: {self.text} {elapsed(time.monotonic() - self.started)}"
        self._last = time.monotonic()
        if self._relay is not None:
            try:
                self._relay.write(line + "\n")
                self._relay.flush()
                return
            except OSError:
                self._relay = None
        self._log(line)

    def _owner_gone(self) -> bool:
        if self._owner is None or self._owner == os.getpid():
            return False
        return os.getppid() != self._owner if self._owner_is_parent else not _alive(self._owner)

    def _beat(self) -> None:
        while not self._stop.wait(min(0.5, self.interval / 4)):
            if self._relay is not None and self._owner_gone():
                # nox's own process was killed: stop this recording as a write to its closed pipe would (a
                # KeyboardInterrupt in the main thread: whatever it runs ends, and its subprocesses with it)
                self._relay = None
                signum = signal.SIGTERM if signal.SIGTERM in self._handlers else signal.SIGINT
                signal.pthread_kill(threading.main_thread().ident, signum)
                return
            with self._lock:
                if time.monotonic() - self._last >= self.interval:
                    self._show()


# The signals that stop a recording as Ctrl-C does (EnvConsole installs the handler while an env records).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """A recording stopped by a signal: handled as Ctrl-C is (a KeyboardInterrupt)."""


def _stop(signum, frame):
    raise Stopped(f"stopped by signal {signum}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Relay:
    """Prints the lines sessions append to the files of ``directory``, as they come (see :func:`setup_console`)."""

    def __init__(self, directory: Path, stream=None, poll: float = RELAY_POLL):
        self.directory = Path(directory)
        self.stream = stream or sys.stdout
        self.poll = poll
        self._offsets: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="picklematrix console relay", daemon=True)

    def start(self) -> Relay:
        self._thread.start()
        return self

    def drain(self) -> None:
        """Print every complete line not printed yet."""
        try:
            names = sorted(os.listdir(self.directory))
        except OSError:
            return
        listed = set(names)
        for name in names:
            if name.endswith(DONE):
                continue
            # marked done before this read began: the read has its last line
            done = name + DONE in listed
            try:
                with open(self.directory / name, "rb") as f:
                    f.seek(self._offsets.get(name, 0))
                    data = f.read()
            except OSError:
                continue
            complete = data[:data.rfind(b"\n") + 1]
            if complete:
                self._offsets[name] = self._offsets.get(name, 0) + len(complete)
                self.stream.write(complete.decode(errors="replace"))
                self.stream.flush()
            if done:
                with contextlib.suppress(OSError):
                    os.unlink(self.directory / (name + DONE))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        with contextlib.suppress(OSError, ValueError):
            self.drain()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.drain()
            except (OSError, ValueError):  # the console went away (a closed pipe): nothing more to show
                return


def setup_console(relay: bool, argv=None, stream=None) -> Relay | None:
    """Called by the noxfile when nox loads it: in nox's own process, relay the sessions' progress lines when
    ``relay`` (a session that records may run) and the console is not a terminal; the Relay, or None.

    A session's nox process under ``--parallel`` (``--parallel-worker``) keeps its parent's relay. Any other
    process forgets one it inherited (a nox run inside a test has its own console).
    """
    argv = sys.argv if argv is None else argv
    stream = stream or sys.stdout
    if "--parallel-worker" in argv:
        return None
    os.environ.pop(CONSOLE_VAR, None)
    listing = any(a in ("-l", "--list", "--list-sessions") or a.startswith("--json") for a in argv)
    if not relay or listing or stream.isatty():
        return None
    found = Relay(Path(tempfile.mkdtemp(prefix=f"picklematrix-console-{os.getpid()}-")), stream).start()
    os.environ[CONSOLE_VAR] = str(found.directory)
    atexit.register(found.stop)
    return found
