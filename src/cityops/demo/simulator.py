"""The simulator: plays each agency of the province, sending realistic values through the real API.

Each agency owns some indicators (the catalog says which); the simulator holds one API key per agency and
posts batches to POST /api/v1/observations exactly as an agency system would. Values follow the typical
magnitudes in data/magnitudes.toml, with seasons, noise, commune shares and month-to-date growth.
"""

from __future__ import annotations

import hashlib
import math
import random
import tomllib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from cityops.clock import LOCAL_TZ
from cityops.observations.periods import Period, parse_period, period_of

MAGNITUDES_FILE = Path(__file__).parent / "data" / "magnitudes.toml"
NON_INTEGER_UNITS = frozenset({"percent", "percent_change", "ty_dong", "trieu_usd", "chi_so"})
BACKFILL = {"month": 12, "quarter": 6, "year": 3, "school_year": 3, "day": 14, "instant": 1}
BATCH_SIZE = 2000


@dataclass(frozen=True)
class IndicatorPlan:
    """What the simulator needs to know of one indicator."""

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


@dataclass(frozen=True)
class Magnitude:
    value: float = 0.0
    share_of: str = ""
    share: float = 1.0
    noise: float = 0.05
    season: str = ""


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


@dataclass
class Simulator:
    """Generates and sends the values of every agency."""

    base_url: str
    keys: dict[str, str]
    plans: list[IndicatorPlan]
    province: str
    communes: list[str]
    clock: Callable[[], datetime]
    magnitudes: dict[str, Magnitude] = field(default_factory=load_magnitudes)
    rng: random.Random = field(default_factory=random.Random)
    sent: int = 0
    rejected: int = 0
    ticks: int = 0

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
        result[self.province] = sum(result.values()) if plan.aggregation in ("sum", "last") else total
        return result

    # --- sending --------------------------------------------------------------------------------------

    def _items(
        self, plan: IndicatorPlan, period: Period, now: datetime, communes: bool, live: float
    ) -> Iterable[dict[str, Any]]:
        key = period.key if period.type != "instant" else now.astimezone(LOCAL_TZ).isoformat(timespec="seconds")
        for subject, value in self.values(plan, period, now, communes=communes, live=live).items():
            if plan.max_value is not None:
                value = min(value, plan.max_value)
            yield {
                "indicator": plan.code,
                "subject": subject,
                "period": key,
                "value": value,
                "source_ref": f"demo:{plan.owner}",
            }

    def _send(self, items_by_agency: dict[str, list[dict[str, Any]]]) -> int:
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

    def backfill(self) -> int:
        """Send the recent past of every indicator: a year of months, quarters, years, two weeks of days."""
        now = self.clock()
        items: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for plan in self.plans:
            for period in _recent_periods(plan.period_type, now, BACKFILL[plan.period_type]):
                items[plan.owner].extend(self._items(plan, period, now, communes=True, live=0.0))
        return self._send(items)

    def tick(self) -> int:
        """Send the current period: province figures every round, commune figures every fifth round."""
        now = self.clock()
        communes = self.ticks % 5 == 0
        self.ticks += 1
        live = self.rng.gauss(0, 0.3)
        items: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for plan in self.plans:
            period = period_of(plan.period_type, now)
            items[plan.owner].extend(self._items(plan, period, now, communes=communes, live=live))
        return self._send(items)


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
