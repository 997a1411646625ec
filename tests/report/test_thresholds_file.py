"""Thresholds files: what they accept, and errors that point at the file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kitt._compare.thresholds import Rule, Thresholds, load_thresholds
from kitt.errors import BadInput


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "thresholds.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_a_complete_file(tmp_path):
    path = write(tmp_path, """
        warn: 3
        critical: 7.5
        metrics:
          ttft_ms_p99: {warn: 10, critical: 25}
          "mmlu/acc":
            critical: 2
          "*_stderr":
            direction: neutral
          window_s:
            direction: higher
    """)
    assert load_thresholds(path) == Thresholds(3.0, 7.5, (
        Rule("ttft_ms_p99", 10.0, 25.0), Rule("mmlu/acc", None, 2.0),
        Rule("*_stderr", direction="neutral"), Rule("window_s", direction="higher")))


def test_an_empty_file_means_defaults(tmp_path):
    assert load_thresholds(write(tmp_path, "# nothing yet\n")) == Thresholds()


@pytest.mark.parametrize(("text", "where", "message"), [
    ("warn: 5\ncritical: lots\n", ":2: field 'critical'", "expected a percentage"),
    ("warn: 5\nmetrics:\n  ttft_ms_p99:\n    direction: sideways\n",
     ":4: field 'metrics.ttft_ms_p99.direction'", "expected one of higher, lower, neutral"),
    ("metrics:\n  ttft_ms_p99:\n    warn: 5\n    critcal: 9\n",
     ":4: field 'metrics.ttft_ms_p99.critcal'", "unknown key 'critcal'"),
    ("metrics:\n  e2e_ms_p50: {warn: 30, critical: 10}\n",
     ":2: field 'metrics.e2e_ms_p50'", "warn 30 is above critical 10"),
    ("warm: 5\n", ":1: field 'warm'", "unknown key"),
    ("metrics:\n  - ttft_ms_p99\n", ":1: field 'metrics'", "expected a mapping"),
    ("metrics:\n  ttft: -4\n", ":2: field 'metrics.ttft'", "expected a mapping"),
    ("metrics:\n  ttft: {warn: -4}\n", ":2: field 'metrics.ttft.warn'", "percentage >= 0"),
    ("warn: 5\n  critical: [\n", ":2", "invalid YAML"),
])
def test_errors_name_file_line_and_field(tmp_path, text, where, message):
    path = write(tmp_path, text)
    with pytest.raises(BadInput) as raised:
        load_thresholds(path)
    error = str(raised.value)
    assert error.startswith(f"{path}{where}"), error
    assert message in error


def test_a_missing_file(tmp_path):
    with pytest.raises(BadInput, match=r"thresholds file .* does not exist"):
        load_thresholds(tmp_path / "nope.yaml")
