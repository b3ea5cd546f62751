"""The report categories (Open311 services), as data: feedback/data/categories.toml.

`load_categories` creates a category missing from the table and brings an existing one (same code) up to date with
the file; `setup.ensure_ready` calls it when the table is empty. Each category says who handles it (`route`: an
agency code, or "commune" for the People's Committee of the report's commune or ward), the fallback agency, the
incident category that gives the deadline and checklist, and the Open311 attributes asked of the citizen.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityops.accounts.models import Agency
from cityops.feedback.models import FeedbackCategory
from cityops.incidents.models import IncidentCategory

DEFAULT_FILE = Path(__file__).parent / "data" / "categories.toml"
COMMUNE = "commune"
DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
_CODE = r"^[a-z][a-z0-9_]{1,63}$"


class ValueDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_]{0,63}$")
    name_vi: str = Field(min_length=1, max_length=255)
    name_en: str = Field(min_length=1, max_length=255)


class AttributeDef(BaseModel):
    """One Open311 attribute of a category."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=_CODE)
    datatype: Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
    required: bool = False
    description_vi: str = Field(min_length=1, max_length=500)
    description_en: str = Field(min_length=1, max_length=500)
    values: list[ValueDef] = Field(default_factory=list)

    @model_validator(mode="after")
    def _lists_have_values(self) -> AttributeDef:
        if self.datatype.endswith("list") and not self.values:
            raise ValueError(f"{self.code}: a {self.datatype} needs values")
        if not self.datatype.endswith("list") and self.values:
            raise ValueError(f"{self.code}: only lists have values")
        return self


class CategoryDef(BaseModel):
    """One category of the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=_CODE)
    name_vi: str = Field(min_length=1, max_length=255)
    name_en: str = Field(min_length=1, max_length=255)
    description_vi: str = Field(default="", max_length=2000)
    description_en: str = Field(default="", max_length=2000)
    group: str = Field(default="", max_length=64)
    keywords: str = Field(default="", max_length=500)
    route: str = Field(min_length=1, max_length=64)
    agency: str = Field(min_length=1, max_length=64)
    incident_category: str = Field(pattern=_CODE)
    attributes: list[AttributeDef] = Field(default_factory=list, max_length=20)


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
    """Create or update the categories of the file (by code); the number created. An agency or incident
    category the file names must exist (ValueError otherwise)."""
    agencies = {code: agency_id for code, agency_id in session.execute(select(Agency.code, Agency.id))}
    incident_categories = set(session.scalars(select(IncidentCategory.code)))
    existing = {category.code: category for category in session.scalars(select(FeedbackCategory))}
    created = 0
    for position, definition in enumerate(read_categories(path)):
        for code in {definition.agency} | ({definition.route} - {COMMUNE}):
            if code not in agencies:
                raise ValueError(f"{definition.code}: unknown agency {code!r}")
        if definition.incident_category not in incident_categories:
            raise ValueError(f"{definition.code}: unknown incident category {definition.incident_category!r}")
        category = existing.get(definition.code)
        if category is None:
            category = FeedbackCategory(code=definition.code)
            session.add(category)
            created += 1
        category.name_vi, category.name_en = definition.name_vi, definition.name_en
        category.description_vi, category.description_en = definition.description_vi, definition.description_en
        category.group, category.keywords = definition.group, definition.keywords
        category.route = definition.route
        category.agency_id = agencies[definition.agency]
        category.incident_category = definition.incident_category
        category.attributes = [attribute.model_dump() for attribute in definition.attributes]
        category.active = True
        category.position = position
    session.flush()
    return created


def active_categories(session: Session) -> list[FeedbackCategory]:
    """The categories a citizen may choose, in the file's order."""
    return list(
        session.scalars(
            select(FeedbackCategory).where(FeedbackCategory.active.is_(True)).order_by(FeedbackCategory.position)
        )
    )


def name_of(category: FeedbackCategory, language: str) -> str:
    return category.name_en if language == "en" and category.name_en else category.name_vi


def attributes_of(category: FeedbackCategory) -> list[dict[str, Any]]:
    """The category's attributes as stored (list of dicts; see AttributeDef)."""
    return [attribute for attribute in (category.attributes or []) if isinstance(attribute, dict)]
