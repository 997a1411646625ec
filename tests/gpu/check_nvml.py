"""Check the GPU probe against real NVIDIA hardware (not collected by pytest).

On a machine with an NVIDIA GPU, driver, `nvidia-smi` and `pip install nvidia-ml-py`:

    python tests/gpu/check_nvml.py

takes the fingerprint twice, once through NVML (pynvml) and once with pynvml hidden so
the `nvidia-smi` fallback answers, prints both as JSON and asserts that they agree: GPU
count and names, memory within 1%, driver and CUDA versions, unified memory, and that
every compute capability parses as MAJOR.MINOR. Exit status 0 when they agree.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import time


def _without_pynvml(name: str):
    if name == "pynvml":
        raise ImportError("pynvml hidden by check_nvml.py to exercise the nvidia-smi fallback")
    return importlib.import_module(name)


def compare(nvml, smi) -> list[str]:
    """What differs between the NVML and the nvidia-smi GPU sections."""
    problems = []
    if nvml.source != "nvml":
        problems.append(f"NVML did not answer: source {nvml.source!r}")
    if smi.source != "nvidia-smi":
        problems.append(f"nvidia-smi did not answer: source {smi.source!r}")
    if not nvml.gpus:
        problems.append("no GPU found through NVML")
    if len(nvml.gpus) != len(smi.gpus):
        problems.append(f"count: nvml {len(nvml.gpus)} != nvidia-smi {len(smi.gpus)}")
    for index, (a, b) in enumerate(zip(nvml.gpus, smi.gpus, strict=False)):
        if a.name != b.name:
            problems.append(f"gpu {index} name: {a.name!r} != {b.name!r}")
        if a.memory_mib is None or b.memory_mib is None:
            problems.append(f"gpu {index} memory unknown: {a.memory_mib} / {b.memory_mib}")
        elif abs(a.memory_mib - b.memory_mib) > 0.01 * max(a.memory_mib, b.memory_mib):
            problems.append(f"gpu {index} memory: {a.memory_mib} != {b.memory_mib} MiB")
        for source, capability in (("nvml", a.compute_capability),
                                   ("nvidia-smi", b.compute_capability)):
            if not re.fullmatch(r"\d+\.\d+", capability or ""):
                problems.append(f"gpu {index} compute capability from {source}: {capability!r}")
        if a.compute_capability != b.compute_capability:
            problems.append(f"gpu {index} compute capability: {a.compute_capability} != "
                            f"{b.compute_capability}")
    if nvml.driver_version != smi.driver_version:
        problems.append(f"driver: {nvml.driver_version} != {smi.driver_version}")
    if nvml.cuda_version != smi.cuda_version:
        problems.append(f"CUDA: {nvml.cuda_version} != {smi.cuda_version}")
    if nvml.unified_memory != smi.unified_memory:
        problems.append(f"unified memory: {nvml.unified_memory} != {smi.unified_memory}")
    return problems


def main() -> int:
    from kitt._fingerprint import take_fingerprint
    from kitt._util.converter import unstructure
    from kitt.probe import ProbeContext

    start = time.perf_counter()
    with_nvml = take_fingerprint(ProbeContext())
    nvml_seconds = time.perf_counter() - start
    start = time.perf_counter()
    with_smi = take_fingerprint(ProbeContext(import_module=_without_pynvml))
    smi_seconds = time.perf_counter() - start
    print(json.dumps({
        "nvml": unstructure(with_nvml),
        "nvidia_smi": unstructure(with_smi),
        "seconds": {"nvml": round(nvml_seconds, 3), "nvidia_smi": round(smi_seconds, 3)},
    }, indent=2))
    problems = compare(with_nvml.gpu, with_smi.gpu)
    for problem in problems:
        print("MISMATCH:", problem, file=sys.stderr)
    assert not problems, f"{len(problems)} mismatch(es) between NVML and nvidia-smi"
    assert with_nvml.fingerprint == with_smi.fingerprint, (
        f"strings differ: {with_nvml.fingerprint} != {with_smi.fingerprint}"
    )
    print("OK: NVML and nvidia-smi agree:", with_nvml.fingerprint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
