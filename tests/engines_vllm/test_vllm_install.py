"""`pip install kitt-core kitt-engine-vllm`, the way the project is meant to be used, gives
a working `kitt run -e vllm` with its HTML report: real wheels in a fresh virtual
environment, against a real vLLM CPU server in its own environment."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from support import ROOT, require
from support.engines import VLLM_ENV, VLLM_OPTIONS, vllm_python

pytestmark = [pytest.mark.vllm, pytest.mark.engine, pytest.mark.slow, pytest.mark.packaging]


def pip(python: Path, *args: str) -> None:
    done = subprocess.run([str(python), "-m", "pip", *args], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_kitt_core_and_kitt_engine_vllm_run_the_default_suite(tmp_path, tiny_model):
    python = vllm_python()
    require("vllm", python is not None, "set KITT_TEST_VLLM_PYTHON to a Python with vLLM")
    wheels = tmp_path / "wheels"
    pip(Path(sys.executable), "wheel", "--no-deps", "--quiet", "--wheel-dir", str(wheels),
        *(str(ROOT / name) for name in ("kitt-core", "kitt-engine-vllm", "kitt-bench-perf")))
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    pip(env / "bin" / "python", "install", "--quiet", "--find-links", str(wheels),
        "kitt-core", "kitt-engine-vllm")  # nothing else named: the rest must come along
    out = tmp_path / "results"
    done = subprocess.run(
        [str(env / "bin" / "kitt"), "run", "-m", str(tiny_model.hf_dir), "-e", "vllm",
         "-O", f"python={python}",
         *(arg for key, value in VLLM_OPTIONS.items() for arg in ("-O", f"{key}={value}")),
         "-o", str(out), "--json"],
        capture_output=True, text=True, check=False, cwd=env, timeout=900,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
             "KITT_HOME": str(tmp_path / "kitt-home"), **VLLM_ENV})
    assert done.returncode == 0, done.stderr[-4000:]
    doc = json.loads(done.stdout)
    assert doc["run"]["status"] == "passed" and doc["run"]["engine"]["engine"] == "vllm"
    assert [r["name"] for r in doc["run"]["results"]] == ["throughput", "latency"]
    page = (out / "report.html").read_text()
    assert page.count("<svg") >= 2  # its plots: matplotlib came with the benchmarks
