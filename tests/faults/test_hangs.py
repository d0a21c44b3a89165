"""Faults that used to hang a run or cost it a minute: each must end in seconds, named, and the cluster whole after.

Each test runs `picklematrix run` on one fault case of tests/faults/cases/hangs, then a plain case
(then_passes) that needs a whole cluster, with stdout to a pipe and a deadline.
"""

from __future__ import annotations

import pytest

from picklematrix import outcomes as oc

from .runs import run_picklematrix

pytestmark = pytest.mark.slow


def fault_then_plain(tmp_path, fault, *, method="Client.compute", deadline=90.0, env=None):
    run = run_picklematrix(tmp_path, "--only", f"hangs/{fault}", "--only", "hangs/then_passes",
                           "--method", method, deadline=deadline, env=env)
    cells = run.cells()
    assert (fault, method) in cells and ("then_passes", method) in cells, (run.stdout, run.stderr[-3000:])
    assert not run.survivors, f"processes outlived the run: {run.survivors}"
    assert cells[("then_passes", method)]["outcome"] == oc.PASS, cells[("then_passes", method)]
    return cells[(fault, method)], run


@pytest.mark.parametrize("method", ["Client.compute", "dask.compute"])
def test_a_task_that_blocks_its_workers_event_loop_is_a_timeout_naming_the_loop(tmp_path, method):
    cell, run = fault_then_plain(tmp_path, "blocks_worker_loop", method=method)
    assert cell["outcome"] == oc.TIMEOUT, cell
    assert "event loop" in cell["detail"], cell
    assert run.seconds < 60, run.seconds


def test_a_task_that_stops_its_worker_process_is_a_timeout_naming_the_worker(tmp_path):
    cell, run = fault_then_plain(tmp_path, "stops_worker")
    assert cell["outcome"] == oc.TIMEOUT, cell
    assert "did not answer" in cell["detail"], cell
    assert run.seconds < 60, run.seconds


def test_a_cell_that_closes_its_client_costs_seconds(tmp_path):
    cell, run = fault_then_plain(tmp_path, "closes_client")
    # not a task-error: no task ran
    assert cell["outcome"] == oc.HARNESS_ERROR, cell
    assert "closed its client" in cell["detail"], cell
    assert run.seconds < 40, run.seconds


def test_a_cell_that_shuts_the_cluster_down_is_blamed_and_the_cluster_replaced_in_seconds(tmp_path):
    cell, run = fault_then_plain(tmp_path, "shuts_down_cluster")
    assert cell["outcome"] == oc.HARNESS_ERROR, cell
    assert "shut the cluster down" in cell["detail"], cell
    # a new cluster (a scheduler and two forked workers) takes a few seconds; the old wait was 50-60 s
    assert run.seconds < 40, run.seconds


def test_a_task_beyond_the_memory_limit_kills_its_worker_naming_the_limit(tmp_path):
    cell, run = fault_then_plain(tmp_path, "eats_memory", env={"PICKLEMATRIX_WORKER_MEMORY": "400MiB"})
    assert cell["outcome"] == oc.WORKER_DIED, cell
    assert "memory limit" in cell["detail"], cell
    assert run.data["cluster"]["worker_memory_limit"] == 400 * 2**20, run.data["cluster"]


def test_a_cell_that_blocks_the_schedulers_event_loop_is_a_timeout_naming_the_scheduler(tmp_path):
    # the scheduler of a cluster the harness owns runs in the harness, on its client's loop
    cell, run = fault_then_plain(tmp_path, "blocks_scheduler_loop")
    assert cell["outcome"] == oc.TIMEOUT, cell
    assert "the scheduler's event loop" in cell["detail"] and "did not answer" in cell["detail"], cell
    assert "replaced the whole local cluster" in cell["detail"], cell
    # the loop sleeps 30 s; the harness does not wait it out
    assert run.seconds < 28, run.seconds
