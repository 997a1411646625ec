"""Metric math on synthetic records: exact values, no clocks involved."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kitt_bench_perf.benchmarks.common import summary_metrics
from kitt_bench_perf.metrics import (
    SLO,
    Distribution,
    check_error_rate,
    itl_pooled_ms,
    measurement_window,
    request_metrics,
    summarize,
)
from kitt_bench_perf.records import Outcome, RequestRecord, TokenSource

MS = 1_000_000


def rec(index: int = 0, start: float = 0, chunks: tuple[float, ...] = (), end: float = 0, *,
        tokens: int | None = None, chunk_tokens: tuple[int, ...] | None = None,
        outcome: Outcome = Outcome.OK, scheduled: float | None = None, warmup: bool = False,
        input_tokens: int | None = None, error: str | None = None,
        server_timings: dict[str, int] | None = None) -> RequestRecord:
    """A record with times given in ms."""
    return RequestRecord(
        index=index, outcome=outcome, start_ns=round(start * MS), end_ns=round(end * MS),
        chunk_ns=tuple(round(c * MS) for c in chunks), chunk_tokens=chunk_tokens,
        output_tokens=len(chunks) if tokens is None else tokens,
        output_tokens_source=TokenSource.USAGE, input_tokens=input_tokens,
        input_tokens_source=TokenSource.USAGE if input_tokens is not None else None,
        scheduled_ns=None if scheduled is None else round(scheduled * MS), warmup=warmup,
        error=error, server_timings=server_timings,
    )


def test_single_token_chunks() -> None:
    r = rec(start=0, chunks=(100, 110, 130, 160), end=170)
    m = request_metrics(r)
    assert m.ttft_ms == 100
    assert m.e2e_ms == 170
    assert m.tpot_ms == pytest.approx((170 - 100) / 3)
    assert m.itl_request_mean_ms == pytest.approx((160 - 100) / 3)
    assert m.output_tokens_per_s == pytest.approx(4 / 0.170)
    assert itl_pooled_ms([r]).tolist() == [10, 20, 30]


def test_multi_token_chunk_divides_its_gap_among_its_tokens() -> None:
    r = rec(chunks=(100, 130, 140), end=150, tokens=5, chunk_tokens=(1, 3, 1))
    assert itl_pooled_ms([r]).tolist() == [10, 10, 10, 10]
    m = request_metrics(r)
    assert m.itl_request_mean_ms == pytest.approx((140 - 100) / 4)
    assert m.tpot_ms == pytest.approx((150 - 100) / 4)


def test_first_chunk_tokens_follow_no_gap() -> None:
    r = rec(chunks=(100, 120), end=120, tokens=3, chunk_tokens=(2, 1))
    assert itl_pooled_ms([r]).tolist() == [20]
    assert request_metrics(r).itl_request_mean_ms == pytest.approx(20 / 2)


def test_zero_token_chunk_contributes_no_gap() -> None:
    r = rec(chunks=(100, 110, 130), end=130, tokens=2, chunk_tokens=(1, 0, 1))
    assert itl_pooled_ms([r]).tolist() == [20]


def test_pooled_gaps_never_span_two_requests() -> None:
    a = rec(0, chunks=(10, 20), end=20)
    b = rec(1, start=5, chunks=(1000, 1003, 1010), end=1010)
    single = rec(2, chunks=(50,), end=50)
    assert sorted(itl_pooled_ms([a, single, b]).tolist()) == [3, 7, 10]


def test_undefined_per_request_values() -> None:
    one = request_metrics(rec(chunks=(40,), end=45))
    assert one.ttft_ms == 40 and one.tpot_ms is None and one.itl_request_mean_ms is None
    empty = request_metrics(rec(chunks=(), end=45, tokens=0))
    assert empty.ttft_ms is None and empty.tpot_ms is None
    assert empty.output_tokens_per_s == 0


def test_distribution_statistics_use_linear_interpolation_and_population_std() -> None:
    d = Distribution.of(range(1, 11))
    assert d is not None
    assert (d.count, d.mean, d.min, d.max) == (10, 5.5, 1, 10)
    assert d.std == pytest.approx(np.sqrt(8.25))  # ddof=0
    # position h = (n - 1) * p / 100 between order statistics x_0..x_9
    assert d.p50 == pytest.approx(5.5)
    assert d.p90 == pytest.approx(9.1)
    assert d.p95 == pytest.approx(9.55)
    assert d.p99 == pytest.approx(9.91)
    assert d.p99_9 == pytest.approx(9.991)
    assert Distribution.of([]) is None


def test_window_counts_and_throughput() -> None:
    records = [
        rec(0, start=0, chunks=(5,), end=10, warmup=True),                # excluded
        rec(1, start=100, chunks=(150, 160, 170), end=180, input_tokens=20),
        rec(2, start=120, chunks=(200, 210), end=300, input_tokens=30),
        rec(3, start=130, end=140, outcome=Outcome.ERROR, tokens=0, error="HTTP 500: boom"),
        rec(4, start=150, chunks=(400,), end=1100, outcome=Outcome.INCOMPLETE,
            error="stream ended without [DONE]"),
    ]
    assert measurement_window(records) == (100 * MS, 1100 * MS)
    s = summarize(records)
    assert (s.requests, s.successful, s.errored, s.incomplete) == (4, 2, 1, 1)
    assert s.error_rate == 0.5
    assert s.window_s == pytest.approx(1.0)
    assert s.requests_per_s == pytest.approx(2.0)
    assert s.output_tokens_per_s == pytest.approx(5.0)   # successful requests' tokens
    assert s.input_tokens_per_s == pytest.approx(50.0)
    assert s.errors == {"HTTP 500: boom": 1}
    assert s.incomplete_reasons == {"stream ended without [DONE]": 1}
    assert s.ttft_ms is not None and s.ttft_ms.count == 2
    assert s.ttft_ms.mean == pytest.approx((50 + 80) / 2)
    assert s.itl_pooled_ms is not None and sorted([s.itl_pooled_ms.min, s.itl_pooled_ms.max]) \
        == [10, 10]
    assert s.e2e_ms is not None and s.e2e_ms.max == pytest.approx(180)
    assert s.output_token_sources == {"usage": 2}


def test_goodput_counts_requests_meeting_every_slo() -> None:
    records = [
        rec(0, start=0, chunks=(50, 60, 70), end=80),       # ttft 50, tpot 15: meets all
        rec(1, start=0, chunks=(150, 160), end=170),        # ttft 150: misses TTFT
        rec(2, start=0, chunks=(50, 100), end=110),         # tpot 60: misses TPOT
        rec(3, start=0, chunks=(90,), end=1000),            # 1 token: TPOT vacuous, meets
        rec(4, start=0, chunks=(), end=20, tokens=0),       # no text: misses TTFT
        rec(5, start=0, end=2000, outcome=Outcome.ERROR, tokens=0),
    ]
    s = summarize(records, SLO(ttft_ms=100, tpot_ms=20))
    assert s.slo_met == 2
    assert s.window_s == pytest.approx(2.0)
    assert s.goodput_requests_per_s == pytest.approx(1.0)
    assert summarize(records, SLO(ttft_ms=100, tpot_ms=20, e2e_ms=500)).slo_met == 1
    assert summarize(records).goodput_requests_per_s is None


def test_latency_from_scheduled_time_shows_coordinated_omission() -> None:
    r = rec(start=50, chunks=(150, 170), end=200, scheduled=0)
    m = request_metrics(r)
    assert (m.ttft_ms, m.e2e_ms) == (100, 150)
    assert (m.ttft_from_scheduled_ms, m.e2e_from_scheduled_ms) == (150, 200)
    s = summarize([r])
    assert s.send_delay_ms is not None and s.send_delay_ms.mean == 50
    assert s.ttft_from_scheduled_ms is not None and s.ttft_from_scheduled_ms.p50 == 150
    assert summarize([rec(chunks=(1,), end=2)]).ttft_from_scheduled_ms is None


def test_error_rate_check() -> None:
    records = ([rec(i, chunks=(1,), end=2) for i in range(7)]
               + [rec(7 + i, end=1, outcome=Outcome.ERROR) for i in range(2)]
               + [rec(9, end=1, outcome=Outcome.INCOMPLETE)])
    s = summarize(records)
    assert s.error_rate == pytest.approx(0.3)
    assert not check_error_rate(s, 0.25).passed
    assert check_error_rate(s, 0.3).passed
    empty = check_error_rate(summarize([]), 1.0)
    assert not empty.passed and empty.detail == "no measured requests"


def test_outputs_name_both_itl_statistics_and_serialize_to_json() -> None:
    s = summarize([rec(chunks=(10, 20, 40), end=50, input_tokens=3)], SLO(ttft_ms=100))
    names = {m.name for m in summary_metrics(s)}
    assert {"itl_pooled_ms_p99", "itl_request_mean_ms_p50", "ttft_ms_p99", "tpot_ms_mean",
            "e2e_ms_max", "requests_per_s", "goodput_requests_per_s", "error_rate"} <= names
    assert not any(name.startswith("itl_") and not name.startswith(("itl_pooled",
                                                                    "itl_request_mean"))
                   for name in names)
    data = json.loads(json.dumps(s.to_dict()))
    assert data["itl_pooled_ms"]["count"] == 2
    assert data["itl_request_mean_ms"]["mean"] == pytest.approx(15)
    assert data["slo"] == {"ttft_ms": 100, "tpot_ms": None, "itl_ms": None, "e2e_ms": None}


def test_error_messages_are_grouped_and_capped() -> None:
    records = [rec(i, end=1, outcome=Outcome.ERROR, error=f"HTTP 500: request {i}")
               for i in range(25)] + [rec(25 + i, end=1, outcome=Outcome.ERROR,
                                          error="HTTP 503: busy") for i in range(3)]
    errors = summarize(records).errors
    assert next(iter(errors)) == "HTTP 503: busy" and errors["HTTP 503: busy"] == 3
    assert len(errors) == 21 and errors["(other messages)"] == 6
    assert sum(errors.values()) == 28


def test_server_timings_distributions_are_the_servers_own_clock() -> None:
    records = [
        rec(0, chunks=(10, 20), end=30, server_timings={
            "total_duration": 25 * MS, "load_duration": 2 * MS, "prompt_eval_count": 4,
            "prompt_eval_duration": 3 * MS, "eval_count": 2, "eval_duration": 20 * MS}),
        # A cached prompt: no prompt eval fields; no load either.
        rec(1, chunks=(10, 20), end=30, server_timings={
            "total_duration": 21 * MS, "eval_count": 4, "eval_duration": 10 * MS}),
        rec(2, chunks=(10,), end=30),  # no server timings: left out, not zero
        rec(3, end=5, outcome=Outcome.ERROR, error="x",
            server_timings={"total_duration": 999 * MS}),  # failed: not counted
    ]
    s = summarize(records)
    assert (s.server_eval_tokens_per_s.min, s.server_eval_tokens_per_s.max) == (100.0, 400.0)
    assert s.server_eval_tokens_per_s.count == 2
    assert (s.server_prompt_eval_ms.count, s.server_prompt_eval_ms.mean) == (1, 3.0)
    assert (s.server_load_ms.count, s.server_load_ms.max) == (1, 2.0)
    assert (s.server_total_ms.min, s.server_total_ms.max) == (21.0, 25.0)
    metrics = {m.name: m for m in summary_metrics(s)}
    assert metrics["server_eval_tokens_per_s_p50"].unit == "tokens/s"
    assert metrics["server_eval_tokens_per_s_p50"].direction == "higher"
    assert metrics["server_total_ms_p99"].unit == metrics["server_prompt_eval_ms_mean"].unit \
        == "ms"
    assert metrics["server_total_ms_p99"].direction == "lower"
    json.dumps(s.to_dict())


def test_without_server_timings_there_are_no_server_metrics() -> None:
    s = summarize([rec(chunks=(10, 20), end=30)])
    assert s.server_eval_tokens_per_s is None and s.server_total_ms is None
    assert not any(m.name.startswith("server_") for m in summary_metrics(s))
