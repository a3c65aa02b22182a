"""How the person server writes what it keeps: RFC 3339 times and compact JSON (§Mission
Log entries, §Mission Approval ``approved_at``, revocation notices); and times as the
person's pages show them."""

from __future__ import annotations

import json
import time
from typing import Any

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def iso8601(moment: float) -> str:
    """``moment`` (Unix seconds) as ``YYYY-MM-DDTHH:MM:SSZ``."""
    t = time.gmtime(int(moment))
    return (
        f"{t.tm_year:04}-{t.tm_mon:02}-{t.tm_mday:02}T{t.tm_hour:02}:{t.tm_min:02}:{t.tm_sec:02}Z"
    )


def readable_time(moment: float) -> str:
    """``moment`` (Unix seconds) as a person reads it: ``7 Dec 2026, 15:04 UTC`` (English
    month names whatever the locale; a page shows many, so no ``datetime``/``strftime``)."""
    t = time.gmtime(int(moment))
    return f"{t.tm_mday} {_MONTHS[t.tm_mon - 1]} {t.tm_year}, {t.tm_hour:02}:{t.tm_min:02} UTC"


_TWO_DIGITS = tuple(f"{n:02}" for n in range(62))


def html_time(moment: float) -> str:
    """``moment`` as an HTML ``<time>``: :func:`iso8601` in ``datetime``, :func:`readable_time`
    shown (one ``gmtime`` and one string: a dashboard shows about a hundred)."""
    year, month, day, hour, minute, second = time.gmtime(int(moment))[:6]
    hm = _TWO_DIGITS[hour] + ":" + _TWO_DIGITS[minute]
    return (
        f'<time datetime="{year:04}-{_TWO_DIGITS[month]}-{_TWO_DIGITS[day]}T{hm}:'
        f'{_TWO_DIGITS[second]}Z">{day} {_MONTHS[month - 1]} {year}, {hm} UTC</time>'
    )


def compact(value: Any) -> bytes:
    """``value`` as UTF-8 JSON without spaces."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


__all__ = ["compact", "html_time", "iso8601", "readable_time"]
