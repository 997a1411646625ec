"""The storage contract: a backend opens stores for the URL schemes it claims.

The store interface itself is `kitt.storage.api.Store` (exported as `kitt.Store`).
"""

from __future__ import annotations

from typing import ClassVar


class StorageBackend:
    """Base class for storage backend plugins.

    `open(url, create=True)` returns a `kitt.Store`. With `create=False` a store that does
    not exist yet is an error (`kitt.BadInput`) rather than created. `kitt.storage` checks
    the schema version of what `open` returns and applies `Store.migrate()` to new stores.
    """

    name: ClassVar[str]
    schemes: ClassVar[tuple[str, ...]]

    def open(self, url: str, *, create: bool = True):
        """Open (creating if needed and `create`) the store at `url`; a `kitt.Store`."""
        raise NotImplementedError
