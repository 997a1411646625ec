"""KARR (Kitt's AI Results Repository): where every run lands.

    from kitt import open_store
    with open_store() as store:          # --store > KITT_STORE > config.yaml > default
        store.save_run(run)

`contract` is the interface (`Store`, `StorageBackend` and the values they exchange);
`open` and `url` pick and open a store by URL; `transfer` exports and imports runs;
`sqlstore` writes every operation once in SQL for `sqlite` and `postgres`; `schema`,
`rows`, `totals` and `aggregate` are the SQL stores' tables, rows and statistics.
Backends are plugins (`register_storage_backends`), chosen by the URL's scheme; the
built-in ones are registered by `backends`.
"""
