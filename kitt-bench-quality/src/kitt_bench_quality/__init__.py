"""KITT quality benchmarks, scored by lm-evaluation-harness.

Importing this package is cheap: lm_eval, datasets, transformers and numpy are imported
only inside the functions that evaluate.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kitt-bench-quality")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0+unknown"
