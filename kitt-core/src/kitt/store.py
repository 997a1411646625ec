"""The storage contract: a backend opens stores for the URL schemes it claims."""

from __future__ import annotations

from typing import ClassVar


class StorageBackend:
    """Base class for storage backend plugins."""

    name: ClassVar[str]
    schemes: ClassVar[tuple[str, ...]]

    def open(self, url: str):
        """Open (creating if needed) the store at `url` and return a `kitt.Store`."""
        raise NotImplementedError
