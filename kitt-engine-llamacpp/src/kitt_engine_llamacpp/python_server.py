"""The `llamacpp-python` engine: llama-cpp-python's OpenAI-compatible server.

A separate engine name rather than an option of `llamacpp`: its API differs (it returns
prompt logprobs; it serves one request at a time), so results must say which one ran.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

import kitt
from kitt import Engine, EngineVersion, Launch, TokenizeApi

DEFAULT_PORT = 8082


@attrs.frozen(kw_only=True)
class LlamaCppPythonOptions:
    """Options of the `llamacpp-python` engine."""

    python: str | None = attrs.field(default=None, validator=kitt.validators.optional_str)
    """Python interpreter that has llama-cpp-python[server]; default: KITT's own."""
    ctx_size: int | None = attrs.field(default=4096, validator=kitt.validators.optional_int(1))
    gpu_layers: int | None = attrs.field(default=None, validator=kitt.validators.optional_int(-1))
    threads: int | None = attrs.field(default=None, validator=kitt.validators.optional_int(1))


FLAGS = {"ctx_size": "--n_ctx", "gpu_layers": "--n_gpu_layers", "threads": "--n_threads"}


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
    # Its tokenizer always adds BOS; KITT strips it (see kitt.EngineTokenizer).
    tokenize_api = TokenizeApi("/extras/tokenize", "input", send_model=True,
                               detokenize_path="/extras/detokenize", detokenize_field="text")

    def find_native_binary(self, options: dict[str, Any]) -> Path | None:
        # uvicorn comes with the [server] extra: without it the server cannot start.
        return kitt.find_python(options.get("python"), "llama_cpp", "uvicorn")

    def native_command(self, launch: Launch) -> list[str]:
        python = self.find_native_binary(launch.options)
        if python is None:
            raise FileNotFoundError("llama-cpp-python not found")
        return [str(python), "-m", "llama_cpp.server", "--model", launch.model,
                "--host", launch.host, "--port", str(launch.port),
                "--model_alias", launch.served_name,
                *kitt.option_flags(launch.options, FLAGS), *launch.extra_args]

    def version(self, base_url: str, binary: Path | None) -> EngineVersion | None:
        """llama-cpp-python's version in the interpreter that ran the server (its API
        reports none)."""
        import subprocess

        if binary is None:
            return None
        code = "import importlib.metadata as m; print(m.version('llama_cpp_python'))"
        try:
            done = subprocess.run([str(binary), "-c", code], capture_output=True, text=True,
                                  timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        found = done.stdout.strip()
        if done.returncode != 0 or not found:
            return None
        return EngineVersion(f"llama-cpp-python {found}",
                             f"the llama_cpp_python package of {binary}")
