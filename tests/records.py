"""Hand edits of a saved settings record, as time passing or an admin's editor would make them (for tests)."""

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
