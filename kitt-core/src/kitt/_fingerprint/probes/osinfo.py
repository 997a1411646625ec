"""Operating system: name and version from os-release, kernel from /proc."""

from __future__ import annotations

import platform
from pathlib import Path

from kitt.probe import ProbeContext
from kitt.records import OSSection


def is_real_root(context: ProbeContext) -> bool:
    """True when the context looks at this machine rather than at a fixture tree; only
    then may probes ask the running interpreter (platform, os.cpu_count, py-cpuinfo)."""
    return Path(context.root) == Path("/")


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value lines of an os-release style file (also /etc/dgx-release); quotes removed.
    A key given twice keeps its last value, as a shell sourcing the file would."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def system_name(context: ProbeContext) -> str | None:
    """"Linux", "Darwin", "Windows"... (platform.system() on the real root)."""
    if is_real_root(context):
        return platform.system() or None
    ostype = context.read_text("/proc/sys/kernel/ostype")
    if ostype and ostype.strip():
        return ostype.strip()
    if context.path("/proc/version").exists():
        return "Linux"
    return None


def kernel_release(context: ProbeContext) -> str | None:
    text = context.read_text("/proc/sys/kernel/osrelease")
    if text and text.strip():
        return text.strip()
    if is_real_root(context):
        return platform.release() or None
    return None


def collect(context: ProbeContext) -> OSSection:
    system = system_name(context)
    kernel = kernel_release(context)
    distribution = version = None
    text = context.read_text("/etc/os-release") or context.read_text("/usr/lib/os-release")
    if text:
        release = parse_os_release(text)
        distribution = release.get("NAME") or release.get("ID") or None
        version = release.get("VERSION_ID") or None
    elif is_real_root(context) and system == "Darwin":
        distribution, version = "macOS", platform.mac_ver()[0] or None
    elif is_real_root(context) and system == "Windows":
        distribution, version = "Windows", platform.version() or None
    return OSSection(system=system, distribution=distribution, version=version, kernel=kernel)
