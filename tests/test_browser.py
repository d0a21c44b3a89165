"""The published site in a real browser: Debian's chromium, headless, driven over the DevTools protocol.

The site is served from 127.0.0.1 by a local HTTP server; every request the page makes is recorded, so a
script or stylesheet fetched from anywhere else fails the test (there is no internet here to hide it).
Screenshots go to the test's own tmp directory.
"""

from __future__ import annotations

import functools
import http.server
import json
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from picklematrix import envs

from .reporting import BROKEN, A, B, published

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1000", "--remote-debugging-port=0"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site_url(tmp_path_factory):
    pub = published(tmp_path_factory)
    assert pub.proc.returncode == 0, pub.proc.stdout + pub.proc.stderr
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_QuietHandler, directory=str(pub.site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class Browser:
    """Just enough of the DevTools protocol: navigate, evaluate, wait, screenshot, and watch the network."""

    def __init__(self, profile: Path):
        import websocket  # websocket-client

        chromium = envs.find_chromium()
        if chromium is None:
            pytest.fail(envs.chromium_missing())  # never a skip: a test that cannot run has not passed
        self.proc = subprocess.Popen([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"chromium did not start: {self.proc.stderr.read()[-3000:]}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as f:
            page = next(t for t in json.load(f) if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30,
                                              suppress_origin=True)
        self.next_id = 0
        self.requests: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def _event(self, msg):
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Network.loadingFailed":
            self.failed.append(f"{params.get('errorText')} {params.get('blockedReason', '')}".strip())
        elif method == "Runtime.exceptionThrown":
            d = params["exceptionDetails"]
            self.errors.append((d.get("exception") or {}).get("description") or d.get("text"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(params["entry"]["text"] + " " + params["entry"].get("url", ""))

    def call(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._event(msg)

    def js(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression, timeout=30, what=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.js(expression):
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what or expression}; page errors: {self.errors}")

    def goto(self, url):
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'", what=f"{url} to load")

    def screenshot(self, path: Path):
        import base64

        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self):
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def _only_local(browser, site_url):
    remote = [u for u in browser.requests if not u.startswith(site_url) and not u.startswith(("data:", "about:"))]
    assert remote == [], f"the site fetched from other hosts: {remote}"


def test_asv_index_and_a_benchmark_graph_render_offline(browser, site_url, tmp_path):
    browser.requests.clear()
    browser.errors.clear()
    browser.goto(f"{site_url}/index.html")
    # asv's own code ran on the vendored jQuery/flot/bootstrap/stupidtable/md5
    browser.wait_for("document.querySelectorAll('#summarygrid-display .benchmark-container').length >= 3 && "
                     "document.querySelectorAll('#summarygrid-display .benchmark-plot canvas').length >= 3",
                     what="asv's benchmark grid and its flot thumbnails")
    assert browser.js("typeof jQuery === 'function' && typeof jQuery.plot === 'function' && "
                      "typeof jQuery.fn.stupidtable === 'function' && typeof md5 === 'function' && "
                      "typeof jQuery.fn.modal === 'function'")
    names = browser.js("Array.from(document.querySelectorAll('.benchmark-text')).map(e => e.textContent)")
    assert any("track_outcome" in n for n in names), names
    # bootstrap's stylesheet applies (the navbar is fixed at the top)
    assert browser.js("getComputedStyle(document.getElementById('nav')).position") == "fixed"
    browser.screenshot(tmp_path / "asv-index.png")

    # the matrix page's link to this case's outcome graph
    browser.goto(f"{site_url}/matrix.html")
    href = browser.js("document.querySelector('#case-pydantic--toplevel_model .links a').getAttribute('href')")
    assert href.startswith("index.html#cells.Outcome.track_outcome?")
    browser.goto(f"{site_url}/{href}")
    browser.wait_for("document.querySelector('#main-graph canvas.flot-base') !== null && "
                     "document.querySelectorAll('#main-graph .flot-tick-label').length > 0",
                     what="the flot graph of cells.Outcome.track_outcome")
    assert browser.js("document.querySelector('#error').classList.contains('in')") is False
    labels = browser.js("Array.from(document.querySelectorAll('#main-graph .legendLabel')).map(e => e.textContent)")
    assert labels and all("pydantic/toplevel_model" in label for label in labels), labels
    # one point per env x method x context, at the harness commit: a flot series each
    assert browser.js("jQuery('#main-graph').data('plot').getData().length") == len(labels)
    shot = browser.screenshot(tmp_path / "asv-graph.png")
    assert shot.stat().st_size > 10_000
    _only_local(browser, site_url)
    assert browser.failed == [], browser.failed
    assert browser.errors == [], browser.errors


def test_matrix_page_shows_the_cells_filters_and_root_causes(browser, site_url, tmp_path):
    browser.requests.clear()
    browser.errors.clear()
    browser.goto(f"{site_url}/matrix.html")
    envs = browser.js("Array.from(document.querySelectorAll('th.env .env-id')).map(e => e.textContent)")
    assert envs[0] == A and envs.count(A) == 2 and B in envs and BROKEN in envs  # baseline, its A/A copy
    assert browser.js("document.querySelectorAll('tr.case-row').length") == 4
    # the flip of dask#11448: a top-level pydantic model in a notebook kernel fails on 2.8.2, passes on 2.9.2
    cells = browser.js("""(() => {
        const row = document.getElementById('case-pydantic--toplevel_model');
        return Array.from(row.querySelectorAll('td.env-cell')).map(td => ({
            env: td.dataset.env,
            kernel: Array.from(td.querySelectorAll('tr.c1 td.b')).map(b => [b.dataset.o, b.title])}));
    })()""")
    by_env = {c["env"].split("/")[1]: c["kernel"] for c in cells if "rep2" not in c["env"].split("/")[0]}
    before = next(v for k, v in by_env.items() if "pydantic2.8.2" in k)
    after = next(v for k, v in by_env.items() if "pydantic2.9.2" in k)
    client_compute = browser.js("Array.from(document.querySelectorAll('.f-method')).map(x => x.parentNode"
                                ".textContent.trim()).indexOf('Client.compute')")
    assert before[client_compute][0] == "serialize-error" and after[client_compute][0] == "pass"
    assert "TypeError: cannot pickle 'sqlite3.Connection' object" in before[client_compute][1]  # on hover
    # the env that could not be built is a column with the resolver's message
    assert "cloudpickle" in browser.js("document.querySelector('th.env.env-error pre').textContent")
    browser.screenshot(tmp_path / "matrix.png")

    # exception text arrives as text: the <locals>/<lambda> of a real PicklingError, no stray elements
    browser.js("document.querySelector('#case-escaping--pickle_local_lambda button.expand').click()")
    detail = browser.js("document.getElementById('case-escaping--pickle_local_lambda-detail')")
    assert detail is not None
    assert browser.js("!document.getElementById('case-escaping--pickle_local_lambda-detail').hidden")
    text = browser.js("document.getElementById('case-escaping--pickle_local_lambda-detail').innerText")
    assert "<locals>.<lambda>" in text
    assert browser.js("document.querySelectorAll('locals, lambda, function').length") == 0
    browser.screenshot(tmp_path / "matrix-expanded.png")

    # filters: surprises only, one family, one context
    browser.js("document.getElementById('f-surprises').click()")
    shown = browser.js("Array.from(document.querySelectorAll('tr.case-row:not([hidden])')).map(r => r.dataset.case)")
    surprising = browser.js("Array.from(document.querySelectorAll('tr.case-row')).filter(r => "
                            "r.querySelector('td.b.surprise')).map(r => r.dataset.case)")
    assert shown == surprising
    browser.js("document.getElementById('f-surprises').click()")
    browser.js("const s = document.getElementById('f-family'); s.value = 'pydantic';"
               "s.dispatchEvent(new Event('change', {bubbles: true}))")
    assert browser.js("Array.from(document.querySelectorAll('tr.case-row:not([hidden])')).map(r => r.dataset.case)"
                      ) == ["pydantic/toplevel_model"]
    browser.js("document.querySelectorAll('.f-context')[0].click()")  # hide the script context
    assert browser.js("getComputedStyle(document.querySelector('#case-pydantic--toplevel_model tr.c0'))"
                      ".display") == "none"
    browser.js("document.getElementById('f-differs').click()")
    assert browser.js("document.querySelectorAll('tr.case-row:not([hidden])').length") == 1
    assert "1 of 4 cases" in browser.js("document.getElementById('shown').textContent")
    browser.screenshot(tmp_path / "matrix-filtered.png")
    _only_local(browser, site_url)
    assert browser.errors == [], browser.errors


def test_review_page_from_the_matrix(browser, site_url, tmp_path):
    browser.goto(f"{site_url}/matrix.html")
    href = browser.js("Array.from(document.querySelectorAll('th.env a')).filter(a => "
                      "a.textContent === 'review vs baseline').map(a => a.getAttribute('href'))[0]")
    assert href == f"reviews/{A}..{B}.html"
    browser.goto(f"{site_url}/{href}")
    assert "nothing broke" in browser.js("document.getElementById('verdict').textContent")
    assert browser.js("document.querySelector('#summary td[data-kind=fixed]').textContent") == "2"
    assert "0 timing changes" in browser.js("document.getElementById('noise').textContent")
    browser.screenshot(tmp_path / "review.png")
