"""KITT performance benchmark: streaming load generation and latency/throughput metrics.

Modules (import them directly; this package imports nothing heavy, so loading the plugin
entry point stays cheap):

- `client`: streaming HTTP client (aiohttp) over KITT's stream routes and parsers
  (`kitt.Route`, `kitt.request_body`, `kitt.new_parser`: one wire format for all of KITT)
- `arrival`: kernel receive timestamps for the client's sockets (Linux, plain TCP)
- `health`: the client's own lag during a load, and the client-limited verdict
- `records`: raw per-request records
- `metrics`: TTFT, ITL, TPOT, E2E, throughput, goodput, distributions (numpy)
- `load`: load profiles, limits, warmup, sweeps, multi-process workers
- `workload`: synthetic prompts of exact token lengths, JSONL prompts
- `tokenizer`: local tokenizer.json files, and output counts after a run (the engine's own
  tokenizer is `kitt.EngineTokenizer`)
"""

__version__ = "0.1.0"
