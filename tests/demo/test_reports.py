"""The demo's citizens: descriptions the core accepts, for every category; points inside the province and inside
the commune they name; photos that carry a location for the core to strip; more reports by day than by night."""

from __future__ import annotations

import io
import random
import tomllib
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from cityops.demo.reports import TEMPLATES, describe, draft, photo, reports_this_round, spots
from cityops.feedback.service import description_errors
from cityops.geo import geometry
from cityops.geo.service import province_geometry

CATEGORIES = Path(__file__).parents[2] / "src" / "cityops" / "feedback" / "data" / "categories.toml"


def test_every_category_gets_varied_descriptions_the_junk_check_accepts() -> None:
    with CATEGORIES.open("rb") as handle:
        codes = {category["code"] for category in tomllib.load(handle)["category"]}
    assert set(TEMPLATES) == codes, "one set of descriptions per category, no unknown category"
    rng = random.Random(7)
    seen: set[str] = set()
    for code in sorted(codes):
        for _ in range(40):
            text = describe(code, rng)
            assert description_errors(text) == [], text
            assert "{" not in text and "lorem" not in text.lower()
            seen.add(text)
    assert len(seen) > 300, "streets, numbers, landmarks and times vary"


def test_points_lie_inside_the_province_and_in_the_commune_they_name() -> None:
    communes = spots("40")
    assert len(communes) == 130
    shape = province_geometry("40")
    assert shape is not None
    rng = random.Random(11)
    named: set[str] = set()
    for _ in range(300):
        report = draft(communes, shape, rng, {"o_ga_hu_hong_duong": {"muc_do": ["low", "medium", "high"]}})
        assert geometry.contains(shape, report.longitude, report.latitude), report
        nearest = min(
            communes, key=lambda c: geometry.haversine_km(report.latitude, report.longitude, c.latitude, c.longitude)
        )
        assert nearest.code == report.commune, "the core places the point in the commune with the nearest centre"
        assert (report.category == "o_ga_hu_hong_duong") == ("muc_do" in report.attributes)
        named.add(report.commune)
    assert len(named) > 80, "reports spread over the province"


def test_photos_are_jpegs_with_the_points_location_and_daytime_is_busier() -> None:
    rng = random.Random(3)
    image = Image.open(io.BytesIO(photo(18.6733, 105.6925, rng)))
    assert image.format == "JPEG" and image.size == (640, 480)
    gps = image.getexif().get_ifd(0x8825)
    assert gps[1] == "N" and gps[2][0] == 18 and gps[3] == "E" and gps[4][0] == 105
    day = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)  # 10:00 in Hà Nội
    night = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)  # 02:00
    assert sum(reports_this_round(day, rng) for _ in range(500)) > 2 * sum(
        reports_this_round(night, rng) for _ in range(500)
    )
