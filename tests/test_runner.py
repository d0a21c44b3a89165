"""Cells on a real LocalCluster: every outcome reached by a real case."""

import pytest

from picklematrix import outcomes as oc


def run(runner, fixture_cases, case_id, method):
    return runner.run(fixture_cases[case_id], method)


@pytest.mark.parametrize(
    "case_id, method, outcome",
    [
        ("plain_pass", "dask.compute", oc.PASS),
        ("plain_pass", "Client.compute", oc.PASS),
        ("returns_wrong", "Client.compute", oc.WRONG_RESULT),
        ("unpicklable_arg", "dask.compute", oc.SERIALIZE_ERROR),
        ("fails_on_load", "Client.compute", oc.DESERIALIZE_ERROR),
        ("task_raises", "dask.compute", oc.TASK_ERROR),
        ("plain_pass", "dask.compute(client=)", oc.RAN_LOCALLY),
        ("needs_missing_dist", "dask.compute", oc.NOT_APPLICABLE),
        ("cell_not_applicable", "Client.compute", oc.NOT_APPLICABLE),
        ("no_result_bound", "dask.compute", oc.HARNESS_ERROR),
    ],
)
def test_each_outcome_is_reached(runner, fixture_cases, case_id, method, outcome):
    cell = run(runner, fixture_cases, case_id, method)
    assert cell.outcome == outcome, cell
    assert cell.expected == outcome
    assert not cell.surprise


def test_root_cause_is_the_pickling_error_not_the_wrapper(runner, fixture_cases):
    cell = run(runner, fixture_cases, "unpicklable_arg", "Client.compute")
    assert cell.outcome == oc.SERIALIZE_ERROR
    # distributed raises "Could not serialize object of type ..."; the cause
    # is the generator, from the last (cloudpickle) attempt.
    assert cell.root_cause["type"] == "TypeError"
    assert "generator" in cell.root_cause["message"]
    assert "Could not serialize" not in cell.root_cause["message"]


def test_deserialize_error_keeps_the_loader_exception(runner, fixture_cases):
    cell = run(runner, fixture_cases, "fails_on_load", "dask.compute")
    assert cell.outcome == oc.DESERIALIZE_ERROR
    assert cell.graph_bytes and cell.graph_bytes > 0


def test_task_error_root_cause(runner, fixture_cases):
    cell = run(runner, fixture_cases, "task_raises", "Client.compute")
    assert cell.outcome == oc.TASK_ERROR
    assert cell.root_cause["type"] == "ZeroDivisionError"


def test_ran_locally_keeps_the_local_exception(runner, fixture_cases):
    cell = run(runner, fixture_cases, "local_raise", "dask.compute(client=)")
    assert cell.outcome == oc.RAN_LOCALLY
    assert cell.root_cause["type"] == "KeyError"
    # the same task on the cluster is a task error
    assert run(runner, fixture_cases, "local_raise", "Client.compute").outcome == oc.TASK_ERROR


def test_local_process_exit_is_ran_locally_and_spares_the_harness(runner, fixture_cases):
    cell = run(runner, fixture_cases, "local_exit", "dask.compute(client=)")
    assert cell.outcome == oc.RAN_LOCALLY
    assert cell.root_cause["type"] == "ProcessExit"
    assert run(runner, fixture_cases, "plain_pass", "dask.compute").outcome == oc.PASS


@pytest.mark.slow
def test_worker_died_then_cluster_is_whole_again(runner, fixture_cases, cluster):
    cell = run(runner, fixture_cases, "local_exit", "Client.compute")
    assert cell.outcome == oc.WORKER_DIED
    assert "KilledWorker" in cell.root_cause["type"]
    assert cluster.health(grace=30).ok
    assert run(runner, fixture_cases, "plain_pass", "Client.compute").outcome == oc.PASS


@pytest.mark.slow
def test_a_dead_workers_root_cause_reads_the_same_in_every_run(runner):
    """A KilledWorker names the last worker's address, whose port is new in every run (and every replacement
    worker): the root cause keeps the scheme and host and drops the port, so two runs read the same and a review
    does not mark the same failure as changed."""
    from picklematrix.run.corpus import load_corpus

    cases, _ = load_corpus()
    case = next(c for c in cases if c.family == "misc" and c.case_id == "os_exit_in_task")
    cells = [runner.run(case, "Client.compute") for _ in range(2)]
    assert [c.outcome for c in cells] == [oc.WORKER_DIED] * 2, cells
    assert "tcp://127.0.0.1:\u2026" in cells[0].root_cause["message"], cells[0].root_cause
    assert cells[0].root_cause == cells[1].root_cause


@pytest.mark.slow
@pytest.mark.parametrize("method", ["dask.compute", "Client.compute", "dask.compute(client=)"])
def test_timeout_then_later_cells_are_unaffected(runner, fixture_cases, cluster, method):
    cell = run(runner, fixture_cases, "hangs", method)
    assert cell.outcome == oc.TIMEOUT
    # Client.compute's own wait runs out first and the cell says so (the harness waits a grace for
    # that); dask.compute has no wait of its own: the harness stops it when the timeout is up.
    assert cell.detail.startswith("Client.compute: no result" if method == "Client.compute" else
                                  "no result within"), cell.detail
    # where it hung: the task, once the graph had reached the cluster; nowhere on it when it ran locally
    assert cell.stage == (None if method == "dask.compute(client=)" else oc.STAGE_TASK), cell
    # A hung task's thread cannot be interrupted; without replacing the
    # workers every later cell would time out too. With one thread per
    # worker, two later cells need both workers free.
    for _ in range(2):
        after = run(runner, fixture_cases, "plain_pass", "Client.compute")
        assert after.outcome == oc.PASS, after
    assert cluster.health(grace=5).ok


@pytest.mark.slow
def test_a_worker_lost_twice_keeps_its_nanny(cluster):
    # distributed's SpecCluster closes a nanny for good when, lost-worker-timeout (15 s) after
    # one of its workers was lost, no worker of that name is connected: a worker killed for a
    # hung cell just before that moment (it is restarting) used to cost the whole cluster later.
    import os
    import signal
    import time

    def kill(name):
        workers = cluster.client.scheduler_info()["workers"]
        address = next(a for a, w in workers.items() if w["name"] == name)
        pid = cluster.client.run(os.getpid, workers=[address])[address]
        os.kill(pid, signal.SIGKILL)
        return time.monotonic()

    name = sorted(w["name"] for w in cluster.client.scheduler_info()["workers"].values())[0]
    first = kill(name)
    assert cluster.health(grace=10).ok
    # the same nanny's new worker, killed just before the nanny's lost-worker check
    time.sleep(max(0.0, first + 14.7 - time.monotonic()))
    kill(name)
    time.sleep(3)
    assert cluster.health(grace=10).ok, cluster.health(grace=0).problems
    assert len(cluster.local_cluster.workers) == cluster.n_workers


def test_dict_with_lock_differs_between_paths(runner, fixture_cases):
    assert run(runner, fixture_cases, "dict_with_lock", "dask.compute").outcome == oc.PASS
    cell = run(runner, fixture_cases, "dict_with_lock", "Client.compute")
    assert cell.outcome == oc.SERIALIZE_ERROR
    assert "lock" in cell.root_cause["message"]


def test_timing_samples_for_passing_cells(cluster, fixture_cases, tmp_path):
    from picklematrix.run.runner import CellRunner

    cell = CellRunner(cluster, samples=3, log_dir=str(tmp_path)).run(fixture_cases["plain_pass"], "Client.compute")
    assert cell.outcome == oc.PASS
    assert len(cell.samples) == 3 and all(s > 0 for s in cell.samples)
    assert min(cell.samples) <= cell.seconds <= max(cell.samples)


def test_timing_samples_per_context(cluster, fixture_cases, tmp_path):
    from picklematrix.run.runner import CellRunner

    runner = CellRunner(cluster, samples={"script": 2, "kernel": 3}, log_dir=str(tmp_path))
    cell = runner.run(fixture_cases["plain_pass"], "Client.compute", "script")
    assert cell.outcome == oc.PASS and len(cell.samples) == 2
    runner = CellRunner(cluster, samples={"kernel": 3}, log_dir=str(tmp_path))
    cell = runner.run(fixture_cases["plain_pass"], "Client.compute", "script")
    assert cell.outcome == oc.PASS and len(cell.samples) == 1  # a context not given: one sample


def test_the_runner_leaves_its_log_dir_only_when_a_dead_cell_left_output(cluster, fixture_cases, tmp_path):
    import os

    from picklematrix.run.corpus import load_corpus
    from picklematrix.run.runner import CellRunner

    (tmp_path / "cases" / "odd").mkdir(parents=True)
    (tmp_path / "cases" / "odd" / "dies_at_top_level.py").write_text(
        'CASE = {"family": "odd", "summary": "ends its own process before any compute", "expect": "harness-error"}\n'
        "import os, sys\n"
        "print('last words', file=sys.stderr, flush=True)\n"
        "os._exit(5)\n")
    (tmp_path / "cases" / "odd" / "dies_quietly.py").write_text(
        'CASE = {"family": "odd", "summary": "ends its own process, saying nothing", "expect": "harness-error"}\n'
        "import os\n"
        "os._exit(5)\n")
    (tmp_path / "cases" / "odd" / "says_why.py").write_text(
        'CASE = {"family": "odd", "summary": "prints, then binds no result", "expect": "harness-error"}\n'
        "print('the reason')\n")
    cases, problems = load_corpus([tmp_path / "cases"])
    assert not problems, problems
    dying, quiet_death, says_why = sorted(cases, key=lambda c: c.case_id)

    # nothing to keep: no empty dir (or empty log) left behind per run
    quiet = CellRunner(cluster)
    assert quiet.run(fixture_cases["plain_pass"], "dask.compute").outcome == oc.PASS
    assert quiet.run(fixture_cases["no_result_bound"], "dask.compute").outcome == oc.HARNESS_ERROR
    cell = quiet.run(quiet_death, "dask.compute")
    assert cell.outcome == oc.HARNESS_ERROR and cell.detail == "cell process died without output", cell
    quiet.close()
    assert not os.path.exists(quiet.script.log_dir), os.listdir(quiet.script.log_dir)

    runner = CellRunner(cluster)
    cells = [runner.run(dying, "dask.compute"), runner.run(says_why, "dask.compute")]
    runner.close()
    for cell, words in zip(cells, ["last words", "the reason"]):
        assert cell.outcome == oc.HARNESS_ERROR and not cell.surprise, cell
        log = cell.detail.split("output in ")[1]
        assert os.path.dirname(log) == runner.script.log_dir
        with open(log) as f:
            assert words in f.read()
        os.unlink(log)
    assert cells[1].detail.startswith("cell did not bind")  # its own detail first, then where its output is
    os.rmdir(runner.script.log_dir)


def test_a_cell_process_ends_before_the_next_cell_starts(cluster, fixture_cases, tmp_path):
    """A cell's process ends after sending its result (without closing its client: the scheduler drops it),
    while the harness checks the cluster; the next cell waits for it. Here its end takes 2 s: its last
    flush of stdout sleeps."""
    from picklematrix.run.corpus import load_corpus
    from picklematrix.run.runner import CellRunner

    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "slow_close.py").write_text(
        'CASE = {"family": "outcomes", "summary": "a process whose end takes 2 s", "expect": "pass"}\n'
        "import sys\n"
        "import time\n"
        "import dask\n"
        "class SlowFlush:\n"
        "    def write(self, text):\n"
        "        return len(text)\n"
        "    def flush(self):\n"
        "        time.sleep(2)\n"
        "sys.stdout = SlowFlush()\n"
        "result = dask.delayed(sum)([1, 2])\n"
        "expected = 3\n")
    (slow_close,), problems = load_corpus([str(tmp_path / "cases")])
    assert not problems, problems
    runner = CellRunner(cluster)
    try:
        assert runner.run(slow_close, "dask.compute").outcome == oc.PASS
        first = runner.script.ending
        assert first is not None and first.exitcode is None  # still ending
        assert runner.run(fixture_cases["plain_pass"], "dask.compute").outcome == oc.PASS
        assert first.exitcode == 0  # waited for before the next cell started
        assert runner.run(slow_close, "Client.compute").outcome == oc.PASS
        last = runner.script.ending
    finally:
        runner.close()
    assert last.exitcode == 0  # close waits too


def test_timing_samples_after_the_first_time_the_call_alone(cluster):
    """Where the work went is reported during the first call only; the further samples time the bare call."""
    import dask
    from distributed import Client

    from picklematrix.run.cell import compute_phase

    events = []
    with Client(cluster.address, set_as_default=True, timeout=30) as client:
        ns = {"result": dask.delayed(sum)([1, 2, 3]), "expected": 6}
        result = compute_phase(ns, client, "Client.compute", case_id="c", context="script", timeout=30,
                               samples=3, emit=events.append)
    assert result["outcome"] == oc.PASS and len(result["samples"]) == 3
    # "received": the value is in (a process that dies from then on dies using it), before any further sample
    assert [e["event"] for e in events] == ["compute-start", "submitted", "sent", "received", "sample", "sample"]
    assert result["graph_bytes"] == events[2]["graph_bytes"]


def test_each_timing_sample_computes_the_cell_again(cluster, tmp_path):
    """A sample must not find the previous call's result still held (the same graph has the same keys)."""
    import dask
    from distributed import Client

    from picklematrix.run.cell import compute_phase

    runs = tmp_path / "runs"

    def task(path):
        with open(path, "a") as f:  # on a worker: once per time the task really runs
            f.write("ran\n")
        return 1

    for method in ("Client.compute", "dask.compute"):
        runs.write_text("")
        with Client(cluster.address, set_as_default=True, timeout=30) as client:
            ns = {"result": dask.delayed(task, pure=True)(str(runs)), "expected": 1}
            result = compute_phase(ns, client, method, case_id="c", context="script", timeout=30, samples=5,
                                   emit=lambda event: None)
        assert result["outcome"] == oc.PASS and len(result["samples"]) == 5
        assert runs.read_text().count("ran") == 5, method


def test_cells_run_by_the_kind_of_client_and_are_recorded_case_by_case(cluster, fixture_cases):
    """Every case by the default-scheduler methods first, then by dask.compute(client=) (a notebook's client is
    then replaced once a run, not twice a case); the run's record lists them case by case all the same."""
    from picklematrix.run.methods import METHODS
    from picklematrix.run.runner import run_corpus, run_order

    cases = [fixture_cases["plain_pass"], fixture_cases["local_raise"]]
    methods, contexts = list(METHODS), ["script", "kernel"]
    order = [(case.case_id, method, context) for case, method, context in run_order(cases, methods, contexts)]
    kinds = [METHODS[method].default_client for _, method, _ in order]
    assert kinds == sorted(kinds, reverse=True) and len(set(kinds)) == 2
    assert order[:2] == [("plain_pass", "dask.compute", "script"), ("plain_pass", "dask.compute", "kernel")]
    assert sorted(order) == sorted((c.case_id, m, x) for c in cases for m in methods for x in contexts)
    seen = []
    result = run_corpus(cases, methods, contexts, cluster=cluster, progress=False,
                        on_cell=lambda cell: seen.append((cell.case, cell.method, cell.context)))
    assert seen == order  # as they ran
    assert [(c.case, c.method, c.context) for c in result.cells] == [
        (c.case_id, m, x) for c in cases for m in methods for x in contexts]
    assert {(c.case, c.method): c.outcome for c in result.cells if c.context == "kernel"} == {
        (c.case, c.method): c.outcome for c in result.cells if c.context == "script"}


def test_the_process_forked_ahead_waits_unconnected_and_is_taken_only_for_its_own_cell(cluster, fixture_cases):
    """The cell after the next one gets its process forked ahead (ScriptCells.fork_ahead): it reaches no
    scheduler before its turn, is the process its cell then runs in, and a process forked for another cell is
    ended, not used. Discarding the connected process (a mended cluster) keeps it; closing ends it."""
    from distributed import Client

    from picklematrix.run.script import ScriptCells

    plain, raising = fixture_cases["plain_pass"], fixture_cases["local_raise"]
    cells = ScriptCells()
    address = cluster.address

    def clients():
        with Client(address, timeout=30) as c:  # itself one of them
            return c.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.clients))

    try:
        before = clients()
        cells.fork_ahead(plain, "dask.compute", address=address, samples=1)
        cells._forked(ahead=True)
        ahead = cells.ahead.proc
        assert ahead.is_alive() and clients() == before  # forked, not connected
        cells.prepare(plain, "dask.compute", address=address, samples=1)
        assert cells.prepared.proc is ahead and cells.ahead is None
        assert cells.run(plain, "dask.compute", address=address, samples=1).answer["outcome"] == oc.PASS

        cells.fork_ahead(raising, "Client.compute", address=address, samples=1)
        cells._forked(ahead=True)
        stale = cells.ahead.proc
        cells.prepare(raising, "dask.compute", address=address, samples=1)  # another method: another cell
        assert cells.prepared.proc is not stale and not stale.is_alive()
        attempt = cells.run(raising, "dask.compute", address=address, samples=1)
        assert attempt.answer["outcome"] == oc.TASK_ERROR  # the case's own outcome by that method

        cells.fork_ahead(plain, "Client.compute", address=address, samples=1)
        cells._forked(ahead=True)
        kept = cells.ahead.proc
        cells.discard(ahead=False)
        assert cells.ahead.proc is kept and kept.is_alive()
    finally:
        cells.close()
    kept.join(10)
    assert not kept.is_alive()


def test_the_script_queue_gives_from_the_back_and_never_the_runs_next_two():
    from picklematrix.run.lanes import ScriptQueue

    q = ScriptQueue()
    assert q.take() is None  # not filled yet
    q.fill(range(8))
    assert q.take() == 0
    assert q.give(3) == [5, 6, 7]  # from the back, in the run's order
    assert q.give(10) == [3, 4]  # never the run's next two
    assert q.give(1) == [] and (q.peek(0), q.peek(1), q.peek(2)) == (1, 2, None)
    assert [q.take(), q.take(), q.take()] == [1, 2, None]


def test_a_lane_that_asks_before_the_run_has_begun_waits_for_it():
    """The lane asks as soon as it has no cells of its own, perhaps before the run has started its cluster: it is
    answered once the run has filled the queue, or once the run has ended (closed: nothing)."""
    import threading

    from picklematrix.run.lanes import ScriptQueue

    q = ScriptQueue()
    answers = []
    asking = threading.Thread(target=lambda: answers.append(q.give(2)))
    asking.start()
    asking.join(0.2)
    assert asking.is_alive() and not answers  # waiting, not answered "none"
    q.fill(range(5))
    asking.join(10)
    assert answers == [[3, 4]]
    q.close()
    assert q.give(2) == [] and q.take() is None
