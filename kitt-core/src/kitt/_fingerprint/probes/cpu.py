"""CPU: brand, architecture, physical cores and hardware threads.

Everything comes from /proc/cpuinfo and sysfs topology so fixture trees work. py-cpuinfo
(slow: about a second, it spawns a subprocess) is asked only on the real root and only
when those files give no brand.
"""

from __future__ import annotations

import os
import platform
import re

from kitt._fingerprint.probes.osinfo import is_real_root
from kitt.probe import ProbeContext
from kitt.records import CPUSection

# MIDR implementer codes and part numbers (Linux arch/arm64/include/asm/cputype.h).
ARM_IMPLEMENTERS = {
    0x41: "ARM",
    0x42: "Broadcom",
    0x43: "Cavium",
    0x46: "Fujitsu",
    0x48: "HiSilicon",
    0x4E: "NVIDIA",
    0x51: "Qualcomm",
    0x61: "Apple",
    0x6D: "Microsoft",
    0xC0: "Ampere",
}
ARM_PARTS = {
    (0x41, 0xD03): "Cortex-A53",
    (0x41, 0xD04): "Cortex-A35",
    (0x41, 0xD05): "Cortex-A55",
    (0x41, 0xD07): "Cortex-A57",
    (0x41, 0xD08): "Cortex-A72",
    (0x41, 0xD09): "Cortex-A73",
    (0x41, 0xD0A): "Cortex-A75",
    (0x41, 0xD0B): "Cortex-A76",
    (0x41, 0xD0C): "Neoverse-N1",
    (0x41, 0xD0D): "Cortex-A77",
    (0x41, 0xD0E): "Cortex-A76AE",
    (0x41, 0xD40): "Neoverse-V1",
    (0x41, 0xD41): "Cortex-A78",
    (0x41, 0xD42): "Cortex-A78AE",
    (0x41, 0xD44): "Cortex-X1",
    (0x41, 0xD46): "Cortex-A510",
    (0x41, 0xD47): "Cortex-A710",
    (0x41, 0xD48): "Cortex-X2",
    (0x41, 0xD49): "Neoverse-N2",
    (0x41, 0xD4B): "Cortex-A78C",
    (0x41, 0xD4C): "Cortex-X1C",
    (0x41, 0xD4D): "Cortex-A715",
    (0x41, 0xD4E): "Cortex-X3",
    (0x41, 0xD4F): "Neoverse-V2",
    (0x41, 0xD80): "Cortex-A520",
    (0x41, 0xD81): "Cortex-A720",
    (0x41, 0xD82): "Cortex-X4",
    (0x41, 0xD83): "Neoverse-V3AE",
    (0x41, 0xD84): "Neoverse-V3",
    (0x41, 0xD85): "Cortex-X925",
    (0x41, 0xD87): "Cortex-A725",
    (0x41, 0xD8E): "Neoverse-N3",
    (0x46, 0x001): "A64FX",
    (0x48, 0xD01): "TaiShan-v110",
    (0x4E, 0x003): "Denver 2",
    (0x4E, 0x004): "Carmel",
    (0xC0, 0xAC3): "Ampere-1",
    (0xC0, 0xAC4): "Ampere-1A",
}

ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "i386": "i686"}


def parse_cpuinfo(text: str) -> list[dict[str, str]]:
    """The blocks of /proc/cpuinfo (separated by blank lines) as key -> value dicts."""
    blocks = []
    for chunk in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in chunk.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields.setdefault(key.strip(), value.strip())
        if fields:
            blocks.append(fields)
    return blocks


def _processors(blocks: list[dict[str, str]]) -> list[dict[str, str]]:
    return [b for b in blocks if b.get("processor", "").isdigit()]


def _int(value: str | None, base: int = 10) -> int | None:
    try:
        return int(value, base) if value is not None else None
    except ValueError:
        return None


def arm_core_name(implementer: int, part: int) -> str:
    known = ARM_PARTS.get((implementer, part))
    if known:
        return known
    vendor = ARM_IMPLEMENTERS.get(implementer, f"implementer 0x{implementer:02x}")
    return f"{vendor} part 0x{part:03x}"


def brand_from_midr(processors: list[dict[str, str]]) -> str | None:
    """"ARM Neoverse-V2", or "ARM Cortex-X925 + Cortex-A725" for a mix of core types
    (most numerous first, then in order of appearance), from MIDR fields."""
    counts: dict[tuple[int, int], int] = {}
    for block in processors:
        implementer = _int(block.get("CPU implementer"), 16)
        part = _int(block.get("CPU part"), 16)
        if implementer is None or part is None:
            continue
        counts[(implementer, part)] = counts.get((implementer, part), 0) + 1
    if not counts:
        return None
    order = sorted(counts, key=lambda key: -counts[key])  # stable: ties keep first seen
    vendors = {ARM_IMPLEMENTERS.get(implementer) for implementer, _ in order}
    names = [arm_core_name(implementer, part) for implementer, part in order]
    vendor = vendors.pop() if len(vendors) == 1 else None
    if vendor and all(not name.startswith(vendor) for name in names):
        return f"{vendor} " + " + ".join(names)
    return " + ".join(names)


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    text = re.sub(r"\s+", " ", text.strip("\x00 \t\n"))
    return text or None


def brand_from_cpuinfo(processors: list[dict[str, str]], blocks: list[dict[str, str]]):
    midr = brand_from_midr(processors)
    if midr:
        return midr
    for block in processors or blocks:
        for key in ("model name", "cpu model", "Processor", "cpu"):
            value = _clean(block.get(key))
            if value:
                return value
    return None


def brand_from_device_tree(context: ProbeContext) -> str | None:
    for path in ("/sys/firmware/devicetree/base/model", "/proc/device-tree/model"):
        value = _clean(context.read_text(path))
        if value:
            return value
    return None


def normalize_arch(machine: str | None) -> str | None:
    if not machine:
        return None
    machine = machine.strip().lower()
    return ARCH_ALIASES.get(machine, machine) or None


def arch_from_cpuinfo(processors: list[dict[str, str]]) -> str | None:
    if not processors:
        return None
    first = processors[0]
    if "CPU implementer" in first:
        return "aarch64" if first.get("CPU architecture", "8").strip() in {"8", "AArch64"} \
            else "armv7l"
    if first.get("vendor_id") in {"GenuineIntel", "AuthenticAMD", "HygonGenuine"}:
        return "x86_64" if " lm " in f" {first.get('flags', '')} " else "i686"
    if "isa" in first:
        return "riscv64" if first["isa"].startswith("rv64") else None
    return None


def _cpu_dirs(context: ProbeContext) -> list:
    base = context.path("/sys/devices/system/cpu")
    try:
        return [d for d in base.iterdir() if re.fullmatch(r"cpu\d+", d.name)]
    except OSError:
        return []


def _parse_cpu_list(text: str) -> int | None:
    count = 0
    for part in text.strip().split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            return None
        count += int(high) - int(low) + 1 if high else 1
    return count or None


def cores_from_sysfs(context: ProbeContext) -> int | None:
    """Physical cores: distinct thread-sibling sets across the CPUs' topology."""
    siblings = set()
    for cpu in _cpu_dirs(context):
        for name in ("core_cpus_list", "thread_siblings_list"):
            try:
                siblings.add((cpu / "topology" / name).read_text().strip())
                break
            except OSError:
                continue
    return len(siblings) or None


def cores_from_cpuinfo(processors: list[dict[str, str]]) -> int | None:
    pairs = {(b.get("physical id"), b.get("core id")) for b in processors}
    if processors and all(p is not None and c is not None for p, c in pairs):
        return len(pairs)
    per_package = {b.get("physical id"): _int(b.get("cpu cores")) for b in processors}
    if processors and all(v is not None for v in per_package.values()):
        return sum(v for v in per_package.values() if v is not None)
    return None


def threads_from_sysfs(context: ProbeContext) -> int | None:
    online = context.read_text("/sys/devices/system/cpu/online")
    if online:
        return _parse_cpu_list(online)
    return len(_cpu_dirs(context)) or None


def _py_cpuinfo(context: ProbeContext) -> dict:
    try:
        module = context.import_module("cpuinfo")
        return dict(module.get_cpu_info())
    except Exception:  # optional and slow; never fatal
        return {}


def _macos(context: ProbeContext) -> tuple[str | None, int | None, int | None]:
    out = context.run_command(
        ["sysctl", "-n", "machdep.cpu.brand_string", "hw.physicalcpu", "hw.logicalcpu"]
    )
    lines = (out or "").splitlines()
    lines += [""] * (3 - len(lines))
    return _clean(lines[0]), _int(lines[1].strip()), _int(lines[2].strip())


def collect(context: ProbeContext) -> CPUSection:
    blocks = parse_cpuinfo(context.read_text("/proc/cpuinfo") or "")
    processors = _processors(blocks)
    real = is_real_root(context)

    brand = brand_from_cpuinfo(processors, blocks)
    if brand is None and "CPU implementer" in (processors[0] if processors else {}):
        brand = brand_from_device_tree(context)

    arch = normalize_arch(context.read_text("/proc/sys/kernel/arch"))
    if arch is None and real:
        arch = normalize_arch(platform.machine())
    if arch is None:
        arch = arch_from_cpuinfo(processors)

    cores = cores_from_sysfs(context) or cores_from_cpuinfo(processors)
    threads = len(processors) or threads_from_sysfs(context)

    if real and platform.system() == "Darwin":
        mac_brand, mac_cores, mac_threads = _macos(context)
        brand, cores, threads = brand or mac_brand, cores or mac_cores, threads or mac_threads
    if real and threads is None:
        threads = os.cpu_count()
    if real and (brand is None or arch is None):
        info = _py_cpuinfo(context)
        brand = brand or _clean(info.get("brand_raw"))
        if arch is None and info.get("arch"):
            arch = {"X86_64": "x86_64", "X86_32": "i686", "ARM_8": "aarch64",
                    "ARM_7": "armv7l"}.get(info["arch"], str(info["arch"]).lower())
    return CPUSection(brand=brand, architecture=arch, cores=cores, threads=threads)
