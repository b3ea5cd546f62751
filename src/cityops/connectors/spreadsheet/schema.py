"""Settings of a spreadsheet feed: which sheet to read, other names for columns, what an empty cell means."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# What a column may be besides an indicator of the feed (named by its code).
COLUMN_ROLES = ("subject", "subject_name", "period", "indicator", "value", "null_reason", "ignore")
_INDICATOR_CODE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z0-9_]+$")


class SpreadsheetSettings(BaseModel):
    """How an agency's sheets are laid out, when they differ from the template cityops makes."""

    model_config = ConfigDict(extra="forbid")

    sheet: str = Field(default="", max_length=100, description="The sheet to read; empty = the first that fits")
    aliases: dict[str, str] = Field(
        default_factory=dict,
        description="Other header texts: header → an indicator code of the feed, or subject, subject_name, period, "
        "indicator, value, null_reason, ignore",
    )
    empty_cells: Literal["error", "skip"] = Field(
        default="error", description="An empty value cell: an error to fix (default), or nothing to send"
    )

    @field_validator("aliases")
    @classmethod
    def _known_targets(cls, aliases: dict[str, str]) -> dict[str, str]:
        if len(aliases) > 200:
            raise ValueError("at most 200 aliases")
        for header, target in aliases.items():
            if not header.strip() or len(header) > 200:
                raise ValueError("an alias header is 1 to 200 characters")
            if target not in COLUMN_ROLES and not _INDICATOR_CODE.match(target):
                raise ValueError(f"alias {header!r}: {target!r} is neither an indicator code nor a column role")
        return aliases
