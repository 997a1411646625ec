"""Plugins are found through entry points, can be restricted, and never break kitt."""

from __future__ import annotations

import json
import shutil

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


def test_the_plugin_scan_cache_sees_installs_changes_and_removals(plugin_site, tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    assert "hello" not in plugin_names(run_kitt("plugins", "list", "--json", site=plugin_site,
                                                env=env))
    assert list((tmp_path / "cache" / "kitt").glob("entry-points-*.json")), "no cache"
    install_fixture_plugin("kitt-bench-hello", plugin_site)  # after the cache was written
    assert "hello" in plugin_names(run_kitt("plugins", "list", "--json", site=plugin_site,
                                            env=env))
    points = next(plugin_site.glob("*.dist-info")) / "entry_points.txt"
    points.write_text(points.read_text().replace("hello =", "greeter ="))  # edited in place
    assert "greeter" in plugin_names(run_kitt("plugins", "list", "--json",
                                              site=plugin_site, env=env))
    for cache in (tmp_path / "cache" / "kitt").glob("entry-points-*.json"):
        cache.write_text("{not json")  # a corrupt cache is scanned again, silently
    result = run_kitt("plugins", "list", "--json", site=plugin_site, env=env)
    assert "greeter" in plugin_names(result) and result.stderr == ""
    shutil.rmtree(next(plugin_site.glob("*.dist-info")))  # uninstalled
    assert "greeter" not in plugin_names(run_kitt("plugins", "list", "--json",
                                                  site=plugin_site, env=env))


def test_quick_commands_never_create_kitt_home(tmp_path):
    home = tmp_path / "home"
    assert run_kitt("--help", env={"KITT_HOME": str(home)}).returncode == 0
    assert run_kitt("plugins", "list", env={"KITT_HOME": str(home)}).returncode == 0
    assert not home.exists()


def test_plugins_share_a_command_group_whoever_makes_it_first():
    import click

    import kitt

    cli = click.Group("kitt")
    first = kitt.command_group(cli, "test", "Benchmarks.")
    first.add_command(click.Command("list"))
    second = kitt.command_group(cli, "test", "ignored: the group exists")
    second.add_command(click.Command("new"))
    assert second is first and cli.commands["test"] is first
    assert sorted(first.commands) == ["list", "new"]
    assert first.help == "Benchmarks."
