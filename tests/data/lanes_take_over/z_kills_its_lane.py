CASE = {
    "family": "take_over",
    "summary": "Kills the kernel lane's process from a script cell it took over (the parent of the server its "
               "process forked from); run by the run itself, a plain cell",
    "timeout": 10,
    "contexts": ["script"],
    "expect": "pass",
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]],
}
import os
import signal


def _parent(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read()


def _a_lane(pid):
    # a lane is forked from its run (the run's command line, which its parent has too), or is the run's
    # command with --lane in a new interpreter
    try:
        cmdline = _cmdline(pid)
        return b"--lane" in cmdline.split(b"\0") or cmdline == _cmdline(_parent(pid))
    except OSError:
        return False


_server = os.getppid()
if _a_lane(_parent(_server)):
    os.kill(_parent(_server), signal.SIGKILL)

import dask

result = dask.delayed(sum)([2, 3])
expected = 5
