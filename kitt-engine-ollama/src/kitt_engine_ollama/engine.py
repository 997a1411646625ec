"""The `ollama` engine.

Ollama serves models from its own store, by name. A GGUF file is imported once the
server is healthy (`prepare`: the file goes up as a blob, `/api/create` makes the model),
a tag is pulled if the store lacks it. In native mode an Ollama that already answers on
the port (a system service) is reused as it is and left running (`attach`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

import kitt
from kitt import ContainerSpec, Engine, EngineFailed, EngineVersion, Launch

DEFAULT_PORT = 11434
IMAGE = "ollama/ollama:latest"
STORE_IN_CONTAINER = "/root/.ollama"


@attrs.frozen(kw_only=True)
class OllamaOptions:
    """Options of the `ollama` engine (`-O name=value`, engines.yaml `engine_options`)."""

    binary: str | None = attrs.field(default=None, validator=kitt.validators.optional_str)
    """Native mode: path of the `ollama` executable; default: PATH."""
    reuse_running: bool = attrs.field(default=True, validator=kitt.validators.boolean)
    """Native mode: use an Ollama already answering on the port instead of starting one
    (it is not stopped afterwards)."""
    model_name: str | None = attrs.field(default=None, validator=kitt.validators.optional_str)
    """Name a GGUF file is imported as; default: the file's name (e.g. `kitt-tiny`)."""
    pull: bool = attrs.field(default=True, validator=kitt.validators.boolean)
    """Pull a model tag the store does not have (a download: off for offline machines)."""
    context_length: int | None = attrs.field(
        default=None, validator=kitt.validators.optional_int(1))
    """Context size: `num_ctx` of an imported GGUF, OLLAMA_CONTEXT_LENGTH of a server
    KITT starts."""
    num_parallel: int | None = attrs.field(default=None, validator=kitt.validators.optional_int(1))
    """Concurrent requests per model (OLLAMA_NUM_PARALLEL) of a server KITT starts."""
    keep_alive: str | None = attrs.field(default=None, validator=kitt.validators.optional_str)
    """How long a model stays loaded (OLLAMA_KEEP_ALIVE, e.g. `30m`, `-1`)."""
    models_dir: str | None = attrs.field(default=None, validator=kitt.validators.optional_str)
    """Native mode: the model store (OLLAMA_MODELS); default: Ollama's (~/.ollama)."""
    volume: str = attrs.field(default="kitt-ollama",
                              validator=attrs.validators.instance_of(str))
    """Docker mode: the named volume holding the model store (kept between runs)."""


ENVIRONMENT = {"context_length": "OLLAMA_CONTEXT_LENGTH", "num_parallel": "OLLAMA_NUM_PARALLEL",
               "keep_alive": "OLLAMA_KEEP_ALIVE"}


class Ollama(Engine):
    name = "ollama"
    description = "Ollama (GGUF files and Ollama model tags)"
    formats = ("gguf", "ollama")
    modes = ("native", "docker")
    api = "ollama"
    default_port = DEFAULT_PORT
    # /api/tags lists the store: it answers once the server can take requests.
    health_path = "/api/tags"
    metrics_path = None  # Ollama has no Prometheus endpoint
    default_image = IMAGE
    Options = OllamaOptions
    install_hint = ("install Ollama (https://ollama.com/download), put `ollama` on PATH or "
                    "set the `binary` option, start its service (KITT reuses it), or use "
                    "--mode docker")
    features = ("openai_chat", "openai_completions", "server_timings")
    stop_grace_s = 10.0
    shared_service = True

    def find_native_binary(self, options: dict[str, Any]) -> Path | None:
        return kitt.find_executable(options.get("binary"), "ollama")

    def server_environment(self, launch: Launch) -> dict[str, str]:
        """Ollama is configured by environment variables only."""
        o = launch.options
        return {"OLLAMA_HOST": f"{launch.host}:{launch.port}",
                **{variable: str(o[key]) for key, variable in ENVIRONMENT.items()
                   if o.get(key) is not None}}

    def native_command(self, launch: Launch) -> list[str]:
        binary = self.find_native_binary(launch.options)
        if binary is None:
            raise FileNotFoundError("ollama not found")
        env = self.server_environment(launch)
        if launch.options.get("models_dir"):
            env["OLLAMA_MODELS"] = str(Path(str(launch.options["models_dir"])).expanduser())
        # Ollama is configured by environment only; `env` sets it and execs ollama, so
        # the server process is still the one KITT started and signals.
        return ["env", *(f"{k}={v}" for k, v in env.items()), str(binary), "serve",
                *launch.extra_args]

    def container_spec(self, launch: Launch, image: str) -> ContainerSpec:
        # The image's ENTRYPOINT is /bin/ollama. The GGUF is mounted too, but imported
        # over the API (`prepare`), the same way in both modes.
        return ContainerSpec(image=image, command=("serve", *launch.extra_args),
                             container_port=launch.port,
                             environment=self.server_environment(launch),
                             volumes={launch.options.get("volume") or "kitt-ollama":
                                      STORE_IN_CONTAINER})

    def is_healthy(self, status: int, body: bytes) -> bool:
        return status == 200

    def attach(self, base_url: str, options: dict[str, Any]) -> bool:
        if not options.get("reuse_running", True):
            return False
        return _api_version(base_url) is not None

    def prepare(self, base_url: str, launch: Launch) -> str | None:
        from kitt_engine_ollama import store

        path = Path(launch.model)
        if path.exists():
            name = launch.options.get("model_name") or store.model_name(launch.served_name)
            parameters = {}
            if launch.options.get("context_length"):
                parameters["num_ctx"] = launch.options["context_length"]
            store.import_gguf(base_url, path, name, parameters=parameters)
            return name
        if not store.has_model(base_url, launch.model):
            if not launch.options.get("pull", True):
                raise EngineFailed(f"Ollama has no model {launch.model!r} and pulling is off",
                                   hint="pull it (`ollama pull TAG`) or set -o pull=true")
            store.pull(base_url, launch.model)
        return launch.model

    def version(self, base_url: str, binary: Path | None) -> EngineVersion | None:
        found = _api_version(base_url)
        return EngineVersion(f"ollama {found}", "GET /api/version") if found else None


def _api_version(base_url: str) -> str | None:
    """What `GET /api/version` says; None when no Ollama answers there."""
    import json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{base_url}/api/version", timeout=3) as response:
            doc = json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return None
    version = doc.get("version") if isinstance(doc, dict) else None
    return str(version) if version else None
