CASE = {
    "family": "lanes",
    "summary": "Kills the kernel lane's process (which started the kernel it runs in: jupyter_client names it "
               "in JPY_PARENT_PID), as an OOM kill would; in any other process it is a plain cell",
    "timeout": 10,
    "expect": "pass",
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]],
}
import os
import signal


_starter = int(os.environ.get("JPY_PARENT_PID") or 0)


def _cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read()


def _parent(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _started_by_a_lane():
    # a lane is forked from its run (the run's command line, which its parent has too), or is the run's
    # command with --lane in a new interpreter
    try:
        cmdline = _cmdline(_starter)
        return b"--lane" in cmdline.split(b"\0") or cmdline == _cmdline(_parent(_starter))
    except OSError:
        return False


if _starter and _started_by_a_lane():
    os.kill(_starter, signal.SIGKILL)

import dask

result = dask.delayed(sum)([2, 3])
expected = 5
