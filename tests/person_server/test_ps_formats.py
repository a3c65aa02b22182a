"""The person server's times, written by hand for speed (a dashboard shows many), agree with
``datetime``: RFC 3339 as kept in mission logs, the pages' ``7 Dec 2026, 15:04 UTC``, and both
in one ``<time>`` element."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from aauth_agents.servers.person_server.formats import html_time, iso8601, readable_time

#: Unix seconds from 1970 to the end of year 9999 (``datetime``'s last year).
MOMENTS = st.floats(min_value=0, max_value=253_402_300_799, allow_nan=False)


def expected(moment: float) -> tuple[str, str]:
    when = datetime.fromtimestamp(int(moment), tz=timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ"), f"{when.day} {when:%b %Y, %H:%M} UTC"


@given(MOMENTS)
def test_times_agree_with_datetime(moment: float) -> None:
    iso, readable = expected(moment)
    assert (iso8601(moment), readable_time(moment)) == (iso, readable)
    assert html_time(moment) == f'<time datetime="{iso}">{readable}</time>'


def test_times_at_the_edges() -> None:
    assert iso8601(0) == "1970-01-01T00:00:00Z"
    assert readable_time(0) == "1 Jan 1970, 00:00 UTC"
    leap = datetime(2024, 2, 29, 23, 59, 59, tzinfo=timezone.utc).timestamp()
    assert iso8601(leap + 0.999) == "2024-02-29T23:59:59Z"
    assert readable_time(leap) == "29 Feb 2024, 23:59 UTC"
    assert readable_time(leap + 1) == "1 Mar 2024, 00:00 UTC"
    assert iso8601(2**31) == "2038-01-19T03:14:08Z"
    assert readable_time(1_796_655_840) == "7 Dec 2026, 15:04 UTC"
    assert html_time(1_796_655_840.9) == (
        '<time datetime="2026-12-07T15:04:00Z">7 Dec 2026, 15:04 UTC</time>'
    )
