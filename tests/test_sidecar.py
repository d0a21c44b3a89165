"""The outcome sidecar (picklematrix.sidecar): what the harness writes is what the report and asv read."""

import json
import os

import pytest

from picklematrix import sidecar
from picklematrix.outcomes import OUTCOMES
from picklematrix.sidecar import FORMAT, SidecarError, SidecarWriter, cell_key, partial_path, read

HEAD = {"env": {"python": "3.11.7", "versions": {"cloudpickle": "3.0.0", "dask": "2024.6.2",
                                                 "distributed": "2024.6.2", "pydantic": None}},
        "env_id": "cp3.0.0-dask2024.6.2-pyd2.8.2-py3.11", "commit": "0123abcd", "machine": "m",
        "case_dirs": [], "broken_cases": []}


def _cell(case="plain", outcome="pass", **more):
    return {"case": case, "family": "fam", "method": "Client.compute", "context": "script", "outcome": outcome,
            "expected": "pass", "surprise": outcome != "pass", "root_cause": None, "seconds": 0.01,
            "samples": [0.01], "graph_bytes": 100, "detail": None, **more}


def test_round_trip_keeps_head_cells_completeness_and_timing(tmp_path):
    path = tmp_path / "run.outcomes"
    writer = SidecarWriter(path, HEAD)
    cells = [_cell("a"), _cell("b", "serialize-error", root_cause={"type": "TypeError", "message": "<lambda>"})]
    for cell in cells:
        writer.add(cell)
    timing = {"cluster_start_seconds": 1.5, "run_seconds": 9.0, "cells": 2, "compute_seconds": 0.02}
    writer.finish(cluster={"address": "tcp://127.0.0.1:1", "owned": True}, timing=timing)

    got = read(path, outcomes=OUTCOMES)
    assert got.complete and got.malformed == 0
    assert got.cells == cells
    assert got.head == {**HEAD, "cluster": {"address": "tcp://127.0.0.1:1", "owned": True}, "timing": timing}
    assert got.python == "3.11.7" and got.versions["dask"] == "2024.6.2"
    assert set(got.by_key()) == {"fam/a|Client.compute|script", "fam/b|Client.compute|script"}
    assert cell_key(cells[0]) == "fam/a|Client.compute|script"
    assert json.loads(path.read_text())["format"] == FORMAT


def test_a_partial_run_reads_as_incomplete(tmp_path):
    path = tmp_path / "run.outcomes"
    writer = SidecarWriter(path, HEAD)
    writer.add(_cell("a"))  # the harness died here: never finished
    assert not path.exists()  # the progress is staged beside it, never in its place
    got = read(partial_path(path))
    assert got.complete is False
    assert [c["case"] for c in got.cells] == ["a"]


def test_an_unfinished_run_leaves_the_previous_complete_sidecar_in_place(tmp_path):
    path = tmp_path / "run.outcomes"
    first = SidecarWriter(path, HEAD)
    first.add(_cell("a"))
    first.add(_cell("b"))
    first.finish()
    before = path.read_text()
    again = SidecarWriter(path, HEAD)
    again.start()
    again.add(_cell("a", "serialize-error"))  # stopped here
    assert path.read_text() == before and read(path).complete
    assert read(partial_path(path)).complete is False
    again.add(_cell("b"))
    again.finish()
    assert read(path).complete and [c["outcome"] for c in read(path).cells] == ["serialize-error", "pass"]
    assert not partial_path(path).exists()


def test_without_staging_the_progress_is_written_in_place(tmp_path):
    path = tmp_path / "run.outcomes"
    writer = SidecarWriter(path, HEAD, staging=False)
    writer.add(_cell("a"))
    assert read(path).complete is False and not partial_path(path).exists()
    writer.finish()
    assert read(path).complete


def test_a_truncated_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "run.outcomes"
    writer = SidecarWriter(path, HEAD)
    writer.add(_cell("a"))
    writer.finish()
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(SidecarError, match="not valid JSON") as e:
        read(path)
    assert str(path) in str(e.value)


def test_a_missing_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(SidecarError) as e:
        read(tmp_path / "nothing.outcomes")
    assert str(tmp_path / "nothing.outcomes") in str(e.value)


def test_malformed_cells_are_left_out_and_counted(tmp_path):
    path = tmp_path / "run.outcomes"
    writer = SidecarWriter(path, HEAD)
    writer.add(_cell("good"))
    writer.add(_cell("odd", outcome="passed"))  # no such outcome
    writer.add({"case": "half"})  # fields missing
    writer.finish()
    got = read(path, outcomes=OUTCOMES)
    assert [c["case"] for c in got.cells] == ["good"] and got.malformed == 2
    # without the outcome vocabulary, only missing fields make a cell malformed
    assert read(path).malformed == 1


def test_a_newer_format_is_refused(tmp_path):
    path = tmp_path / "run.outcomes"
    path.write_text(json.dumps({"format": FORMAT + 1, **HEAD, "complete": True, "cells": []}))
    with pytest.raises(SidecarError, match="newer") as e:
        read(path)
    assert str(path) in str(e.value)


def test_not_a_sidecar_is_refused(tmp_path):
    path = tmp_path / "run.outcomes"
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(SidecarError, match="not an outcome sidecar"):
        read(path)


def test_writes_leave_no_temporary_files(tmp_path):
    path = tmp_path / "deeper" / "run.outcomes"  # the directory is made as needed
    writer = SidecarWriter(path, HEAD)
    for case in "abc":
        writer.add(_cell(case))
    writer.finish()
    assert os.listdir(path.parent) == ["run.outcomes"]


def test_the_progress_grows_by_a_line_per_cell_and_a_line_cut_short_is_left_out(tmp_path):
    """A cell costs one append of its own line (rewriting the whole file after every cell cost the square of
    the number of cells); a stop in the middle of an append leaves the cells before it readable."""
    path = tmp_path / "run.outcomes"
    writer = SidecarWriter(path, HEAD)
    writer.start()
    sizes = []
    for case in "abc":
        writer.add(_cell(case))
        sizes.append(partial_path(path).stat().st_size)
    line = len(json.dumps(_cell("a"))) + 1
    assert sizes[1] - sizes[0] == line and sizes[2] - sizes[1] == line  # appended, nothing rewritten
    with open(partial_path(path), "a") as f:
        f.write(json.dumps(_cell("d"))[:40])  # the harness was stopped mid-write
    got = read(partial_path(path), outcomes=OUTCOMES)
    assert got.complete is False and [c["case"] for c in got.cells] == ["a", "b", "c"] and got.malformed == 0
    assert got.head == HEAD


def test_a_cut_line_before_the_last_is_not_taken_for_progress(tmp_path):
    path = tmp_path / "run.outcomes"
    writer = SidecarWriter(path, HEAD, staging=False)
    writer.add(_cell("a"))
    text = path.read_text()
    path.write_text(text + '{"case": "b", "fam\n' + json.dumps(_cell("c")) + "\n")
    with pytest.raises(SidecarError, match="not valid JSON"):
        read(path)


def test_a_failed_replace_leaves_the_progress_intact(tmp_path, monkeypatch):
    path = tmp_path / "run.outcomes"
    writer = SidecarWriter(path, HEAD, staging=False)
    writer.add(_cell("a"))
    writer.add(_cell("b"))
    before = path.read_text()

    def refuse(src, dst):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(sidecar.os, "replace", refuse)
    with pytest.raises(OSError):
        writer.finish()
    monkeypatch.undo()
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["run.outcomes"]
    assert [c["case"] for c in read(path).cells] == ["a", "b"] and read(path).complete is False


def test_an_unwritable_place_is_an_error_naming_it(tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("a file where the results directory should be")
    path = blocker / "machine" / "run.outcomes"
    writer = SidecarWriter(path, HEAD)
    with pytest.raises(SidecarError) as e:
        writer.add(_cell("a"))
    assert str(path) in str(e.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_a_read_only_directory_is_an_error_naming_it(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    results.chmod(0o555)
    try:
        with pytest.raises(SidecarError) as e:
            SidecarWriter(results / "run.outcomes", HEAD).add(_cell("a"))
        assert str(results / "run.outcomes") in str(e.value)
    finally:
        results.chmod(0o755)


def test_without_a_path_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    writer = SidecarWriter(None, HEAD)
    writer.add(_cell("a"))
    writer.finish()
    assert os.listdir(tmp_path) == []


def test_a_recording_adds_its_own_head_fields_to_a_complete_sidecar(tmp_path):
    path = tmp_path / "run.outcomes"
    writer = SidecarWriter(path, HEAD)
    writer.add(_cell("a"))
    writer.finish(timing={"cells": 1})
    requirements = {"file": "freeze.txt", "sha256": "ab", "pins": "all", "left_out": [],
                    "skipped": [{"line": 3, "package": "mine", "reason": "an editable install", "text": "-e ."}]}
    sidecar.add_head(path, requirements=requirements)
    found = read(path)
    assert found.requirements == requirements and found.head["timing"] == {"cells": 1} and found.complete
    assert [c["case"] for c in found.cells] == ["a"] and read(path).head["env_id"] == HEAD["env_id"]
    assert read(tmp_path / "run.outcomes").requirements and not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(SidecarError, match="cannot add requirements"):
        sidecar.add_head(tmp_path / "missing.outcomes", requirements={})
