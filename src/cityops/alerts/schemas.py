"""Shapes of the alerts API: rules in and out, a silence, alerts out (loose types: the service checks the values
and says what is wrong in Vietnamese and English)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RuleIn(BaseModel):
    """A rule to create."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=200, description="a-z, 0-9 and _, 2–64 characters; fixed once created")
    name_vi: str = Field(default="", max_length=1000)
    name_en: str = Field(default="", max_length=1000)
    description: str = Field(default="", max_length=10000)
    kind: str = Field(description="threshold, off_target, change, feed_health or events")
    indicator: str = Field(default="", max_length=200, description="indicator code (threshold, off_target, change)")
    feed: str = Field(default="", max_length=200, description="feed code (feed_health); empty: every feed")
    subject: str = Field(default="", max_length=200, description="subject code; empty: every subject")
    params: dict[str, Any] = Field(default_factory=dict, description="the kind's parameters (docs/alerts.md)")
    severity: str = Field(default="warning", description="info, warning or critical")
    for_minutes: int = Field(default=0, description="how long the condition holds before the alert fires")
    incident_mode: str = Field(default="none", description="none, manual or auto")
    incident_category: str = Field(default="", max_length=200)
    agency: str = Field(default="", max_length=200, description="whom its alerts address; empty: the owner")
    enabled: bool = True


class RulePatch(BaseModel):
    """The fields of a rule to change (the others stay)."""

    model_config = ConfigDict(extra="forbid")

    code: str | None = Field(default=None, max_length=200)
    name_vi: str | None = Field(default=None, max_length=1000)
    name_en: str | None = Field(default=None, max_length=1000)
    description: str | None = Field(default=None, max_length=10000)
    kind: str | None = None
    indicator: str | None = Field(default=None, max_length=200)
    feed: str | None = Field(default=None, max_length=200)
    subject: str | None = Field(default=None, max_length=200)
    params: dict[str, Any] | None = None
    severity: str | None = None
    for_minutes: int | None = None
    incident_mode: str | None = None
    incident_category: str | None = Field(default=None, max_length=200)
    agency: str | None = Field(default=None, max_length=200)
    enabled: bool | None = None


class RuleOut(BaseModel):
    code: str
    name_vi: str
    name_en: str
    description: str
    kind: str
    indicator: str
    feed: str
    subject: str
    params: dict[str, Any]
    severity: str
    for_minutes: int
    incident_mode: str
    incident_category: str
    agency: str
    enabled: bool
    created_by: str
    created_at: str
    updated_at: str | None
    last_evaluated_at: str | None


class RuleList(BaseModel):
    items: list[RuleOut]


class SilenceIn(BaseModel):
    """A silence: for some minutes or until a moment (with its offset), and why."""

    model_config = ConfigDict(extra="forbid")

    minutes: int | None = Field(default=None, description="1 to 43200 (30 days)")
    until: datetime | None = Field(default=None, description="RFC 3339 moment, at most 30 days ahead")
    reason: str = Field(default="", max_length=2000, description="required")


class HistoryOut(BaseModel):
    event: str
    at: str
    actor: str | None
    details: dict[str, Any]


class AlertOut(BaseModel):
    id: int
    key: str
    kind: str
    state: str
    severity: str
    title_vi: str
    title_en: str
    rule: str | None
    subject: str | None
    agency: str | None
    details: dict[str, Any]
    started_at: str
    fired_at: str | None
    resolved_at: str | None
    updated_at: str
    fire_count: int
    acknowledged_at: str | None
    acknowledged_by: str | None
    silenced_until: str | None
    silence_reason: str
    silenced_by: str
    incident_id: int | None
    history: list[HistoryOut] | None = None


class AlertList(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[AlertOut]


class EventRejection(BaseModel):
    index: int
    code: str
    field: str
    message_vi: str
    message_en: str


class EventsAnswer(BaseModel):
    accepted: int
    rejected: list[EventRejection]
    items: list[dict[str, int]]
