"""Where along the trip a cell failed (its stage), and a root cause that names the culprit, stable from run to run.

Real cells on a real cluster, in both contexts: the fault cases of tests/faults/cases/stages.
"""

from __future__ import annotations

import re

import pytest

from picklematrix import outcomes as oc

from .runs import fault_cases

CONTEXTS = ("script", "kernel")
ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


@pytest.fixture(scope="module")
def stage_cases():
    return fault_cases("stages")


def run(fault_runner, stage_cases, case, method, context):
    cell = fault_runner.run(stage_cases[case], method, context)
    assert not cell.surprise, cell
    return cell


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("method", ["Client.compute", "dask.compute"])
def test_a_result_the_worker_cannot_pickle_is_a_serialize_error_on_the_worker(fault_runner, stage_cases, method, context):
    cell = run(fault_runner, stage_cases, "result_reduce_raises", method, context)
    assert cell.outcome == oc.SERIALIZE_ERROR and cell.stage == oc.STAGE_WORKER_PICKLE, cell
    # the culprit's own error, not distributed's "Could not serialize object of type ResultHandle"
    assert cell.root_cause["type"] == "RuntimeError", cell.root_cause
    assert cell.root_cause["message"] == "ResultHandle at 0x… is process-local", cell.root_cause


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("method", ["Client.compute", "dask.compute"])
def test_a_task_whose_own_pickling_fails_is_a_task_error_whatever_the_exceptions_type(fault_runner, stage_cases,
                                                                                     method, context):
    """The other side of the line from the test above: the task itself calls pickle.dumps (as a process pool on
    a worker does with its callable) and gets a PicklingError. The task never returned and the scheduler recorded
    it as erred: that is the task's error, not distributed's pickling of the graph or the result."""
    cell = run(fault_runner, stage_cases, "task_pickles_itself", method, context)
    assert cell.outcome == oc.TASK_ERROR and cell.stage == oc.STAGE_TASK, cell
    assert cell.root_cause["type"] in ("_pickle.PicklingError", "pickle.PicklingError"), cell.root_cause


@pytest.mark.parametrize("context", CONTEXTS)
def test_a_task_whose_own_unpickling_fails_is_a_task_error(fault_runner, stage_cases, context):
    cell = run(fault_runner, stage_cases, "task_unpickles_itself", "Client.compute", context)
    assert cell.outcome == oc.TASK_ERROR and cell.stage == oc.STAGE_TASK, cell
    assert cell.root_cause["type"] in ("_pickle.UnpicklingError", "pickle.UnpicklingError"), cell.root_cause


@pytest.mark.parametrize("context", CONTEXTS)
def test_a_graph_the_cluster_cannot_unpickle_is_a_deserialize_error_there(fault_runner, stage_cases, context):
    cell = run(fault_runner, stage_cases, "graph_load_raises", "Client.compute", context)
    assert cell.outcome == oc.DESERIALIZE_ERROR and cell.stage == oc.STAGE_CLUSTER_UNPICKLE, cell
    assert cell.root_cause == {"type": "ValueError", "message": "cannot rebuild LoadBomb here"}, cell.root_cause


@pytest.mark.parametrize("context", CONTEXTS)
def test_a_result_the_client_cannot_unpickle_is_a_deserialize_error_on_the_client(fault_runner, stage_cases, context):
    cell = run(fault_runner, stage_cases, "result_load_raises", "Client.compute", context)
    assert cell.outcome == oc.DESERIALIZE_ERROR and cell.stage == oc.STAGE_CLIENT_UNPICKLE, cell
    assert cell.root_cause["type"] == "LookupError", cell.root_cause


def test_a_graph_the_client_cannot_pickle_fails_at_the_client_and_names_the_inner_culprit(fault_runner, stage_cases):
    cell = run(fault_runner, stage_cases, "wrapped_graph_error", "Client.compute", "script")
    assert cell.outcome == oc.SERIALIZE_ERROR and cell.stage == oc.STAGE_CLIENT_PICKLE, cell
    assert cell.root_cause["type"] == "TypeError" and "lock" in cell.root_cause["message"], cell.root_cause
    # and where it is: from the cell's result to the lock, with no token that changes from run to run
    assert cell.root_cause["path"].startswith("result") and cell.root_cause["path"].endswith(".conn_lock"), cell
    assert not re.search(r"[0-9a-f]{32}|0x[0-9a-f]{6,}", cell.root_cause["path"]), cell.root_cause


@pytest.mark.parametrize("context", CONTEXTS)
def test_a_wrapped_error_on_the_worker_names_the_inner_culprit(fault_runner, stage_cases, context):
    cell = run(fault_runner, stage_cases, "wrapped_result_error", "Client.compute", context)
    assert cell.outcome == oc.SERIALIZE_ERROR and cell.stage == oc.STAGE_WORKER_PICKLE, cell
    assert cell.root_cause["type"] == "TypeError" and "lock" in cell.root_cause["message"], cell.root_cause


def test_a_task_error_runs_at_the_task_stage_with_addresses_normalised(fault_runner, stage_cases):
    cells = [run(fault_runner, stage_cases, "address_in_error", "Client.compute", "script") for _ in range(2)]
    for cell in cells:
        assert cell.outcome == oc.TASK_ERROR and cell.stage == oc.STAGE_TASK, cell
        assert not ADDRESS.search(cell.root_cause["message"]), cell.root_cause
        assert "object at 0x…>" in cell.root_cause["message"], cell.root_cause
    assert cells[0].root_cause == cells[1].root_cause  # the same text from run to run


@pytest.mark.parametrize("context", CONTEXTS)
def test_a_client_that_dies_receiving_the_result_is_client_died_not_a_harness_error(fault_runner, stage_cases, context):
    """The worker sends back a value whose unpickling crashes the client (SIGSEGV; across a Python skew, a
    function's code from the other Python does this): the cell's finding, at the stage where it happened."""
    cell = run(fault_runner, stage_cases, "result_kills_client", "Client.compute", context)
    assert cell.outcome == oc.CLIENT_DIED and cell.stage == oc.STAGE_CLIENT_UNPICKLE, cell
    assert "died receiving the result" in cell.detail, cell
    if context == "script":
        assert cell.root_cause == {"type": "ProcessExit", "message": "cell process exited with status -11"}, cell
    # nothing of it is left to blame on the next cell
    after = run(fault_runner, stage_cases, "result_load_raises", "Client.compute", context)
    assert after.outcome == oc.DESERIALIZE_ERROR, after


@pytest.mark.parametrize("context", CONTEXTS)
def test_a_check_that_raises_blames_the_case_not_the_value(fault_runner, stage_cases, context):
    cell = run(fault_runner, stage_cases, "check_raises", "Client.compute", context)
    assert cell.outcome == oc.HARNESS_ERROR, cell
    assert cell.root_cause["type"] == "AttributeError" and "nonexistent_attribute" in cell.root_cause["message"]
    assert "check() raised" in cell.detail and "does not match" not in cell.detail, cell.detail


def test_a_pass_and_a_local_run_have_no_stage(fault_runner, stage_cases):
    assert run(fault_runner, stage_cases, "graph_load_raises", "dask.compute(client=)", "script").stage is None
