"""Cells and the workers of an owned cluster fork from one preloaded server; a killed worker comes back from it."""

import os

import pytest

from picklematrix.processes import PRELOAD, process_context, start_method

pytestmark = pytest.mark.skipif(start_method() != "forkserver", reason="no forkserver on this platform")


def _parent_and_modules():
    import os
    import sys

    return os.getppid(), sorted(m for m in sys.modules if m.startswith(("picklematrix", "pydantic")))


def _ask_child(conn):
    conn.send(_parent_and_modules())
    conn.close()


def test_workers_and_cells_fork_from_the_same_preloaded_server(cluster):
    workers = cluster.client.run(_parent_and_modules)
    assert len(workers) == cluster.n_workers
    ctx = process_context()
    reader, writer = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_ask_child, args=(writer,))
    proc.start()
    writer.close()
    cell_parent, cell_modules = reader.recv()
    proc.join(10)
    assert cell_parent != os.getpid()  # not a fork of the harness itself
    for parent, modules in workers.values():
        assert parent == cell_parent
        assert "picklematrix.run.cell" in modules  # imported by the server, not by the worker
        assert "pydantic" in modules  # a tracked package (picklematrix.preload.import_tracked)
    assert "picklematrix.run.cell" in cell_modules and "picklematrix.run.cell" in PRELOAD
    assert "pydantic" in cell_modules
    # pydantic 2's models, imported at the first use of BaseModel (preload.FIRST_USE), by the server too
    import pydantic

    if pydantic.VERSION.startswith("2."):
        assert "pydantic.main" in cell_modules and "pydantic._internal._generate_schema" in cell_modules


# pydantics that break in the server's warm-up: (their files, what the cell does, the error it meets)
BROKEN_PYDANTICS = {
    "on import": ({"pydantic_part.py": "PART = 1\n",
                   "pydantic/__init__.py": "import pydantic_part\nraise RuntimeError('this pydantic is broken')\n"},
                  "import pydantic", "this pydantic is broken"),
    "at its first use": ({"pydantic/__init__.py": "def __getattr__(name):\n"
                                                  "    import pydantic.main\n"
                                                  "    return getattr(pydantic.main, name)\n",
                          "pydantic/main.py": "raise RuntimeError('this BaseModel is broken')\n"},
                         "import pydantic; pydantic.BaseModel", "this BaseModel is broken"),
}


@pytest.mark.parametrize("where", sorted(BROKEN_PYDANTICS))
def test_a_tracked_package_that_fails_in_the_server_is_left_to_the_cell(tmp_path, where):
    """A pydantic that raises on import, or at the first use of ``BaseModel`` (preload.FIRST_USE), is not
    half-imported by the server: the modules its attempt added are gone, and the cell meets the same error."""
    import subprocess
    import sys

    files, use, error = BROKEN_PYDANTICS[where]
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    code = ("import sys\n"
            "import picklematrix.preload\n"
            "picklematrix.preload.warm()\n"
            "print(sorted(m for m in sys.modules if m.startswith('pydantic')))\n"
            "try:\n"
            f"    {use}\n"
            "except RuntimeError as e:\n"
            "    print(e)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[]", error]


def test_what_the_server_preloads_is_done_in_the_server_only():
    """picklematrix.preload's import-time work (the tracked packages imported, a Client's warm-up) is for the
    forkserver: a process that only starts one (the run, the kernel lane) does none of it."""
    import subprocess
    import sys

    code = ("import sys\n"
            "import picklematrix.processes\n"
            "print('pydantic' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False"]


def test_a_killed_worker_is_replaced_from_the_server(cluster):
    import signal

    before = cluster.client.run(os.getpid)
    victim = sorted(before)[0]
    os.kill(before[victim], signal.SIGKILL)
    health = cluster.health(grace=10, gone=(victim,))
    assert health.ok, health.problems
    after = cluster.client.run(_parent_and_modules)
    assert set(after) != set(before)
    assert len({parent for parent, _ in after.values()}) == 1  # the new worker has the same parent: the server


def test_distributed_profiling_is_off_in_the_cluster(cluster):
    def profiling():
        import dask

        return dask.config.get("distributed.worker.profile.enabled")

    assert set(cluster.client.run(profiling).values()) == {False}
    assert cluster.client.run_on_scheduler(profiling) is False


def test_the_nanny_report_names_each_worker_process(cluster):
    pids = set(cluster.client.run(os.getpid).values())
    report = cluster._nanny_report()
    assert report.count("running") == cluster.n_workers, report
    for pid in pids:
        assert f"worker pid {pid} exists" in report, report


def test_a_health_check_just_after_a_worker_died_does_not_wait_on_it(cluster):
    # A worker the scheduler still lists when health() asks the workers would cost distributed's 30 s
    # connect timeout (and fail health's own 10 s grace). Each round races a kill against the scheduler
    # noticing it; three rounds catch a regression most of the time, and a pass never waits 30 s.
    import signal
    import time

    for _ in range(3):
        pids = cluster.client.run(os.getpid)
        os.kill(pids[sorted(pids)[0]], signal.SIGKILL)
        started = time.monotonic()
        health = cluster.health(grace=10)
        waited = time.monotonic() - started
        assert health.ok, health.problems
        assert waited < 15, f"health() took {waited:.1f} s"


def test_a_worker_that_does_not_answer_costs_a_health_check_seconds_not_a_connect_timeout(cluster):
    # A worker process that is stuck (here: stopped) is still listed by the scheduler; asking it
    # whether it runs a task would wait out distributed's 30 s connect timeout, at every check.
    import signal
    import threading
    import time

    pids = cluster.client.run(os.getpid)
    pid = pids[sorted(pids)[0]]
    found = []
    check = threading.Thread(target=lambda: found.append(cluster.health(grace=3)), daemon=True)
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        check.start()
        check.join(20)  # (without the bound, it waited on the stopped worker for good)
        waited = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    check.join(60)
    assert waited < 10, f"health() took {waited:.1f} s"
    address = sorted(pids)[0]
    # the one that did not answer is named, and what may be wrong with it
    assert any(p.startswith(f"worker {address} did not answer within") and "process stopped" in p
               for p in found[0].problems), found[0].problems
    assert cluster.health(grace=10).ok
