"""Fingerprints of fixture hosts (tests/fixtures/hosts/<case>/, written by make_hosts.py).

No GPU is present where these tests run: NVML is a fake `pynvml` module, built like the
real one (NVMLError subclasses carrying `.value`), handed to probes by
`ProbeContext.import_module`; `nvidia-smi` and `dmidecode` are a fake `run_command`.
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from kitt._fingerprint import take_fingerprint
from kitt._fingerprint.probes import cpu, environment, gpu, memory, osinfo, storage
from kitt._util.converter import from_json, unstructure
from kitt.probe import Probe, ProbeContext
from kitt.records import Fingerprint

HOSTS = Path(__file__).resolve().parents[1] / "fixtures" / "hosts"
CASES = sorted(p.name for p in HOSTS.iterdir() if (p / "_case.json").is_file())
MIB = 1024 * 1024

BUILTIN = {
    "gpu": Probe("gpu", gpu.collect),
    "cpu": Probe("cpu", cpu.collect),
    "memory": Probe("memory", memory.collect),
    "storage": Probe("storage", storage.collect),
    "os": Probe("os", osinfo.collect),
    "environment": Probe("environment", environment.collect),
}

NVML_CODES = {"NotSupported": 3, "LibraryNotFound": 12, "DriverNotLoaded": 9, "Unknown": 999}
NVML_MESSAGES = {3: "Not Supported", 12: "NVML Shared Library Not Found",
                 9: "Driver Not Loaded", 999: "Unknown Error"}


def fake_pynvml(spec: dict) -> types.ModuleType:
    """A module with the pynvml calls the GPU probe makes, answering from `spec`."""
    module = types.ModuleType("pynvml")

    class NVMLError(Exception):
        def __init__(self, value: int):
            super().__init__(value)
            self.value = value

        def __str__(self) -> str:
            return NVML_MESSAGES.get(self.value, f"NVML Error with code {self.value}")

    module.NVMLError = NVMLError
    for name in NVML_CODES:
        setattr(module, f"NVMLError_{name}", type(f"NVMLError_{name}", (NVMLError,), {}))
    module.NVML_ERROR_NOT_SUPPORTED = 3
    module.calls = []

    def error(name: str) -> NVMLError:
        return getattr(module, f"NVMLError_{name}")(NVML_CODES[name])

    devices = spec.get("devices", [])

    def init():
        module.calls.append("init")
        if spec.get("init_error"):
            raise error(spec["init_error"])

    def device(handle):
        return devices[handle]

    def memory_info(handle):
        value = device(handle)["memory_mib"]
        if isinstance(value, str):
            raise error(value)
        return types.SimpleNamespace(total=value * MIB, free=value * MIB // 2, used=0)

    module.nvmlInit = init
    module.nvmlShutdown = lambda: module.calls.append("shutdown")
    module.nvmlSystemGetDriverVersion = lambda: spec["driver"]
    module.nvmlSystemGetCudaDriverVersion = lambda: spec["cuda"]
    module.nvmlDeviceGetCount = lambda: len(devices)
    module.nvmlDeviceGetHandleByIndex = lambda index: index
    module.nvmlDeviceGetName = lambda handle: device(handle)["name"]
    module.nvmlDeviceGetMemoryInfo = memory_info
    module.nvmlDeviceGetCudaComputeCapability = \
        lambda handle: tuple(device(handle)["compute_capability"])
    module.nvmlDeviceGetUUID = lambda handle: device(handle)["uuid"]
    return module


def importer(modules: dict):
    def import_module(name: str):
        if modules.get(name) is None:
            raise ModuleNotFoundError(f"No module named {name!r}")
        return modules[name]

    return import_module


def runner(commands: dict[str, str], log: list | None = None):
    def run_command(argv: list[str]) -> str | None:
        if log is not None:
            log.append(argv)
        return commands.get(" ".join(argv))

    return run_command


def context_for(case: str, nvml: types.ModuleType | None = None, **overrides) -> ProbeContext:
    spec = json.loads((HOSTS / case / "_case.json").read_text())
    if nvml is None and spec["nvml"] is not None:
        nvml = fake_pynvml(spec["nvml"])
    fields = {
        "root": HOSTS / case,
        "environ": spec["environ"],
        "run_command": runner(spec["commands"]),
        "import_module": importer({"pynvml": nvml}),
    }
    fields.update(overrides)
    return ProbeContext(**fields)


def expected(case: str) -> dict:
    return json.loads((HOSTS / case / "_expected.json").read_text())


def test_every_fixture_case_is_present():
    assert set(CASES) == {"workstation_rtx4090", "dgx_h100", "dgx_spark_gb10", "wsl2_rtx3090",
                          "docker_l40s", "smi_fallback_2x_a6000", "no_gpu"}


@pytest.mark.parametrize("case", CASES)
def test_fixture_host_full_fingerprint(case):
    fp = take_fingerprint(context_for(case), BUILTIN)
    assert unstructure(fp) == expected(case)


@pytest.mark.parametrize("case", CASES)
def test_fixture_fingerprint_round_trips_through_json(case):
    from kitt._util.converter import to_json

    fp = take_fingerprint(context_for(case), BUILTIN)
    assert from_json(to_json(fp), Fingerprint) == fp


@pytest.mark.parametrize(
    ("case", "string"),
    [
        ("workstation_rtx4090",
         "rtx4090-24gb_i9-13900k-24c_64gb-ddr5_nvme_cuda-12.4_550.90_linux-6.8"),
        ("dgx_h100",
         "8x-h100-80gb_xeon-platinum-8480c-112c_2048gb-ddr5_nvme_cuda-12.2_535.183_linux-5.15"),
        ("dgx_spark_gb10",
         "gb10-unified_cortex-x925-cortex-a725-20c_128gb_nvme_cuda-13.0_580.95_linux-6.11"),
        ("wsl2_rtx3090",
         "rtx3090-24gb_ryzen-9-5950x-16c_32gb_hdd_cuda-12.6_560.94_linux-5.15"),
        ("docker_l40s",
         "l40s-48gb_epyc-9354-32c_384gb_nvme_cuda-12.4_550.127_linux-5.15"),
        ("smi_fallback_2x_a6000",
         "2x-rtxa6000-48gb_xeon-w-2295-18c_128gb-ddr4_ssd_cuda-12.2_535.104_linux-5.15"),
        ("no_gpu", "nogpu_i5-8500-6c_16gb_hdd_unknown_unknown_linux-6.10"),
    ],
)
def test_fixture_host_string(case, string):
    assert take_fingerprint(context_for(case), BUILTIN).fingerprint == string


def test_nvml_is_shut_down_after_use():
    nvml = fake_pynvml(json.loads((HOSTS / "dgx_h100" / "_case.json").read_text())["nvml"])
    gpu.collect(context_for("dgx_h100", nvml=nvml))
    assert nvml.calls == ["init", "shutdown"]


def test_gb10_memory_not_supported_reports_system_ram_as_unified():
    section = gpu.collect(context_for("dgx_spark_gb10"))
    assert section.unified_memory is True
    assert section.gpus[0].memory_mib == memory.collect(context_for("dgx_spark_gb10")).total_mib


def test_gb10_through_nvidia_smi_fallback():
    commands = {
        " ".join(gpu.SMI_QUERY): "NVIDIA GB10, [N/A], 12.1, 580.95.05\n",
        "nvidia-smi": "| NVIDIA-SMI 580.95.05   Driver Version: 580.95.05   CUDA Version: 13.0 |",
    }
    context = context_for("dgx_spark_gb10", import_module=importer({}),
                          run_command=runner(commands))
    section = gpu.collect(context)
    assert section == gpu.GPUSection(
        gpus=(gpu.GPU("NVIDIA GB10", 122641, "12.1"),), driver_version="580.95.05",
        cuda_version="13.0", unified_memory=True, source="nvidia-smi",
    )


def test_nvml_failure_falls_back_to_nvidia_smi():
    nvml = fake_pynvml({"init_error": "DriverNotLoaded"})
    log: list = []
    spec = json.loads((HOSTS / "smi_fallback_2x_a6000" / "_case.json").read_text())
    context = context_for("smi_fallback_2x_a6000", nvml=nvml,
                          run_command=runner(spec["commands"], log))
    section = gpu.collect(context)
    assert section.source == "nvidia-smi"
    assert len(section.gpus) == 2
    assert log[0] == gpu.SMI_QUERY


def test_nvml_error_mid_query_falls_back_to_nvidia_smi():
    spec = {"driver": "535.104.05", "cuda": 12020,
            "devices": [{"name": "NVIDIA RTX A6000", "memory_mib": "Unknown",
                         "compute_capability": [8, 6], "uuid": None}]}
    nvml = fake_pynvml(spec)
    section = gpu.collect(context_for("smi_fallback_2x_a6000", nvml=nvml))
    assert section.source == "nvidia-smi"
    assert nvml.calls == ["init", "shutdown"]


def test_old_nvidia_smi_without_compute_cap():
    commands = {
        " ".join(gpu.SMI_QUERY_OLD): "Tesla V100-SXM2-32GB, 32510, 470.256.02\n",
        "nvidia-smi": "| NVIDIA-SMI 470.256.02   Driver Version: 470.256.02   CUDA Version: 11.4 |",
    }
    context = context_for("no_gpu", import_module=importer({}), run_command=runner(commands))
    section = gpu.collect(context)
    assert section == gpu.GPUSection(
        gpus=(gpu.GPU("Tesla V100-SXM2-32GB", 32510, None),), driver_version="470.256.02",
        cuda_version="11.4", source="nvidia-smi",
    )


def test_no_gpu_when_pynvml_missing_and_no_nvidia_smi():
    context = context_for("no_gpu", import_module=importer({}))
    section = gpu.collect(context)
    assert section.gpus == ()
    assert section.source == "none (nvml: pynvml not installed; nvidia-smi: not available)"


def test_nvml_with_zero_devices_is_no_gpu():
    nvml = fake_pynvml({"driver": "550.90.07", "cuda": 12040, "devices": []})
    fp = take_fingerprint(context_for("no_gpu", nvml=nvml), BUILTIN)
    assert fp.gpu == gpu.GPUSection(gpus=(), driver_version="550.90.07", cuda_version="12.4",
                                    source="nvml")
    assert fp.fingerprint.startswith("nogpu_")


def _write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_jetson_without_nvml_reports_the_integrated_gpu(tmp_path):
    _write(tmp_path, {
        "etc/nv_tegra_release": "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic\n",
        "proc/device-tree/model": "NVIDIA Jetson AGX Orin Developer Kit\x00",
        "proc/meminfo": "MemTotal:       65891176 kB\n",
        "proc/cpuinfo": "processor\t: 0\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
                        "CPU part\t: 0xd42\n\nprocessor\t: 1\nCPU implementer\t: 0x41\n"
                        "CPU architecture: 8\nCPU part\t: 0xd42\n",
        "proc/sys/kernel/ostype": "Linux\n",
    })
    context = ProbeContext(root=tmp_path, environ={}, run_command=runner({}),
                           import_module=importer({}))
    section = gpu.collect(context)
    assert section == gpu.GPUSection(gpus=(gpu.GPU("Jetson AGX Orin", 64346),),
                                     unified_memory=True, source="tegra")
    assert environment.collect(context) == "jetson"
    assert cpu.collect(context) == cpu.CPUSection(brand="ARM Cortex-A78AE",
                                                  architecture="aarch64", threads=2)
