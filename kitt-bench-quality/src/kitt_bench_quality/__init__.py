"""KITT quality benchmarks, scored by lm-evaluation-harness.

Importing this package is cheap: lm_eval, datasets, transformers and numpy are imported
only inside the functions that evaluate.
"""

__version__ = "0.1.0"  # the wheel's version is read from here (pyproject [tool.hatch.version])
