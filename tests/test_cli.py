"""The real `cityops` command, run as a subprocess on a fresh data directory with no other setup."""

from __future__ import annotations

import os
import re
import shlex
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from cityops.catalog.service import DEFAULT_CATALOG_DIR, read_catalog
from cityops.db.base import Base
from cityops.settings import Settings
from cityops.web.app import create_app
from conftest import _clean

SCRIPT = Path(sys.executable).parent / "cityops"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "cityops.cli"]
GOOD_PASSWORD = "mật-khẩu-dòng-lệnh-2026"
KEY_LINE = re.compile(r"cok_[0-9a-f]{12}_[A-Za-z0-9_-]+")


def cityops(
    data_dir: Path, command: str, stdin: str | None = None, database_url: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run `cityops COMMAND` (split like a shell would) with only CITYOPS_DATA_DIR (and the database URL) set, and the
    tests' own network allowed for outgoing requests."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CITYOPS_")}
    env["CITYOPS_DATA_DIR"] = str(data_dir)
    env["CITYOPS_OUTBOUND_ALLOW"] = "127.0.0.0/8"  # the tests' agency endpoints, as an admin allows an internal one
    if database_url:
        env["CITYOPS_DATABASE_URL"] = database_url
    return subprocess.run(
        [*COMMAND, *shlex.split(command)],
        cwd=data_dir,
        env=env,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The error output of a command that must fail cleanly: non-zero exit, a message, no traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("Error: "), result.stderr
    return result.stderr


def query(data_dir: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(data_dir / "cityops.db")) as connection:
        return connection.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-data")


@pytest.fixture(scope="module")
def upgraded(data_dir: Path) -> subprocess.CompletedProcess[str]:
    """`cityops db upgrade` on the empty data directory, once for the module."""
    return cityops(data_dir, "db upgrade")


@pytest.fixture(scope="module")
def key_feed(data_dir: Path, upgraded: subprocess.CompletedProcess[str]) -> str:
    """A feed of the public-service centre that keys of these tests may write."""
    ok(cityops(data_dir, "feeds create --code cli_hcc --agency trung_tam_phuc_vu_hcc --indicator hcc.ho_so_tiep_nhan"))
    return "cli_hcc"


def create_key(data_dir: Path, feed: str) -> str:
    output = ok(cityops(data_dir, f"keys create --agency trung_tam_phuc_vu_hcc --feed {feed}"))
    return output.rstrip("\n").splitlines()[-1]


@contextmanager
def app_client(data_dir: Path) -> Iterator[TestClient]:
    """The web app in this process, on the same data directory the command used."""
    settings = Settings(data_dir=data_dir, database_url="", secret_key="", _env_file=None)
    app = create_app(settings)
    try:
        with TestClient(app) as client:
            yield client
    finally:
        app.state.parts.db.dispose()


def last_month() -> str:
    return f"{datetime.now(UTC).replace(day=1) - timedelta(days=1):%Y-%m}"


# --- db, catalog, geo -------------------------------------------------------------------------------


def test_db_upgrade_succeeds_on_an_empty_data_dir(upgraded: subprocess.CompletedProcess[str]) -> None:
    assert "database ready: sqlite:///" in ok(upgraded)


def test_db_upgrade_creates_every_table(data_dir: Path, upgraded: subprocess.CompletedProcess[str]) -> None:
    ok(upgraded)
    tables = {name for (name,) in query(data_dir, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert set(Base.metadata.tables) | {"alembic_version"} <= tables


def test_catalog_load_loads_the_default_catalog(data_dir: Path, upgraded: subprocess.CompletedProcess[str]) -> None:
    domains = read_catalog(DEFAULT_CATALOG_DIR).domains
    expected = sum(len(domain.indicators) for domain in domains)
    output = ok(cityops(data_dir, "catalog load"))
    counts = re.search(r"domains: (\d+); indicators created: (\d+), updated: (\d+), unchanged: (\d+);", output)
    assert counts is not None, output
    assert int(counts[1]) == len(domains)
    assert int(counts[2]) + int(counts[3]) + int(counts[4]) == expected
    assert query(data_dir, "SELECT COUNT(*) FROM indicators") == [(expected,)]


def test_catalog_load_of_a_broken_file_names_file_indicator_and_field(
    data_dir: Path, upgraded: subprocess.CompletedProcess[str], tmp_path: Path
) -> None:
    source = (DEFAULT_CATALOG_DIR / "hcc.toml").read_text(encoding="utf-8")
    broken = source.replace('period = "month"', 'period = "weekly"', 1)
    assert broken != source
    (tmp_path / "hcc.toml").write_text(broken, encoding="utf-8")
    message = refused(cityops(data_dir, f"catalog load {shlex.quote(str(tmp_path))}"))
    assert "hcc.toml: indicator hcc.ho_so_tiep_nhan: field period:" in message


def test_geo_load_loads_the_province_and_its_communes(
    data_dir: Path, upgraded: subprocess.CompletedProcess[str]
) -> None:
    output = ok(cityops(data_dir, "geo load"))
    found = re.search(r"administrative units: (\d+)", output)
    assert found is not None, output
    count = int(found[1])
    assert count > 1
    assert query(data_dir, "SELECT COUNT(*) FROM subjects WHERE kind IN ('province', 'commune')") == [(count,)]
    assert query(data_dir, "SELECT COUNT(*) FROM subjects WHERE kind = 'province' AND code = '40'") == [(1,)]


# --- agencies, feeds, users -------------------------------------------------------------------------


def test_agencies_create(data_dir: Path, upgraded: subprocess.CompletedProcess[str]) -> None:
    output = ok(
        cityops(
            data_dir,
            "agencies create --code ubnd_xa_cli --name-vi 'UBND xã Dòng Lệnh' --kind commune --parent ubnd_tinh",
        )
    )
    assert output.strip() == "agency created: ubnd_xa_cli"
    assert query(data_dir, "SELECT name_vi, kind FROM agencies WHERE code = 'ubnd_xa_cli'") == [
        ("UBND xã Dòng Lệnh", "commune")
    ]


def test_feeds_create_binds_the_indicators(data_dir: Path, upgraded: subprocess.CompletedProcess[str]) -> None:
    output = ok(
        cityops(
            data_dir,
            "feeds create --code cli_feed --agency trung_tam_phuc_vu_hcc"
            " --indicator hcc.ho_so_tiep_nhan,hcc.ho_so_dung_han --indicator hcc.ty_le_dung_han",
        )
    )
    assert output.strip() == "feed created: cli_feed (3 indicators)"
    bound = query(
        data_dir,
        "SELECT i.code FROM feed_indicators fi JOIN feeds f ON f.id = fi.feed_id"
        " JOIN indicators i ON i.id = fi.indicator_id WHERE f.code = 'cli_feed' ORDER BY i.code",
    )
    assert bound == [("hcc.ho_so_dung_han",), ("hcc.ho_so_tiep_nhan",), ("hcc.ty_le_dung_han",)]


def test_users_create_with_password_option(data_dir: Path, upgraded: subprocess.CompletedProcess[str]) -> None:
    output = ok(cityops(data_dir, f"users create --username cli_admin --role admin --password {GOOD_PASSWORD}"))
    assert output.strip() == "user created: cli_admin (admin)"
    ((stored,),) = query(data_dir, "SELECT password_hash FROM users WHERE username = 'cli_admin'")
    assert stored.startswith("$argon2id$")
    assert PasswordHasher().verify(stored, GOOD_PASSWORD)


def test_users_create_with_password_from_the_prompt(data_dir: Path, upgraded: subprocess.CompletedProcess[str]) -> None:
    output = ok(
        cityops(
            data_dir,
            "users create --username cli_officer --role officer --agency so_y_te",
            stdin=f"{GOOD_PASSWORD}\n{GOOD_PASSWORD}\n",
        )
    )
    assert "user created: cli_officer (officer)" in output
    ((stored,),) = query(data_dir, "SELECT password_hash FROM users WHERE username = 'cli_officer'")
    assert PasswordHasher().verify(stored, GOOD_PASSWORD)


def test_users_update_changes_the_role_ends_sessions_and_is_audited(
    data_dir: Path, upgraded: subprocess.CompletedProcess[str]
) -> None:
    ok(cityops(data_dir, f"users create --username cli_leader --role leader --password {GOOD_PASSWORD}"))
    output = ok(cityops(data_dir, "users update --username cli_leader --role operator --inactive"))
    assert output.strip() == "user updated: cli_leader"
    assert query(data_dir, "SELECT role, is_active FROM users WHERE username = 'cli_leader'") == [("operator", 0)]
    ((details,),) = query(
        data_dir, "SELECT details FROM audit_log WHERE action = 'user.update' ORDER BY id DESC LIMIT 1"
    )
    assert '"role": ["leader", "operator"]' in details.replace('":[', '": [').replace('","', '", "')
    assert "cli_leader\toperator\t-\tinactive" in ok(cityops(data_dir, "users list"))


def test_users_update_sets_a_new_password_from_the_prompt(
    data_dir: Path, upgraded: subprocess.CompletedProcess[str]
) -> None:
    ok(cityops(data_dir, f"users create --username cli_pw --role leader --password {GOOD_PASSWORD}"))
    new_password = "một-mật-khẩu-mới-2027"
    ok(cityops(data_dir, "users update --username cli_pw --new-password", stdin=f"{new_password}\n{new_password}\n"))
    ((stored,),) = query(data_dir, "SELECT password_hash FROM users WHERE username = 'cli_pw'")
    assert PasswordHasher().verify(stored, new_password)


def test_users_update_of_an_unknown_user_is_a_clear_error(
    data_dir: Path, upgraded: subprocess.CompletedProcess[str]
) -> None:
    assert "user 'nobody' does not exist" in refused(cityops(data_dir, "users update --username nobody --inactive"))


# --- keys -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys_create_output(data_dir: Path, key_feed: str) -> str:
    """What `cityops keys create` printed, once for the module."""
    return ok(cityops(data_dir, f"keys create --agency trung_tam_phuc_vu_hcc --feed {key_feed}"))


def test_keys_create_prints_the_key_alone_on_the_last_line(keys_create_output: str) -> None:
    lines = keys_create_output.rstrip("\n").splitlines()
    assert KEY_LINE.fullmatch(lines[-1]), lines
    assert all(lines[-1] not in line for line in lines[:-1])


def test_keys_create_stores_only_a_hash_of_the_key(data_dir: Path, keys_create_output: str) -> None:
    key = keys_create_output.rstrip("\n").splitlines()[-1]
    stored = query(data_dir, "SELECT * FROM api_keys WHERE prefix = ?", key.split("_")[1])
    assert len(stored) == 1
    assert all(key.split("_", 2)[2] not in str(value) for value in stored[0])


def test_created_key_writes_through_the_api(data_dir: Path, keys_create_output: str) -> None:
    key = keys_create_output.rstrip("\n").splitlines()[-1]
    with app_client(data_dir) as client:
        answer = client.post(
            "/api/v1/observations",
            headers={"Authorization": f"Bearer {key}"},
            json={
                "observations": [
                    {"indicator": "hcc.ho_so_tiep_nhan", "subject": "40", "period": last_month(), "value": 321}
                ]
            },
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 1, answer.text


def test_keys_revoke_stops_the_key(data_dir: Path, key_feed: str) -> None:
    key = create_key(data_dir, key_feed)
    prefix = key.split("_")[1]
    headers = {"Authorization": f"Bearer {key}"}
    with app_client(data_dir) as client:
        assert client.get("/api/v1/me", headers=headers).status_code == 200
        assert ok(cityops(data_dir, f"keys revoke {prefix}")).strip() == f"API key revoked: {prefix}"
        assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_keys_list_shows_prefixes_and_state_but_never_a_key(data_dir: Path, key_feed: str) -> None:
    key = create_key(data_dir, key_feed)
    prefix = key.split("_")[1]
    listing = ok(cityops(data_dir, "keys list"))
    line = next(line for line in listing.splitlines() if line.startswith(prefix))
    assert f"\ttrung_tam_phuc_vu_hcc\t{key_feed}\t" in line and line.endswith("active")
    assert key.split("_", 2)[2] not in listing


# --- errors -----------------------------------------------------------------------------------------


def test_unknown_agency_is_a_clear_error(data_dir: Path, upgraded: subprocess.CompletedProcess[str]) -> None:
    message = refused(
        cityops(data_dir, "feeds create --code cli_nowhere --agency khong_co --indicator hcc.ho_so_tiep_nhan")
    )
    assert message.strip() == "Error: agency 'khong_co' does not exist"


def test_duplicate_user_is_a_clear_error(data_dir: Path, upgraded: subprocess.CompletedProcess[str]) -> None:
    command = f"users create --username cli_twice --role leader --password {GOOD_PASSWORD}"
    ok(cityops(data_dir, command))
    message = refused(cityops(data_dir, command))
    assert message.strip() == "Error: user 'cli_twice' already exists"


def test_short_password_is_a_clear_error(data_dir: Path, upgraded: subprocess.CompletedProcess[str]) -> None:
    message = refused(cityops(data_dir, "users create --username cli_short --role leader --password ngắn"))
    assert message.strip() == "Error: the password must be at least 10 characters"
    assert query(data_dir, "SELECT COUNT(*) FROM users WHERE username = 'cli_short'") == [(0,)]


# --- PostgreSQL by URL ------------------------------------------------------------------------------


@pytest.fixture
def postgres_cli(postgres_url: str, postgres_backend) -> Iterator[str]:
    """The session's PostgreSQL database (prepared first), left as the other tests expect it afterwards."""
    try:
        yield postgres_url
    finally:
        _clean(postgres_backend)


def test_cli_works_on_postgresql_by_url(postgres_cli: str, tmp_path: Path) -> None:
    database_name = postgres_cli.rsplit("/", 1)[1]
    assert database_name in ok(cityops(tmp_path, "db upgrade", database_url=postgres_cli))
    ok(
        cityops(
            tmp_path,
            f"users create --username cli_pg_admin --role admin --password {GOOD_PASSWORD}",
            database_url=postgres_cli,
        )
    )
    with psycopg.connect(postgres_cli) as connection:
        row = connection.execute("SELECT role FROM users WHERE username = 'cli_pg_admin'").fetchone()
    assert row == ("admin",)
    assert not (tmp_path / "cityops.db").exists()
