CASE = {
    "family": "lanes",
    "summary": "Kills the kernel lane's process (the parent of the kernel it runs in), as an OOM kill would; "
               "in any other process it is a plain cell",
    "timeout": 10,
    "expect": "pass",
    "expect_when": [[{"method": "dask.compute(client=)"}, "ran-locally"]],
}
import os
import signal


def _parent_is_a_lane():
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
            return b"--lane" in f.read().split(b"\0")
    except OSError:
        return False


if _parent_is_a_lane():
    os.kill(os.getppid(), signal.SIGKILL)

import dask

result = dask.delayed(sum)([2, 3])
expected = 5
