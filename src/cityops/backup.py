"""`cityops backup` and `cityops restore`: the database and the files of the data directory in one archive.

An archive is a tar file `cityops-<UTC time>.tar` holding:
- `manifest.json`: the cityops version, the schema revision, the engine, when it was made;
- `database.sqlite3` (SQLite's online backup API: a consistent copy while the server runs) or `database.dump`
  (`pg_dump --format=custom`, consistent by its own snapshot);
- `files/…`: the data directory's files (attachments, citizens' photos, reports, camera event snapshots …) except the
  database itself, the backups and the secret key.

The secret key is NOT in the archive: it decrypts the secrets stored in the database (feeds', cameras' and
webhooks' credentials), so a stolen archive alone reveals none of them. Keep the key apart (it is
`<data dir>/secret_key` unless CITYOPS_SECRET_KEY is set); without it a restored database cannot use those secrets.

Retention: after a backup, the oldest archives in the folder beyond `backup_keep` are deleted.
A restore refuses an archive made by a newer schema than this code knows; it replaces the database's content and
the files the archive holds.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from cityops import __version__
from cityops.db.engine import Database
from cityops.db.migrate import known_revision
from cityops.live.bus import libpq_url
from cityops.settings import Settings

PREFIX = "cityops-"
SUFFIX = ".tar"
SKIPPED = {"secret_key", "backups"}


class BackupError(RuntimeError):
    """A backup or restore that cannot be done, with what to do about it."""


@dataclass(frozen=True)
class Made:
    path: Path
    size: int
    removed: list[Path]


def backups_dir(settings: Settings) -> Path:
    return settings.backup_dir or settings.data_dir / "backups"


def _sqlite_file(url: str) -> Path:
    database = make_url(url).database
    if not database:
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _skipped(path: Path, data_dir: Path, database_file: Path | None) -> bool:
    relative = path.relative_to(data_dir)
    if relative.parts[0] in SKIPPED:
        return True
    if database_file is not None and path.name.startswith(database_file.name):  # the file, -wal, -shm, -journal
        return path.parent.resolve() == database_file.parent.resolve()
    return False


def _revision(database: Database) -> str:
    with database.reading() as session:
        return str(session.execute(text("SELECT version_num FROM alembic_version")).scalar() or "")


def backup(settings: Settings, database: Database, now: datetime, folder: Path | None = None) -> Made:
    """Write one archive into `folder` (default: <data dir>/backups), then apply the retention."""
    folder = folder or backups_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    engine = database.dialect
    target = folder / f"{PREFIX}{now.strftime('%Y%m%dT%H%M%S%fZ')}{SUFFIX}"
    partial = target.with_suffix(".partial")
    manifest: dict[str, Any] = {
        "cityops": __version__,
        "revision": _revision(database),
        "engine": engine,
        "made_at": now.isoformat(),
    }
    database_file = _sqlite_file(url) if engine == "sqlite" else None
    with tempfile.TemporaryDirectory(prefix="cityops-backup-") as scratch:
        if database_file is not None:
            dump, name = Path(scratch) / "database.sqlite3", "database.sqlite3"
            with closing(sqlite3.connect(database_file)) as source, closing(sqlite3.connect(dump)) as copy:
                source.backup(copy)  # consistent, while others write
        else:
            dump, name = Path(scratch) / "database.dump", "database.dump"
            _tool(["pg_dump", "--format=custom", "--no-owner", f"--file={dump}", f"--dbname={libpq_url(url)}"])
        with tarfile.open(partial, "w") as archive:
            data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mtime = len(data), int(now.timestamp())
            archive.addfile(info, io.BytesIO(data))
            archive.add(dump, arcname=name)
            data_dir = settings.data_dir
            if data_dir.exists():
                for path in sorted(data_dir.rglob("*")):
                    if path.is_file() and not _skipped(path, data_dir, database_file):
                        archive.add(path, arcname=f"files/{path.relative_to(data_dir).as_posix()}")
    os.replace(partial, target)
    return Made(target, target.stat().st_size, _retain(folder, settings.backup_keep))


def _retain(folder: Path, keep: int) -> list[Path]:
    archives = sorted(folder.glob(f"{PREFIX}*{SUFFIX}"))
    removed = archives[: max(len(archives) - keep, 0)]
    for path in removed:
        path.unlink()
    return removed


def restore(settings: Settings, database: Database, archive_path: Path) -> dict[str, Any]:
    """Put an archive's database and files back; the archive's manifest."""
    if not archive_path.is_file():
        raise BackupError(f"no archive at {archive_path}")
    with tempfile.TemporaryDirectory(prefix="cityops-restore-") as scratch, tarfile.open(archive_path) as archive:
        archive.extractall(scratch, filter="data")  # no absolute paths, no links out, no devices
        root = Path(scratch)
        try:
            manifest = json.loads((root / "manifest.json").read_text())
        except (OSError, ValueError) as exc:
            raise BackupError(f"{archive_path.name} is not a cityops backup (no readable manifest.json)") from exc
        if manifest.get("engine") != database.dialect:
            raise BackupError(
                f"the archive holds a {manifest.get('engine')} database; this installation uses {database.dialect}"
            )
        if not known_revision(str(manifest.get("revision", ""))):
            raise BackupError(
                f"the archive's schema ({manifest.get('revision')}) was made by a newer cityops than this one; "
                "upgrade cityops first"
            )
        url = settings.resolved_database_url
        database.dispose()  # no pooled connection may hold the old database while it is replaced
        if database.dialect == "sqlite":
            with (
                closing(sqlite3.connect(root / "database.sqlite3")) as source,
                closing(sqlite3.connect(_sqlite_file(url))) as target,
            ):
                source.backup(target)
        else:
            _tool(
                [
                    "pg_restore",
                    "--clean",
                    "--if-exists",
                    "--no-owner",
                    "--single-transaction",
                    f"--dbname={libpq_url(url)}",
                    str(root / "database.dump"),
                ]
            )
        files = root / "files"
        if files.exists():
            for path in files.rglob("*"):
                if path.is_file():
                    destination = settings.data_dir / path.relative_to(files)
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, destination)
    return dict(manifest)


def _tool(command: list[str]) -> None:
    if shutil.which(command[0]) is None:
        raise BackupError(f"{command[0]} is not installed (Debian package postgresql-client)")
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 — fixed program
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise BackupError(f"{command[0]} failed: {detail[-1] if detail else result.returncode}")
