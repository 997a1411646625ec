"""Shared test helpers: running the real `kitt` command and installing fixture plugins."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REQUIRED = {part.strip() for part in os.environ.get("KITT_TEST_REQUIRE", "").split(",") if part}


def require(service: str, available: bool, reason: str) -> None:
    """Skip when `service` is missing, unless CI said it must be there (KITT_TEST_REQUIRE)."""
    if available:
        return
    if service in REQUIRED or "all" in REQUIRED:
        pytest.fail(f"{service} is required here (KITT_TEST_REQUIRE) but missing: {reason}")
    pytest.skip(f"{service} not available: {reason}")


def run_kitt(*args: str, env: dict[str, str] | None = None, site: Path | None = None,
             timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m kitt ARGS` in a subprocess, as a user would (fresh plugin state)."""
    full_env = {**os.environ, **(env or {})}
    if site is not None:
        full_env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(site), full_env.get("PYTHONPATH")])
        )
    return subprocess.run(
        [sys.executable, "-m", "kitt", *args], capture_output=True, text=True,
        env=full_env, timeout=timeout, cwd=cwd, check=False,
    )


def install_fixture_plugin(name: str, site: Path) -> Path:
    """Make the fixture distribution `name` importable from `site` with its entry points,
    the way an installed wheel is (a `.dist-info` folder beside the package)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    project_dir = FIXTURES / "plugins" / name
    project = tomllib.loads((project_dir / "pyproject.toml").read_text())["project"]
    for package in (project_dir / "src").iterdir():
        shutil.copytree(package, site / package.name, dirs_exist_ok=True)
    dist_info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    lines = ["[kitt]"] + [f"{k} = {v}" for k, v in project["entry-points"]["kitt"].items()]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return site


@pytest.fixture(scope="session", autouse=True)
def isolated_kitt_home(tmp_path_factory):
    """Tests never read or write the real ~/.kitt (store, results, running engines)."""
    if "KITT_HOME" in os.environ:
        yield
        return
    os.environ["KITT_HOME"] = str(tmp_path_factory.mktemp("kitt-home"))
    try:
        yield
    finally:
        del os.environ["KITT_HOME"]


@pytest.fixture
def plugin_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    return site


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes_mentioning(marker: str, exclude: tuple[int, ...] = ()) -> list[tuple[int, str]]:
    """Live processes whose command line contains `marker` (e.g. a test's tmp path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in (os.getpid(), *exclude):
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        cmdline = raw.replace(b"\0", b" ").decode("utf-8", "replace")
        if marker in cmdline and state != "Z":
            found.append((int(entry.name), cmdline))
    return found


def assert_no_processes(marker: str, timeout: float = 5.0) -> None:
    # Reaping by init can take a moment after the parent is gone; nothing may stay.
    deadline = time.monotonic() + timeout
    while (left := processes_mentioning(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"leftover processes: {left}"
