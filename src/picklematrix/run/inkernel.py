"""What runs inside the IPython kernel for the kernel context: the reset before each case and the compute cell.

The harness (picklematrix.run.kernel) executes these as notebook cells. The
compute cell's events and result go to stdout as marked JSON lines
(``KERNEL_MARK``), which the harness reads from the kernel's iopub stream.
Runs inside every matrix environment, in the kernel's process.
"""

from __future__ import annotations

import sys
import threading

from picklematrix.run.cell import compute_phase

KERNEL_MARK = "\x1epicklematrix-event "

# The last kernel cell's client, closing in a thread of the kernel (see kernel_compute), and how long
# the next case's kernel_reset waits for that close (it gives ``close`` 5 s).
_closing: tuple | None = None
CLOSE_WAIT = 10.0


# --- process-global state: what one case may change for every later case in the same kernel -------------
#
# A notebook case can patch what the whole process shares: ``pickle.dumps``, ``copyreg.dispatch_table``,
# ``dask.config``, ``cloudpickle.dumps``, a class of distributed. ``%reset`` clears names, not that. So the
# harness takes a snapshot once the case's notebook is prepared (``kernel_baseline``) and compares once its
# compute is done (``kernel_changes``); a kernel whose global state changed is replaced before the next case.
# The snapshot holds the objects themselves (compared with ``is``), not their ids: a freed object's id can
# be reused by its replacement.

# Which modules are watched: those that decide how a case's objects pickle, unpickle and compute, and
# where the examples of the issue live (``pickle.dumps``, ``copyreg``, ``dask.config``,
# ``cloudpickle.dumps``). Not every module: measured in a kernel with dask, distributed and pydantic loaded,
# snapshotting every module cost 0.1-0.5 s a cell, and the kernel's own modules rebind globals on every
# execute (ipykernel: ``builtins.input``, ``getpass.getpass``); importing pydantic rebinds
# ``typing._check_generic`` once. A rebinding in an unwatched module goes unseen.
_WATCHED = ("pickle", "_pickle", "copyreg", "copy", "cloudpickle", "dask", "distributed", "msgpack",
            "pydantic", "pydantic_core", "builtins", "functools", "types", "threading", "asyncio", "concurrent",
            "weakref", "io", "os", "socket", "sqlite3", "enum", "dataclasses", "abc", "collections")
# Globals that a watched module rebinds itself in normal use, named as (module, attribute), with why.
# Besides these, a global that was None when the case started and is set now is a library's lazy
# initialisation (``_cache = None`` ... ``global _cache; _cache = ...``), not counted as a change.
_REBOUND_IN_NORMAL_USE = frozenset({
    ("builtins", "input"),  # ipykernel binds its own input() for every execute request
    # dask.base looks distributed up on the first compute, and the threaded scheduler makes its pool then
    ("dask.base", "_DISTRIBUTED_AVAILABLE"), ("dask.base", "_DistributedClient"),
    ("dask.base", "_get_distributed_client"), ("dask.threaded", "default_pool"),
})
# Class attributes that pickling itself caches on a class the first time it pickles an instance
# (copyreg._slotnames): not a change a case made.
_CACHED_ON_CLASSES = frozenset({"__slotnames__"})
# Registries whose *contents* decide how objects pickle or compute; an entry a case added, changed or
# removed changes later cases. (module, attribute) of each.
_REGISTRIES = (("copyreg", "dispatch_table"), ("copyreg", "_extension_registry"),
               ("copyreg", "_inverted_registry"), ("pickle", "_Pickler.dispatch"),
               ("cloudpickle.cloudpickle", "Pickler._dispatch_table"),
               ("distributed.protocol.serialize", "families"))

def _resolve(module: str, dotted: str):
    target = sys.modules.get(module)
    for part in dotted.split("."):
        if target is None:
            return None
        target = getattr(target, part, None)
    return target


def _watched_modules() -> dict:
    return {name: module for name, module in list(sys.modules.items())
            if module is not None and name.split(".", 1)[0] in _WATCHED}


def _knobs() -> dict:
    """Process settings a case can change for everyone after it, by value."""
    import gc
    import os
    import warnings

    knobs = {"sys.path": list(sys.path), "sys.meta_path": list(sys.meta_path),
             "sys.path_hooks": list(sys.path_hooks), "sys.getrecursionlimit()": sys.getrecursionlimit(),
             "sys.gettrace()": sys.gettrace(), "sys.getprofile()": sys.getprofile(),
             "os.getcwd()": os.getcwd(), "os.environ": dict(os.environ), "gc.isenabled()": gc.isenabled(),
             "warnings.filters": list(warnings.filters)}
    config = sys.modules.get("dask.config")
    if config is not None:
        import copy

        try:
            knobs["dask.config.config"] = copy.deepcopy(config.config)
        except Exception:  # a value that cannot be copied: compare its text
            knobs["dask.config.config"] = repr(config.config)
    return knobs


_MISSING = object()


def _module_snapshot(name: str, module) -> tuple:
    """(namespace copy, {class name: (class, its __dict__ copy)}) of one watched module."""
    namespace = getattr(module, "__dict__", None)
    if not isinstance(namespace, dict):
        return {}, {}
    copy = dict(namespace)
    # classes defined here: a patched method (``Client.compute = ...``) is a change too
    classes = {attr: (value, dict(value.__dict__)) for attr, value in copy.items()
               if isinstance(value, type) and value.__module__ == name and value.__qualname__ == attr}
    return copy, classes


def _extend(baseline: dict) -> None:
    """Add to ``baseline`` the watched modules imported since it was taken (a case's ``import``), and take
    its knobs and registries anew: the client of this case set dask's config its own way."""
    modules = baseline["modules"]
    for name, module in _watched_modules().items():
        if name not in modules:
            modules[name] = module
            baseline["namespaces"][name], baseline["classes"][name] = _module_snapshot(name, module)
    registries = {}
    for module, dotted in _REGISTRIES:
        registry = _resolve(module, dotted)
        if isinstance(registry, dict):
            registries[(module, dotted)] = dict(registry)
    baseline["registries"] = registries
    baseline["knobs"] = _knobs()


def _same(copy: dict, now: dict) -> bool:
    """Whether every entry of ``copy`` is still in ``now``: in C (items views compare an identical value
    without calling its ``__eq__``), so the usual case, nothing rebound, costs little. A value replaced by
    an equal one passes as the same; a value whose ``==`` raises sends it to the slow path."""
    try:
        return copy.items() <= now.items()
    except Exception:
        return False


def _differences(before: dict, limit: int = 20) -> list:
    """What changed since ``before``, named as a user would patch it (``pickle.dumps``). Lazy
    initialisations (a global that was None) are taken into ``before``: not changes, and not again."""
    changed = []
    for name, module in before["modules"].items():
        now = sys.modules.get(name)
        if now is not module:
            changed.append(f"sys.modules[{name!r}]" + (" removed" if now is None else " replaced"))
        namespace = getattr(module, "__dict__", {})
        copy = before["namespaces"][name]
        if not _same(copy, namespace):  # the fast path: nothing rebound in this module
            for attr, value in list(copy.items()):
                current = namespace.get(attr, _MISSING)
                if current is value or (name, attr) in _REBOUND_IN_NORMAL_USE:
                    continue
                if value is None and current is not _MISSING:
                    copy[attr] = current  # set once by the library itself
                else:
                    changed.append(f"{name}.{attr}" + (" deleted" if current is _MISSING else ""))
        for attr, (cls, members) in before["classes"][name].items():
            now_members = cls.__dict__
            if len(members) == len(now_members) and _same(members, now_members):
                continue
            for member in set(members) | set(now_members):
                if member not in _CACHED_ON_CLASSES and members.get(member, _MISSING) is not now_members.get(
                        member, _MISSING):
                    changed.append(f"{name}.{attr}.{member}")
    for (module, dotted), registry in before["registries"].items():
        current = _resolve(module, dotted)
        if not isinstance(current, dict) or len(registry) != len(current) or not _same(registry, current):
            changed.append(f"{module}.{dotted}")
    knobs = _knobs()
    for knob, value in before["knobs"].items():
        try:
            same = knobs.get(knob) == value
        except Exception:
            same = False
        if not same:
            changed.append(knob)
    return sorted(set(changed))[:limit]


# The baseline of this kernel: taken whole once, then extended case by case (see _extend). A kernel whose
# state changed is replaced, so a baseline never has to forgive a change.
_baseline: dict | None = None
_baseline_seconds = 0.0


def kernel_baseline() -> None:
    """Called by the harness at the end of the preparing cell: the state the case starts from."""
    import time

    global _baseline, _baseline_seconds
    t0 = time.perf_counter()
    if _baseline is None:
        _baseline = {"modules": {}, "namespaces": {}, "classes": {}}
    _extend(_baseline)
    _baseline_seconds = time.perf_counter() - t0


def kernel_changes() -> dict:
    """What the case changed of the process-global state since ``kernel_baseline``, and what finding out
    cost (``seconds``, the baseline's part included: the detector's whole price per cell)."""
    import time

    t0 = time.perf_counter()
    if _baseline is None:
        return {"event": "globals", "changed": [], "seconds": 0.0}
    changed = _differences(_baseline)
    return {"event": "globals", "changed": changed,
            "seconds": time.perf_counter() - t0 + _baseline_seconds}


def kernel_report_changes() -> None:
    """The harness's check cell (for a case that did not get to its compute cell): print the changes."""
    import json

    print(KERNEL_MARK + json.dumps(kernel_changes(), default=str), flush=True)


def kernel_reset() -> None:
    """Called by the harness inside a Jupyter kernel before each case: a fresh notebook.

    Waits until the previous case's ``client`` has closed (``kernel_compute``
    closes it in a thread), or closes it (a case that did not get as far as
    its compute cell), then does what ``%reset -f`` does
    (``InteractiveShell.reset(new_session=False)``: namespace, output cache,
    aliases) except its full ``gc.collect()``, which costs more than the rest of
    a cell (about 60 ms with dask, distributed and pydantic loaded); the
    interpreter's own collector still runs as it would in a notebook. Then it
    drops the ``from __future__`` flags an earlier case left: IPython keeps
    them for every later cell, ``%reset`` included.
    """
    import __future__

    import gc

    global _closing
    closed = None
    if _closing is not None:
        thread, closed = _closing
        _closing = None
        thread.join(CLOSE_WAIT)
    shell = get_ipython()  # noqa: F821 - only ever called inside an IPython kernel
    old = shell.user_ns.get("client")
    if old is not None and old is not closed and type(old).__module__.startswith("distributed"):
        try:
            old.close(timeout=5)
        except Exception:
            pass
    collect = gc.collect
    gc.collect = lambda generation=2: 0
    try:
        shell.reset(new_session=False)
    finally:
        gc.collect = collect
    for name in __future__.all_feature_names:
        shell.compile.flags &= ~getattr(__future__, name).compiler_flag


def kernel_compute(method_name: str, *, case_id: str, timeout: float, samples: int = 1,
                   events_path: str | None = None) -> None:
    """Called by the harness inside a Jupyter kernel, after the case's cell ran there.

    Events and the result go to stdout as marked JSON lines: the harness reads
    them from the kernel's iopub stream, as they are printed. They are also
    appended to ``events_path``: a write to a file is done when ``write``
    returns, while output on iopub is lost if the task kills the kernel
    before zmq sends it.
    """
    import json

    shell = get_ipython()  # noqa: F821 - only ever called inside an IPython kernel
    ns = shell.user_ns

    def emit(event):
        sys.__stdout__.flush()
        line = json.dumps(event, default=str)
        if events_path:
            with open(events_path, "a") as f:
                f.write(line + "\n")
        print(KERNEL_MARK + line, flush=True)

    client = ns.get("client")
    result = compute_phase(ns, client, method_name, case_id=case_id, context="kernel", timeout=timeout,
                           samples=samples, emit=emit)
    emit(result)
    # Before the client closes (closing it rebinds dask's config, as it should): what the case changed.
    emit(kernel_changes())
    # As the script context's process does once its result is sent, the client closes while the harness
    # checks the cluster: in a thread, so that this cell is done now. The next case's kernel_reset
    # waits for it before anything else runs in the kernel.
    global _closing

    def close():
        try:
            client.close(timeout=5)
        except Exception:
            pass

    thread = threading.Thread(target=close, name="picklematrix-close-client", daemon=True)
    thread.start()
    _closing = (thread, client)
