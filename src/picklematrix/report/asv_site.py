"""asv's site: staging the loadable results, running the real ``asv publish``, and links into its pages."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

from picklematrix.record.asvconf import AsvConfigError, write_config
from picklematrix.report.asv_results import param_value
from picklematrix.report.results import ResultSet
from picklematrix.run.selection import COMPUTE, GRAPH_SIZE, OUTCOME
from picklematrix.versions import ABSENT, AXES

NAV_LINK = '<li id="nav-li-matrix"><a href="matrix.html">Outcome matrix</a></li>'


def stage_results(rs: ResultSet, stage: Path) -> dict:
    """A results dir asv can publish without tripping: only loadable files, one benchmarks.json for all.

    ``benchmarks.json`` is rewritten by every ``asv run`` with the params of that run's corpus
    (``--only``, ``PICKLEMATRIX_ONLY``); asv drops from its graphs every result whose params it does not list.
    The staged copy lists every case/method/context some result has. Returns {benchmark: values added per param}.
    """
    machines = set()
    union: dict[str, list] = {}
    for r in rs.recordings:
        if r.asv_path is None or r.asv_result is None:
            continue
        machine_json = r.asv_path.parent / "machine.json"
        if not machine_json.exists():
            continue
        dest = stage / r.machine
        dest.mkdir(parents=True, exist_ok=True)
        if r.machine not in machines:
            shutil.copy2(machine_json, dest / "machine.json")
            machines.add(r.machine)
        shutil.copy2(r.asv_path, dest / r.asv_path.name)
        for key in (OUTCOME, GRAPH_SIZE, COMPUTE):
            slots = union.setdefault(key, [])
            for i, values in enumerate(r.asv_result.get_result_params(key) or []):
                while len(slots) <= i:
                    slots.append([])
                slots[i].extend(v for v in values if v not in slots[i])
    if not rs.benchmarks:
        return {}
    benchmarks = json.loads(json.dumps(rs.benchmarks))
    widened = {}
    for key, params in union.items():
        old = (benchmarks.get(key) or {}).get("params")
        if not old or len(old) != len(params):
            continue
        new = [_merge_params(o, u) for o, u in zip(old, params)]
        if new != old:
            widened[key] = [len(n) - len(o) for o, n in zip(old, new)]
            benchmarks[key]["params"] = new
    (stage / "benchmarks.json").write_text(json.dumps(benchmarks, indent=1))
    return widened


def _merge_params(old: list, found: list) -> list:
    added = [v for v in found if v not in old]
    if not added:
        return list(old)
    merged = list(old) + added
    if all("/" in param_value(v) for v in merged):  # case keys: family/case, sorted as the suite sorts them
        merged.sort(key=param_value)
    return merged


def asv_publish(rs: ResultSet, site: Path, checkout: Path | None) -> tuple[bool, str, dict]:
    """Run the real ``asv publish`` into ``site``. Returns (ok, asv's output or why not, params widened).

    asv's configuration is the checkout's asv.conf.json (:mod:`picklematrix.record.asvconf`), pointed at a staged
    copy of the results.
    """
    if checkout is None:
        return False, ("no picklematrix checkout to take asv's configuration from: run from the checkout "
                       "(as `nox -s report` does) or pass --checkout DIR"), {}
    with tempfile.TemporaryDirectory(prefix="picklematrix-publish-") as tmp:
        stage = Path(tmp) / "results"
        stage.mkdir()
        widened = stage_results(rs, stage)
        if not any(stage.glob("*/machine.json")):
            return False, "no asv result could be published (every asv result file was unreadable or missing)", {}
        if not (stage / "benchmarks.json").exists():
            return False, f"{rs.results_dir / 'benchmarks.json'} is missing or unreadable: asv cannot publish", {}
        try:
            conf = write_config(Path(tmp) / "asv.conf.json", checkout=checkout, results_dir=stage, html_dir=site,
                                env_dir=Path(tmp) / "env")
        except AsvConfigError as e:
            return False, str(e), {}
        proc = subprocess.run([sys.executable, "-m", "asv", "publish", "--config", str(conf)],
                              capture_output=True, text=True, timeout=600, cwd=tmp, check=False)
        output = (proc.stdout + proc.stderr).strip()
        ok = proc.returncode == 0 and (site / "index.html").exists()
        return ok, output, widened


def add_nav_link(html: str) -> str:
    """asv's index.html with a link to the matrix page in its navigation bar."""
    anchor = '<li id="nav-li-regressions">'
    if anchor in html and NAV_LINK not in html:
        return html.replace(anchor, NAV_LINK + "\n\t" + anchor, 1)
    return html


GRAPH_FIXES = "picklematrix-asv.js"
GRAPH_FIXES_CSS = """<style id="picklematrix-asv">
  /* the legend's column, right of the plot (picklematrix-asv.js moves the legend there) */
  #graph.pm-with-legend > div:first-child, #graph.pm-with-legend > div:nth-child(2) { right: 330px !important; }
  #pm-legend { position: absolute; top: 48px; right: 0; width: 320px; bottom: 0; overflow: auto; font-size: 11px; }
  #pm-legend table { width: 100%; }
  #pm-legend td.legendLabel { padding: 1px 4px; word-break: break-word; }
</style>
"""


def add_graph_fixes(html: str, site: Path, default_x_axis: str | None = None) -> str:
    """asv's index.html with picklematrix-asv.js (after flot's plugins) and its styles; the script is copied in.

    Every picklematrix link to a graph sets a benchmark parameter as x axis, which asv 0.6.6 cannot draw
    without it (the script says why), and the legend would cover the plot. ``default_x_axis``: the parameter a
    graph opened without an x axis in its URL (from asv's own grid or list) gets; None keeps asv's (commits).
    """
    script = (Path(__file__).resolve().parent / "templates" / GRAPH_FIXES).read_text()
    (site / GRAPH_FIXES).write_text(script.replace("var DEFAULT_X_AXIS = null;",
                                                   f"var DEFAULT_X_AXIS = {json.dumps(default_x_axis)};", 1))
    tag = f'<script src="{GRAPH_FIXES}"></script>\n'
    if GRAPH_FIXES in html or "</head>" not in html:
        return html
    return html.replace("</head>", tag + GRAPH_FIXES_CSS + "</head>", 1)


def asv_graph_url(benchmark: str, case_key: str, env: dict | None = None) -> str:
    """A link into asv's graph page showing one case across envs (asv matches params by their repr).

    asv's URL state (graphdisplay.js): ``p-<param>`` selects parameter values, ``x-axis`` puts a parameter on
    the x axis. The harness commit, asv's default x axis, is one point per env, so the x axis is the compute
    method: a group of bars per method, one bar per env and context, named in the legend beside the plot.
    ``env`` (a table environment) narrows the graph to its versions, as asv's requirement filters name them.
    """
    parts = [f"p-case={quote(repr(case_key), safe='')}", "x-axis=method"]
    if env:
        for name in (a for a in AXES if a != "python"):
            value = (env.get("versions") or {}).get(name)
            parts.append(f"{name}={quote(value or ABSENT, safe='')}")
    return f"index.html#{benchmark}?{'&'.join(parts)}"
