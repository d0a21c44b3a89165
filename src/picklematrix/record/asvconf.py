"""asv's configuration: ``asv.conf.json`` in the checkout is the one source; every asv command gets it here.

Recording (``asv machine``, ``asv run``) and publishing (``asv publish``) each need the checkout's file with
absolute paths of their own (a private results dir, the site). They call :func:`write_config`, which
reads the checkout's file and overrides only paths, so a setting changed in ``asv.conf.json`` reaches both.
"""

from __future__ import annotations

import json
from pathlib import Path

CONFIG_NAME = "asv.conf.json"


class AsvConfigError(Exception):
    """The checkout's asv.conf.json is missing or unreadable."""


def load_config(checkout: Path) -> dict:
    """The checkout's ``asv.conf.json`` (asv allows ``//`` comment lines; they are dropped)."""
    path = Path(checkout) / CONFIG_NAME
    try:
        text = "\n".join(line for line in path.read_text().splitlines() if not line.strip().startswith("//"))
        return json.loads(text)
    except (OSError, ValueError) as e:
        raise AsvConfigError(f"{path}: cannot read asv's configuration ({e}); run from a picklematrix "
                             "checkout, or restore the file with `git checkout asv.conf.json`") from None


def default_html_dir(checkout: Path, results_dir: Path) -> Path:
    """Where the site goes: the config's ``html_dir`` for the checkout's own results dir, else next to it."""
    checkout = Path(checkout).resolve()
    conf = load_config(checkout)
    own_results = (checkout / conf.get("results_dir", "results")).resolve()
    if Path(results_dir).resolve() == own_results:
        return checkout / conf.get("html_dir", "html")
    return Path(results_dir).resolve().parent / "html"


def write_config(dest: Path, *, checkout: Path, results_dir: Path, html_dir: Path, env_dir: Path) -> Path:
    """The checkout's configuration with absolute paths, written to ``dest``; returns ``dest``."""
    checkout = Path(checkout).resolve()
    conf = load_config(checkout)
    conf.update(repo=str(checkout), benchmark_dir=str(checkout / conf.get("benchmark_dir", "benchmarks")),
                results_dir=str(results_dir), html_dir=str(html_dir), env_dir=str(env_dir))
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(conf, indent=1))
    return dest
