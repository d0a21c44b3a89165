"""asv's site: staging the loadable results, running the real ``asv publish``, and links into its pages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

from picklematrix.pins import ASV
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


class Publishing:
    """A running ``asv publish`` (:func:`start_publish`): the report renders its own pages meanwhile."""

    def __init__(self, widened: dict, failed: str | None = None, proc=None, tmp=None, site: Path | None = None):
        self.widened, self.failed, self.proc, self.tmp, self.site = widened, failed, proc, tmp, site

    def wait(self, timeout: float = 600) -> tuple[bool, str]:
        """(ok, asv's output or why not), once asv is done."""
        if self.failed is not None:
            return False, self.failed
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
            out = f"{out}\nasv publish did not finish in {timeout:g} s: stopped"
        finally:
            self.tmp.cleanup()
        return self.proc.returncode == 0 and (self.site / "index.html").exists(), out.strip()


def start_publish(rs: ResultSet, site: Path, checkout: Path | None) -> Publishing:
    """Start the real ``asv publish`` into ``site`` (which it replaces whole: write there after :meth:`wait`).

    asv's configuration is the checkout's asv.conf.json (:mod:`picklematrix.record.asvconf`), pointed at a staged
    copy of the results; the params widened for it are known at once (``Publishing.widened``).
    """
    if checkout is None:
        return Publishing({}, "no picklematrix checkout to take asv's configuration from: run from the checkout "
                              "(as `nox -s report` does) or pass --checkout DIR")
    tmp = tempfile.TemporaryDirectory(prefix="picklematrix-publish-")
    stage = Path(tmp.name) / "results"
    stage.mkdir()
    widened = stage_results(rs, stage)
    failed = None
    if not any(stage.glob("*/machine.json")):
        failed = "no asv result could be published (every asv result file was unreadable or missing)"
    elif not (stage / "benchmarks.json").exists():
        failed = f"{rs.results_dir / 'benchmarks.json'} is missing or unreadable: asv cannot publish"
    else:
        try:
            conf = write_config(Path(tmp.name) / "asv.conf.json", checkout=checkout, results_dir=stage,
                                html_dir=site, env_dir=Path(tmp.name) / "env")
        except AsvConfigError as e:
            failed = str(e)
    if failed is not None:
        tmp.cleanup()
        return Publishing({}, failed)
    proc = subprocess.Popen([sys.executable, "-m", "picklematrix.report.asv_site", str(conf)], cwd=tmp.name,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return Publishing(widened, None, proc, tmp, site)


def asv_publish(rs: ResultSet, site: Path, checkout: Path | None) -> tuple[bool, str, dict]:
    """Run the real ``asv publish`` into ``site``. Returns (ok, asv's output or why not, params widened)."""
    publishing = start_publish(rs, site, checkout)
    ok, output = publishing.wait()
    return ok, output, publishing.widened


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


# --------------------------------------------------------------------------- asv publish, linear in the cells

SPED_UP_FOR = ASV.partition("==")[2]  # the asv these changes were read against (picklematrix.pins)
SERIAL_POINTS = 4  # a graph with this few commits: its step detection is cheaper here than in a worker process


def speed_up_publish(graph, util) -> None:
    """Make asv's publish linear in the number of cells, its output unchanged (asv 0.6.6's ``graph`` and ``util``).

    A result set of one harness commit is many graphs (a benchmark x an env) of many series (a case x method x
    context) of one point each. asv 0.6.6 spends, for a full profile (120 envs x 492 cells), most of a minute and
    a half in three places; each change below leaves every file it writes as it was:

    - ``GraphSet.detect_steps`` sends each series to a process pool: 177,120 one-point series, each a round trip
      through pickling worth far more than the step detection itself. With a few commits per graph the same
      function runs in this process (asv's own ``pool=None`` path).
    - ``Graph.get_steps`` walks every series of its graph on each call, to resolve the pool's results; the list
      view calls it for every series, so a graph's cost grows with the square of its series. Once resolved, it is
      returned as it is.
    - ``step_detect.solve_potts_autogamma`` searches for the best penalty of a piecewise fit, some 60 fits per
      series; a series of one point has one fit whatever the penalty (one piece: the point's median and
      distance, asv's own ``get_mu_dist``), which is what the search returns, so it is given at once. (Its fourth
      value, the penalty, is not used by asv's only caller, ``detect_steps``.)
    - ``util.sanitize_filename`` (a regular expression per graph parameter, 2.3 million calls) is a pure function
      of its text: its results are kept.
    - ``util.write_json(compact=True)`` (the graphs and the list view: 47 MB) streams through ``json.dump``,
      which is the encoder written in Python; the same text is made by ``json.dumps``'s C encoder and written.
    """
    import functools
    import math

    from asv import step_detect

    if getattr(graph.GraphSet, "_picklematrix_sped_up", False):
        return
    detect_steps, get_steps = graph.GraphSet.detect_steps, graph.Graph.get_steps
    autogamma = step_detect.solve_potts_autogamma

    def one_point_at_once(y, w, beta=None, **kw):
        if len(y) == 1 and beta is None and not kw:
            mu_dist = step_detect.get_mu_dist(y, w)
            value, dist = mu_dist.mu(0, 0), mu_dist.dist(0, 0)
            # asv keeps the first fit whose objective is below infinity: log(noise floor + misfit), as asv computes it
            objective = math.log(max(1e-300, 0.001 * abs(value)) + abs(y[0] - value) * w[0])
            if objective < math.inf:
                return [1], [value], [dist], None
        return autogamma(y, w, beta, **kw)

    def serial_when_small(self, pool=None, dots=None):
        if all(len(g.data_points) <= SERIAL_POINTS for g in self._graphs.values()):
            pool = None
        return detect_steps(self, pool, dots)

    def resolved_once(self):
        if getattr(self, "_picklematrix_resolved", False):
            return self._steps[0] if self.scalar_series else self._steps
        steps = get_steps(self)
        self._picklematrix_resolved = True
        return steps

    write_json = util.write_json

    def compact_in_one_go(path, data, api_version=None, compact=False):
        if not compact:
            return write_json(path, data, api_version, compact)
        # asv's write_json, its compact branch with json.dumps for json.dump: the same text
        path = os.path.abspath(path)
        dirname = util.long_path(os.path.dirname(path))
        if not os.path.exists(dirname):
            os.makedirs(dirname)
        if api_version is not None:
            data = dict(data)
            data["version"] = api_version
        with util.long_path_open(path, "w", encoding="utf-8") as fd:
            fd.write(json.dumps(data))

    util.write_json = compact_in_one_go
    step_detect.solve_potts_autogamma = one_point_at_once
    graph.GraphSet.detect_steps = serial_when_small
    graph.Graph.get_steps = resolved_once
    util.sanitize_filename = functools.lru_cache(maxsize=None)(util.sanitize_filename)
    graph.GraphSet._picklematrix_sped_up = True


def publish_main(argv: list) -> None:
    """``python -m picklematrix.report.asv_site CONFIG``: ``asv publish --config CONFIG``, in this process, with
    :func:`speed_up_publish` when asv is the pinned version (any other asv runs as it is)."""
    import asv
    from asv import graph, util
    from asv.main import main

    if asv.__version__ == SPED_UP_FOR:
        speed_up_publish(graph, util)
    sys.argv = ["asv", "publish", "--config", argv[0]]
    main()


if __name__ == "__main__":
    publish_main(sys.argv[1:])
