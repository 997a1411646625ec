"""Fixtures every test directory shares. Helpers that are not fixtures live in `support`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.stores import BACKENDS, fresh_store_url


@pytest.fixture(scope="session", autouse=True)
def isolated_kitt_home(tmp_path_factory):
    """Tests never read or write the real ~/.kitt (store, results, running engines) or
    the user's cache folder (KITT's plugin scan cache)."""
    isolated = {name: str(tmp_path_factory.mktemp(folder))
                for name, folder in (("KITT_HOME", "kitt-home"), ("XDG_CACHE_HOME", "cache"))
                if name not in os.environ}
    os.environ.update(isolated)
    try:
        yield
    finally:
        for name in isolated:
            del os.environ[name]


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path):
    """A URL where no store exists yet, once per backend: a SQLite file, and a PostgreSQL
    schema of its own (support.stores.fresh_store_url)."""
    with fresh_store_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory):
    """KITT's tiny model, written once per session: `.gguf_path` and `.hf_dir`."""
    from kitt._testing.tinymodel import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def kitt_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh KITT_HOME for the test, in this process and for `kitt` subprocesses."""
    home = tmp_path / "kitt-home"
    monkeypatch.setenv("KITT_HOME", str(home))
    return {"KITT_HOME": str(home)}


@pytest.fixture
def plugin_site(tmp_path: Path) -> Path:
    """A folder fixture plugins are installed into (`support.install_fixture_plugin`)."""
    site = tmp_path / "site"
    site.mkdir()
    return site


@pytest.fixture
def stall_work(tmp_path: Path, kitt_env: dict[str, str], plugin_site: Path, tiny_model):
    """A KITT home with the `stall` test engine, the `hello` benchmark, the `stalled`
    custom evaluation, and the suites of `support.stall.SUITES` (signal tests)."""
    from support import install_fixture_plugin
    from support.stall import write_stall_home

    install_fixture_plugin("kitt-engine-stall", plugin_site)
    install_fixture_plugin("kitt-bench-hello", plugin_site)
    home = Path(kitt_env["KITT_HOME"])
    write_stall_home(tmp_path, home)
    return {"dir": tmp_path, "env": kitt_env, "site": plugin_site, "model": tiny_model,
            "out": tmp_path / "out", "db": home / "kitt.db"}
