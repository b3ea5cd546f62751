"""Who handles a report: the category's `route` (an agency code, or "commune" for the People's Committee of the
report's commune or ward, `ubnd_<commune code>`), else the category's fallback agency, else the IOC itself."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityops.accounts.models import Agency
from cityops.feedback.categories import COMMUNE
from cityops.feedback.models import FeedbackCategory
from cityops.geo.models import Subject
from cityops.geo.service import commune_agency_code

LAST_RESORT = "trung_tam_giam_sat_dieu_hanh"


def _agency(session: Session, code: str) -> Agency | None:
    return session.scalar(select(Agency).where(Agency.code == code))


def responsible_agency(session: Session, category: FeedbackCategory, commune: Subject | None) -> Agency:
    """The agency that handles a report of this category in this commune (see the module's docstring)."""
    chosen: Agency | None = None
    if category.route == COMMUNE:
        if commune is not None and commune.kind == "commune":
            chosen = _agency(session, commune_agency_code(commune.code))
    elif category.route:
        chosen = _agency(session, category.route)
    if chosen is None and category.agency_id is not None:
        chosen = session.get(Agency, category.agency_id)
    if chosen is None:
        chosen = _agency(session, LAST_RESORT)
    if chosen is None:  # pragma: no cover - the catalog's agencies are always loaded
        raise LookupError("no agency can handle reports")
    return chosen
