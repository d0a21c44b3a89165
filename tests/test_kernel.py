"""The kernel context: cells run in a real IPython kernel, reused across cells."""

import json
import os
import stat

import pytest

from picklematrix import outcomes as oc
from picklematrix.corpus import installed_version


@pytest.fixture(scope="module")
def krunner(cluster, tmp_path_factory):
    from picklematrix.runner import CellRunner

    r = CellRunner(cluster, log_dir=str(tmp_path_factory.mktemp("kernel-logs")))
    yield r
    r.close()


def test_kernel_is_started_once_and_private(krunner, fixture_cases):
    for method in ("dask.compute", "Client.compute", "dask.compute(client=)"):
        krunner.run(fixture_cases["plain_pass"], method, "kernel")
    kernel = krunner.kernel
    assert kernel.starts == 1
    assert stat.S_IMODE(os.stat(kernel.tmp).st_mode) & 0o777 == 0o700  # jupyter adds the sticky bit
    connection = json.loads(open(kernel.km.connection_file).read())
    assert connection["ip"] == "127.0.0.1" and connection["transport"] == "tcp"
    assert os.path.dirname(kernel.km.connection_file) == kernel.tmp


def test_kernel_cells_classify_like_script_cells(krunner, fixture_cases):
    assert krunner.run(fixture_cases["plain_pass"], "Client.compute", "kernel").outcome == oc.PASS
    assert krunner.run(fixture_cases["plain_pass"], "dask.compute(client=)", "kernel").outcome == oc.RAN_LOCALLY
    cell = krunner.run(fixture_cases["task_raises"], "Client.compute", "kernel")
    assert cell.outcome == oc.TASK_ERROR and cell.root_cause["type"] == "ZeroDivisionError"
    assert krunner.run(fixture_cases["cell_not_applicable"], "dask.compute", "kernel").outcome == oc.NOT_APPLICABLE
    assert krunner.run(fixture_cases["no_result_bound"], "dask.compute", "kernel").outcome == oc.HARNESS_ERROR


def test_notebook_model_captures_the_namespace_on_old_pydantic(krunner, fixture_cases):
    if installed_version("pydantic") >= "2.9":
        pytest.fail("needs pydantic < 2.9 (nox -s tests installs 2.8.2)")
    for method in ("dask.compute", "Client.compute"):
        kernel = krunner.run(fixture_cases["toplevel_model"], method, "kernel")
        assert kernel.outcome == oc.SERIALIZE_ERROR, kernel
        assert any(x in kernel.root_cause["message"] for x in ("sqlite3.Connection", "_thread.lock", "_asyncio.Task"))
        assert krunner.run(fixture_cases["toplevel_model"], method, "script").outcome == oc.PASS


@pytest.mark.slow
def test_a_wedged_kernel_costs_one_cell(krunner, fixture_cases):
    starts = krunner.kernel.starts if krunner.kernel else 0
    cell = krunner.run(fixture_cases["hangs"], "dask.compute(client=)", "kernel")
    assert cell.outcome == oc.TIMEOUT
    assert krunner.kernel.starts == starts + 1
    assert krunner.run(fixture_cases["plain_pass"], "Client.compute", "kernel").outcome == oc.PASS


@pytest.mark.slow
def test_a_killed_kernel_costs_one_cell(krunner, fixture_cases):
    cell = krunner.run(fixture_cases["local_exit"], "dask.compute(client=)", "kernel")
    assert cell.outcome == oc.RAN_LOCALLY
    assert cell.root_cause["type"] == "KernelDied"
    assert krunner.run(fixture_cases["plain_pass"], "dask.compute", "kernel").outcome == oc.PASS
