"""How the person server writes what it keeps: RFC 3339 times and compact JSON (§Mission
Log entries, §Mission Approval ``approved_at``, revocation notices); and times as the
person's pages show them."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any


def iso8601(moment: float) -> str:
    """``moment`` (Unix seconds) as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return datetime.fromtimestamp(int(moment), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def readable_time(moment: float) -> str:
    """``moment`` (Unix seconds) as a person reads it: ``7 Dec 2026, 15:04 UTC``."""
    when = datetime.fromtimestamp(moment, tz=timezone.utc)
    return f"{when.day} {when:%b %Y, %H:%M} UTC"


def compact(value: Any) -> bytes:
    """``value`` as UTF-8 JSON without spaces."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


__all__ = ["compact", "iso8601", "readable_time"]
