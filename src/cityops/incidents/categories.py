"""The incident categories with their SOP checklists and deadlines, as data (incidents/data/categories.toml).

`load_categories` creates a category missing from the table and brings an existing one (same code) up to date
with the file; it is called by `setup.ensure_ready` when the table is empty. Each category names the agency
that owns its incidents by default (a code of catalog/data/agencies.toml) and the hours allowed to resolve an
incident of each severity.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityops.accounts.models import Agency
from cityops.incidents.models import SEVERITIES, IncidentCategory

DEFAULT_FILE = Path(__file__).parent / "data" / "categories.toml"


class SopStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vi: str = Field(min_length=1, max_length=500)
    en: str = Field(min_length=1, max_length=500)


class CategoryDef(BaseModel):
    """One category of the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")
    name_vi: str = Field(min_length=1, max_length=255)
    name_en: str = Field(min_length=1, max_length=255)
    domain: str = Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")
    agency: str = Field(min_length=1)
    deadline_hours: dict[str, float]
    sop: list[SopStep] = Field(min_length=1, max_length=12)

    @model_validator(mode="after")
    def _every_severity(self) -> CategoryDef:
        if set(self.deadline_hours) != set(SEVERITIES):
            raise ValueError(f"{self.code}: deadline_hours needs exactly {', '.join(SEVERITIES)}")
        if any(hours <= 0 for hours in self.deadline_hours.values()):
            raise ValueError(f"{self.code}: deadline hours must be positive")
        return self


class CategoryFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    category: list[CategoryDef]


def read_categories(path: Path = DEFAULT_FILE) -> list[CategoryDef]:
    """The categories of a file, validated (a ValueError names the category and the field)."""
    with path.open("rb") as handle:
        parsed = CategoryFile.model_validate(tomllib.load(handle))
    codes = [definition.code for definition in parsed.category]
    twice = sorted({code for code in codes if codes.count(code) > 1})
    if twice:
        raise ValueError(f"categories defined twice: {', '.join(twice)}")
    return parsed.category


def load_categories(session: Session, path: Path = DEFAULT_FILE) -> int:
    """Create or update the categories of the file (by code); the number of categories created."""
    agencies = {code: agency_id for code, agency_id in session.execute(select(Agency.code, Agency.id))}
    existing = {category.code: category for category in session.scalars(select(IncidentCategory))}
    created = 0
    for definition in read_categories(path):
        category = existing.get(definition.code)
        if category is None:
            category = IncidentCategory(code=definition.code)
            session.add(category)
            created += 1
        category.name_vi, category.name_en = definition.name_vi, definition.name_en
        category.domain = definition.domain
        category.agency_id = agencies.get(definition.agency)  # an agency absent from this set-up: no default owner
        category.deadline_hours = {severity: definition.deadline_hours[severity] for severity in SEVERITIES}
        category.sop = [{"vi": step.vi, "en": step.en} for step in definition.sop]
    session.flush()
    return created
