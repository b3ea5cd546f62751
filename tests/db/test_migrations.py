"""Migrations: from an empty database `db upgrade` builds exactly the schema the models declare."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from cityops.db.base import Base, import_all_models
from cityops.db.engine import make_engine
from cityops.db.migrate import alembic_config, upgrade
from conftest import POSTGRES_ADMIN_URL, _postgres_available, service_missing

import_all_models()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with nothing in it: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    problem = _postgres_available()
    if problem is not None:
        service_missing("PostgreSQL at 127.0.0.1:5432", problem)
    name = f"cityops_migrate_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield re.sub(r"/[^/]*$", f"/{name}", POSTGRES_ADMIN_URL)
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def test_empty_database_has_no_tables(empty_url: str) -> None:
    assert table_names(empty_url) == set()


def test_upgrade_creates_every_table(empty_url: str) -> None:
    upgrade(empty_url)
    assert table_names(empty_url) == set(Base.metadata.tables) | {"alembic_version"}


def test_upgrade_reaches_the_head_revision(empty_url: str) -> None:
    upgrade(empty_url)
    head = ScriptDirectory.from_config(alembic_config(empty_url)).get_current_head()
    engine = make_engine(empty_url)
    try:
        with engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == head
    finally:
        engine.dispose()


def test_upgraded_schema_matches_the_models(empty_url: str) -> None:
    upgrade(empty_url)
    engine = make_engine(empty_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_upgrade_twice_changes_nothing(empty_url: str) -> None:
    upgrade(empty_url)
    upgrade(empty_url)
    assert table_names(empty_url) == set(Base.metadata.tables) | {"alembic_version"}
