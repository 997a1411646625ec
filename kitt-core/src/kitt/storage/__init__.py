"""KARR (Kitt's AI Results Repository): where every run lands.

    from kitt.storage import open_store
    with open_store() as store:          # --store > KITT_STORE > config.yaml > default
        store.save_run(run)

Backends are plugins (`register_storage_backends`), chosen by the URL's scheme.
"""

from __future__ import annotations

from kitt.storage.api import (
    GROUP_KEYS,
    AggregateRow,
    ImportReport,
    ResultMetrics,
    RunFilter,
    RunMetrics,
    RunSummary,
    Store,
)
from kitt.storage.open import open_store
from kitt.storage.url import mask, resolve_url

__all__ = [
    "GROUP_KEYS",
    "AggregateRow",
    "ImportReport",
    "ResultMetrics",
    "RunFilter",
    "RunMetrics",
    "RunSummary",
    "Store",
    "mask",
    "open_store",
    "resolve_url",
]
