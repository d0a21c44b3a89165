"""The kernel context's kernels, forked from one interpreter that has imported ipykernel and distributed already.

A run starts a kernel, then one in place of each that a cell hung or killed (a recording: five). Each was a new
interpreter importing ipykernel, IPython, jupyter_client and debugpy, then, in the notebook's first cell,
distributed: 0.40 CPU-seconds here before its first case, against 0.10 for a forked one and 0.38 once a run
for the zygote (bench/kernel_start.py). The zygote is that interpreter, started with the first kernel, those modules imported and no thread started; each kernel is
a child it forks (the loop of picklematrix.cluster.zygote), in a session of its own, which runs what
``python -m ipykernel_launcher -f CONNECTION_FILE ...`` runs: ``IPKernelApp.launch_instance``, with that
command's ``sys.argv``, ``sys.path``, environment and working directory. jupyter_client drives it as it drives a
launched kernel: the provisioner below hands it the forked process instead of starting one.

What a notebook could see of the zygote's imports is made good in the child: distributed sets up its logging at
import, with handlers that write to the ``sys.stderr`` of that moment; in a notebook that import comes after the
kernel replaced ``sys.stderr`` with its own stream, so distributed's log lines are the cell's stderr output; the
child points those handlers at the kernel's streams once the kernel has made them. And ipykernel reads its
parent's pid from the environment when it is imported: the child passes its own. What stays different: the
modules are imported before the first cell (as the script cells' server has them, picklematrix.preload), and
every kernel of a run starts from the zygote's hash seed.

Runs inside every matrix environment (the zygote in the kernel's interpreter: picklematrix is installed there).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys

from picklematrix.cluster.zygote import LOOP, Zygote

# What ``python -m ipykernel_launcher`` is: the kernel command the zygote can stand in for (the kernel spec's
# argv starts with the interpreter, then these).
LAUNCHER = ["-m", "ipykernel_launcher"]

ZYGOTE = r"""
import json, os, random, signal, sys, traceback
from picklematrix.run.kernelzygote import kernel_child as child, preload
preload()
""" + LOOP


def preload() -> None:
    """What every kernel of a run imports: ipykernel's application (IPython, jupyter_client, debugpy), and what
    the notebook's first cell does: picklematrix.run.inkernel, and dask, distributed and the tracked packages as
    the script cells' server has them (picklematrix.preload)."""
    import ipykernel.kernelapp  # noqa: F401
    import picklematrix.run.inkernel  # noqa: F401
    from picklematrix import preload as server_preload

    server_preload.warm()


def kernel_child(request: dict) -> None:
    """In the forked child: become ``python -m ipykernel_launcher ARGS`` (``request["argv"]``, the kernel spec's
    command) in ``request["cwd"]`` with ``request["env"]``, and run the kernel until it is shut down."""
    argv = request["argv"]
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)  # a launched kernel's standard input is a pipe jupyter_client closes at once
    os.close(null)
    os.dup2(2, 1)  # the zygote's standard output is its answers; a kernel's goes where its stderr goes
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [importlib.util.find_spec("ipykernel_launcher").origin, *argv[3:]]
    sys.orig_argv = list(argv)
    if sys.path and sys.path[0] == "":  # as ipykernel_launcher does
        del sys.path[0]
    from ipykernel.kernelapp import IPKernelApp

    streams = {id(sys.stdout): "stdout", id(sys.stderr): "stderr"}
    # the two settings ipykernel's application reads from the environment as it is imported (the zygote's, which
    # has no parent's pid): from this kernel's, as a launched kernel's import reads them
    app = IPKernelApp.instance(parent_handle=int(os.environ.get("JPY_PARENT_PID") or 0),
                               interrupt=int(os.environ.get("JPY_INTERRUPT_EVENT") or 0))
    app.initialize()
    follow_kernel_streams(streams)
    app.start()


def follow_kernel_streams(streams: dict) -> None:
    """Point every logging handler that writes to one of ``streams`` (``{id(stream): "stdout" | "stderr"}``, the
    process's streams before the kernel replaced them) at the kernel's stream of that name."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            name = streams.get(id(getattr(handler, "stream", None)))
            if name is not None and isinstance(handler, logging.StreamHandler):
                handler.setStream(getattr(sys, name))


def can_fork(argv: list[str], python: str) -> bool:
    """Whether the zygote of ``python`` can stand in for the kernel command ``argv`` (and this platform forks)."""
    return hasattr(os, "fork") and len(argv) >= 3 and argv[0] == python and argv[1:3] == LAUNCHER


class KernelZygote(Zygote):
    """The zygote of a run's kernels (see the module doc), in ``python`` with the kernels' environment and working
    directory; its output and its kernels' go to this process's stderr, as a launched kernel's would."""

    def __init__(self, python: str, env: dict, cwd: str):
        super().__init__(python, env, None, code=ZYGOTE, cwd=cwd)

    def provisioner(self, km):
        """A jupyter_client provisioner for ``km`` that has this zygote fork its kernel (set as
        ``km.provisioner`` before ``km.start_kernel``)."""
        from jupyter_client.provisioning import LocalProvisioner

        zygote = self

        class ForkedKernelProvisioner(LocalProvisioner):
            """LocalProvisioner, its process forked by the zygote (a session leader: signalled by group, as a
            launched kernel is)."""

            async def launch_kernel(self, cmd, **kwargs):
                # what jupyter_client.launcher.launch_kernel gives the command it starts
                env = dict(os.environ if kwargs.get("env") is None else kwargs["env"])
                env["JPY_PARENT_PID"] = str(os.getpid())
                self.process = zygote.request({"argv": [os.path.expanduser(a) for a in cmd],
                                               "cwd": kwargs.get("cwd") or os.getcwd(), "env": env})
                self.pid = self.pgid = self.process.pid
                return self.connection_info

        return ForkedKernelProvisioner(kernel_id=km.kernel_id, kernel_spec=km.kernel_spec, parent=km)
