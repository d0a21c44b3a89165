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

from picklematrix.envs import venvs

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

        chromium = venvs.find_chromium()
        if chromium is None:
            pytest.fail(venvs.chromium_missing())  # never a skip: a test that cannot run has not passed
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
    # a graph opened from asv's own grid (no x axis in its URL) compares the envs per method too: the results
    # hold one harness commit, where asv's default axis (commits) is a single column of points
    link = browser.js("document.querySelector('#summarygrid-display a.benchmark-container[href*=\"track_outcome\"]')"
                      ".getAttribute('href')")
    assert link == "#cells.Outcome.track_outcome", link
    browser.goto("about:blank")
    browser.goto(f"{site_url}/index.html{link}")
    browser.wait_for("location.hash.includes('x-axis=method') && jQuery('#main-graph').data('plot') && "
                     "jQuery('#main-graph').data('plot').getData().length > 0", what="the grid's graph, per method")
    view = _graph_view(browser)
    assert view["bars"] and view["xs"] and view["finite"] and not view["legendInPlot"], view
    browser.screenshot(tmp_path / "asv-graph-from-grid.png")
    _only_local(browser, site_url)
    assert browser.failed == [], browser.failed
    assert browser.errors == [], browser.errors


def _graph_view(browser):
    """What asv's graph page shows: flot's series (finite bars?), the axis, the legend and where it sits."""
    return browser.js("""(() => {
        const plot = jQuery('#main-graph').data('plot');
        const xs = plot.getData().map(s => s.datapoints.points.filter((v, i) => i % s.datapoints.pointsize === 0
                                                                       && v !== null));
        const box = r => { const b = r.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
        const legend = document.querySelector('#pm-legend table');
        return {series: plot.getData().length, bars: plot.getData().every(s => s.bars.show),
                xs: xs.flat(), finite: xs.flat().every(Number.isFinite),
                axis: plot.getAxes().xaxis.ticks.map(t => t.label),
                labels: Array.from(document.querySelectorAll('#main-graph .legendLabel, #pm-legend .legendLabel'))
                    .map(e => e.textContent),
                legendInPlot: document.querySelector('#main-graph .legend') !== null,
                legendBox: legend ? box(legend) : null, plotBox: box(document.querySelector('#main-graph canvas.flot-base'))};
    })()""")


@pytest.mark.parametrize("which", ["outcome graph", "timing graph"])
def test_the_matrix_pages_graph_links_compare_the_case_across_envs(browser, site_url, tmp_path, which):
    """A case's graph, opened from the matrix page: its envs side by side per method, the legend beside the plot.

    asv's default view (x axis: harness commits) is a single column of points under a legend that covers them.
    """
    browser.requests.clear()
    browser.errors.clear()
    browser.goto(f"{site_url}/matrix.html")
    href = browser.js("Array.from(document.querySelectorAll('#case-pydantic--toplevel_model .links a'))"
                      f".find(a => a.textContent === {which!r}).getAttribute('href')")
    benchmark = "cells.Outcome.track_outcome" if which == "outcome graph" else "cells.Compute.time_compute"
    assert href.startswith(f"index.html#{benchmark}?") and "x-axis=method" in href, href
    browser.goto(f"{site_url}/{href}")
    browser.wait_for("document.querySelector('#main-graph canvas.flot-base') !== null && "
                     "jQuery('#main-graph').data('plot') && jQuery('#main-graph').data('plot').getData().length > 0 "
                     "&& document.querySelectorAll('#pm-legend .legendLabel').length > 0",
                     what=f"the flot graph of {benchmark} with its legend")
    assert browser.js("document.querySelector('#error').classList.contains('in')") is False
    view = _graph_view(browser)
    # the case picked, the methods on the x axis, a bar per env and context
    assert view["labels"] and all("pydantic/toplevel_model" in label for label in view["labels"]), view
    assert view["series"] == len(view["labels"]) and view["bars"], view
    assert set(view["axis"]) >= {"dask.compute", "Client.compute"}, view
    assert view["xs"] and view["finite"], view  # asv 0.6.6 alone gives every bar x = NaN: nothing drawn
    if which == "outcome graph":  # every cell has an outcome: 3 methods x 6 series (3 envs x 2 contexts)
        assert len(view["xs"]) == 3 * view["series"], view
        assert len({round(x, 6) for x in view["xs"]}) == len(view["xs"]), "bars drawn over each other"
    # the legend is beside the plot, not over it
    assert not view["legendInPlot"] and view["legendBox"][0] >= view["plotBox"][2], view
    assert len({env for label in view["labels"] for env in [label]}) == view["series"]
    shot = browser.screenshot(tmp_path / f"asv-{which.replace(' ', '-')}.png")
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


def _shown(browser):
    return browser.js("Array.from(document.querySelectorAll('tr.case-row:not([hidden])')).map(r => r.dataset.case)")


def test_matrix_page_answers_at_a_glance(browser, site_url, tmp_path):
    """The rows that differ are named at the top; headers and the case column stay put; a link keeps the view."""
    browser.requests.clear()
    browser.errors.clear()
    browser.goto(f"{site_url}/matrix.html")
    # the differing rows (dask#11448's flip here), listed where the page opens, each an anchor to its row
    links = browser.js("Array.from(document.querySelectorAll('#differing li > a')).map(a => [a.textContent, "
                       "a.getAttribute('href'), a.getBoundingClientRect().bottom <= innerHeight])")
    assert links == [["pydantic/toplevel_model", "#case-pydantic--toplevel_model", True]], links
    summary = browser.js("document.querySelector('#differing li').textContent")
    assert "C.c @ kernel" in summary and "serialize-error" in summary and "pass" in summary, summary
    browser.js("document.querySelector('#differing li > a').click()")
    browser.wait_for("document.querySelector('#case-pydantic--toplevel_model button.expand')"
                     ".getAttribute('aria-expanded') === 'true'", what="the linked row to open")
    # the row is in view, just under the sticky headers (not hidden behind them)
    row_top, heads, header_bottom = browser.js("""[
        document.getElementById('case-pydantic--toplevel_model').getBoundingClientRect().top,
        parseFloat(getComputedStyle(document.documentElement).getPropertyValue('--heads')),
        document.querySelector('#matrix thead tr.axis th').getBoundingClientRect().bottom]""")
    assert browser.js("scrollY") > 0
    assert header_bottom - 2 <= row_top <= header_bottom + 40 and abs(heads - header_bottom) < 2, (row_top, heads,
                                                                                                 header_bottom)
    filters_bottom = browser.js("document.getElementById('filters').getBoundingClientRect().bottom")
    env_header_top = browser.js("document.querySelector('#matrix thead th.env').getBoundingClientRect().top")
    assert abs(env_header_top - filters_bottom) < 2, (env_header_top, filters_bottom)  # stuck under the filters
    assert browser.js("getComputedStyle(document.querySelector('tr.case-row > th.case')).position") == "sticky"
    assert browser.js("getComputedStyle(document.querySelector('tr.case-row > th.case')).left") == "0px"
    browser.screenshot(tmp_path / "matrix-linked-row.png")

    # filters live in the query string: a link reproduces the view
    b_key = browser.js("document.querySelector('th.env:not(.replica)[data-env*=\"pydantic2.9.2\"]').dataset.env")
    browser.js("const t = document.getElementById('f-text'); t.value = 'toplevel';"
               "t.dispatchEvent(new Event('input', {bubbles: true}))")
    browser.wait_for("location.search.includes('q=toplevel')", what="the text filter in the URL")
    assert _shown(browser) == ["pydantic/toplevel_model"]
    browser.goto(f"{site_url}/matrix.html?outcome=serialize-error")
    assert _shown(browser) == ["containers/dict_with_lock", "pydantic/toplevel_model"]
    browser.js(f"const e = document.getElementById('f-env'); e.value = {b_key!r};"
               "e.dispatchEvent(new Event('change', {bubbles: true}))")
    assert _shown(browser) == ["containers/dict_with_lock"]  # pydantic 2.9.2 fixed the model
    assert browser.js("document.querySelectorAll('#matrix thead th.env:not(.env-hidden)').length") == 1
    url = browser.js("location.href")
    assert "outcome=serialize-error" in url and "env=" in url
    browser.goto("about:blank")
    browser.goto(url)
    assert browser.js("[document.getElementById('f-outcome').value, document.getElementById('f-env').value]") == \
        ["serialize-error", b_key]
    assert _shown(browser) == ["containers/dict_with_lock"]
    browser.goto(f"{site_url}/matrix.html?differs=1&family=pydantic&hide-c=0")
    assert browser.js("document.getElementById('f-differs').checked") is True
    assert _shown(browser) == ["pydantic/toplevel_model"]
    assert browser.js("getComputedStyle(document.querySelector('#case-pydantic--toplevel_model tr.c0'))"
                      ".display") == "none"
    browser.screenshot(tmp_path / "matrix-from-url.png")
    # a link to a row the filters hide clears them rather than landing nowhere
    browser.goto(f"{site_url}/matrix.html?family=functions#case-pydantic--toplevel_model")
    assert "pydantic/toplevel_model" in _shown(browser)
    _only_local(browser, site_url)
    assert browser.errors == [], browser.errors


def test_review_page_from_the_matrix(browser, site_url, tmp_path):
    browser.goto(f"{site_url}/matrix.html")
    href = browser.js("Array.from(document.querySelectorAll('th.env a')).filter(a => "
                      "a.textContent === 'review vs baseline').map(a => a.getAttribute('href'))[0]")
    assert href == f"reviews/{A}..{B}.html"
    browser.goto(f"{site_url}/{href}")
    verdict = browser.js("document.getElementById('verdict').textContent")
    assert "2 fixed, 0 broken, " in verdict and "nothing broke" in verdict, verdict
    assert "containers/dict_with_lock" in browser.js("document.querySelector('table.still-failing').textContent")
    assert browser.js("document.querySelector('#summary td[data-kind=fixed]').textContent") == "2"
    assert "0 timing changes" in browser.js("document.getElementById('noise').textContent")
    browser.screenshot(tmp_path / "review.png")
