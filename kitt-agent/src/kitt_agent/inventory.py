"""What the agent tells its server it has: engines and the modes each can run in here
(with the reason for the rest), models in its storage and their formats, profiles,
free storage, and GPU utilisation and memory. The server checks jobs against it before
queueing them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import kitt

MAX_MODELS = 500


def engines() -> dict[str, Any]:
    found: dict[str, Any] = {}
    docker_problem = _docker_problem()
    for name, engine in sorted(kitt.installed_engines().items()):
        modes, unavailable = [], {}
        if "native" in engine.modes:
            try:
                binary = engine.find_native_binary({})
            except Exception as exc:  # an engine's lookup failing is its own report
                binary, why = None, str(exc)
            else:
                why = f"no native {name} server found on this host"
            if binary is not None:
                modes.append("native")
            else:
                unavailable["native"] = why
        if "docker" in engine.modes:
            if docker_problem is None:
                modes.append("docker")
            else:
                unavailable["docker"] = docker_problem
        found[name] = {"modes": modes, "unavailable": unavailable,
                       "formats": list(engine.formats)}
    return found


def _docker_problem() -> str | None:
    try:
        client = kitt.docker_client()
        client.ping()
    except Exception as exc:
        text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return text if "Docker" in text else f"Docker is not reachable: {text}"
    return None


def models(model_dir: Path) -> list[dict[str, Any]]:
    """Each model at the top of the storage folder or one level down (`org/name`, or the
    files of a folder of GGUFs)."""
    if not model_dir.is_dir():
        return []
    found: list[dict[str, Any]] = []
    candidates = []
    for entry in sorted(model_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        candidates.append(entry)
        if entry.is_dir() and not _is_model_dir(entry):
            candidates.extend(sorted(p for p in entry.iterdir() if not p.name.startswith(".")))
    for path in candidates[:MAX_MODELS]:
        info = kitt.detect_format(str(path))
        if info.format is None:
            continue
        found.append({"name": str(path.relative_to(model_dir)), "path": str(path),
                      "format": info.format, "bytes": info.size_bytes})
    return found


def _is_model_dir(path: Path) -> bool:
    """A Hugging Face folder is one model; any other folder is looked into as well."""
    return (path / "config.json").exists()


def storage(model_dir: Path) -> dict[str, Any]:
    target = model_dir if model_dir.exists() else model_dir.parent
    try:
        usage = shutil.disk_usage(target)
    except OSError:
        return {"dir": str(model_dir), "free_bytes": None, "total_bytes": None}
    return {"dir": str(model_dir), "free_bytes": usage.free, "total_bytes": usage.total}


def gpus() -> list[dict[str, Any]]:
    """Utilisation and memory now, per GPU (NVML); empty without NVIDIA GPUs."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver, no GPU: nothing to report
        return []
    found = []
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            rates = pynvml.nvmlDeviceGetUtilizationRates(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            found.append({"index": index, "name": name.decode() if isinstance(name, bytes)
                          else name, "utilization_pct": rates.gpu,
                          "memory_used_bytes": memory.used, "memory_total_bytes": memory.total})
    except Exception:  # a GPU that stops answering mid-listing: report what we have
        pass
    finally:
        pynvml.nvmlShutdown()
    return found


def collect(model_dir: Path, kitt_image: str | None = None) -> dict[str, Any]:
    """`kitt_image` is the agent's setting; the report names the image docker-mode jobs
    will run in, or null for the agent's own kitt."""
    from kitt_agent.container import choose_image

    return {"engines": engines(), "models": models(model_dir), "storage": storage(model_dir),
            "profiles": sorted(kitt.available_profiles()), "gpus": gpus(),
            "kitt_image": choose_image(kitt_image)}
