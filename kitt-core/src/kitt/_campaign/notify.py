"""Webhook notifications: a JSON POST per event. A notification that cannot be sent
is a warning on stderr; it never stops or fails the campaign."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from kitt._campaign.model import Notify


class Notifier:
    def __init__(self, config: Notify, campaign: str, warn: Callable[[str], None]):
        self.config = config
        self.campaign = campaign
        self.warn = warn

    def send(self, event: str, payload: dict[str, Any]) -> bool:
        """POST `{"event", "campaign", ...payload}`; True when the server accepted it."""
        if not self.config.webhook or event not in self.config.on:
            return False
        import urllib.error
        import urllib.request

        from kitt._util.version import __version__

        body = json.dumps({"event": event, "campaign": self.campaign, **payload},
                          default=str).encode()
        request = urllib.request.Request(
            self.config.webhook, data=body, method="POST",
            headers={"Content-Type": "application/json",
                     "User-Agent": f"kitt/{__version__}"})
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                response.read()
            return True
        except urllib.error.HTTPError as exc:
            self.warn(f"webhook {self.config.webhook} refused the {event} notification: "
                      f"HTTP {exc.code}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            self.warn(f"cannot send the {event} notification to {self.config.webhook}: "
                      f"{reason}")
        return False
