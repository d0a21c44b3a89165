CASE = {
    "family": "runtime",
    "summary": "A finished asyncio.Task (the object in dask/dask#11448's error) passed to a task",
    "tags": ["asyncio", "task", "unpicklable", "dask-11448"],
    "expect": "serialize-error",
}
import asyncio
import threading

import dask


async def answer():
    return 42


loop = asyncio.new_event_loop()
task = loop.create_task(answer())
# Run the private loop on a thread of its own: in a notebook the kernel's event loop is
# already running in this thread, and run_until_complete refuses to run inside it.
runner = threading.Thread(target=loop.run_until_complete, args=(task,))
runner.start()
runner.join()  # done: only its result is wanted


def task_result(t):
    return t.result()


result = dask.delayed(task_result)(task)
expected = 42
