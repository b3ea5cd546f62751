"""Shapes of the geography API: administrative units, places, and the answer to a places import."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class UnitOut(BaseModel):
    """The province or one of its communes and wards (2025)."""

    code: str = Field(description="2025 administrative-unit code: 2 digits for the province, 5 for a commune")
    kind: str = Field(description="province | commune")
    name_vi: str
    name_en: str
    parent: str | None = Field(description="The province's code, for a commune")
    latitude: float | None = Field(description="Centroid")
    longitude: float | None = Field(description="Centroid")
    area_km2: float | None


class UnitPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[UnitOut]


class CommuneRefOut(BaseModel):
    code: str
    name_vi: str
    name_en: str


class PlaceOut(BaseModel):
    """A place of the registry."""

    code: str
    kind: str
    name_vi: str
    name_en: str
    latitude: float
    longitude: float
    commune: CommuneRefOut | None
    address: str
    owner_agency: str | None
    attributes: dict[str, Any]
    source: str
    created_at: str
    updated_at: str


class PlacePage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[PlaceOut]


class PlaceRejectionOut(BaseModel):
    row: int = Field(description="Spreadsheet row (the header is row 1), or feature number (from 1) in GeoJSON")
    code: str = Field(description="Why, as a code: missing_field, unknown_kind, outside_province …")
    field: str | None
    place: str | None = Field(description="The place's code, when the row has one")
    message_vi: str
    message_en: str


class PlaceImportOut(BaseModel):
    """The answer to an import: what was kept, and why each rejected row was not."""

    format: str = Field(description="csv | geojson")
    received: int
    accepted: int
    created: int
    updated: int
    unchanged: int
    rejected_count: int
    rejected: list[PlaceRejectionOut]
