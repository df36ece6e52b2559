"""Shared fixtures: stores in temporary directories, and a PostgreSQL schema."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from eventfold.infra.filestore import FileStoreFactory

# A test's verdict never depends on the machine's speed: no per-example deadline,
# no health check that fails a test for generating data slowly, and the same examples
# on every run (a verdict that changes from run to run helps nobody).
settings.register_profile(
    "eventfold", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("eventfold")


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def factory(store_path: Path) -> Iterator[FileStoreFactory]:
    f = FileStoreFactory({"FILESTORE_PATH": str(store_path)})
    yield f
    f.close()


# -- PostgreSQL ----------------------------------------------------------------

POSTGRES_KEYS = ("POSTGRES_DBNAME", "POSTGRES_HOST", "POSTGRES_USER", "POSTGRES_PASSWORD")


def _postgres_unavailable(reason: str) -> None:
    """Skip, with the reason shown; in CI (EVENTFOLD_REQUIRE_POSTGRES=1) fail instead."""
    if os.environ.get("EVENTFOLD_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL required but {reason}")
    pytest.skip(f'{reason} (start one with: eval "$(.ci/postgres-up)")')


@pytest.fixture
def postgres(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A fresh schema in the configured PostgreSQL database, as environment settings.

    Sets ``POSTGRES_SCHEMA`` (and ``EVENTFOLD_BACKEND=postgres``) in the
    environment for the test, and drops the schema afterwards.
    """
    missing = [k for k in POSTGRES_KEYS if not os.environ.get(k)]
    if missing:
        _postgres_unavailable(f"no PostgreSQL server configured ({', '.join(missing)} unset)")
    try:
        import psycopg

        from eventfold.infra.backends.postgres import connection_settings
    except ImportError:
        _postgres_unavailable("psycopg is not installed (pip install 'eventfold[postgres]')")
    settings = connection_settings(os.environ) | {"connect_timeout": 5}
    schema = f"test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(**settings, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as e:
        _postgres_unavailable(f"the PostgreSQL server cannot be reached ({e})")
    monkeypatch.setenv("POSTGRES_SCHEMA", schema)
    monkeypatch.setenv("EVENTFOLD_BACKEND", "postgres")
    env = {k: os.environ[k] for k in os.environ if k.startswith("POSTGRES_")}
    env["PERSISTENCE_MODULE"] = "eventsourcing.postgres"
    try:
        yield env
    finally:
        with psycopg.connect(**settings, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
