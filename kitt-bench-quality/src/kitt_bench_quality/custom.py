"""Custom evaluations: one YAML file per benchmark (schema in docs/custom-evals.md), or an
lm-eval task YAML used as is. Files in `$KITT_HOME/evals/` (default `~/.kitt/evals/`) are
registered as benchmarks named after their `name:` (default: the file name).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import attrs

import kitt
from kitt import BadInput, Benchmark, BenchmarkContext, Measurement, MetricSpec, kitt_home
from kitt_bench_quality.params import QualityParams

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
TOP_KEYS = ("name", "description", "version", "dataset", "prompt", "target", "choices",
            "fewshot", "generation", "answer", "metrics", "exact_match")
DATASET_KEYS = ("path", "fewshot_path", "hf", "config", "split", "fewshot_split")
FEWSHOT_KEYS = ("count", "separator", "sampler")
GENERATION_KEYS = ("max_tokens", "stop")
ANSWER_KEYS = ("regex", "select")
EXACT_MATCH_KEYS = ("ignore_case", "ignore_punctuation")
MC_METRICS = ("acc", "acc_norm")
GEN_METRICS = ("exact_match",)
LM_EVAL_MARKERS = ("task", "output_type", "doc_to_text")


def evals_dir() -> Path:
    return kitt_home() / "evals"


@attrs.frozen
class CustomEval:
    """A validated custom evaluation."""

    name: str
    path: Path
    description: str = ""
    version: str = "1"
    lm_eval_task: bool = False
    """The file is an lm-eval task YAML, run as is."""
    multiple_choice: bool = False
    config: dict[str, Any] = attrs.field(factory=dict)
    """The lm-eval task config (paths absolute)."""
    metrics: tuple[str, ...] = ()
    lower_is_better: tuple[str, ...] = ()
    """Metrics whose lm-eval definition says `higher_is_better: false`."""
    fewshot_file: bool = False


def _template(yf, node, key, field: str) -> str:
    """A Jinja2 template string, syntax-checked (lm-eval renders these with Jinja2)."""
    value = node.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and key in ("target",):
        return value
    text = yf.string(value, field=field, parent=node, key=key)
    import jinja2

    try:
        jinja2.Environment().parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise yf.error(f"invalid template: {exc.message} (template line {exc.lineno})",
                       node, key, field=field, hint="fix the Jinja2 syntax ({{column}})") from None
    return text


def _int(yf, node, key, field: str, minimum: int) -> int:
    value = node.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise yf.error(f"expected an integer >= {minimum}, got {value!r}", node, key,
                       field=field)
    return value


def _data_file(yf, node, key, field: str) -> Path:
    text = yf.string(node.get(key), field=field, parent=node, key=key)
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = (yf.path.parent / path).resolve()
    if path.suffix.lower() not in (".jsonl", ".json", ".parquet"):
        raise yf.error(f"unsupported data file type {path.suffix or '(none)'}", node, key,
                       field=field, hint="use .jsonl, .json or .parquet")
    if not path.is_file():
        raise yf.error(f"data file {path} does not exist", node, key, field=field,
                       hint="paths are relative to the YAML file")
    return path


def load(path: Path | str) -> CustomEval:
    """Parse and validate one custom evaluation; `BadInput` names file, line and field."""
    plain = kitt.plain
    yf = kitt.load_yaml(Path(path), what="custom evaluation")
    root = yf.data
    if not isinstance(root, dict):
        raise yf.error("expected a mapping at the top level", field=None)
    if "task" in root and ("output_type" in root or "doc_to_text" in root):
        return _lm_eval_task(yf, root, plain)
    yf.only_keys(root, TOP_KEYS)
    name = root.get("name", yf.path.stem)
    if not isinstance(name, str) or not NAME.match(name):
        raise yf.error(f"invalid name {name!r}: use lower-case letters, digits, '_', '-', '.'",
                       root, "name", field="name")
    for required in ("dataset", "prompt", "target"):
        if required not in root:
            raise yf.error(f"required field {required!r} is missing", root, field=required,
                           hint="see docs/custom-evals.md for the schema")
    dataset = yf.mapping(root["dataset"], field="dataset", parent=root, key="dataset")
    yf.only_keys(dataset, DATASET_KEYS, field="dataset")
    config: dict[str, Any] = {"task": f"custom_{re.sub(r'[^a-z0-9_]', '_', name)}",
                              "metadata": {"version": str(root.get("version", "1"))}}
    fewshot_file = False
    if "path" in dataset:
        files = {"test": _data_file(yf, dataset, "path", "dataset.path")}
        if "fewshot_path" in dataset:
            files["fewshot"] = _data_file(yf, dataset, "fewshot_path", "dataset.fewshot_path")
            fewshot_file = True
        kinds = {"parquet" if p.suffix.lower() == ".parquet" else "json" for p in files.values()}
        if len(kinds) > 1:
            raise yf.error("path and fewshot_path must be the same format", dataset,
                           "fewshot_path", field="dataset.fewshot_path")
        config.update(dataset_path=kinds.pop(), dataset_name=None, test_split="test",
                      dataset_kwargs={"data_files": {k: str(v) for k, v in files.items()}})
        if fewshot_file:
            config["fewshot_split"] = "fewshot"
    elif "hf" in dataset:
        config.update(
            dataset_path=yf.string(dataset["hf"], field="dataset.hf", parent=dataset, key="hf"),
            dataset_name=dataset.get("config"),
            test_split=dataset.get("split", "test"))
        if "fewshot_split" in dataset:
            config["fewshot_split"] = dataset["fewshot_split"]
            fewshot_file = True
    else:
        raise yf.error("needs `path` (a local file) or `hf` (a Hugging Face dataset)", root,
                       "dataset", field="dataset")
    config["doc_to_text"] = _template(yf, root, "prompt", "prompt")
    config["doc_to_target"] = _template(yf, root, "target", "target")
    multiple_choice = "choices" in root
    if multiple_choice:
        choices = root["choices"]
        if isinstance(choices, list):
            if len(choices) < 2 or not all(isinstance(c, str) for c in choices):
                raise yf.error("expected a list of at least two strings", root, "choices",
                               field="choices")
            config["doc_to_choice"] = [str(c) for c in choices]
        else:
            config["doc_to_choice"] = _template(yf, root, "choices", "choices")
        config["output_type"] = "multiple_choice"
    else:
        config["output_type"] = "generate_until"
    fewshot = yf.mapping(root.get("fewshot"), field="fewshot", parent=root, key="fewshot")
    yf.only_keys(fewshot, FEWSHOT_KEYS, field="fewshot")
    count = _int(yf, fewshot, "count", "fewshot.count", 0) if "count" in fewshot else 0
    if count and not fewshot_file:
        raise yf.error(f"{count}-shot needs examples: set dataset.fewshot_path (or "
                       "dataset.fewshot_split)", fewshot, "count", field="fewshot.count")
    config["num_fewshot"] = count
    if "separator" in fewshot:
        if not isinstance(fewshot["separator"], str):
            raise yf.error("expected a string", fewshot, "separator", field="fewshot.separator")
        config["fewshot_delimiter"] = str(fewshot["separator"])
    sampler = fewshot.get("sampler", "first_n")
    if sampler not in ("first_n", "random"):
        raise yf.error(f"sampler must be first_n or random, got {sampler!r}", fewshot,
                       "sampler", field="fewshot.sampler")
    if sampler == "first_n":
        config["fewshot_config"] = {"sampler": "first_n"}
    generation = yf.mapping(root.get("generation"), field="generation", parent=root,
                            key="generation")
    yf.only_keys(generation, GENERATION_KEYS, field="generation")
    answer = yf.mapping(root.get("answer"), field="answer", parent=root, key="answer")
    yf.only_keys(answer, ANSWER_KEYS, field="answer")
    if multiple_choice and (generation or answer):
        key = "generation" if generation else "answer"
        raise yf.error(f"{key!r} applies to generated answers, not to `choices` (scored by "
                       "loglikelihood)", root, key, field=key)
    allowed = MC_METRICS if multiple_choice else GEN_METRICS
    metrics = root.get("metrics", [allowed[0]])
    if not isinstance(metrics, list) or not metrics:
        raise yf.error("expected a list of metric names", root, "metrics", field="metrics")
    for index, metric in enumerate(metrics):
        if metric not in allowed:
            raise yf.error(f"unknown metric {metric!r} for a "
                           f"{'multiple-choice' if multiple_choice else 'generative'} "
                           f"evaluation; expected one of: {', '.join(allowed)}",
                           metrics, index, field=f"metrics[{index}]")
    exact = yf.mapping(root.get("exact_match"), field="exact_match", parent=root,
                       key="exact_match")
    yf.only_keys(exact, EXACT_MATCH_KEYS, field="exact_match")
    for key in exact:
        if not isinstance(exact[key], bool):
            raise yf.error("expected true or false", exact, key, field=f"exact_match.{key}")
    config["metric_list"] = [
        {"metric": m, "aggregation": "mean", "higher_is_better": True,
         **({k: bool(v) for k, v in exact.items()} if m == "exact_match" else {})}
        for m in metrics]
    if not multiple_choice:
        stop = generation.get("stop", ["\n\n"])
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise yf.error("expected a list of strings", generation, "stop",
                           field="generation.stop")
        max_tokens = (_int(yf, generation, "max_tokens", "generation.max_tokens", 1)
                      if "max_tokens" in generation else 64)
        config["generation_kwargs"] = {"until": [str(s) for s in stop], "do_sample": False,
                                       "temperature": 0.0, "max_gen_toks": max_tokens}
        steps: list[dict[str, Any]] = []
        if answer:
            regex = yf.string(answer.get("regex"), field="answer.regex", parent=answer,
                              key="regex")
            try:
                re.compile(regex)
            except re.error as exc:
                raise yf.error(f"invalid regular expression: {exc}", answer, "regex",
                               field="answer.regex") from None
            select = answer.get("select", "first")
            if select not in ("first", "last"):
                raise yf.error(f"select must be first or last, got {select!r}", answer,
                               "select", field="answer.select")
            steps.append({"function": "regex", "regex_pattern": str(regex),
                          "group_select": 0 if select == "first" else -1})
        # Surrounding whitespace never counts (" Paris" is "Paris").
        steps += [{"function": "remove_whitespace"}, {"function": "take_first"}]
        config["filter_list"] = [{"name": "extract", "filter": steps}]
    description = root.get("description", "")
    return CustomEval(name=name, path=yf.path, description=str(description),
                      version=str(root.get("version", "1")), multiple_choice=multiple_choice,
                      config=plain(config) | {}, metrics=tuple(str(m) for m in metrics),
                      fewshot_file=fewshot_file)


def _lm_eval_task(yf, root, plain) -> CustomEval:
    task = root.get("task")
    if not isinstance(task, str) or not task:
        raise yf.error("expected the task name (a string)", root, "task", field="task")
    output_type = root.get("output_type", "generate_until")
    if output_type not in ("multiple_choice", "generate_until", "loglikelihood"):
        raise yf.error(f"output_type {output_type!r} is not supported by KITT", root,
                       "output_type", field="output_type",
                       hint="use multiple_choice, loglikelihood or generate_until")
    name = task.lower().replace(" ", "_")
    listed = [m for m in (root.get("metric_list") or []) if isinstance(m, dict)]
    metrics = tuple(str(m.get("metric")) for m in listed) or (
        ("acc",) if output_type != "generate_until" else ("exact_match",))
    lower = tuple(str(m.get("metric")) for m in listed if m.get("higher_is_better") is False)
    return CustomEval(name=name, path=yf.path, description=f"lm-eval task {task}",
                      version=str((root.get("metadata") or {}).get("version", "1")),
                      lm_eval_task=True, multiple_choice=output_type != "generate_until",
                      metrics=metrics, lower_is_better=lower)


@attrs.frozen
class CustomParams(QualityParams):
    """Custom evaluations take the common settings; `dataset` replaces the file's data."""


class CustomBenchmark(Benchmark):
    category: ClassVar[str] = "quality"
    Params: ClassVar[type] = CustomParams

    def __init__(self, path: Path, spec: CustomEval | None = None,
                 error: BadInput | None = None, name: str | None = None):
        self.source = path
        self.spec = spec
        self.error = error
        self.problem = str(error) if error is not None else None
        self.name = spec.name if spec else (name or path.stem)
        self.version = spec.version if spec else "1"
        self.description = (spec.description if spec else f"invalid: {error}") or \
            f"custom evaluation {path.name}"
        self.modes = (("loglikelihood",) if spec and spec.multiple_choice else ("generative",))
        # The scores the file names, as lm-eval defines them (`higher_is_better`).
        names = spec.metrics if spec else ()
        lower = spec.lower_is_better if spec else ()
        self.metrics = (*(MetricSpec(n, "", "lower" if n in lower else "higher")
                          for n in names),
                        *(MetricSpec(f"{n}_stderr", "", "neutral") for n in names),
                        MetricSpec("n_items", "", "neutral"))

    def build_plan(self, params: Any, mode: str, out_dir: Path):
        from kitt_bench_quality.tasks import LmMetric, TaskPlan, load_task_yaml

        spec = load(self.source)  # re-read: the file may have changed since discovery
        if spec.lm_eval_task:
            try:
                config = load_task_yaml(self.source)
            except Exception as exc:
                raise BadInput(f"{self.source}: cannot load this lm-eval task: "
                               f"{type(exc).__name__}: {exc}",
                               hint="check `include:` paths and `!function` references") from None
        else:
            config = dict(spec.config)
        if params.dataset:
            local = Path(params.dataset).expanduser().resolve()
            if not local.is_file():
                raise BadInput(f"dataset {local} does not exist (a .jsonl/.json/.parquet file)")
            kind = "parquet" if local.suffix.lower() == ".parquet" else "json"
            files = {config.get("test_split") or "test": str(local)}
            config.update(dataset_path=kind, dataset_name=None,
                          test_split=config.get("test_split") or "test",
                          dataset_kwargs={"data_files": files})
            config.pop("fewshot_split", None)
            config["num_fewshot"] = 0 if not params.num_fewshot else config.get("num_fewshot")
        task = config["task"]
        flt = "none"
        if config.get("filter_list"):
            flt = config["filter_list"][0]["name"]
        metrics = [LmMetric(f"{m},{flt}", m) for m in spec.metrics]
        return TaskPlan([config], {task: metrics}, {task: spec.metrics[0]},
                        dataset=str(config.get("dataset_path")))

    def run(self, context: BenchmarkContext, params: Any) -> Measurement:
        if self.error is not None:
            raise self.error
        from kitt_bench_quality.runner import evaluate

        return evaluate(self.name, self.version, self.build_plan, self.modes, context, params)


def discover(directory: Path | None = None) -> list[CustomBenchmark]:
    """Every `*.yaml`/`*.yml` in the evals folder; invalid ones are registered too, and
    explain themselves when listed or run."""
    folder = directory or evals_dir()
    if not folder.is_dir():
        return []
    found = []
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        try:
            found.append(CustomBenchmark(path, load(path)))
        except BadInput as error:
            found.append(CustomBenchmark(path, error=error))
    return found
