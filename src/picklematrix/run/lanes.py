"""Two lanes: with ``--context all`` on a cluster the run starts, the kernel cells run in a second process.

One env's cells in both contexts, one after the other, keep about one CPU busy: a cell mostly waits (a
round trip through the scheduler, a cell's own timeout, a kernel's reply). So ``picklematrix run --context
all`` starts a *lane*: the same command for the kernel context alone (``--lane FD``), a process of its own with
a cluster of its own, its own forkserver and kernel, while the run itself takes the script cells. Neither
lane's cells can touch the other's: a cell that kills or hangs a worker, or changes a kernel's global state,
does it on its own lane's cluster and kernel. (An existing cluster, ``--scheduler``, is one cluster: its run
keeps one lane.)

The lane writes each cell it has judged, as a marked JSON line, to the file descriptor it was handed (not its
stdout: the kernel and the lane's cells inherit that), and at its end its cluster's record. The run that started
it writes those cells to its sidecar and progress as they come. If the lane ends before its last cell (killed,
crashed), the run runs the cells it did not get itself, after its own: no cell is lost with a lane.

Its kernel cells done, the lane takes over script cells that the run has not reached, from the back of the
run's order (ScriptQueue, take_over): it asks on its pipe ({"want": n}), the run
answers on the lane's standard input ({"take": [[family, case, method], ...]}, [] when none is left). A script
cell computes three times and a kernel cell once, so the script cells' lane ran on alone for a third of the
run; now the two end together, each cell still run once, on a cluster that ran nothing else meanwhile.

A lane ends with its run: the run stops it (SIGTERM, then SIGKILL) however the run ends, and a lane whose
standard input closes (its run died without stopping it) stops itself.

The lane is forked from its run where it can be (a platform that forks, the run's only thread), once the run
has imported what both lanes need (distributed, jupyter_client, the cluster and kernel modules): the same
``picklematrix run ... --lane FD``, started in the child by the run's entry (``cli.main``), with the file
descriptors a new process would have (its standard streams, the pipe, its standard input the run's answers)
and the exit handlers its modules registered (the run forks it before it registers its own). A new interpreter
importing them all again cost an env's run about a CPU-second (``bench/run_cpu.py``). Elsewhere the lane is that
command in a new interpreter. In ``ps`` a forked lane shows its run's command line.

Runs inside every env (the harness's side of ``picklematrix run``).
"""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

from picklematrix.run.runner import CellRunner, run_one

# a line the lane writes: the mark, then {"cell": ...} or {"end": ...}
MARK = "\x1epicklematrix-lane "
# how long a lane may take to end once stopped (it closes its cluster and kernel) before it is killed
STOP_WITHIN = 20.0


def side_by_side(args, contexts) -> bool:
    """Whether this run takes its kernel cells in a lane: both contexts, a cluster of its own (not
    ``--scheduler``), not ``--serial``, not a lane itself, more than one CPU, and a command line to hand on (a
    run started by picklematrix.cli.main)."""
    return (set(contexts) >= {"script", "kernel"} and not args.scheduler and not args.serial
            and args.lane is None and (os.cpu_count() or 1) > 1 and getattr(args, "argv", None) is not None)


class Lane:
    """The kernel lane of this run: ``picklematrix`` with ``argv`` (a ``run`` command line; ``--lane FD`` is
    added), its cells handed to ``on_cell(dict)`` from a thread of its own as they come. ``give(n)``: up to n
    script cells the lane may take over, as ``[family, case, method]`` (None: none). ``entry``: the function that
    runs a command line in this process (``picklematrix.cli.main``, handed on by it): given, the lane is forked
    from this process where it can be (see the module doc); only a run that has registered no exit handler of its
    own yet gives it (a forked lane runs the handlers it inherits)."""

    def __init__(self, argv: list[str], on_cell, give=None, entry=None):
        self.on_cell = on_cell
        self.give = give
        self.end: dict | None = None  # the lane's last word: its cluster's record
        self.received: list[dict] = []
        read_fd, write_fd = os.pipe()
        try:
            if entry is not None and can_fork_lane():
                self.proc = ForkedLane(entry, argv, write_fd)
            else:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "picklematrix", *argv, "--lane", str(write_fd)],
                    stdin=subprocess.PIPE, pass_fds=(write_fd,))
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        self._reader = threading.Thread(target=self._read, args=(read_fd,), name="picklematrix lane", daemon=True)
        self._reader.start()

    def _read(self, fd: int) -> None:
        with open(fd, encoding="utf-8") as lines:
            for line in lines:
                if not line.startswith(MARK):
                    continue
                try:
                    message = json.loads(line[len(MARK):])
                except ValueError:
                    continue  # cut short by the lane's death
                if "cell" in message:
                    self.received.append(message["cell"])
                    self.on_cell(message["cell"])
                elif "want" in message:
                    self._answer(int(message["want"]))
                elif "end" in message:
                    self.end = message["end"]

    def _answer(self, n: int) -> None:
        try:
            taken = list(self.give(n)) if self.give is not None else []
        except Exception:  # answered all the same: a reader that died would leave the lane blocked on its pipe
            taken = []
        try:
            self.proc.stdin.write((json.dumps({"take": taken}) + "\n").encode())
            self.proc.stdin.flush()
        except (OSError, ValueError):
            pass  # the lane has ended, or is being stopped: the run runs what it did not hand over

    def wait(self) -> int:
        """The lane's exit status, once it has ended and every line it wrote has been handed on."""
        code = self.proc.wait()
        self._reader.join()  # only the lane holds the pipe: it is at its end
        return code

    def stop(self) -> None:
        """End the lane now, if it has not ended (it closes its cluster and kernel first; killed if it hangs)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_WITHIN)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self._reader.join(STOP_WITHIN)


def can_fork_lane() -> bool:
    """Whether this process may fork its lane (see the module doc): the platform forks, and no other thread runs
    (a fork has the forking thread only: a lock another one held would stay held in the child)."""
    return hasattr(os, "fork") and threading.active_count() == 1


class ForkedLane:
    """The lane's process forked from this one (see the module doc), with what Lane uses of a ``subprocess.Popen``:
    ``pid``, ``stdin`` (the lane's standard input), ``returncode``, ``poll``, ``wait``, ``terminate``, ``kill``."""

    def __init__(self, entry, argv: list[str], write_fd: int):
        self.returncode: int | None = None
        self._lock = threading.Lock()
        # what the lane imports, imported here first: the child inherits them (best effort: the lane says what
        # is missing)
        try:
            import distributed  # noqa: F401
            import jupyter_client.kernelspec  # noqa: F401

            import picklematrix.cluster.connect  # noqa: F401
            import picklematrix.cluster.local  # noqa: F401
            import picklematrix.run.kernel  # noqa: F401
        except ImportError:
            pass
        stdin_r, stdin_w = os.pipe()
        sys.stdout.flush()  # what this process has buffered is its own: the child must not write it again
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _lane_child(entry, argv, write_fd, stdin_r)  # never returns
        os.close(stdin_r)
        self.pid = pid
        self.stdin = os.fdopen(stdin_w, "wb")

    def poll(self) -> int | None:
        return self._reap(os.WNOHANG)

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None:
            return self._reap(0)
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"the kernel lane (pid {self.pid})", timeout)
            time.sleep(0.05)
        return self.returncode

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def _reap(self, flags: int) -> int | None:
        with self._lock:
            if self.returncode is None:
                try:
                    pid, status = os.waitpid(self.pid, flags)
                except ChildProcessError:  # reaped elsewhere: its status is lost (as subprocess takes it: 0)
                    pid, status = self.pid, 0
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode


def _lane_child(entry, argv: list[str], write_fd: int, stdin_r: int) -> None:
    """In the forked lane: ``entry(ARGV --lane WRITE_FD)`` with ``stdin_r`` as its standard input and no other
    descriptor of the run's; ends the process with the command's exit status, after the exit handlers a new
    process would run (its modules' and the lane's: the run registers its own only once the lane is forked)."""
    import atexit
    import multiprocessing.process
    import traceback

    code = 1
    try:
        # as multiprocessing does in a process it forks: the run's children are not the lane's (at its exit,
        # multiprocessing's handler would terminate those it believes its own and daemonic)
        multiprocessing.process._children = set()
        os.dup2(stdin_r, 0)
        # the descriptors a new process would have (subprocess's pass_fds): the run's files and pipes are not its
        os.closerange(3, write_fd)
        os.closerange(write_fd + 1, os.sysconf("SC_OPEN_MAX"))
        code = entry([*argv, "--lane", str(write_fd)])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


class ScriptQueue:
    """A run's script cells, which its kernel lane takes over once its own cells are done (see the module doc):
    the run takes them from the front, in its order; the lane from the back, never the run's next two (their
    processes are forked ahead: ScriptCells.prepare and fork_ahead). Each cell runs once, in one of the two. The
    two lanes then end together, where the script cells' lane (three samples a cell) ran on alone for a third of
    the run."""

    KEEP = 2

    def __init__(self):
        self._lock = threading.Lock()
        self._cells: collections.deque | None = None  # None until the run has filled it
        self._filled = threading.Event()

    def fill(self, cells) -> None:
        with self._lock:
            self._cells = collections.deque(cells)
        self._filled.set()

    def close(self) -> None:
        """Nothing more to give: the run has ended, or failed before it began (a lane waiting is answered)."""
        with self._lock:
            self._cells = collections.deque()
        self._filled.set()

    def take(self):
        """The run's next cell; None when the rest went to the lane."""
        with self._lock:
            return self._cells.popleft() if self._cells else None

    def peek(self, k: int):
        """The cell the run takes ``k`` cells from now (0: next), if it is the run's."""
        with self._lock:
            return self._cells[k] if self._cells is not None and len(self._cells) > k else None

    def give(self, n: int) -> list:
        """Up to ``n`` cells from the back, for the lane, in run order; waits for the run to fill the queue (a lane
        with no cells of its own may ask before the run has started its cluster)."""
        self._filled.wait()
        with self._lock:
            taken = []
            while self._cells is not None and len(taken) < n and len(self._cells) > self.KEEP:
                taken.append(self._cells.pop())
            return taken[::-1]


def take_over(ask, cases, *, cluster, samples: int | dict = 1, on_cell=None, batch: int = 4) -> list:
    """The kernel lane's part once its own cells are done: script cells its run hands over (``ask(n)``: up to n
    as ``[family, case, method]``, none left: []), run on this lane's cluster and handed to ``on_cell`` as they
    are judged, a few at a time (each batch's processes forked ahead as the run's are); the cells."""
    by_id = {(case.family, case.case_id): case for case in cases}
    runner = CellRunner(cluster, samples=samples)
    cells = []
    try:
        while True:
            grid = [(by_id[(family, case_id)], method, "script") for family, case_id, method in ask(batch)]
            if not grid:
                break
            for i, (case, method, context) in enumerate(grid):
                cell = run_one(runner, case, method, context, following=grid[i + 1] if i + 1 < len(grid) else None,
                               ahead=grid[i + 2] if i + 2 < len(grid) else None)
                cells.append(cell)
                if on_cell is not None:
                    on_cell(cell)
    finally:
        runner.close()
    return cells


class LaneWriter:
    """The lane's side: its cells and its end, written to the file descriptor its run handed it."""

    def __init__(self, fd: int):
        os.set_inheritable(fd, False)  # not the kernel's nor any cell's: the run reads until the lane has ended
        self._out = open(fd, "w", encoding="utf-8")
        self._lock = threading.Lock()
        self._answers: queue.Queue = queue.Queue()
        threading.Thread(target=_end_with_run, args=(self._answers,), name="picklematrix lane watch",
                         daemon=True).start()

    def cell(self, cell: dict) -> None:
        self._write({"cell": cell})

    def ask(self, n: int) -> list:
        """Up to ``n`` of the run's script cells to take over, ``[family, case, method]`` each; [] when none is
        left. (Were the run gone, its pipe's end stops this lane meanwhile.)"""
        self._write({"want": n})
        return self._answers.get()

    def finish(self, **end) -> None:
        self._write({"end": end})

    def _write(self, message: dict) -> None:
        with self._lock:
            self._out.write(MARK + json.dumps(message) + "\n")
            self._out.flush()


def _end_with_run(answers: queue.Queue) -> None:
    """Hand the run's answers (its standard input's lines) to ``answers``; stop this lane (as a SIGTERM would)
    once its standard input closes: the run that started it is gone."""
    pending = b""
    try:
        # the descriptor itself, not sys.stdin: a daemon thread blocked in a buffered read aborts the
        # interpreter's exit
        while chunk := os.read(0, 65536):
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                try:
                    answers.put(json.loads(line)["take"])
                except (ValueError, KeyError, TypeError):
                    continue
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGTERM)
