"""An asv environment plugin: an existing interpreter, labelled by what is installed in it.

asv's own ``existing`` environment names an environment after its interpreter
path, so results from two matrix envs are told apart by ``.nox/matrix-cp3-0-0-...``
paths and the report's filters show nothing useful. This one is selected with
``asv run --environment picklematrix:/path/to/python`` and labels the
environment (name, result file, ``python`` and requirement filters) by the
installed versions of python, cloudpickle, dask, distributed and pydantic, and by the corpus the recording
runs when it is a user's (``cases``: its digest, given in ``PICKLEMATRIX_CORPUS_DIGEST``).

Loaded by asv through ``"plugins": ["picklematrix.record.asv_env"]`` in asv.conf.json;
runs in the orchestrating environment, where asv is installed.
"""

from __future__ import annotations

import json
import os

from asv import util
from asv.environment import EnvironmentUnavailable, ExistingEnvironment

from picklematrix.envs.ids import CORPUS_VAR, VERSIONS_PROBE, asv_env_name, asv_requirements, corpus_versions
from picklematrix.envs.skew import ASV_CLUSTER_VAR, ClusterIdentity, record_name
from picklematrix.versions import ABSENT


class PicklematrixEnvironment(ExistingEnvironment):
    tool_name = "picklematrix"

    def __init__(self, conf, executable, requirements, tagged_env_vars):
        super().__init__(conf, executable, requirements, tagged_env_vars)
        try:
            probe = json.loads(util.check_output([self._executable, "-c", VERSIONS_PROBE]))
        except (util.ProcessError, OSError, ValueError) as e:
            raise EnvironmentUnavailable(f"cannot read installed versions from {self._executable}: {e}")
        self._python = probe["python"]
        # the corpus the recording runs (a user's case folders' digest): part of the record's name
        versions = corpus_versions(probe["versions"], os.environ.get(CORPUS_VAR) or None)
        self._requirements = asv_requirements(versions)
        self._base_name = asv_env_name(self._python, versions)
        # computing on another env's cluster, or a given one (picklematrix.envs.skew): its versions name it too
        given = os.environ.get(ASV_CLUSTER_VAR)
        self._cluster = ClusterIdentity.from_dict(json.loads(given)) if given else None
        if self._cluster is not None:
            self._requirements.update(self._cluster.asv_requirements())

    @classmethod
    def matches(cls, python):
        # Only chosen explicitly (picklematrix:/path/to/python), never as a fallback.
        return False

    @property
    def name(self):
        if not hasattr(self, "_base_name"):  # asked by asv's own __init__, before the probe above
            return asv_env_name(self._python, {k: (None if v == ABSENT else v) for k, v in self._requirements.items()})
        return record_name(self._base_name, self._cluster)
