"""The map's data (`/map`): one GeoJSON FeatureCollection per layer, for one principal.

Every layer reuses the owning domain's visibility rule: reports of the agency's subtree
(`feedback.stats.report_conditions`), incidents it may see (`incidents.service`), alerts addressed to it
(`alerts.service.firing`), restricted indicators only to their owners (`catalog.service.visible`). No personal data
is ever put in a feature: reports carry their public (rounded) point, their tracking code, category and status —
never the description, the exact point or the contact; incidents and alerts carry their title, status and severity.
Points without coordinates of their own stand at their subject's centre (communes have no polygons).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityops.accounts.models import Agency
from cityops.accounts.roles import Principal
from cityops.alerts import service as alerts_service
from cityops.catalog.models import Domain, Indicator
from cityops.catalog.service import visible as visible_indicators
from cityops.feedback import stats as feedback_stats
from cityops.feedback.models import CLOSED, OPEN, FeedbackCategory, Report
from cityops.geo.models import Place, Subject
from cityops.geo.service import _in_province
from cityops.i18n import format_number
from cityops.incidents import service as incidents_service
from cityops.incidents.models import OPEN_STATUSES, SEVERITIES, STATUSES, Incident
from cityops.observations.service import latest

LAYERS = ("communes", "tourist_sites", "cameras", "reports", "incidents", "alerts")
REPORT_STATUSES = (OPEN, CLOSED)
ALERT_SEVERITIES = alerts_service.SEVERITIES
CAMERA_TOTAL = "antt.camera"
CAMERA_ONLINE = "antt.camera_truc_tuyen"
SHADES = 5  # classes of the communes' shading
MAX_FEATURES = 2000


class LayerError(ValueError):
    """A layer or filter that does not exist (code: the problem's code)."""

    def __init__(self, problem: str, /, **params: Any) -> None:
        super().__init__(problem)
        self.code = problem
        self.params = params


@dataclass(frozen=True)
class Filters:
    """What the page's filters ask: statuses of reports and incidents, alert severities ("" = all)."""

    indicator: str = ""
    status: str = ""
    severity: str = ""


def _collection(features: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features, **extra}


def _point(feature_id: str, longitude: float, latitude: float, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": feature_id,
        "geometry": {"type": "Point", "coordinates": [round(longitude, 6), round(latitude, 6)]},
        "properties": properties,
    }


def _communes(session: Session, province_code: str) -> list[Subject]:
    query = select(Subject).where(_in_province(province_code), Subject.kind == "commune").order_by(Subject.code)
    return list(session.scalars(query))


def _centres(session: Session, subject_ids: set[int]) -> dict[int, Subject]:
    if not subject_ids:
        return {}
    rows = session.scalars(select(Subject).where(Subject.id.in_(sorted(subject_ids))))
    return {subject.id: subject for subject in rows if subject.latitude is not None and subject.longitude is not None}


# --- communes and their shading -------------------------------------------------------------------------------


def commune_indicators(session: Session, principal: Principal) -> list[tuple[Indicator, str]]:
    """The indicators measured per commune that the principal may see, with their domain code, by code."""
    query = (
        select(Indicator, Domain.code)
        .join(Domain, Domain.id == Indicator.domain_id)
        .where(Indicator.subject_level == "commune")
        .order_by(Indicator.code)
    )
    return [(indicator, domain) for indicator, domain in session.execute(visible_indicators(query, principal))]


def _indicator(session: Session, principal: Principal, code: str) -> tuple[Indicator, str]:
    for indicator, domain in commune_indicators(session, principal):
        if indicator.code == code:
            return indicator, domain
    raise LayerError("unknown_indicator", code=code[:80])


def _latest_by_commune(session: Session, codes: list[str]) -> dict[str, dict[str, float]]:
    """The newest stored value (without dimensions) per indicator code and commune code."""
    ids = {
        code: id_
        for code, id_ in session.execute(select(Indicator.code, Indicator.id).where(Indicator.code.in_(codes)))
    }
    if not ids:
        return {}
    rows, _total = latest(session, list(ids.values()), subject_kind="commune", limit=100_000)
    values: dict[str, dict[str, float]] = {}
    for row in rows:
        if row["value"] is not None:
            values.setdefault(row["indicator"], {})[row["subject"]] = float(row["value"])
    return values


def commune_values(session: Session, indicator: Indicator) -> dict[str, float]:
    """The latest value of an indicator per commune code: stored, or a ratio of its parts' latest values."""
    if not (indicator.numerator_code and indicator.denominator_code):
        return _latest_by_commune(session, [indicator.code]).get(indicator.code, {})
    parts = _latest_by_commune(session, [indicator.numerator_code, indicator.denominator_code])
    numerators = parts.get(indicator.numerator_code, {})
    denominators = parts.get(indicator.denominator_code, {})
    scale = 100.0 if indicator.unit == "percent" else 1.0
    return {
        code: scale * numerators[code] / denominator
        for code, denominator in denominators.items()
        if code in numerators and denominator
    }


def shading_classes(values: list[float], language: str) -> list[dict[str, Any]]:
    """Up to SHADES classes of about equal counts of the distinct values, each from its lowest to its highest value
    (inclusive, no overlap), labelled in the reader's number format."""
    ordered = sorted(set(values))
    if not ordered:
        return []
    count = min(SHADES, len(ordered))
    classes = []
    for index in range(count):
        chunk = ordered[(len(ordered) * index) // count : (len(ordered) * (index + 1)) // count]
        low, high = chunk[0], chunk[-1]
        label = format_number(low, language)
        if high != low:
            label = f"{label} – {format_number(high, language)}"
        classes.append({"low": low, "high": high, "label": label})
    return classes


def _class_of(value: float, classes: list[dict[str, Any]]) -> int:
    for index, item in enumerate(classes):
        if value <= item["high"]:
            return index
    return len(classes) - 1


def communes_layer(
    session: Session, principal: Principal, province_code: str, indicator_code: str, language: str
) -> dict[str, Any]:
    """The communes as points at their centres; with an indicator, each one's latest value and its class."""
    indicator: Indicator | None = None
    domain = ""
    values: dict[str, float] = {}
    if indicator_code:
        indicator, domain = _indicator(session, principal, indicator_code)
        values = commune_values(session, indicator)
    classes = shading_classes(list(values.values()), language)
    features = []
    for commune in _communes(session, province_code):
        if commune.latitude is None or commune.longitude is None:
            continue
        value = values.get(commune.code)
        properties: dict[str, Any] = {
            "code": commune.code,
            "name_vi": commune.name_vi,
            "name_en": commune.name_en or commune.name_vi,
            "value": value,
            "value_text": "—" if value is None else format_number(value, language),
            "shade": None if value is None else _class_of(value, classes),
        }
        if domain:
            properties["link"] = f"/boards/{domain}?subject={commune.code}"
        features.append(_point(commune.code, commune.longitude, commune.latitude, properties))
    extra: dict[str, Any] = {"classes": classes}
    if indicator is not None:
        extra["indicator"] = {
            "code": indicator.code,
            "name_vi": indicator.name_vi,
            "name_en": indicator.name_en,
            "unit": indicator.unit,
            "domain": domain,
        }
    return _collection(features, **extra)


# --- places, cameras ------------------------------------------------------------------------------------------


def tourist_sites_layer(session: Session) -> dict[str, Any]:
    """Places of kind tourist_site: code, names, commune (no address, owner or attributes)."""
    rows = session.execute(
        select(Place, Subject.name_vi, Subject.name_en)
        .outerjoin(Subject, Subject.id == Place.commune_id)
        .where(Place.kind == "tourist_site")
        .order_by(Place.code)
        .limit(MAX_FEATURES)
    )
    return _collection(
        [
            _point(
                f"place-{place.code}",
                place.longitude,
                place.latitude,
                {
                    "code": place.code,
                    "name_vi": place.name_vi,
                    "name_en": place.name_en or place.name_vi,
                    "commune_vi": commune_vi or "",
                    "commune_en": commune_en or commune_vi or "",
                },
            )
            for place, commune_vi, commune_en in rows
        ]
    )


def cameras_layer(session: Session, principal: Principal, province_code: str) -> dict[str, Any]:
    """Per commune, the cameras connected and online (the latest `antt` values): status online (all online),
    partial (some offline) or offline (none online). Empty for whom the restricted indicators are not visible.
    When cameras are registered (cameras/), the layer shows each camera the principal may see, with its status."""
    from cityops.cameras.models import Camera
    from cityops.cameras.service import map_features

    if session.scalar(select(Camera.id).limit(1)) is not None:
        return _collection(map_features(session, principal))
    codes = [indicator.code for indicator, _ in commune_indicators(session, principal)]
    if CAMERA_TOTAL not in codes or CAMERA_ONLINE not in codes:
        return _collection([])
    values = _latest_by_commune(session, [CAMERA_TOTAL, CAMERA_ONLINE])
    totals, online = values.get(CAMERA_TOTAL, {}), values.get(CAMERA_ONLINE, {})
    features = []
    for commune in _communes(session, province_code):
        total = totals.get(commune.code)
        if not total or commune.latitude is None or commune.longitude is None:
            continue
        up = min(online.get(commune.code, 0.0), total)
        status = "online" if up >= total else "offline" if up <= 0 else "partial"
        features.append(
            _point(
                f"cameras-{commune.code}",
                commune.longitude,
                commune.latitude,
                {
                    "code": commune.code,
                    "name_vi": commune.name_vi,
                    "name_en": commune.name_en or commune.name_vi,
                    "total": int(total),
                    "online": int(up),
                    "status": status,
                    "link": f"/boards/antt?subject={commune.code}",
                },
            )
        )
    return _collection(features)


# --- reports, incidents, alerts -------------------------------------------------------------------------------


def reports_layer(session: Session, principal: Principal, status: str) -> dict[str, Any]:
    """Citizen reports the principal may see, at their public (rounded) point: code, category, status, commune."""
    if status and status not in REPORT_STATUSES:
        raise LayerError("map_unknown_filter", name="status", value=status[:32])
    try:
        conditions = feedback_stats.report_conditions(session, principal, feedback_stats.Filters(status=status))
    except feedback_stats.StatsError as exc:  # pragma: no cover - the status was checked above
        raise LayerError("map_unknown_filter", name="status", value=status[:32]) from exc
    rows = session.execute(
        select(
            Report.id,
            Report.tracking_code,
            Report.status,
            Report.public_latitude,
            Report.public_longitude,
            FeedbackCategory.name_vi,
            FeedbackCategory.name_en,
            Subject.name_vi,
            Subject.name_en,
        )
        .join(FeedbackCategory, FeedbackCategory.id == Report.category_id)
        .outerjoin(Subject, Subject.id == Report.subject_id)
        .where(*conditions, Report.public_latitude.is_not(None), Report.public_longitude.is_not(None))
        .order_by(Report.requested_at.desc(), Report.id.desc())
        .limit(MAX_FEATURES)
    )
    features = []
    for report_id, code, report_status, latitude, longitude, category_vi, category_en, commune_vi, commune_en in rows:
        features.append(
            _point(
                f"report-{report_id}",
                float(longitude or 0.0),
                float(latitude or 0.0),
                {
                    "tracking_code": code,
                    "status": report_status,
                    "category_vi": category_vi,
                    "category_en": category_en or category_vi,
                    "commune_vi": commune_vi or "",
                    "commune_en": commune_en or commune_vi or "",
                    "link": f"/feedback/reports/{report_id}",
                },
            )
        )
    return _collection(features)


def incidents_layer(session: Session, principal: Principal, status: str) -> dict[str, Any]:
    """Incidents the principal may see (open ones unless a status is chosen), at their point or subject's centre."""
    if status and status not in STATUSES:
        raise LayerError("map_unknown_filter", name="status", value=status[:32])
    statuses = (status,) if status else OPEN_STATUSES
    rows = list(
        session.execute(
            select(Incident, Agency.name_vi, Agency.name_en)
            .join(Agency, Agency.id == Incident.agency_id)
            .where(
                incidents_service._visible(principal),
                Incident.status.in_(statuses),
                Incident.merged_into_id.is_(None),
            )
            .order_by(Incident.created_at.desc(), Incident.id.desc())
            .limit(MAX_FEATURES)
        )
    )
    centres = _centres(session, {incident.subject_id for incident, _, _ in rows if incident.subject_id is not None})
    features = []
    for incident, agency_vi, agency_en in rows:
        latitude, longitude = incident.latitude, incident.longitude
        if latitude is None or longitude is None:
            subject = centres.get(incident.subject_id or 0)
            if subject is None:
                continue
            latitude, longitude = subject.latitude, subject.longitude
        assert latitude is not None and longitude is not None
        features.append(
            _point(
                f"incident-{incident.id}",
                longitude,
                latitude,
                {
                    "id": incident.id,
                    "title": incident.title,
                    "status": incident.status,
                    "severity": incident.severity,
                    "agency_vi": agency_vi,
                    "agency_en": agency_en or agency_vi,
                    "link": f"/incidents/{incident.id}",
                },
            )
        )
    return _collection(features)


def alerts_layer(session: Session, principal: Principal, severity: str) -> dict[str, Any]:
    """Firing alerts addressed to the principal (all for province-wide roles) at their subject's centre."""
    if severity and severity not in ALERT_SEVERITIES:
        raise LayerError("map_unknown_filter", name="severity", value=severity[:32])
    alerts = alerts_service.firing(session, agency_ids=None if principal.province_wide else principal.agency_ids)
    if severity:
        alerts = [alert for alert in alerts if alert.severity == severity]
    centres = _centres(session, {alert.subject_id for alert in alerts if alert.subject_id is not None})
    features = []
    for alert in alerts[:MAX_FEATURES]:
        subject = centres.get(alert.subject_id or 0)
        if subject is None or subject.latitude is None or subject.longitude is None:
            continue
        features.append(
            _point(
                f"alert-{alert.id}",
                subject.longitude,
                subject.latitude,
                {
                    "id": alert.id,
                    "title_vi": alert.title_vi,
                    "title_en": alert.title_en or alert.title_vi,
                    "state": alert.state,
                    "severity": alert.severity,
                    "subject": subject.code,
                    "subject_vi": subject.name_vi,
                    "subject_en": subject.name_en or subject.name_vi,
                    "link": f"/alerts/{alert.id}",
                },
            )
        )
    return _collection(features)


def layer(
    session: Session, principal: Principal, name: str, province_code: str, filters: Filters, language: str
) -> dict[str, Any]:
    """One layer by name (LayerError `map_unknown_layer` for another name)."""
    if name == "communes":
        return communes_layer(session, principal, province_code, filters.indicator, language)
    if name == "tourist_sites":
        return tourist_sites_layer(session)
    if name == "cameras":
        return cameras_layer(session, principal, province_code)
    if name == "reports":
        return reports_layer(session, principal, filters.status)
    if name == "incidents":
        return incidents_layer(session, principal, filters.status)
    if name == "alerts":
        return alerts_layer(session, principal, filters.severity)
    raise LayerError("not_found")


__all__ = ["LAYERS", "SEVERITIES", "Filters", "LayerError", "commune_indicators", "layer", "shading_classes"]
