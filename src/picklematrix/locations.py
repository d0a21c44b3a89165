"""Where the project's own ``cases/`` and ``matrix.toml`` are: inside an installed wheel, or in the checkout."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

# Where a wheel carries the top-level cases/ and matrix.toml (hatch_build.py puts them there).
BUILTIN_DIR = "builtin"


def builtin_path(name: str) -> Path | None:
    """Where the project's own ``cases`` directory or ``matrix.toml`` is, or None if nowhere.

    Installed from a wheel they are inside the package (``picklematrix/builtin/<name>``). Imported
    from a checkout (an editable install, or ``src`` on ``sys.path`` as the noxfile does) they are
    the checkout's top-level ones, read in place, so edits show without reinstalling.
    """
    package = importlib.resources.files(__package__)
    if not isinstance(package, Path):  # imported from a zip: no directory to run cases from
        return None
    shipped = package / BUILTIN_DIR / name
    if shipped.exists():
        return shipped
    root = checkout_root()
    return root / name if root is not None and (root / name).exists() else None


def checkout_root() -> Path | None:
    """The checkout this package is imported from, or None (installed from a wheel, or from a zip).

    A checkout is recognised by its layout (<root>/src/picklematrix next to <root>/pyproject.toml), not
    assumed: an installed package two levels below anything must not pick up a stray cases/.
    """
    package = importlib.resources.files(__package__)
    if not isinstance(package, Path):
        return None
    root = package.parent.parent
    return root if package.parent.name == "src" and (root / "pyproject.toml").is_file() else None


def builtin_or_expected(name: str) -> Path:
    """:func:`builtin_path`, or where it was looked for when missing: errors then name that place."""
    return builtin_path(name) or Path(str(importlib.resources.files(__package__))) / BUILTIN_DIR / name
