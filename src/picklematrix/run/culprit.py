"""The attribute path from a cell's ``result`` to the object that could not be pickled (``root_cause.path``).

"cannot pickle 'sqlite3.Connection' object" does not say where in the graph the connection was. The
client still has the object it tried to pickle, so the harness looks: a breadth-first walk from the cell's
``result`` along what cloudpickle would follow (containers, instance attributes, and the globals, closures
and class bodies of what is pickled by value: functions and classes of ``__main__``), to the first object
that is the culprit. Python 3.13's pickling notes say the same where present; the walk works on 3.10-3.12.
Runs inside every matrix environment: standard library only.
"""

from __future__ import annotations

import functools
import pickle
import re
import time
import weakref

from picklematrix.outcomes import normalise, safe_str

_CANNOT_PICKLE = re.compile(r"cannot pickle '([^']+)' object")
_REDUCERS = frozenset({"__reduce__", "__reduce_ex__", "__getstate__", "reducer_override"})


def _type_names(obj) -> tuple:
    cls = type(obj)
    return (cls.__name__, f"{cls.__module__}.{cls.__qualname__}")


def culprit_predicates(exc: BaseException) -> list:
    """Tests for the object ``exc`` (a root cause of pickling) is about, the most precise first: the type a
    "cannot pickle 'T' object" names (CPython's own wording for an object without a reducer, 3.10 to
    3.13), then the ``self`` of a ``__reduce__``/``__getstate__`` in whose frame it was raised."""
    predicates = []
    match = _CANNOT_PICKLE.search(safe_str(exc))
    if match:
        name = match.group(1)
        predicates.append(lambda obj: name in _type_names(obj))
    tb = exc.__traceback__
    owner = _MISSING_OWNER = object()
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name in _REDUCERS and "self" in frame.f_locals:
            owner = frame.f_locals["self"]  # the innermost such frame wins
        tb = tb.tb_next
    if owner is not _MISSING_OWNER:
        predicates.append(lambda obj: obj is owner)
    return predicates


def _by_value(obj) -> bool:
    # cloudpickle pickles functions and classes of __main__ by value (their globals and bodies go with
    # them); anything importable goes by reference, and its insides never reach the pickle
    return getattr(obj, "__module__", None) == "__main__"


def _children(obj):
    """(label, child) pairs: what pickling ``obj`` would pickle next, labelled as a path step."""
    import types

    if isinstance(obj, dict):
        for key, value in list(obj.items()):
            yield f"[{_short(key)}]", value
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield f"[{i}]", value
    elif isinstance(obj, (set, frozenset)):
        for value in list(obj):
            yield f"{{{_short(value)}}}", value
    elif isinstance(obj, types.FunctionType):
        if not _by_value(obj):
            return
        for i, cell in enumerate(obj.__closure__ or ()):
            try:
                yield f".__closure__[{i}].cell_contents", cell.cell_contents
            except ValueError:  # an empty cell
                pass
        names = set(obj.__code__.co_names)
        for const in obj.__code__.co_consts:  # nested functions' globals count too
            if isinstance(const, types.CodeType):
                names.update(const.co_names)
        for name in sorted(names):
            if name in obj.__globals__:
                yield f".__globals__[{name!r}]", obj.__globals__[name]
        for label in ("__defaults__", "__kwdefaults__"):
            value = getattr(obj, label, None)
            if value:
                yield f".{label}", value
    elif isinstance(obj, types.MethodType):
        yield ".__self__", obj.__self__
        yield ".__func__", obj.__func__
    elif isinstance(obj, type):
        if not _by_value(obj):
            return
        for key, value in list(vars(obj).items()):
            if key not in ("__dict__", "__weakref__", "__doc__", "__module__", "__qualname__"):
                yield f".{key}", value
    elif isinstance(obj, types.ModuleType):
        return
    elif isinstance(obj, weakref.ref):
        yield "()", obj()
    else:
        if isinstance(obj, functools.partial):  # (not duck-typed: a Delayed makes up any attribute asked for)
            yield ".func", obj.func
            yield ".args", obj.args
            yield ".keywords", obj.keywords
        namespace = getattr(obj, "__dict__", None)
        if isinstance(namespace, dict):
            for key, value in list(namespace.items()):
                yield f".{key}", value
        for cls in type(obj).__mro__:
            for slot in cls.__dict__.get("__slots__", ()) if isinstance(cls.__dict__.get("__slots__", ()),
                                                                        (tuple, list)) else ():
                try:
                    yield f".{slot}", getattr(obj, slot)
                except AttributeError:
                    pass
        if _by_value(type(obj)):
            yield ".__class__", type(obj)
        cls = type(obj)
        if cls.__reduce_ex__ is not object.__reduce_ex__ or cls.__reduce__ is not object.__reduce__:
            # an object that says itself what to pickle (pydantic 2.8's weak references to a namespace's
            # values reduce to the referent): what its reducer returns, as the pickler would ask
            try:
                reduced = obj.__reduce_ex__(pickle.DEFAULT_PROTOCOL)
            except Exception:  # (the culprit's own reducer, often): its attributes above still count
                reduced = None
            if isinstance(reduced, tuple):
                for i, value in enumerate(reduced[1] if len(reduced) > 1 and isinstance(reduced[1], tuple) else ()):
                    yield f".__reduce__()[1][{i}]", value
                if len(reduced) > 2 and reduced[2] is not None:
                    yield ".__reduce__()[2]", reduced[2]


def _short(value, limit: int = 60) -> str:
    try:
        text = normalise(repr(value))
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."


def culprit_path(root, exc: BaseException, *, root_label: str = "result", max_objects: int = 200_000,
                 max_seconds: float = 1.0) -> str | None:
    """The path from ``root`` to the object the pickling error ``exc`` is about
    (``result.dask['on_worker-…'][1].conn_lock``), or None: no culprit named, or not found within the
    walk's bounds (objects and seconds: it runs on a failed cell only, but must not become the cell)."""

    deadline = time.monotonic() + max_seconds
    for is_culprit in culprit_predicates(exc):
        path = _walk(root, is_culprit, root_label, max_objects, deadline)
        if path is not None:
            return path
    return None


def _walk(root, is_culprit, root_label: str, max_objects: int, deadline: float) -> str | None:

    seen = {id(root)}
    queue = [(root, root_label)]
    keep = [root]  # the walk's objects stay alive while their ids are in ``seen``
    for obj, path in queue:
        if len(seen) > max_objects or time.monotonic() > deadline:
            return None
        try:
            if is_culprit(obj):
                return path
            children = list(_children(obj))
        except Exception:  # an object whose attributes raise: not the way to the culprit
            continue
        for label, child in children:
            if id(child) not in seen and not isinstance(child, (str, bytes, int, float, bool, type(None))):
                seen.add(id(child))
                keep.append(child)
                queue.append((child, path + label))
    return None
