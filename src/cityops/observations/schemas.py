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


class ReasonOut(BaseModel):
    """Why there is no value, in Vietnamese and English."""

    code: str = Field(
        description="no_data, stored_null, numerator_missing, denominator_missing, parts_missing, "
        "denominator_zero or no_commune_values"
    )
    message_vi: str
    message_en: str


class DifferenceOut(BaseModel):
    """Stored minus computed."""

    absolute: float
    relative: float | None = Field(
        description="absolute / |computed|, a fraction (0.02 = 2 %); null when computed is 0"
    )


class PartOut(BaseModel):
    """A ratio's numerator or denominator as it was used."""

    role: str = Field(description="numerator or denominator")
    indicator: str
    value: float | None
    source: str | None = Field(description="stored, computed (rolled up from the communes) or null")
    communes_reported: int | None
    communes_expected: int | None


class DerivedValueOut(BaseModel):
    """One subject's value for the period: the stored one wins over the computed one, and both are shown."""

    subject: str
    subject_name: str
    subject_name_en: str
    subject_kind: str
    period: str
    value: float | None
    source: str | None = Field(description="stored, computed, or null when there is no value")
    stored: float | None
    computed: float | None
    difference: DifferenceOut | None
    communes_reported: int | None = Field(description="At a province: communes whose values the roll-up used")
    communes_expected: int | None = Field(description="At a province: all its communes and wards")
    reason: ReasonOut | None = Field(description="Why there is no value (only when value is null)")
    computed_reason: ReasonOut | None = Field(description="Why nothing could be computed, when a computation applies")
    stored_period: str | None = Field(description="The stored value's own period (an instant, when read over a day)")
    stored_received_at: str | None
    stored_version: int | None = Field(description="The indicator's definition in force when the value was received")
    parts: list[PartOut]


class DerivedValuesPage(BaseModel):
    """An indicator's values for one period, per subject."""

    indicator: str
    period: str
    period_type: str
    indicator_period_type: str
    aggregation: str
    unit: str
    numerator: str | None
    denominator: str | None
    version: int
    total: int
    items: list[DerivedValueOut]


class IndicatorVersionOut(BaseModel):
    """One definition of an indicator and when it was in force."""

    version: int
    current: bool
    in_force_from: str | None = Field(description="When it came in force; null for a first version since replaced")
    in_force_until: str | None = Field(description="When a later version replaced it; null for the current one")
    changed_by: str | None = Field(description="Who loaded it")
    changed_fields: list[str] = Field(description="Fields that differ from the version before")
    definition: dict[str, Any]


class IndicatorVersionsOut(BaseModel):
    """The current and past definitions of an indicator, newest first."""

    indicator: str
    version: int
    total: int
    items: list[IndicatorVersionOut]
