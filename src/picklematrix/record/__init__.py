"""Recording an env: the harness run and asv, results directory, fingerprint, logs, envs on demand, shards, bisect."""
