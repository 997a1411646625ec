"""Opening a store by URL: pick the backend plugin, then check the schema version."""

from __future__ import annotations

from kitt._storage.contract import Store
from kitt._storage.url import mask, resolve_url, scheme_of
from kitt.errors import BadInput


def open_store(url: str | None = None, *, create: bool = True,
               allow_old_schema: bool = False) -> Store:
    """Open the store at `url` (resolved by `kitt._storage.resolve_url`).

    A store that does not exist is created when `create` (else BadInput). A store with an
    older schema is refused unless `allow_old_schema` (the migrate command), and one with a
    newer schema than this KITT knows is always refused.
    """
    from kitt import plugins

    full_url = resolve_url(url)
    shown = mask(full_url)
    scheme = scheme_of(full_url)
    backends = plugins.storage_backends()
    backend = backends.get(scheme)
    if backend is None:
        known = ", ".join(f"{s}://" for s in sorted(backends)) or "none installed"
        raise BadInput(f"no storage backend for {shown!r} (scheme {scheme!r})",
                       hint=f"use one of: {known}; or install the plugin providing {scheme}")
    store = backend.open(full_url, create=create)
    try:
        version = store.schema_version()
        latest = store.schema_versions
        if version == 0:
            if not create:
                raise BadInput(f"no KARR store at {shown}",
                               hint="create it with `kitt storage init`")
            store.migrate()
        elif version > latest:
            raise BadInput(
                f"the store at {shown} has schema version {version}, newer than this KITT "
                f"understands (up to {latest})",
                hint="upgrade kitt-core (pip install -U kitt-core) to open it")
        elif version < latest and not allow_old_schema:
            raise BadInput(
                f"the store at {shown} has schema version {version}; this KITT uses {latest}",
                hint=f"back it up, then run `kitt storage migrate --store {shown}`")
    except BaseException:
        store.close()
        raise
    return store
