"""Hypothesis strategies for KITT's records: any value the data model allows."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import strategies as st

from kitt.records import (
    DIRECTIONS,
    GPU,
    BenchmarkResult,
    CPUSection,
    EngineConfig,
    Fingerprint,
    GPUSection,
    ItemRecord,
    MemorySection,
    Metric,
    OSSection,
    RequestSample,
    Run,
    StorageSection,
)

text = st.text(max_size=20)
floats = st.floats(allow_nan=False, allow_infinity=False)
opt_text = st.none() | text
opt_int = st.none() | st.integers(min_value=0, max_value=2**40)
opt_float = st.none() | floats
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | floats | text,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(text, children, max_size=3),
    max_leaves=8,
)
json_dicts = st.dictionaries(text, json_values, max_size=4)
datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)
)

fingerprints = st.builds(
    Fingerprint,
    fingerprint=text,
    gpu=st.builds(GPUSection, gpus=st.tuples(st.builds(GPU, name=text, memory_mib=opt_int,
                                                       compute_capability=opt_text,
                                                       uuid=opt_text)),
                  driver_version=opt_text, cuda_version=opt_text,
                  unified_memory=st.booleans(), source=text),
    cpu=st.builds(CPUSection, brand=opt_text, architecture=opt_text, cores=opt_int,
                  threads=opt_int),
    memory=st.builds(MemorySection, total_mib=opt_int, type=opt_text),
    storage=st.builds(StorageSection, kind=opt_text, model=opt_text, device=opt_text),
    os=st.builds(OSSection, system=opt_text, distribution=opt_text, version=opt_text,
                 kernel=opt_text),
    environment=text,
    extra=st.dictionaries(text, json_dicts, max_size=2),
    warnings=st.lists(text, max_size=2).map(tuple),
)
results = st.builds(
    BenchmarkResult,
    name=text,
    version=text,
    run_number=st.integers(1, 100),
    passed=st.booleans(),
    metrics=st.lists(st.builds(Metric, name=text, value=floats, unit=text,
                               direction=st.none() | st.sampled_from(DIRECTIONS)),
                     max_size=3).map(tuple),
    params=json_dicts,
    error=opt_text,
    started_at=st.none() | datetimes,
    finished_at=st.none() | datetimes,
    requests=st.lists(
        st.builds(RequestSample, start_ms=floats, ok=st.booleans(), ttft_ms=opt_float,
                  e2e_ms=opt_float, itl_mean_ms=opt_float, input_tokens=opt_int,
                  output_tokens=opt_int, error=opt_text),
        max_size=3,
    ).map(tuple),
    items=st.lists(
        st.builds(ItemRecord, item_id=text, correct=st.booleans(), target=text, prompt=text,
                  output=text, subject=opt_text,
                  scores=st.dictionaries(text, floats, max_size=2)),
        max_size=3,
    ).map(tuple),
    details=json_dicts,
)
runs = st.builds(
    Run,
    id=text,
    model=text,
    engine=st.builds(EngineConfig, engine=text, mode=st.sampled_from(["native", "docker"]),
                     image=opt_text, port=st.none() | st.integers(1, 65535),
                     options=json_dicts, extra_args=st.lists(text, max_size=3).map(tuple)),
    suite=text,
    status=st.sampled_from(["running", "passed", "failed", "error"]),
    started_at=datetimes,
    kitt_version=text,
    hardware=fingerprints,
    finished_at=st.none() | datetimes,
    engine_version=opt_text,
    config=json_dicts,
    results=st.lists(results, max_size=2).map(tuple),
    error=opt_text,
)
