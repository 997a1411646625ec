"""The `llamacpp-python` engine: llama-cpp-python's OpenAI-compatible server.

A separate engine name rather than an option of `llamacpp`: its API differs (it returns
prompt logprobs; it serves one request at a time), so results must say which one ran.
"""

from __future__ import annotations

import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import attrs

from kitt import Engine, Launch, validators

DEFAULT_PORT = 8082


@attrs.frozen(kw_only=True)
class LlamaCppPythonOptions:
    """Options of the `llamacpp-python` engine."""

    python: str | None = attrs.field(default=None, validator=validators.optional_str)
    """Python interpreter that has llama-cpp-python[server]; default: KITT's own."""
    ctx_size: int | None = attrs.field(default=4096, validator=validators.optional_int(1))
    gpu_layers: int | None = attrs.field(default=None, validator=validators.optional_int(-1))
    threads: int | None = attrs.field(default=None, validator=validators.optional_int(1))


class LlamaCppPython(Engine):
    name = "llamacpp-python"
    description = "llama-cpp-python OpenAI server (returns prompt logprobs)"
    formats = ("gguf",)
    modes = ("native",)
    api = "openai"
    default_port = DEFAULT_PORT
    # The server has no /health; /v1/models answers once the model is loaded.
    health_path = "/v1/models"
    metrics_path = None
    Options = LlamaCppPythonOptions
    install_hint = "pip install 'llama-cpp-python[server]' (into KITT's Python, or set the " \
                   "`python` option to an interpreter that has it)"
    features = ("prompt_logprobs",)
    stop_grace_s = 5.0

    def find_native_binary(self, options: dict[str, Any]) -> Path | None:
        configured = options.get("python")
        if configured:
            path = Path(str(configured)).expanduser()
            return path if path.is_file() else None
        if find_spec("llama_cpp") is None or find_spec("uvicorn") is None:
            return None  # uvicorn comes with the [server] extra
        return Path(sys.executable)

    def native_command(self, launch: Launch) -> list[str]:
        python = self.find_native_binary(launch.options)
        if python is None:
            raise FileNotFoundError("llama-cpp-python not found")
        o = launch.options
        args = [str(python), "-m", "llama_cpp.server", "--model", launch.model,
                "--host", launch.host, "--port", str(launch.port),
                "--model_alias", launch.served_name]
        for flag, key in (("--n_ctx", "ctx_size"), ("--n_gpu_layers", "gpu_layers"),
                          ("--n_threads", "threads")):
            if o.get(key) is not None:
                args += [flag, str(o[key])]
        return [*args, *launch.extra_args]

    def version(self, base_url: str) -> str | None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"llama-cpp-python {version('llama_cpp_python')}"
        except PackageNotFoundError:
            return None
