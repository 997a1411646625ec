"""The data model survives JSON losslessly: structure(unstructure(x)) == x."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import cattrs
import pytest
from hypothesis import given, settings
from support.strategies import runs

from kitt._util.converter import from_json, structure, to_json, unstructure
from kitt.records import (
    BenchmarkResult,
    EngineConfig,
    Fingerprint,
    Metric,
    Run,
)


@settings(max_examples=150, deadline=None)
@given(runs)
def test_run_round_trips_through_json(run):
    assert structure(unstructure(run), Run) == run
    assert from_json(to_json(run), Run) == run


def test_json_document_shape_is_plain_and_readable():
    run = Run(
        id="r1", model="tiny.gguf", engine=EngineConfig("llamacpp"), suite="quick",
        status="passed", started_at=datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc),
        kitt_version="0.1.0", hardware=Fingerprint("nogpu"),
        results=(BenchmarkResult("throughput", "1", 1, True,
                                 metrics=(Metric("output_tokens_per_s", 123.5, "tokens/s"),)),),
    )
    doc = json.loads(to_json(run))
    assert doc["started_at"] == "2026-11-28T12:00:00+00:00"
    assert doc["results"][0]["metrics"][0] == {
        "name": "output_tokens_per_s", "value": 123.5, "unit": "tokens/s", "direction": None
    }
    assert run.results[0].metric("output_tokens_per_s").value == 123.5


def test_unknown_keys_and_wrong_types_are_rejected():
    good = unstructure(Metric("ttft_ms", 1.0, "ms"))
    with pytest.raises(cattrs.BaseValidationError):
        structure({**good, "surprise": 1}, Metric)
    with pytest.raises(cattrs.BaseValidationError):
        structure({"name": "x"}, Metric)


def test_nan_is_refused_rather_than_written_as_invalid_json():
    with pytest.raises(ValueError):
        to_json(Metric("bad", float("nan")))
