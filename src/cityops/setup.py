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
from cityops.feedback.categories import load_categories as load_feedback_categories
from cityops.feedback.models import FeedbackCategory
from cityops.geo.models import Subject
from cityops.geo.service import ensure_commune_agencies, load_province
from cityops.incidents.categories import load_categories
from cityops.incidents.models import IncidentCategory
from cityops.settings import Settings


@dataclass
class ReadyReport:
    """What ensure_ready had to do."""

    units_loaded: int = 0
    indicators_loaded: int = 0
    agencies_created: int = 0
    categories_loaded: int = 0
    feedback_categories_loaded: int = 0


def ensure_ready(settings: Settings, database: Database, clock: Clock = system_clock) -> ReadyReport:
    """Migrate the schema; load the default catalog, the province's units and their People's Committees when absent."""
    upgrade(settings.resolved_database_url)
    report = ReadyReport()
    with database.writing() as session:
        if not session.scalar(select(func.count()).select_from(Indicator)):
            report.indicators_loaded = load_catalog(session, SYSTEM, clock()).indicators_created
        if not session.scalar(select(func.count()).select_from(Subject)):
            report.units_loaded = load_province(session, settings.province_code)
            report.agencies_created = ensure_commune_agencies(session, clock())
        if not session.scalar(select(func.count()).select_from(IncidentCategory)):
            report.categories_loaded = load_categories(session)
        if not session.scalar(select(func.count()).select_from(FeedbackCategory)):
            report.feedback_categories_loaded = load_feedback_categories(session)
    return report
