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


def _started_by_a_lane():
    try:
        with open(f"/proc/{_starter}/cmdline", "rb") as f:
            return b"--lane" in f.read().split(b"\0")
    except OSError:
        return False


if _starter and _started_by_a_lane():
    os.kill(_starter, signal.SIGKILL)

import dask

result = dask.delayed(sum)([2, 3])
expected = 5
