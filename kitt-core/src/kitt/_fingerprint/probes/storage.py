"""Storage: the disk that backs the root filesystem, its model and kind from sysfs."""

from __future__ import annotations

import re
from pathlib import Path

from kitt.probe import ProbeContext
from kitt.records import StorageSection

# In a container `/` is an overlay; these bind mounts come from the host's disk.
CONTAINER_HINT_MOUNTS = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")


def parse_mountinfo(text: str) -> list[tuple[str, str, str]]:
    """(major:minor, mount point, source) for each line of /proc/self/mountinfo."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5:
            continue
        tail = right.split()
        source = tail[1] if len(tail) > 1 else ""
        mount_point = fields[4].replace("\\040", " ")
        mounts.append((fields[2], mount_point, source))
    return mounts


def parse_mounts(text: str) -> list[tuple[str, str, str]]:
    """The same from /proc/mounts, which has no major:minor."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2:
            mounts.append(("", fields[1], fields[0]))
    return mounts


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def _block_names(context: ProbeContext) -> list[str]:
    try:
        return sorted(entry.name for entry in context.path("/sys/block").iterdir())
    except OSError:
        return []


def _by_devnum(context: ProbeContext, devnum: str) -> str | None:
    """The block device (disk or partition) whose sysfs `dev` is `devnum`."""
    if not re.fullmatch(r"\d+:\d+", devnum) or devnum.startswith("0:"):
        return None
    sys_block = context.path("/sys/block")
    for disk in _block_names(context):
        if _read(sys_block / disk / "dev") == devnum:
            return disk
        try:
            children = list((sys_block / disk).iterdir())
        except OSError:
            continue
        for child in children:
            if child.name.startswith(disk) and _read(child / "dev") == devnum:
                return child.name
    return None


def _by_source(context: ProbeContext, source: str) -> str | None:
    """The block device named by a mount source such as /dev/nvme0n1p2 or /dev/mapper/x."""
    if not source.startswith("/dev/"):
        return None
    name = source[len("/dev/"):]
    if name.startswith("mapper/"):
        wanted = name[len("mapper/"):]
        for disk in _block_names(context):
            if _read(context.path(f"/sys/block/{disk}/dm/name")) == wanted:
                return disk
        return None
    return name.rsplit("/", 1)[-1]


def disk_of(context: ProbeContext, name: str, depth: int = 0) -> str | None:
    """The whole physical disk under block device `name`: partitions go to their disk,
    device-mapper and md devices to their first member (in name order)."""
    sys_block = context.path("/sys/block")
    disks = _block_names(context)
    disk = name if name in disks else None
    if disk is None:
        disk = next((d for d in disks if (sys_block / d / name).is_dir()), None)
    if disk is None:
        return None
    try:
        members = sorted(entry.name for entry in (sys_block / disk / "slaves").iterdir())
    except OSError:
        members = []
    if members and depth < 8:
        return disk_of(context, members[0], depth + 1) or disk
    return disk


def root_disk(context: ProbeContext) -> str | None:
    """The physical disk (a /sys/block name) that holds the root filesystem."""
    text = context.read_text("/proc/self/mountinfo")
    if text:
        mounts = parse_mountinfo(text)
    else:
        mounts = parse_mounts(context.read_text("/proc/mounts") or "")
    candidates = [m for m in mounts if m[1] == "/"][-1:]  # the last mount on / is in effect
    for hint in CONTAINER_HINT_MOUNTS:
        candidates += [m for m in mounts if m[1] == hint][-1:]
    for devnum, _, source in candidates:
        name = _by_devnum(context, devnum) or _by_source(context, source)
        disk = disk_of(context, name) if name else None
        if disk:
            return disk
    return None


def collect(context: ProbeContext) -> StorageSection:
    disk = root_disk(context)
    if disk is None:
        return StorageSection()
    base = context.path(f"/sys/block/{disk}")
    model = _read(base / "device" / "model") or _read(base / "device" / "name") or None
    if model:
        model = re.sub(r"\s+", " ", model)
    if disk.startswith("nvme"):
        kind = "nvme"
    else:
        kind = {"0": "ssd", "1": "hdd"}.get(_read(base / "queue" / "rotational") or "")
    return StorageSection(kind=kind, model=model, device=disk)
