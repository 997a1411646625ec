"""Fixtures of the campaign tests: a campaign folder (model, suite, the hello plugin,
KITT_HOME) and a webhook receiver."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import install_fixture_plugin
from support.campaigns import SUITE, Webhook


@pytest.fixture
def work(tmp_path: Path, tiny_model) -> dict:
    """A campaign folder with the model, a suite, the hello plugin and a KITT_HOME."""
    import shutil

    folder = tmp_path / "camp"
    (folder / "models").mkdir(parents=True)
    shutil.copy(tiny_model.gguf_path, folder / "models" / "tiny.gguf")
    shutil.copytree(tiny_model.hf_dir, folder / "models" / "tiny-hf")
    (folder / "hello.yaml").write_text(SUITE)
    site = tmp_path / "site"
    site.mkdir()
    install_fixture_plugin("kitt-bench-hello", site)
    home = tmp_path / "kitt-home"
    return {"dir": folder, "site": site, "home": home, "env": {"KITT_HOME": str(home)}}


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()
