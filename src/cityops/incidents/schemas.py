"""Shapes of the incidents API: what is sent to create and change an incident and to act on it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_ID = 2**31 - 1


def _no_nul(text: str) -> str:
    # PostgreSQL cannot store NUL (U+0000) in text; no title or comment needs it.
    if "\x00" in text:
        raise ValueError("text must not hold NUL (U+0000)")
    return text


Text = Annotated[str, AfterValidator(_no_nul)]
Code = Annotated[Text, Field(max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IncidentIn(_Strict):
    """A new incident. Owner agency: the one given, else the category's. Deadline: now + the category's hours
    for the severity. The checklist is the category's SOP."""

    title: Text = Field(min_length=1, max_length=255)
    description: Text = Field(default="", max_length=20_000)
    category: Code | None = Field(default=None, description="An incident category code, e.g. y_te")
    severity: Code = Field(default="medium", description="low, medium, high or critical")
    agency: Code | None = Field(default=None, description="The owner agency's code, e.g. so_y_te")
    domain: Code = Field(default="", description="Default: the category's domain")
    subject: Code | None = Field(default=None, description="A unit or subject code, e.g. 16681")
    latitude: float | None = None
    longitude: float | None = None
    place_text: Text = Field(default="", max_length=255)


class IncidentPatch(_Strict):
    """The fields to change (only those sent). Severity and deadline: operators only."""

    title: Text | None = Field(default=None, min_length=1, max_length=255)
    description: Text | None = Field(default=None, max_length=20_000)
    severity: Code | None = None
    deadline: datetime | None = Field(default=None, description="With a time zone, e.g. 2026-11-28T17:00:00+07:00")


class StatusIn(_Strict):
    status: Code = Field(description="in_progress, resolved, closed, rejected or reopened")
    reason: Text = Field(default="", max_length=20_000, description="Required to reject; kept as the resolution")


class AssignIn(_Strict):
    agency: Code | None = Field(default=None, description="Default: the incident's owner agency")
    assignees: list[Code] = Field(default_factory=list, max_length=50, description="Usernames")


class CommentIn(_Strict):
    body: Text = Field(min_length=1, max_length=20_000)


class TaskIn(_Strict):
    done: bool


class LinkIn(_Strict):
    to: int = Field(ge=1, le=MAX_ID)
    kind: Code = "related"


class MergeIn(_Strict):
    into: int = Field(ge=1, le=MAX_ID)
