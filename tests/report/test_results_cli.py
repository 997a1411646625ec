"""`kitt results compare|list` and `kitt report`, run as a user runs them, on a SQLite store
in a temporary KITT_HOME."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import run_kitt
from support.runs import make_run

from kitt._storage.open import open_store
from kitt._util.converter import to_json

BASE, AGAIN, SLOW = "a1b2c3d4e5f6", "b2c3d4e5f6a1", "c3d4e5f6a1b2"


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """KITT_HOME with a default store holding a baseline, an equal run and a slow run."""
    home = tmp_path_factory.mktemp("kitt-home")
    with open_store(f"sqlite://{home / 'kitt.db'}") as store:
        store.save_runs([make_run(BASE, requests=200), make_run(AGAIN, requests=200),
                         make_run(SLOW, requests=200, scale=1.25, failed_benchmark=True)])
    return home


def kitt(home: Path, *args: str):
    return run_kitt(*args, env={"KITT_HOME": str(home), "KITT_STORE": ""})


def test_equal_runs_compare_clean(home):
    done = kitt(home, "results", "compare", BASE, AGAIN[:6])  # a unique prefix is enough
    assert done.returncode == 0, done.stderr
    assert "ttft_ms_p99" in done.stdout and "output_tokens_per_s" in done.stdout
    assert f"vs baseline {BASE}: no regressions" in done.stdout


def test_a_planted_regression_exits_1_and_is_flagged_critical(home):
    done = kitt(home, "results", "compare", BASE, SLOW)
    assert done.returncode == 1, done.stderr
    flagged = [line for line in done.stdout.splitlines() if "CRITICAL" in line]
    assert any("ttft_ms_p99" in line and "+25.00%" in line for line in flagged), done.stdout
    assert any("output_tokens_per_s" in line for line in flagged)
    assert "critical" in done.stdout.splitlines()[-1]


def test_json_output(home):
    done = kitt(home, "results", "compare", "--json", BASE, SLOW, AGAIN)
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["baseline"] == BASE and [r["id"] for r in doc["runs"]] == [BASE, SLOW, AGAIN]
    rows = {(r["benchmark"], r["metric"]): r for r in doc["rows"]}
    ttft = rows[("throughput", "ttft_ms_p99")]
    assert [v["flag"] for v in ttft["values"]] == [None, "critical", "ok"]
    assert ttft["values"][1]["delta_pct"] == pytest.approx(25.0)
    assert ttft["values"][0]["stats"]["n"] == 3 and ttft["values"][0]["stats"]["cv"] > 0
    assert doc["regressions"]["critical"] > 0


def test_thresholds_from_options_and_file(home, tmp_path):
    lenient = kitt(home, "results", "compare", "--warn", "30", "--critical", "60", BASE, SLOW)
    assert lenient.returncode == 0, lenient.stdout
    assert "CRITICAL" not in lenient.stdout
    thresholds = tmp_path / "thresholds.yaml"
    thresholds.write_text("warn: 30\ncritical: 60\nmetrics:\n  ttft_ms_p99:\n    critical: 20\n")
    strict_ttft = kitt(home, "results", "compare", "--json", "--thresholds", str(thresholds),
                       BASE, SLOW)
    assert strict_ttft.returncode == 1
    critical = {r["metric"] for r in json.loads(strict_ttft.stdout)["rows"]
                if r["flag"] == "critical"}
    assert critical == {"ttft_ms_p99"}


def test_bad_input_exits_2(home, tmp_path):
    unknown = kitt(home, "results", "compare", BASE, "ffffffffffff")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("Error: ") and "ffffffffffff" in unknown.stderr
    alone = kitt(home, "results", "compare", BASE)
    assert alone.returncode == 2 and "at least two runs" in alone.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("warn: 5\nmetrics:\n  ttft_ms_p99:\n    direction: sideways\n")
    broken = kitt(home, "results", "compare", "--thresholds", str(bad), BASE, SLOW)
    assert broken.returncode == 2
    assert f"{bad}:4: field 'metrics.ttft_ms_p99.direction'" in broken.stderr
    inverted = kitt(home, "results", "compare", "--warn", "20", "--critical", "10", BASE, SLOW)
    assert inverted.returncode == 2 and "above --critical" in inverted.stderr
    no_store = run_kitt("results", "compare", BASE, SLOW,
                        env={"KITT_HOME": str(tmp_path / "empty"), "KITT_STORE": ""})
    assert no_store.returncode == 2 and "no KARR" in no_store.stderr


def test_results_list(home):
    done = kitt(home, "results", "list", "--json")
    assert done.returncode == 0, done.stderr
    assert {run["id"] for run in json.loads(done.stdout)} == {BASE, AGAIN, SLOW}
    table = kitt(home, "results", "list")
    assert BASE in table.stdout and "failed" in table.stdout


def test_report_of_one_run_and_of_several(home, tmp_path):
    out = tmp_path / "one.html"
    done = kitt(home, "report", BASE[:4], "-o", str(out))
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    assert BASE in page and 'id="plot-e2e"' in page and "<h2>Comparison</h2>" not in page
    both = tmp_path / "both.html"
    done = kitt(home, "report", BASE, SLOW, "-o", str(both))
    assert done.returncode == 0, done.stderr  # a report describes; it does not gate
    page = both.read_text()
    assert "<h2>Comparison</h2>" in page and "<b>critical</b>" in page
    assert "engine returned HTTP 500 on item 17" in page
    missing = kitt(home, "report", "ffffffffffff", "-o", str(tmp_path / "x.html"))
    assert missing.returncode == 2 and not (tmp_path / "x.html").exists()


def test_runs_from_results_folders_need_no_store(tmp_path):
    folders = []
    for run in (make_run(BASE, requests=50), make_run(SLOW, requests=50, scale=1.3)):
        folder = tmp_path / run.id
        folder.mkdir()
        (folder / "metrics.json").write_text(to_json(run))
        folders.append(folder)
    env = {"KITT_HOME": str(tmp_path / "no-home"), "KITT_STORE": ""}
    done = run_kitt("results", "compare", str(folders[0]), str(folders[1] / "metrics.json"),
                    env=env)
    assert done.returncode == 1 and "CRITICAL" in done.stdout, done.stderr
    done = run_kitt("report", str(folders[0]), "-o", "-", env=env)
    assert done.returncode == 0 and done.stdout.startswith("<!DOCTYPE html>")
    assert not (tmp_path / "no-home").exists()  # no store was opened or created
    junk = tmp_path / "junk.json"
    junk.write_text("{}")
    done = run_kitt("report", str(junk), env=env)
    assert done.returncode == 2 and "not a KITT run document" in done.stderr


def test_store_runs_and_results_folders_compare_alike(home, tmp_path):
    """A stored run is read without its document (`Store.comparison_values`), a folder
    whole: both feed the one comparison, so mixing them changes no number. And
    `kitt storage compare` is the same command."""
    folder = tmp_path / SLOW
    folder.mkdir()
    (folder / "metrics.json").write_text(
        to_json(make_run(SLOW, requests=200, scale=1.25, failed_benchmark=True)))
    stored = kitt(home, "results", "compare", "--json", BASE, SLOW, AGAIN)
    mixed = kitt(home, "results", "compare", "--json", BASE, str(folder), AGAIN[:5])
    assert stored.returncode == mixed.returncode == 1, mixed.stderr
    assert json.loads(mixed.stdout) == json.loads(stored.stdout)
    alias = kitt(home, "storage", "compare", "--json", BASE, SLOW, AGAIN)
    assert alias.returncode == 1 and alias.stdout == stored.stdout
