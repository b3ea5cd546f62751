"""Loading the catalog into the database: created once, versioned on change, visible by role."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from cityops.accounts.service import Actor
from cityops.catalog.models import Indicator, IndicatorVersion
from cityops.catalog.service import DEFAULT_CATALOG_DIR, load_catalog, read_catalog
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from conftest import START


def test_the_default_catalog_is_in_the_database(database: Database) -> None:
    expected = sum(len(file.indicators) for file in read_catalog().domains)
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Indicator)) == expected


def test_loading_again_changes_nothing(database: Database, clock: FrozenClock) -> None:
    with database.writing() as session:
        report = load_catalog(session, Actor("test"), clock())
    assert report.indicators_created == report.indicators_updated == 0
    assert report.indicators_unchanged > 100


def test_a_changed_target_makes_a_new_version_and_keeps_the_old_one(
    database: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    folder = tmp_path / "catalog"
    shutil.copytree(DEFAULT_CATALOG_DIR, folder)
    path = folder / "hcc.toml"
    text = path.read_text()
    start = text.index('code = "hcc.ty_le_dung_han"')
    target_at = text.index("value = 98.0", start)
    path.write_text(text[:target_at] + "value = 99.0" + text[target_at + len("value = 98.0") :])
    clock.advance(timedelta(days=1))
    try:
        with database.writing() as session:
            report = load_catalog(session, Actor("cán bộ vận hành"), clock(), folder)
        assert report.indicators_updated == 1
        with database.reading() as session:
            indicator = session.scalar(select(Indicator).where(Indicator.code == "hcc.ty_le_dung_han"))
            assert indicator is not None
            assert indicator.version == 2 and indicator.targets[0]["value"] == 99.0
            assert indicator.updated_by == "cán bộ vận hành"
            old = session.scalar(select(IndicatorVersion).where(IndicatorVersion.indicator_id == indicator.id))
            assert old is not None and old.version == 1 and old.definition["targets"][0]["value"] == 98.0
    finally:  # put the default back for the other tests
        with database.writing() as session:
            load_catalog(session, Actor("test"), clock())
            session.execute(IndicatorVersion.__table__.delete())
            session.execute(Indicator.__table__.update().values(version=1, updated_by="system", updated_at=START))
