"""The env model: env ids, matrix.toml and its profiles, skew pairs, specs and freezes, venvs built with uv."""
