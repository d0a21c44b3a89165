"""A cluster at an address the run was given (``--scheduler ADDRESS``): checked, never replaced.

Only its workers may be restarted, and only when it is one ``python -m picklematrix cluster`` serves on this
machine (``--restartable``; picklematrix.cluster.served)."""

from __future__ import annotations

from picklematrix.cluster.base import BaseCluster, ClusterHung, Health, version_report, within


class ExistingCluster(BaseCluster):
    """A cluster at an address the run was given: never replaced, its workers never killed.

    ``restartable``: one that ``python -m picklematrix cluster`` serves on this
    machine, whose stuck workers may be killed and whose workers may be
    restarted. Any other (one someone else runs, ``--scheduler ADDRESS``) is only
    checked: when a cell leaves it unhealthy it is ``lost`` (the reason), and the
    run stops there rather than blame later cells for its state.
    """

    def __init__(self, address: str, *, restartable: bool = False):
        super().__init__(n_workers=0)  # counted on connecting
        self._address = address
        self.restartable = restartable
        # one that picklematrix serves (--restartable) has picklematrix: its stuck workers may be found and killed
        self.picklematrix_on_cluster = restartable
        self.lost: str | None = None

    @property
    def address(self) -> str:
        return self._address

    def start(self) -> "ExistingCluster":
        from distributed import Client

        self.client = Client(self._address, set_as_default=False, timeout=30)
        workers = within(30, f"the scheduler at {self._address}", self.client.scheduler_info).get("workers", {})
        self.n_workers = len(workers)
        # the limit its workers were started with (the smallest, if they differ), for the record
        limits = [w.get("memory_limit") for w in workers.values() if w.get("memory_limit")]
        self.memory_limit = min(limits) if limits else None
        return self

    def make_healthy(self, reason: str) -> str | None:
        """Restart the workers if we may; else, or when that fails, the cluster is lost. Returns the warning."""
        if not self.restartable:
            try:
                health = self.health(grace=3)
            except Exception as e:  # ClusterHung, or its scheduler's connection closed (a cell shut it down)
                health = Health([str(e) if isinstance(e, ClusterHung) else f"{type(e).__name__}: {e}"])
            if health.ok:
                return None
            return self._lose(f"after {reason}: {'; '.join(health.problems)}; it is not this run's to restart "
                              "(--scheduler)")
        self.restarts += 1
        try:
            health, killed = self._replace_stuck_workers()
            if health.ok:
                return "; ".join(killed) or None
            within(45, f"restarting the workers of {self.address}", self.client.restart,
                   timeout=30, wait_for_workers=True)
            health = self.health(grace=10)
            if health.ok:
                return None
            problems = "; ".join(health.problems)
        except Exception as e:
            problems = f"restart failed: {type(e).__name__}: {e}"
        return self._lose(f"still unhealthy after a restart ({reason}): {problems}")

    def _lose(self, why: str) -> str:
        self.lost = self._warn(f"the cluster at {self.address} could not be recovered {why}: the run stops here")
        return self.lost

    def describe(self) -> dict:
        out = {**super().describe(), "lost": self.lost}
        try:
            out["versions"] = version_report(self.client)
        except Exception as e:  # an old, locked-down or lost cluster: say so, don't fail the run
            out["versions"] = {"error": f"{type(e).__name__}: {e}"}
        return out
