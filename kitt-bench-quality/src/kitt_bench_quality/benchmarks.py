"""The standard quality benchmarks. Cheap to import: evaluation imports lm-eval lazily."""

from __future__ import annotations

from typing import Any, ClassVar

from kitt import Benchmark, BenchmarkContext, Measurement, MetricSpec
from kitt_bench_quality.params import MMLUParams, QualityParams

N_ITEMS = MetricSpec("n_items", "", "neutral", "items scored")


def scores(*names: str) -> tuple[MetricSpec, ...]:
    """Each score (a fraction, higher is better) with its standard error (neutral: a
    measure of the score's uncertainty, never a regression), then `n_items`."""
    specs = []
    for name in names:
        specs += [MetricSpec(name, "", "higher", f"{name} (0-1)"),
                  MetricSpec(f"{name}_stderr", "", "neutral", f"standard error of {name}")]
    return (*specs, N_ITEMS)


class QualityBenchmark(Benchmark):
    category: ClassVar[str] = "quality"
    Params: ClassVar[type] = QualityParams
    modes: ClassVar[tuple[str, ...]] = ("loglikelihood", "generative")
    plan: ClassVar[str] = ""
    """Name of the plan builder in `kitt_bench_quality.tasks`."""

    def build_plan(self, params: Any, mode: str, out_dir):
        from kitt_bench_quality import tasks

        return getattr(tasks, self.plan)(params, mode, out_dir)

    def run(self, context: BenchmarkContext, params: Any) -> Measurement:
        from kitt_bench_quality.runner import evaluate

        return evaluate(self.name, self.version, self.build_plan, self.modes, context, params)


class MMLU(QualityBenchmark):
    name = "mmlu"
    description = ("MMLU (cais/mmlu): 57-subject multiple choice; acc per subject, per "
                   "category and weighted overall")
    Params = MMLUParams
    plan = "mmlu_plan"
    metrics = scores("acc")
    headline = ("acc", "acc_stderr", "n_items")


class GSM8K(QualityBenchmark):
    name = "gsm8k"
    description = ("GSM8K (openai/gsm8k): grade-school math, 5-shot generation; strict "
                   "'#### N' and flexible last-number exact match")
    modes = ("generative",)
    plan = "gsm8k_plan"
    metrics = scores("exact_match_strict", "exact_match_flexible")
    headline = ("exact_match_strict", "exact_match_flexible", "n_items")


class TruthfulQA(QualityBenchmark):
    name = "truthfulqa"
    description = "TruthfulQA (truthful_qa multiple_choice): mc1 and mc2"
    plan = "truthfulqa_plan"
    metrics = scores("mc1", "mc2")
    headline = ("mc1", "mc2", "n_items")


class HellaSwag(QualityBenchmark):
    name = "hellaswag"
    description = "HellaSwag (Rowan/hellaswag): commonsense sentence completion; acc, acc_norm"
    plan = "hellaswag_plan"
    metrics = scores("acc", "acc_norm")
    headline = ("acc", "acc_norm", "n_items")


STANDARD = (MMLU, GSM8K, TruthfulQA, HellaSwag)
