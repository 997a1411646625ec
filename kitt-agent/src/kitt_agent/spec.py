"""The agent's own check of a job before it runs anything (the server checked it too;
the agent trusts no one with its host). Each kind becomes one fixed `kitt` command line
built from validated values as separate arguments: no shell, no image, mount or engine
flag from the job. A job it cannot run is refused with the reason, in the job's state."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import attrs

import kitt

KINDS = ("run", "cleanup_storage", "engine_setup")
RUN_FIELDS = frozenset({"model", "engine", "mode", "suite", "profile", "options", "runs",
                        "skip_warmup", "seed"})
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_OPTION = re.compile(r"[a-z][a-z0-9_]{0,63}")


class Unrunnable(Exception):
    """This agent cannot run the job; the message says why (it becomes the job's reason)."""


@attrs.frozen
class Plan:
    """What to run for a job: the command, and the files to write first."""

    argv: tuple[str, ...]
    files: dict[str, str] = attrs.field(factory=dict)
    """Name in the job's folder -> content."""
    results: str | None = None
    """The results folder (kind `run`), whose metrics.json is uploaded."""
    deletes: tuple[Path, ...] = ()
    """cleanup_storage: what to delete, each checked to lie inside model storage."""
    in_image: bool = False
    """May run inside the KITT image (docker-mode runs, engine setup): container.py."""


def plan(kind: str, spec: Any, *, job_dir: Path, model_dir: Path, store_url: str) -> Plan:
    if kind not in KINDS:
        raise Unrunnable(f"this agent does not run {kind!r} jobs (it runs: {', '.join(KINDS)})")
    if not isinstance(spec, dict):
        raise Unrunnable("the job's spec is not an object")
    if kind == "run":
        return _run(spec, job_dir, model_dir, store_url)
    if kind == "engine_setup":
        engine = _engine(spec.get("engine"))
        return Plan((*_kitt(), "engines", "setup", engine.name), in_image=True)
    return _cleanup(spec, model_dir)


def _kitt() -> tuple[str, ...]:
    return (sys.executable, "-m", "kitt")


def _engine(name: Any):
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise Unrunnable(f"bad engine name {name!r}")
    engine = kitt.installed_engines().get(name)
    if engine is None:
        raise Unrunnable(f"engine {name!r} is not installed on this agent (installed: "
                         f"{', '.join(sorted(kitt.installed_engines())) or 'none'})")
    return engine


def resolve_model(ref: Any, model_dir: Path) -> Path:
    """A model named by the job, inside this agent's model storage (a name relative to
    it, or an absolute path under it); nothing outside it is ever given to an engine."""
    if not isinstance(ref, str) or not ref or "\x00" in ref:
        raise Unrunnable(f"bad model reference {ref!r}")
    root = model_dir.resolve()
    path = (Path(ref) if ref.startswith("/") else root / ref).resolve()
    if path != root and root not in path.parents:
        raise Unrunnable(f"model {ref!r} is outside this agent's model storage {root}")
    if not path.exists():
        raise Unrunnable(f"model {ref!r} is not in this agent's model storage {root}")
    return path


def _run(spec: dict, job_dir: Path, model_dir: Path, store_url: str) -> Plan:
    extra = set(spec) - RUN_FIELDS
    if extra:
        raise Unrunnable(f"unknown field {sorted(extra)[0]!r} in a run job")
    engine = _engine(spec.get("engine"))
    model = resolve_model(spec.get("model"), model_dir)
    mode = spec.get("mode") or "native"
    if mode not in engine.modes:
        raise Unrunnable(f"engine {engine.name} does not run in {mode!r} mode")
    suite = spec.get("suite")
    if not isinstance(suite, dict) or not isinstance(suite.get("benchmarks"), list):
        raise Unrunnable("the job has no suite")
    results = str(job_dir / "results")
    argv = [*_kitt(), "run", "-m", str(model), "-e", engine.name, "-s",
            str(job_dir / "suite.yaml"), "--mode", mode, "-o", results, "--store", store_url]
    profile = spec.get("profile")
    if profile is not None:
        if not isinstance(profile, str) or not _NAME.fullmatch(profile):
            raise Unrunnable(f"bad profile name {profile!r}")
        argv += ["--profile", profile]
    options = spec.get("options") or {}
    if not isinstance(options, dict):
        raise Unrunnable("options is not an object")
    for key, value in options.items():
        if not isinstance(key, str) or not _OPTION.fullmatch(key):
            raise Unrunnable(f"bad engine option name {key!r}")
        if not (isinstance(value, str | int | float | bool) or value is None):
            raise Unrunnable(f"option {key} is not a plain value")
        # -O reads its value as a YAML scalar: JSON's quoting keeps a string a string.
        argv += ["-O", f"{key}={json.dumps(value)}"]
    runs = spec.get("runs")
    if runs is not None:
        if isinstance(runs, bool) or not isinstance(runs, int) or not 1 <= runs <= 100:
            raise Unrunnable(f"bad runs {runs!r}")
        argv += ["--runs", str(runs)]
    if spec.get("skip_warmup") is True:
        argv.append("--skip-warmup")
    seed = spec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise Unrunnable(f"bad seed {seed!r}")
    argv += ["--seed", str(seed)]
    # JSON is YAML: the suite file is the server's resolved suite, byte for byte.
    return Plan(tuple(argv), {"suite.yaml": json.dumps(suite, indent=2) + "\n"}, results,
                in_image=mode == "docker")


def _cleanup(spec: dict, model_dir: Path) -> Plan:
    names = spec.get("models")
    if set(spec) - {"models"} or not isinstance(names, list) or not names:
        raise Unrunnable("a cleanup_storage job lists the models to delete, and nothing else")
    paths = tuple(resolve_model(name, model_dir) for name in names)
    if any(path == model_dir.resolve() for path in paths):
        raise Unrunnable("a cleanup never deletes the model storage folder itself")
    return Plan((), deletes=paths)


def child_env(home: Path) -> dict[str, str]:
    """The job's environment: this agent's, KITT_HOME its home (profiles, suites)."""
    return {**os.environ, "KITT_HOME": str(home), "PYTHONUNBUFFERED": "1"}
