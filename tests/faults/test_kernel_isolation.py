"""Kernel cells are isolated from each other's process-global changes, and a kernel's death is blamed on the
case that caused it, not on the innocent cell after it.

Real kernels and a real cluster: each fault case of tests/faults/cases/globals runs as a notebook cell, then
the innocent case ``then_innocent`` runs in the same kernel context and must pass.
"""

from __future__ import annotations

import pytest

from picklematrix import outcomes as oc

from .runs import fault_cases

METHOD = "Client.compute"


@pytest.fixture(scope="module")
def globals_cases():
    return fault_cases("globals")


def culprit_then_innocent(fault_runner, globals_cases, culprit):
    fault = fault_runner.run(globals_cases[culprit], METHOD, "kernel")
    innocent = fault_runner.run(globals_cases["then_innocent"], METHOD, "kernel")
    assert innocent.outcome == oc.PASS, (fault, innocent)
    return fault, innocent


@pytest.mark.parametrize("culprit, names", [
    ("a_patches_pickle", ["pickle.dumps", "cloudpickle.dumps"]),
    ("b_registers_copyreg", ["copyreg.dispatch_table"]),
    ("c_sets_dask_config", ["dask.config.config"]),
])
def test_a_case_that_changes_process_global_state_does_not_reach_the_next(fault_runner, globals_cases, culprit, names):
    fault, innocent = culprit_then_innocent(fault_runner, globals_cases, culprit)
    assert not fault.surprise, fault  # the culprit's own outcome stands ...
    for name in names:  # ... and its record names what it changed
        assert name in fault.detail, fault.detail
    assert "kernel is replaced" in fault.detail, fault.detail
    assert not innocent.detail, innocent.detail  # nothing to say about the innocent cell


def test_an_innocent_case_changes_nothing_and_keeps_its_kernel(fault_runner, globals_cases):
    fault_runner.run(globals_cases["then_innocent"], METHOD, "kernel")
    starts = fault_runner.kernel.starts
    cell = fault_runner.run(globals_cases["then_innocent"], METHOD, "kernel")
    assert cell.outcome == oc.PASS and not cell.detail, cell
    assert fault_runner.kernel.starts == starts  # no false alarm: the kernel is kept


def test_a_kernel_that_dies_clearing_up_after_a_case_is_blamed_on_that_case(fault_runner, globals_cases):
    fault, innocent = culprit_then_innocent(fault_runner, globals_cases, "dies_at_reset")
    assert fault.outcome == oc.PASS, fault
    assert "died while clearing up after dies_at_reset [Client.compute]" in innocent.detail, innocent.detail


def test_a_kernel_that_dies_between_cells_is_blamed_on_the_case_before(fault_runner, globals_cases):
    import time

    fault = fault_runner.run(globals_cases["dies_after_cell"], METHOD, "kernel")
    assert fault.outcome == oc.PASS, fault
    time.sleep(1.5)  # the timer fires between the cells
    innocent = fault_runner.run(globals_cases["then_innocent"], METHOD, "kernel")
    assert innocent.outcome == oc.PASS, innocent
    assert "dies_after_cell [Client.compute]" in innocent.detail, innocent.detail


@pytest.mark.slow
def test_a_kernel_that_hangs_clearing_up_after_a_case_is_blamed_on_that_case(fault_runner, globals_cases):
    fault, innocent = culprit_then_innocent(fault_runner, globals_cases, "hangs_at_reset")
    assert fault.outcome == oc.PASS, fault
    assert "hung while clearing up after hangs_at_reset [Client.compute]" in innocent.detail, innocent.detail
