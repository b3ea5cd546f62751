"""The rules of the video wall: the active layout (nine tiles, each one view or several in rotation), checking and
saving an operator's layout (audited), and what each kind of view shows — read straight from the domains' tables.

A view is a dict: {"kind": "overview" | "alerts" | "incidents" | "reports" | "health" | "map"} or
{"kind": "board", "domain": "yte"} or {"kind": "indicator", "code": "yte.ty_le_tiem_chung"}.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cityops.accounts.roles import Principal
from cityops.accounts.service import Actor, audit
from cityops.alerts.models import FIRING, Alert, AlertRule
from cityops.alerts.service import SEVERITY_RANK, may_see
from cityops.catalog import service as catalog
from cityops.catalog.judging import judge, target_for
from cityops.catalog.models import Domain, Indicator
from cityops.clock import LOCAL_TZ
from cityops.feedback.models import FeedbackCategory, Report
from cityops.feeds.models import LATE, FeedExpectation, FeedRun, feed_indicators
from cityops.geo.models import Subject
from cityops.geo.service import province_geometry
from cityops.incidents import service as incidents
from cityops.incidents.models import OPEN_STATUSES
from cityops.observations import derived
from cityops.observations import service as observations
from cityops.observations.models import Observation
from cityops.wall.models import WallLayout

DATA_DIR = Path(__file__).parent / "data"
DEFAULT_FILE = DATA_DIR / "default_layout.json"
POSITIONS = tuple(range(1, 10))
KINDS = ("overview", "alerts", "incidents", "board", "indicator", "reports", "health", "map", "cameras")
PLAIN_KINDS = ("overview", "alerts", "incidents", "reports", "health", "map", "cameras")
MAX_VIEWS = 6
MIN_ROTATE, MAX_ROTATE, DEFAULT_ROTATE = 5, 3600, 30
BOARD_ITEMS = 4
LIST_ITEMS = 5
# A value received longer ago than this for its period type is shown as stale.
STALE_AFTER = {
    "instant": timedelta(hours=1),
    "day": timedelta(days=2),
    "month": timedelta(days=62),
    "quarter": timedelta(days=190),
    "year": timedelta(days=400),
    "school_year": timedelta(days=400),
}


# --- layouts -------------------------------------------------------------------------------------------------


def default_document() -> dict[str, Any]:
    with DEFAULT_FILE.open(encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    return document


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def ensure_default(session: Session, now: datetime) -> WallLayout:
    """The active layout; the default one is made (once, whoever asks at the same time) when there is none."""
    layout = session.scalar(select(WallLayout).where(WallLayout.active.is_(True)).order_by(WallLayout.id).limit(1))
    if layout is not None:
        return layout
    document = default_document()
    session.execute(
        _insert(session)(WallLayout)
        .values(
            code=document["code"],
            name=document["name"],
            tiles=normalise(document["tiles"]),
            active=True,
            updated_by="system",
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["code"])
    )
    session.flush()
    layout = session.scalar(select(WallLayout).where(WallLayout.code == document["code"]))
    assert layout is not None
    return layout


def normalise(tiles: Any) -> list[dict[str, Any]]:
    """Nine tiles in order of position, each with at least one view and its rotation seconds."""
    by_position: dict[int, dict[str, Any]] = {}
    for tile in tiles if isinstance(tiles, list) else []:
        if isinstance(tile, dict) and tile.get("position") in POSITIONS:
            by_position[int(tile["position"])] = tile
    result = []
    for position in POSITIONS:
        tile = by_position.get(position, {})
        views = [dict(v) for v in tile.get("views") or [] if isinstance(v, dict) and v.get("kind") in KINDS]
        seconds = tile.get("rotate_seconds")
        result.append(
            {
                "position": position,
                "views": views[:MAX_VIEWS] or [{"kind": "overview"}],
                "rotate_seconds": seconds if isinstance(seconds, int) and seconds > 0 else DEFAULT_ROTATE,
            }
        )
    return result


def layout_tiles(session: Session, now: datetime) -> list[dict[str, Any]]:
    return normalise(ensure_default(session, now).tiles)


def view_choice(view: dict[str, Any]) -> str:
    """The form's choice for a view: "alerts", "board:yte", "indicator"."""
    if view["kind"] == "board":
        return f"board:{view.get('domain', '')}"
    return str(view["kind"])


@dataclass
class TileIn:
    """One position of the form as typed: the choices of its view slots, indicator codes, rotation seconds."""

    position: int
    choices: list[str]
    codes: list[str]
    rotate: str


@dataclass
class Checked:
    tiles: list[dict[str, Any]] = field(default_factory=list)
    errors: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (field id, message key, params)


def check_tiles(session: Session, entered: list[TileIn]) -> Checked:
    """The layout the form describes, or what is wrong with it (field by field)."""
    domains = set(session.scalars(select(Domain.code)))
    indicators = set(session.scalars(select(Indicator.code)))
    checked = Checked()
    for tile in entered:
        views: list[dict[str, Any]] = []
        for slot, (choice, code) in enumerate(zip(tile.choices, tile.codes, strict=True), start=1):
            field_id = f"t{tile.position}_v{slot}"
            if not choice:
                continue
            kind, _, domain = choice.partition(":")
            if kind in PLAIN_KINDS and not domain:
                views.append({"kind": kind})
            elif kind == "board":
                if domain not in domains:
                    checked.errors.append((field_id, "wall.error.unknown_domain", {"domain": domain[:40]}))
                else:
                    views.append({"kind": "board", "domain": domain})
            elif kind == "indicator":
                if not code:
                    checked.errors.append((f"{field_id}_code", "wall.error.indicator_missing", {}))
                elif code not in indicators:
                    checked.errors.append((f"{field_id}_code", "wall.error.unknown_indicator", {"code": code[:80]}))
                else:
                    views.append({"kind": "indicator", "code": code})
            else:
                checked.errors.append((field_id, "wall.error.unknown_kind", {"kind": choice[:40]}))
        if not views and not any(e[0].startswith(f"t{tile.position}_") for e in checked.errors):
            checked.errors.append((f"t{tile.position}_v1", "wall.error.no_view", {}))
        text = tile.rotate.strip()
        seconds = int(text) if text.isascii() and text.isdigit() and len(text) < 8 else None
        if seconds is None or not MIN_ROTATE <= seconds <= MAX_ROTATE:
            checked.errors.append(
                (f"t{tile.position}_rotate", "wall.error.rotate", {"low": MIN_ROTATE, "high": MAX_ROTATE})
            )
            seconds = DEFAULT_ROTATE
        checked.tiles.append({"position": tile.position, "views": views, "rotate_seconds": seconds})
    return checked


def update_layout(session: Session, actor: Actor, now: datetime, tiles: list[dict[str, Any]]) -> WallLayout:
    """Save the active layout's tiles (already checked), in the audit log in the same transaction."""
    layout = ensure_default(session, now)
    before = normalise(layout.tiles)
    layout.tiles = normalise(tiles)
    layout.updated_by = actor.label
    layout.updated_at = now
    changed = [t["position"] for t, old in zip(layout.tiles, before, strict=True) if t != old]
    audit(session, actor, "wall.update", "wall_layout", layout.code, now, {"changed": changed, "tiles": layout.tiles})
    session.flush()
    return layout


# --- what tiles show -----------------------------------------------------------------------------------------


def _name(item: Any, lang: str) -> str:
    return str(item.name_vi if lang == "vi" else (item.name_en or item.name_vi))


def _local_midnight(now: datetime) -> datetime:
    local = now.astimezone(LOCAL_TZ)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def alert_domains(session: Session, alerts: list[Alert]) -> dict[int, set[str]]:
    """The subsystems each alert concerns: its rule's indicator, the indicator its details name, its feed's
    indicators."""
    rule_ids = {a.rule_id for a in alerts if a.rule_id is not None}
    rule_domain = dict(
        session.execute(
            select(AlertRule.id, Domain.code)
            .join(Indicator, Indicator.id == AlertRule.indicator_id)
            .join(Domain, Domain.id == Indicator.domain_id)
            .where(AlertRule.id.in_(sorted(rule_ids) or [0]))
        ).all()
    )
    feed_ids = {a.feed_id for a in alerts if a.feed_id is not None}
    feed_domains: dict[int, set[str]] = {}
    for feed_id, domain in session.execute(
        select(feed_indicators.c.feed_id, Domain.code)
        .join(Indicator, Indicator.id == feed_indicators.c.indicator_id)
        .join(Domain, Domain.id == Indicator.domain_id)
        .where(feed_indicators.c.feed_id.in_(sorted(feed_ids) or [0]))
    ):
        feed_domains.setdefault(feed_id, set()).add(domain)
    named = {str((a.details or {}).get("indicator") or "") for a in alerts} - {""}
    indicator_domain = dict(
        session.execute(
            select(Indicator.code, Domain.code)
            .join(Domain, Domain.id == Indicator.domain_id)
            .where(Indicator.code.in_(sorted(named) or [""]))
        ).all()
    )
    result: dict[int, set[str]] = {}
    for alert in alerts:
        found: set[str] = set()
        if alert.rule_id in rule_domain:
            found.add(rule_domain[alert.rule_id])
        code = str((alert.details or {}).get("indicator") or "")
        if code in indicator_domain:
            found.add(indicator_domain[code])
        found |= feed_domains.get(alert.feed_id or 0, set())
        result[alert.id] = found
    return result


def _firing(session: Session, principal: Principal) -> list[Alert]:
    alerts = session.scalars(select(Alert).where(Alert.state == FIRING)).all()
    return [a for a in alerts if may_see(principal, a)]


@dataclass
class Context:
    """What every view of one request needs: who, when, which language, the firing alerts and their domains."""

    session: Session
    principal: Principal
    now: datetime
    lang: str
    province_code: str
    firing: list[Alert]
    domains_of: dict[int, set[str]]

    def critical_domains(self) -> set[str]:
        return {d for a in self.firing if a.severity == "critical" for d in self.domains_of.get(a.id, set())}

    def firing_in(self, domain: str) -> list[Alert]:
        return [a for a in self.firing if domain in self.domains_of.get(a.id, set())]


def context(session: Session, principal: Principal, now: datetime, lang: str, province_code: str) -> Context:
    firing = _firing(session, principal)
    return Context(session, principal, now, lang, province_code, firing, alert_domains(session, firing))


def status_of(indicator: Indicator, value: float | None, year: int) -> tuple[str, float | None]:
    """The status the other screens show (catalog.judging; "none" is called neutral on the wall), and the target."""
    target = target_for(indicator, "", year)
    status = judge(indicator, value, target)
    return ("neutral" if status == "none" else status), (target if value is not None else None)


@dataclass
class Figure:
    code: str
    name: str
    value: float | None
    unit: str
    period: str
    status: str
    target: float | None
    received_at: datetime | None
    stale: bool


def _unit_symbol(code: str, lang: str) -> str:
    from cityops.catalog.pages import units

    unit = units().get(code)
    if unit is None:
        return ""
    return unit.symbol_vi if lang == "vi" else unit.symbol_en


def _figures(ctx: Context, indicators: list[Indicator]) -> list[Figure]:
    """The newest province value of each indicator (stored, else computed from its parts or communes)."""
    from cityops.i18n import format_period

    session = ctx.session
    province = session.scalar(select(Subject.id).where(Subject.kind == "province"))
    if province is None or not indicators:
        return []
    latest, _ = observations.latest(session, [i.id for i in indicators], subject_ids=[province])
    stored = {item["indicator"]: item for item in latest}
    computed = derived.province_values(session, [i for i in indicators if i.code not in stored], province)
    year = ctx.now.astimezone(LOCAL_TZ).year
    figures = []
    for indicator in indicators:
        value: float | None = None
        period = ""
        received: datetime | None = None
        if indicator.code in stored:
            item = stored[indicator.code]
            value, period = item["value"], format_period(item["period_type"], item["period"], ctx.lang)
            received = datetime.fromisoformat(item["received_at"])
        elif indicator.code in computed:
            found = computed[indicator.code]
            value, period = found.value, format_period(indicator.period_type, found.period, ctx.lang)
        status, target = status_of(indicator, value, year)
        limit = STALE_AFTER.get(indicator.period_type, timedelta(days=400))
        stale = value is None or (received is not None and ctx.now - received > limit)
        figures.append(
            Figure(
                indicator.code,
                _name(indicator, ctx.lang),
                value,
                _unit_symbol(indicator.unit, ctx.lang),
                period,
                status,
                target,
                received,
                stale,
            )
        )
    return figures


def _domain_indicators(ctx: Context, domain: Domain) -> list[Indicator]:
    rows, _ = catalog.list_indicators(ctx.session, ctx.principal, domain=domain.code, limit=500)
    return [row[0] for row in rows]


def _headline(figures: list[Figure], limit: int) -> list[Figure]:
    """The figures a board tile shows: with a value and a target first, then with a value, by catalog order."""
    order = {id(f): n for n, f in enumerate(figures)}
    ranked = sorted(figures, key=lambda f: (f.value is None, f.target is None, order[id(f)]))
    return ranked[:limit]


def _age(ctx: Context, moments: list[datetime]) -> datetime | None:
    return max(moments) if moments else None


def view_key(view: dict[str, Any]) -> str:
    return view_choice(view) if view["kind"] != "indicator" else f"indicator:{view.get('code', '')}"


def render_view(ctx: Context, view: dict[str, Any]) -> dict[str, Any]:
    """Everything a tile's partial shows for one view: a title, the figures, when updated, stale, critical."""
    kind = view["kind"]
    out: dict[str, Any] = {"kind": kind, "key": view_key(view), "updated_at": ctx.now, "stale": False}
    out["critical"] = False
    out["domains"] = []
    out["topics"] = ["alerts"]
    if kind == "board":
        _board(ctx, view, out)
    elif kind == "indicator":
        _indicator(ctx, view, out)
    elif kind == "alerts":
        _alerts(ctx, out)
    elif kind == "incidents":
        _incidents(ctx, out)
    elif kind == "reports":
        _reports(ctx, out)
    elif kind == "health":
        _health(ctx, out)
    elif kind == "map":
        _map(ctx, out)
    elif kind == "cameras":
        from cityops.cameras.service import wall_view

        out.update(wall_view(ctx.session, ctx.principal, ctx.lang))
    else:
        _overview(ctx, out)
    return out


def _board(ctx: Context, view: dict[str, Any], out: dict[str, Any]) -> None:
    domain = ctx.session.scalar(select(Domain).where(Domain.code == view.get("domain", "")))
    out["topics"] = ["values", "alerts"]
    if domain is None:
        out.update(title=view.get("domain", ""), figures=[], missing=True, stale=True, updated_at=None)
        return
    figures = _figures(ctx, _domain_indicators(ctx, domain))
    shown = _headline(figures, BOARD_ITEMS)
    moments = [f.received_at for f in figures if f.received_at is not None]
    out.update(
        title=_name(domain, ctx.lang),
        domains=[domain.code],
        figures=shown,
        counts=Counter(f.status for f in figures),
        total=len(figures),
        firing=len(ctx.firing_in(domain.code)),
        critical=domain.code in ctx.critical_domains(),
        updated_at=_age(ctx, moments),
        stale=not shown or all(f.stale for f in shown),
        link=f"/boards/{domain.code}",
    )


def _indicator(ctx: Context, view: dict[str, Any], out: dict[str, Any]) -> None:
    found = catalog.get_indicator(ctx.session, ctx.principal, str(view.get("code", "")))
    out["topics"] = ["values", "alerts"]
    if found is None:
        out.update(title=view.get("code", ""), figures=[], missing=True, stale=True, updated_at=None)
        return
    indicator, domain_code, _owner = found
    figures = _figures(ctx, [indicator])
    figure = figures[0] if figures else None
    history: list[float] = []
    province = ctx.session.scalar(select(Subject.id).where(Subject.kind == "province"))
    if province is not None:
        rows = ctx.session.execute(
            select(Observation.value)
            .where(
                Observation.indicator_id == indicator.id,
                Observation.subject_id == province,
                Observation.dims_key == "",
                Observation.value.is_not(None),
            )
            .order_by(Observation.period_start.desc())
            .limit(12)
        ).all()
        history = [float(row[0]) for row in reversed(rows) if row[0] is not None]
    out.update(
        title=_name(indicator, ctx.lang),
        domains=[domain_code],
        figures=[figure] if figure else [],
        spark=_sparkline(history),
        critical=domain_code in ctx.critical_domains(),
        updated_at=figure.received_at if figure else None,
        stale=figure is None or figure.stale,
    )


def _sparkline(values: list[float], width: int = 1600, height: int = 260) -> str:
    """An SVG polyline's points for the values (empty with fewer than two)."""
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / (len(values) - 1)
    return " ".join(
        f"{i * step:.0f},{height - (v - low) / span * (height - 20) - 10:.0f}" for i, v in enumerate(values)
    )


def _alerts(ctx: Context, out: dict[str, Any]) -> None:
    ranked = sorted(ctx.firing, key=lambda a: (SEVERITY_RANK.get(a.severity, 3), -a.started_at.timestamp()))
    out.update(
        title="",
        by_severity=Counter(a.severity for a in ctx.firing),
        total=len(ctx.firing),
        items=[
            {
                "title": a.title_vi if ctx.lang == "vi" else (a.title_en or a.title_vi),
                "severity": a.severity,
                "since": a.fired_at or a.started_at,
            }
            for a in ranked[:LIST_ITEMS]
        ],
        critical=any(a.severity == "critical" for a in ctx.firing),
    )


def _incidents(ctx: Context, out: dict[str, Any]) -> None:
    counts = incidents.counts_by_status(ctx.session, ctx.principal)
    overdue = incidents.board(ctx.session, ctx.principal, ctx.now, overdue=True, limit=LIST_ITEMS)
    overdue_total = len(incidents.board(ctx.session, ctx.principal, ctx.now, overdue=True))
    items = incidents.summaries(ctx.session, overdue, ctx.now, ctx.lang)
    if len(items) < LIST_ITEMS:
        soon = incidents.board(ctx.session, ctx.principal, ctx.now, open_only=True, overdue=False, limit=LIST_ITEMS)
        items += incidents.summaries(ctx.session, soon[: LIST_ITEMS - len(items)], ctx.now, ctx.lang)
    out.update(
        title="",
        topics=["incidents", "alerts"],
        open=sum(counts.get(s, 0) for s in OPEN_STATUSES),
        overdue=overdue_total,
        items=items,
    )


def _reports_today(ctx: Context) -> int:
    start = _local_midnight(ctx.now)
    return int(ctx.session.scalar(select(func.count(Report.id)).where(Report.requested_at >= start)) or 0)


def _reports(ctx: Context, out: dict[str, Any]) -> None:
    start = _local_midnight(ctx.now)
    session = ctx.session
    by_category = session.execute(
        select(FeedbackCategory.name_vi, FeedbackCategory.name_en, func.count(Report.id))
        .join(FeedbackCategory, FeedbackCategory.id == Report.category_id)
        .where(Report.requested_at >= start)
        .group_by(FeedbackCategory.name_vi, FeedbackCategory.name_en)
        .order_by(func.count(Report.id).desc(), FeedbackCategory.name_vi)
        .limit(3)
    ).all()
    latest = session.execute(
        select(Report.requested_at, FeedbackCategory.name_vi, FeedbackCategory.name_en, Subject.name_vi)
        .join(FeedbackCategory, FeedbackCategory.id == Report.category_id)
        .outerjoin(Subject, Subject.id == Report.subject_id)
        .order_by(Report.requested_at.desc(), Report.id.desc())
        .limit(4)
    ).all()
    english = ctx.lang == "en"
    out.update(
        title="",
        domains=["pakn"],
        topics=["reports", "alerts"],
        today=_reports_today(ctx),
        open=int(session.scalar(select(func.count(Report.id)).where(Report.status == "open")) or 0),
        categories=[{"name": (en or vi) if english else vi, "count": n} for vi, en, n in by_category],
        items=[
            {"at": at, "category": (en or vi) if english else vi, "commune": commune or ""}
            for at, vi, en, commune in latest
        ],
        critical="pakn" in ctx.critical_domains(),
    )


def _health(ctx: Context, out: dict[str, Any]) -> None:
    session = ctx.session
    late = int(session.scalar(select(func.count(FeedExpectation.id)).where(FeedExpectation.state == LATE)) or 0)
    late_feeds = int(
        session.scalar(select(func.count(func.distinct(FeedExpectation.feed_id))).where(FeedExpectation.state == LATE))
        or 0
    )
    since = ctx.now - timedelta(hours=24)
    runs = dict(
        session.execute(
            select(FeedRun.status, func.count(FeedRun.id)).where(FeedRun.started_at >= since).group_by(FeedRun.status)
        ).all()
    )
    from cityops.feeds.models import Feed

    feeds = int(session.scalar(select(func.count(Feed.id))) or 0)
    feed_alerts = [a for a in ctx.firing if a.feed_id is not None]
    out.update(
        title="",
        topics=["values", "alerts"],
        feeds=feeds,
        late=late,
        late_feeds=late_feeds,
        runs_ok=int(runs.get("ok", 0)),
        runs_failed=int(runs.get("failed", 0)) + int(runs.get("partial", 0)),
        feed_alerts=len(feed_alerts),
    )


def _overview(ctx: Context, out: dict[str, Any]) -> None:
    session = ctx.session
    domains = list(session.scalars(select(Domain).order_by(Domain.sort_order, Domain.code)))
    rows, _ = catalog.list_indicators(session, ctx.principal, limit=1000)
    figures = {f.code: f for f in _figures(ctx, [row[0] for row in rows])}
    per_domain: dict[str, Counter[str]] = {}
    for indicator, domain_code, _owner in rows:
        per_domain.setdefault(domain_code, Counter())[figures[indicator.code].status] += 1
    critical = ctx.critical_domains()
    counts = incidents.counts_by_status(session, ctx.principal)
    out.update(
        title="",
        topics=["values", "alerts", "incidents", "reports"],
        domains_rows=[
            {
                "code": d.code,
                "name": _name(d, ctx.lang),
                "counts": per_domain.get(d.code, Counter()),
                "firing": len(ctx.firing_in(d.code)),
                "critical": d.code in critical,
            }
            for d in domains
        ],
        alerts=len(ctx.firing),
        open=sum(counts.get(s, 0) for s in OPEN_STATUSES),
        overdue=len(incidents.board(session, ctx.principal, ctx.now, overdue=True)),
        reports_today=_reports_today(ctx),
    )


def _map(ctx: Context, out: dict[str, Any]) -> None:
    """An SVG of the province: its boundary, open incidents, today's citizen reports, communes with firing alerts."""
    session = ctx.session
    geometry = province_geometry(ctx.province_code) or {}
    rings: list[list[list[float]]] = []
    if geometry.get("type") == "Polygon":
        rings = [geometry["coordinates"][0]]
    elif geometry.get("type") == "MultiPolygon":
        rings = [polygon[0] for polygon in geometry["coordinates"]]
    points = [pt for ring in rings for pt in ring]
    out.update(title="", topics=["incidents", "reports", "alerts"], paths=[], incidents=[], reports=[], alerted=[])
    if not points:
        return
    west, east = min(p[0] for p in points), max(p[0] for p in points)
    south, north = min(p[1] for p in points), max(p[1] for p in points)
    mid = math.cos(math.radians((south + north) / 2))
    width, height = 1800.0, 860.0
    scale = min(width / ((east - west) * mid or 1), height / ((north - south) or 1))

    def xy(lon: float, lat: float) -> tuple[float, float]:
        return (round((lon - west) * mid * scale, 1), round((north - lat) * scale, 1))

    out["paths"] = [
        "M" + " L".join(f"{x},{y}" for x, y in (xy(p[0], p[1]) for p in ring[:: max(1, len(ring) // 600)])) + " Z"
        for ring in rings
    ]
    open_incidents = incidents.board(session, ctx.principal, ctx.now, open_only=True)
    out["incidents"] = [
        (*xy(i.longitude, i.latitude), incidents.is_overdue(i, ctx.now))
        for i in open_incidents
        if i.latitude is not None and i.longitude is not None
    ]
    start = _local_midnight(ctx.now)
    reports = session.execute(
        select(Report.public_latitude, Report.public_longitude).where(
            Report.requested_at >= start, Report.public_latitude.is_not(None), Report.public_longitude.is_not(None)
        )
    ).all()
    out["reports"] = [xy(lon, lat) for lat, lon in reports if lat is not None and lon is not None]
    subject_ids = {a.subject_id for a in ctx.firing if a.subject_id is not None}
    alerted = session.execute(
        select(Subject.latitude, Subject.longitude).where(
            Subject.id.in_(sorted(subject_ids) or [0]), Subject.latitude.is_not(None)
        )
    ).all()
    out["alerted"] = [xy(lon, lat) for lat, lon in alerted if lat is not None and lon is not None]
    out["size"] = (width, height)
