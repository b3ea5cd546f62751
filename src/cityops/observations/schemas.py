"""Shapes of the observations API, for the OpenAPI description agencies read."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ObservationIn(BaseModel):
    """One value an agency sends."""

    indicator: str = Field(description="Indicator code, e.g. hcc.ho_so_dung_han", examples=["hcc.ho_so_tiep_nhan"])
    subject: str = Field(description="Administrative-unit code (2025) or registered subject code", examples=["40"])
    period: str = Field(description="2026-11-27, 2026-11, 2026-Q3, 2026, 2025-2026, or an RFC 3339 instant with offset")
    value: float | None = Field(description="A number, or null with null_reason")
    null_reason: str | None = Field(default=None, description="Why there is no figure, when value is null")
    dimensions: dict[str, str] | None = Field(default=None, examples=[{"kenh": "truc_tuyen"}])
    source_ref: str | None = Field(default=None, description="The sender's own reference for this value")
    feed: str | None = Field(default=None, description="Which of the key's feeds, when several supply the indicator")


class ObservationBatchIn(BaseModel):
    """A batch of up to 10,000 observations."""

    observations: list[ObservationIn]


class RejectionOut(BaseModel):
    index: int
    code: str
    field: str | None
    message_vi: str
    message_en: str


class IngestResultOut(BaseModel):
    """The answer to a batch: what was stored, and why each rejected item was not."""

    batch_id: int | None
    received: int
    accepted: int
    created: int
    replaced: int
    unchanged: int
    rejected_count: int
    rejected: list[RejectionOut]


class ObservationOut(BaseModel):
    indicator: str
    subject: str
    subject_name: str
    period: str
    period_type: str
    period_start: str
    value: float | None
    null_reason: str | None
    dimensions: dict[str, Any]
    feed: str
    source_ref: str | None
    received_at: str


class ObservationPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[ObservationOut]
