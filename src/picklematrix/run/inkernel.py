"""What runs inside the IPython kernel for the kernel context: the compute cell, and each case's fresh notebook.

The harness (picklematrix.run.kernel) executes these as notebook cells. The
compute cell's events and result go to stdout as marked JSON lines
(``KERNEL_MARK``), which the harness reads from the kernel's iopub stream;
then the same cell checks what the case changed of the process and prepares
the next case's notebook (kernel_after).
Runs inside every matrix environment, in the kernel's process.
"""

from __future__ import annotations

import sys
import threading

from picklematrix import outcomes as oc
from picklematrix.run.attempt import CLOCK_EVENTS
from picklematrix.run.cell import compute_phase

KERNEL_MARK = "\x1epicklematrix-event "

# The notebook's client, as the harness made it: bound as ``client`` for each case, and kept for the next case
# when nothing of it changed (see _reusable). Its scheduler's address, whether it is dask's default scheduler,
# and its attributes when the case started.
_client = None
_client_address: str | None = None
_client_default: bool | None = None
_client_vars: dict | None = None
# The last case's client closing in a thread, (thread, client) (see _close_in_background): the next case's
# notebook waits for it.
_closing: tuple | None = None
# How long the client's event loop gets to run what the reset queued on it (the released futures' callbacks),
# and how long the previous client's close is waited for (``close`` gets 5 s).
SETTLE_WITHIN = 5.0
CLOSE_WAIT = 10.0
# How long a new client gets to connect: in a preparing cell (the case's own), and ahead, in the case before's
# compute cell (within the harness's wait for that cell: picklematrix.run.attempt.CONNECT_ALLOWANCE).
CONNECT_WITHIN = 30.0
AHEAD_CONNECT_WITHIN = 5.0


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


def _knobs(previous: dict | None = None) -> dict:
    """Process settings a case can change for everyone after it, by value. ``previous``: the knobs taken
    before, whose copy of dask's config stands for the one now when the two are equal (a deep copy costs
    about a millisecond; comparing, a fifth of that)."""
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

        before = (previous or {}).get("dask.config.config")
        try:
            same = isinstance(before, dict) and config.config == before
        except Exception:
            same = False
        if same:
            knobs["dask.config.config"] = before
        else:
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
    baseline["knobs"] = _knobs(baseline.get("knobs"))


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
    knobs = _knobs(before["knobs"])
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


def _reset(shell) -> None:
    """What ``%reset -f`` does (``InteractiveShell.reset(new_session=False)``: namespace, output cache,
    aliases) except its full ``gc.collect()``, which costs more than the rest of a cell (about 60 ms with
    dask, distributed and pydantic loaded); the interpreter's own collector still runs as it would in a
    notebook. Then the ``from __future__`` flags an earlier case left are dropped: IPython keeps them for
    every later cell, ``%reset`` included."""
    import __future__

    import gc

    collect = gc.collect
    gc.collect = lambda generation=2: 0
    try:
        shell.reset(new_session=False)
    finally:
        gc.collect = collect
    for name in __future__.all_feature_names:
        shell.compile.flags &= ~getattr(__future__, name).compiler_flag


async def _nothing():
    pass


def _reusable(address: str, default: bool) -> str | None:
    """Why the notebook's client may not pass to the next case as it is (None: it may). It may when it is
    connected to ``address``, dask's default scheduler or not as ``default`` says, open, and no attribute of
    it was rebound since the case started."""
    client = _client
    if client is None:
        return "none yet"
    if _client_address != address or _client_default != default:
        return "another scheduler" if _client_address != address else "the other kind of client"
    if getattr(client, "status", None) != "running":
        return f"status {getattr(client, 'status', None)}"
    now = vars(client)
    if _client_vars is None or len(now) != len(_client_vars) or any(
            now.get(name, _client_vars) is not value for name, value in _client_vars.items()):
        return "an attribute of it was rebound"
    return None


def _holds_nothing(client) -> str | None:
    """Why ``client`` may not pass to the next case once the case's namespace is gone (None: it may): a future
    the case left in a reference cycle lives until the collector runs, and its key with it on the scheduler.

    Such a cycle is usually young: a compute call that failed leaves one (its exception's traceback holds the
    frames that hold the futures; distributed's own serialization errors make such cycles). ``%reset`` collects
    it with a full ``gc.collect()`` (see _reset); here a collection of the young generations, about a
    millisecond where the full one takes 30-60 ms, which the interpreter would run itself a few allocations
    later. Only what it cannot free costs the client."""
    import gc

    for collect in (False, True):
        if collect:
            gc.collect(1)
        try:
            # the futures the reset dropped release their keys on the client's loop: let it run that first
            client.sync(_nothing, callback_timeout=SETTLE_WITHIN)
        except Exception as e:
            return f"its loop did not answer ({type(e).__name__})"
        if not (client.refcount or client.futures):
            return None
    return "it still holds futures"


def _close(client) -> None:
    try:
        client.close(timeout=5)
    except Exception:
        pass


def _new_client(address: str, default: bool, timeout: float):
    """The notebook's client replaced: the old one closed, a new one connected.

    Closing a default client gives dask's config back (its scheduler setting) and makes it no longer the
    default client: done before the next case starts (and before a new default client sets its own), while a
    new client of the other kind connects. A client that is not the default touches neither: its close (a
    round trip to the scheduler, about 10 ms) finishes in the background."""
    from distributed import Client

    global _client, _client_address, _client_default, _client_vars
    old, old_default = _client, _client_default
    _client = _client_vars = None
    closing = None
    if old is not None:
        if old_default and default:
            _close(old)
        else:
            closing = threading.Thread(target=_close, args=(old,), name="picklematrix close the client", daemon=True)
            closing.start()
    try:
        client = Client(address, set_as_default=default, timeout=timeout)
    finally:
        if closing is not None and old_default:
            closing.join(CLOSE_WAIT)
    _client, _client_address, _client_default = client, address, default
    return client


def _close_own(shell, closed=None) -> None:
    """Close a client the case made itself and bound to the name the harness gave its own (as before a reset);
    not ``closed``, the one closed already."""
    own = shell.user_ns.get("client")
    if (own is not None and own is not _client and own is not closed
            and type(own).__module__.startswith("distributed")):
        _close(own)


def kernel_prepare(address: str, default: bool, keep: bool = True, timeout: float = CONNECT_WITHIN) -> dict:
    """A fresh notebook for the next case: the namespace cleared (see _reset), then ``Client`` and ``client``
    bound, as a notebook's first cell would (``from distributed import Client``; ``client = Client(address)``,
    ``set_as_default=default``), and the global-state baseline taken (kernel_baseline).

    The client is the previous case's one when ``keep`` (that case's code named no client) and it is as it was
    (see _reusable, _holds_nothing): a notebook user makes one client; a case that closed, changed or kept hold
    of it gets its successor a new one. A client that is not kept is closed before the namespace is cleared,
    as it was when each case had its own. Returns the "prepared" event: whether the client was kept, and why
    not."""
    import time

    global _client_vars, _closing
    t0 = time.perf_counter()
    closed = None
    if _closing is not None:
        (thread, closed), _closing = _closing, None
        thread.join(CLOSE_WAIT)
    shell = get_ipython()  # noqa: F821 - only ever called inside an IPython kernel
    _close_own(shell, closed)
    why = _reusable(address, default) if keep else "the case named a client"
    client = _client if why is None else _new_client(address, default, timeout)
    _reset(shell)
    if why is None:
        why = _holds_nothing(client)
        if why is not None:
            client = _new_client(address, default, timeout)
    from distributed import Client

    shell.user_ns["Client"] = Client
    shell.user_ns["client"] = client
    _client_vars = dict(vars(client))
    kernel_baseline()
    return {"event": "prepared", "kept": why is None, "why": why, "seconds": time.perf_counter() - t0}


def kernel_prepare_cell(address: str, default: bool, keep: bool = True) -> None:
    """The harness's preparing cell: kernel_prepare, its event printed."""
    import json

    print(KERNEL_MARK + json.dumps(kernel_prepare(address, default, keep), default=str))


def _close_in_background() -> None:
    """The notebook's client closes in a thread while the harness checks the cluster; the next case's preparing
    cell waits for it (kernel_prepare) and clears the namespace."""
    global _client, _client_vars, _closing
    client, _client, _client_vars = _client, None, None
    if client is not None:
        thread = threading.Thread(target=_close, args=(client,), name="picklematrix close the client", daemon=True)
        thread.start()
        _closing = (thread, client)


def kernel_after(then: tuple | None, outcome: str | None = None) -> list:
    """What a case's last cell does once its answer is out: the global-state check, then, if the case changed
    nothing, the next case's notebook prepared (``then``: ``(address, default, keep)`` of kernel_prepare). The
    events, in order.

    The notebook is not prepared ahead when no kernel case follows (``then`` None), for a case that named its
    client (it is not kept: ``keep`` false), after a compute call that hung, lost a worker or failed in the
    harness (``outcome``: the harness may replace the cluster after such a cell), or when the client is closed
    or broken. Then the client closes in the background (see _close_in_background), and the next case's
    preparing cell does the rest."""
    changes = kernel_changes()
    events = [changes]
    if changes["changed"]:
        return events  # the harness replaces this kernel: nothing more is done in it
    if (then is None or not then[2] or outcome in _MAY_REPLACE_THE_CLUSTER
            or (_client is not None and getattr(_client, "status", None) != "running")):
        _close_in_background()
        return events
    try:
        # (a connect that fails here is tried again, with the preparing cell's whole wait, by the next case)
        events.append(kernel_prepare(*then, timeout=AHEAD_CONNECT_WITHIN))
    except Exception as e:  # the next case's preparing cell does it again, and reports what fails
        events.append({"event": "prepared", "error": f"{type(e).__name__}: {e}"})
    return events


def kernel_compute(method_name: str, *, case_id: str, timeout: float, samples: int = 1,
                   events_path: str | None = None, then: tuple | None = None) -> None:
    """Called by the harness inside a Jupyter kernel, after the case's cell ran there.

    Events and the result go to stdout as marked JSON lines: the harness reads
    them from the kernel's iopub stream. They are also appended to
    ``events_path``: a write to a file is done when ``write`` returns, while
    output on iopub is lost if the task kills the kernel before zmq sends it.
    Only the result is flushed at once (a hand-over to the kernel's IO thread,
    a millisecond or more: the harness lets the next script cell's process
    connect then); the rest go with the kernel's next flush. The start of a
    compute call and of each sample restart the harness's clock from when they
    happened (``at``), and the harness reads them from ``events_path`` before
    its wait runs out.

    Once the result is out: kernel_after (``then``): the global-state check, and
    the next case's notebook prepared in this same cell. After a case's cell
    that raised, only that.
    """
    import json
    import time

    shell = get_ipython()  # noqa: F821 - only ever called inside an IPython kernel
    ns = shell.user_ns
    if not shell.last_execution_succeeded:
        # The case's cell raised (the harness sends both cells at once, and reads why from that cell): nothing to
        # compute. What the case changed, and the next notebook, as after a compute.
        for event in kernel_after(then):
            print(KERNEL_MARK + json.dumps(event, default=str))
        return

    def emit(event, flush=None):
        if event.get("event") in _CLOCKS:
            event = dict(event, at=time.monotonic())
        line = json.dumps(event, default=str)
        if events_path:
            with open(events_path, "a") as f:
                f.write(line + "\n")
        if flush is None:
            flush = event.get("event") in _FLUSHED
        if flush:
            sys.__stdout__.flush()
        print(KERNEL_MARK + line, flush=flush)

    result = compute_phase(ns, ns.get("client"), method_name, case_id=case_id, context="kernel", timeout=timeout,
                           samples=samples, emit=emit)
    emit(result, flush=True)
    # Before the client closes or the namespace goes (closing it rebinds dask's config, as it should):
    # what the case changed. Then the next case's notebook.
    for event in kernel_after(then, result.get("outcome")):
        emit(event, flush=False)


# the event the harness acts on as it comes (see kernel_compute), and those that restart its clock
_FLUSHED = frozenset({"result"})
_CLOCKS = frozenset(CLOCK_EVENTS)
# outcomes of a compute call after which the harness repairs the cluster, or may (see kernel_after)
_MAY_REPLACE_THE_CLUSTER = frozenset({oc.TIMEOUT, oc.WORKER_DIED, oc.HARNESS_ERROR})
