"""The `tgi` engine: Hugging Face Text Generation Inference.

TGI ships as a container image; its `text-generation-launcher` starts the router (HTTP,
batching) and the model shards. The launcher's arguments are the same in both modes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

import kitt
from kitt import ContainerSpec, Engine, EngineVersion, Launch, TokenizeApi

DEFAULT_PORT = 8080
IMAGE = "ghcr.io/huggingface/text-generation-inference:latest"
# TGI's image keeps its Hugging Face cache in /data (HF_HOME); its docs mount models there.
DATA_DIR = "/data"
QUANTIZE = ("awq", "compressed-tensors", "eetq", "exl2", "gptq", "marlin", "bitsandbytes",
            "bitsandbytes-nf4", "bitsandbytes-fp4", "fp8")


def _quantize(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and value not in QUANTIZE:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZE)}, not {value!r}")


@attrs.frozen(kw_only=True)
class TgiOptions:
    """Options of the `tgi` engine (`-O name=value`, engines.yaml `engine_options`)."""

    binary: str | None = attrs.field(default=None, validator=kitt.validators.optional_str)
    """Native mode: path of text-generation-launcher; default: PATH."""
    max_input_tokens: int | None = attrs.field(
        default=None, validator=kitt.validators.optional_int(1))
    """Longest prompt accepted (--max-input-tokens); default: TGI's (from the model)."""
    max_total_tokens: int | None = attrs.field(
        default=None, validator=kitt.validators.optional_int(2))
    """Prompt + generated tokens per request (--max-total-tokens)."""
    quantize: str | None = attrs.field(default=None, validator=_quantize)
    """--quantize method (awq, gptq, bitsandbytes, fp8...); default: none."""
    num_shard: int | None = attrs.field(default=None, validator=kitt.validators.optional_int(1))
    """GPUs to shard the model over (--num-shard); default: TGI uses all visible GPUs."""
    dtype: str | None = attrs.field(default=None, validator=kitt.validators.optional_str)
    """--dtype (float16, bfloat16); default: the model's."""
    shm_size: str = attrs.field(default="1g", validator=attrs.validators.instance_of(str))
    """Docker shared memory (NCCL needs it when sharding)."""

    def __attrs_post_init__(self) -> None:
        if (self.max_input_tokens is not None and self.max_total_tokens is not None
                and self.max_input_tokens >= self.max_total_tokens):
            raise ValueError("max_input_tokens must be less than max_total_tokens")


FLAGS = {"max_input_tokens": "--max-input-tokens", "max_total_tokens": "--max-total-tokens",
         "quantize": "--quantize", "num_shard": "--num-shard", "dtype": "--dtype"}


class Tgi(Engine):
    name = "tgi"
    description = "Hugging Face Text Generation Inference"
    formats = ("safetensors", "pytorch")
    modes = ("docker", "native")
    # Native API flavour: /generate and /generate_stream. TGI also serves the OpenAI
    # Messages API (/v1/chat/completions) and /v1/completions.
    api = "tgi"
    default_port = DEFAULT_PORT
    health_path = "/health"
    metrics_path = "/metrics"
    default_image = IMAGE
    Options = TgiOptions
    install_hint = ("TGI ships as a container: use --mode docker (`kitt engines setup tgi` "
                    "pulls the image), or put text-generation-launcher on PATH / set the "
                    "`binary` option")
    features = ("openai_chat", "openai_completions", "tokenize", "token_details")
    stop_grace_s = 15.0  # the launcher stops its shards one by one
    # {"inputs": text} -> [{"id", "text", "start", "stop"}]; TGI has no detokenize.
    tokenize_api = TokenizeApi("/tokenize", "inputs")

    def find_native_binary(self, options: dict[str, Any]) -> Path | None:
        return kitt.find_executable(options.get("binary"), "text-generation-launcher")

    def launcher_args(self, launch: Launch) -> list[str]:
        """text-generation-launcher's arguments for `launch` (both modes)."""
        return ["--model-id", launch.model, "--hostname", launch.host,
                "--port", str(launch.port), *kitt.option_flags(launch.options, FLAGS),
                *launch.extra_args]

    def native_command(self, launch: Launch) -> list[str]:
        binary = self.find_native_binary(launch.options)
        if binary is None:
            raise FileNotFoundError("text-generation-launcher not found")
        return [str(binary), *self.launcher_args(launch)]

    def container_spec(self, launch: Launch, image: str) -> ContainerSpec:
        # KITT mounts the model folder at /models and names that path; TGI's convention
        # is /data, so the folder is mounted there instead and the path follows.
        model = DATA_DIR + launch.model.removeprefix("/models")
        args = self.launcher_args(attrs.evolve(launch, model=model))
        # The image's ENTRYPOINT is text-generation-launcher: arguments only. The model
        # is local: never reach for the Hub.
        return ContainerSpec(image=image, command=tuple(args), container_port=launch.port,
                             model_mount=DATA_DIR, shm_size=launch.options.get("shm_size"),
                             environment={"HF_HUB_OFFLINE": "1"})

    def version(self, base_url: str, binary: Path | None) -> EngineVersion | None:
        import json
        import urllib.request

        with urllib.request.urlopen(f"{base_url}/info", timeout=5) as response:
            info = json.load(response)
        version = info.get("version")
        sha = info.get("sha")
        if not version:
            return None
        return EngineVersion(f"tgi {version}" + (f" ({sha[:12]})" if sha else ""),
                             "GET /info")
