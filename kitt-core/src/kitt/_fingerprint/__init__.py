"""Taking a hardware fingerprint and writing its stable string (docs/fingerprint.md)."""

from __future__ import annotations

import json
import platform
import re
import sys
from collections.abc import Mapping
from typing import Any

import attrs

from kitt.probe import Probe, ProbeContext
from kitt.records import (
    CPUSection,
    Fingerprint,
    GPUSection,
    MemorySection,
    OSSection,
    StorageSection,
)

UNKNOWN = "unknown"

# Built-in probe name -> (Fingerprint field, the type its collect returns).
BUILTIN_PROBES: dict[str, tuple[str, type]] = {
    "gpu": ("gpu", GPUSection),
    "cpu": ("cpu", CPUSection),
    "memory": ("memory", MemorySection),
    "storage": ("storage", StorageSection),
    "os": ("os", OSSection),
    "environment": ("environment", str),
}


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _json_mapping(value: Any) -> dict[str, Any]:
    """A plain JSON copy of a probe's mapping; TypeError/ValueError when it is not one."""
    if not isinstance(value, Mapping):
        raise TypeError(f"returned {type(value).__name__}, not a mapping")
    if not all(isinstance(key, str) for key in value):
        raise TypeError("returned a mapping with non-string keys")
    try:
        return json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"returned a mapping that is not JSON: {exc}") from None


def take_fingerprint(
    context: ProbeContext | None = None, probes: Mapping[str, Probe] | None = None
) -> Fingerprint:
    """Run every probe (default: all registered, `kitt.plugins.probes()`) against
    `context` (default: this machine) and assemble the fingerprint.

    Each probe is isolated: one that raises, or returns the wrong type, leaves its
    section "unknown" and adds a warning; it never stops the others. Probes whose name
    is not built-in report a mapping of JSON values, stored in `extra[name]`.
    """
    if context is None:
        context = ProbeContext()
    if probes is None:
        from kitt import plugins

        probes = plugins.probes()
    sections: dict[str, Any] = {}
    extra: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    for name, probe in probes.items():
        try:
            value = probe.collect(context)
        except Exception as exc:
            warnings.append(f"probe {name!r} failed: {_first_line(exc)}")
            continue
        if name in BUILTIN_PROBES:
            field, expected = BUILTIN_PROBES[name]
            if isinstance(value, expected):
                sections[field] = value
            else:
                warnings.append(
                    f"probe {name!r} failed: returned {type(value).__name__}, "
                    f"not {expected.__name__}"
                )
            continue
        try:
            extra[name] = _json_mapping(value)
        except TypeError as exc:
            warnings.append(f"probe {name!r} {exc}")
    fingerprint = Fingerprint(fingerprint="", extra=extra, warnings=tuple(warnings), **sections)
    return attrs.evolve(fingerprint, fingerprint=fingerprint_string(fingerprint))


# --- the fingerprint string ----------------------------------------------------------------

GPU_DROP_WORDS = ("NVIDIA", "GeForce", "Tesla", "Quadro", "Generation", "Edition", "GPU")
CPU_DROP_WORDS = ("Intel", "AMD", "ARM", "Apple", "Qualcomm", "NVIDIA", "Core", "Processor",
                  "CPU")
NOMINAL_SIZES_GB = sorted({m * 2**n for m in (1, 3) for n in range(16)})


def slug(text: str) -> str:
    """Lower case; every run of characters other than a-z, 0-9 and "." becomes one dash."""
    text = re.sub(r"[^a-z0-9.]+", "-", text.lower())
    return text.strip("-.")


def nominal_gb(mib: int) -> int:
    """A memory size in whole GB as sold: the smallest N of 1, 2, 3, 4, 6, 8, 12, 16, 24, 32,
    48, 64, 96, 128... (2^n and 3*2^n) with 0.9*N <= GiB <= 1.01*N (the OS and ECC keep
    some), else GiB rounded half up; at least 1."""
    gib = mib / 1024
    for size in NOMINAL_SIZES_GB:
        if 0.9 * size <= gib <= 1.01 * size:
            return size
    return max(1, int(gib + 0.5))


def _drop_words(text: str, words: tuple[str, ...]) -> str:
    pattern = r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b"
    return re.sub(pattern, " ", text, flags=re.IGNORECASE)


def short_gpu_name(name: str) -> str:
    """"NVIDIA GeForce RTX 4090" -> "rtx4090", "NVIDIA H100 80GB HBM3" -> "h100"."""
    text = _drop_words(name, GPU_DROP_WORDS)
    text = re.sub(r"\b\d+(?:\.\d+)?\s*GB\b|\bHBM\w*", " ", text, flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9]", "", text.lower()) or UNKNOWN


def short_cpu_brand(brand: str) -> str:
    """"13th Gen Intel(R) Core(TM) i9-13900K" -> "i9-13900k"."""
    text = re.sub(r"\((?:R|TM|C)\)", " ", brand, flags=re.IGNORECASE)
    text = re.sub(r"@.*$", " ", text)
    text = re.sub(r"\b\d+(?:st|nd|rd|th)\s+Gen\b", " ", text, flags=re.IGNORECASE)
    text = re.sub(r"\b[\w]+-Core\b", " ", text, flags=re.IGNORECASE)
    text = re.sub(r"\b(?:with|w/)\s+Radeon\b.*$", " ", text, flags=re.IGNORECASE)
    text = _drop_words(text, CPU_DROP_WORDS)
    return slug(text) or UNKNOWN


def _gpu_part(gpu: GPUSection) -> str:
    if not gpu.gpus:
        return UNKNOWN if gpu.source == UNKNOWN else "nogpu"
    groups: dict[tuple[str, str], int] = {}
    for device in gpu.gpus:
        if gpu.unified_memory:
            size = "unified"
        elif device.memory_mib:
            size = f"{nominal_gb(device.memory_mib)}gb"
        else:
            size = ""
        key = (short_gpu_name(device.name), size)
        groups[key] = groups.get(key, 0) + 1
    parts = []
    for (name, size), count in groups.items():
        prefix = f"{count}x-" if count > 1 else ""
        parts.append(prefix + name + (f"-{size}" if size else ""))
    return "-".join(parts)


def _cpu_part(cpu: CPUSection) -> str:
    if cpu.brand is None and cpu.cores is None:
        return UNKNOWN
    brand = short_cpu_brand(cpu.brand) if cpu.brand else UNKNOWN
    return brand + (f"-{cpu.cores}c" if cpu.cores else "")


def _memory_part(memory: MemorySection) -> str:
    if not memory.total_mib:
        return UNKNOWN
    kind = slug(memory.type) if memory.type else ""
    return f"{nominal_gb(memory.total_mib)}gb" + (f"-{kind}" if kind else "")


def _major_minor(version: str | None) -> str | None:
    match = re.match(r"\s*([0-9]+)(?:\.([0-9]+))?", version or "")
    if not match:
        return None
    return match.group(1) + (f".{match.group(2)}" if match.group(2) is not None else "")


def _os_part(os_section: OSSection) -> str:
    system = slug(os_section.system or "")
    if not system:
        return UNKNOWN
    kernel = _major_minor(os_section.kernel)
    return system + (f"-{kernel}" if kernel else "")


def fingerprint_string(fp: Fingerprint) -> str:
    """The stable one-line name of a machine: seven parts joined by "_"
    (gpu_cpu_memory_storage_cuda_driver_os), each normalized as docs/fingerprint.md says,
    e.g. "rtx4090-24gb_i9-13900k-24c_64gb-ddr5_nvme_cuda-12.4_550.90_linux-6.8"."""
    cuda = _major_minor(fp.gpu.cuda_version)
    driver = _major_minor(fp.gpu.driver_version)
    parts = [
        _gpu_part(fp.gpu),
        _cpu_part(fp.cpu),
        _memory_part(fp.memory),
        slug(fp.storage.kind) if fp.storage.kind else UNKNOWN,
        f"cuda-{cuda}" if cuda else UNKNOWN,
        driver or UNKNOWN,
        _os_part(fp.os),
    ]
    return "_".join(part or UNKNOWN for part in parts)


# -- facts engines choose images by ---------------------------------------------------------

def host_fingerprint() -> Fingerprint:
    """This machine's fingerprint; a minimal one (architecture only) if probing fails."""
    try:
        return take_fingerprint()
    except Exception as exc:  # image choice must work even if probing cannot
        print(f"kitt: warning: hardware probe failed ({exc}); assuming no GPU",
              file=sys.stderr)
        return Fingerprint("unknown", cpu=CPUSection(architecture=platform.machine()))


def host_arch(host: Fingerprint) -> str:
    """`x86_64` or `arm64` (aarch64), whatever spelling the probe used."""
    arch = (host.cpu.architecture or platform.machine()).lower()
    return {"aarch64": "arm64", "arm64": "arm64", "amd64": "x86_64",
            "x86-64": "x86_64"}.get(arch, arch)


def max_compute_capability(host: Fingerprint) -> float | None:
    """The highest NVIDIA compute capability among the host's GPUs (e.g. 12.1), or None."""
    found = []
    for gpu in host.gpu.gpus:
        try:
            found.append(float(gpu.compute_capability or ""))
        except ValueError:
            continue
    return max(found, default=None)


def is_blackwell(host: Fingerprint) -> bool:
    cc = max_compute_capability(host)
    return cc is not None and cc >= 10.0
