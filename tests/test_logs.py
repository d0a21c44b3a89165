"""picklematrix.record.logs: the console's progress lines (phases, throttled progress, a heartbeat, nox's relay), the
output of a step into a log file as it comes, and the relevant tail of a log on failure."""

import io
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from picklematrix.record import logs
from picklematrix.run import progress
from picklematrix.run.runner import CellResult


@pytest.fixture(autouse=True)
def _no_inherited_relay(monkeypatch):
    monkeypatch.delenv(logs.CONSOLE_VAR, raising=False)


def test_elapsed_reads_as_minutes_and_seconds():
    assert [logs.elapsed(s) for s in (0, 41.9, 725, 3723)] == ["0:00", "0:41", "12:05", "1:02:03"]


def test_a_phase_shows_at_once_progress_at_most_every_interval_and_a_heartbeat_when_quiet():
    lines = []
    with logs.EnvConsole("cp-env", lines.append, interval=1.2) as console:
        console.phase("build")
        assert lines == ["cp-env: build 0:00"]
        for k in range(1, 6):
            console.status(f"cells {k}/10")
        assert len(lines) == 1  # progress within the interval waits
        time.sleep(1.7)
        assert lines[1:] == ["cp-env: cells 5/10 0:01"]  # the heartbeat: the latest progress, not silence
        console.phase("asv")
        assert lines[-1] == "cp-env: asv 0:01"
    count = len(lines)
    time.sleep(1.0)
    assert len(lines) == count  # ended with the recording: no heartbeat of an env that is done


def test_a_failed_recording_says_in_which_phase_at_once():
    lines = []
    with pytest.raises(RuntimeError), logs.EnvConsole("env", lines.append, interval=60) as console:
        console.phase("asv")
        console.status("asv 33%")
        raise RuntimeError("env: asv wrote no x.json (in stage/box; exit status 1)\nthe last lines ...")
    assert lines[-1] == "env: failed in asv: env: asv wrote no x.json (in stage/box; exit status 1) 0:00"


def _cell(n: int, surprise: bool) -> CellResult:
    return CellResult(case=f"case{n}", family="fam", method="dask.compute(client=)", context="kernel",
                      outcome="serialize-error" if surprise else "pass", expected="pass", surprise=surprise)


def test_the_harness_s_own_progress_lines_become_cells_k_of_n_with_surprises():
    stream = io.StringIO()  # not a terminal: one line per cell, as in a recording's harness.log
    bar = progress.Progress(3, stream=stream)
    for n, surprise in enumerate((False, True, False)):
        bar.update(_cell(n, surprise))
    written = stream.getvalue().splitlines()
    assert [progress.parse(line) for line in written] == [(1, 3, False), (2, 3, True), (3, 3, False)]
    assert progress.parse("case  dask.compute @script") is None and progress.parse("0 surprise(s) in 3 cells") is None
    lines = []
    console = logs.EnvConsole("e", lines.append, interval=0)  # (not entered: no heartbeat thread) every line shown
    for line in ["python=3.11.7 cloudpickle=3.0.0", *written]:
        console.harness_line(line)
    assert [re.sub(r" \d+:\d\d$", "", line) for line in lines] == [
        "e: cells 1/3", "e: cells 2/3 (1 surprise)", "e: cells 3/3 (1 surprise)"]


def test_a_command_s_output_goes_to_its_log_and_is_seen_line_by_line_as_it_comes(tmp_path):
    log = tmp_path / "step.log"
    script = textwrap.dedent("""
        import subprocess, sys, time
        print("first", flush=True)
        # a process left behind holding the output open (a worker) must not keep the reader waiting
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print(f"child {child.pid}", flush=True)
        time.sleep(1.5)
        print("to stderr", file=sys.stderr, flush=True)
        sys.stdout.write("no newline at the end")
        sys.exit(3)
    """)
    seen = []
    started = time.monotonic()
    code = logs.run_logged([sys.executable, "-c", script], dict(os.environ), log,
                           on_line=lambda line: seen.append((line, time.monotonic() - started)), poll=0.05)
    took = time.monotonic() - started
    child = int(next(line for line, _ in seen if line.startswith("child "))[6:])
    os.kill(child, signal.SIGTERM)
    assert code == 3 and took < 10, took
    assert [line for line, _ in seen][::2] == ["first", "to stderr"] and seen[-1][0] == "no newline at the end"
    assert seen[0][1] < took - 1.0  # seen while the command still ran, not at its end
    text = log.read_text()
    assert text.startswith(f"$ {sys.executable} -c") and "first\n" in text and "to stderr\n" in text


def test_the_tail_of_a_failed_log_ends_at_its_error_without_the_per_cell_lines(tmp_path):
    log = tmp_path / "harness.log"
    cells = [f"{k}/40 [#...............] 1s fam/case{k} [Client.compute @script] pass" for k in range(1, 41)]
    log.write_text("\n".join(["$ python -m picklematrix run", *[f"setup {k}" for k in range(50)], *cells[:20],
                              "Traceback (most recent call last):", '  File "x.py", line 1', "ValueError: boom",
                              *cells[20:], "[ 50.00%] ··· shutting down"]) + "\n")
    text = logs.tail(log, n=5, skip=progress.parse)
    assert text.splitlines() == ["setup 48", "setup 49", "Traceback (most recent call last):",
                                 '  File "x.py", line 1', "ValueError: boom"]
    message = logs.failure("env: the harness exited with exit code 2", log, skip=progress.parse)
    assert message.splitlines()[0] == f"env: the harness exited with exit code 2. The last lines of {log}:"
    assert message.endswith(f"(the whole log: {log})") and "ValueError: boom" in message
    assert logs.tail(tmp_path / "missing.log").startswith("(")  # said, not raised


def test_nox_s_own_process_relays_the_sessions_lines_when_the_console_is_no_terminal(tmp_path):
    console = io.StringIO()
    relay = logs.setup_console(relay=True, argv=["nox", "-s", "matrix"], stream=console)
    try:
        assert relay is not None and os.environ[logs.CONSOLE_VAR] == str(relay.directory)
        # a session's own nox process (nox --parallel) keeps the relay it inherited
        assert logs.setup_console(relay=True, argv=["nox", "--parallel-worker"], stream=io.StringIO()) is None
        assert os.environ[logs.CONSOLE_VAR] == str(relay.directory)
        direct = []
        with logs.EnvConsole("env-a", direct.append, interval=60) as a, \
                logs.EnvConsole("env-b", direct.append, interval=60) as b:
            a.phase("build")
            b.phase("cells 1/4")
            deadline = time.monotonic() + 5
            while console.getvalue().count("\n") < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        assert direct == []  # in the relay, not in the session's own (buffered) output
        assert sorted(console.getvalue().splitlines()) == ["env-a: build 0:00", "env-b: cells 1/4 0:00"]
    finally:
        relay.stop()
    assert not relay.directory.exists()


def test_a_session_ends_once_the_relay_has_printed_its_last_line(tmp_path):
    """The session marks its file done and waits for the relay to print it to its end and take the mark away
    (not a fixed wait of two of the relay's looks): its last line comes before nox prints the session's end."""
    console = io.StringIO()
    relay = logs.setup_console(relay=True, argv=["nox", "-s", "matrix"], stream=console)
    try:
        with logs.EnvConsole("env-a", [].append, interval=60) as a:
            a.phase("build")
            a.phase("merge")
        assert console.getvalue().splitlines()[-1] == "env-a: merge 0:00"
        assert not list(relay.directory.glob("*" + logs.DONE))  # the relay took the mark: no wait ran out
    finally:
        relay.stop()


def test_on_a_terminal_or_for_sessions_that_record_nothing_there_is_no_relay(tmp_path, monkeypatch):
    main, other = os.openpty()
    with open(other, "w") as tty:
        monkeypatch.setenv(logs.CONSOLE_VAR, str(tmp_path))  # inherited from an outer nox run
        assert logs.setup_console(relay=True, argv=["nox"], stream=tty) is None
        assert logs.CONSOLE_VAR not in os.environ  # nox's status board shows the sessions' lines
    os.close(main)
    assert logs.setup_console(relay=False, argv=["nox", "-s", "tests"], stream=io.StringIO()) is None
    assert logs.setup_console(relay=True, argv=["nox", "--list"], stream=io.StringIO()) is None
    lines = []
    with logs.EnvConsole("env", lines.append) as console:
        console.phase("build")
    assert lines == ["env: build 0:00"]  # no relay: the session's own output


def test_a_log_directory_is_named_by_machine_commit_and_env(tmp_path):
    where = logs.log_dir(tmp_path, "box", "0123456789abcdef", "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11")
    assert where == tmp_path / "logs" / "box" / "01234567-cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11"
    where.mkdir(parents=True)
    (where / "env.log").write_text(logs.started_line() + "env ...\n")
    assert abs(logs.started_at(where) - time.time()) < 5


def _state(pid: int) -> str | None:
    """A process's state letter from /proc (``Z``: a zombie), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_a_session_whose_nox_process_was_killed_stops(tmp_path, sigint):
    """Under nox --parallel a session runs in a nox process of its own, under nox's: when nox's own process is
    killed (nobody sees the output any more), the session's recording stops instead of running on unseen. Also
    where SIGINT is ignored, as in a job a shell started in the background (``./nox -s matrix &``)."""
    done = tmp_path / "done"
    session = textwrap.dedent(f"""
        import time
        from picklematrix.record import logs
        with logs.EnvConsole("env", print, interval=60):
            time.sleep(60)
        open({str(done)!r}, "w").write("ran to its end")
    """)
    nox = textwrap.dedent(f"""
        import os, subprocess, sys, time
        from picklematrix.record import logs
        logs.setup_console(relay=True, argv=["nox"], stream=open(os.devnull, "w"))
        import signal
        ignore = {sigint == "ignored"!r}
        child = subprocess.Popen([sys.executable, "-c", {session!r}], stderr=subprocess.DEVNULL,
                                 preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore else None)
        print(child.pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", nox], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    time.sleep(1.0)
    assert _state(child) not in (None, "Z")  # the session works while nox does
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while _state(child) not in (None, "Z") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _state(child) in (None, "Z"), "the session ran on after its nox process was killed"
    assert not done.exists()


def test_a_heavy_install_shows_its_packages_and_bytes_as_uv_reports_them(tmp_path):
    """A real uv install from the index (no cache: uv announces each large download with its size)."""
    from picklematrix.envs import venvs

    subprocess.run([venvs.uv(), "venv", "-q", "-p", "3.11", str(tmp_path / "v")], check=True)
    lines = []
    console = logs.EnvConsole("e", lines.append, interval=0)
    code, output = venvs.run_streamed([venvs.uv(), "pip", "install", "--no-cache", "-p", str(tmp_path / "v"),
                                       "numpy==2.2.6", "six==1.16.0"], console.build_line)
    assert code == 0, output
    shown = [re.sub(r" \d+:\d\d$", "", line) for line in lines]
    assert "e: build: 2 packages resolved" in shown, shown
    assert any(re.fullmatch(r"e: build: 2 packages resolved, downloads 1/1 \(16 MiB of 16 MiB\)", s) for s in shown)
    assert shown[-1].endswith("2 installed"), shown
    progress_of = logs.InstallProgress()
    for line in ["Resolved 230 packages in 1s", "Downloading torch (866.1MiB)", "Downloading triton (1.2GiB)",
                 " Downloaded torch", "Building e==1.4.5"]:
        progress_of.line(line)
    assert progress_of.text() == ("230 packages resolved, downloads 1/2 (866 MiB of 2.0 GiB), building e==1.4.5")
    for line in ["Built e==1.4.5", "Installed 230 packages in 3s", "Resolved 1 package in 0.1s", "Installed 1 package",
                 "Byte-compiling the env's packages"]:  # the checkout's own install after the env's; compileall
        progress_of.line(line)
    assert progress_of.text() == ("230 packages resolved, downloads 1/2 (866 MiB of 2.0 GiB), byte-compiling, "
                                  "230 installed")


def test_sigterm_stops_a_recording_as_ctrl_c_does_and_its_step_s_process_with_it(tmp_path):
    """SIGTERM to the recording's process (alone, not its group): the step under way (run_logged) ends its
    command before the recording fails, so nothing the recording started outlives it."""
    pid_file = tmp_path / "pid"
    session = textwrap.dedent(f"""
        import sys
        from picklematrix.record import logs
        step = [sys.executable, "-c", "import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
                "time.sleep(60)"]
        try:
            with logs.EnvConsole("env", print, interval=60):
                logs.run_logged(step, None, {str(tmp_path / "step.log")!r})
        except logs.Stopped as e:
            print("stopped:", e, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", session], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    step = int(pid_file.read_text())
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert "stopped: stopped by signal 15" in out, out
    assert _state(step) in (None, "Z"), "the step's process outlived the recording"
