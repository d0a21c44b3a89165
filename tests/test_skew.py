"""Client and cluster on different versions (picklematrix.envs.skew): skew pairs in matrix.toml, a cluster started
from another env's interpreter, and clusters the harness did not start (--scheduler).

The slow tests run the real thing: nox builds the envs with uv, the cluster env's `dask scheduler` and
`dask worker` serve the client env's harness, asv records, and the report and review show the pair.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from picklematrix.cluster import tls
from picklematrix.envs import skew
from picklematrix.envs.matrix import MatrixError, load_matrix

from .conftest import ROOT

CLIENT = "cp3.1.3-dask2026.8.0-pyd2.14.4-py3.12"
CLUSTER = "cp3.1.3-dask2026.8.0-pyd2.14.4-py3.11"
PAIR_ID = f"{CLIENT}~{CLUSTER}"
ONLY = "functions/main_function,functions/importable_function,classes/collections_namedtuple"

MINI = textwrap.dedent(f"""
    [axes]
    python = ["3.11", "3.12"]
    cloudpickle = ["3.1.3"]
    dask = ["2026.8.0"]
    pydantic = ["2.14.4"]

    [skew.python-client-ahead]
    client = "{CLIENT}"
    cluster = "{CLUSTER}"
    question = "Can the notebook image move to Python 3.12 while the cluster stays on 3.11?"

    [profiles.default]
    baseline = "{CLUSTER}"
    envs = ["{CLUSTER}"]
    skew = ["python-client-ahead"]
""")


# --------------------------------------------------------------------------- matrix.toml, names, labels

def _matrix(tmp_path, text):
    path = tmp_path / "matrix.toml"
    path.write_text(text)
    return load_matrix(path)


def test_a_profile_names_skew_pairs_with_their_question(tmp_path):
    pair = _matrix(tmp_path, MINI).profile("default").skew[0]
    assert (pair.client.env_id, pair.cluster.env_id, pair.env_id) == (CLIENT, CLUSTER, PAIR_ID)
    assert pair.session_id == "skew-python-client-ahead" and "3.12" in pair.question
    assert pair.label == "client py3.12 / cluster py3.11"


def test_the_project_default_profile_asks_the_skew_questions_of_the_issue():
    pairs = load_matrix().profile("default").skew
    differ = {name: [k for k in ("python", "cloudpickle", "dask", "pydantic")
                     if getattr(p.client, k) != getattr(p.cluster, k)] for p in pairs for name in [p.name]}
    assert sorted(differ.values()) == sorted([["pydantic"], ["pydantic"], ["cloudpickle"], ["python"], ["dask"]])
    assert all(p.question.endswith("?") for p in pairs)
    v1 = [p for p in pairs if p.cluster.pydantic.startswith("1.")]
    assert v1 and v1[0].client.pydantic.startswith("2."), "a pydantic v2 client against v1 workers"


@pytest.mark.parametrize("bad, message", [
    ('[skew.x]\nclient = "{c}"\ncluster = "{c}"\nquestion = "q?"', "that is not a skew"),
    ('[skew.x]\nclient = "{c}"\ncluster = "nope"\nquestion = "q?"', "cluster = 'nope' is not an env id"),
    ('[skew.x]\nclient = "{c}"\ncluster = "{k}"', "needs a 'question'"),
    ('[skew.Bad_Name]\nclient = "{c}"\ncluster = "{k}"\nquestion = "q?"', "lower-case letters"),
    ('[skew.x]\nclient = "{c}"\ncluster = "{k}"\nquestion = "q?"\nwho = 1', "unknown key 'who'"),
])
def test_a_bad_skew_pair_is_named_and_nothing_is_built(tmp_path, bad, message):
    text = MINI.split("[skew.")[0] + bad.format(c=CLIENT, k=CLUSTER) + "\n" + MINI[MINI.index("[profiles"):]
    text = text.replace('skew = ["python-client-ahead"]', 'skew = ["x"]')
    with pytest.raises(MatrixError) as err:
        _matrix(tmp_path, text)
    assert message in str(err.value) and str(tmp_path / "matrix.toml") in str(err.value)


def test_a_profile_naming_an_unknown_pair_says_which_are_known(tmp_path):
    with pytest.raises(MatrixError) as err:
        _matrix(tmp_path, MINI.replace('skew = ["python-client-ahead"]', 'skew = ["nope"]'))
    assert "skew pair 'nope' is not defined (known: python-client-ahead" in str(err.value)


def test_labels_spell_out_only_what_differs():
    assert skew.skew_label(PAIR_ID) == "client py3.12 / cluster py3.11"
    assert skew.skew_label("cp3.1.0-dask2024.6.2-pyd2.8.2-py3.11~cp3.0.0-dask2024.6.2-pyd1.10.21-py3.11") == \
        "client cp3.1.0 pyd2.8.2 / cluster cp3.0.0 pyd1.10.21"
    assert skew.skew_label(CLUSTER) == CLUSTER  # one env: its id
    assert skew.split_env_id(PAIR_ID) == (CLIENT, CLUSTER)


def test_a_cluster_identity_names_the_record_within_asvs_limit():
    ident = skew.ClusterIdentity("3.11.7", {"cloudpickle": "3.1.3", "dask": "2026.8.0", "distributed": "2026.8.0",
                                             "pydantic": None})
    assert ident.env_id == "cp3.1.3-dask2026.8.0-pydabsent-py3.11"
    name = skew.record_name("picklematrix-py3.12.1-cloudpickle3.1.3-dask2026.8.0-distributed2026.8.0-"
                            "pydantic2.14.4", ident)
    assert len(name) < 128  # asv names longer ones env-<md5>
    assert name != skew.record_name(name, skew.ClusterIdentity("3.12.1", ident.versions))
    assert ident.asv_requirements()["cluster-python"] == "3.11"


def test_a_security_file_is_checked_and_only_its_paths_are_used(tmp_path):
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("-----BEGIN SECRET-----\n")
    good = tmp_path / "tls.toml"
    good.write_text('ca_file = "ca.pem"\ncert = "cert.pem"\nkey = "key.pem"\n')
    settings = tls.tls_environ(str(good))
    assert settings["DASK_DISTRIBUTED__COMM__TLS__CA_FILE"] == str(tmp_path / "ca.pem")
    assert not any("SECRET" in v for v in settings.values())
    bad = tmp_path / "bad.toml"
    bad.write_text('ca_file = "ca.pem"\ncert = "missing.pem"\nkey = "key.pem"\n')
    with pytest.raises(tls.SecurityError, match=r"bad.toml: cert = 'missing.pem': no such file"):
        tls.tls_environ(str(bad))


# --------------------------------------------------------------------------- end to end

def _nox(tmp_path, results, *args, extra_env=None, timeout=1500):
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(MINI)
    env = dict(os.environ, PICKLEMATRIX_MATRIX=str(matrix), PICKLEMATRIX_RESULTS=str(results),
               PICKLEMATRIX_ONLY=ONLY, PICKLEMATRIX_DIRTY_LABEL="skew", PICKLEMATRIX_MACHINE="skewmachine")
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", "nox", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _sidecar(results, env_id):
    for path in results.glob("*/*.outcomes"):
        data = json.loads(path.read_text())
        if data.get("env_id") == env_id:
            return data
    raise AssertionError(f"no record of {env_id} in {sorted(p.name for p in results.rglob('*'))}")


def _cells(sidecar, case, method=None):
    return [c for c in sidecar["cells"] if c["case"] == case and (method is None or c["method"] == method)]


@pytest.fixture(scope="module")
def python_skew(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("skew")
    results = tmp / "results"
    proc = _nox(tmp, results, "-s", f"matrix({CLUSTER})", "matrix(skew-python-client-ahead)")
    return tmp, results, proc


@pytest.mark.slow
def test_python_minor_skew_main_function_against_an_importable_one(python_skew):
    """A 3.12 client on a 3.11 cluster: a function defined in __main__ travels by value (its 3.12 code object),
    an importable one by reference; both are recorded with their outcome and what ended them."""
    _, results, proc = python_skew
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    record = _sidecar(results, PAIR_ID)
    assert record["complete"] and record["env"]["python"].startswith("3.12.")
    cluster = record["cluster"]
    # from the cluster env's interpreter: its matrix venv when built (here, by the session beside), else one of its own
    assert cluster["owned"] and any(where in cluster["started_from"] for where in (
        "/.nox/on-demand/" + CLUSTER + "/", "/.nox/matrix-" + CLUSTER.replace(".", "-") + "/")), cluster
    versions = cluster["versions"]
    assert {w["python"][:5] for w in versions["workers"].values()} == {"3.11."}
    assert versions["client"]["python"].startswith("3.12.")
    assert "python" in versions["mismatch"] and "Mismatched versions" in versions["mismatch"]

    for context in ("script", "kernel"):
        importable = {c["method"]: c for c in _cells(record, "importable_function") if c["context"] == context}
        by_value = {c["method"]: c for c in _cells(record, "main_function") if c["context"] == context}
        assert importable["Client.compute"]["outcome"] == "pass", importable
        assert importable["dask.compute"]["outcome"] == "pass", importable
        shipped = by_value["Client.compute"]
        assert shipped["outcome"] != "pass", shipped
        assert shipped["root_cause"]["type"] and shipped["stage"], shipped
        print(context, shipped["outcome"], shipped["root_cause"], shipped.get("detail"))
    # What a cell of the 3.12 client does to the 3.11 cluster is the cell's finding, never a harness error: a
    # worker or the scheduler it crashed is named (the nanny's or the process's own end), in its own cell.
    assert not [c for c in record["cells"] if c["outcome"] == "harness-error"], record["cells"]
    for c in record["cells"]:
        if "the scheduler process" in (c.get("detail") or ""):
            assert (c["outcome"], c["stage"]) == ("worker-died", "cluster-unpickles-graph"), c
            assert c["method"] != "dask.compute(client=)", c  # ran locally: it never reached the cluster
    # the same two functions without the skew: both pass
    alone = _sidecar(results, CLUSTER)
    assert {c["outcome"] for c in _cells(alone, "main_function", "Client.compute")} == {"pass"}
    # The cases state this skew with cluster_python conditions, read from the versions the cluster reported: the
    # pair's cells are as expected, and the cluster's env alone (both sides 3.11) expects a pass of the same cells.
    assert record["cluster"]["versions"]["identity"]["python"].startswith("3.11."), record["cluster"]
    assert not [c for c in record["cells"] if c["surprise"]], [c for c in record["cells"] if c["surprise"]]
    assert {c["expected"] for c in _cells(record, "main_function", "Client.compute")} == {"worker-died"}
    assert {c["expected"] for c in _cells(alone, "main_function", "Client.compute")} == {"pass"}
    assert not [c for c in alone["cells"] if c["surprise"]], [c for c in alone["cells"] if c["surprise"]]


@pytest.mark.slow
def test_the_report_and_the_review_show_the_pair_as_its_own_column(python_skew):
    tmp, results, proc = python_skew
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    report = _nox(tmp, results, "-s", "report", timeout=600)
    assert report.returncode == 0, (report.stdout + report.stderr)[-3000:]
    table = (results / "table.md").read_text()
    assert "client py3.12 / cluster py3.11" in table and PAIR_ID in table
    review = _nox(tmp, results, "-s", "review", "--", "--from", CLUSTER, "--to", PAIR_ID, timeout=600)
    out = review.stdout + review.stderr
    assert review.returncode == 1, out[-3000:]  # something broke: the __main__ function
    assert "functions/main_function" in out and "client py3.12 / cluster py3.11" in out
    assert "Changed: **client python** 3.11" in out
    # picklematrix review on its own picks recorded envs by what is installed in them, spec words as nox takes them
    direct = subprocess.run([sys.executable, "-m", "picklematrix", "review", "--results", str(results),
                             "--checkout", str(ROOT), "--from", "python=3.11 pydantic=2.14.4", "--to", "python=3.12"],
                            capture_output=True, text=True, timeout=300)
    assert direct.returncode == 1 and "functions/main_function" in direct.stdout, direct.stdout + direct.stderr


@pytest.mark.slow
def test_a_pair_named_on_the_command_line_is_the_pair_of_matrix_toml(python_skew):
    """``--env "<client>~<cluster>"`` (what CI's base step gives, a pair's record id) is a skew pair on demand;
    the same two envs reached that way are the same record."""
    tmp, results, proc = python_skew
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    again = _nox(tmp, results, "-s", "matrix", "--", "--env", PAIR_ID)
    out = again.stdout + again.stderr
    assert again.returncode == 0, out[-3000:]
    assert f"{PAIR_ID}: already recorded" in out, out[-3000:]
    bad = _nox(tmp, results, "-s", "matrix", "--", "--env", f"{CLUSTER}~{CLUSTER}")
    assert bad.returncode == 2 and "that is no skew" in bad.stderr, bad.stderr[-2000:]


# --------------------------------------------------------------------------- a cluster someone else runs

def _uv():
    from picklematrix.envs.venvs import uv

    return uv()


@pytest.fixture(scope="module")
def outside_cluster(tmp_path_factory):
    """A cluster started outside the harness, with `dask scheduler` and `dask worker` from an env of its own
    (no picklematrix in it): what a team's cluster is to the harness."""
    tmp = tmp_path_factory.mktemp("outside")
    venv = tmp / "cluster-env"
    subprocess.run([_uv(), "venv", "-q", "-p", "3.11", str(venv)], cwd=ROOT, check=True,
                   env=dict(os.environ, UV_PYTHON_DOWNLOADS="never"))
    python = str(venv / "bin" / "python")
    subprocess.run([_uv(), "pip", "install", "-q", "-p", python, "dask==2026.8.0", "distributed==2026.8.0",
                    "cloudpickle==3.1.3", "pydantic==2.14.4"], check=True)
    scheduler_file = tmp / "scheduler.json"
    log = open(tmp / "cluster.log", "wb")
    common = ["--no-dashboard", "--dashboard-address", "127.0.0.1:0", "--host", "127.0.0.1"]
    procs = [subprocess.Popen([python, "-m", "dask", "scheduler", "--port", "0", "--scheduler-file",
                               str(scheduler_file), *common], stdout=log, stderr=log, start_new_session=True)]
    deadline = time.monotonic() + 60
    while not scheduler_file.exists():
        assert time.monotonic() < deadline, (tmp / "cluster.log").read_text()
        time.sleep(0.1)
    time.sleep(0.2)
    procs.append(subprocess.Popen([python, "-m", "dask", "worker", "--scheduler-file", str(scheduler_file),
                                   "--nworkers", "2", "--nthreads", "1", *common], stdout=log, stderr=log,
                                  start_new_session=True))
    from distributed import Client

    address = json.loads(scheduler_file.read_text())["address"]
    client = Client(address, timeout=30, set_as_default=False)
    client.wait_for_workers(2, timeout=60)

    def workers():
        return {address: pid for address, pid in client.run(os.getpid).items()}

    try:
        yield address, workers
    finally:
        client.close()
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:  # a test shut it down
                pass
            proc.wait()
        log.close()


def _alive(pid):
    """Whether ``pid`` runs: it exists and is no zombie (a killed worker whose nanny died waits for init to reap
    it: ended, not yet gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _left(pids, within=5.0):
    """The processes of ``pids`` still running ``within`` seconds from now (a process killed a moment ago is still
    exiting)."""
    deadline = time.monotonic() + within
    while (left := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.mark.slow
def test_nox_matrix_records_an_env_against_a_cluster_it_did_not_start(outside_cluster, tmp_path):
    address, workers = outside_cluster
    before = workers()
    results = tmp_path / "results"
    proc = _nox(tmp_path, results, "-s", f"matrix({CLUSTER})", "--", "--scheduler", address,
                extra_env={"PICKLEMATRIX_ONLY": "functions/importable_function,functions/lambda_square"})
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    record = _sidecar(results, f"{CLUSTER}~{CLUSTER}")  # the cluster's versions, read from it, name it
    assert record["cluster"]["owned"] is False and record["cluster"]["address"] == address
    assert {c["outcome"] for c in record["cells"]} <= {"pass", "ran-locally"}, record["cells"]
    assert workers() == before and all(_alive(pid) for pid in before.values())


NEWER_CLIENT = "cp3.1.3-dask2026.8.0-pyd2.14.4-py3.13"
# a case whose graph holds no code of the client's Python (a function by reference), so that the 3.11 cluster runs
# it whatever the client's minor version; and one the client cannot pickle at all
ACROSS_MINORS = "functions/importable_function,containers/dict_with_lock"


@pytest.mark.slow
def test_a_client_of_another_python_minor_checks_the_cluster_over_its_rpc(outside_cluster, tmp_path):
    """A Python 3.13 client against the 3.11 cluster, whose env has no picklematrix: the health check between
    cells asks only what distributed answers over its RPC, so every cell is recorded with the case's own outcome
    (a check shipped by value failed every cell with "SystemError: no locals when deleting 'workers'" and the run
    stopped after 7 cells). Then a task still running on a 3.11 worker when its cell ended is seen there: the
    run stops, naming the cluster, which is not restarted."""
    address, workers = outside_cluster
    before = workers()
    results = tmp_path / "results"
    proc = _nox(tmp_path, results, "-s", "matrix", "--", "--env", NEWER_CLIENT, "--scheduler", address,
                extra_env={"PICKLEMATRIX_ONLY": ACROSS_MINORS})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    record = _sidecar(results, f"{NEWER_CLIENT}~{CLUSTER}")
    assert record["complete"] and record["env"]["python"].startswith("3.13."), record["env"]
    versions = record["cluster"]["versions"]
    assert {w["python"][:5] for w in versions["workers"].values()} == {"3.11."}, versions
    assert record["cluster"]["owned"] is False and not record["cluster"]["lost"]
    cells = record["cells"]
    assert len(cells) == 2 * 3 * 2, [c["case"] for c in cells]  # 2 cases x 3 methods x 2 contexts: none lost
    assert not [c for c in cells if c["outcome"] == "harness-error"], cells
    assert "no locals" not in json.dumps(cells) and "SystemError" not in json.dumps(cells)
    # no code of the client's Python reaches the cluster: each cell is what its case expects (the same on one Python)
    assert not [c for c in cells if c["surprise"]], cells
    assert {c["outcome"] for c in cells if c["case"] == "importable_function"} == {"pass", "ran-locally"}
    assert workers() == before

    python = next(p for p in (ROOT / ".nox" / f"matrix-{NEWER_CLIENT.replace('.', '-')}" / "bin" / "python",
                              ROOT / ".nox" / "on-demand" / NEWER_CLIENT / "bin" / "python") if p.exists())
    cases = tmp_path / "cases" / "slow"
    cases.mkdir(parents=True)
    # time.sleep travels by reference; the task outlives its cell by seconds, then the worker is free again
    (cases / "sleeps_past_its_timeout.py").write_text(textwrap.dedent('''\
        CASE = {"family": "slow", "summary": "a task still running when its cell times out", "expect": "timeout",
                "timeout": 1}
        import time

        import dask

        result = dask.delayed(time.sleep)(12)
        expected = None
    '''))
    run = subprocess.run([str(python), "-m", "picklematrix", "run", "--scheduler", address, "--cases",
                          str(tmp_path / "cases"), "--method", "Client.compute", "--json", str(tmp_path / "run.json"),
                          "--no-progress"], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 3, run.stdout + run.stderr
    (cell,) = json.loads((tmp_path / "run.json").read_text())["cells"]
    assert cell["outcome"] == "timeout" and "could not be recovered" in cell["detail"], cell
    assert "workers still executing tasks of a finished cell" in cell["detail"], cell
    deadline = time.monotonic() + 30
    while workers() != before:  # the task ends; nothing of the cluster was restarted
        assert time.monotonic() < deadline, workers()
        time.sleep(1)
    assert all(_alive(pid) for pid in before.values())
    time.sleep(12)  # the sleeping task is over before the next test uses the cluster


@pytest.mark.slow
def test_the_review_records_both_envs_as_clients_of_the_cluster_and_reviews_them(outside_cluster, tmp_path):
    """The platform team's question against a cluster someone else runs: the notebook's pydantic moved, the
    cluster's did not."""
    address, workers = outside_cluster
    before = workers()
    results = tmp_path / "results"
    older = CLUSTER.replace("pyd2.14.4", "pyd2.11.3")
    proc = _nox(tmp_path, results, "-s", "review", "--", "--from", older, "--to", CLUSTER, "--scheduler", address,
                extra_env={"PICKLEMATRIX_ONLY": "pydantic/toplevel_model"})
    out = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1), out[-5000:]  # a verdict, whatever it is
    assert f"{older}~{CLUSTER}" in out and f"{CLUSTER}~{CLUSTER}" in out, out[-3000:]
    assert "not compared" in out and " 0 not compared" in out, out[-3000:]
    for env_id in (f"{older}~{CLUSTER}", f"{CLUSTER}~{CLUSTER}"):
        assert _sidecar(results, env_id)["cluster"]["owned"] is False
    assert workers() == before


@pytest.mark.slow
def test_a_cell_that_breaks_a_cluster_it_may_not_restart_stops_the_run(outside_cluster, tmp_path):
    """A hung task leaves a worker busy: the harness may not kill it, so the run stops there, naming the
    cluster; the cells before it are kept, none after it is blamed, and the workers are as they were."""
    address, workers = outside_cluster
    before = workers()
    out = tmp_path / "run.json"
    proc = subprocess.run([sys.executable, "-m", "picklematrix", "run", "--scheduler", address, "--json", str(out),
                           "--only", "functions/lambda_square", "--only", "misc/sleep_forever",
                           "--only", "runtime/contextvar", "--no-progress"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"the cluster at {address} could not be recovered" in proc.stderr
    record = json.loads(out.read_text())
    cases = [c["case"] for c in record["cells"]]
    assert "lambda_square" in cases and "contextvar" not in cases
    last = record["cells"][-1]
    assert last["case"] == "sleep_forever" and "could not be recovered" in last["detail"]
    assert record["cluster"]["lost"] and "pydantic" in record["cluster"]["versions"]["mismatch"]
    assert workers().keys() == before.keys() and all(_alive(pid) for pid in before.values())


@pytest.mark.slow
def test_a_cell_that_shuts_down_a_cluster_it_did_not_start_stops_the_run(outside_cluster, tmp_path):
    """client.shutdown() in a cell ends someone else's cluster: that cell says the cluster could not be recovered,
    and no later cell runs against the dead address (the last test of the module on this cluster)."""
    address, _ = outside_cluster
    out = tmp_path / "run.json"
    proc = subprocess.run([sys.executable, "-m", "picklematrix", "run", "--scheduler", address, "--json", str(out),
                           "--cases", str(ROOT / "tests" / "faults" / "cases"), "--only", "hangs/shuts_down_cluster",
                           "--only", "hangs/then_passes", "--no-progress"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    cells = json.loads(out.read_text())["cells"]
    assert [c["case"] for c in cells] == ["shuts_down_cluster"], cells
    assert "could not be recovered" in cells[0]["detail"], cells[0]


@pytest.mark.slow
def test_a_tls_cluster_is_reached_with_the_security_file_and_no_secret_is_recorded(tmp_path):
    """A tls:// cluster (dask's own TLS, mutual certificates): every process of the run, the kernel's
    included, connects with the paths of --scheduler-security; the key never reaches the results or the
    output; without the file the run is refused, saying what to give."""
    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command to make a certificate")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out",
                    "cert.pem", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   cwd=tmp_path, check=True, capture_output=True)
    (tmp_path / "tls.toml").write_text('ca_file = "cert.pem"\ncert = "cert.pem"\nkey = "key.pem"\n')
    tls = ["--tls-ca-file", "cert.pem", "--tls-cert", "cert.pem", "--tls-key", "key.pem"]
    common = ["--no-dashboard", "--dashboard-address", "127.0.0.1:0", "--host", "127.0.0.1", *tls]
    log = open(tmp_path / "cluster.log", "wb")
    procs = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--protocol", "tls", "--port", "0",
                               "--scheduler-file", "scheduler.json", *common], cwd=tmp_path, stdout=log, stderr=log,
                              start_new_session=True)]
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "scheduler.json").exists():
            assert time.monotonic() < deadline, (tmp_path / "cluster.log").read_text()
            time.sleep(0.1)
        time.sleep(0.2)
        address = json.loads((tmp_path / "scheduler.json").read_text())["address"]
        assert address.startswith("tls://")
        procs.append(subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--nworkers", "2",
                                       "--nthreads", "1", *common], cwd=tmp_path, stdout=log, stderr=log,
                                      start_new_session=True))
        refused = subprocess.run([sys.executable, "-m", "picklematrix", "run", "--scheduler", address,
                                  "--only", "functions/lambda_square"], capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2 and "--scheduler-security" in refused.stderr, refused.stderr
        out = tmp_path / "run.json"
        proc = subprocess.run([sys.executable, "-m", "picklematrix", "run", "--scheduler", address,
                               "--scheduler-security", str(tmp_path / "tls.toml"), "--context", "all", "--json",
                               str(out), "--only", "functions/lambda_square", "--no-progress"],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        record = json.loads(out.read_text())
        assert {(c["context"], c["outcome"]) for c in record["cells"]} >= {("script", "pass"), ("kernel", "pass")}
        assert record["cluster"]["address"] == address
        secret = (tmp_path / "key.pem").read_text().splitlines()[1]
        assert secret not in out.read_text() and secret not in proc.stdout + proc.stderr
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        log.close()


def test_a_review_names_what_changed_on_each_side_and_in_the_extra_pins():
    from picklematrix.report.compare import changed_versions
    from picklematrix.report.results import Recording

    def rec(env_id, python, pydantic, extra=None):
        return Recording(machine="m", commit="c", env_name=env_id, env_id=env_id, python=python,
                         versions={"cloudpickle": "3.1.3", "dask": "2026.8.0", "distributed": "2026.8.0",
                                   "pydantic": pydantic}, extra=extra or {})

    alone = rec(CLUSTER, "3.11.7", "2.14.4")
    pair = rec(PAIR_ID, "3.12.1", "2.14.4")
    assert changed_versions(alone, pair) == [{"name": "client python", "from": "3.11.7", "to": "3.12.1"}]
    older_cluster = rec(f"{CLIENT}~{CLUSTER.replace('pyd2.14.4', 'pyd2.11.3')}", "3.12.1", "2.14.4")
    assert changed_versions(older_cluster, pair) == [{"name": "cluster pydantic", "from": "2.11.3", "to": "2.14.4"}]
    a, b = rec(CLUSTER, "3.11.7", "2.8.2", {"tornado": "6.4.2"}), rec(CLUSTER, "3.11.7", "2.8.2", {"tornado": "6.5"})
    assert changed_versions(a, b) == [{"name": "tornado", "from": "6.4.2", "to": "6.5"}]


def test_a_pull_requests_review_covers_the_profiles_skew_pairs(tmp_path, monkeypatch):
    from picklematrix.report.revs import rev_envs

    monkeypatch.setenv("PICKLEMATRIX_MATRIX", str(tmp_path / "matrix.toml"))
    (tmp_path / "matrix.toml").write_text(MINI)
    assert rev_envs(ROOT, "HEAD", "default") == [CLUSTER, PAIR_ID]


def test_the_docs_list_the_default_profiles_skew_pairs():
    text = (ROOT / "docs" / "matrix-toml.md").read_text()
    names = {pair.name for pair in load_matrix().profile("default").skew}
    listed = {line.split("|")[1].strip().strip("`") for line in text.splitlines()
              if line.startswith("| `") and line.split("|")[1].strip().strip("`") in names}
    assert listed == names, "docs/matrix-toml.md's skew table and matrix.toml's default pairs disagree"


# --------------------------------------------------------------------------- a spawned cluster's replacement

def _drop_worker(cluster):
    """What a cell of a Python-minor skew pair does to a worker: the scheduler's stream to it breaks (there, the
    scheduler could not pickle a task again for it), the worker closes, and its nanny closes for good."""
    address = sorted(cluster.client.scheduler_info()["workers"])[0]
    cluster.client.run_on_scheduler(_abort_stream, address)
    return address


def _abort_stream(address, dask_scheduler=None):
    dask_scheduler.stream_comms[address].abort()


def _pids(cluster):
    return [p.pid for p in (cluster.scheduler, cluster.workers)]


def test_a_spawned_cluster_that_lost_a_worker_for_good_gets_a_new_worker_beside_the_others():
    from picklematrix.cluster.spawned import SpawnedCluster
    from picklematrix.cluster.zygote import ForkedProcess

    cluster = SpawnedCluster(sys.executable).start()
    try:
        first, scheduler = cluster.address, cluster.scheduler.pid
        for n in (1, 2):  # the second time too: the first nanny's end, logged, is not taken for a new one
            _drop_worker(cluster)
            # The check does not wait out its grace for a worker that will not come back: it says so at once.
            started = time.monotonic()
            health = cluster.health(grace=60)
            assert not health.ok and time.monotonic() - started < 30, health.problems
            message = cluster.make_healthy(f"test cell {n} (worker-died)")
            assert message and "started 1 worker" in message and "nanny closed for good" in message, message
            # the same scheduler, whole again, with one more ``dask worker`` of the cluster env
            assert cluster.address == first and cluster.scheduler.pid == scheduler
            assert cluster.health().ok and len(cluster.added) == n
            assert len(cluster.client.scheduler_info()["workers"]) == 2
        assert cluster.restarts == 2 and not cluster.warnings and cluster._standby is None
        # the first was spawned, and the zygote started beside it; the second forked by the zygote
        assert isinstance(cluster.added[0], subprocess.Popen) and isinstance(cluster.added[1], ForkedProcess)
        zygote = cluster._zygote.proc.pid
        owned = _pids(cluster) + [p.pid for p in cluster.added] + [zygote]
        directory = cluster.dir
    finally:
        cluster.close(timeout=2)
    assert not _left(owned) and not directory.exists()


def test_a_zygote_that_cannot_start_says_so_and_the_worker_is_spawned_instead(tmp_path):
    """An interpreter without dask's command line cannot be a zygote: its fork request fails at once, naming
    it, and the spawned cluster falls back to spawning (the first warning says why)."""
    from picklematrix.cluster.spawned import SpawnedCluster
    from picklematrix.cluster.zygote import Zygote

    # this interpreter without its site-packages: no dask, whatever the machine has installed elsewhere
    bare = tmp_path / "bare-python"
    bare.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "$@"\n')
    bare.chmod(0o755)
    log = tmp_path / "zygote.log"
    zygote = Zygote(str(bare), dict(os.environ), log)
    try:
        with pytest.raises(OSError, match=f"zygote \\(pid {zygote.proc.pid}\\)"):
            zygote.fork(["worker", "--help"], log)
        assert "dask" in log.read_text()  # its ImportError, in the log
    finally:
        zygote.close()
    assert not _left([zygote.proc.pid])

    cluster = SpawnedCluster(sys.executable)
    cluster.log = tmp_path / "cluster.log"
    cluster._zygote = Zygote(str(bare), dict(os.environ), cluster.log)
    proc = cluster._start_worker(["--version"])
    try:
        assert isinstance(proc, subprocess.Popen) and proc.wait(60) == 0
        assert cluster._zygote is False and "zygote failed" in cluster.warnings[0], cluster.warnings
    finally:
        cluster.close(timeout=1)


def test_a_spawned_cluster_whose_scheduler_died_is_replaced_by_one_started_ahead():
    from picklematrix.cluster.spawned import SpawnedCluster

    cluster = SpawnedCluster(sys.executable).start()
    try:
        assert cluster._standby is None  # nothing is started ahead before a replacement was needed
        first = cluster.address
        os.kill(cluster.scheduler.pid, signal.SIGKILL)
        cluster.scheduler.wait()
        warning = cluster.make_healthy("a test cell (worker-died)")
        assert "replaced the whole cluster" in warning and "killed by signal 9" in warning, warning
        assert cluster.address != first and cluster.health().ok
        # from now on the next cluster is started ahead: the next replacement takes it
        standby = cluster._standby
        deadline = time.monotonic() + 60
        ahead = None
        while ahead is None:  # the scheduler writes its file in one go, but not atomically: it may read empty
            assert time.monotonic() < deadline, standby.log.read_text()
            try:
                ahead = json.loads(standby.scheduler_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.05)
        retired = _pids(cluster)
        os.kill(cluster.scheduler.pid, signal.SIGKILL)
        cluster.scheduler.wait()
        cluster.make_healthy("another test cell (worker-died)")
        assert cluster.address == ahead and cluster.health().ok
        assert cluster.restarts == 2 and len(cluster.warnings) == 2
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in retired):  # the replaced one ends on a thread of its own
            assert time.monotonic() < deadline, "a replaced cluster's processes did not end"
            time.sleep(0.05)
        owned = _pids(cluster) + [p.pid for p in (cluster._standby.scheduler, cluster._standby.workers)]
        directories = [cluster.dir, cluster._standby.dir]
    finally:
        cluster.close(timeout=2)
    # closing ends the standby too, and leaves no directory behind
    assert not _left(owned)
    assert not any(d.exists() for d in directories)
