"""Reading and validating a campaign file. Every mistake is a `BadInput` naming
`FILE:LINE: field 'F'` before anything starts (exit 2).

Relative paths in the file (models, engine configs, suite files, output) are relative
to the campaign file's folder, so a campaign can be moved or shared with its models.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import attrs

from kitt._campaign.model import EVENTS, CampaignSpec, EngineSpec, ModelSpec, Notify
from kitt._util.yamlfile import YamlFile, load_yaml, plain
from kitt.errors import BadInput

TOP_KEYS = ("name", "description", "models", "engines", "suite", "runs", "skip_warmup",
            "seed", "store", "output", "filters", "disk", "cleanup", "notify")
MODEL_KEYS = ("model", "label", "engines", "quantization", "suite")
ENGINE_KEYS = ("name", "label", "config", "profile", "mode", "port", "image", "options",
               "suite")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
T = TypeVar("T")


def campaign_name(path: Path) -> str:
    """The `name` of a campaign file, read without validating the rest (for `status`)."""
    doc = load_yaml(path, what="campaign")
    top = doc.mapping(doc.data, field="(top level)")
    return _name(doc, top)


def load_campaign(path: Path | str) -> CampaignSpec:
    from kitt._util.files import kitt_home

    path = Path(path)
    doc = load_yaml(path, what="campaign")
    top = doc.mapping(doc.data, field="(top level)",
                      hint="a campaign is a mapping with name, models, engines, ...")
    doc.only_keys(top, TOP_KEYS)
    for required in ("name", "models", "engines"):
        if required not in top:
            raise doc.error(f"missing required key {required!r}", top, field=required,
                            hint="see docs/campaigns.md for the campaign schema")
    name = _name(doc, top)
    base = path.resolve().parent
    runs = _int(doc, top, "runs", minimum=1)
    suites = _Suites(doc, base, runs)
    engines = _engines(doc, top, base, suites)
    models = _models(doc, top, base, {e.label for e in engines}, suites)
    output = Path(_opt_str(doc, top, "output") or kitt_home() / "campaigns" / name / "results")
    spec = CampaignSpec(
        name=name, path=path.resolve(), models=models, engines=engines,
        output=output if output.is_absolute() else base / output,
        description=_opt_str(doc, top, "description") or "",
        runs=runs,
        skip_warmup=_bool(doc, top, "skip_warmup", False),
        seed=_int(doc, top, "seed", minimum=0) or 0,
        store=_opt_str(doc, top, "store"),
        quantizations=_filters(doc, top),
        min_free_gb=_disk(doc, top),
        cleanup_work_dirs=_cleanup(doc, top),
        notify=_notify(doc, top),
    )
    # Last, so a typo elsewhere is reported even when the default suite is not usable.
    return attrs.evolve(spec, suite=_default_suite(suites, top, models, engines))


def _name(doc: YamlFile, top: Mapping) -> str:
    name = doc.string(top.get("name"), field="name", parent=top, key="name")
    if not NAME.match(name):
        raise doc.error(f"campaign name {name!r} must be letters, digits, '.', '_' or '-'",
                        top, "name", field="name",
                        hint="it names the state folder KITT_HOME/campaigns/NAME")
    return name


# -- engines ----------------------------------------------------------------------------

def _engines(doc: YamlFile, top: Mapping, base: Path, suites: _Suites
             ) -> tuple[EngineSpec, ...]:
    items = _list(doc, top, "engines", hint="list engines as `- llamacpp` or `- name: vllm`")
    found: list[EngineSpec] = []
    for index, item in enumerate(items):
        spec = _engine(doc, items, index, item, base, suites)
        if spec.label in {e.label for e in found}:
            raise doc.error(f"engine label {spec.label!r} is used twice", items, index,
                            field=f"engines[{index}]",
                            hint="give each entry of the same engine its own `label`")
        found.append(spec)
    return tuple(found)


def _engine(doc: YamlFile, items: list, index: int, item: Any, base: Path, suites: _Suites
            ) -> EngineSpec:
    from kitt import plugins
    from kitt._engines import preflight
    from kitt._engines.config import ConfigLayer, load_config_file, load_profile, merge

    field = f"engines[{index}]"
    item, name, node, key = _entry(doc, items, index, item, field, "name", ENGINE_KEYS)
    installed = plugins.engines()
    if name not in installed:
        raise doc.error(f"unknown engine {name!r}", node, key, field=f"{field}.name",
                        hint=f"installed engines: {', '.join(sorted(installed)) or 'none'} "
                             "(`kitt engines list`)")
    label = _opt_str(doc, item, "label", field=f"{field}.label") or name
    layers = []
    if "profile" in item:
        profile = _opt_str(doc, item, "profile", field=f"{field}.profile") or ""
        layers.append(_at(doc, item, "profile", f"{field}.profile",
                          lambda: load_profile(profile)))
    if "config" in item:
        config_path = _path(base, _opt_str(doc, item, "config", field=f"{field}.config") or "")
        layers.append(_at(doc, item, "config", f"{field}.config",
                          lambda: load_config_file(config_path)))
    mode = _opt_str(doc, item, "mode", field=f"{field}.mode")
    if mode is not None and mode not in ("native", "docker"):
        raise doc.error(f"unknown mode {mode!r}", item, "mode", field=f"{field}.mode",
                        hint="use native or docker")
    port = _int(doc, item, "port", minimum=1, field=f"{field}.port")
    options = plain(doc.mapping(item.get("options"), field=f"{field}.options", parent=item,
                                key="options"))
    layers.append(ConfigLayer(f"{doc.path} ({field})", mode=mode, port=port,
                              image=_opt_str(doc, item, "image", field=f"{field}.image"),
                              options=options))
    config = _at(doc, node, key, field, lambda: merge(name, layers))
    engine = installed[name]
    _at(doc, node, key, field, lambda: preflight.check_mode(engine, config.mode))
    _at(doc, item if "options" in item else node, "options" if "options" in item else key,
        f"{field}.options", lambda: preflight.check_options(engine, dict(config.options)))
    return EngineSpec(label, config, suites.ref(item, "suite", f"{field}.suite"))


# -- models -----------------------------------------------------------------------------

def _models(doc: YamlFile, top: Mapping, base: Path, engine_labels: set[str],
            suites: _Suites) -> tuple[ModelSpec, ...]:
    items = _list(doc, top, "models", hint="list models as `- path/to/model.gguf` or "
                                           "`- model: llama3.2:1b`")
    found: list[ModelSpec] = []
    for index, item in enumerate(items):
        spec = _model(doc, items, index, item, base, engine_labels, suites)
        if spec.label in {m.label for m in found}:
            raise doc.error(f"model label {spec.label!r} is used twice", items, index,
                            field=f"models[{index}]", hint="give each model its own `label`")
        found.append(spec)
    return tuple(found)


def _entry(doc: YamlFile, items: list, index: int, item: Any, field: str, main: str,
           keys: Any) -> tuple[dict, str, Any, Any]:
    """A list entry that is either its `main` value alone (`- llamacpp`) or a mapping
    with `main` and other `keys`: the mapping, the `main` value (checked), and where the
    file holds that value (node and key, for errors with its line)."""
    if isinstance(item, str):
        node, key, item = items, index, {main: item}
    else:
        node, key = item, main
        item = doc.mapping(item, field=field, parent=items, key=index)
        doc.only_keys(item, keys, field=field)
    value = doc.string(item.get(main), field=f"{field}.{main}", parent=node, key=key)
    return item, value, node, key


def _model(doc: YamlFile, items: list, index: int, item: Any, base: Path,
           engine_labels: set[str], suites: _Suites) -> ModelSpec:
    from kitt._engines.formats import detect_format

    field = f"models[{index}]"
    item, ref, node, key = _entry(doc, items, index, item, field, "model", MODEL_KEYS)
    reference = _model_reference(base, ref)
    info = detect_format(reference)
    if not info.ok:
        raise doc.error(f"model {ref!r} cannot be used: {info.problem}", node, key,
                        field=f"{field}.model", hint=info.fix)
    engines = None
    if "engines" in item:
        names = item["engines"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise doc.error("expected a list of engine labels", item, "engines",
                            field=f"{field}.engines", hint="write engines: [llamacpp]")
        for name in names:
            if name not in engine_labels:
                raise doc.error(f"engine {name!r} is not one of the campaign's engines",
                                item, "engines", field=f"{field}.engines",
                                hint=f"use one of: {', '.join(sorted(engine_labels))}")
        engines = tuple(names)
    return ModelSpec(
        reference=reference,
        label=_opt_str(doc, item, "label", field=f"{field}.label") or _default_label(ref),
        engines=engines,
        quantization=_opt_str(doc, item, "quantization", field=f"{field}.quantization"),
        suite=suites.ref(item, "suite", f"{field}.suite"),
    )


def _model_reference(base: Path, ref: str) -> str:
    """An existing path (made absolute), else the text as given (an Ollama tag, or a
    missing path that detection then reports)."""
    candidate = _path(base, ref)
    if candidate.exists() or ref.startswith(("/", ".", "~")):
        return str(candidate)
    return ref


def _default_label(ref: str) -> str:
    path = Path(ref)
    if ref.endswith(".gguf") or path.suffix in (".safetensors", ".bin", ".pt", ".pth"):
        return path.stem
    return path.name or ref


# -- suites, filters, disk, cleanup, notify ---------------------------------------------

def _default_suite(suites: _Suites, top: Mapping, models: tuple[ModelSpec, ...],
                   engines: tuple[EngineSpec, ...]) -> str:
    given = suites.ref(top, "suite", "suite")
    if given is not None:
        return given
    if any(m.suite is None for m in models) and any(e.suite is None for e in engines):
        suites.ref({"suite": "quick"}, "suite", "suite")  # some run uses the default
    return "quick"


class _Suites:
    """Suite references, each validated once against the installed benchmarks, with
    errors pointing at the campaign line that names the suite."""

    def __init__(self, doc: YamlFile, base: Path, runs: int | None):
        self.doc, self.base, self.runs = doc, base, runs
        self.checked: set[str] = set()

    def ref(self, node: Mapping, key: str, field: str) -> str | None:
        from kitt import plugins
        from kitt._run.suites import load_suite

        ref = _opt_str(self.doc, node, key, field=field)
        if ref is None:
            return None
        if "/" in ref or ref.endswith((".yaml", ".yml")):  # a file, as suites.find_suite
            ref = str(_path(self.base, ref))
        if ref not in self.checked:
            _at(self.doc, node, key, field,
                lambda: load_suite(ref, plugins.benchmarks(), runs=self.runs))
            self.checked.add(ref)
        return ref


def _filters(doc: YamlFile, top: Mapping) -> tuple[str, ...] | None:
    node = doc.mapping(top.get("filters"), field="filters", parent=top, key="filters")
    doc.only_keys(node, ("quantizations",), field="filters")
    if "quantizations" not in node:
        return None
    values = node["quantizations"]
    if not isinstance(values, list) or not values or not all(
            isinstance(v, str) and v.strip() for v in values):
        raise doc.error("expected a non-empty list of quantization names", node,
                        "quantizations", field="filters.quantizations",
                        hint="write quantizations: [Q4_K_M, Q8_0, F16]")
    return tuple(str(v) for v in values)


def _disk(doc: YamlFile, top: Mapping) -> float | None:
    node = doc.mapping(top.get("disk"), field="disk", parent=top, key="disk")
    doc.only_keys(node, ("min_free_gb",), field="disk")
    if "min_free_gb" not in node:
        return None
    value = node["min_free_gb"]
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise doc.error(f"expected a number of GB >= 0, got {value!r}", node, "min_free_gb",
                        field="disk.min_free_gb", hint="write min_free_gb: 20")
    return float(value)


def _cleanup(doc: YamlFile, top: Mapping) -> bool:
    node = doc.mapping(top.get("cleanup"), field="cleanup", parent=top, key="cleanup")
    doc.only_keys(node, ("work_dirs",), field="cleanup")
    return _bool(doc, node, "work_dirs", False, field="cleanup.work_dirs")


def _notify(doc: YamlFile, top: Mapping) -> Notify:
    node = doc.mapping(top.get("notify"), field="notify", parent=top, key="notify")
    doc.only_keys(node, ("webhook", "on", "timeout_s"), field="notify")
    webhook = _opt_str(doc, node, "webhook", field="notify.webhook")
    if webhook is not None and not webhook.startswith(("http://", "https://")):
        raise doc.error(f"webhook {webhook!r} is not an http(s) URL", node, "webhook",
                        field="notify.webhook", hint="write webhook: https://host/path")
    on = node.get("on", list(EVENTS))
    if not isinstance(on, list) or not all(v in EVENTS for v in on):
        raise doc.error(f"expected a list of events from: {', '.join(EVENTS)}", node, "on",
                        field="notify.on", hint="write on: [failure, campaign_finished]")
    timeout = node.get("timeout_s", 10)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise doc.error(f"expected seconds > 0, got {timeout!r}", node, "timeout_s",
                        field="notify.timeout_s")
    return Notify(webhook, tuple(on), float(timeout))


# -- small typed readers ----------------------------------------------------------------

def _list(doc: YamlFile, top: Mapping, key: str, *, hint: str) -> list:
    items = top[key]
    if not isinstance(items, list) or not items:
        raise doc.error("expected a non-empty list", top, key, field=key, hint=hint)
    return items


def _opt_str(doc: YamlFile, node: Mapping, key: str, *, field: str | None = None
             ) -> str | None:
    if key not in node or node[key] is None:
        return None
    return doc.string(node[key], field=field or key, parent=node, key=key)


def _int(doc: YamlFile, node: Mapping, key: str, *, minimum: int,
         field: str | None = None) -> int | None:
    if key not in node or node[key] is None:
        return None
    value = node[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise doc.error(f"expected a whole number >= {minimum}, got {value!r}", node, key,
                        field=field or key)
    return int(value)


def _bool(doc: YamlFile, node: Mapping, key: str, default: bool, *,
          field: str | None = None) -> bool:
    value = node.get(key, default)
    if not isinstance(value, bool):
        raise doc.error(f"expected true or false, got {value!r}", node, key,
                        field=field or key)
    return value


def _path(base: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def _at(doc: YamlFile, node: Any, key: Any, field: str, check: Callable[[], T]) -> T:
    """`check()`, its BadInput re-raised with this campaign file's line and field."""
    try:
        return check()
    except BadInput as error:
        raise doc.error(error.message, node, key, field=field, hint=error.hint) from None
