"""Plugins are found through entry points, can be restricted, and never break kitt."""

from __future__ import annotations

import json

from support import install_fixture_plugin, run_kitt


def plugin_names(result) -> set[str]:
    assert result.returncode == 0, result.stderr
    return {plugin["name"] for plugin in json.loads(result.stdout)}


def test_third_party_plugin_is_discovered_with_everything_it_registers(plugin_site):
    install_fixture_plugin("kitt-bench-hello", plugin_site)
    result = run_kitt("plugins", "list", "--json", site=plugin_site)
    assert result.returncode == 0, result.stderr
    hello = next(p for p in json.loads(result.stdout) if p["name"] == "hello")
    assert hello["distribution"] == "kitt-bench-hello"
    assert hello["version"] == "0.3.0"
    assert hello["benchmarks"] == ["hello"]
    assert hello["probes"] == ["hello"]
    assert hello["commands"] == ["hello"]


def test_plugin_command_runs_and_plugin_probe_appears_in_fingerprint(plugin_site):
    install_fixture_plugin("kitt-bench-hello", plugin_site)
    result = run_kitt("hello", site=plugin_site)
    assert (result.returncode, result.stdout.strip()) == (0, "hello from a plugin")
    result = run_kitt("fingerprint", "--json", site=plugin_site)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["extra"]["hello"] == {"greeting": "hello", "answer": 42}


def test_broken_plugin_warns_in_one_line_and_kitt_still_works(plugin_site):
    install_fixture_plugin("kitt-broken", plugin_site)
    install_fixture_plugin("kitt-bench-hello", plugin_site)
    result = run_kitt("plugins", "list", "--json", site=plugin_site)
    assert plugin_names(result) >= {"fingerprint", "hello"}
    warnings = [line for line in result.stderr.splitlines() if "broken" in line]
    assert len(warnings) == 1
    assert "kitt-broken 0.0.1" in warnings[0]
    assert "ModuleNotFoundError" in warnings[0]


def test_kitt_plugins_restricts_third_party_plugins_but_keeps_builtins(plugin_site):
    install_fixture_plugin("kitt-broken", plugin_site)
    install_fixture_plugin("kitt-bench-hello", plugin_site)
    only_hello = run_kitt("plugins", "list", "--json", site=plugin_site,
                          env={"KITT_PLUGINS": "kitt-bench-hello"})
    assert "broken" not in only_hello.stderr
    assert "hello" in plugin_names(only_hello)
    assert "fingerprint" in plugin_names(only_hello)
    none = run_kitt("plugins", "list", "--json", site=plugin_site, env={"KITT_PLUGINS": ""})
    assert "hello" not in plugin_names(none)
    assert "fingerprint" in plugin_names(none)


def test_plugins_list_table_names_each_plugin(plugin_site):
    install_fixture_plugin("kitt-bench-hello", plugin_site)
    result = run_kitt("plugins", "list", site=plugin_site)
    assert result.returncode == 0
    line = next(line for line in result.stdout.splitlines() if line.startswith("hello"))
    assert "kitt-bench-hello" in line and "0.3.0" in line
