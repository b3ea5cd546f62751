"""SQLite runs in WAL mode with foreign keys enforced."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from cityops.accounts.models import User
from cityops.db.engine import Database
from cityops.db.migrate import upgrade


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'cityops.db'}"
    upgrade(url)
    database = Database(url)
    yield database
    database.dispose()


def test_sqlite_runs_in_wal_mode(sqlite_database: Database) -> None:
    with sqlite_database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_sqlite_has_foreign_keys_on(sqlite_database: Database) -> None:
    with sqlite_database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_sqlite_refuses_a_row_pointing_at_nothing(sqlite_database: Database) -> None:
    moment = datetime(2026, 11, 27, tzinfo=UTC)
    with pytest.raises(IntegrityError, match="FOREIGN KEY"), sqlite_database.writing() as session:
        session.add(User(username="mồ_côi", password_hash="x", role="officer", agency_id=999_999, created_at=moment))
        session.flush()
