"""``nox -s report`` on a real mini matrix: real asv publish, pinned npm assets, the matrix in three forms."""

import json
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from picklematrix.report import assets, render
from picklematrix.report.asv_site import asv_graph_url

from .conftest import ROOT
from .reporting import BROKEN, A, B, preview_url, published, recorded


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    return recorded(tmp_path_factory)


@pytest.fixture(scope="module")
def pub(tmp_path_factory):
    return published(tmp_path_factory)


def report_cli(results, html, *args):
    return subprocess.run([sys.executable, "-m", "picklematrix.report", "--results", str(results), "--html",
                           str(html), *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def _env(matrix, env_id, replica=False):
    found = [e for e in matrix["environments"] if e["env_id"] == env_id and bool(e["replica_of"]) == replica]
    assert len(found) == 1, [e["key"] for e in matrix["environments"]]
    return found[0]


def _case(matrix, key):
    return next(c for c in matrix["cases"] if c["key"] == key)


@pytest.mark.slow
def test_report_builds_and_exits_0(pub):
    assert pub.proc.returncode == 0, pub.proc.stdout + pub.proc.stderr
    for name in ("index.html", "matrix.html", "table.md", "table.json", "graphs", "index.json"):
        assert (pub.site / name).exists(), name
    assert (pub.results / "table.md").exists() and (pub.results / "table.json").exists()


@pytest.mark.slow
def test_the_report_builds_without_node_or_npm(pub):
    """asv's web assets come from the npm registry by Python: node and npm were off PATH, the cache empty."""
    assert shutil.which("npm", path=pub.path) is None and shutil.which("node", path=pub.path) is None
    assert shutil.which("git", path=pub.path)  # the rest of the machine is there
    assert pub.proc.returncode == 0, pub.proc.stdout + pub.proc.stderr
    tarballs = sorted(p.name for p in pub.asset_cache.glob("*.tgz"))
    assert tarballs == sorted(f"{pkg.dirname}.tgz" for pkg in {a.package for a in assets.WEB_ASSETS})
    for pkg in {a.package for a in assets.WEB_ASSETS}:
        assert assets.matches_integrity((pub.asset_cache / f"{pkg.dirname}.tgz").read_bytes(), pkg.integrity)
    # the last line says how to look at it
    last = pub.proc.stdout.strip().splitlines()[-1]
    assert last.startswith("preview:") and f"picklematrix preview --html {pub.site}" in last, last


@pytest.mark.slow
def test_asv_pages_load_nothing_from_other_hosts(pub):
    index = (pub.site / "index.html").read_text()
    assert assets.remote_loads(index) == []
    assert "cdnjs" not in index and "cdn.jsdelivr" not in index and "code.jquery" not in index
    for asset in assets.WEB_ASSETS:
        local = pub.site / "vendor" / asset.package.dirname / asset.path
        assert local.is_file() and local.stat().st_size > 1000, local
        assert f'src="vendor/{asset.package.dirname}/{asset.path}"' in index or \
            f'href="vendor/{asset.package.dirname}/{asset.path}"' in index
    # bootstrap's css loads its fonts relative to itself
    assert (pub.site / "vendor/bootstrap-3.1.1/dist/fonts/glyphicons-halflings-regular.woff").is_file()
    manifest = json.loads((pub.site / "vendor" / "ASSETS.json").read_text())
    assert manifest["jquery-3.3.1"]["npm"] == "jquery@3.3.1" and manifest["jquery-3.3.1"]["licenses"]
    # byte-identical to what asv asked the CDN for: asv's own integrity attribute is kept, the browser checks it
    assert 'src="vendor/jquery-3.3.1/dist/jquery.min.js" integrity="sha256-FgpCb/' in index
    assert '<li id="nav-li-matrix"><a href="matrix.html">' in index
    for page in pub.site.rglob("*.html"):
        assert assets.remote_loads(page.read_text()) == [], page


@pytest.mark.slow
def test_table_json_holds_the_envs_the_error_and_the_flip(pub, rec):
    m = pub.table
    assert m["commit"] == rec.commit
    keys = [e["env_id"] for e in m["environments"]]
    assert keys[0] == A and _env(m, A)["baseline"]  # the baseline first
    assert _env(m, A, replica=True)["replica_of"] == _env(m, A)["key"]
    base = _env(m, A)
    assert base["label"] == ["py3.11.7", "cloudpickle 3.0.0", "dask 2024.6.2", "pydantic 2.8.2"]
    err = _env(m, BROKEN)
    assert err["kind"] == "env-error" and err["error"]["stage"] == "install"
    assert "cloudpickle" in err["error"]["message"]  # the resolver's own words
    assert set(m["contexts"]) == {"script", "kernel"} and len(m["methods"]) == 3
    top = _case(m, "pydantic/toplevel_model")
    before = top["cells"][base["key"]]["Client.compute|kernel"]
    after = top["cells"][_env(m, B)["key"]]["Client.compute|kernel"]
    assert before["outcome"] == "serialize-error" and after["outcome"] == "pass"
    rc = before["root_cause"]
    assert (rc["type"], rc["message"]) == ("TypeError", "cannot pickle 'sqlite3.Connection' object")
    assert "history_manager" in rc["path"]  # the path from the result to the culprit: IPython's history db
    assert top["differs"]
    assert not _case(m, "functions/lambda_square")["differs"]
    sidecar = rec.sidecar(A)
    assert sum(base["counts"].values()) == len(sidecar["cells"]) == 4 * 3 * 2
    assert base["surprises"] == sum(1 for c in sidecar["cells"] if c["surprise"])
    failing = [c for c in sidecar["cells"] if c["outcome"] in m["failures"] or c["outcome"] == "timeout"]
    assert base["failing"] == {"as-expected": sum(not c["surprise"] for c in failing),
                               "unexpected": sum(c["surprise"] for c in failing), "unknown": 0}
    assert base["failing"]["as-expected"] > 0  # a lock cannot be pickled, as its case says


@pytest.mark.slow
def test_table_md_is_a_compact_summary(pub):
    md = (pub.results / "table.md").read_text()
    assert len(md) < render.MD_LIMIT
    assert md.startswith("## picklematrix outcome table")
    assert f"`{BROKEN}` | could not be built (install)" in md
    assert "| pass | failing as expected | failing unexpectedly | ran locally | other | surprises |" in md
    base = next(e for e in pub.table["environments"] if e["baseline"])
    row = next(line for line in md.splitlines() if line.startswith(f"| `{A}` (baseline)"))
    assert f"| {base['counts']['pass']} | {base['failing']['as-expected']} | {base['failing']['unexpected']} |" in row
    differs = md.split("### Cells whose outcome differs between environments")[1].split("###")[0]
    row = next(line for line in differs.splitlines() if "toplevel_model" in line and "Client.compute @ kernel" in line)
    assert "serialize-error" in row and "sqlite3.Connection" in row and row.rstrip().endswith("✓ pass |")
    assert "lambda_square" not in differs


@pytest.mark.slow
def test_exception_text_is_escaped_everywhere(pub):
    """Root causes are real text like "<function pickle_a_local_lambda.<locals>.<lambda> at 0x...>"."""
    m = pub.table
    cells = [v for env in _case(m, "escaping/pickle_local_lambda")["cells"].values() for v in env.values() if v]
    messages = [v["root_cause"]["message"] for v in cells if v.get("root_cause")]
    assert any("<locals>" in msg and "<lambda>" in msg for msg in messages), messages
    html = (pub.site / "matrix.html").read_text()
    assert "<locals>" not in html and "<lambda>" not in html
    # in the page's data, "<" is a JSON escape (the browser test reads the text as the page shows it)
    assert "\\u003clocals\\u003e.\\u003clambda\\u003e" in html
    md = (pub.results / "table.md").read_text()
    for line in md.splitlines():
        # in markdown, an angle bracket outside a code span is always escaped the markdown way ("\<")
        outside = re.sub(r"(`+).*?\1", "", line)
        assert not re.search(r"(?<!\\)<", outside), line
        assert "&lt;" not in line, line


@pytest.mark.slow
def test_matrix_page_links_reviews_and_asv_graphs(pub):
    html = (pub.site / "matrix.html").read_text()
    assert f'href="reviews/{A}..{B}.html"' in html  # the baseline review, made by the report
    assert (pub.site / "reviews" / f"{A}..{B}.html").exists()
    assert "review vs baseline" in html
    graph = asv_graph_url("cells.Outcome.track_outcome", "pydantic/toplevel_model")
    # the case's envs side by side per method (asv's URL state), not asv's one-commit default view
    assert graph == "index.html#cells.Outcome.track_outcome?p-case=%27pydantic%2Ftoplevel_model%27&x-axis=method"
    assert f'href="{graph.replace("&", "&amp;")}"' in html
    # asv's graph page gets the script that lets it draw that view and moves the legend off the plot
    index = (pub.site / "index.html").read_text()
    assert '<script src="picklematrix-asv.js"></script>' in index and (pub.site / "picklematrix-asv.js").exists()
    benchmarks = json.loads((pub.results / "benchmarks.json").read_text())
    assert "'pydantic/toplevel_model'" in benchmarks["cells.Outcome.track_outcome"]["params"][0]


@pytest.mark.slow
def test_bad_and_foreign_results_are_named_and_the_rest_is_built(rec, tmp_path):
    results = rec.copy(tmp_path / "results")
    machine = results / rec.machine
    a_json = next(p for p in machine.glob("*.json") if "pydantic2.8.2" in p.name)
    b_json = next(p for p in machine.glob("*.json") if "pydantic2.9.2" in p.name)
    # 1. a truncated asv result (a crash mid-write)
    text = a_json.read_text()
    a_json.write_text(text[: len(text) // 2])
    # 2. a sidecar whose asv run never finished
    b_json.unlink()
    # 3. results from another harness commit (the parent commit, really in the repo)
    parent = subprocess.run(["git", "rev-parse", f"{rec.commit}~1"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.strip()
    replica_dir = results / rec.replica
    src = next(replica_dir.glob("*.outcomes"))
    old_sidecar = replica_dir / (parent[:8] + src.name[8:])
    data = json.loads(src.read_text())
    data["commit"] = parent
    old_sidecar.write_text(json.dumps(data))
    # 4. a sidecar cut off mid-write
    truncated = machine / (src.name[:9] + "picklematrix-py3.11.7-cloudpickle9.9.9-dask2024.6.2-distributed2024.6.2-"
                           "pydantic2.8.2.outcomes")
    truncated.write_text(src.read_text()[:300])
    # 5. an asv result whose sidecar is gone: outcomes come back from asv's outcome codes
    replica_counts = {}
    for cell in json.loads(src.read_text())["cells"]:
        replica_counts[cell["outcome"]] = replica_counts.get(cell["outcome"], 0) + 1
    src.unlink()

    proc = report_cli(results, tmp_path / "html", "--commit", rec.commit[:8])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    m = json.loads((results / "table.json").read_text())
    problems = {p["file"]: p["message"] for p in m["problems"]}
    assert "not a loadable asv result" in problems[str(a_json)]
    assert "without its asv result" in problems[str(b_json.with_suffix(".outcomes"))]
    assert f"recorded by harness commit {parent[:8]}" in problems[str(old_sidecar)]
    assert "unreadable outcome sidecar" in problems[str(truncated)]
    for name in (a_json.name, b_json.with_suffix(".outcomes").name, old_sidecar.name, truncated.name):
        assert name in proc.stderr  # named on the console too
    # the rest is still there: A's outcomes (from its sidecar) and B's, the env error, a working asv site
    assert {e["env_id"] for e in m["environments"]} == {A, B, BROKEN}
    assert (tmp_path / "html" / "index.html").exists() and (tmp_path / "html" / "graphs").is_dir()
    assert "no timings" in " ".join(_env(m, B)["notes"])
    assert "without its outcome sidecar" in problems[str(src.with_suffix(".json"))]
    replica = _env(m, A, replica=True)
    assert replica["counts"] == replica_counts and "no root causes" in " ".join(replica["notes"])
    strict = report_cli(results, tmp_path / "html2", "--commit", rec.commit[:8], "--strict")
    assert strict.returncode == 1


def test_no_results_is_bad_input(tmp_path):
    (tmp_path / "results").mkdir()
    proc = report_cli(tmp_path / "results", tmp_path / "html")
    assert proc.returncode == 2 and "no results" in proc.stderr
    proc = report_cli(tmp_path / "missing", tmp_path / "html")
    assert proc.returncode == 2 and "no such results directory" in proc.stderr


@pytest.mark.slow
def test_unknown_commit_is_bad_input(rec, tmp_path):
    proc = report_cli(rec.results, tmp_path / "html", "--commit", "00000000")
    assert proc.returncode == 2 and "no results for it" in proc.stderr and rec.commit[:8] in proc.stderr


def test_every_cdn_file_of_asvs_page_has_a_pinned_copy():
    import asv

    index = (Path(asv.__file__).parent / "www" / "index.html").read_text()
    urls = set(re.findall(r'(?:src|href)="(https://[^"]+)"', index))
    loaded = {u for u in urls if "github.com" not in u}
    assert loaded == {a.url for a in assets.WEB_ASSETS}


def test_an_unknown_cdn_file_stops_the_rewrite(tmp_path):
    page = '<script src="https://cdn.example.org/new-dependency.js"></script>'
    with pytest.raises(assets.AssetError, match="no pinned local copy"):
        assets.localize_html(page, tmp_path)


def test_a_tampered_tarball_is_never_used(tmp_path):
    md5 = next(a.package for a in assets.WEB_ASSETS if a.package.name == "blueimp-md5")
    pkg = assets.NpmPackage("blueimp-md5", "2.19.0", md5.integrity)
    cached = tmp_path / "blueimp-md5-2.19.0.tgz"
    cached.write_bytes(b"not the package")
    # re-fetched from the registry (by Python) and checked against the pin
    assert assets.matches_integrity(assets.fetch_package(pkg, tmp_path).read_bytes(), pkg.integrity)
    wrong = assets.NpmPackage("blueimp-md5", "2.19.0", "sha512-" + "A" * 86 + "==")
    with pytest.raises(assets.AssetError, match="does not match its pinned integrity"):
        assets.fetch_package(wrong, tmp_path / "other")
    assert not list((tmp_path / "other").glob("*.tgz"))  # nothing kept


def test_an_unreachable_registry_names_the_package_and_what_to_do(tmp_path, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        monkeypatch.setenv("PICKLEMATRIX_NPM_REGISTRY", f"http://127.0.0.1:{s.getsockname()[1]}")
    pkg = next(a.package for a in assets.WEB_ASSETS)
    with pytest.raises(assets.AssetError, match=f"cannot fetch {pkg.name}@{pkg.version} from the npm registry "
                                                r"http://127\.0\.0\.1:\d+ .*PICKLEMATRIX_NPM_REGISTRY"):
        assets.fetch_package(pkg, tmp_path)


def test_markdown_code_spans_survive_tables_and_markup():
    assert render.md_code("f.<locals>.<lambda>") == "`f.<locals>.<lambda>`"
    assert render.md_code("a|b") == "`a\\|b`"
    assert render.md_code("uses `x` inside") == "``uses `x` inside``"
    # markdown's own escapes, not HTML entities: "&lt;" is what a terminal would show
    assert render.md_text("<b>bold</b> | *x* &amp;") == "\\<b\\>bold\\</b\\> \\| \\*x\\* \\&amp;"


def test_our_messages_keep_their_code_spans_in_markdown_and_html():
    message = 'no A/A pair (record one with `PICKLEMATRIX_REPLICATE=2 nox -s "matrix(<baseline>)"`) <b>|'
    md = render.md_prose(message)
    assert md == 'no A/A pair (record one with `PICKLEMATRIX_REPLICATE=2 nox -s "matrix(<baseline>)"`) \\<b\\>\\|'
    assert str(render.html_prose(message)) == (
        'no A/A pair (record one with <code>PICKLEMATRIX_REPLICATE=2 nox -s &#34;matrix(&lt;baseline&gt;)&#34;'
        '</code>) &lt;b&gt;|')
    assert render.md_prose("an odd ` backtick") == "an odd \\` backtick"


def _preview(*args):
    return subprocess.Popen([sys.executable, "-m", "picklematrix", "preview", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_preview_serves_the_site_on_localhost_until_ctrl_c(tmp_path):
    site = tmp_path / "html"
    site.mkdir()
    (site / "matrix.html").write_text("<h1>Outcome matrix</h1>")
    (site / "index.json").write_text('{"project": "picklematrix"}')
    proc = _preview("--html", str(site))
    try:
        url = preview_url(proc)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/matrix\.html", url), url
        with urllib.request.urlopen(url, timeout=10) as f:
            assert f.read() == b"<h1>Outcome matrix</h1>" and f.headers["Cache-Control"] == "no-cache"
        with urllib.request.urlopen(url.replace("matrix.html", "index.json"), timeout=10) as f:
            assert json.load(f) == {"project": "picklematrix"}  # asv's pages load their data this way
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        proc.wait(timeout=20)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    with pytest.raises(OSError):  # the port is closed
        urllib.request.urlopen(url, timeout=5)


def test_preview_on_a_given_port_and_its_bad_input(tmp_path):
    import socket

    site = tmp_path / "html"
    site.mkdir()
    (site / "matrix.html").write_text("<h1>Outcome matrix</h1>")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        taken = _preview("--html", str(site), "--port", str(port))
        out, err = taken.communicate(timeout=60)
        assert taken.returncode == 2 and f"port {port} on 127.0.0.1 is taken" in err and "--port 0" in err
    proc = _preview("--html", str(site), "--port", str(port))  # free now
    try:
        assert preview_url(proc) == f"http://127.0.0.1:{port}/matrix.html"
        proc.terminate()  # SIGTERM stops it as Ctrl-C does
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    empty = _preview("--html", str(tmp_path / "nothing"))
    out, err = empty.communicate(timeout=60)
    assert empty.returncode == 2 and "no report in" in err and "./nox -s report" in err


def _site_files(site: Path) -> dict:
    """Every file asv wrote, its run's timestamps taken out (info.json's, the regressions feed's <updated>)."""
    out = {}
    for path in sorted(p for p in site.rglob("*") if p.is_file()):
        text = path.read_bytes()
        if path.name == "info.json":
            data = json.loads(text)
            data.pop("timestamp")
            text = json.dumps(data).encode()
        elif path.name == "regressions.xml":
            text = re.sub(rb"<updated>[^<]*</updated>", b"", text)
        out[str(path.relative_to(site))] = text
    return out


@pytest.mark.slow
def test_the_sped_up_asv_publish_writes_what_asv_writes(rec, tmp_path):
    """asv publish with picklematrix's speed-ups (asv_site.speed_up_publish) and plain asv publish: the same site."""
    from picklematrix.record.asvconf import write_config
    from picklematrix.report.asv_site import stage_results
    from picklematrix.report.results import load_results

    stage = tmp_path / "results"
    stage.mkdir()
    stage_results(load_results(rec.results), stage)
    sites = {}
    for name, command in (("asv", ["-m", "asv", "publish", "--config"]), ("sped-up", ["-m", "picklematrix.report.asv_site"])):
        conf = write_config(tmp_path / f"{name}.json", checkout=ROOT, results_dir=stage, html_dir=tmp_path / name,
                            env_dir=tmp_path / "env")
        proc = subprocess.run([sys.executable, *command, str(conf)], cwd=tmp_path, capture_output=True, text=True,
                              timeout=600, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        sites[name] = _site_files(tmp_path / name)
    assert any(k.startswith("graphs/") for k in sites["asv"]) and len(sites["asv"]) > 20
    assert sites["sped-up"].keys() == sites["asv"].keys()
    assert [k for k in sites["asv"] if sites["asv"][k] != sites["sped-up"][k]] == []


def test_a_one_point_series_is_fitted_as_asv_fits_it(monkeypatch):
    """The shortcut for one-point series gives what asv's own search gives, value for value."""
    import itertools
    import math

    from asv import graph, step_detect, util

    from picklematrix.report import asv_site

    # asv's functions as they were, once the test ends (the speed-ups are meant for asv publish's own process)
    for owner, name in ((step_detect, "solve_potts_autogamma"), (graph.GraphSet, "detect_steps"),
                        (graph.Graph, "get_steps"), (util, "sanitize_filename"), (util, "write_json")):
        monkeypatch.setattr(owner, name, getattr(owner, name))
    monkeypatch.setattr(graph.GraphSet, "_picklematrix_sped_up", False, raising=False)
    original = step_detect.solve_potts_autogamma
    asv_site.speed_up_publish(graph, util)
    assert step_detect.solve_potts_autogamma is not original
    values = [0.0, 1.0, -2.5, 1e-9, 3.3e-5, 0.021098459999990382, 7, 2**40, 1e300, -1e-300]
    weights = [1.0, 0.5, 2.0, 1e-6, 3.7]
    for y, w in itertools.product(values, weights):
        fast = step_detect.solve_potts_autogamma([y], [w])
        slow = original([y], [w])
        assert fast[:3] == slow[:3], (y, w, fast, slow)
        assert step_detect.detect_steps([y], [w]) == [(0, 1, *slow[1], min([y]), abs(slow[2][0]))]
    # longer series: asv's own search
    assert step_detect.solve_potts_autogamma([1.0, 2.0, 3.0], [1.0] * 3) == original([1.0, 2.0, 3.0], [1.0] * 3)
    assert not math.isnan(step_detect.detect_steps([None, 4.0], [None, 1.0])[0][2])


@pytest.mark.slow
def test_the_scale_benchs_results_are_real_results(rec, tmp_path):
    """bench/report_scale.py's generated envs read back as real records: every outcome asv's code agrees with."""
    import importlib.util

    from picklematrix.report.asv_results import cells_from_codes
    from picklematrix.report.results import load_results

    spec = importlib.util.spec_from_file_location("report_scale", ROOT / "bench" / "report_scale.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    made = bench.generate(rec.results, tmp_path / "results", n_envs=6, n_cases=10)
    assert made["envs"] == 6 and made["cases"] == 10
    rs = load_results(tmp_path / "results")
    assert rs.problems == [], rs.problems
    recs = rs.current()
    assert len(recs) == 6 and len({r.env_id for r in recs}) == 6
    for r in recs:
        assert len(r.cells) == made["cells"] == 10 * 6
        codes = cells_from_codes(r.asv_result)
        assert {k: c["outcome"] for k, c in codes.items()} == {k: c["outcome"] for k, c in r.cells.items()}
        assert all(c["surprise"] == (c["outcome"] != c["expected"]) for c in r.cells.values())
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "report_scale.py"), "--seed", str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2 and proc.stdout == "" and "no recorded env" in proc.stderr  # no figure printed


def test_every_outcome_has_its_mark_and_colours():
    """An outcome added to the vocabulary (picklematrix.outcomes) shows on the page: a mark, a cell colour and a
    colour in the envs' outcome bars."""
    from picklematrix.outcomes import OUTCOMES

    css = (Path(render.TEMPLATES) / "picklematrix.css").read_text()
    for outcome in OUTCOMES:
        assert outcome in render.OUTCOME_MARKS, outcome
        assert re.search(rf"^\.o-{outcome} \{{", css, flags=re.M), f"no cell colour for {outcome}"
        assert f"svg.bar .o-{outcome} {{ fill:" in css, f"no bar colour for {outcome}"
