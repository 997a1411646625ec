"""The standard quality benchmarks. Cheap to import: evaluation imports lm-eval lazily."""

from __future__ import annotations

from typing import Any, ClassVar

from kitt.benchmark import Benchmark, BenchmarkContext, Measurement
from kitt_bench_quality.params import MMLUParams, QualityParams


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


class GSM8K(QualityBenchmark):
    name = "gsm8k"
    description = ("GSM8K (openai/gsm8k): grade-school math, 5-shot generation; strict "
                   "'#### N' and flexible last-number exact match")
    modes = ("generative",)
    plan = "gsm8k_plan"


class TruthfulQA(QualityBenchmark):
    name = "truthfulqa"
    description = "TruthfulQA (truthful_qa multiple_choice): mc1 and mc2"
    plan = "truthfulqa_plan"


class HellaSwag(QualityBenchmark):
    name = "hellaswag"
    description = "HellaSwag (Rowan/hellaswag): commonsense sentence completion; acc, acc_norm"
    plan = "hellaswag_plan"


STANDARD = (MMLU, GSM8K, TruthfulQA, HellaSwag)
