"""System memory: total from /proc/meminfo, type from `dmidecode -t memory` when readable."""

from __future__ import annotations

import os
import platform
import re
from collections import Counter

from kitt._fingerprint.probes.osinfo import is_real_root
from kitt.probe import ProbeContext
from kitt.records import MemorySection

_IGNORED_TYPES = {"unknown", "other", "<out of spec>", "none", ""}


def meminfo_total_mib(context: ProbeContext) -> int | None:
    """MemTotal of /proc/meminfo in MiB (rounded down), or None."""
    text = context.read_text("/proc/meminfo")
    if not text:
        return None
    match = re.search(r"^MemTotal:\s*(\d+)\s*kB", text, re.MULTILINE)
    return int(match.group(1)) // 1024 if match else None


def _macos_total_mib(context: ProbeContext) -> int | None:
    out = context.run_command(["sysctl", "-n", "hw.memsize"])
    try:
        return int(out.strip()) // (1024 * 1024) if out else None
    except ValueError:
        return None


def system_total_mib(context: ProbeContext) -> int | None:
    total = meminfo_total_mib(context)
    if total is None and is_real_root(context) and platform.system() == "Darwin":
        total = _macos_total_mib(context)
    return total


def parse_dmidecode_memory_type(text: str) -> str | None:
    """The most common `Type:` of installed "Memory Device" entries, as dmidecode spells it."""
    types: Counter[str] = Counter()
    for block in re.split(r"\n\s*\n", text):
        if "Memory Device" not in block:
            continue
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.strip().partition(":")
            if sep and key not in fields:
                fields[key.strip()] = value.strip()
        size = fields.get("Size", "")
        if not size or "no module" in size.lower() or "not installed" in size.lower():
            continue
        kind = fields.get("Type", "")
        if kind.lower() in _IGNORED_TYPES:
            continue
        types[kind] += 1
    if not types:
        return None
    return types.most_common(1)[0][0]  # Counter keeps first-seen order for ties


def _may_run_dmidecode(context: ProbeContext) -> bool:
    # dmidecode needs root; on this machine skip the subprocess when it cannot succeed.
    # Fixture contexts always ask (their run_command is a fake).
    if not is_real_root(context):
        return True
    geteuid = getattr(os, "geteuid", None)
    return platform.system() == "Linux" and geteuid is not None and geteuid() == 0


def collect(context: ProbeContext) -> MemorySection:
    total = system_total_mib(context)
    memory_type = None
    if _may_run_dmidecode(context):
        out = context.run_command(["dmidecode", "-t", "memory"])
        if out:
            memory_type = parse_dmidecode_memory_type(out)
    return MemorySection(total_mib=total, type=memory_type)
