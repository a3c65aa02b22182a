"""How the person server writes what it keeps: RFC 3339 times and compact JSON (§Mission
Log entries, §Mission Approval ``approved_at``, revocation notices); and times as the
person's pages show them."""

from __future__ import annotations

import functools
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
#: Days whose date is remembered, written both ways (a page's times fall on few days).
DAY_MEMO = 1024


@functools.lru_cache(maxsize=DAY_MEMO)
def _day(day: int) -> tuple[str, str]:
    """Day ``day`` since 1970 as ``YYYY-MM-DD`` and as ``7 Dec 2026``."""
    year, month, mday = time.gmtime(day * 86_400)[:3]
    return (
        f"{year:04}-{_TWO_DIGITS[month]}-{_TWO_DIGITS[mday]}",
        f"{mday} {_MONTHS[month - 1]} {year}",
    )


def html_time(moment: float) -> str:
    """``moment`` as an HTML ``<time>``: :func:`iso8601` in ``datetime``, :func:`readable_time`
    shown (a dashboard shows about a hundred: the date is written once a day, the time of
    day by arithmetic -- Unix time has no leap seconds)."""
    day, second = divmod(int(moment), 86_400)
    iso_date, shown_date = _day(day)
    hour, second = divmod(second, 3600)
    minute, second = divmod(second, 60)
    hm = _TWO_DIGITS[hour] + ":" + _TWO_DIGITS[minute]
    return f'<time datetime="{iso_date}T{hm}:{_TWO_DIGITS[second]}Z">{shown_date}, {hm} UTC</time>'


def compact(value: Any) -> bytes:
    """``value`` as UTF-8 JSON without spaces."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


__all__ = ["compact", "html_time", "iso8601", "readable_time"]
