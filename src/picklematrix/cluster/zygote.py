"""Processes of another env's ``dask`` command line, forked from one interpreter that has imported it already.

A spawned cluster (picklematrix.cluster.spawned) starts a ``dask worker`` in place of one whose nanny closed
for good, and on a Python-minor skew pair most cells that send code by value need one (166 in a recording). Each
was a new interpreter of the cluster env importing dask and distributed: about half a CPU-second before the
worker does anything. The zygote is that interpreter, started once (when the first such worker was needed), with
``dask.cli`` and distributed's ``dask worker`` imported and no thread started; for each worker it forks a child
that runs ``dask``'s own command line (``dask.cli.run_cli``, what ``python -m dask worker ...`` runs) with the
worker's arguments, in a session of its own, its output appended to the cluster's log. The child is the same
``dask worker`` as a spawned one, less the import it inherits.

Runs in the harness's env; the zygote runs in the cluster env, which needs no picklematrix (its code is below).
Its fork loop (``LOOP``) and ``Zygote`` also make the kernel context's zygote (picklematrix.run.kernelzygote).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time

from picklematrix import processes

# A zygote's loop: reads one JSON request a line and answers the forked child's pid; it reaps its children as
# they end. A child resets what it inherited of the zygote's (its SIGCHLD handler: a nanny waits for the worker it
# forks; the random generator's state), leads a session of its own, then runs ``child(request)``, which the code
# before the loop defines (its imports are what the zygote is for), and ends with its exit status.
LOOP = r"""
def reap(*_):
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass

signal.signal(signal.SIGCHLD, reap)
answers = sys.stdout
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.setsid()
            random.seed()
            child(request)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    answers.write(f"{pid}\n")
    answers.flush()
"""

# The cluster env's zygote ({"argv": [...], "log": path}): ``dask ARGV``, its output appended to the log.
ZYGOTE = r"""
import json, os, random, signal, sys, traceback
from dask.cli import run_cli
import distributed.cli.dask_worker  # noqa: F401 - what every ``dask worker`` imports first

def child(request):
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(null)
    sys.argv = ["dask", *request["argv"]]
    run_cli()
""" + LOOP

# How long the zygote gets to start (import dask and distributed) and to answer a fork.
ANSWER_WITHIN = 60.0


class ForkedProcess:
    """A process the zygote forked: not the harness's child, so whether it still runs is asked of the system.
    Enough of ``subprocess.Popen`` for a spawned cluster's workers and for jupyter_client's kernel provisioner
    (``pid``, ``poll``, ``wait``, ``send_signal``, ``terminate``, ``kill``, no pipes); its exit status is the
    zygote's, which reaped it (``poll`` gives 0 once it has ended)."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode = None

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def poll(self):
        if self.returncode is None and not _running(self.pid):
            self.returncode = 0
        return self.returncode

    def wait(self, timeout: float | None = None):
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout)
            time.sleep(0.02)
        return self.returncode


def _running(pid: int) -> bool:
    """Whether ``pid`` runs: it exists and is no zombie (a child of an ended zygote may wait to be reaped by a
    process that never does)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True


class Zygote:
    """An interpreter that forks children on request: by default the cluster env's, forking ``dask`` commands (see
    the module doc); ``code`` another (``LOOP`` after what defines ``child``: picklematrix.run.kernelzygote).
    Its output goes to ``log`` (None: this process's stderr)."""

    def __init__(self, python: str, env: dict, log, code: str = ZYGOTE, cwd: str | None = None):
        out = open(log, "ab") if log is not None else None
        try:
            self.proc = subprocess.Popen([python, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=out, env=env, cwd=cwd, start_new_session=True)
        finally:
            if out is not None:
                out.close()
        processes.adopt_group(self.proc.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def fork(self, argv: list[str], log) -> ForkedProcess:
        """``dask ARGV`` in a child of the zygote, its output appended to ``log``. Raises OSError when the zygote
        does not answer (it ended, or failed to import dask's command line: its error is in the log)."""
        return self.request({"argv": argv, "log": str(log)})

    def request(self, request: dict) -> ForkedProcess:
        """A child of the zygote running ``child(request)``; OSError when the zygote does not answer."""
        if not self.alive():
            raise OSError(f"the zygote (pid {self.proc.pid}) has ended with status {self.proc.returncode}")
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError) as e:
            raise OSError(f"the zygote (pid {self.proc.pid}) has ended: {e}") from None
        ready, _, _ = select.select([self.proc.stdout], [], [], ANSWER_WITHIN)
        line = self.proc.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            raise OSError(f"the zygote (pid {self.proc.pid}) did not answer within {ANSWER_WITHIN:g}s")
        child = ForkedProcess(int(line))
        processes.adopt_group(child.pid)
        return child

    def close(self) -> None:
        """End the zygote (its children are ended by whoever started them)."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait()
        processes.forget_group(self.proc.pid)
