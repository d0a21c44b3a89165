"""The upgrade review on real recorded results: flips, exit status, noise from a real A/A pair, bad input."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from picklematrix.report import compare as rv
from picklematrix.report.results import Recording, ResultSet, load_results
from picklematrix.report.review import render_review_md

from .conftest import ROOT
from .reporting import BROKEN, A, B, recorded

TOPLEVEL_KERNEL = {("pydantic/toplevel_model", "dask.compute", "kernel"),
                   ("pydantic/toplevel_model", "Client.compute", "kernel")}


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    return recorded(tmp_path_factory)


def review_cli(results, *args, out=None):
    cmd = [sys.executable, "-m", "picklematrix", "review", "--results", str(results), *args]
    if out is not None:
        cmd += ["--out", str(out)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def _keys(flips):
    return {(f["case"], f["method"], f["context"]) for f in flips}


@pytest.mark.slow
def test_the_pydantic_fix_is_reported_as_fixed_cells(rec, tmp_path):
    proc = review_cli(rec.results, "--from", A, "--to", B, out=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    md = proc.stdout
    assert "Changed: **pydantic** 2.8.2 → 2.9.2" in md
    # the verdict comes first: counts, then what they mean
    verdict = md.split("\n\n")[1]
    assert verdict.startswith(f"**✅ {len(TOPLEVEL_KERNEL)} fixed, 0 broken, ") and "0 not compared" in verdict, md
    assert "timings: 0 slower, 0 faster beyond ×1.1**" in verdict
    assert md.split("\n\n")[2].startswith(f"Nothing broke, every cell compared, nothing got slower beyond ×1.1; "
                                           f"the change fixes {len(TOPLEVEL_KERNEL)} cell(s)")
    # the notebook namespace capture (sqlite3.Connection of IPython's history) is gone with pydantic 2.9
    fixed = md.split("### Fixed (fail → pass)")[1].split("###")[0]
    assert "`pydantic/toplevel_model`" in fixed and "kernel" in fixed
    assert "cannot pickle 'sqlite3.Connection' object" in fixed
    assert "lambda_square" not in fixed  # passes in both
    written = sorted(p.name for p in tmp_path.iterdir())
    assert f"{A}..{B}.md" in written and f"{A}..{B}.html" in written
    assert (tmp_path / f"{A}..{B}.md").read_text() == md.rstrip("\n") + "\n" or md.startswith(
        (tmp_path / f"{A}..{B}.md").read_text()[:200])


@pytest.mark.slow
def test_the_reverse_direction_breaks_and_exits_1(rec, tmp_path):
    proc = review_cli(rec.results, "--from", B, "--to", A, "--quiet", out=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    review = _review(rec, B, A)
    assert _keys(review["flips"]["broken"]) == TOPLEVEL_KERNEL
    assert review["exit_status"] == 1 and "broke" in review["verdict"]
    assert review["verdict"].startswith(f"0 fixed, {len(TOPLEVEL_KERNEL)} broken, ")
    assert review["verdict_lines"][1].startswith(f"{len(TOPLEVEL_KERNEL)} cell(s) broke")
    assert "nothing broke" not in " ".join(review["verdict_lines"]).lower()
    html = (tmp_path / f"{B}..{A}.html").read_text()
    assert 'class="verdict bad"' in html and "sqlite3.Connection" in html


def _review(rec, a, b, **kw):
    rs = load_results(rec.results)
    return rv.build_review(rs, rv.resolve_env(rs, a, "from"), rv.resolve_env(rs, b, "to"), **kw)


@pytest.mark.slow
def test_flips_cover_every_cell_that_changed_and_no_other(rec):
    review = _review(rec, A, B)
    cells_a = {(c["family"] + "/" + c["case"], c["method"], c["context"]): c["outcome"]
               for c in rec.sidecar(A)["cells"]}
    cells_b = {(c["family"] + "/" + c["case"], c["method"], c["context"]): c["outcome"]
               for c in rec.sidecar(B)["cells"]}
    changed = {k for k in cells_a if k in cells_b and cells_a[k] != cells_b[k]}
    listed = set().union(*(_keys(v) for v in review["flips"].values()))
    assert TOPLEVEL_KERNEL <= _keys(review["flips"]["fixed"])
    assert changed <= listed, changed - listed
    assert review["cells_compared"] == len(set(cells_a) & set(cells_b)) == 4 * 3 * 2


@pytest.mark.slow
def test_cells_still_failing_as_expected_are_a_count(rec, tmp_path):
    """What the upgrade does not fix, as the cases expect it (a lock cannot be pickled): counted, never listed in
    the verdict or the markdown; the HTML keeps them, folded, grouped by case and root cause."""
    review = _review(rec, A, B)
    still = {g["case"]: g for g in review["still_failing"]}
    lock = still["containers/dict_with_lock"]
    assert lock["root_cause"]["type"] == "TypeError" and "_thread.lock" in lock["root_cause"]["message"]
    assert lock["expectation"] == "as-expected" and lock["expected"] == lock["outcome"]
    assert "pydantic/toplevel_model" not in still and "functions/lambda_square" not in still  # fixed / passing
    n = sum(len(g["cells"]) for g in review["still_failing"])
    assert n > 0 and review["still_failing_counts"] == {"as-expected": n, "unexpected": 0, "unknown": 0}
    assert review["verdict"].startswith(f"2 fixed, 0 broken, 0 still failing unexpectedly ({n} as expected), ")
    assert review["verdict_lines"][1].endswith(f"nothing still fails unexpectedly; {n} cell(s) fail as their "
                                               "cases expect")
    proc = review_cli(rec.results, "--from", A, "--to", B, out=tmp_path)
    assert "### Still failing unexpectedly" not in proc.stdout
    section = proc.stdout.split("### Failing as expected")[1].split("###")[0]
    assert f"{n} cell(s) in {len(still)} case(s) fail before and after, as their cases expect" in section
    assert "dict_with_lock" not in section  # a count, not a list
    # the local-lambda root cause is full of <locals>: as text in the HTML's folded list
    html = (tmp_path / f"{A}..{B}.html").read_text()
    folded = html.split('<details class="as-expected" id="failing-as-expected">')[1].split("</details>")[0]
    assert 'class="plain still-failing as-expected"' in folded and "containers/dict_with_lock" in folded
    assert "&lt;locals&gt;" in folded and "<locals>" not in html


def _surprising(results, env_id, case, expected="pass"):
    """Make ``case``'s cells in ``env_id``'s sidecar say the case expected ``expected``: a surprise where they fail."""
    path = next(p for p in results.glob("*/*.outcomes") if json.loads(p.read_text())["env_id"] == env_id)
    data = json.loads(path.read_text())
    changed = 0
    for cell in data["cells"]:
        if f"{cell['family']}/{cell['case']}" == case:
            cell["expected"], cell["surprise"] = expected, cell["outcome"] != expected
            changed += cell["surprise"]
    path.write_text(json.dumps(data))
    return changed


@pytest.mark.slow
def test_a_cell_still_failing_unexpectedly_leads_the_verdict(rec, tmp_path):
    """The case says it passes there, yet it fails before and after: named in the verdict and listed."""
    results = rec.copy(tmp_path / "results")
    n = sum(len(g["cells"]) for g in _review(rec, A, B)["still_failing"] if g["case"] == "containers/dict_with_lock")
    assert n > 0 and _surprising(results, B, "containers/dict_with_lock") >= n
    rs = load_results(results)
    review = rv.build_review(rs, rv.resolve_env(rs, A, "from"), rv.resolve_env(rs, B, "to"))
    counts = review["still_failing_counts"]
    assert counts["unexpected"] == n and counts["as-expected"] > 0
    assert review["verdict"].startswith(f"2 fixed, 0 broken, {n} still failing unexpectedly "
                                        f"({counts['as-expected']} as expected), ")
    assert f"{n} cell(s) in 1 case(s) still fail unexpectedly" in review["verdict_lines"][1]
    assert review["exit_status"] == 0  # it failed before the change too: the change did not break it
    proc = review_cli(results, "--from", A, "--to", B, out=tmp_path / "out")
    section = proc.stdout.split(f"### Still failing unexpectedly ({n} cell(s) in 1 case(s))")[1].split("###")[0]
    row = next(line for line in section.splitlines() if "`containers/dict_with_lock`" in line)
    assert "| serialize-error | pass |" in row and "_thread.lock" in row and "C.c @ script" in row
    assert proc.stdout.index("### Still failing unexpectedly") < proc.stdout.index("### Failing as expected")
    html = (tmp_path / "out" / f"{A}..{B}.html").read_text()
    assert 'class="plain still-failing unexpected"' in html
    assert f'data-kind="still-failing-unexpected">{n}<' in html


@pytest.mark.slow
def test_a_cell_without_a_recorded_expectation_is_never_counted_as_expected(rec, tmp_path):
    """An asv result whose sidecar is gone: outcomes from asv's codes, no expectation: counted apart."""
    results = rec.copy(tmp_path / "results")
    sidecar_b = next(p for p in results.glob("*/*.outcomes") if json.loads(p.read_text())["env_id"] == B
                     and "rep" not in p.parent.name)
    sidecar_b.unlink()
    rs = load_results(results)
    a = rv.resolve_env(rs, A, "from")
    b = next(r for r in rs.current() if r.asv_path is not None and r.asv_path.stem == sidecar_b.stem)
    review = rv.build_review(rs, a, b)
    counts = review["still_failing_counts"]
    assert counts["unknown"] > 0 and counts["as-expected"] == 0 and counts["unexpected"] == 0
    assert f"({'0 as expected'}, {counts['unknown']} with no recorded expectation)" in review["verdict"]


@pytest.mark.slow
def test_a_large_review_fits_a_pr_comment_verdict_and_changes_first(rec, tmp_path):
    """A profile of thousands of cells: the markdown stays under GitHub's 65,536 characters, and says where the rest is."""
    rs = load_results(rec.results)
    a, b = rv.resolve_env(rs, A, "from"), rv.resolve_env(rs, B, "to")
    # the real cells, as if the corpus were 600 times bigger (every real outcome and root cause, many cases)
    for r in (a, b):
        r.cells = {(f"{k[0]}_{i:03d}", k[1], k[2]): v for i in range(600) for k, v in r.cells.items()}
        r.timings = {}
    review = rv.build_review(rs, a, b)
    md = render_review_md(review, str(tmp_path / "full.html"))
    assert len(md) < 65536, len(md)
    assert md.split("\n\n")[1].startswith(f"**✅ {600 * len(TOPLEVEL_KERNEL)} fixed, 0 broken")
    assert md.index("### Fixed") < md.index("### Failing as expected")
    assert "### Still failing unexpectedly" not in md  # every cell still failing fails as its case expects
    assert "left out to fit a PR comment" in md
    assert md.rstrip().endswith(f"the whole review is in `{tmp_path / 'full.html'}`.**")


@pytest.mark.slow
def test_a_version_change_picks_the_same_pair(rec, tmp_path):
    by_change = review_cli(rec.results, "--change", "pydantic=2.8.2..2.9.2", out=tmp_path)
    by_from = review_cli(rec.results, "--from", A, "--change", "pydantic=2.9.2", out=tmp_path)  # NAME=B from A
    by_ids = review_cli(rec.results, "--from", A, "--to", B, out=tmp_path)
    assert by_change.returncode == by_from.returncode == by_ids.returncode == 0, by_change.stderr + by_from.stderr
    def strip(md):
        return md.split("**Noise:**")[0]

    assert strip(by_change.stdout) == strip(by_ids.stdout) == strip(by_from.stdout)


@pytest.mark.slow
def test_the_real_aa_pair_shows_no_timing_change(rec):
    review = _review(rec, A, B)
    noise = review["noise"]
    assert noise["pair"] == {"a": f"{rec.machine}/{_env_name(rec, A)}", "b": f"{rec.replica}/{_env_name(rec, A)}"}
    assert noise["compared"] >= 4, noise  # the passing script cells are timed by asv
    assert noise["changes"] == 0 and noise["safe"] is True, noise
    assert "shows 0 timing changes" in noise["message"] and "safe" in noise["message"]


def _env_name(rec, env_id):
    for path in (rec.results / rec.machine).glob("*.outcomes"):
        if json.loads(path.read_text())["env_id"] == env_id:
            return path.stem.split("-", 1)[1]
    raise AssertionError(env_id)


@pytest.mark.slow
def test_a_noisy_aa_pair_makes_the_threshold_unsafe(rec, tmp_path):
    # The replica's asv timings made 1000x slower, with tight intervals: the same env "measured twice" now
    # differs, which is exactly what the A/A check is there to catch. (x20 with the intervals scaled along was
    # not enough on a loaded machine: 3 samples can give a 99% interval 20 times wider than its low end.)
    results = rec.copy(tmp_path / "results")
    for path in (results / rec.replica).glob("*.json"):
        if path.name == "machine.json":
            continue
        data = json.loads(path.read_text())
        row = data["results"]["cells.Compute.time_compute"]
        columns = data["result_columns"]
        values = row[columns.index("result")]
        slow = [v * 1000 if isinstance(v, (int, float)) else v for v in values]
        for name, scale in (("result", 1), ("stats_ci_99_a", 0.99), ("stats_ci_99_b", 1.01), ("stats_q_25", 0.995),
                            ("stats_q_75", 1.005)):
            i = columns.index(name)
            if i < len(row) and row[i] is not None:
                row[i] = [v * scale if isinstance(v, (int, float)) else old for v, old in zip(slow, row[i])]
        path.write_text(json.dumps(data))
    proc = review_cli(results, "--from", A, "--to", B, out=tmp_path / "out")
    assert "UNSAFE threshold" in proc.stdout, proc.stdout + proc.stderr
    rs = load_results(results)
    noise = rv.measure_noise(rs, rv.resolve_env(rs, A, "from"), 1.1, None)
    assert noise["safe"] is False and noise["changes"] >= 1
    assert noise["safe_factor"] is None or noise["safe_factor"] > 10 or "re-run with `--factor" in noise["message"]


@pytest.mark.slow
def test_bad_input_exits_2_and_names_what_exists(rec, tmp_path):
    unknown = review_cli(rec.results, "--from", "cp9.9.9-dask1.0-pyd0.1-py3.99", "--to", B)
    assert unknown.returncode == 2
    assert "no such environment" in unknown.stderr and A in unknown.stderr and B in unknown.stderr
    broken = review_cli(rec.results, "--from", A, "--to", BROKEN)
    assert broken.returncode == 2 and "could not be built" in broken.stderr and "env-error" in broken.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    none = review_cli(empty, "--from", A, "--to", B)
    assert none.returncode == 2 and "no results" in none.stderr
    missing = review_cli(tmp_path / "nowhere", "--from", A, "--to", B)
    assert missing.returncode == 2 and "no such results directory" in missing.stderr
    nothing = review_cli(rec.results)
    assert nothing.returncode == 2 and "--from ENV --to ENV" in nothing.stderr
    bad_change = review_cli(rec.results, "--change", "pydantic=2.8.2..9.9.9")
    assert bad_change.returncode == 2 and "differ only in pydantic" in bad_change.stderr


@pytest.mark.slow
def test_partial_and_orphaned_results_are_named_in_the_review(rec, tmp_path):
    results = rec.copy(tmp_path / "results")
    sidecar_b = next(p for p in (results / rec.machine).glob("*.outcomes") if "pydantic2.9.2" in p.name)
    data = json.loads(sidecar_b.read_text())
    data["cells"] = data["cells"][:10]
    data["complete"] = False
    sidecar_b.write_text(json.dumps(data))
    sidecar_b.with_suffix(".json").unlink()  # the asv result of B is gone: no timings for B
    proc = review_cli(results, "--from", A, "--to", B, out=tmp_path / "out")
    # 14 cells were never compared: never "nothing broke", always exit 1
    assert proc.returncode == 1, proc.stderr
    assert "nothing broke" not in proc.stdout.lower() and "14 cell(s) could not be compared" in proc.stdout
    assert "14 not compared (partial record)" in proc.stdout.split("\n\n")[1]
    assert "partial run" in proc.stdout and sidecar_b.name in proc.stdout
    assert "outcome sidecar without its asv result" in proc.stdout
    assert "Cells only in the from-env: 14" in proc.stdout


@pytest.mark.slow
def test_without_an_aa_pair_the_noise_is_not_measured(rec, tmp_path):
    results = rec.copy(tmp_path / "results")
    shutil.rmtree(results / rec.replica)
    proc = review_cli(results, "--from", A, "--to", B, out=tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert "noise not measured" in proc.stdout and "PICKLEMATRIX_REPLICATE=2" in proc.stdout
    # the command to run, as typed: a code span in the markdown the terminal shows, no HTML entities
    assert '`PICKLEMATRIX_REPLICATE=2 nox -s "matrix(<baseline>)"`' in proc.stdout and "&lt;" not in proc.stdout
    html = (tmp_path / "out" / f"{A}..{B}.html").read_text()
    assert "noise not measured" in html
    assert "<code>PICKLEMATRIX_REPLICATE=2 nox -s &#34;matrix(&lt;baseline&gt;)&#34;</code>" in html
    named = review_cli(rec.results, "--from", A, "--to", B, "--aa", "no-such-machine", out=tmp_path / "out2")
    assert named.returncode == 0 and "no recording of" in named.stdout


def test_flip_classification():
    def cell(outcome, rc=None):
        return {"outcome": outcome, "root_cause": {"type": rc, "message": ""} if rc else None}

    assert rv.classify_flip(cell("serialize-error", "TypeError"), cell("pass")) == "fixed"
    assert rv.classify_flip(cell("pass"), cell("task-error", "ValueError")) == "broken"
    assert rv.classify_flip(cell("pass"), cell("timeout")) == "broken"
    assert rv.classify_flip(cell("serialize-error", "TypeError"), cell("serialize-error", "PicklingError")) == \
        "failure-changed"
    assert rv.classify_flip(cell("serialize-error", "TypeError"), cell("deserialize-error", "TypeError")) == \
        "failure-changed"
    assert rv.classify_flip(cell("pass"), cell("ran-locally")) == "other"
    assert rv.classify_flip(cell("ran-locally"), cell("ran-locally")) is None
    assert rv.classify_flip(cell("serialize-error", "TypeError"), cell("serialize-error", "TypeError")) is None


def test_the_noise_hint_reads_as_typed_in_markdown():
    """Without an A/A pair the review says how to record one; the terminal shows the command as typed."""
    a = Recording(machine="m", commit="c" * 40, env_name="envA", env_id="A")
    b = Recording(machine="m", commit="c" * 40, env_name="envB", env_id="B")
    rs = ResultSet(results_dir=Path("results"), recordings=[a, b], problems=[], commit="c" * 40, benchmarks=None)
    md = render_review_md(rv.build_review(rs, a, b))
    noise = next(line for line in md.splitlines() if line.startswith("**Noise:**"))
    assert '`PICKLEMATRIX_REPLICATE=2 nox -s "matrix(<baseline>)"`' in noise
    assert "&lt;" not in md and "&gt;" not in md


def _stats(samples):
    from asv_runner.statistics import compute_stats

    return compute_stats(samples, 1)


# (a's samples, b's samples, factor): what asv compare decides for these is what faster_beyond must decide
TIMING_CASES = [
    ([1.0, 1.01, 0.99], [1.2, 1.21, 1.19], 1.1),   # 20% apart, tight intervals: a change
    ([1.0, 1.01, 0.99], [1.05, 1.06, 1.04], 1.1),  # 5% apart: below the factor
    ([1.0, 2.0, 3.0], [1.5, 2.6, 3.5], 1.1),       # beyond the factor, but the intervals overlap
    ([1.0, 1.5, 0.5], [2.0, 2.1, 1.9], 1.1),       # 2x apart, a's interval wide but clear of b's
    ([1.0], [1.2], 1.1),                           # one sample each: the factor alone
    ([1.0], [1.05], 1.1),
    ([1.0, 1.0, 1.0], [1.0, 1.0, 1.0], 1.1),       # identical
    ([0.010, 0.011, 0.0105], [0.030, 0.031, 0.029], 2.0),
    ([0.010, 0.011, 0.0105], [0.030, 0.031, 0.029], 3.5),
]


@pytest.mark.parametrize("xs, ys, factor", TIMING_CASES)
def test_faster_beyond_decides_as_asv_compare(xs, ys, factor):
    from asv.commands.compare import _is_result_better  # asv's private rule, as the oracle only

    (va, sa), (vb, sb) = _stats(xs), _stats(ys)
    for (v1, s1, x1), (v2, s2, x2) in (((va, sa, xs), (vb, sb, ys)), ((vb, sb, ys), (va, sa, xs))):
        assert rv.faster_beyond(v1, v2, s1, s2, factor) == _is_result_better(v1, v2, (s1, x1), (s2, x2), factor)
        assert rv.faster_beyond(v1, v2, None, None, factor) == _is_result_better(v1, v2, None, None, factor)


def test_faster_beyond_needs_the_factor_and_separate_intervals():
    tight_a, tight_b = _stats([1.0, 1.01, 0.99]), _stats([1.2, 1.21, 1.19])
    assert rv.faster_beyond(tight_a[0], tight_b[0], tight_a[1], tight_b[1], 1.1)
    assert not rv.faster_beyond(tight_b[0], tight_a[0], tight_b[1], tight_a[1], 1.1)  # slower, not faster
    wide_a, wide_b = _stats([1.0, 2.0, 3.0]), _stats([1.5, 2.6, 3.5])
    assert wide_a[0] < wide_b[0] / 1.1 and not rv.faster_beyond(wide_a[0], wide_b[0], wide_a[1], wide_b[1], 1.1)
    one_a, one_b = _stats([1.0]), _stats([1.2])  # one sample: infinite intervals, the factor decides
    assert rv.faster_beyond(one_a[0], one_b[0], one_a[1], one_b[1], 1.1)
