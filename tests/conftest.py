"""Settings and fixtures shared by the whole suite. Helpers shared by test directories are
the modules of the ``support`` package (tests/support; ``pythonpath`` in pyproject.toml)."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from support.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium
from support.services import MissingServiceError, PostgresServer, RedisServer

# Property tests assert behaviour, never time: a loaded CI machine must not turn a slow
# example into a failure (hypothesis' default deadline is 200 ms per example).
settings.register_profile("aauth", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("aauth")

_databases = itertools.count()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A fresh headless Debian Chromium (its own temporary profile): the person's pages
    (tests/person_server_ui) and JupyterLab (tests/prompts)."""
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        # launch() gives every browser a fresh temporary profile (user data dir).
        chromium = await pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture(scope="session")
def redis_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Redis for the run: scripts/test.sh's (``AAUTH_TEST_REDIS_URL``) or our own."""
    url = os.environ.get("AAUTH_TEST_REDIS_URL")
    if url:
        yield url
        return
    try:
        server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    except MissingServiceError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    """The run's Redis, emptied for this test."""
    import redis

    with redis.Redis.from_url(redis_server_url) as client:
        client.flushall()
    return redis_server_url


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One PostgreSQL cluster for the run: scripts/test.sh's (``AAUTH_TEST_POSTGRES_URL``)
    or our own."""
    url = os.environ.get("AAUTH_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    try:
        server = PostgresServer().start()
    except MissingServiceError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server.url()
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server_url: str) -> str:
    """A new, empty database of the run's cluster, for this test alone."""
    import psycopg

    name = f"t{next(_databases)}_{os.getpid()}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return postgres_server_url.rsplit("/", 1)[0] + f"/{name}"
