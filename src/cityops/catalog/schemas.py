"""Shapes of the catalog files (validated at load) and of the catalog API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cityops.observations.periods import PERIOD_TYPES

CODE_PATTERN = r"^[a-z][a-z0-9]*\.[a-z0-9_]+$"
PeriodType = Literal["instant", "day", "month", "quarter", "year", "school_year"]
assert set(PERIOD_TYPES) == set(PeriodType.__args__)  # type: ignore[attr-defined]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgencyDef(_Strict):
    code: str = Field(pattern=r"^[a-z0-9_]{2,64}$")
    name_vi: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    kind: Literal["province", "department", "commune", "unit"]
    parent: str = ""


class UnitDef(_Strict):
    code: str = Field(pattern=r"^[a-z0-9_]{1,32}$")
    symbol_vi: str
    symbol_en: str
    name_vi: str
    name_en: str


class DomainDef(_Strict):
    code: str = Field(pattern=r"^[a-z][a-z0-9]{1,31}$")
    name_vi: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    source_system: str = ""
    order: int = 0


class TargetDef(_Strict):
    year: int = Field(ge=2000, le=2100)
    value: float
    subject: str = ""


class ThresholdsDef(_Strict):
    warning: float | None = None
    critical: float | None = None


class IndicatorDef(_Strict):
    code: str = Field(pattern=CODE_PATTERN, max_length=80)
    monitored_item: int = Field(default=1, ge=1)
    name_vi: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    description_vi: str = ""
    description_en: str = ""
    unit: str
    period: PeriodType
    aggregation: Literal["sum", "mean", "last", "ratio"] = "sum"
    numerator: str = ""
    denominator: str = ""
    direction: Literal["higher_better", "lower_better", "neutral"] = "higher_better"
    owner: str
    source_system: str = ""
    collection: Literal["automatic", "manual"] = "automatic"
    access: Literal["public", "internal", "restricted"] = "public"
    subject_level: Literal["province", "commune", "entity"] = "province"
    min: float | None = None
    max: float | None = None
    dimensions: list[str] = Field(default_factory=list)
    references: list[str] = Field(default_factory=list)
    targets: list[TargetDef] = Field(default_factory=list)
    thresholds: ThresholdsDef = Field(default_factory=ThresholdsDef)

    @model_validator(mode="after")
    def _ratio_has_parts(self) -> IndicatorDef:
        if self.aggregation == "ratio" and not (self.numerator and self.denominator):
            raise ValueError("a ratio indicator needs numerator and denominator")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is above max")
        return self


class DomainFile(_Strict):
    domain: DomainDef
    indicators: list[IndicatorDef] = Field(default_factory=list)


class IndicatorOut(BaseModel):
    """An indicator as the API shows it."""

    code: str
    domain: str
    monitored_item: int
    name_vi: str
    name_en: str
    description_vi: str
    description_en: str
    unit: str
    period_type: str
    aggregation: str
    numerator: str
    denominator: str
    direction: str
    owner_agency: str | None
    source_system: str
    collection: str
    access: str
    subject_level: str
    min_value: float | None
    max_value: float | None
    dimensions: list[str]
    references: list[str]
    targets: list[dict[str, object]]
    thresholds: dict[str, object]
    version: int
