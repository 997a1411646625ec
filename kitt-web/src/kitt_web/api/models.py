"""The model browser: what is in the model folder (`model_dir` setting), each model's
format detected by content as preflight does, its size, and which installed engines can
serve it (with the reason when one cannot)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from aiohttp import web

import kitt
from kitt_web import keys
from kitt_web.api.params import json_response, one
from kitt_web.auth import access
from kitt_web.errors import bad_request
from kitt_web.state import settings

routes = web.RouteTableDef()
MAX_MODELS = 2000
MAX_DEPTH = 3
_LATER_SHARD = re.compile(r"-0*([2-9]|\d{2,})-of-\d+\.gguf$")
_WEIGHTS = (".safetensors", ".bin", ".pt", ".pth")


def candidates(root: Path) -> list[Path]:
    """GGUF files (the first shard of a split) and Hugging Face folders under `root`,
    walked without following links out of it."""
    found: list[Path] = []
    root_depth = len(root.parts)
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if len(here.parts) - root_depth >= MAX_DEPTH:
            dirs[:] = []
        if "config.json" in files and any(f.endswith(_WEIGHTS) for f in files):
            found.append(here)
            dirs[:] = []  # a model folder's subfolders belong to it
            continue
        for name in sorted(files):
            if name.endswith(".gguf") and not _LATER_SHARD.search(name):
                found.append(here / name)
        if len(found) >= MAX_MODELS:
            break
    return found[:MAX_MODELS]


def describe(path: Path, root: Path, engines: list[Any], engine_filter: str | None) -> dict:
    info = kitt.detect_format(path)
    serving = []
    for engine in engines:
        if info.format is None:
            serving.append({"engine": engine.name, "can_serve": False,
                            "reason": f"the model is unreadable: {info.problem}"})
        elif info.format in engine.formats:
            serving.append({"engine": engine.name, "can_serve": True, "reason": None})
        else:
            serving.append({"engine": engine.name, "can_serve": False,
                            "reason": f"{engine.name} serves {', '.join(engine.formats)}, "
                                      f"not {info.format}"})
    return {
        "name": str(path.relative_to(root)), "path": str(path), "format": info.format,
        "layout": info.layout, "size_bytes": info.size_bytes, "files": len(info.files),
        "problem": info.problem, "fix": info.fix, "engines": serving,
        "servable": any(s["can_serve"] for s in serving
                        if engine_filter is None or s["engine"] == engine_filter),
    }


def scan(karr, engine_filter: str | None) -> dict:
    model_dir = Path(settings.current(karr.db)["model_dir"].value).expanduser()
    engines = [e for _, e in sorted(kitt.installed_engines().items())]
    if engine_filter is not None:
        if engine_filter not in {e.name for e in engines}:
            raise bad_request("engine", f"unknown engine {engine_filter!r}",
                              f"installed: {', '.join(e.name for e in engines)}")
        engines = [e for e in engines if e.name == engine_filter]
    if not model_dir.is_dir():
        return {"model_dir": str(model_dir), "exists": False, "models": [],
                "hint": "create the folder or change the model_dir setting"}
    models = [describe(path, model_dir, engines, engine_filter)
              for path in candidates(model_dir)]
    if engine_filter is not None:
        models = [m for m in models if m["servable"]]
    return {"model_dir": str(model_dir), "exists": True, "models": models, "hint": None}


@routes.get("/api/v1/models")
@access("viewer", public=True)
async def models(request: web.Request) -> web.Response:
    engine = one(request, "engine") or None
    if engine is not None:
        engine = kitt.engine_name(engine)
    return json_response(await request.app[keys.THREADS].run(scan, engine))
