"""nox -s bisect, for real: each step an env built with uv and recorded as nox -s matrix records it, only the
chosen case running. Findings come from running: nothing here tells the bisect what to find. Releases come from
the configured index (a local one, served on 127.0.0.1 with real wheels from PyPI), interpreters from uv."""

import base64
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.parse
import urllib.request

import pytest

from picklematrix.envs import venvs
from picklematrix.record import bisect

from .conftest import ROOT

BASE = "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11"  # the dask#11448 env


@pytest.fixture(scope="module")
def bisect_run(tmp_path_factory):
    """``nox -s bisect -- ARGS`` from a clean clone of HEAD (recording needs a committed tree, and the suite's own
    checkout may be in use), with its own envs, tools venv and results; returns (report, markdown, output)."""
    tmp = tmp_path_factory.mktemp("bisect")
    clone = tmp / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    env = dict(os.environ, PICKLEMATRIX_MACHINE="box", PICKLEMATRIX_RESULTS=str(tmp / "results"),
               PICKLEMATRIX_TOOLS_VENV=str(tmp / "tools"))
    for var in ("_PICKLEMATRIX_RUN_COMMIT", "PICKLEMATRIX_ONLY", "PICKLEMATRIX_CASES", "PICKLEMATRIX_DIRTY_LABEL"):
        env.pop(var, None)

    def run(package, lo, hi, *args, extra_env=None):
        proc = subprocess.run([sys.executable, "-m", "nox", "--envdir", str(tmp / "envs"), "-s", "bisect", "--",
                               "--change", f"{package}={lo}..{hi}", *args], cwd=clone, env={**env, **(extra_env or {})},
                              capture_output=True, text=True, timeout=1200)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-6000:]
        stem = tmp / "results" / "bisect" / f"{package}-{lo}..{hi}"  # (a version's dots: no with_suffix)
        return (json.loads(stem.with_name(stem.name + ".json").read_text()),
                stem.with_name(stem.name + ".md").read_text(), out)
    return run


@pytest.mark.slow
def test_bisecting_pydantic_on_the_11448_env_names_2_9_0_and_the_kernel_cells(bisect_run):
    report, md, _ = bisect_run("pydantic", "2.8.2", "2.9.2", "--base", BASE, "--only", "notebook/dask_11448_report")
    assert report["releases_between"] == ["2.9.0", "2.9.1"]  # from PyPI, pre-releases left out
    assert report["first_differing"] == "2.9.0" and report["kind"] == "fixed"
    assert {c["cell"] for c in report["cells"]} == {"notebook/dask_11448_report|dask.compute|kernel",
                                                    "notebook/dask_11448_report|Client.compute|kernel"}
    assert all(c["from"] == "serialize-error" and c["to"] == "pass" for c in report["cells"])
    tried = {t["version"]: t for t in report["tried"]}
    assert set(tried) >= {"2.8.2", "2.9.0", "2.9.2"} and tried["2.9.0"]["status"] == "differs"
    # only the chosen case ran in each step
    assert {k.split("|")[0] for t in tried.values() for k in t["outcomes"]} == {"notebook/dask_11448_report"}
    assert "**pydantic 2.9.0** is the first release" in md


@pytest.mark.slow
def test_bisecting_cloudpickle_finds_where_a_main_typing_namedtuple_loads(bisect_run):
    # on a dask 2024.6.2 env: the baseline with cloudpickle changed
    report, _, _ = bisect_run("cloudpickle", "2.1.0", "2.2.1", "--only", "classes/typing_namedtuple")
    assert report["base"]["dask"] == "2024.6.2" and report["releases_between"] == ["2.2.0"]
    found = report["first_differing"]
    assert found in ("2.2.0", "2.2.1") and report["cells"], report
    assert {c["cell"].split("|")[0] for c in report["cells"]} == {"classes/typing_namedtuple"}
    assert any(c["from"] != "pass" and c["to"] == "pass" for c in report["cells"])


# --------------------------------------------------------------------------- a local index
LOCAL = ("2.2.1", "3.0.0", "3.1.1")  # cloudpickle releases the local index holds
YANKED = "3.1.0"  # on the local index, yanked (PyPI has it, not yanked)


def _wheel(version: str, into) -> str:
    """cloudpickle's real wheel of ``version``, from PyPI, into ``into``; its file name."""
    with urllib.request.urlopen("https://pypi.org/pypi/cloudpickle/json", timeout=60) as f:
        url = next(u for u in json.load(f)["releases"][version] if u["filename"].endswith(".whl"))
    path = into / url["filename"]
    # (a mirror of PyPI may give the file's URL relative to the page)
    with urllib.request.urlopen(urllib.parse.urljoin("https://pypi.org/pypi/cloudpickle/json", url["url"]),
                                timeout=60) as f:
        path.write_bytes(f.read())
    return url["filename"]


class _Index(http.server.SimpleHTTPRequestHandler):
    """A simple index: PEP 691 JSON when asked for it and there is one, else the PEP 503 HTML; /private/ wants
    user:secret (a mirror with credentials)."""

    def do_GET(self):
        if self.path.startswith("/private/"):
            if self.headers.get("Authorization") != "Basic " + base64.b64encode(b"user:secret").decode():
                self.send_error(401)
                return
            self.path = self.path[len("/private"):]
        wanted = self.headers.get("Accept", "")
        folder = self.translate_path(self.path)
        if bisect.SIMPLE_JSON in wanted and os.path.isfile(os.path.join(folder, "index.json")):
            body = open(os.path.join(folder, "index.json"), "rb").read()
            self.send_response(200)
            self.send_header("Content-Type", bisect.SIMPLE_JSON)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def local_index(tmp_path_factory):
    """An index of cloudpickle's LOCAL releases (and YANKED, yanked), HTML at /simple/ and JSON too at /json/,
    served on 127.0.0.1; its base URL."""
    root = tmp_path_factory.mktemp("index")
    files = root / "files"
    files.mkdir()
    names = {v: _wheel(v, files) for v in (*LOCAL, YANKED)}
    for kind in ("simple", "json"):
        page = root / kind / "cloudpickle"
        page.mkdir(parents=True)
        anchors = []
        for version, name in names.items():
            digest = hashlib.sha256((files / name).read_bytes()).hexdigest()
            yanked = ' data-yanked="broken"' if version == YANKED else ""
            anchors.append(f'<a href="../../files/{name}#sha256={digest}"{yanked}>{name}</a><br/>')
        (page / "index.html").write_text("<!DOCTYPE html><html><body>\n" + "\n".join(anchors) + "\n</body></html>\n")
        (root / kind / "index.html").write_text('<a href="cloudpickle/">cloudpickle</a>\n')
        if kind == "json":
            (page / "index.json").write_text(json.dumps({"meta": {"api-version": "1.1"}, "name": "cloudpickle",
                "files": [{"filename": n, "url": f"../../files/{n}", "hashes": {}, "yanked": v == YANKED}
                          for v, n in names.items()]}))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Index(*a, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_releases_come_from_the_configured_index(local_index):
    simple = f"{local_index}/simple"
    assert bisect.index_versions("cloudpickle", environ={"UV_INDEX_URL": simple}) == (list(LOCAL), simple)
    # PEP 691's JSON when the index serves it; the yanked release left out either way
    assert bisect.index_versions("cloudpickle", environ={"PIP_INDEX_URL": f"{local_index}/json"})[0] == list(LOCAL)
    # uv's variable wins over pip's, UV_DEFAULT_INDEX over its older name; a mirror's credentials are sent, never
    # shown; PyPI only when nothing is set
    assert bisect.index_versions("cloudpickle", environ={"UV_DEFAULT_INDEX": simple,
                                                         "UV_INDEX_URL": "http://127.0.0.1:9/none",
                                                         "PIP_INDEX_URL": "http://127.0.0.1:9/none"})[0] == list(LOCAL)
    private = local_index.replace("http://", "http://user:secret@") + "/private/simple"
    versions, shown = bisect.index_versions("cloudpickle", environ={"UV_INDEX_URL": private})
    assert versions == list(LOCAL) and "secret" not in shown and shown.startswith("http://***@127.0.0.1")
    on_pypi, where = bisect.index_versions("cloudpickle", environ={})
    assert where == bisect.DEFAULT_INDEX and YANKED in on_pypi and "2.0.0" in on_pypi
    # an extra index (UV_INDEX) that has the package answers first, as uv installs from it; one that has not is
    # passed over
    assert bisect.index_versions("cloudpickle", environ={"UV_INDEX": f"local={simple}"})[0] == list(LOCAL)
    assert "2.9.0" in bisect.index_versions("pydantic", environ={"UV_INDEX": simple})[0]
    with pytest.raises(bisect.BisectError, match=r"cannot list the releases of cloudpickle: http://127\.0\.0\.1:9"):
        bisect.index_versions("cloudpickle", environ={"UV_INDEX_URL": "http://127.0.0.1:9/simple"}, timeout=5)


def test_interpreters_are_the_ones_uv_finds_not_only_pyenvs(tmp_path, monkeypatch):
    """An interpreter on PATH as actions/setup-python leaves one (no pyenv): uv finds it, and only it."""
    found = shutil.which("python3.12") or sys.executable
    real = subprocess.run([found, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True,
                          check=True).stdout.strip()
    minor = subprocess.run([real, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True,
                           text=True, check=True).stdout.strip()
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / f"python{minor}").symlink_to(real)
    uv = venvs.uv()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    assert bisect.python_versions(uv) == [minor]


@pytest.mark.slow
def test_bisecting_over_a_local_index_lists_and_installs_its_releases(bisect_run, local_index, monkeypatch):
    """cloudpickle 2.2.1..3.1.1 with the local index first (UV_INDEX): the releases between are the local
    index's (3.0.0: it holds no 2.x after 2.2.1, and 3.1.0 is yanked there), each step installing from it."""
    report, md, _ = bisect_run("cloudpickle", "2.2.1", "3.1.1", "--only", "functions/lambda_square",
                               extra_env={"UV_INDEX": f"local={local_index}/simple"})
    assert report["releases_between"] == ["3.0.0"] and report["releases_from"] == f"{local_index}/simple"
    assert {t["version"] for t in report["tried"]} <= {"2.2.1", "3.0.0", "3.1.1"}
    assert all(t["status"] != "error" for t in report["tried"]), report["tried"]
    assert f"from {local_index}/simple" in md
