"""One `kitt run`: `suites` (validated YAML), `runner` (the flow: preflight, fingerprint,
launch, warm up, benchmarks, store, teardown), `warmup`, and the `results_folder`."""
