"""TLS for a cluster at a ``tls://`` address: a ``--scheduler-security`` file as dask's own settings."""

from __future__ import annotations

import os
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

TLS_KEYS = {"ca_file": "DASK_DISTRIBUTED__COMM__TLS__CA_FILE",
            "cert": "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT",
            "key": "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY"}


class SecurityError(ValueError):
    """A ``--scheduler-security`` file is unusable; the message names it and the key."""


def tls_environ(path: str) -> dict:
    """dask's settings (DASK_* variables) for the TLS client of a ``--scheduler-security`` TOML file:
    ``ca_file``, ``cert`` and ``key``, paths relative to the file. Only paths are read here: the
    certificates' contents stay in their files, out of every result and log."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text())
    except OSError as e:
        raise SecurityError(f"--scheduler-security {path}: cannot read it ({e.strerror or e})") from None
    except tomllib.TOMLDecodeError as e:
        raise SecurityError(f"--scheduler-security {path}: not valid TOML: {e}") from None
    unknown = sorted(set(data) - set(TLS_KEYS))
    if unknown:
        raise SecurityError(f"--scheduler-security {path}: unknown key(s) {', '.join(unknown)} "
                            f"(known: {', '.join(TLS_KEYS)})")
    out = {"DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True"}
    for key, var in TLS_KEYS.items():
        if key not in data:
            raise SecurityError(f"--scheduler-security {path}: {key} is missing (a path to the PEM file)")
        where = (file.parent / str(data[key])).resolve()
        if not where.is_file():
            raise SecurityError(f"--scheduler-security {path}: {key} = {data[key]!r}: no such file ({where})")
        out[var] = str(where)
    return out


def use_security(scheduler: str | None, security_file: str | None) -> None:
    """TLS for ``--scheduler tls://...`` (``--scheduler-security FILE``): dask's own settings, in this process and
    (through the environment) in every process the run starts: cells, the kernel, the worker server. A ``tls://``
    address without the file is refused, naming what to give."""
    if not security_file:
        if (scheduler or "").startswith("tls://"):
            raise ValueError(f"{scheduler} is a TLS address: give its certificates with --scheduler-security "
                             "FILE (a TOML file of ca_file, cert, key)")
        return
    import dask

    os.environ.update(tls_environ(security_file))
    dask.config.refresh()
