"""The API shapes of trust scores: a ranking of agencies, one feed's or one indicator's scores with their rows."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class WindowOut(BaseModel):
    """The moments judged, both ends included, and the time the scores were computed."""

    from_: str = Field(alias="from", description="Start of the window (ISO 8601, UTC)")
    to: str = Field(description="End of the window, included (ISO 8601, UTC)")
    now: str

    model_config = {"populate_by_name": True}


class ScoresOut(BaseModel):
    """Each score as a percentage (0–100), null when there is nothing to judge or it does not apply."""

    correct: float | None = Field(description="đúng: items that pass validation and the catalog's rules")
    complete: float | None = Field(description="đủ: expected indicator × subject × period cells received")
    clean: float | None = Field(description="sạch: accepted items not flagged (duplicate, conflicting, outlier)")
    alive: float | None = Field(description="sống: expected periods delivered on time")
    overall: float | None = Field(description="the mean of the scores available")


class FeedSummaryOut(BaseModel):
    code: str
    name: str
    kind: str
    cadence: str
    cadence_vi: str
    cadence_en: str
    scheduled: bool = Field(description="Whether the feed has a cadence (without one, đủ and sống do not apply)")
    paused: bool
    state: str = Field(description="paused, down, late, on_time or unscheduled")
    late_now: int = Field(description="Expected periods past their deadline plus grace and not received")
    last_received_at: str | None
    scores: ScoresOut
    details: bool = Field(description="Whether the caller may open the rows behind the scores")


class AgencyOut(BaseModel):
    code: str
    name_vi: str
    name_en: str
    state: str = Field(description="The most alarming state of its feeds")
    scores: ScoresOut = Field(description="The mean of its feeds' scores")
    feeds: list[FeedSummaryOut]


class RankingOut(BaseModel):
    window: WindowOut
    row_limit: int
    agencies: list[AgencyOut] = Field(description="Worst overall score first; agencies with nothing to judge last")


Row = dict[str, Any]


class CorrectOut(BaseModel):
    score: float | None
    accepted: int
    rejected: int
    violations: int = Field(description="Numerator values above their denominator (a part above its whole)")
    rejected_rows: list[Row]
    violation_rows: list[Row]


class CompleteOut(BaseModel):
    score: float | None
    applicable: bool
    periods: int
    subjects: int
    indicators: int
    expected: int
    received: int
    missing: int
    missing_rows: list[Row] = Field(description="indicator, subject (code and names), period, due_at")


class CleanOut(BaseModel):
    score: float | None
    accepted: int
    flagged: int = Field(description="Distinct items flagged (an item flagged twice counts once)")
    duplicates: int
    conflicts: int
    outliers: int
    duplicate_rows: list[Row]
    conflict_rows: list[Row]
    outlier_rows: list[Row]


class AliveOut(BaseModel):
    score: float | None
    applicable: bool
    periods: int
    on_time: int
    late: int
    late_rows: list[Row]
    failed_runs: list[Row]


class FeedDetailOut(FeedSummaryOut):
    agency: dict[str, str]
    coverage: str
    grace_minutes: int
    indicators: list[str]


class FeedTrustOut(BaseModel):
    window: WindowOut
    row_limit: int = Field(description="At most this many rows are listed per kind; the counts are exact")
    feed: FeedDetailOut
    correct: CorrectOut
    complete: CompleteOut
    clean: CleanOut
    alive: AliveOut


class IndicatorRefOut(BaseModel):
    code: str
    name_vi: str
    name_en: str


class IndicatorTrustOut(BaseModel):
    window: WindowOut
    row_limit: int
    indicator: IndicatorRefOut
    state: str
    late_now: int
    last_received_at: str | None
    scores: ScoresOut
    correct: CorrectOut
    complete: CompleteOut
    clean: CleanOut
    alive: AliveOut
    feeds: list[FeedSummaryOut]
