"""The dashboard's assets: the vendored libraries are the npm releases VENDORED.md names
(by hash), the wheel carries every asset, and the server sends them with long caching
(their URLs carry a content hash) and no authentication."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from support import ROOT

import kitt_web

STATIC = Path(kitt_web.__file__).parent / "static"
PACKAGE = Path(kitt_web.__file__).parent


def vendored() -> list[tuple[str, str]]:
    table = (STATIC / "vendor" / "VENDORED.md").read_text()
    rows = re.findall(r"^\| (\S+) \| \S+ \| [0-9a-f]{64} \| ([0-9a-f]{64}) \|", table, re.M)
    assert rows, "VENDORED.md lists no files"
    return rows


@pytest.mark.parametrize(("name", "digest"), vendored())
def test_vendored_files_are_the_releases_listed(name, digest):
    assert hashlib.sha256((STATIC / "vendor" / name).read_bytes()).hexdigest() == digest


def test_templates_load_only_assets_that_exist():
    referenced = set()
    for template in (PACKAGE / "templates").glob("*.html"):
        referenced |= set(re.findall(r"static\('([^']+)'\)", template.read_text()))
    assert referenced and all((STATIC / name).is_file() for name in referenced), referenced
    assert {f"vendor/{name}" for name, _ in vendored()} <= referenced


async def test_assets_are_served_without_a_token(client):
    page = await client.get("/login")
    scripts = re.findall(r'src="(/static/[^"]+)"', await page.text())
    assert scripts
    for src in scripts:
        response = await client.get(src)
        assert response.status == 200, src
        assert "javascript" in response.content_type
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert (await client.get("/static/../kitt.db")).status == 404  # no way out of static/


@pytest.mark.packaging
def test_the_wheel_carries_templates_assets_and_the_contract(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(ROOT / "kitt-web")], check=True, capture_output=True)
    wheel = next(tmp_path.glob("kitt_web-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in PACKAGE.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".js", ".css", ".yaml", ".md"):
            assert f"kitt_web/{path.relative_to(PACKAGE)}" in names, path
