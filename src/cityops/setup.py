"""Bring a data directory to a working state: schema, the province's geography, the default catalog."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from cityops.accounts.service import SYSTEM
from cityops.catalog.models import Indicator
from cityops.catalog.service import load_catalog
from cityops.clock import Clock, system_clock
from cityops.db.engine import Database
from cityops.db.migrate import upgrade
from cityops.geo.models import Subject
from cityops.geo.service import load_province
from cityops.settings import Settings


@dataclass
class ReadyReport:
    """What ensure_ready had to do."""

    units_loaded: int = 0
    indicators_loaded: int = 0


def ensure_ready(settings: Settings, database: Database, clock: Clock = system_clock) -> ReadyReport:
    """Migrate the schema; load the province's units and the default catalog when the database has none."""
    upgrade(settings.resolved_database_url)
    report = ReadyReport()
    with database.writing() as session:
        if not session.scalar(select(func.count()).select_from(Subject)):
            report.units_loaded = load_province(session, settings.province_code)
        if not session.scalar(select(func.count()).select_from(Indicator)):
            report.indicators_loaded = load_catalog(session, SYSTEM, clock()).indicators_created
    return report
