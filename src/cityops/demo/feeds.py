"""The demo's feeds: which agency sends what, by which connector kind, on which schedule — and one always late.

Every indicator-owning agency gets one feed per period type (a feed has one cadence), split by coverage when it
has both commune-level and province-level indicators of that type. The kind follows how such data really travels:

- the public-service centre's iGate statistics are pulled from the (simulated) LGSP endpoint: http_pull;
- the manual subsystems — socio-economic (ktxh) and tourism (dulich) — are reported in spreadsheets;
- the cameras' online counts come from the recorders over MQTT, when a broker is there (else they are pushed);
- everything else is pushed through the data-sharing API with the agency's key.

One feed is late on purpose: the CDC's daily disease reports (trung_tam_kiem_soat_benh_tat, under the Department of
Health, so the `soyte` demo officer sees it too). Its agreement is dated a few days back, and the simulator never
sends its current day nor the two before, so the lateness alert fires and the Data health page has something real
to show. Every other feed is created "now": no past period is owed, and the simulator delivers on time.

The citizen-feedback indicators (pakn.*) have no demo feed: `simulated()` leaves them out, since cityops computes
them from the reports the demo's citizens file (cityops.demo.reports, cityops.feedback.stats).

Provisioning is idempotent: a second `cityops demo` reuses the feeds, changes what differs (audited) and pauses the
demo feeds no longer used (the `demo_<agency>` feeds of older demos, the MQTT feed without a broker). The simulated
agencies stop when the demo stops, so periods that came due meanwhile are excused: each on-time feed is paused,
its overdue periods dropped by the planner (as for any paused feed), and resumed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityops.accounts.models import Agency
from cityops.accounts.service import Actor
from cityops.demo.simulator import IndicatorPlan
from cityops.feeds import lateness
from cityops.feeds.cadence import parse_cadence
from cityops.feeds.models import Feed
from cityops.feeds.service import create_feed, feed_indicator_codes, update_feed, validate_settings

PREFIX = "demo_"
# Computed by cityops itself from the citizens' reports the demo files (cityops.feedback.stats): never simulated.
FROM_REPORTS = ("pakn.",)
HTTP_PULL_AGENCIES = frozenset({"trung_tam_phuc_vu_hcc"})  # its iGate statistics, through the LGSP
SPREADSHEET_DOMAINS = ("ktxh.", "dulich.")  # the manual subsystems
MQTT_INDICATORS = frozenset({"antt.camera", "antt.camera_truc_tuyen"})  # counted by the camera recorders
LATE_AGENCY, LATE_PERIOD_TYPE = "trung_tam_kiem_soat_benh_tat", "day"
LATE_SINCE_DAYS = 4  # the late feed's agreement is dated this many days back
SILENT_PERIODS = 3  # the late feed never sends its current period and the ones before it, this many in all
# A cadence and grace (minutes) that fit each period type.
SCHEDULES = {
    "day": ("daily by 17:00", 60),
    "month": ("monthly by day 5", 2 * 1440),
    "quarter": ("quarterly by day 10", 5 * 1440),
    "year": ("yearly by 31/01", 15 * 1440),
    "school_year": ("each school year by 30 September", 15 * 1440),
}
# Slots of an interval cadence that divide a day (minutes): values "now" are expected in every slot.
INSTANT_SLOTS = (5, 10, 15, 20, 30, 60, 120, 180, 240, 360, 720, 1440)
# Rounds between two deliveries of a subject's value "now" (commune figures every fifth round, uploads too), and
# how many deliveries a slot should hold at least.
ROUNDS_BETWEEN = 5
DELIVERIES_PER_SLOT = 3
SUFFIX = {"push": "", "http_pull": "_lgsp", "spreadsheet": "_xlsx", "mqtt": "_mqtt"}
KIND_WORDS = {
    "push": "API gửi dữ liệu",
    "http_pull": "lấy từ LGSP/iGate",
    "spreadsheet": "biểu mẫu Excel",
    "mqtt": "cảm biến MQTT",
}
PERIOD_WORDS = {
    "instant": "hiện trạng",
    "day": "hằng ngày",
    "month": "hằng tháng",
    "quarter": "hằng quý",
    "year": "hằng năm",
    "school_year": "năm học",
}


@dataclass(frozen=True)
class FeedPlan:
    """One feed the demo needs."""

    code: str
    agency: str
    kind: str
    period_type: str
    coverage: str  # communes or province
    indicators: tuple[str, ...]
    cadence: str
    grace_minutes: int
    poll_seconds: int = 0  # http_pull: how often it pulls
    late: bool = False

    def silent_since(self, now: datetime) -> datetime | None:
        """For the late feed: the start of the first period it never sends (its current one and those before)."""
        if not self.late:
            return None
        current = parse_cadence(self.cadence).slot(now)
        return current.start - timedelta(days=SILENT_PERIODS - 1)


def simulated(indicators: Sequence[IndicatorPlan]) -> list[IndicatorPlan]:
    """The indicators the simulator supplies: all but those computed from the citizens' reports."""
    return [indicator for indicator in indicators if not indicator.code.startswith(FROM_REPORTS)]


def kind_of(indicator: IndicatorPlan, *, mqtt: bool) -> str:
    """How an indicator travels in the demo."""
    if indicator.owner in HTTP_PULL_AGENCIES:
        return "http_pull"
    if indicator.code.startswith(SPREADSHEET_DOMAINS):
        return "spreadsheet"
    if mqtt and indicator.code in MQTT_INDICATORS:
        return "mqtt"
    return "push"


def instant_schedule(interval: float) -> tuple[str, int]:
    """The cadence and grace of a feed of values "now": the shortest slot that holds a few deliveries."""
    needed = max(5.0, DELIVERIES_PER_SLOT * ROUNDS_BETWEEN * interval / 60)
    minutes = next((slot for slot in INSTANT_SLOTS if slot >= needed), INSTANT_SLOTS[-1])
    if minutes % 60 == 0:
        return f"every {minutes // 60} hour{'s' if minutes > 60 else ''}", minutes
    return f"every {minutes} minutes", minutes


def poll_seconds(interval: float) -> int:
    """How often an http_pull feed pulls: about once a simulator round."""
    return max(1, math.ceil(interval))


def plan_feeds(indicators: Sequence[IndicatorPlan], *, interval: float, mqtt: bool) -> list[FeedPlan]:
    """The feeds the demo needs for these indicators, by code."""
    groups: dict[tuple[str, str, str], list[IndicatorPlan]] = defaultdict(list)
    for indicator in indicators:
        groups[(indicator.owner, kind_of(indicator, mqtt=mqtt), indicator.period_type)].append(indicator)
    plans: list[FeedPlan] = []
    for (agency, kind, period_type), members in groups.items():
        by_coverage: dict[str, list[str]] = defaultdict(list)
        for indicator in members:
            by_coverage["communes" if indicator.subject_level == "commune" else "province"].append(indicator.code)
        if period_type == "instant":
            cadence, grace = instant_schedule(interval)
        else:
            cadence, grace = SCHEDULES[period_type]
        for coverage, codes in by_coverage.items():
            split = f"_{coverage}" if len(by_coverage) > 1 else ""
            plans.append(
                FeedPlan(
                    code=f"{PREFIX}{agency}_{period_type}{split}{SUFFIX[kind]}",
                    agency=agency,
                    kind=kind,
                    period_type=period_type,
                    coverage=coverage,
                    indicators=tuple(sorted(codes)),
                    cadence=cadence,
                    grace_minutes=grace,
                    poll_seconds=poll_seconds(interval) if kind == "http_pull" else 0,
                    late=(agency, period_type, kind) == (LATE_AGENCY, LATE_PERIOD_TYPE, "push"),
                )
            )
    return sorted(plans, key=lambda plan: plan.code)


def with_feeds(indicators: Sequence[IndicatorPlan], feeds: Sequence[FeedPlan]) -> list[IndicatorPlan]:
    """The indicators, each with the feed that carries it and how it travels."""
    carrier = {code: feed for feed in feeds for code in feed.indicators}
    return [
        replace(indicator, feed=carrier[indicator.code].code, kind=carrier[indicator.code].kind)
        if indicator.code in carrier
        else indicator
        for indicator in indicators
    ]


# --- provisioning ----------------------------------------------------------------------------------


def _name(plan: FeedPlan, agency_names: dict[str, str]) -> str:
    agency = agency_names.get(plan.agency, plan.agency)
    return f"{agency} — {KIND_WORDS[plan.kind]} ({PERIOD_WORDS[plan.period_type]})"[:255]


def _description(plan: FeedPlan) -> str:
    if plan.late:
        return (
            "Nguồn trình diễn cố ý trễ hạn: bộ mô phỏng không gửi số liệu của hôm nay và hai ngày trước. / "
            "Demo feed late on purpose: the simulator never sends today's figures nor the two days before."
        )
    return "Nguồn dữ liệu của bộ mô phỏng (cityops demo). / A feed of the demo simulator."


def _changes(session: Session, feed: Feed, plan: FeedPlan, wanted: dict[str, Any]) -> dict[str, Any]:
    """What differs between a feed and what the demo wants of it (settings with secrets: always given)."""
    changes: dict[str, Any] = {}
    for name in ("name", "description", "grace_minutes", "coverage", "poll_seconds"):
        if getattr(feed, name) != wanted[name]:
            changes[name] = wanted[name]
    if feed.cadence != parse_cadence(plan.cadence).text:
        changes["cadence"] = plan.cadence
    if set(feed_indicator_codes(session, feed.id)) != set(plan.indicators):
        changes["indicator_codes"] = list(plan.indicators)
    settings = wanted["settings"]
    _model, plain, secrets = validate_settings(plan.kind, settings)
    if secrets or plain != (feed.settings or {}):  # a secret cannot be compared: given again
        changes["settings"] = settings
    return changes


def provision_feeds(
    session: Session,
    actor: Actor,
    now: datetime,
    plans: Sequence[FeedPlan],
    settings_of: Callable[[FeedPlan], dict[str, Any]],
    secret_key: str,
) -> dict[str, Feed]:
    """Create the planned feeds, or bring existing ones in line (excusing the time the demo was stopped); pause the
    demo feeds not planned. Returns the planned feeds by code."""
    agency_names = dict(session.execute(select(Agency.code, Agency.name_vi)).all())
    existing = {
        feed.code: feed for feed in session.scalars(select(Feed).where(Feed.code.startswith(PREFIX, autoescape=True)))
    }
    feeds: dict[str, Feed] = {}
    for plan in plans:
        wanted: dict[str, Any] = {
            "name": _name(plan, agency_names),
            "description": _description(plan),
            "grace_minutes": plan.grace_minutes,
            "coverage": plan.coverage,
            "poll_seconds": plan.poll_seconds,
            "settings": settings_of(plan),
        }
        feed = existing.get(plan.code)
        if feed is None:
            feed = create_feed(
                session,
                actor,
                now,
                code=plan.code,
                agency_code=plan.agency,
                indicator_codes=list(plan.indicators),
                kind=plan.kind,
                cadence=plan.cadence,
                secret_key=secret_key,
                **wanted,
            )
            if plan.late:
                # The agreement dates from a few days back, so the periods since are owed (and are late).
                feed.created_at = feed.updated_at = now - timedelta(days=LATE_SINCE_DAYS)
        else:
            changes = _changes(session, feed, plan, wanted)
            if not plan.late:
                _excuse_downtime(session, actor, now, feed, secret_key)
                changes["paused"] = False
            if changes:
                update_feed(session, actor, now, plan.code, changes, secret_key=secret_key)
        feeds[plan.code] = feed
    for code, feed in sorted(existing.items()):
        if code not in feeds and not feed.paused:
            update_feed(session, actor, now, code, {"paused": True}, secret_key=secret_key)
    session.flush()
    return feeds


def _excuse_downtime(session: Session, actor: Actor, now: datetime, feed: Feed, secret_key: str) -> None:
    """Pause the feed (if running), let the planner drop its periods owed while the demo was stopped, as it does for
    any paused feed; the caller resumes it."""
    if not feed.paused:
        update_feed(session, actor, now, feed.code, {"paused": True}, secret_key=secret_key)
    lateness.plan(session, now, [feed.id])
