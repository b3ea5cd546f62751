"""`cityops backup` and `cityops restore`: a round trip on SQLite (online backup) and PostgreSQL (pg_dump and
pg_restore) gives back the database and the data directory's files; the secret key stays out; old archives go."""

from __future__ import annotations

import json
import shutil
import tarfile
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from cityops import backup as backups
from cityops.accounts import service as accounts
from cityops.accounts.models import User
from cityops.cli import main
from conftest import PASSWORD


def _usernames(database) -> set[str]:
    with database.reading() as session:
        return set(session.scalars(select(User.username)))


def test_a_round_trip_gives_back_the_database_and_the_files(backend, clock, tmp_path) -> None:
    if backend.name == "postgresql" and shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    settings = backend.settings.model_copy(update={"backup_dir": tmp_path / "archives"})
    database = backend.database
    with database.writing() as session:
        accounts.create_user(
            session, accounts.SYSTEM, clock(), username="truoc_sao_luu", password=PASSWORD, role="leader"
        )
    attachment = settings.data_dir / "attachments" / "bien-ban-họp.txt"
    attachment.parent.mkdir(parents=True, exist_ok=True)
    attachment.write_text("Biên bản họp giao ban — bản gốc", encoding="utf-8")

    made = backups.backup(settings, database, clock())
    with tarfile.open(made.path) as archive:
        names = archive.getnames()
        manifest = json.loads(archive.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert "files/attachments/bien-ban-họp.txt" in names
    assert not any(name.endswith("secret_key") for name in names)  # the key that decrypts the secrets stays out
    assert manifest["engine"] == backend.name and manifest["revision"]

    # After the backup: a user removed, another added, the file changed.
    with database.writing() as session:
        session.delete(session.scalar(select(User).where(User.username == "truoc_sao_luu")))
        accounts.create_user(
            session, accounts.SYSTEM, clock(), username="sau_sao_luu", password=PASSWORD, role="leader"
        )
    attachment.write_text("bị ghi đè", encoding="utf-8")

    backups.restore(settings, database, made.path)

    users = _usernames(database)
    assert "truoc_sao_luu" in users and "sau_sao_luu" not in users
    assert attachment.read_text(encoding="utf-8") == "Biên bản họp giao ban — bản gốc"
    attachment.unlink()


def test_retention_keeps_the_newest_and_a_foreign_archive_is_refused(sqlite_backend, clock, tmp_path) -> None:
    settings = sqlite_backend.settings.model_copy(update={"backup_dir": tmp_path, "backup_keep": 2})
    made = [backups.backup(settings, sqlite_backend.database, clock() + timedelta(days=day)) for day in range(3)]
    assert sorted(tmp_path.glob("cityops-*.tar")) == [made[1].path, made[2].path]
    assert made[2].removed == [made[0].path]

    wrong = tmp_path / "wrong.tar"
    with tarfile.open(wrong, "w") as archive:
        archive.add(made[2].path, arcname="not-a-manifest")
    with pytest.raises(backups.BackupError, match="not a cityops backup"):
        backups.restore(settings, sqlite_backend.database, wrong)


def test_the_commands_back_up_and_restore(sqlite_backend, tmp_path) -> None:
    settings = sqlite_backend.settings
    env = {
        "CITYOPS_DATA_DIR": str(settings.data_dir),
        "CITYOPS_DATABASE_URL": settings.resolved_database_url,
        "CITYOPS_SECRET_KEY": settings.resolved_secret_key,
        "CITYOPS_BACKUP_DIR": str(tmp_path),
    }
    made = CliRunner().invoke(main, ["backup"], env=env)
    assert made.exit_code == 0, made.output
    [archive] = tmp_path.glob("cityops-*.tar")
    assert str(archive) in made.output
    refused = CliRunner().invoke(main, ["restore", str(archive)], env=env, input="n\n")
    assert refused.exit_code != 0  # asked, and not confirmed
    restored = CliRunner().invoke(main, ["restore", str(archive), "--yes"], env=env)
    assert restored.exit_code == 0, restored.output
    assert "restored" in restored.output
