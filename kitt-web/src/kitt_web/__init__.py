"""kitt-web: `kitt web`, a dashboard and REST API over KARR and the installed plugins.

    plugin.py    the `register_commands` hook: adds `kitt web`
    cli.py       `kitt web` (serve) and `kitt web token ...`
    config.py    WebConfig, what one server runs with
    tls.py       the local CA and server certificate; the TLS context
    state/       the web's own tables in the store's database: tokens, sessions, settings
    auth.py      one scheme for pages, API and streams: actors, roles, the middleware
    app.py       the application factory, its AppKeys and lifecycle
    api/         /api/v1: the REST endpoints, the OpenAPI document
    pages/       the dashboard's server-rendered pages (templates/, static/)
"""

__version__ = "0.1.0"
