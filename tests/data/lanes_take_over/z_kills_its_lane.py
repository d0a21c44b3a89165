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


def _a_lane(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"--lane" in f.read().split(b"\0")
    except OSError:
        return False


_server = os.getppid()
if _a_lane(_parent(_server)):
    os.kill(_parent(_server), signal.SIGKILL)

import dask

result = dask.delayed(sum)([2, 3])
expected = 5
