"""The simulator: plays each agency of the province, sending realistic values the way each agency's system would.

Each agency owns some indicators (the catalog says which) and supplies them through a feed (cityops.demo.feeds
says which kind): most push batches to POST /api/v1/observations with the agency's key; the public-service centre's
figures wait on a simulated iGate / LGSP endpoint for an http_pull feed to fetch; the manual subsystems
(socio-economic, tourism) fill in their feed's spreadsheet template and upload it; the camera recorders publish
on MQTT when a broker is there. Values follow the typical magnitudes in data/magnitudes.toml, with seasons, noise,
commune shares and month-to-date growth; a part (on-time dossiers) never exceeds its whole (dossiers resolved).
One feed may be kept silent from a moment on: the agency that is always late.
"""

from __future__ import annotations

import hashlib
import math
import random
import tomllib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from cityops.clock import LOCAL_TZ
from cityops.connectors.spreadsheet.template import period_label
from cityops.demo import lgsp as lgsp_format
from cityops.demo.lgsp import LgspEndpoint
from cityops.demo.sensors import CameraSensors
from cityops.demo.uploads import Report, upload_reports
from cityops.observations.periods import Period, parse_period, period_of

MAGNITUDES_FILE = Path(__file__).parent / "data" / "magnitudes.toml"
NON_INTEGER_UNITS = frozenset({"percent", "percent_change", "ty_dong", "trieu_usd", "chi_so"})
BACKFILL = {"month": 12, "quarter": 6, "year": 3, "school_year": 3, "day": 14, "instant": 1}
BATCH_SIZE = 2000
COMMUNE_ROUNDS = 5  # pushed and published commune figures every fifth round (province figures every round)
UPLOAD_ROUNDS = 5  # spreadsheets uploaded every fifth round


@dataclass(frozen=True)
class IndicatorPlan:
    """What the simulator needs to know of one indicator, and how it travels."""

    code: str
    owner: str
    period_type: str
    aggregation: str
    subject_level: str
    unit: str
    numerator: str = ""
    denominator: str = ""
    min_value: float | None = None
    max_value: float | None = None
    feed: str = ""  # the feed that carries it ("" = the key's first feed that may)
    kind: str = "push"  # push, http_pull (through the LGSP endpoint), spreadsheet or mqtt


@dataclass(frozen=True)
class Magnitude:
    value: float = 0.0
    share_of: str = ""
    share: float = 1.0
    noise: float = 0.05
    season: str = ""


@dataclass(frozen=True)
class Cell:
    """One value the simulator produced: an indicator's, for a subject and a period."""

    plan: IndicatorPlan
    period: Period
    subject: str
    value: float


@dataclass
class Round:
    """What one round sent: values accepted by the API (pushed or uploaded), records and messages published."""

    pushed: int = 0
    uploaded: int = 0
    uploads: int = 0
    lgsp_records: int = 0
    mqtt_messages: int = 0

    @property
    def accepted(self) -> int:
        return self.pushed + self.uploaded


def load_magnitudes(path: Path = MAGNITUDES_FILE) -> dict[str, Magnitude]:
    """The typical values of the demo, by indicator code."""
    with path.open("rb") as handle:
        raw = tomllib.load(handle)["values"]
    return {code: Magnitude(**spec) for code, spec in raw.items()}


def _unit_normal(*parts: object) -> float:
    """A standard-normal number fixed by its parts, so a past period always gets the same value."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    first = (int.from_bytes(digest[:8], "big") + 1) / (2**64 + 1)
    second = int.from_bytes(digest[8:16], "big") / 2**64
    return math.sqrt(-2 * math.log(first)) * math.cos(2 * math.pi * second)


def _season(kind: str, period: Period) -> float:
    month = period.start.astimezone(LOCAL_TZ).month if period.type != "year" else 7
    if kind == "summer":
        return {5: 1.5, 6: 1.9, 7: 2.0, 8: 1.6, 9: 0.9}.get(month, 0.6)
    if kind == "tet":
        return 0.7 if month in (1, 2) else 1.0
    return 1.0


def _plain(value: float) -> float | int:
    """A whole number as an int (512, not 512.0), as agency systems write counts."""
    return int(value) if float(value).is_integer() else value


@dataclass
class Simulator:
    """Generates the values of every agency and sends each the way its feed receives it."""

    base_url: str
    keys: dict[str, str]
    plans: list[IndicatorPlan]
    province: str
    communes: list[str]
    clock: Callable[[], datetime]
    magnitudes: dict[str, Magnitude] = field(default_factory=load_magnitudes)
    rng: random.Random = field(default_factory=random.Random)
    lgsp: LgspEndpoint | None = None
    sensors: CameraSensors | None = None
    # Feed code → the start from which its periods are never sent (the agency that is always late).
    silent_since: dict[str, datetime] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # subject names, for the LGSP records
    sent: int = 0
    rejected: int = 0
    ticks: int = 0
    primed: bool = False
    primed_records: int = 0

    def __post_init__(self) -> None:
        self.by_code = {plan.code: plan for plan in self.plans}
        weights = [0.3 + abs(_unit_normal("weight", code)) for code in self.communes]
        total = sum(weights)
        self.weights = {code: weight / total for code, weight in zip(self.communes, weights, strict=True)}
        self._http = httpx.Client(base_url=self.base_url, timeout=60)

    def close(self) -> None:
        self._http.close()

    # --- values ---------------------------------------------------------------------------------------

    def _province_value(self, code: str, period: Period, live: float) -> float:
        spec = self.magnitudes.get(code)
        if spec is None:
            return 0.0
        noise = spec.noise * (_unit_normal(code, period.key) + live)
        if spec.share_of:
            parent = self._province_value(spec.share_of, period, live)
            return max(0.0, parent * min(1.0, spec.share * (1 + noise)))
        return max(0.0, spec.value * _season(spec.season, period) * (1 + noise))

    def _fraction_elapsed(self, plan: IndicatorPlan, period: Period, now: datetime) -> float:
        # A period still under way reports its value to date (month-to-date grows during the month).
        if plan.aggregation != "sum" or period.type == "instant" or now >= period.end:
            return 1.0
        span = (period.end - period.start).total_seconds()
        return max(0.02, (now - period.start).total_seconds() / span)

    def _whole_of(self, plan: IndicatorPlan) -> IndicatorPlan | None:
        """The commune-level indicator this one is a part of (on-time dossiers of dossiers resolved), if any."""
        spec = self.magnitudes.get(plan.code)
        whole = self.by_code.get(spec.share_of) if spec is not None and spec.share_of else None
        return whole if whole is not None and whole.subject_level == "commune" else None

    def values(
        self, plan: IndicatorPlan, period: Period, now: datetime, *, communes: bool, live: float = 0.0
    ) -> dict[str, float]:
        """The values of one indicator for one period: province, and communes when asked and meaningful."""
        if plan.aggregation == "ratio":
            numerators = self.values(self.by_code[plan.numerator], period, now, communes=communes, live=live)
            denominators = self.values(self.by_code[plan.denominator], period, now, communes=communes, live=live)
            result = {}
            for subject, denominator in denominators.items():
                if denominator > 0 and subject in numerators:
                    result[subject] = round(min(100.0, 100 * numerators[subject] / denominator), 2)
            return result
        if plan.code not in self.magnitudes:
            return {}
        total = self._province_value(plan.code, period, live) * self._fraction_elapsed(plan, period, now)
        integer = plan.unit not in NON_INTEGER_UNITS
        if not (communes and plan.subject_level == "commune"):
            return {self.province: round(total) if integer else round(total, 2)}
        shares = {
            code: weight * max(0.0, 1 + 0.1 * _unit_normal(plan.code, period.key, code))
            for code, weight in self.weights.items()
        }
        if integer:
            result = _apportion(round(total), shares)
        else:
            scale = total / (sum(shares.values()) or 1)
            result = {code: round(share * scale, 2) for code, share in shares.items()}
        whole = self._whole_of(plan)
        if whole is not None:
            # Shares are drawn apart for each indicator: a commune's part must still not exceed its whole.
            wholes = self.values(whole, period, now, communes=True, live=live)
            result = {code: min(value, wholes.get(code, value)) for code, value in result.items()}
        result[self.province] = sum(result.values()) if plan.aggregation in ("sum", "last") else total
        return result

    def _cells(
        self,
        plans: Iterable[IndicatorPlan],
        periods_of: Callable[[IndicatorPlan], list[Period]],
        now: datetime,
        *,
        communes: bool,
        live: float,
    ) -> Iterator[Cell]:
        for plan in plans:
            silent_from = self.silent_since.get(plan.feed)
            for period in periods_of(plan):
                if silent_from is not None and period.start >= silent_from:
                    continue
                for subject, value in self.values(plan, period, now, communes=communes, live=live).items():
                    if plan.max_value is not None:
                        value = min(value, plan.max_value)
                    yield Cell(plan, period, subject, value)

    def _of_kind(self, kind: str) -> list[IndicatorPlan]:
        return [plan for plan in self.plans if plan.kind == kind]

    # --- one round ------------------------------------------------------------------------------------

    def prime(self) -> int:
        """Put the recent past on the LGSP endpoint (before the first pull); returns how many records."""
        self.primed = True
        if self.lgsp is None:
            return 0
        now = self.clock()
        self.primed_records = self._publish_lgsp(
            self._cells(self._of_kind("http_pull"), _backfill_periods(now), now, communes=True, live=0.0), now
        )
        return self.primed_records

    def backfill(self) -> Round:
        """Send the recent past of every indicator: a year of months, quarters, years, two weeks of days."""
        now = self.clock()
        result = Round()
        if not self.primed:
            self.prime()
        result.lgsp_records = self.primed_records
        periods = _backfill_periods(now)
        result.pushed = self._push(self._cells(self._of_kind("push"), periods, now, communes=True, live=0.0), now)
        self._upload(periods, now, live=0.0, result=result)
        result.mqtt_messages = self._publish_mqtt(now, live=0.0)
        return result

    def tick(self) -> Round:
        """Send the current period: province figures every round, commune figures every fifth round,
        spreadsheets every fifth round, camera readings every round."""
        now = self.clock()
        communes = self.ticks % COMMUNE_ROUNDS == 0
        uploads = self.ticks % UPLOAD_ROUNDS == UPLOAD_ROUNDS - 1
        self.ticks += 1
        live = self.rng.gauss(0, 0.3)
        result = Round()
        current = _current_periods(now)
        result.pushed = self._push(self._cells(self._of_kind("push"), current, now, communes=communes, live=live), now)
        if self.lgsp is not None:
            cells = self._cells(self._of_kind("http_pull"), current, now, communes=communes, live=live)
            result.lgsp_records = self._publish_lgsp(cells, now)
        if uploads:
            self._upload(current, now, live=live, result=result)
        result.mqtt_messages = self._publish_mqtt(now, live=live)
        return result

    # --- how each kind travels ------------------------------------------------------------------------

    def _push(self, cells: Iterable[Cell], now: datetime) -> int:
        """POST /api/v1/observations with each agency's key, in batches."""
        items_by_agency: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for cell in cells:
            period = (
                cell.period.key
                if cell.period.type != "instant"
                else now.astimezone(LOCAL_TZ).isoformat(timespec="seconds")
            )
            item: dict[str, Any] = {
                "indicator": cell.plan.code,
                "subject": cell.subject,
                "period": period,
                "value": cell.value,
                "source_ref": f"demo:{cell.plan.owner}",
            }
            if cell.plan.feed:
                item["feed"] = cell.plan.feed
            items_by_agency[cell.plan.owner].append(item)
        accepted = 0
        for agency, items in items_by_agency.items():
            key = self.keys.get(agency)
            if key is None:
                continue
            for start in range(0, len(items), BATCH_SIZE):
                answer = self._http.post(
                    "/api/v1/observations",
                    json={"observations": items[start : start + BATCH_SIZE]},
                    headers={"Authorization": f"Bearer {key}"},
                )
                answer.raise_for_status()
                body = answer.json()
                accepted += body["accepted"]
                self.rejected += body["rejected_count"]
        self.sent += accepted
        return accepted

    def _publish_lgsp(self, cells: Iterable[Cell], now: datetime) -> int:
        """Each unit's figures of a period as one record of the LGSP endpoint (a missing rate as null)."""
        assert self.lgsp is not None
        fields: dict[str, list[str]] = defaultdict(list)  # period type → every indicator's field
        records: dict[tuple[str, str, str], dict[str, Any]] = {}
        for cell in cells:
            resource = lgsp_format.RESOURCES[cell.period.type]
            text = lgsp_format.period_text(cell.period, now)
            record = records.setdefault(
                (cell.period.type, text, cell.subject),
                {"maDonVi": cell.subject, "tenDonVi": self.names.get(cell.subject, ""), resource.period_field: text},
            )
            record[lgsp_format.field_name(cell.plan.code)] = _plain(cell.value)
        for plan in self._of_kind("http_pull"):
            fields[plan.period_type].append(lgsp_format.field_name(plan.code))
        published = 0
        by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for (period_type, _text, _subject), record in records.items():
            by_type[period_type].append({name: None for name in fields[period_type]} | record)
        for period_type, batch in by_type.items():
            published += self.lgsp.publish(period_type, batch)
        return published

    def _upload(
        self, periods_of: Callable[[IndicatorPlan], list[Period]], now: datetime, *, live: float, result: Round
    ) -> None:
        """Each spreadsheet feed's template, filled in for its periods, uploaded and committed with the agency's key."""
        by_feed: dict[str, list[IndicatorPlan]] = defaultdict(list)
        for plan in self._of_kind("spreadsheet"):
            by_feed[plan.feed].append(plan)
        for feed, plans in sorted(by_feed.items()):
            key = self.keys.get(plans[0].owner)
            if key is None:
                continue
            reports: dict[str, dict[str, dict[str, float]]] = {}
            first_period = ""
            for cell in self._cells(plans, periods_of, now, communes=True, live=live):
                if cell.period.type == "instant":
                    label = now.astimezone(LOCAL_TZ).strftime("%d/%m/%Y %H:%M")
                else:
                    label = period_label(cell.period.key)
                    first_period = first_period or cell.period.key
                reports.setdefault(label, {}).setdefault(cell.subject, {})[cell.plan.code] = cell.value
            if not reports:
                continue
            ordered: list[Report] = list(reports.items())
            uploaded = upload_reports(self._http, key, feed, ordered, template_period=first_period)
            result.uploads += 1
            result.uploaded += uploaded.accepted
            self.rejected += uploaded.errors
        self.sent += result.uploaded

    def _publish_mqtt(self, now: datetime, *, live: float) -> int:
        """Each commune's camera recorder publishes its readings."""
        if self.sensors is None:
            return 0
        readings: dict[str, dict[str, float]] = defaultdict(dict)
        for cell in self._cells(self._of_kind("mqtt"), _current_periods(now), now, communes=True, live=live):
            if cell.subject != self.province:
                readings[cell.subject][cell.plan.code] = _plain(cell.value)
        return self.sensors.publish(now, readings)


def _current_periods(now: datetime) -> Callable[[IndicatorPlan], list[Period]]:
    def periods(plan: IndicatorPlan) -> list[Period]:
        return [period_of(plan.period_type, now)]

    return periods


def _backfill_periods(now: datetime) -> Callable[[IndicatorPlan], list[Period]]:
    def periods(plan: IndicatorPlan) -> list[Period]:
        return _recent_periods(plan.period_type, now, BACKFILL[plan.period_type])

    return periods


def _apportion(total: int, shares: dict[str, float]) -> dict[str, float]:
    """Split a whole number over communes by their shares so that the parts are whole and add up to it.

    Largest remainder: small totals (19 cameras over 130 communes) go to the communes with the largest shares
    instead of rounding to zero everywhere.
    """
    whole = sum(shares.values()) or 1
    exact = {code: total * share / whole for code, share in shares.items()}
    parts = {code: int(value) for code, value in exact.items()}
    left = total - sum(parts.values())
    for code in sorted(exact, key=lambda code: exact[code] - parts[code], reverse=True)[:left]:
        parts[code] += 1
    return {code: float(value) for code, value in parts.items()}


def _recent_periods(period_type: str, now: datetime, count: int) -> list[Period]:
    periods: list[Period] = []
    moment = now
    while len(periods) < count:
        period = period_of(period_type, moment)
        if not periods or period.key != periods[-1].key:
            periods.append(period)
        moment = period.start - timedelta(seconds=1) if period.type != "instant" else moment
        if period.type == "instant":
            break
    return [parse_period(period.key) if period.type != "instant" else period for period in reversed(periods)]
