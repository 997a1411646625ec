"""Where KITT runs: dgx_spark, dgx, jetson, wsl2, docker, container, native_<system>.

Decided from evidence a fixture tree can hold; the first rule that matches wins:

1. docker: `/.dockerenv`, or "docker" in `/proc/1/cgroup`, or a bind mount from
   `/var/lib/docker/containers/` in `/proc/self/mountinfo`.
2. container (podman, Kubernetes, LXC, containerd...): `/run/.containerenv`,
   `KUBERNETES_SERVICE_HOST` or `container` in the environment, or kubepods / libpod /
   lxc / containerd in `/proc/1/cgroup`.
3. dgx_spark: `/etc/dgx-release` naming "DGX Spark" or "GB10", or a DMI product name
   saying DGX Spark; dgx: any other `/etc/dgx-release`.
4. jetson: `/etc/nv_tegra_release`.
5. wsl2: "microsoft" in `/proc/version` or `/proc/sys/kernel/osrelease`, or
   `WSL_DISTRO_NAME` / `WSL_INTEROP` in the environment.
6. native_linux, native_macos or native_windows from the operating system; "unknown"
   when even that cannot be told.
"""

from __future__ import annotations

import re

from kitt._fingerprint.probes.osinfo import system_name
from kitt.probe import ProbeContext

CONTAINER_CGROUP_MARKERS = ("kubepods", "libpod", "lxc", "containerd", "crio", "podman")
SPARK_MARKERS = ("dgx spark", "dgx_spark", "gb10")


def _lower(context: ProbeContext, path: str) -> str:
    return (context.read_text(path) or "").lower()


def is_docker(context: ProbeContext) -> bool:
    if context.path("/.dockerenv").exists():
        return True
    if re.search(r"[/:.-]docker[/.-]", _lower(context, "/proc/1/cgroup")):
        return True
    return "/var/lib/docker/containers/" in (context.read_text("/proc/self/mountinfo") or "")


def is_other_container(context: ProbeContext) -> bool:
    if context.path("/run/.containerenv").exists():
        return True
    if context.environ.get("KUBERNETES_SERVICE_HOST") or context.environ.get("container"):
        return True
    cgroup = _lower(context, "/proc/1/cgroup")
    return any(marker in cgroup for marker in CONTAINER_CGROUP_MARKERS)


def dgx_kind(context: ProbeContext) -> str | None:
    release = context.read_text("/etc/dgx-release")
    product = _lower(context, "/sys/class/dmi/id/product_name")
    if release is not None:
        lowered = release.lower()
        return "dgx_spark" if any(m in lowered for m in SPARK_MARKERS) else "dgx"
    if any(m in product for m in SPARK_MARKERS[:2]):
        return "dgx_spark"
    return None


def is_wsl2(context: ProbeContext) -> bool:
    if "microsoft" in _lower(context, "/proc/version"):
        return True
    if "microsoft" in _lower(context, "/proc/sys/kernel/osrelease"):
        return True
    return bool(context.environ.get("WSL_DISTRO_NAME") or context.environ.get("WSL_INTEROP"))


def collect(context: ProbeContext) -> str:
    if is_docker(context):
        return "docker"
    if is_other_container(context):
        return "container"
    dgx = dgx_kind(context)
    if dgx:
        return dgx
    if context.path("/etc/nv_tegra_release").exists():
        return "jetson"
    if is_wsl2(context):
        return "wsl2"
    system = (system_name(context) or "").lower()
    native = {"linux": "native_linux", "darwin": "native_macos", "windows": "native_windows"}
    return native.get(system, "unknown")
