"""The published site in a real browser: Debian's chromium, headless, driven over the DevTools protocol.

The site is served from 127.0.0.1 by a local HTTP server; every request the page makes is recorded, so a
script or stylesheet fetched from anywhere else fails the test (there is no internet here to hide it).
Screenshots go to the test's own tmp directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from picklematrix.envs import venvs

from .conftest import ROOT
from .reporting import BROKEN, A, B, preview_url, published

pytestmark = pytest.mark.slow
_PUB: dict = {}  # the published report the site is served from (the tests' oracle)

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1000", "--remote-debugging-port=0"]


@pytest.fixture(scope="module")
def site_url(tmp_path_factory):
    """The site, served as a user serves it: ``picklematrix preview`` (``./nox -s preview``), node and npm off PATH."""
    pub = published(tmp_path_factory)
    assert pub.proc.returncode == 0, pub.proc.stdout + pub.proc.stderr
    _PUB["pub"] = pub
    proc = subprocess.Popen([sys.executable, "-m", "picklematrix", "preview", "--html", str(pub.site)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PATH=pub.path))
    try:
        yield preview_url(proc).removesuffix("/matrix.html")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
    # a cell's marks: one line per context, one mark per method; its tooltip is made when the pointer reaches it
    cells = browser.js("""(() => {
        const row = document.getElementById('case-pydantic--toplevel_model');
        return Array.from(row.querySelectorAll('td.env-cell')).map(td => ({
            env: td.dataset.env,
            kernel: Array.from(td.querySelectorAll('.mrow.c1 > i')).map(b => {
                b.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
                return [b.className.split(' ')[0].slice(2), b.title];
            })}));
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
                            "r.querySelector('.mrow > i.s')).map(r => r.dataset.case)")
    assert shown == surprising
    browser.js("document.getElementById('f-surprises').click()")
    browser.js("const s = document.getElementById('f-family'); s.value = 'pydantic';"
               "s.dispatchEvent(new Event('change', {bubbles: true}))")
    assert browser.js("Array.from(document.querySelectorAll('tr.case-row:not([hidden])')).map(r => r.dataset.case)"
                      ) == ["pydantic/toplevel_model"]
    browser.js("document.querySelectorAll('.f-context')[0].click()")  # hide the script context
    assert browser.js("getComputedStyle(document.querySelector('#case-pydantic--toplevel_model .mrow.c0'))"
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
    assert browser.js("getComputedStyle(document.querySelector('#case-pydantic--toplevel_model .mrow.c0'))"
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
    assert "2 fixed, 0 broken, 0 still failing unexpectedly (" in verdict and "nothing broke" in verdict, verdict
    # the cells failing as their cases expect: a number, their list folded away
    assert browser.js("document.querySelector('#summary td[data-kind=still-failing-unexpected]').textContent") == "0"
    assert int(browser.js("document.querySelector('#summary td[data-kind=still-failing-expected]').textContent")) > 0
    assert browser.js("document.getElementById('failing-as-expected').open") is False
    assert "containers/dict_with_lock" in browser.js("document.querySelector('#failing-as-expected table.still-failing')"
                                                     ".textContent")
    assert browser.js("document.querySelector('#summary td[data-kind=fixed]').textContent") == "2"
    assert "0 timing changes" in browser.js("document.getElementById('noise').textContent")
    browser.screenshot(tmp_path / "review.png")


def test_the_reviews_timing_chart_shows_each_cell_and_the_noise_band(browser, site_url, tmp_path):
    """The timing changes as a chart the page draws itself: a dot per timed cell at its ratio, the A/A band."""
    import math

    pub = published_site(site_url)
    review = pub["review"]
    browser.requests.clear()
    browser.errors.clear()
    browser.goto(f"{site_url}/reviews/{A}..{B}.html")
    chart = browser.js("""(() => {
        const svg = document.querySelector('#timing-chart svg'), box = svg.getBoundingClientRect();
        const dots = Array.from(svg.querySelectorAll('circle.dot')).map(c => {
            const b = c.getBoundingClientRect();
            return {ratio: Number(c.dataset.ratio), y: b.top + b.height / 2, w: b.width, title: c.textContent,
                    fill: getComputedStyle(c).fill};
        });
        const band = svg.querySelector('rect.noise-band'), one = svg.querySelector('line.one').getBoundingClientRect();
        const b = band && band.getBoundingClientRect();
        return {box: [box.width, box.height], dots, one: one.top,
                band: b && {top: b.top, bottom: b.bottom, lo: Number(band.dataset.lo), hi: Number(band.dataset.hi),
                            fill: getComputedStyle(band).fill}};
    })()""")
    timed = review["timing"]["cells"]
    assert timed and len(chart["dots"]) == len(timed), (len(chart["dots"]), len(timed))
    assert chart["box"][0] > 300 and chart["box"][1] > 100
    for dot, cell in zip(chart["dots"], timed):
        assert dot["w"] > 0 and cell["case"] in dot["title"] and cell["method"] in dot["title"]
        assert math.isclose(dot["ratio"], cell["ratio"], rel_tol=1e-9)
        # up is slower: a dot above the ×1 line took longer after the change
        assert (dot["y"] < chart["one"] - 0.5) == (math.log(cell["ratio"]) > 0.005) or abs(math.log(cell["ratio"])) < 0.05
    # the real A/A pair's band: the ratios the same env gives measured twice, drawn around ×1
    noise = review["noise"]
    assert chart["band"] and math.isclose(chart["band"]["lo"], noise["band"][0]) and \
        math.isclose(chart["band"]["hi"], noise["band"][1])
    assert chart["band"]["top"] <= chart["one"] + 1 and chart["band"]["bottom"] >= chart["one"] - 1
    assert chart["band"]["fill"] != chart["dots"][0]["fill"]
    browser.js("document.getElementById('timing-chart').scrollIntoView()")
    browser.screenshot(tmp_path / "review-chart.png")
    _only_local(browser, site_url)
    assert browser.errors == [], browser.errors


def published_site(site_url):
    """The review of A -> B the report wrote, as data (recomputed from the same results: what the page shows)."""
    from picklematrix.report import compare as rv
    from picklematrix.report.results import load_results

    pub = _PUB["pub"]
    rs = load_results(pub.results)
    return {"review": rv.build_review(rs, rv.resolve_env(rs, A, "from"), rv.resolve_env(rs, B, "to"))}


def test_each_envs_outcomes_are_a_bar_that_filters_the_matrix(browser, site_url, tmp_path):
    """Each env's outcomes as a stacked bar: a segment per outcome, as wide as its share; a click shows those cells."""
    table = _PUB["pub"].table
    browser.requests.clear()
    browser.errors.clear()
    browser.goto(f"{site_url}/matrix.html")
    bars = browser.js("""Array.from(document.querySelectorAll('th.env.result')).map(th => {
        const svg = th.querySelector('svg.bar'), box = svg.getBoundingClientRect();
        return {env: th.dataset.env, width: box.width, height: box.height,
                segs: Array.from(svg.querySelectorAll('rect.seg')).map(r => ({
                    o: r.dataset.o, s: r.dataset.s, n: Number(r.dataset.n), w: r.getBoundingClientRect().width,
                    fill: getComputedStyle(r).fill}))};
    })""")
    envs = {e["key"]: e for e in table["environments"] if e["kind"] == "result"}
    assert {b["env"] for b in bars} == set(envs) and not browser.js("document.querySelector('th.env.env-error svg')")
    for bar in bars:
        e = envs[bar["env"]]
        total = sum(e["counts"].values())
        assert bar["height"] > 4 and bar["width"] > 40
        by_outcome = {}
        for seg in bar["segs"]:
            by_outcome[seg["o"]] = by_outcome.get(seg["o"], 0) + seg["n"]
            assert abs(seg["w"] - bar["width"] * seg["n"] / total) < 1.5, (bar, seg)  # as wide as its share
        assert by_outcome == e["counts"]
        assert sum(s["n"] for s in bar["segs"] if s["s"] == "1") == e["surprises"]
        fills = {s["o"]: s["fill"] for s in bar["segs"]}
        assert len(set(fills.values())) == len(fills)  # one colour per outcome
    browser.screenshot(tmp_path / "matrix-bars.png")

    # a click on the baseline's serialize-error segment: the rows where that env has a serialize-error
    base = next(e for e in table["environments"] if e["baseline"])
    expect = sorted(c["key"] for c in table["cases"]
                    if any((v or {}).get("outcome") == "serialize-error" for v in c["cells"][base["key"]].values()))
    assert expect
    browser.js(f"document.querySelector('th.env[data-env=\"{base['key']}\"] rect.seg[data-o=serialize-error]"
               "[data-s=\"0\"]').dispatchEvent(new MouseEvent('click', {bubbles: true}))")
    assert sorted(_shown(browser)) == expect
    assert browser.js("[document.getElementById('f-env').value, document.getElementById('f-outcome').value]") == \
        [base["key"], "serialize-error"]
    assert "outcome=serialize-error" in browser.js("location.search")
    assert browser.js("document.querySelectorAll('svg.bar rect.seg.on').length") == 1
    # again: every row
    browser.js(f"document.querySelector('th.env[data-env=\"{base['key']}\"] rect.seg.on')"
               ".dispatchEvent(new MouseEvent('click', {bubbles: true}))")
    assert len(_shown(browser)) == len(table["cases"]) and browser.js("location.search") == ""
    # from the keyboard: a segment takes the focus, Enter filters as a click does
    assert browser.js(f"(() => {{ const r = document.querySelector('th.env[data-env=\"{base['key']}\"] "
                      "rect.seg[data-o=serialize-error][data-s=\"0\"]'); r.focus(); "
                      "r.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true})); "
                      "return document.activeElement === r; })()")
    assert sorted(_shown(browser)) == expect
    _only_local(browser, site_url)
    assert browser.errors == [], browser.errors
