"""Test helpers: hand edits of a saved settings record (as time passing or an admin's editor would make them),
and settings that count the calls made on them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any


def age_last_authentication(settings: Any, elapsed: timedelta) -> None:
    """Move the record's last authentication ``elapsed`` into the past, as if time had passed since.

    Args:
        settings: the ``AISettings`` whose ``settings.json`` (in ``settings.home``) is edited.
        elapsed: how long ago the last authentication should seem.
    """
    path = settings.home / "settings.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    at = datetime.fromisoformat(record["last_authentication"]["at"].replace("Z", "+00:00"))
    record["last_authentication"]["at"] = (at - elapsed).isoformat()
    path.write_text(json.dumps(record), encoding="utf-8")


class CountingSettings:
    """Real AISettings behind the Settings interface, noting the name of every method called on them."""

    def __init__(self, settings: Any) -> None:
        self._settings = settings
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._settings, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return value(*args, **kwargs)

        return call
