"""KITT performance benchmark: streaming load generation and latency/throughput metrics.

Modules (import them directly; this package imports nothing heavy, so loading the plugin
entry point stays cheap):

- `client`: streaming HTTP client (aiohttp) for OpenAI-compatible and Ollama APIs
- `stream_parsers`: incremental SSE / NDJSON parsers (no I/O)
- `records`: raw per-request records
- `metrics`: TTFT, ITL, TPOT, E2E, throughput, goodput, distributions (numpy)
- `load`: load profiles, limits, warmup, sweeps, multi-process workers
- `workload`: synthetic prompts of exact token lengths, JSONL prompts
- `tokenizer`: the Tokenizer protocol, engine `/tokenize` and local tokenizer.json adapters
"""

__version__ = "0.1.0"
