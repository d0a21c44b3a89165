import pytest


@pytest.fixture(scope="module")
def fault_runner(cluster, tmp_path_factory):
    """A CellRunner on the suite's cluster for one fault module, closed (its kernel too) after it."""
    from picklematrix.run.runner import CellRunner

    runner = CellRunner(cluster, log_dir=str(tmp_path_factory.mktemp("fault-logs")))
    yield runner
    runner.close()
