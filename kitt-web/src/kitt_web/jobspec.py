"""Job specs, checked when a job is queued (a 400 naming the field), so that an agent
only ever receives what it can run. Each kind has a closed set of fields: nothing in a
spec becomes an image, a mount, an engine flag or a shell string. Engine options are the
engine's typed `Options`; profiles and suites are referred to by name and resolved
from files the admins installed, never from the request.

    run              model, engine, mode, suite | benchmark + params, profile, options,
                     runs, skip_warmup, seed
    cleanup_storage  models: names in the agent's model storage to delete
    engine_setup     engine: pull or build its image on the agent (kitt engines setup)
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import kitt
from kitt_web.errors import bad_request

RUN_FIELDS = ("model", "engine", "mode", "suite", "benchmark", "params", "profile", "options",
              "runs", "skip_warmup", "seed")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_SUITE_FIELD = re.compile(r"^.*?job-suite\.yaml(?::\d+)?:(?: field '([^']*)':)? (.*)$", re.S)


def check(kind: str, spec: Any, agent: Any | None) -> dict[str, Any]:
    """The normalised spec of a job of `kind`; `agent` (kitt_web.state.agents.Agent, or
    None for any agent) is checked against what it last reported."""
    checkers = {"run": _run, "cleanup_storage": _cleanup, "engine_setup": _engine_setup}
    checker = checkers.get(kind) if isinstance(kind, str) else None
    if checker is None:
        raise bad_request("kind", f"unknown job kind {kind!r}",
                          "kinds: run, cleanup_storage, engine_setup")
    if not isinstance(spec, dict):
        raise bad_request("spec", "must be an object")
    return checker(spec, agent)


def _only(spec: dict, allowed: tuple[str, ...]) -> None:
    extra = sorted(set(spec) - set(allowed))
    if extra:
        raise bad_request(f"spec.{extra[0]}", "is not a field of this job kind",
                          f"fields: {', '.join(allowed)}")


def _text(spec: dict, key: str, *, required: bool = False, limit: int = 4096) -> str | None:
    value = spec.get(key)
    if value is None:
        if required:
            raise bad_request(f"spec.{key}", "is required")
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit or any(
            ord(c) < 32 for c in value):
        raise bad_request(f"spec.{key}", f"must be a non-empty single-line string of at most "
                          f"{limit} characters")
    return value


def _engine(name: str, agent: Any | None):
    engines = kitt.installed_engines()
    if name not in engines:
        raise bad_request("spec.engine", f"unknown engine {name!r}",
                          f"installed engines: {', '.join(sorted(engines)) or 'none'}")
    engine = engines[name]
    reported = _inventory(agent).get("engines") if agent is not None else None
    if reported is not None:  # before its first heartbeat the agent checks for itself
        found = reported.get(engine.name)
        if found is None:
            raise bad_request("spec.engine", f"agent {agent.name} has no {engine.name} engine",
                              f"its engines: {', '.join(sorted(reported)) or 'none reported'}")
    return engine


def _inventory(agent: Any) -> dict:
    return agent.inventory or {}


def _run(spec: dict, agent: Any | None) -> dict[str, Any]:
    _only(spec, RUN_FIELDS)
    model = _text(spec, "model", required=True)
    engine = _engine(_text(spec, "engine", required=True), agent)
    mode = spec.get("mode") or "native"
    if mode not in engine.modes:
        raise bad_request("spec.mode", f"engine {engine.name} runs in {', '.join(engine.modes)}",
                          f"use mode {engine.modes[0]}")
    if agent is not None:
        _check_model(agent, engine, model)
        modes = (_inventory(agent).get("engines") or {}).get(engine.name, {}).get("modes")
        if modes is not None and mode not in modes:
            why = (_inventory(agent)["engines"][engine.name].get("unavailable") or {}).get(mode)
            raise bad_request("spec.mode", f"agent {agent.name} cannot run {engine.name} in "
                              f"{mode} mode{f': {why}' if why else ''}",
                              f"its modes for {engine.name}: {', '.join(modes) or 'none'}")
    suite = _suite(spec)
    profile = _text(spec, "profile", limit=100)
    if profile is not None:
        if not _NAME.fullmatch(profile):
            raise bad_request("spec.profile", "must be a profile's name")
        known = (_inventory(agent).get("profiles") if agent is not None
                 else list(kitt.available_profiles()))
        if known is not None and profile not in known:
            raise bad_request("spec.profile", f"unknown profile {profile!r}",
                              f"profiles: {', '.join(sorted(known)) or 'none'}")
    options = spec.get("options") or {}
    if not isinstance(options, dict) or not all(
            isinstance(v, str | int | float | bool) or v is None for v in options.values()):
        raise bad_request("spec.options", "must map option names to plain values")
    try:
        kitt.check_options(engine, options)
    except kitt.BadInput as exc:
        raise bad_request("spec.options", exc.message, exc.hint) from None
    runs = spec.get("runs")
    if runs is not None and (isinstance(runs, bool) or not isinstance(runs, int)
                             or not 1 <= runs <= 100):
        raise bad_request("spec.runs", "must be a whole number from 1 to 100, or absent")
    seed = spec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise bad_request("spec.seed", "must be a whole number from 0 to 2^31-1")
    if not isinstance(spec.get("skip_warmup", False), bool):
        raise bad_request("spec.skip_warmup", "must be true or false")
    return {"model": model, "engine": engine.name, "mode": mode, "suite": suite,
            "profile": profile, "options": options, "runs": runs,
            "skip_warmup": spec.get("skip_warmup", False), "seed": seed}


def _check_model(agent: Any, engine: Any, model: str) -> None:
    models = _inventory(agent).get("models")
    if models is None:
        return  # it has not reported its storage yet: it checks the model itself
    found = next((m for m in models if model in (m.get("name"), m.get("path"))), None)
    if found is None:
        names = ", ".join(m.get("name", "?") for m in models[:10]) or "none"
        raise bad_request("spec.model", f"agent {agent.name} has no model {model!r}",
                          f"models in its storage: {names}")
    if found.get("format") not in engine.formats:
        shown = found.get("format") or "of no known format"
        raise bad_request("spec.model", f"{model} is {shown}; engine {engine.name} serves "
                          f"{', '.join(engine.formats)}",
                          "pick a model in a format the engine serves, or another engine")


def _suite(spec: dict) -> dict[str, Any]:
    """The suite the job runs, resolved here and validated against the benchmarks: a
    suite by name, or one benchmark with its params."""
    name, benchmark = spec.get("suite"), spec.get("benchmark")
    if (name is None) == (benchmark is None):
        raise bad_request("spec.suite", "give either suite (a suite's name) or benchmark "
                          "(one benchmark, with params)")
    if name is not None:
        if spec.get("params") is not None:
            raise bad_request("spec.params", "goes with benchmark, not with suite")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise bad_request("spec.suite", "must be a suite's name")
        try:
            suite = kitt.load_suite(name, kitt.installed_benchmarks())
        except kitt.BadInput as exc:
            raise bad_request("spec.suite", exc.message, exc.hint) from None
        return suite_document(suite)
    if not isinstance(benchmark, str) or not _NAME.fullmatch(benchmark):
        raise bad_request("spec.benchmark", "must be a benchmark's name")
    params = spec.get("params") or {}
    if not isinstance(params, dict):
        raise bad_request("spec.params", "must be an object of the benchmark's parameters")
    import json

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "job-suite.yaml"
        path.write_text(json.dumps({"name": benchmark, "benchmarks": [
            {"name": benchmark, "params": params}]}), "utf-8")
        try:
            suite = kitt.load_suite(str(path), kitt.installed_benchmarks())
        except kitt.BadInput as exc:
            raise _suite_error(exc) from None
    return suite_document(suite)


def _suite_error(exc: kitt.BadInput):
    match = _SUITE_FIELD.match(exc.message)
    if not match:
        return bad_request("spec.params", exc.message, exc.hint)
    field, message = match.groups()
    field = (field or "params").replace("benchmarks[0].name", "benchmark")
    field = field.replace("benchmarks[0].", "")
    return bad_request(f"spec.{field}", message.strip(), exc.hint)


def suite_document(suite: Any) -> dict[str, Any]:
    """A suite as the file the agent writes and `kitt run -s` reads: every parameter
    explicit, so what runs is what was chosen here."""
    config = suite.effective_config()
    return {"name": config["name"], "version": config["version"],
            "description": suite.description, "warmup": config["warmup"],
            "benchmarks": [{"name": b["name"], "runs": b["runs"], "params": b["params"]}
                           for b in config["benchmarks"]]}


def _cleanup(spec: dict, agent: Any | None) -> dict[str, Any]:
    _only(spec, ("models",))
    models = spec.get("models")
    if not isinstance(models, list) or not models or len(models) > 1000:
        raise bad_request("spec.models", "must list the model names to delete (1 to 1000)")
    for index, name in enumerate(models):
        if not isinstance(name, str) or not name or name.startswith("/") or any(
                part in ("", ".", "..") for part in name.split("/")) or "\x00" in name:
            raise bad_request(f"spec.models[{index}]", "must be a name inside the agent's "
                              "model storage (no absolute path, no '..')")
    return {"models": models}


def _engine_setup(spec: dict, agent: Any | None) -> dict[str, Any]:
    _only(spec, ("engine",))
    engine = kitt.installed_engines().get(_text(spec, "engine", required=True))
    if engine is None:
        raise bad_request("spec.engine", f"unknown engine {spec['engine']!r}",
                          f"installed engines: {', '.join(sorted(kitt.installed_engines()))}")
    return {"engine": engine.name}
