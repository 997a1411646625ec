"""The kitt-core version (recorded with every run).

The one place it is written: the wheel's metadata reads it from here (hatch's version
source in kitt-core/pyproject.toml), so every start-up need not import importlib.metadata
to learn it (tens of milliseconds on `kitt --help`), and a source tree that was never
installed knows it too.
"""

__version__ = "0.1.0"
