"""Runs as InfluxDB line protocol: the escaping rules of each part of a line, and which
points a run becomes. A real InfluxDB reading them back is tests/deploy/test_monitoring.py."""

from __future__ import annotations

import pytest
from support.stores import make_run

from kitt._storage.influx import Influx, influx_lines, line
from kitt.errors import BadInput


def test_each_part_is_escaped_by_its_own_rules():
    assert line("kitt metric,x", {"model": 'a b,c=d\\e"\n\\', "empty": ""},
                {"value": 1.5, "n": 3, "ok": True, "run_id": 'r "1"\\'}, 7) == (
        'kitt\\ metric\\,x,model=a\\ b\\,c\\=d\\e"\\n '
        'value=1.5,n=3i,ok=true,run_id="r \\"1\\"\\\\" 7')


def test_a_run_is_one_run_point_and_one_point_per_metric_value():
    run = make_run(2, params={"concurrency": 8})
    lines = list(influx_lines(run))
    assert len(lines) == 1 + 2 * 3 + 1
    assert lines[0].startswith("kitt_run,engine=llamacpp,fingerprint=fp-a,mode=docker,"
                               "model=tiny.gguf,status=passed,suite=quick ")
    # Repetitions are distinct series (run_number), at the run's start time in ns.
    first, second = (next(x for x in lines if "metric=m0" in x and f"run_number={n}" in x)
                     for n in (1, 2))
    assert 'params={"concurrency":8}' in first and "value=102.0," in first
    assert "value=102.5," in second
    assert first.endswith(f" {int(run.started_at.timestamp()) * 10**9}")


@pytest.mark.parametrize(("url", "problem"), [
    ("localhost:8086/kitt", "not an InfluxDB URL"),
    ("http://localhost:8086", "names no database"),
    ("http://localhost:8086/a/b", "names no database"),
    ("http://u:p@localhost:8086/kitt", "holds credentials"),
    ("http://localhost:8086/kitt?u=x&p=y", "holds credentials"),
])
def test_bad_urls_are_refused_before_anything_is_sent(url, problem):
    with pytest.raises(BadInput) as refused:
        Influx.parse(url)
    assert problem in str(refused.value)


def test_the_url_names_server_and_database():
    assert Influx.parse("https://influx.lab:8086/kitt/") == Influx("https://influx.lab:8086",
                                                                  "kitt")
