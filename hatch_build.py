"""Build hook: a wheel carries the built-in corpus and matrix; an editable install does not.

The repository keeps ``cases/`` and ``matrix.toml`` at the top level, where people edit them. A
wheel installed with no checkout needs them inside the package (``picklematrix/builtin/``), where
``picklematrix.locations.builtin_path`` finds them. An editable install reads the checkout's own
files instead, so that edits show without reinstalling: a copy of them in site-packages (what
hatchling's declarative ``force-include`` would also put there) could only go stale.
"""

from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

# top-level path in the repository -> path inside the wheel
BUILTIN = {"cases": "picklematrix/builtin/cases", "matrix.toml": "picklematrix/builtin/matrix.toml"}


class BuiltinDataHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        if self.target_name != "wheel" or version != "standard":
            return
        for source, target in BUILTIN.items():
            path = Path(self.root) / source
            if not path.exists():
                # a wheel without them installs fine and then fails on first use: stop here instead
                raise FileNotFoundError(f"{path} is missing: the wheel must carry the built-in {source}")
            build_data["force_include"][str(path)] = target
