"""Raw per-request records: what the client observed, nothing derived.

Records are the unit that crosses process boundaries (workers send them to the parent), so
they hold plain ints and strings only. Every timestamp is `time.perf_counter_ns()`, which on
Linux is CLOCK_MONOTONIC: one clock for every process on the machine, so records from
different worker processes compare directly.
"""

from __future__ import annotations

import enum

import attrs


class Outcome(str, enum.Enum):
    OK = "ok"
    """The stream ended with its end marker (`[DONE]`, Ollama's `"done": true`, or TGI's
    final `generated_text` event)."""
    ERROR = "error"
    """HTTP status >= 400, a connection failure, or an error object inside the stream."""
    INCOMPLETE = "incomplete"
    """The stream stopped before its end marker (server closed early, cancelled)."""


class TokenSource(str, enum.Enum):
    USAGE = "usage"
    """Reported by the server (OpenAI `usage`, Ollama `eval_count`/`prompt_eval_count`, TGI
    `details.generated_tokens`/`input_length`)."""
    TOKENIZER = "tokenizer"
    """Counted after the run by tokenizing the text (engine `/tokenize` or a local one)."""
    CHUNKS = "chunks"
    """Output only: the number of chunks carrying text (one token per chunk assumed)."""
    WORKLOAD = "workload"
    """Input only: the prompt length the workload measured when it built the prompt."""


@attrs.frozen
class RequestRecord:
    index: int
    """Position in the run's request sequence (global across worker processes)."""
    outcome: Outcome
    start_ns: int
    """Just before the request was handed to the HTTP client (the actual send time)."""
    end_ns: int
    """When the stream's end marker arrived; for failures, when the failure was seen."""
    chunk_ns: tuple[int, ...] = ()
    """Arrival time of every chunk that carried generated text or reasoning text."""
    chunk_tokens: tuple[int, ...] | None = None
    """Tokens in each of those chunks when the server reported per-chunk counts
    (cumulative usage in every chunk); None means unknown (one token per chunk assumed)."""
    output_tokens: int | None = None
    output_tokens_source: TokenSource | None = None
    input_tokens: int | None = None
    input_tokens_source: TokenSource | None = None
    scheduled_ns: int | None = None
    """Rate-based loads: when the schedule said to send (coordinated-omission metrics)."""
    warmup: bool = False
    http_status: int | None = None
    error: str | None = None
    """Error or incompleteness reason; for HTTP errors `HTTP <status>: <body excerpt>`."""
    text: str | None = None
    """Generated text (only when the client was asked to capture it)."""
    reasoning: str | None = None
    """Generated reasoning text (`reasoning_content`/`reasoning`/`thinking`), if captured."""
    worker: int = 0
    connected_ns: int | None = None
    """When the request had its connection, pooled or newly opened, and its bytes were
    about to be written (aiohttp's connection tracing). None when it never got one, or
    the tracing did not report it."""
    written_ns: int | None = None
    """When the request's bytes were handed to the socket (aiohttp's tracing of the body
    write). None when it was never written, or the tracing did not report it."""
    arrival: str | None = None
    """How the chunks were stamped: `kernel` (the kernel's receive time of each read),
    `protocol` (when the event loop delivered the read) or `read` (when the reading task
    ran); None when no stream was read."""
    server_timings: dict[str, int] | None = attrs.field(default=None, hash=False)
    """The server's own timings of this request, as it reported them (integers, durations
    in ns): Ollama's `total_duration`, `load_duration`, `prompt_eval_count`,
    `prompt_eval_duration`, `eval_count`, `eval_duration` from its final object (the keys
    it sent). None for servers that report none."""

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def sent_ns(self) -> int:
        """Where TTFT and E2E start: when the request's bytes went to the socket
        (`written_ns`), so that waiting for a connection, opening it and a client late to
        write are never counted as the engine's time; `connected_ns` or `start_ns` when
        that is unknown."""
        for stamp in (self.written_ns, self.connected_ns):
            if stamp is not None:
                return stamp
        return self.start_ns

    @property
    def connect_ns(self) -> int | None:
        """Time spent waiting for a pooled connection and opening one (0 when an idle
        one was reused at once). None when unknown."""
        return None if self.connected_ns is None else self.connected_ns - self.start_ns
