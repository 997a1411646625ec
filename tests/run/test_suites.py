"""Suites: every setting reaches the benchmark it names; every mistake names file:line."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

import kitt
from kitt._run.suites import available_suites, load_suite
from kitt.errors import BadInput


@attrs.frozen
class LoadParams:
    concurrency: int = 1
    rate: float | None = None
    prompt: str = "hi"
    stream: bool = True
    temperature: float = 0.0


class Load(kitt.Benchmark):
    name = "load"
    Params = LoadParams


@attrs.frozen
class QuizParams:
    limit: int = 10
    temperature: float = 0.0


class Quiz(kitt.Benchmark):
    name = "quiz"
    Params = QuizParams


BENCHMARKS = {"load": Load(), "quiz": Quiz()}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


def test_parameters_defaults_and_runs_reach_each_benchmark(tmp_path):
    path = write(tmp_path, """\
name: mine
version: "3"
description: two benchmarks
runs: 2
warmup: {requests: 5, max_tokens: 8}
defaults:
  temperature: 0.7
benchmarks:
  - name: load
    runs: 4
    params: {concurrency: 16, rate: 2.5, prompt: hello, stream: false}
  - name: quiz
    params: {limit: 3, temperature: 0.1}
  - load
""")
    suite = load_suite(str(path), BENCHMARKS)
    first, second, third = suite.benchmarks
    assert (suite.name, suite.version, suite.description) == ("mine", "3", "two benchmarks")
    assert (suite.warmup.requests, suite.warmup.max_tokens) == (5, 8)
    assert first.params == LoadParams(16, 2.5, "hello", False, 0.7)
    assert first.runs == 4
    assert second.params == QuizParams(3, 0.1)  # a benchmark's own value beats the default
    assert second.runs == 2
    assert third.params == LoadParams(temperature=0.7)
    assert suite.effective_config()["benchmarks"][0] == {
        "name": "load", "runs": 4,
        "params": {"concurrency": 16, "rate": 2.5, "prompt": "hello", "stream": False,
                   "temperature": 0.7},
    }


def test_runs_from_the_command_line_replace_every_count(tmp_path):
    path = write(tmp_path, "name: s\nruns: 2\nbenchmarks:\n  - name: load\n    runs: 5\n")
    assert [b.runs for b in load_suite(str(path), BENCHMARKS, runs=3).benchmarks] == [3]


@pytest.mark.parametrize(("text", "where", "words"), [
    ("name: s\nbenchmarks:\n  - name: nope\n", ":3:", ["unknown benchmark 'nope'",
                                                       "benchmarks[0].name"]),
    ("name: s\nbenchmarks:\n  - name: load\n    params:\n      concurency: 2\n", ":5:",
     ["unknown parameter 'concurency'", "concurrency"]),
    ("name: s\nbenchmarks:\n  - name: load\n    params:\n      concurrency: many\n", ":5:",
     ["benchmarks[0].params.concurrency", "expected int"]),
    ("name: s\nbenchmarks:\n  - name: load\n    params:\n      concurrency: 2.5\n", ":5:",
     ["expected int"]),
    ("name: s\nbenchmarks:\n  - name: load\n    runs: 0\n", ":4:", ["runs", ">= 1"]),
    ("name: s\nbenchmark:\n  - load\n", ":2:", ["unknown key 'benchmark'"]),
    ("name: s\n", "suite.yaml", ["missing required key 'benchmarks'"]),
    ("name: s\nbenchmarks: []\n", ":2:", ["non-empty list"]),
    ("name: s\nbenchmarks:\n  - name: load\n  params: {}\n bad", ":", ["invalid YAML"]),
    ("name: s\nwarmup: {requests: -1}\nbenchmarks: [load]\n", ":2:", ["warmup.requests"]),
])
def test_mistakes_name_file_line_and_field(tmp_path, text, where, words):
    path = write(tmp_path, text)
    with pytest.raises(BadInput) as caught:
        load_suite(str(path), BENCHMARKS)
    message = str(caught.value)
    assert f"{path}{where}" in message or (where == "suite.yaml" and str(path) in message)
    for word in words:
        assert word in message
    assert caught.value.exit_code == 2


def test_unknown_suite_name_lists_the_known_ones():
    with pytest.raises(BadInput) as caught:
        load_suite("no-such-suite", BENCHMARKS)
    assert "quick" in caught.value.hint


def test_missing_suite_file_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="does not exist"):
        load_suite(str(tmp_path / "absent.yaml"), BENCHMARKS)


def test_user_suites_are_found_by_name_before_builtins(tmp_path, monkeypatch):
    monkeypatch.setenv("KITT_HOME", str(tmp_path))
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "quick.yaml").write_text("name: my-quick\nbenchmarks: [load]\n")
    assert available_suites()["quick"] == tmp_path / "suites" / "quick.yaml"
    assert load_suite("quick", BENCHMARKS).name == "my-quick"
