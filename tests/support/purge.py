"""Rows for the housekeeping tests and the purge benchmark: ``n`` rows in every table the
person server's housekeeping trims, all expiring at one time, written by one statement per
table (a recursive count, the same SQL on SQLite and PostgreSQL)."""

from __future__ import annotations

from aauth_agents.servers.person_server.server import PersonServer

#: Each purged table and the values of one row (``{e}``: the expiry; ``k``: a unique key).
PS_TABLES = {
    "ps_person_tokens": (
        "jti, aud, sub, account, agent_id, requested_by, iat, exp, retain_until",
        "k, 'https://r.example', 'sub', 'alice', 'agent', 'agent', {e}, {e}, {e}",
    ),
    "ps_auth_tokens": (
        "jti, aud, sub, account, agent_id, requested_by, iat, exp",
        "k, 'https://r.example', 'sub', 'alice', 'agent', 'agent', {e}, {e}",
    ),
    "ps_agent_tokens": ("iss, jti, agent_id, exp", "'https://ap.example', k, 'agent', {e}"),
    "ps_ui_sessions": (
        "id_s256, csrf, login_seq, created_at, last_seen, expires_at",
        "k, 'csrf', 0, {e}, {e}, {e}",
    ),
}
STORE_TABLES = {
    "aauth_pending": (
        "id, kind, state, agent_jkt, created_at, expires_at, purge_at, code_attempts, data, "
        "version",
        "k, 'auth', 'pending', 'jkt', {e}, {e}, {e}, 0, '{{}}', 0",
    ),
    "aauth_revoked": ("kind, a, b, until", "'token', 'https://ap.example', k, {e}"),
    "aauth_known_tokens": ("iss, jti, until", "'https://ap.example', k, {e}"),
    "aauth_attempts": ("key, count, until", "k, 1, {e}"),
}


def fill_sql(table: str, columns: str, values: str, expiry: float, prefix: str) -> str:
    """One statement inserting ``?`` rows into ``table``, keys ``prefix`` + a count."""
    return (
        f"INSERT INTO {table} ({columns}) WITH RECURSIVE n(i) AS "
        "(SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        f"SELECT {values.format(e=repr(float(expiry)))} "
        f"FROM (SELECT '{prefix}' || i AS k FROM n) AS rows"
    )


def fill(ps: PersonServer, n: int, expiry: float, prefix: str = "x") -> None:
    """``n`` rows expiring at ``expiry`` in each table of :data:`PS_TABLES` and
    :data:`STORE_TABLES` of ``ps``'s databases."""
    for table, (columns, values) in PS_TABLES.items():
        ps.db.execute(fill_sql(table, columns, values, expiry, prefix), (n,))
    for table, (columns, values) in STORE_TABLES.items():
        ps._stores_db.execute(fill_sql(table, columns, values, expiry, prefix), (n,))


def counts(ps: PersonServer) -> dict[str, int]:
    """The number of rows in each table :func:`fill` fills."""
    found = {t: int(ps.db.fetchone(f"SELECT COUNT(*) FROM {t}")[0]) for t in PS_TABLES}
    for table in STORE_TABLES:
        found[table] = int(ps._stores_db.fetchone(f"SELECT COUNT(*) FROM {table}")[0])
    return found
