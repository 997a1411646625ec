"""Each engine plugin installs alone with kitt-core from its wheel and registers its
engine: `pip install kitt-core kitt-engine-X` is all a user needs."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = [pytest.mark.packaging, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ENGINES = {"kitt-engine-vllm": "vllm", "kitt-engine-tgi": "tgi",
           "kitt-engine-ollama": "ollama"}


def pip(python: Path, *args: str) -> None:
    done = subprocess.run([str(python), "-m", "pip", *args], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("engine-wheels")
    pip(Path(sys.executable), "wheel", "--no-deps", "--wheel-dir", str(out),
        str(ROOT / "kitt-core"), *(str(ROOT / name) for name in ENGINES))
    return out


def test_each_engine_wheel_declares_only_kitt_core_and_attrs(wheels):
    import zipfile

    for distribution in ENGINES:
        wheel = next(wheels.glob(f"{distribution.replace('-', '_')}-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            metadata = next(n for n in archive.namelist() if n.endswith("/METADATA"))
            entry_points = next(n for n in archive.namelist()
                                if n.endswith("/entry_points.txt"))
            requires = [line.split(":", 1)[1].strip() for line in
                        archive.read(metadata).decode().splitlines()
                        if line.startswith("Requires-Dist:") and "extra ==" not in line]
            points = archive.read(entry_points).decode()
        assert sorted(requires) == ["attrs>=23.1", "kitt-core"], distribution
        engine = ENGINES[distribution]
        assert f"[kitt]\n{engine} = kitt_engine_{engine}.plugin" in points


@pytest.mark.parametrize("distribution", sorted(ENGINES))
def test_engine_installs_alone_with_kitt_core(distribution, wheels, tmp_path):
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    pip(env / "bin" / "python", "install", "--quiet", "--find-links", str(wheels),
        "kitt-core", distribution)
    # A bare environment and cwd keep the source tree out: only what was installed is seen.
    done = subprocess.run([str(env / "bin" / "kitt"), "engines", "list", "--json"],
                          capture_output=True, text=True, check=False, cwd=env,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                               "KITT_HOME": str(tmp_path / "kitt-home")})
    assert done.returncode == 0, done.stderr
    assert "failed to load" not in done.stderr
    rows = json.loads(done.stdout)
    assert [row["name"] for row in rows] == [ENGINES[distribution]]
    assert rows[0]["formats"] and rows[0]["image"]
