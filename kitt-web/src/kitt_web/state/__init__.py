"""The web's own state, in the store's database (`kitt.Store.database("web", ...)`).

Functions here are synchronous and take a `kitt.Database`; the server calls them from its
store threads, the CLI directly. Times are epoch seconds (float).
"""

from kitt_web.state.schema import MIGRATIONS, NAMESPACE, open_state

__all__ = ["MIGRATIONS", "NAMESPACE", "open_state"]
