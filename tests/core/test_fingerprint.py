"""take_fingerprint's isolation of probes, the fingerprint string, single probes on small
trees, and the fingerprint of the machine the tests run on."""

from __future__ import annotations

import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kitt.plugins
from kitt._fingerprint import (
    fingerprint_string,
    nominal_gb,
    short_cpu_brand,
    short_gpu_name,
    take_fingerprint,
)
from kitt._fingerprint.probes import cpu, environment, memory, osinfo, storage
from kitt._util.converter import from_json, to_json
from kitt.probe import Probe, ProbeContext
from kitt.records import (
    GPU,
    CPUSection,
    Fingerprint,
    GPUSection,
    MemorySection,
    OSSection,
    StorageSection,
)

BUILTIN_NAMES = {"gpu", "cpu", "memory", "storage", "os", "environment"}


def _write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _context(root: Path, environ: dict | None = None, commands: dict | None = None):
    commands = commands or {}

    def no_module(name):
        raise ModuleNotFoundError(name)

    return ProbeContext(root=root, environ=environ or {},
                        run_command=lambda argv: commands.get(" ".join(argv)),
                        import_module=no_module)


# --- take_fingerprint: isolation, extra, warnings ------------------------------------------


def _boom(context):
    raise RuntimeError("no driver\nsecond line")


def test_a_failing_probe_yields_unknown_and_a_warning(tmp_path):
    probes = {
        "gpu": Probe("gpu", _boom),
        "os": Probe("os", lambda c: OSSection(system="Linux", kernel="6.8.0-45-generic")),
    }
    fp = take_fingerprint(_context(tmp_path), probes)
    assert fp.gpu == GPUSection()
    assert fp.gpu.source == "unknown"
    assert fp.warnings == ("probe 'gpu' failed: RuntimeError: no driver",)
    assert fp.os.system == "Linux"
    assert fp.fingerprint == "unknown_unknown_unknown_unknown_unknown_unknown_linux-6.8"


def test_every_builtin_probe_failing_still_gives_a_fingerprint(tmp_path):
    probes = {name: Probe(name, _boom) for name in BUILTIN_NAMES}
    fp = take_fingerprint(_context(tmp_path), probes)
    assert fp == Fingerprint(
        fingerprint="_".join(["unknown"] * 7),
        warnings=tuple(f"probe {name!r} failed: RuntimeError: no driver" for name in probes),
    )


def test_a_builtin_probe_returning_the_wrong_type_is_a_warning(tmp_path):
    fp = take_fingerprint(_context(tmp_path), {"cpu": Probe("cpu", lambda c: {"brand": "x"})})
    assert fp.cpu == CPUSection()
    assert fp.warnings == ("probe 'cpu' failed: returned dict, not CPUSection",)


def test_third_party_probes_go_to_extra(tmp_path):
    probes = {
        "os": Probe("os", lambda c: OSSection(system="Linux")),
        "rocm": Probe("rocm", lambda c: {"gpus": [{"name": "MI300X", "vram_gb": 192}],
                                          "version": (6, 2), "ok": True, "none": None}),
    }
    fp = take_fingerprint(_context(tmp_path), probes)
    assert fp.extra == {"rocm": {"gpus": [{"name": "MI300X", "vram_gb": 192}],
                                 "version": [6, 2], "ok": True, "none": None}}
    assert fp.warnings == ()
    assert from_json(to_json(fp), Fingerprint) == fp


@pytest.mark.parametrize(
    ("value", "warning"),
    [
        ("text", "probe 'bad' returned str, not a mapping"),
        (GPUSection(), "probe 'bad' returned GPUSection, not a mapping"),
        ({1: "a"}, "probe 'bad' returned a mapping with non-string keys"),
        ({"x": float("nan")}, "probe 'bad' returned a mapping that is not JSON: "),
        ({"x": object()}, "probe 'bad' returned a mapping that is not JSON: "),
    ],
)
def test_third_party_probe_returning_non_json_is_a_warning(tmp_path, value, warning):
    fp = take_fingerprint(_context(tmp_path), {"bad": Probe("bad", lambda c: value)})
    assert fp.extra == {}
    assert len(fp.warnings) == 1
    assert fp.warnings[0].startswith(warning)


def test_a_failing_third_party_probe_is_a_warning(tmp_path):
    fp = take_fingerprint(_context(tmp_path), {"tpu": Probe("tpu", _boom)})
    assert fp.extra == {}
    assert fp.warnings == ("probe 'tpu' failed: RuntimeError: no driver",)


def test_keyboard_interrupt_is_not_swallowed(tmp_path):
    def interrupt(context):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        take_fingerprint(_context(tmp_path), {"cpu": Probe("cpu", interrupt)})


def test_builtin_probes_are_registered_through_the_plugin_system():
    assert set(kitt.plugins.probes()) >= BUILTIN_NAMES


def test_probe_modules_import_only_the_standard_library():
    modules = ", ".join(f"kitt._fingerprint.probes.{name}" for name in (
        "gpu", "cpu", "memory", "storage", "osinfo", "environment"))
    code = (f"import sys; import kitt._fingerprint, {modules}; "
            "print(sorted(m for m in ('pynvml', 'cpuinfo') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


# --- the fingerprint string -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "short"),
    [
        ("NVIDIA GeForce RTX 4090", "rtx4090"),
        ("NVIDIA GeForce RTX 4090 Laptop GPU", "rtx4090laptop"),
        ("NVIDIA H100 80GB HBM3", "h100"),
        ("NVIDIA H100 PCIe", "h100pcie"),
        ("NVIDIA A100-SXM4-80GB", "a100sxm4"),
        ("NVIDIA RTX 6000 Ada Generation", "rtx6000ada"),
        ("NVIDIA RTX A6000", "rtxa6000"),
        ("Tesla T4", "t4"),
        ("Quadro RTX 8000", "rtx8000"),
        ("NVIDIA GB10", "gb10"),
        ("NVIDIA GH200 480GB", "gh200"),
        ("", "unknown"),
    ],
)
def test_short_gpu_name(name, short):
    assert short_gpu_name(name) == short


@pytest.mark.parametrize(
    ("brand", "short"),
    [
        ("13th Gen Intel(R) Core(TM) i9-13900K", "i9-13900k"),
        ("Intel(R) Xeon(R) Platinum 8480C", "xeon-platinum-8480c"),
        ("Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz", "xeon-e5-2690-v4"),
        ("Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz", "i7-8700"),
        ("AMD Ryzen 9 7950X 16-Core Processor", "ryzen-9-7950x"),
        ("AMD Ryzen 7 7840U w/ Radeon  780M Graphics", "ryzen-7-7840u"),
        ("AMD Ryzen 5 5600G with Radeon Graphics", "ryzen-5-5600g"),
        ("AMD EPYC 9654 96-Core Processor", "epyc-9654"),
        ("AMD EPYC", "epyc"),
        ("ARM Neoverse-V2", "neoverse-v2"),
        ("ARM Cortex-X925 + Cortex-A725", "cortex-x925-cortex-a725"),
        ("Apple M2 Max", "m2-max"),
        ("Intel(R) Core(TM) Ultra 9 285K", "ultra-9-285k"),
    ],
)
def test_short_cpu_brand(brand, short):
    assert short_cpu_brand(brand) == short


@pytest.mark.parametrize(
    ("mib", "gb"),
    [
        (24564, 24),      # RTX 4090
        (81559, 80),      # H100 80GB: no nominal size within 10%, so rounded
        (46068, 48),      # L40S with ECC on
        (15360, 16),      # T4
        (143771, 140),    # H200
        (64079, 64),      # 64 GB of DIMMs as MemTotal sees them
        (122641, 128),    # DGX Spark
        (2063878, 2048),  # DGX H100
        (20480, 20),      # a 20 GiB VM is not called 24
        (24105, 24),      # this machine
        (300, 1),
    ],
)
def test_nominal_gb(mib, gb):
    assert nominal_gb(mib) == gb


def _fp(**sections) -> Fingerprint:
    return Fingerprint(fingerprint="", **sections)


def test_string_of_the_issue_example():
    fp = _fp(
        gpu=GPUSection(gpus=(GPU("NVIDIA GeForce RTX 4090", 24564, "8.9"),),
                       driver_version="550.90.07", cuda_version="12.4", source="nvml"),
        cpu=CPUSection("13th Gen Intel(R) Core(TM) i9-13900K", "x86_64", 24, 32),
        memory=MemorySection(65536, "DDR5"),
        storage=StorageSection("nvme", "Samsung SSD 990 PRO 2TB", "nvme0n1"),
        os=OSSection("Linux", "Ubuntu", "22.04", "6.8.0-45-generic"),
    )
    assert fingerprint_string(fp) == \
        "rtx4090-24gb_i9-13900k-24c_64gb-ddr5_nvme_cuda-12.4_550.90_linux-6.8"


def test_string_of_mixed_gpus_groups_equal_ones_in_order():
    fp = _fp(gpu=GPUSection(gpus=(GPU("NVIDIA GeForce RTX 4090", 24564),
                                  GPU("NVIDIA GeForce RTX 3090", 24576),
                                  GPU("NVIDIA GeForce RTX 3090", 24576),
                                  GPU("NVIDIA T400", None)), source="nvml"))
    assert fingerprint_string(fp).split("_")[0] == "rtx4090-24gb-2x-rtx3090-24gb-t400"


def test_string_of_no_gpu_and_of_an_unknown_gpu():
    assert fingerprint_string(_fp(gpu=GPUSection(source="none (...)"))).startswith("nogpu_")
    assert fingerprint_string(_fp()).startswith("unknown_")


def test_string_unknown_subparts():
    fp = _fp(cpu=CPUSection(brand=None, cores=8), memory=MemorySection(16000, None),
             os=OSSection(system="Linux", kernel=None))
    assert fingerprint_string(fp) == "unknown_unknown-8c_16gb_unknown_unknown_unknown_linux"


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@given(
    names=st.lists(_text, max_size=4),
    memory_mib=st.one_of(st.none(), st.integers(1, 10**7)),
    unified=st.booleans(),
    brand=st.one_of(st.none(), _text),
    cores=st.one_of(st.none(), st.integers(1, 1024)),
    ram=st.one_of(st.none(), st.integers(1, 10**8)),
    ram_type=st.one_of(st.none(), _text),
    kind=st.one_of(st.none(), st.sampled_from(["nvme", "ssd", "hdd"])),
    versions=st.tuples(*[st.one_of(st.none(), _text)] * 4),
)
def test_string_always_has_seven_clean_parts(names, memory_mib, unified, brand, cores, ram,
                                             ram_type, kind, versions):
    cuda, driver, system, kernel = versions
    fp = _fp(
        gpu=GPUSection(gpus=tuple(GPU(n, memory_mib) for n in names), driver_version=driver,
                       cuda_version=cuda, unified_memory=unified, source="nvml"),
        cpu=CPUSection(brand=brand, cores=cores),
        memory=MemorySection(ram, ram_type),
        storage=StorageSection(kind=kind),
        os=OSSection(system=system, kernel=kernel),
    )
    text = fingerprint_string(fp)
    parts = text.split("_")
    assert len(parts) == 7
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9.-]*", part) for part in parts), text
    assert fingerprint_string(fp) == text


# --- single probes on small trees -----------------------------------------------------------


def test_cpu_cores_from_cpu_cores_field_when_core_ids_are_missing(tmp_path):
    block = "processor\t: {}\nvendor_id\t: GenuineIntel\nmodel name\t: X\nphysical id\t: {}\n" \
            "cpu cores\t: 2\nflags\t\t: fpu lm\n"
    _write(tmp_path, {"proc/cpuinfo": "\n".join(block.format(i, i // 4) for i in range(8))})
    section = cpu.collect(_context(tmp_path))
    assert section == CPUSection(brand="X", architecture="x86_64", cores=4, threads=8)


def test_cpu_sysfs_topology_counts_smt_siblings_once(tmp_path):
    files = {"proc/cpuinfo": "".join(
        f"processor\t: {i}\nCPU implementer\t: 0x41\nCPU part\t: 0xd4f\n\n" for i in range(4))}
    for i in range(4):
        files[f"sys/devices/system/cpu/cpu{i}/topology/thread_siblings_list"] = \
            f"{i - i % 2}-{i - i % 2 + 1}\n"
    _write(tmp_path, files)
    section = cpu.collect(_context(tmp_path))
    assert section == CPUSection(brand="ARM Neoverse-V2", architecture="aarch64", cores=2,
                                 threads=4)


def test_cpu_unknown_arm_part_and_device_tree_model(tmp_path):
    assert cpu.arm_core_name(0x41, 0xD99) == "ARM part 0xd99"
    assert cpu.arm_core_name(0x99, 0x001) == "implementer 0x99 part 0x001"
    _write(tmp_path, {"proc/cpuinfo": "processor\t: 0\nCPU implementer\t: 0x41\n"
                                      "CPU architecture: 8\n",
                      "sys/firmware/devicetree/base/model": "Raspberry Pi 4 Model B\x00"})
    assert cpu.collect(_context(tmp_path)).brand == "Raspberry Pi 4 Model B"


def test_cpu_threads_from_sysfs_online_without_cpuinfo(tmp_path):
    _write(tmp_path, {"sys/devices/system/cpu/online": "0-3,8-11\n"})
    assert cpu.collect(_context(tmp_path)) == CPUSection(threads=8)


def test_memory_type_from_dmidecode_skips_empty_slots():
    text = (
        "Handle 0x0040, DMI type 17, 92 bytes\nMemory Device\n\tSize: No Module Installed\n"
        "\tType: Unknown\n\n"
        "Handle 0x0041, DMI type 17, 92 bytes\nMemory Device\n\tSize: 16 GB\n"
        "\tType: LPDDR5\n\tType Detail: Synchronous\n\n"
        "Handle 0x0042, DMI type 16, 23 bytes\nPhysical Memory Array\n\tUse: System Memory\n"
    )
    assert memory.parse_dmidecode_memory_type(text) == "LPDDR5"
    assert memory.parse_dmidecode_memory_type("") is None


def test_memory_without_meminfo_is_unknown(tmp_path):
    assert memory.collect(_context(tmp_path)) == MemorySection()


def test_storage_through_device_mapper(tmp_path):
    _write(tmp_path, {
        "proc/self/mountinfo": "27 1 253:0 / / rw - ext4 /dev/mapper/vg-root rw\n",
        "sys/block/dm-0/dev": "253:0\n",
        "sys/block/dm-0/dm/name": "vg-root\n",
        "sys/block/dm-0/slaves/sda3": "",
        "sys/block/sda/dev": "8:0\n",
        "sys/block/sda/sda3/dev": "8:3\n",
        "sys/block/sda/queue/rotational": "0\n",
        "sys/block/sda/device/model": "INTEL SSDSC2KB960G8 \n",
    })
    assert storage.collect(_context(tmp_path)) == \
        StorageSection(kind="ssd", model="INTEL SSDSC2KB960G8", device="sda")


def test_storage_btrfs_root_by_source_and_proc_mounts(tmp_path):
    files = {
        "sys/block/nvme0n1/dev": "259:0\n",
        "sys/block/nvme0n1/nvme0n1p2/dev": "259:2\n",
        "sys/block/nvme0n1/device/model": "WD_BLACK SN850X 2000GB\n",
    }
    _write(tmp_path, {**files, "proc/self/mountinfo":
                      "27 1 0:31 /@ / rw - btrfs /dev/nvme0n1p2 rw,subvol=/@\n"})
    expected = StorageSection(kind="nvme", model="WD_BLACK SN850X 2000GB", device="nvme0n1")
    assert storage.collect(_context(tmp_path)) == expected
    (tmp_path / "proc/self/mountinfo").unlink()
    _write(tmp_path, {"proc/mounts": "/dev/nvme0n1p2 / btrfs rw 0 0\n"})
    assert storage.collect(_context(tmp_path)) == expected


def test_storage_virtio_disk_kind_from_rotational(tmp_path):
    _write(tmp_path, {
        "proc/self/mountinfo": "27 1 254:0 / / rw - ext4 /dev/vda rw\n",
        "sys/block/vda/dev": "254:0\n",
        "sys/block/vda/queue/rotational": "0\n",
    })
    assert storage.collect(_context(tmp_path)) == StorageSection(kind="ssd", device="vda")


def test_storage_unknown_root(tmp_path):
    _write(tmp_path, {"proc/self/mountinfo": "27 1 0:21 / / rw - zfs rpool/ROOT/ubuntu rw\n"})
    assert storage.collect(_context(tmp_path)) == StorageSection()


@pytest.mark.parametrize(
    ("files", "environ", "kind"),
    [
        ({".dockerenv": ""}, {}, "docker"),
        ({"proc/1/cgroup": "12:memory:/docker/3f9c2a7d1b5e\n"}, {}, "docker"),
        ({"proc/1/cgroup": "0::/system.slice/docker-3f9c2a7d1b5e.scope\n"}, {}, "docker"),
        ({"run/.containerenv": ""}, {}, "container"),
        ({}, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "container"),
        ({}, {"container": "podman"}, "container"),
        ({"proc/1/cgroup": "0::/kubepods/besteffort/pod1234\n"}, {}, "container"),
        ({"proc/1/cgroup": "0::/lxc.payload.web\n"}, {}, "container"),
        ({"etc/dgx-release": 'DGX_NAME="DGX Spark"\n'}, {}, "dgx_spark"),
        ({"etc/dgx-release": 'DGX_PLATFORM="DGX Server for DGX H100"\n'}, {}, "dgx"),
        ({"sys/class/dmi/id/product_name": "NVIDIA_DGX_Spark\n"}, {}, "dgx_spark"),
        ({"etc/nv_tegra_release": "# R36 (release)\n"}, {}, "jetson"),
        ({"proc/version": "Linux version 5.15.153.1-microsoft-standard-WSL2\n"}, {}, "wsl2"),
        ({"proc/sys/kernel/ostype": "Linux\n"}, {"WSL_DISTRO_NAME": "Ubuntu"}, "wsl2"),
        ({"proc/sys/kernel/ostype": "Linux\n"}, {}, "native_linux"),
        ({}, {}, "unknown"),
        ({".dockerenv": "", "etc/dgx-release": 'DGX_NAME="DGX Spark"\n'}, {}, "docker"),
    ],
)
def test_environment_rules(tmp_path, files, environ, kind):
    _write(tmp_path, files)
    assert environment.collect(_context(tmp_path, environ)) == kind


def test_os_release_parsing():
    text = '# comment\nNAME="Fedora Linux"\nVERSION_ID=40\nPRETTY_NAME=\'Fedora 40\'\n\n'
    assert osinfo.parse_os_release(text) == {"NAME": "Fedora Linux", "VERSION_ID": "40",
                                             "PRETTY_NAME": "Fedora 40"}


# --- this machine ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real() -> Fingerprint:
    return take_fingerprint()


def _has_nvidia_gpu() -> bool:
    return Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None


def test_real_machine_takes_under_two_seconds():
    start = time.perf_counter()
    take_fingerprint()
    assert time.perf_counter() - start < 2.0


def test_real_machine_has_no_warnings_and_round_trips(real):
    # Only the built-in probes' warnings: other installed plugins are not under test here.
    assert [w for w in real.warnings if w.split("'")[1] in BUILTIN_NAMES] == []
    assert from_json(to_json(real), Fingerprint) == real
    assert real.fingerprint == fingerprint_string(real)
    print(to_json(real, indent=2))


def test_real_machine_gpu(real):
    if _has_nvidia_gpu():
        assert real.gpu.gpus, real.gpu.source
    else:  # the development and CI machines: no GPU, and the source says why
        assert real.gpu.gpus == ()
        assert real.gpu.source.startswith("none (nvml: ")
        assert real.fingerprint.startswith("nogpu_")


def test_real_machine_cpu(real):
    machine = platform.machine().lower()
    assert real.cpu.architecture == {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    assert real.cpu.threads == os.cpu_count()
    assert real.cpu.cores is not None
    assert math.ceil(real.cpu.threads / 4) <= real.cpu.cores <= real.cpu.threads
    assert real.cpu.brand


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="Linux only")
def test_real_machine_memory_within_five_percent(real):
    meminfo_kb = int(re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())[1])
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
    for reference in (meminfo_kb / 1024, physical):
        assert abs(real.memory.total_mib - reference) <= 0.05 * reference


@pytest.mark.skipif(not Path("/etc/os-release").exists(), reason="no /etc/os-release")
def test_real_machine_os(real):
    release = dict(
        (key, value.strip().strip('"'))
        for key, _, value in (line.partition("=") for line in
                              Path("/etc/os-release").read_text().splitlines())
        if value
    )
    assert real.os.system == platform.system()
    assert real.os.distribution == release["NAME"]
    assert real.os.version == release.get("VERSION_ID")
    assert real.os.kernel == platform.release()


@pytest.mark.skipif(platform.system() != "Linux", reason="sysfs")
def test_real_machine_storage_is_the_root_disk(real):
    dev = os.stat("/").st_dev
    link = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
    if not link.exists():
        pytest.skip("/ is not on a block device (overlay, zfs...)")
    resolved = link.resolve()
    disk = resolved.parent.name if (resolved / "partition").exists() else resolved.name
    if (Path("/sys/block") / disk / "slaves").is_dir() and \
            any((Path("/sys/block") / disk / "slaves").iterdir()):
        pytest.skip("/ is on md or device-mapper")
    assert real.storage.device == disk
    assert real.storage.kind in {"nvme", "ssd", "hdd"}


def test_real_machine_environment(real):
    """What this machine shows: the dev/CI machines have /.dockerenv (their root
    filesystem is a Docker image), so "docker" is what the evidence says."""
    cgroup = Path("/proc/1/cgroup").read_text() if Path("/proc/1/cgroup").exists() else ""
    if Path("/.dockerenv").exists() or "docker" in cgroup:
        expected = "docker"
    elif Path("/run/.containerenv").exists() or "KUBERNETES_SERVICE_HOST" in os.environ:
        expected = "container"
    elif Path("/etc/dgx-release").exists():
        text = Path("/etc/dgx-release").read_text()
        expected = "dgx_spark" if "Spark" in text or "GB10" in text else "dgx"
    elif Path("/etc/nv_tegra_release").exists():
        expected = "jetson"
    elif "microsoft" in Path("/proc/version").read_text().lower():
        expected = "wsl2"
    else:
        expected = {"Linux": "native_linux", "Darwin": "native_macos",
                    "Windows": "native_windows"}[platform.system()]
    assert real.environment == expected


def test_real_machine_extra_is_json(real):
    json.dumps(real.extra, allow_nan=False)
