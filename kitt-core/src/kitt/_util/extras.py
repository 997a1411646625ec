"""kitt-core's optional parts: what each extra brings, and the error that names the
`pip install` when a command needs one that is missing (exit 2, before any work)."""

from __future__ import annotations

from importlib.util import find_spec

from kitt.errors import BadInput

EXTRAS = {
    "report": ("matplotlib",),
    "docker": ("docker",),
    "postgres": ("psycopg", "psycopg_pool"),
    "tiny": ("numpy", "gguf", "safetensors"),
}
"""kitt-core extra -> the modules it installs (kitt-core's pyproject.toml)."""


def require_extra(extra: str, what: str) -> None:
    """BadInput when a module of `extra` is missing; `what` names who needs it."""
    missing = [module for module in EXTRAS[extra] if find_spec(module) is None]
    if missing:
        raise BadInput(f"{what} needs {', '.join(missing)}, which "
                       f"{'is' if len(missing) == 1 else 'are'} not installed",
                       hint=f"pip install 'kitt-core[{extra}]'")
