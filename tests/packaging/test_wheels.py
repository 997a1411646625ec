"""Packaging proof: real wheels, installed into a fresh virtual environment, find each
other through entry points alone; kitt-core's own plugins need none."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from support import FIXTURES, ROOT

pytestmark = [pytest.mark.packaging, pytest.mark.slow]

BUILTIN = {"backends", "campaign", "engines", "fingerprint", "inventory", "models", "probes",
           "results", "run", "storage"}
"""kitt-core's plugins (kitt.plugins.DEFAULT_PLUGINS), by name."""
DISTRIBUTIONS = sorted(path.parent for path in ROOT.glob("kitt-*/pyproject.toml"))


def pip(python: Path, *args: str) -> None:
    done = subprocess.run([str(python), "-m", "pip", *args], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheels")
    sources = [*DISTRIBUTIONS, FIXTURES / "plugins" / "kitt-bench-hello"]
    pip(Path(sys.executable), "wheel", "--no-deps", "--wheel-dir", str(out),
        *map(str, sources))
    return out


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory, wheels) -> Path:
    """A venv with kitt-core, the third-party fixture plugin and kitt-bench-perf."""
    env = tmp_path_factory.mktemp("venv")
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    pip(python, "install", "--quiet", "--find-links", str(wheels),
        "kitt-core", "kitt-bench-hello", "kitt-bench-perf")
    return env


def test_every_distribution_builds_a_wheel(wheels):
    built = {path.name.split("-")[0] for path in wheels.glob("*.whl")}
    expected = {path.name.replace("-", "_") for path in DISTRIBUTIONS} | {"kitt_bench_hello"}
    assert built == expected


def kitt(env: Path, *args: str) -> subprocess.CompletedProcess:
    # A bare environment and cwd keep the source tree out: only what was installed is seen.
    return subprocess.run([str(env / "bin" / "kitt"), *args], capture_output=True, text=True,
                          check=False, cwd=env, env={"PATH": "/usr/bin:/bin", "HOME": str(env)})


def test_installed_plugins_are_discovered_and_listed(fresh_env):
    result = kitt(fresh_env, "plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    plugins = {plugin["name"]: plugin for plugin in json.loads(result.stdout)}
    assert plugins["hello"]["distribution"] == "kitt-bench-hello"
    assert plugins["hello"]["benchmarks"] == ["hello"]
    assert plugins["perf"]["distribution"] == "kitt-bench-perf"
    assert plugins["fingerprint"]["distribution"] == "kitt-core"


def test_installed_plugin_registrations_work(fresh_env):
    assert kitt(fresh_env, "hello").stdout.strip() == "hello from a plugin"
    result = kitt(fresh_env, "fingerprint", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["extra"]["hello"]["answer"] == 42


def test_kitt_core_alone_works(tmp_path, wheels):
    env = tmp_path / "core-only"
    venv.create(env, with_pip=True)
    pip(env / "bin" / "python", "install", "--quiet", "--find-links", str(wheels), "kitt-core")
    result = kitt(env, "plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    plugins = json.loads(result.stdout)
    assert {p["name"] for p in plugins} == BUILTIN
    assert {p["distribution"] for p in plugins} == {"kitt-core"}
    assert kitt(env, "engines", "list", "--json").returncode == 0


def test_a_missing_extra_exits_2_naming_its_pip_install(tmp_path, wheels):
    env = tmp_path / "core-only"
    venv.create(env, with_pip=True)
    pip(env / "bin" / "python", "install", "--quiet", "--find-links", str(wheels), "kitt-core")
    tiny = kitt(env, "models", "tiny", str(tmp_path / "model"))
    assert tiny.returncode == 2
    assert "pip install 'kitt-core[tiny]'" in tiny.stderr
    report = kitt(env, "report", str(tmp_path / "nothing-yet"))
    assert report.returncode == 2 and "pip install 'kitt-core[report]'" in report.stderr


def test_a_source_tree_that_was_never_installed_has_every_builtin_command(tmp_path, wheels):
    env = tmp_path / "deps-only"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    pip(python, "install", "--quiet", "--find-links", str(wheels), "kitt-core")
    pip(python, "uninstall", "--yes", "--quiet", "kitt-core")  # its dependencies stay
    done = subprocess.run([str(python), "-m", "kitt", "plugins", "list", "--json"],
                          capture_output=True, text=True, check=False, cwd=env,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(env),
                               "PYTHONPATH": str(ROOT / "kitt-core" / "src")})
    assert done.returncode == 0, done.stderr
    plugins = json.loads(done.stdout)
    assert {p["name"] for p in plugins} == BUILTIN
    # The version is written in the source (the wheel reads it from there), so even a
    # tree that was never installed reports the true one.
    source = (ROOT / "kitt-core" / "src" / "kitt" / "_util" / "version.py").read_text()
    [version] = re.findall(r'^__version__ = "([^"]+)"$', source, re.M)
    assert {p["version"] for p in plugins} == {version}
    assert version in {d.name.split("-")[1] for d in wheels.glob("kitt_core-*.whl")}
