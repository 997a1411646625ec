"""NVIDIA GPUs: NVML (pynvml) first, then `nvidia-smi`, then Jetson/Tegra evidence.

"No GPU" is a valid result: `gpus=()` with `source` saying how that was decided.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
from typing import Any

from kitt._fingerprint.probes.memory import system_total_mib
from kitt.probe import ProbeContext
from kitt.records import GPU, GPUSection

MIB = 1024 * 1024

SMI_QUERY = [
    "nvidia-smi",
    "--query-gpu=name,memory.total,compute_cap,driver_version",
    "--format=csv,noheader,nounits",
]
# nvidia-smi older than 510 does not know compute_cap and rejects the whole query.
SMI_QUERY_OLD = [
    "nvidia-smi",
    "--query-gpu=name,memory.total,driver_version",
    "--format=csv,noheader,nounits",
]

# GPUs whose memory is the system's RAM (integrated, coherent with the CPU).
UNIFIED_NAME_MARKERS = ("gb10", "thor", "orin", "xavier", "tegra", "jetson")

NVML_ERROR_NOT_SUPPORTED = 3


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    return str(value).strip()


def _describe(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__


def _is_not_supported(nvml: Any, exc: BaseException) -> bool:
    not_supported = getattr(nvml, "NVML_ERROR_NOT_SUPPORTED", NVML_ERROR_NOT_SUPPORTED)
    cls = getattr(nvml, "NVMLError_NotSupported", None)
    return getattr(exc, "value", None) == not_supported or (
        isinstance(cls, type) and isinstance(exc, cls)
    )


def cuda_version_from_int(value: int) -> str:
    """NVML's CUDA driver version integer (12040) as "12.4"."""
    return f"{value // 1000}.{(value % 1000) // 10}"


def is_tegra(context: ProbeContext) -> bool:
    return context.path("/etc/nv_tegra_release").exists()


def _is_unified_name(name: str) -> bool:
    lowered = name.lower()
    return any(marker in lowered for marker in UNIFIED_NAME_MARKERS)


def _finish(
    context: ProbeContext,
    gpus: list[GPU],
    *,
    driver: str | None,
    cuda: str | None,
    source: str,
    memory_not_supported: bool,
) -> GPUSection:
    unified = bool(gpus) and (
        memory_not_supported or is_tegra(context) or any(_is_unified_name(g.name) for g in gpus)
    )
    if unified:
        # The GPU's memory is the system's RAM: report that, as the GPU sees it.
        ram = system_total_mib(context)
        gpus = [GPU(g.name, ram, g.compute_capability, g.uuid) for g in gpus]
    return GPUSection(
        gpus=tuple(gpus),
        driver_version=driver,
        cuda_version=cuda,
        unified_memory=unified,
        source=source,
    )


def from_nvml(context: ProbeContext) -> tuple[GPUSection | None, str]:
    """The section from NVML, or None and why NVML could not answer."""
    try:
        nvml = context.import_module("pynvml")
    except ImportError:
        return None, "pynvml not installed"
    except Exception as exc:  # a broken installation must not hide nvidia-smi
        return None, f"import pynvml: {_describe(exc)}"
    error = getattr(nvml, "NVMLError", Exception)
    try:
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, OSError...
        return None, _describe(exc)
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion()) or None
        try:
            cuda = cuda_version_from_int(int(nvml.nvmlSystemGetCudaDriverVersion()))
        except error:
            cuda = None
        gpus: list[GPU] = []
        memory_not_supported = False
        for index in range(int(nvml.nvmlDeviceGetCount())):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            name = _text(nvml.nvmlDeviceGetName(handle))
            memory_mib = None
            try:
                memory_mib = int(nvml.nvmlDeviceGetMemoryInfo(handle).total) // MIB
            except error as exc:
                # GB10 (DGX Spark): "Not Supported", its memory is the system's.
                if not _is_not_supported(nvml, exc):
                    raise
                memory_not_supported = True
            try:
                major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
                capability = f"{int(major)}.{int(minor)}"
            except error:
                capability = None
            try:
                uuid = _text(nvml.nvmlDeviceGetUUID(handle)) or None
            except error:
                uuid = None
            gpus.append(GPU(name, memory_mib, capability, uuid))
    except Exception as exc:
        return None, _describe(exc)
    finally:
        with contextlib.suppress(Exception):  # shutting down is best effort
            nvml.nvmlShutdown()
    section = _finish(
        context, gpus, driver=driver, cuda=cuda, source="nvml",
        memory_not_supported=memory_not_supported,
    )
    return section, ""


def _smi_value(value: str) -> str | None:
    value = value.strip()
    if not value or value.startswith("[") or value.upper() in {"N/A", "NOT SUPPORTED"}:
        return None
    return value


def parse_smi_csv(text: str) -> list[tuple[str, ...]]:
    rows = []
    for row in csv.reader(io.StringIO(text), skipinitialspace=True):
        if not row or not row[0].strip():
            continue
        rows.append(tuple(cell.strip() for cell in row))
    return rows


def parse_smi_header(text: str) -> tuple[str | None, str | None]:
    """(driver version, CUDA version) from the banner of plain `nvidia-smi`."""
    driver = re.search(r"Driver Version:\s*([0-9][0-9.]*)", text)
    cuda = re.search(r"CUDA Version:\s*([0-9][0-9.]*)", text)
    return (driver.group(1) if driver else None, cuda.group(1) if cuda else None)


def from_nvidia_smi(context: ProbeContext) -> tuple[GPUSection | None, str]:
    """The section from `nvidia-smi`, or None and why it could not answer."""
    with_capability = True
    out = context.run_command(SMI_QUERY)
    if out is None:
        out = context.run_command(SMI_QUERY_OLD)
        with_capability = False
    if out is None:
        return None, "not available"
    gpus: list[GPU] = []
    memory_not_supported = False
    drivers: list[str] = []
    for row in parse_smi_csv(out):
        cells = list(row)
        if not with_capability:
            cells.insert(2, "")
        cells += [""] * (4 - len(cells))
        name, memory, capability, driver = cells[:4]
        memory_value = _smi_value(memory)
        memory_mib = None
        if memory_value is None:
            memory_not_supported = True
        else:
            try:
                memory_mib = int(float(memory_value))
            except ValueError:
                memory_not_supported = True
        capability_value = _smi_value(capability)
        if capability_value and not re.fullmatch(r"\d+\.\d+", capability_value):
            capability_value = None
        driver_value = _smi_value(driver)
        if driver_value:
            drivers.append(driver_value)
        gpus.append(GPU(name, memory_mib, capability_value, None))
    header_driver = cuda = None
    if gpus:
        banner = context.run_command(["nvidia-smi"])
        if banner:
            header_driver, cuda = parse_smi_header(banner)
    driver = drivers[0] if drivers else header_driver
    section = _finish(
        context, gpus, driver=driver, cuda=cuda, source="nvidia-smi",
        memory_not_supported=memory_not_supported,
    )
    return section, ""


def from_tegra(context: ProbeContext) -> GPUSection | None:
    """Jetson boards without NVML or nvidia-smi: the integrated GPU named after the board."""
    if not is_tegra(context):
        return None
    model = ""
    for path in ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model"):
        model = (context.read_text(path) or "").strip("\x00 \n")
        if model:
            break
    name = re.sub(r"\b(NVIDIA|Developer Kit)\b", "", model).strip() or "Tegra"
    name = re.sub(r"\s+", " ", name)
    return _finish(
        context, [GPU(name)], driver=None, cuda=None, source="tegra", memory_not_supported=True
    )


def collect(context: ProbeContext) -> GPUSection:
    section, nvml_why = from_nvml(context)
    if section is not None:
        return section
    section, smi_why = from_nvidia_smi(context)
    if section is not None:
        return section
    section = from_tegra(context)
    if section is not None:
        return section
    return GPUSection(gpus=(), source=f"none (nvml: {nvml_why}; nvidia-smi: {smi_why})")
