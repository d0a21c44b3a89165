"""The compute methods: one small function each, as a user would call them.

Runs inside every matrix environment (any dask/distributed from 2024.6.2 on).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class ComputeMethod:
    name: str
    call: Callable[[Any, Any, float], Any]
    # Whether the cell's ``client`` is the default scheduler (``Client(addr)``)
    # or a client made with ``set_as_default=False``.
    default_client: bool
    # The outcome expected when a case says nothing more specific.
    default_expectation: str | None = None
    # Whether dask would send this call's work to the distributed client
    # (asked of dask itself before the call; the call then shows whether the
    # graph really went).
    targets_cluster: Callable[[Any], bool] = None  # type: ignore[assignment]
    # Whether the call waits at most ``timeout`` itself and then says so
    # (ComputeTimeout). One that does not (dask.compute has no timeout) can
    # only be stopped from outside, and says nothing when it is.
    own_wait: bool = False


def _default_scheduler_is_distributed(client) -> bool:
    import dask.base

    scheduler = dask.base.get_scheduler()
    owner = getattr(scheduler, "__self__", None)
    return owner is not None and type(owner).__module__.startswith("distributed")


def _dask_compute(result, client, timeout):
    import dask

    (value,) = dask.compute(result)
    return value


def _dask_compute_client_kwarg(result, client, timeout):
    import dask

    # The literal call from dask/dask#11448. dask.compute has no ``client=``
    # parameter: the keyword is swallowed by **kwargs, and with no default
    # distributed client this runs on the local threaded scheduler.
    (value,) = dask.compute(result, client=client)
    return value


class ComputeTimeout(Exception):
    """The compute call's own wait ran out (not an exception of the task)."""


def _client_compute(result, client, timeout):
    from distributed import wait

    futures = client.compute(result)
    try:
        # wait() raises only when time runs out, never for a failed task.
        wait(futures, timeout=timeout)
    except Exception as e:
        if "timeout" in type(e).__name__.lower():
            raise ComputeTimeout(f"Client.compute: no result within {timeout:g}s") from e
        raise
    if isinstance(futures, list):
        return [f.result() for f in futures]
    return futures.result()


METHODS = {
    m.name: m
    for m in (
        ComputeMethod(
            "dask.compute",
            _dask_compute,
            default_client=True,
            targets_cluster=_default_scheduler_is_distributed,
        ),
        ComputeMethod(
            "dask.compute(client=)",
            _dask_compute_client_kwarg,
            default_client=False,
            targets_cluster=_default_scheduler_is_distributed,
            default_expectation="ran-locally",
        ),
        ComputeMethod(
            "Client.compute",
            _client_compute,
            default_client=True,
            targets_cluster=lambda client: True,
            own_wait=True,
        ),
    )
}
