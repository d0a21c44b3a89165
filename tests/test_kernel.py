"""The kernel context: cells run in a real IPython kernel, reused across cells."""

import json
import os
import stat

import pytest

from picklematrix import outcomes as oc
from picklematrix.versions import installed_version


@pytest.fixture(scope="module")
def krunner(cluster, tmp_path_factory):
    from picklematrix.run.runner import CellRunner

    r = CellRunner(cluster, log_dir=str(tmp_path_factory.mktemp("kernel-logs")))
    yield r
    r.close()


def test_kernel_is_started_once_and_private(krunner, fixture_cases):
    for method in ("dask.compute", "Client.compute", "dask.compute(client=)"):
        krunner.run(fixture_cases["plain_pass"], method, "kernel")
    kernel = krunner.kernel
    assert kernel.starts == 1
    assert stat.S_IMODE(os.stat(kernel.tmp).st_mode) & 0o777 == 0o700  # jupyter adds the sticky bit
    connection = json.loads(open(kernel.km.connection_file).read())
    assert connection["transport"] == "ipc" and os.path.dirname(connection["ip"]) == kernel.tmp
    assert os.path.dirname(kernel.km.connection_file) == kernel.tmp


def _tcp_listening_ports(pid: int) -> set:
    """The TCP ports process ``pid`` listens on."""
    sockets = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:  # closed since the listing (the last cell's client closes in a thread)
            continue
        if target.startswith("socket:["):
            sockets.add(target[len("socket:["):-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in sockets:  # LISTEN, and the process's own
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_the_kernel_channels_are_unix_sockets(krunner, fixture_cases):
    """Not TCP ports picked before the kernel binds them, which another process could take first."""
    assert krunner.run(fixture_cases["plain_pass"], "dask.compute", "kernel").outcome == oc.PASS
    kernel = krunner.kernel
    connection = json.loads(open(kernel.km.connection_file).read())
    channels = [connection[f"{name}_port"] for name in ("shell", "iopub", "stdin", "control", "hb")]
    assert not set(channels) & _tcp_listening_ports(kernel.km.provisioner.process.pid)
    for port in channels:
        assert stat.S_ISSOCK(os.stat(f"{connection['ip']}-{port}").st_mode)


def test_a_long_tmpdir_puts_the_kernel_sockets_in_a_short_one(tmp_path, monkeypatch):
    import tempfile

    from picklematrix.run.kernel import KernelSession

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    kernel = KernelSession()
    try:
        assert kernel.tmp.startswith(str(deep)) and not kernel.sockets.startswith(str(deep))
        kernel.start()
        reply = kernel.execute("print(6 * 7)", 30)
        assert reply.status == "ok" and reply.stdout == ["42"]
    finally:
        kernel.close()
    assert not os.path.exists(kernel.tmp) and not os.path.exists(kernel.sockets)


def test_kernel_cells_classify_like_script_cells(krunner, fixture_cases):
    assert krunner.run(fixture_cases["plain_pass"], "Client.compute", "kernel").outcome == oc.PASS
    assert krunner.run(fixture_cases["plain_pass"], "dask.compute(client=)", "kernel").outcome == oc.RAN_LOCALLY
    cell = krunner.run(fixture_cases["task_raises"], "Client.compute", "kernel")
    assert cell.outcome == oc.TASK_ERROR and cell.root_cause["type"] == "ZeroDivisionError"
    assert krunner.run(fixture_cases["cell_not_applicable"], "dask.compute", "kernel").outcome == oc.NOT_APPLICABLE
    assert krunner.run(fixture_cases["no_result_bound"], "dask.compute", "kernel").outcome == oc.HARNESS_ERROR


def _cases(tmp_path, sources: dict) -> dict:
    from picklematrix.run.corpus import load_corpus

    (tmp_path / "cases").mkdir()
    for name, source in sources.items():
        (tmp_path / "cases" / f"{name}.py").write_text(source)
    cases, problems = load_corpus([str(tmp_path / "cases")])
    assert not problems, problems
    return {c.case_id: c for c in cases}


def test_a_kernel_cell_is_done_before_its_client_has_closed(krunner, fixture_cases, tmp_path):
    """As in the script context, the client closes while the harness checks the cluster, and the next
    case starts only once it has: here the close takes 2 s and then leaves a file."""
    from picklematrix.run.corpus import load_corpus

    closed = tmp_path / "closed"
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "slow_close.py").write_text(
        'CASE = {"family": "outcomes", "summary": "a client whose close takes 2 s", "expect": "pass"}\n'
        "import time\n"
        "import dask\n"
        f"client.close = lambda *args, **kwargs: (time.sleep(2), open({str(closed)!r}, 'a').write('x'))\n"
        "result = dask.delayed(sum)([1, 2])\n"
        "expected = 3\n")
    (tmp_path / "cases" / "after_close.py").write_text(
        'CASE = {"family": "outcomes", "summary": "runs after the slow close", "expect": "pass"}\n'
        "import dask\n"
        f"assert open({str(closed)!r}).read() == 'x', 'the last client is not closed (once) yet'\n"
        "result = dask.delayed(sum)([3, 4])\n"
        "expected = 7\n")
    cases, problems = load_corpus([str(tmp_path / "cases")])
    assert not problems, problems
    after_close, slow_close = sorted(cases, key=lambda c: c.case_id)
    assert krunner.run(slow_close, "Client.compute", "kernel").outcome == oc.PASS
    assert not closed.exists()  # still closing
    cell = krunner.run(after_close, "dask.compute", "kernel")
    assert cell.outcome == oc.PASS, cell  # its cell ran once the close was done, and it was done once


def test_the_notebooks_client_passes_to_the_next_case_only_when_nothing_of_it_changed(krunner, tmp_path):
    """A notebook user makes one client: a case that does not name it leaves it to the next case of the same
    kind (dask's default scheduler or not); one that names it, or a case of the other kind, gets a new one.
    Each case sees a client whose id the task reads back from ``client.id`` captured in the notebook."""
    record = tmp_path / "ids"
    probe = ('CASE = {{"family": "outcomes", "summary": "records its client", "expect": "pass"}}\n'
             "import dask\n"
             "{line}\n"
             "result = dask.delayed(sum)([1, 2])\n"
             "expected = 3\n")
    cases = _cases(tmp_path, {
        "quiet": probe.format(line=f"open({str(record)!r}, 'a').write(get_ipython().user_ns['cli' + 'ent'].id + ' ')"),
        "names": probe.format(line=f"open({str(record)!r}, 'a').write(client.id + ' ')"),
    })
    grid = [("quiet", "dask.compute"), ("quiet", "Client.compute"), ("names", "dask.compute"),
            ("quiet", "Client.compute"), ("quiet", "dask.compute(client=)"), ("quiet", "dask.compute")]
    kernel = krunner._kernel()
    kept, ahead = kernel.clients_kept, kernel.prepared_ahead
    for i, (case, method) in enumerate(grid):
        following = grid[i + 1][1] if i + 1 < len(grid) else None
        cell = krunner.run(cases[case], method, "kernel", next_kernel=following)
        assert cell.outcome == (oc.RAN_LOCALLY if method == "dask.compute(client=)" else oc.PASS), cell
    ids = record.read_text().split()
    # kept after a quiet case, for a case of the same kind (twice: the case that names it gets it too); new
    # after the case that named it, and for each change of kind
    assert ids[0] == ids[1] == ids[2] and len({ids[2], ids[3], ids[4], ids[5]}) == 4, ids
    assert krunner.kernel.clients_kept == kept + 2
    # each case's notebook prepared by the compute cell before it (two cells a case), but after the case that
    # named its client (its client closes in the background; a preparing cell makes the next one)
    assert krunner.kernel.prepared_ahead == ahead + 4


def test_a_failed_compute_leaves_the_notebooks_client_to_the_next_case(krunner, tmp_path):
    """A compute call that cannot pickle its graph leaves its futures in a reference cycle (its exception's
    traceback holds the frames that hold them): freed by a young-generation collection, they do not cost the
    next case its client. A future the case keeps where no reset reaches does."""
    record = tmp_path / "ids"
    note = f"open({str(record)!r}, 'a').write(get_ipython().user_ns['cli' + 'ent'].id + ' ')\n"
    head = 'CASE = {{"family": "outcomes", "summary": "{summary}", "expect": "{expect}"}}\nimport dask\n'
    cases = _cases(tmp_path, {
        "a_unpicklable": head.format(summary="a lock in the graph", expect="serialize-error") + note
        + "import threading\nresult = dask.delayed(lambda lock: 1)(threading.Lock())\nexpected = 1\n",
        "b_quiet": head.format(summary="records its client", expect="pass") + note
        + "result = dask.delayed(sum)([1, 2])\nexpected = 3\n",
        "c_keeps": head.format(summary="keeps a future where no reset reaches", expect="pass") + note
        + "import builtins\nbuiltins._picklematrix_kept = get_ipython().user_ns['cli' + 'ent'].submit(sum, [1, 2])\n"
        + "result = dask.delayed(sum)([1, 2])\nexpected = 3\n",
    })
    grid = [("a_unpicklable", oc.SERIALIZE_ERROR), ("b_quiet", oc.PASS), ("c_keeps", oc.PASS), ("b_quiet", oc.PASS)]
    kernel = krunner._kernel()
    kept = kernel.clients_kept
    for i, (case, outcome) in enumerate(grid):
        cell = krunner.run(cases[case], "Client.compute", "kernel",
                           next_kernel="Client.compute" if i + 1 < len(grid) else None)
        assert cell.outcome == outcome, cell
    ids = record.read_text().split()
    assert ids[0] == ids[1] == ids[2] != ids[3], ids  # kept after the failure; new after the kept future
    assert krunner.kernel.clients_kept == kept + 2


def test_notebook_model_captures_the_namespace_on_old_pydantic(krunner, fixture_cases):
    if installed_version("pydantic") >= "2.9":
        pytest.fail("needs pydantic < 2.9 (nox -s tests installs 2.8.2)")
    for method in ("dask.compute", "Client.compute"):
        kernel = krunner.run(fixture_cases["toplevel_model"], method, "kernel")
        assert kernel.outcome == oc.SERIALIZE_ERROR, kernel
        assert any(x in kernel.root_cause["message"] for x in ("sqlite3.Connection", "_thread.lock", "_asyncio.Task"))
        # the way there: the model class, shipped by value, holds the notebook's namespace
        assert "__pydantic_parent_namespace__" in kernel.root_cause["path"], kernel.root_cause
        assert krunner.run(fixture_cases["toplevel_model"], method, "script").outcome == oc.PASS


@pytest.mark.slow
def test_a_wedged_kernel_costs_one_cell(krunner, fixture_cases):
    starts = krunner.kernel.starts if krunner.kernel else 0
    cell = krunner.run(fixture_cases["hangs"], "dask.compute(client=)", "kernel")
    assert cell.outcome == oc.TIMEOUT
    assert krunner.kernel.starts == starts + 1
    assert krunner.run(fixture_cases["plain_pass"], "Client.compute", "kernel").outcome == oc.PASS


@pytest.mark.slow
def test_a_killed_kernel_costs_one_cell(krunner, fixture_cases):
    cell = krunner.run(fixture_cases["local_exit"], "dask.compute(client=)", "kernel")
    assert cell.outcome == oc.RAN_LOCALLY
    assert cell.root_cause["type"] == "KernelDied"
    assert krunner.run(fixture_cases["plain_pass"], "dask.compute", "kernel").outcome == oc.PASS


def test_once_a_kernel_was_replaced_the_next_one_is_launched_ahead():
    """A cell that kills or wedges a kernel often has others beside it (its case by the other methods): from the
    first replacement on, a spare kernel is launched ahead and the next replacement takes it, answering."""
    from picklematrix.run.kernel import KernelSession

    kernel = KernelSession()
    try:
        kernel.start()
        assert kernel._spare is None  # no spare before a replacement was needed
        kernel.replace()
        kernel.wait_ready()
        spare = kernel._spare[0]
        assert spare.is_alive() and spare is not kernel.km
        kernel.replace()
        assert kernel.km is spare and kernel.starts == 3
        kernel.wait_ready()
        reply = kernel.execute("print(6 * 7)", 30)
        assert reply.status == "ok" and reply.stdout == ["42"]
        managers = [kernel.km, kernel._spare[0]]
        assert all(km.is_alive() for km in managers)
    finally:
        kernel.close()
    assert not any(km.is_alive() for km in managers)  # closing ends the spare too


@pytest.mark.slow
def test_a_kernel_killed_by_a_local_task_is_that_cells_whatever_the_timing(krunner, fixture_cases):
    """The case's cell and the compute cell are sent together; a compute cell that kills the kernel at once may
    take the case's cell's reply with it (still queued in the kernel's I/O thread). The death is the compute
    call's every time, never the case's cell's."""
    for _ in range(8):
        cell = krunner.run(fixture_cases["local_exit"], "dask.compute(client=)", "kernel")
        assert (cell.outcome, cell.root_cause["type"]) == (oc.RAN_LOCALLY, "KernelDied"), cell
        assert "case's cell" not in cell.root_cause["message"], cell.root_cause


@pytest.mark.slow
def test_a_case_cell_that_kills_the_kernel_is_run_again_one_cell_at_a_time(krunner, fixture_cases):
    """Whose death it is cannot be told while both cells were sent: the two run again in a fresh kernel, the
    compute cell only once the case's has ended, and the death is the case's cell's."""
    krunner.run(fixture_cases["plain_pass"], "dask.compute", "kernel")
    starts = krunner.kernel.starts
    cell = krunner.run(fixture_cases["kernel_exit_in_cell"], "dask.compute", "kernel")
    assert cell.outcome == oc.HARNESS_ERROR and "while running the case's cell" in cell.root_cause["message"], cell
    krunner.kernel.ensure()
    assert krunner.kernel.starts == starts + 2  # the cell's kernel, and the one it ran again in
    assert krunner.run(fixture_cases["plain_pass"], "dask.compute", "kernel").outcome == oc.PASS


def test_kernel_samples_after_the_first_have_no_progress_messages(krunner, fixture_cases, cluster):
    """As in a script cell's process: where the work went is reported during the first call only."""
    from picklematrix.run.kernel import COMPUTE_CELL, PREPARE_CELL

    assert krunner.run(fixture_cases["plain_pass"], "Client.compute", "kernel").outcome == oc.PASS
    kernel = krunner.kernel
    events_path = os.path.join(kernel.tmp, "events-test.jsonl")
    assert kernel.execute(PREPARE_CELL.format(address=cluster.address, default=True, keep=True), 30).status == "ok"
    assert kernel.execute(fixture_cases["plain_pass"].source, 30).status == "ok"
    reply = kernel.execute(COMPUTE_CELL.format(method="Client.compute", case="plain_pass", timeout=30, samples=3,
                                               events_path=events_path, then=None), 60)
    assert reply.status == "ok"
    # after the result: what the case changed of the process-global state (nothing)
    expected = ["compute-start", "submitted", "sent", "received", "sample", "sample", "result", "globals"]
    assert [e["event"] for e in reply.events] == expected
    assert reply.events[-1]["changed"] == []
    assert len(reply.result_event["samples"]) == 3
    with open(events_path) as f:
        assert [json.loads(line)["event"] for line in f] == expected


def test_iopub_messages_are_read_as_jupyter_client_reads_them_signature_checked():
    # the harness reads IOPub off the socket itself (picklematrix.run.kernel.IOPub): a real ZMQ pair and a real
    # jupyter_client Session with a key, as between a kernel and its client
    import queue

    import zmq
    from jupyter_client.session import Session

    from picklematrix.run.kernel import IOPub

    context = zmq.Context()
    sender, receiver = context.socket(zmq.PAIR), context.socket(zmq.PAIR)
    port = receiver.bind_to_random_port("tcp://127.0.0.1")
    sender.connect(f"tcp://127.0.0.1:{port}")
    session = Session(key=b"secret")
    iopub = IOPub(receiver, Session(key=b"secret"))
    try:
        with pytest.raises(queue.Empty):
            iopub.get(0.05)
        parent = session.msg("execute_request", {"code": "1"})
        session.send(sender, "stream", {"name": "stdout", "text": "hello\n"}, parent=parent)
        msg = iopub.get(5)
        assert msg["msg_type"] == "stream" and msg["content"] == {"name": "stdout", "text": "hello\n"}
        assert msg["parent_header"]["msg_id"] == parent["header"]["msg_id"]
        # a message signed with another key is refused, as jupyter_client refuses it
        Session(key=b"other").send(sender, "stream", {"name": "stdout", "text": "forged\n"}, parent=parent)
        with pytest.raises(ValueError, match="invalid signature"):
            iopub.get(5)
    finally:
        sender.close(0)
        receiver.close(0)
        context.term()
