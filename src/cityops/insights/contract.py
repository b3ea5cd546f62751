"""What `cityops.insights` answers, shared by the boards, the brief and the reports (issue 9).

The shapes are fixed here so that the reports can be written while the analysis is: `insights.service` implements
the three functions below with exactly these signatures and returns these dataclasses. Every function reads only
what the principal may see (catalog access and agency), takes `now` (never reads the clock) and never writes.
Texts are not stored in the results: `reason` is a translation key (`insights.reason.<code>`) with `params`, so that
each screen and file renders it in its reader's language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PROGRESS_STATUSES = ("on_track", "at_risk", "off_track", "no_data")
ANOMALY_KINDS = ("spike", "drop", "outlier", "level_shift")


@dataclass(frozen=True)
class Progress:
    """Plan vs actual for one indicator and one subject (the province or a commune) in one target year."""

    indicator: str  # indicator code
    subject: str  # subject code
    year: int
    target: float
    unit: str
    direction: str  # higher_better, lower_better, neutral
    actual: float | None  # to date: the year's aggregate so far (sum, mean or last value, by the indicator)
    as_of: datetime | None  # start of the latest period counted
    periods_counted: int
    periods_in_year: int
    progress_pct: float | None  # actual against target (for a sum: against the target pro rata to date)
    projected: float | None  # the value at year end from the trend (None with fewer than 2 periods)
    status: str  # one of PROGRESS_STATUSES
    reason: str  # translation key suffix, e.g. "projected_short" → insights.reason.projected_short
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RankRow:
    """One ranked unit (a commune or an agency) for an indicator or a composite index."""

    rank: int  # 1 = best (by the indicator's direction)
    unit: str  # subject code (communes) or agency code (agencies)
    name_vi: str
    name_en: str
    value: float | None
    previous_rank: int | None  # in the period before
    previous_value: float | None
    change: int | None  # previous_rank - rank: positive = moved up


@dataclass(frozen=True)
class Ranking:
    """A ranking: of communes or agencies, for an indicator or a composite index, in one period."""

    code: str  # indicator code, or index code (e.g. "index.dich_vu_cong")
    by: str  # "commune" or "agency"
    period_start: datetime | None
    previous_period_start: datetime | None
    rows: list[RankRow]


@dataclass(frozen=True)
class Anomaly:
    """A value that departs from what its series leads to expect, judged with robust statistics (median and MAD)
    against the same season (month of year, school year) where the series is long enough."""

    indicator: str
    subject: str
    period_start: datetime
    value: float
    expected: float  # the robust centre the value was judged against
    score: float  # robust z: (value − expected) / (1.4826 · MAD), signed
    kind: str  # one of ANOMALY_KINDS
    since: datetime | None = None  # for a level shift: when it began


# The signatures insights.service implements (documented here, implemented there):
#
#   def plan_vs_actual(session, principal, now, *, domain: str | None = None, subject: str | None = None,
#                      year: int | None = None) -> list[Progress]
#       Every indicator with a target (catalog `targets`) in the year (default: now's year in Asia/Ho_Chi_Minh).
#
#   def ranking(session, principal, now, code: str, *, by: str = "commune") -> Ranking
#       `code` an indicator or a composite index (insights/data/indices.toml); the latest complete period and the
#       one before.
#
#   def anomalies(session, principal, now, *, domain: str | None = None, since: datetime | None = None,
#                 indicators: list[str] | None = None) -> list[Anomaly]
#       Flagged values whose period starts at or after `since` (default: 35 days before now), most severe first.
