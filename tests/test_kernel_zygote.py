"""The kernel context's kernels are forked from a zygote (picklematrix.run.kernelzygote): a forked kernel is
what a launched one is, as far as a notebook can tell, and dies, is replaced and ends as a launched one does."""

import json
import os
import signal
import time

import pytest

from picklematrix.run.kernel import KernelSession

from .faults.runs import alive, parent_of

# What a notebook can ask of its kernel's process, printed as one marked line.
FACTS = r"""
import json, logging, os, sys, threading
import distributed
_handlers = [h for h in logging.getLogger("distributed").handlers if isinstance(h, logging.StreamHandler)]
print("FACTS" + json.dumps({
    "argv": sys.argv, "orig_argv": sys.orig_argv[1:], "path": sys.path, "cwd": os.getcwd(),
    "env": dict(os.environ), "flags": list(sys.flags),
    "session_leader": os.getsid(0) == os.getpid(), "group_leader": os.getpgid(0) == os.getpid(),
    "main_is_the_users": sys.modules["__main__"] is get_ipython().user_module,
    "stdin": [type(sys.stdin).__name__, sys.stdin.read(1)],
    "distributed_logs_to": sorted({"kernel stderr" if h.stream is sys.stderr else repr(h.stream)
                                   for h in _handlers}),
    "threads": sorted(type(t).__name__ for t in threading.enumerate()),
    "parent_poller": type(getattr(get_ipython().kernel.parent, "poller", None)).__name__,
    "displayhook": type(sys.displayhook).__name__, "stdout": type(sys.stdout).__name__,
    "excepthook": type(sys.excepthook).__name__,
}, default=repr))
"""


def _facts(kernel: KernelSession) -> dict:
    reply = kernel.execute(FACTS, 60)
    assert reply.status == "ok", reply
    line = next(out for out in reply.stdout if out.startswith("FACTS"))
    return json.loads(line[len("FACTS"):])


@pytest.mark.slow
def test_a_forked_kernel_is_what_a_launched_kernel_is_to_a_notebook():
    facts = {}
    for fork in (False, True):
        kernel = KernelSession(fork=fork)
        try:
            kernel.start()
            pid = kernel.km.provisioner.pid
            # forked: a child of the zygote, not of the harness
            assert (parent_of(pid) == kernel._zygote.proc.pid) if fork else (parent_of(pid) == os.getpid())
            facts[fork] = _facts(kernel)
            # the working directory is the session's, which differs: the same place relative to it
            facts[fork]["cwd"] = os.path.relpath(facts[fork]["cwd"], kernel.tmp)
            for name in ("IPYTHONDIR", "JUPYTER_RUNTIME_DIR"):
                facts[fork]["env"][name] = os.path.relpath(facts[fork]["env"][name], kernel.tmp)
            facts[fork]["argv"][2:] = [a.replace(kernel.tmp, "TMP") for a in facts[fork]["argv"][2:]]
            facts[fork]["orig_argv"] = [a.replace(kernel.tmp, "TMP") for a in facts[fork]["orig_argv"]]
        finally:
            kernel.close()
    launched, forked = facts[False], facts[True]
    assert launched["distributed_logs_to"] == ["kernel stderr"]  # what the fix-up in the child stands for
    assert launched["parent_poller"] == "ParentPollerUnix"
    assert {k: v for k, v in forked.items() if v != launched.get(k)} == {}, (launched, forked)


def test_forked_kernels_die_are_replaced_and_end_as_launched_ones_do(cluster):
    kernel = KernelSession()
    try:
        kernel.start()
        first = kernel.km.provisioner.pid
        zygote = kernel._zygote.proc.pid
        # a kernel that kills itself is seen dead and replaced by another child of the same zygote
        reply = kernel.execute("import os; os._exit(3)", 30)
        assert reply.status == "died"
        assert not kernel.km.is_alive()
        kernel.ensure()
        second = kernel.km.provisioner.pid
        assert second != first and parent_of(second) == zygote
        assert kernel.execute("print(6 * 7)", 30).stdout == ["42"]
        # one that hangs is interrupted as a launched one is: by a signal to its group (it leads a session)
        sent = kernel._send("import time; time.sleep(60)")
        time.sleep(0.5)
        kernel.km.interrupt_kernel()
        assert kernel._collect(sent, 30).ename == "KeyboardInterrupt"
        # a replacement from the first on launches a spare ahead: forked too
        kernel.replace()
        kernel.wait_ready()
        spare = kernel._spare[0].provisioner.pid
        assert parent_of(spare) == zygote
        kernels = [kernel.km.provisioner.pid, spare]
    finally:
        kernel.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(p) for p in [*kernels, zygote]):
        time.sleep(0.05)
    assert not any(alive(p) for p in [*kernels, zygote])  # closing ends the kernels, the spare and the zygote


def test_kernels_are_launched_when_the_zygote_fails():
    kernel = KernelSession()
    try:
        kernel.start()
        os.kill(kernel._zygote.proc.pid, signal.SIGKILL)
        kernel._zygote.proc.wait()
        kernel.replace()  # the next kernel: launched, the zygote being gone
        kernel.wait_ready()
        assert kernel._zygote is False and "zygote failed" in kernel.zygote_note
        assert parent_of(kernel.km.provisioner.pid) == os.getpid()
        assert kernel.execute("print(6 * 7)", 30).stdout == ["42"]
    finally:
        kernel.close()
