"""The examples in docs/ and the README name only what the installed plugins really
register and emit: suites validate against the benchmarks' parameters, thresholds files
and comparison outputs name metrics a benchmark declares, engine options exist, and
Python examples import only KITT's public API."""

from __future__ import annotations

import ast
import fnmatch
import re
import textwrap

import pytest
from support import ROOT

import kitt
from kitt import plugins

DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def examples(*languages: str) -> list[tuple[str, str]]:
    """(where, text) of every fenced block in one of `languages`."""
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            if match.group(1) in languages:
                line = text[:match.start()].count("\n") + 1
                found.append((f"{path.relative_to(ROOT)}:{line}", match.group(2)))
    assert found, f"no {languages} examples in docs/: the extraction is broken"
    return found


def yaml_examples(key: str) -> list[tuple[str, str, dict]]:
    from ruamel.yaml import YAML

    out = []
    for where, text in examples("yaml"):
        data = YAML(typ="safe").load(text)
        if isinstance(data, dict) and key in data:
            out.append((where, text, data))
    return out


def declared_metrics() -> list[tuple[str, str]]:
    """(benchmark, metric name) for every metric an installed benchmark declares, with
    placeholders filled in (`concurrency_8.output_tokens_per_s`)."""
    names = []
    for name, benchmark in plugins.benchmarks().items():
        for spec in benchmark.metrics:
            names.append((name, re.sub(r"\{\w+\}", "8", spec.name)))
    return names


def is_declared(pattern: str) -> bool:
    return any(fnmatch.fnmatchcase(metric, pattern)
               or fnmatch.fnmatchcase(f"{benchmark}/{metric}", pattern)
               for benchmark, metric in declared_metrics())


@pytest.fixture
def custom_evals(tmp_path, monkeypatch):
    """The custom evaluation the docs use (`capitals`), as `kitt test new` writes it."""
    from click.testing import CliRunner

    from kitt._cli import get_cli

    monkeypatch.setenv("KITT_HOME", str(tmp_path / "home"))
    done = CliRunner().invoke(get_cli(), ["test", "new", "capitals"])
    assert done.exit_code == 0, done.output


def test_every_suite_example_validates_against_the_benchmarks(tmp_path, custom_evals):
    from kitt._run.suites import load_suite

    found = yaml_examples("benchmarks")
    assert len(found) >= 3
    for index, (where, text, data) in enumerate(found):
        path = tmp_path / f"suite-{index}.yaml"
        path.write_text(text if "name" in data else f"name: example\n{text}")
        try:
            load_suite(str(path), plugins.benchmarks())
        except kitt.BadInput as error:
            pytest.fail(f"the suite example at {where} is invalid: {error}")


def test_every_thresholds_example_names_real_metrics(tmp_path):
    from kitt._compare.thresholds import load_thresholds

    found = [(where, text) for where, text, data in yaml_examples("metrics")
             if isinstance(data["metrics"], dict)]
    assert found, "docs/reports.md shows a thresholds file"
    for index, (where, text) in enumerate(found):
        path = tmp_path / f"thresholds-{index}.yaml"
        path.write_text(text)
        for rule in load_thresholds(path).rules:
            assert is_declared(rule.pattern), (
                f"{where}: {rule.pattern!r} matches no metric any benchmark reports")


def test_json_examples_name_real_benchmarks_and_metrics():
    installed = set(plugins.benchmarks())
    checked = 0
    for where, text in examples("json"):
        for metric in re.findall(r'"metric":\s*"([^"]+)"', text):
            assert is_declared(metric), f"{where}: no benchmark reports {metric!r}"
            checked += 1
        for benchmark in re.findall(r'"benchmark":\s*"([^"]+)"', text):
            assert benchmark in installed, f"{where}: no benchmark {benchmark!r}"
    assert checked, "docs/reports.md shows compare --json"


def test_comparison_output_examples_name_real_metrics():
    checked = 0
    for where, text in examples("console"):
        if "kitt results compare" not in text:
            continue
        lines = text.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("benchmark "))
        for line in lines[start + 1:]:
            if not line or line.startswith(("...", "regressions", "vs baseline")):
                break
            benchmark, metric = line.split()[:2]
            assert (benchmark, metric) in declared_metrics(), f"{where}: {line}"
            checked += 1
        for line in lines:
            if line.startswith(("CRITICAL", "WARNING")):
                _, _, benchmark, metric = line.split()[:4]
                assert (benchmark, metric) in declared_metrics(), f"{where}: {line}"
    assert checked


def test_engine_options_in_examples_exist():
    from kitt._engines.preflight import check_options

    engines = plugins.engines()
    configs = [(where, data["engine"], data.get("options") or {})
               for where, _, data in yaml_examples("engine")]
    configs += [(where, name, options)
                for where, _, data in yaml_examples("engine_options")
                for name, options in data["engine_options"].items()]
    for where, _, data in yaml_examples("engines"):  # campaigns
        for entry in data["engines"]:
            if isinstance(entry, dict) and "options" in entry:
                configs.append((where, entry["name"], entry["options"]))
    assert len(configs) >= 3
    for where, engine, options in configs:
        assert engine in engines, f"{where}: no engine {engine!r}"
        try:
            check_options(engines[engine], dict(options))
        except kitt.BadInput as error:
            pytest.fail(f"{where}: {error}")


def test_suites_named_in_campaign_examples_exist():
    from kitt._run.suites import available_suites

    suites = set(available_suites())
    for where, _, data in yaml_examples("models"):
        named = [data.get("suite"), *(entry.get("suite") for group in ("models", "engines")
                                      for entry in data[group] if isinstance(entry, dict))]
        for suite in filter(None, named):
            assert suite in suites, f"{where}: no suite {suite!r}"


def test_python_examples_import_only_the_public_api():
    for where, text in examples("python"):
        tree = ast.parse(textwrap.dedent(text))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                modules, names = [node.module], [alias.name for alias in node.names]
            elif isinstance(node, ast.Import):
                modules, names = [alias.name for alias in node.names], []
            else:
                continue
            for module in modules:
                assert not module.startswith("kitt."), (
                    f"{where}: imports {module}; examples use `kitt` only")
                if module == "kitt":
                    missing = [n for n in names if n not in kitt.__all__]
                    assert not missing, f"{where}: kitt has no {missing}"
        for name in re.findall(r"\bkitt\.([A-Za-z_]\w*)", text):
            assert name in kitt.__all__, f"{where}: kitt.{name} is not public API"


def test_the_plugin_guide_example_is_the_fixture_plugin():
    """docs/plugins.md says the complete example is the fixture plugin the packaging tests
    install; its benchmark must be the one the guide shows."""
    guide = next(text for where, text in examples("python") if "kitt_bench_hello" in text)
    fixture = (ROOT / "tests/fixtures/plugins/kitt-bench-hello/src/kitt_bench_hello/"
               "__init__.py").read_text()
    start = guide.index("CHARACTERS =")
    end = guide.index("@kitt.hookimpl")
    assert guide[start:end].replace('    description = "Counts the characters of a '
                                    'greeting."\n', "") in fixture.replace(
        '    description = "Counts the characters of a greeting."\n', "")
