"""The script context must behave like ``python cell.py``, not like ``exec`` from harness code.

pydantic <= 2.8 keeps the defining frame's locals unless the frame is the
interpreter's top level. A top-level model in a real script therefore captures
nothing, while the same code exec'd by a harness captures the namespace, the
``client`` included, and fails to pickle. These tests run all three for real.
"""

import subprocess
import sys
import textwrap

import pytest
from packaging.version import Version

from picklematrix import outcomes as oc
from picklematrix.versions import installed_version

from .conftest import FIXTURE_CASES


@pytest.fixture(scope="module")
def old_pydantic():
    v = installed_version("pydantic")
    if v is None or Version(v) >= Version("2.9"):
        pytest.fail(f"these tests need pydantic < 2.9 (found {v}); run them with `nox -s tests`, which installs it")


CELL = (FIXTURE_CASES / "paths" / "toplevel_model.py").read_text()

REAL_SCRIPT = """
from distributed import Client
client = Client({address!r})
{cell}
print("VALUE", client.compute(result).result(timeout=30))
"""

EXEC_FROM_HARNESS = """
from distributed import Client

def harness(source):
    namespace = {{"__name__": "__main__", "client": Client({address!r})}}
    exec(compile(source, "cell.py", "exec"), namespace)
    return namespace

ns = harness({cell!r})
try:
    print("VALUE", ns["client"].compute(ns["result"]).result(timeout=30))
except Exception as e:
    print("FAILED", type(e).__name__, repr(e.__cause__))
"""


def _python(tmp_path, name, code):
    path = tmp_path / name
    path.write_text(code)
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_script_context_matches_a_real_script(old_pydantic, runner, fixture_cases, cluster, tmp_path):
    cell = runner.run(fixture_cases["toplevel_model"], "Client.compute")
    assert cell.outcome == oc.PASS, cell

    real = _python(tmp_path, "cell.py", REAL_SCRIPT.format(address=cluster.address, cell=CELL))
    assert "VALUE 3" in real.stdout, real.stderr[-3000:]


def test_exec_from_harness_code_is_not_faithful(old_pydantic, cluster, tmp_path):
    # The control: this is what a naive harness would report. If it ever
    # passes, the faithfulness test above proves nothing.
    naive = _python(tmp_path, "naive.py", EXEC_FROM_HARNESS.format(address=cluster.address, cell=CELL))
    assert "FAILED" in naive.stdout, naive.stdout + naive.stderr[-3000:]
    assert "pickle" in naive.stdout


def test_cell_frame_has_no_caller(runner, cluster, tmp_path):
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "frame_probe.py").write_text(textwrap.dedent('''
        CASE = {"family": "frames", "summary": "top-level frame has no caller", "expect": "pass"}
        import sys
        import dask
        top_frame_has_caller = sys._getframe().f_back is not None
        name = __name__
        result = dask.delayed(lambda a, b: (a, b))(top_frame_has_caller, name)
        expected = (False, "__main__")
    '''))
    from picklematrix.run.corpus import load_corpus

    cases, problems = load_corpus([tmp_path])
    assert not problems
    assert runner.run(cases[0], "Client.compute").outcome == oc.PASS
