"""Fixtures shared by the whole suite: a real SQLite and a real PostgreSQL, the app in-process, personas.

Every test that takes `database` runs twice, once per backend. PostgreSQL is the real server on
127.0.0.1:5432; when it is absent the PostgreSQL runs skip with the reason, except with
CITYOPS_REQUIRE_SERVICES=1 (CI), where its absence fails them.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, text, update

from cityops.accounts import service as accounts
from cityops.accounts.models import Agency
from cityops.clock import FrozenClock
from cityops.db.base import Base, import_all_models
from cityops.db.engine import Database
from cityops.feeds.service import create_feed
from cityops.settings import Settings
from cityops.setup import ensure_ready
from cityops.web.app import create_app
from cityops.web.security import CSRF_COOKIE, csrf_token

import_all_models()

# The suite's servers (agencies' endpoints, webhooks, cameras) listen on 127.0.0.1: allowed here as an admin would
# allow an internal service (cityops.outbound); tests/test_outbound.py checks the refusal itself. Subprocesses
# inherit it.
os.environ.setdefault("CITYOPS_OUTBOUND_ALLOW", "127.0.0.0/8")

# The product hashes passwords with argon2id at its strong defaults (about 0.1 s a hash, by design). The suite makes
# seven personas per test and would spend minutes hashing, so it uses argon2id with the smallest cost; the strong
# hasher is kept here for the test that checks the product's parameters.
STRONG_HASHER = accounts._hasher
accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

POSTGRES_ADMIN_URL = os.environ.get("CITYOPS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_SERVICES = os.environ.get("CITYOPS_REQUIRE_SERVICES") == "1"
START = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)  # 10:00 in Hà Nội
# Tables kept between tests: geography and the default catalog, loaded once per backend.
KEPT_TABLES = {
    "subjects",
    "domains",
    "indicators",
    "indicator_versions",
    "alembic_version",
    "agencies",
    "incident_categories",
    "feedback_categories",
}
PASSWORD = "mật-khẩu-đủ-dài-2026"


def service_missing(name: str, reason: str) -> None:
    """Skip a test whose service is absent, or fail it when CI requires every service."""
    message = f"{name} is not reachable ({reason})"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}; CITYOPS_REQUIRE_SERVICES=1 requires it")
    pytest.skip(message)


def _postgres_available() -> str | None:
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    problem = _postgres_available()
    if problem is not None:
        service_missing("PostgreSQL at 127.0.0.1:5432", problem)
    name = f"cityops_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = re.sub(r"/[^/]*$", f"/{name}", POSTGRES_ADMIN_URL)
    yield url
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Backend:
    """One prepared database: schema, the province's units and the default catalog."""

    name: str
    settings: Settings
    database: Database
    catalog_agency_ids: set[int]


def _prepare(name: str, url: str, data_dir: Path) -> Backend:
    settings = Settings(data_dir=data_dir, database_url=url, secret_key="test-secret-key-" + "x" * 32)
    database = Database(settings.resolved_database_url)
    ensure_ready(settings, database, FrozenClock(START))
    with database.reading() as session:
        agency_ids = set(session.scalars(select(Agency.id)))
    return Backend(name, settings, database, agency_ids)


@pytest.fixture(scope="session")
def sqlite_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    data_dir = tmp_path_factory.mktemp("sqlite")
    backend = _prepare("sqlite", f"sqlite:///{data_dir / 'cityops.db'}", data_dir)
    yield backend
    backend.database.dispose()


@pytest.fixture(scope="session")
def postgres_backend(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    backend = _prepare("postgresql", postgres_url, tmp_path_factory.mktemp("postgres"))
    yield backend
    backend.database.dispose()


def _clean(backend: Backend) -> None:
    with backend.database.writing() as session:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name not in KEPT_TABLES:
                session.execute(delete(table))
        session.execute(delete(Agency).where(Agency.id.not_in(backend.catalog_agency_ids)))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Each backend in turn, emptied of everything but geography and the catalog after the test."""
    chosen: Backend = request.getfixturevalue(f"{'sqlite' if request.param == 'sqlite' else 'postgres'}_backend")
    yield chosen
    _clean(chosen)


@pytest.fixture
def database(backend: Backend) -> Database:
    return backend.database


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def app(backend: Backend, clock: FrozenClock) -> Any:
    return create_app(backend.settings, clock=clock, database=backend.database)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


# --- personas ---------------------------------------------------------------------------------------

PERSONAS = {
    "admin": ("admin", ""),
    "operator": ("operator", ""),
    "leader": ("leader", ""),
    "officer_a": ("officer", "so_y_te"),
    "officer_b": ("officer", "so_gd_dt"),
    "handler_a": ("handler", "so_y_te"),
    "citizen": ("public", ""),
}


@pytest.fixture
def personas(database: Database, clock: FrozenClock) -> dict[str, str]:
    """Users for every role: admin, operator, leader, officer of agency A (health) and B (education), citizen."""
    with database.writing() as session:
        for username, (role, agency) in PERSONAS.items():
            accounts.create_user(
                session, accounts.SYSTEM, clock(), username=username, password=PASSWORD, role=role, agency_code=agency
            )
    return {username: PASSWORD for username in PERSONAS}


def login(client: TestClient, username: str, password: str = PASSWORD) -> None:
    """Log in through the real form, CSRF token included."""
    page = client.get("/login")
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    answer = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token[1], "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


def csrf_header(client: TestClient, app: Any) -> dict[str, str]:
    """The X-CSRF-Token header a script on a logged-in page sends with a change."""
    seed = client.cookies.get(CSRF_COOKIE)
    assert seed, "no CSRF cookie yet: load a page first"
    return {"X-CSRF-Token": csrf_token(app.state.parts.settings.resolved_secret_key, seed)}


@dataclass
class AgencyKey:
    """An agency system's credentials: its key and the feed bound to it."""

    key: str
    prefix: str
    feed: str
    agency: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def make_key(database: Database, now: datetime, *, agency: str, feed: str, indicators: list[str]) -> AgencyKey:
    """Create a feed for an agency and a key that may write it."""
    with database.writing() as session:
        create_feed(session, accounts.SYSTEM, now, code=feed, agency_code=agency, indicator_codes=indicators)
        key, secret = accounts.create_api_key(session, accounts.SYSTEM, now, agency_code=agency, feed_codes=[feed])
    return AgencyKey(secret, key.prefix, feed, agency)


@pytest.fixture
def hcc_key(database: Database, clock: FrozenClock) -> AgencyKey:
    """The public-service centre's iGate feed, with a key."""
    return make_key(
        database,
        clock(),
        agency="trung_tam_phuc_vu_hcc",
        feed="hcc_igate",
        indicators=["hcc.ho_so_tiep_nhan", "hcc.ho_so_dung_han", "hcc.ty_le_dung_han"],
    )


@contextmanager
def catalog_restored(database: Database) -> Iterator[None]:
    """Put every indicator's targets, thresholds and version back after a block that edits them."""
    from cityops.catalog.models import Indicator, IndicatorVersion

    columns = ("targets", "thresholds", "version", "updated_at", "updated_by")
    with database.reading() as session:
        before = {row.id: {c: getattr(row, c) for c in columns} for row in session.scalars(select(Indicator))}
        versions = set(session.scalars(select(IndicatorVersion.id)))
    yield
    with database.writing() as session:
        session.execute(delete(IndicatorVersion).where(IndicatorVersion.id.not_in(versions or {0})))
        for row in session.scalars(select(Indicator)):
            if {c: getattr(row, c) for c in columns} != before[row.id]:
                session.execute(update(Indicator).where(Indicator.id == row.id).values(**before[row.id]))


def count_rows(database: Database, table: str) -> int:
    """How many rows a table holds."""
    with database.reading() as session:
        return int(session.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())  # noqa: S608 — test helper
