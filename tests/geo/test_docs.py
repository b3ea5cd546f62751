"""docs/geography.md names every kind of place, every rejection reason and every problem of geography."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cityops.geo.places_file import FIELD_ALIASES
from cityops.geo.service import PLACE_KINDS
from cityops.i18n import TRANSLATIONS_DIR

DOC = (Path(__file__).resolve().parents[2] / "docs" / "geography.md").read_text(encoding="utf-8")


def _geo_messages() -> dict[str, str]:
    return json.loads((TRANSLATIONS_DIR / "vi" / "geo.json").read_text(encoding="utf-8"))


def test_every_kind_of_place_is_documented() -> None:
    for kind in PLACE_KINDS:
        assert f"`{kind}`" in DOC, kind


def test_every_column_alias_is_documented() -> None:
    for aliases in FIELD_ALIASES.values():
        for alias in aliases:
            assert f"`{alias}`" in DOC, alias


def test_every_rejection_reason_and_problem_is_documented() -> None:
    codes = {match[1] for key in _geo_messages() if (match := re.match(r"(?:place|problem)\.(\w+)", key))}
    codes -= {"places_import"}
    assert codes
    for code in codes:
        assert f"`{code}`" in DOC, code
