"""The layout docs/architecture.md describes is the one on disk, and the import-linter
contracts (`nox -s lint`) cover all of it: every capability subpackage is in the layers,
every distribution of this repository but kitt-core is held to the public API."""

from __future__ import annotations

import importlib
import pkgutil
import re

from support import ROOT

import kitt
from kitt import plugins

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

CONTRACT_MODULES = {"hookspecs", "plugins", "engine", "benchmark", "probe", "records",
                    "errors", "validators"}


def contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["type"]: contract for contract in config["contracts"]}


def test_top_level_modules_are_the_contract_and_the_rest_is_private():
    found = {info.name for info in pkgutil.iter_modules(kitt.__path__)}
    public = {name for name in found if not name.startswith("_")}
    assert public == CONTRACT_MODULES
    private = {name for name in found if name.startswith("_") and name != "__main__"}
    layered = set(re.split(r"[\s|:]+", " ".join(contracts()["layers"]["layers"]))) - {""}
    assert private == layered, "every capability subpackage is in the layers contract"


def test_every_bundled_distribution_is_held_to_the_public_api():
    packages = {path.parent.name.replace("-", "_")
                for path in ROOT.glob("kitt-*/pyproject.toml")} - {"kitt_core"}
    forbidden = contracts()["forbidden"]
    assert set(forbidden["source_modules"]) == packages
    assert forbidden["forbidden_modules"] == ["kitt.*"]
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert set(config["root_packages"]) == packages | {"kitt"}


def test_the_public_api_is_what_kitt_exports():
    for name in kitt.__all__:
        assert hasattr(kitt, name), name
    documented = set(re.findall(r"`(\w+)`", (ROOT / "docs" / "plugins.md").read_text()
                                .split("## The public API", 1)[1]))
    assert set(kitt.__all__) - {"__version__"} == documented


def test_every_builtin_plugin_implements_a_hook():
    hooks = {name for name in dir(kitt.hookspecs) if name.startswith("register_")}
    for module in plugins.DEFAULT_PLUGINS:
        implemented = hooks & set(vars(importlib.import_module(module)))
        assert implemented, f"{module} implements no hook"
