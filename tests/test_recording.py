"""picklematrix.record.recording: the commit and machine a recording goes under, its short TMPDIR, the merge."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from picklematrix.cluster.limits import worker_memory_limit
from picklematrix.envs.ids import parse_env_id
from picklematrix.record import fingerprint, logs, recording, resultsdir

ENV = parse_env_id("cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11")


def test_a_clean_tree_records_under_its_commit_and_this_machine(repo, monkeypatch):
    monkeypatch.setenv("PICKLEMATRIX_MACHINE", "box")
    commit, machine = recording.recording_target(repo)
    assert commit == recording.git(repo, "rev-parse", "HEAD") and machine == "box"  # no fingerprinted file yet


def test_a_dirty_tree_needs_a_label_and_records_under_it(repo, monkeypatch):
    (repo / "new.txt").write_text("uncommitted\n")
    monkeypatch.setenv("PICKLEMATRIX_MACHINE", "box")
    with pytest.raises(recording.RecordingError, match="new.txt") as err:
        recording.recording_target(repo)
    assert "PICKLEMATRIX_DIRTY_LABEL" in str(err.value)
    monkeypatch.setenv("PICKLEMATRIX_DIRTY_LABEL", "wip")
    assert recording.recording_target(repo)[1] == "box-wip"
    monkeypatch.setenv("PICKLEMATRIX_DIRTY_LABEL", "no spaces")
    with pytest.raises(recording.RecordingError, match="letters, digits"):
        recording.recording_target(repo)


def _commit(repo, files: dict, message: str) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    subprocess.run(["git", "add", *files], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", message], cwd=repo,
                   check=True)
    return recording.git(repo, "rev-parse", "HEAD")


def test_a_code_change_since_the_run_began_is_refused(repo):
    _commit(repo, {"src/picklematrix/run/runner.py": "changed\n"}, "code")
    with pytest.raises(recording.RecordingError, match="moved from"):
        recording.recording_target(repo)


def test_results_are_keyed_by_the_last_commit_touching_what_they_depend_on(repo, monkeypatch):
    monkeypatch.setenv("PICKLEMATRIX_MACHINE", "box")
    code = _commit(repo, {"src/picklematrix/run/runner.py": "1\n", "cases/a/b.py": "x = 1\n"}, "code")
    monkeypatch.setenv(recording.RUN_COMMIT_VAR, code)
    # docs, the report, matrix.toml, tests: committed or not, they leave the key (and the results) alone
    _commit(repo, {"README.md": "r\n", "docs/x.md": "d\n", "matrix.toml": "# new env\n",
                   "src/picklematrix/report/table.py": "t\n", "tests/test_x.py": "\n"}, "docs only")
    (repo / "README.md").write_text("uncommitted\n")
    assert recording.recording_target(repo) == (code, "box")
    # a case file is part of what a recording depends on
    case = _commit(repo, {"cases/a/b.py": "x = 2\n"}, "a case")
    assert fingerprint.fingerprint_commit(repo) == case != code


def test_not_a_git_checkout_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv(recording.RUN_COMMIT_VAR, raising=False)
    with pytest.raises(recording.RecordingError, match=str(tmp_path)):
        recording.recording_target(tmp_path)


@pytest.mark.parametrize("text, count", [("1", 1), ("3", 3), ("0", None), ("two", None)])
def test_replicate_count(monkeypatch, text, count):
    monkeypatch.setenv("PICKLEMATRIX_REPLICATE", text)
    if count is None:
        with pytest.raises(recording.RecordingError, match="PICKLEMATRIX_REPLICATE"):
            recording.replicate_count()
    else:
        assert recording.replicate_count() == count


def test_the_short_tmpdir_is_short_even_under_a_long_tmpdir_and_goes_away(monkeypatch, tmp_path):
    long = tmp_path / ("x" * 90)
    long.mkdir()
    monkeypatch.setenv("TMPDIR", str(long))
    with recording.short_tmpdir() as tmp:
        assert len(tmp) <= recording.SHORT_TMP_MAX + 12 and not tmp.startswith(str(long))
        os.mkdir(os.path.join(tmp, "pymp-x"))
        open(os.path.join(tmp, "pymp-x", "f"), "w").close()
    assert not os.path.exists(tmp)


def test_the_short_tmpdir_keeps_cell_output_the_sidecar_names():
    with recording.short_tmpdir() as tmp:
        kept = os.path.join(tmp, "picklematrix-cells-abc")
        os.mkdir(kept)
        open(os.path.join(kept, "lambda-Client.compute.log"), "w").close()
        os.mkdir(os.path.join(tmp, "picklematrix-cells-empty"))
    try:
        assert os.listdir(tmp) == ["picklematrix-cells-abc"]
    finally:
        shutil.rmtree(tmp)


def test_processes_of_the_env_get_the_short_tmpdir_and_can_make_sockets_in_it():
    with recording.short_tmpdir() as tmp:
        env = recording.process_env(sys.executable, tmp)
        assert env["TMPDIR"] == tmp and env["PATH"].startswith(os.path.dirname(sys.executable))
        code = ("from multiprocessing.connection import Listener\n"
                "with Listener(family='AF_UNIX') as l: print(l.address)")
        address = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                 check=True, timeout=60).stdout.strip()
        assert address.startswith(tmp)


def test_a_socket_path_below_nox_s_tmpdir_of_a_long_checkout_is_too_long(tmp_path):
    # what made `nox -s matrix` hang from an ordinary checkout path, as a plain error
    long = tmp_path / ("a-checkout-at-an-ordinary-path-" + "long" * 20) / ".nox" / "matrix-cp3-0-0" / "tmp"
    long.mkdir(parents=True)
    code = ("import multiprocessing.connection as c\n"
            "with c.Listener(family='AF_UNIX') as l: print(l.address)")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "TMPDIR": str(long)},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "too long" in proc.stderr, proc.stderr[-2000:]


def test_harness_command_applies_cases_and_only(monkeypatch, tmp_path):
    monkeypatch.setenv("PICKLEMATRIX_CASES", os.pathsep.join(["a", "b"]))
    monkeypatch.setenv("PICKLEMATRIX_ONLY", "x/*,y")
    args = recording.harness_command("py", ENV.env_id, tmp_path / "s.outcomes", "c" * 40, "m")
    assert args[:4] == ["py", "-m", "picklematrix", "run"]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--cases"] == ["a", "b"]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--only"] == ["x/*", "y"]


def test_harness_command_takes_a_recordings_samples(tmp_path):
    """The run a recording starts takes asv's samples where asv records timings, one elsewhere (as the CLI
    parses the command)."""
    from picklematrix.cli import build_parser
    from picklematrix.run.command import samples_by_context
    from picklematrix.run.corpus import CONTEXTS
    from picklematrix.run.selection import ASV_TIMED_CONTEXTS, SAMPLES

    args = recording.harness_command("py", ENV.env_id, tmp_path / "s.outcomes", "c" * 40, "m")
    samples = samples_by_context(build_parser().parse_args(args[3:]).samples)
    assert samples == {c: SAMPLES if c in ASV_TIMED_CONTEXTS else 1 for c in CONTEXTS}
    assert set(samples.values()) == {SAMPLES, 1}


def test_an_env_error_is_recorded_where_the_report_reads_it(tmp_path):
    target = resultsdir.Target(tmp_path / "results", "f" * 40, "box")
    path = resultsdir.record_env_error(target, ENV, "install", "x" * 30000)
    assert path == tmp_path / "results" / "box" / f"ffffffff-{ENV.env_id}.env-error"
    data = json.loads(path.read_text())
    assert data["stage"] == "install" and data["env"]["env_id"] == ENV.env_id and len(data["message"]) == 20000


def test_merge_copies_one_env_s_asv_files_into_the_results(tmp_path):
    stage, results = tmp_path / "stage", tmp_path / "results"
    (stage / "box").mkdir(parents=True)
    for rel, text in (("benchmarks.json", "{}"), ("box/machine.json", '{"machine": "box"}'), ("box/r.json", "1")):
        (stage / rel).write_text(text)
    resultsdir.merge_asv_results(stage, results, "box", "r.json")
    assert (results / "box" / "r.json").read_text() == "1"
    assert sorted(p.name for p in results.rglob("*") if p.is_file()) == [
        ".merge.lock", "benchmarks.json", "machine.json", "r.json"]


def test_asv_gets_a_home_of_its_own_and_a_stopped_run_s_half_written_machine_file_is_gone(tmp_path):
    # what a run stopped while asv wrote the machine file leaves (CI: SIGTERM in asv's phase)
    (tmp_path / "asv-home").mkdir()
    (tmp_path / "asv-home" / ".asv-machine.json").write_text("")
    env = recording.asv_home(tmp_path)
    assert env["HOME"] == str(tmp_path / "asv-home") and (tmp_path / "asv-home").is_dir()
    # asv names the machine as the recording has it do (picklematrix.record.asv_record)
    named = subprocess.run([sys.executable, "-c", "from asv.machine import Machine; "
                            "print(Machine.load(machine_name='box', machine='box').machine)"],
                           env={**os.environ, **env}, capture_output=True, text=True)
    assert named.returncode == 0 and named.stdout.strip() == "box", named.stderr



_HOLD = """
import sys, time
from pathlib import Path
from picklematrix.record import logs, recording
with recording.one_recording_at_a_time(Path(sys.argv[1]), logs.EnvConsole("held", print)):
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(tmp_path, seconds):
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(tmp_path), str(seconds)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_a_recording_waits_for_an_earlier_one_in_its_directory_to_end(tmp_path, monkeypatch):
    monkeypatch.delenv(logs.CONSOLE_VAR, raising=False)  # (the lines to this test, not to nox's relay)
    holder = _holder(tmp_path, 1.5)
    lines = []
    started = time.monotonic()
    with recording.one_recording_at_a_time(tmp_path, logs.EnvConsole("e", lines.append)):
        waited = time.monotonic() - started  # (the holder let go after its 1.5 s)
    assert waited >= 1.0 and any(f"(pid {holder.pid}) to end" in line for line in lines), lines
    holder.wait()


def test_a_killed_recording_holds_its_directory_no_longer(tmp_path):
    holder = _holder(tmp_path, 600)
    holder.kill()
    holder.wait()
    started = time.monotonic()
    with recording.one_recording_at_a_time(tmp_path, logs.EnvConsole("e", print)):
        assert time.monotonic() - started < 5


def test_a_recording_that_never_ends_is_named_with_what_to_do(tmp_path):
    holder = _holder(tmp_path, 600)
    try:
        with pytest.raises(recording.RecordingError, match=f"kill {holder.pid}"):
            with recording.one_recording_at_a_time(tmp_path, logs.EnvConsole("e", print), wait=0.5):
                pass
    finally:
        holder.kill()
        holder.wait()


_SLOT = """
import sys, time
from picklematrix.record import logs, recording
with recording.run_slot(logs.EnvConsole("held", print)):
    print("computing", flush=True)
    time.sleep(float(sys.argv[1]))
"""


def test_envs_of_one_nox_run_compute_one_per_slot_and_the_others_wait(tmp_path, monkeypatch):
    monkeypatch.setenv(recording.RUN_DIR_VAR, str(tmp_path))
    monkeypatch.setenv("PICKLEMATRIX_CLUSTERS", "2")
    monkeypatch.delenv(logs.CONSOLE_VAR, raising=False)
    holders = [subprocess.Popen([sys.executable, "-c", _SLOT, seconds], stdout=subprocess.PIPE, text=True)
               for seconds in ("1.5", "600")]
    try:
        for holder in holders:
            assert holder.stdout.readline().strip() == "computing"
        lines = []
        with recording.run_slot(logs.EnvConsole("e", lines.append)) as waited:
            assert holders[0].wait(5) == 0  # the slot it held is the one this got
        assert waited >= 1.0 and any("waiting for one of 2 run slots" in line for line in lines), lines
        holders[1].kill()  # a killed session frees its slot at once
        holders[1].wait()
        with recording.run_slot(logs.EnvConsole("e", lines.append)) as waited:
            assert waited < 1.0
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()


def test_outside_a_nox_run_there_is_no_slot_to_wait_for_and_a_bad_count_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv(recording.RUN_DIR_VAR, raising=False)
    with recording.run_slot(logs.EnvConsole("e", print)) as waited:
        assert waited == 0
    monkeypatch.setenv(recording.RUN_DIR_VAR, str(tmp_path))
    for bad in ("two", "0"):
        # the slots and the workers' memory limits read the one count (cluster.limits.clusters_at_once)
        monkeypatch.setenv("PICKLEMATRIX_CLUSTERS", bad)
        with pytest.raises(recording.RecordingError, match=f"PICKLEMATRIX_CLUSTERS='{bad}'"):
            with recording.run_slot(logs.EnvConsole("e", print)):
                pass
        with pytest.raises(ValueError, match=f"PICKLEMATRIX_CLUSTERS='{bad}'"):
            worker_memory_limit(2)
