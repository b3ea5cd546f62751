"""The province boundary that ships with cityops, and GET /api/v1/geo/boundary."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import timedelta
from typing import Any

import shapely
from fastapi.testclient import TestClient
from shapely.geometry import shape

from cityops.clock import FrozenClock
from cityops.geo import geometry
from cityops.geo.service import (
    ADMIN_UNITS_DB,
    BOUNDARY_FILE,
    DATA_DIR,
    province_boundaries,
    province_code_for_name,
    province_info,
)
from conftest import AgencyKey, login


def _dataset_province_codes() -> set[str]:
    with closing(sqlite3.connect(f"file:{ADMIN_UNITS_DB}?mode=ro", uri=True)) as connection:
        return {row[0] for row in connection.execute("SELECT DISTINCT provinceCode FROM admin_units")}


def test_the_boundary_file_is_small_valid_geojson_of_34_provinces() -> None:
    assert BOUNDARY_FILE.stat().st_size <= 200 * 1024
    collection = json.loads(BOUNDARY_FILE.read_text(encoding="utf-8"))
    assert collection["type"] == "FeatureCollection"
    assert len(collection["features"]) == 34
    for feature in collection["features"]:
        assert feature["type"] == "Feature"
        assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
        polygon = shape(feature["geometry"])
        assert polygon.is_valid, (feature["properties"]["ten_tinh"], shapely.is_valid_reason(polygon))
        assert -180 <= polygon.bounds[0] <= polygon.bounds[2] <= 180 and -90 <= polygon.bounds[1] <= 90


def test_every_province_of_the_file_matches_one_2025_province_code_by_name() -> None:
    collection = json.loads(BOUNDARY_FILE.read_text(encoding="utf-8"))
    codes = [province_code_for_name(feature["properties"]["ten_tinh"]) for feature in collection["features"]]
    assert None not in codes
    assert sorted(codes) == sorted(_dataset_province_codes())  # all 34, each once
    # The matching folds diacritics, old and new tone marks, and the "TP" abbreviations of the file.
    assert province_code_for_name("Nghệ An") == province_code_for_name("nghe an") == "40"
    assert province_code_for_name("TP HCM") == province_code_for_name("Thành phố Hồ Chí Minh") == "79"
    assert province_code_for_name("Khánh Hoà") == province_code_for_name("Khánh Hòa") == "56"
    assert province_code_for_name("Atlantis") is None


def test_each_provinces_centroid_lies_inside_the_boundary_it_was_matched_to() -> None:
    for code, feature in province_boundaries().items():
        province = province_info(code)
        assert province.latitude is not None and province.longitude is not None
        assert geometry.contains(feature["geometry"], province.longitude, province.latitude), province.name_vi


def test_no_island_is_lost_in_the_simplification() -> None:
    full = {feature["properties"]["code"]: feature for feature in province_boundaries().values()}
    # Hoàng Sa (Đà Nẵng) and Trường Sa (Khánh Hòa) are in the file, far out at sea.
    assert shape(full["VN25"]["geometry"]).bounds[2] > 112
    assert shape(full["VN08"]["geometry"]).bounds[2] > 116


def test_the_attribution_ships_beside_the_file() -> None:
    attribution = (DATA_DIR / "ATTRIBUTION.md").read_text(encoding="utf-8")
    for words in ("TaliaCao/Vietnam-Shape-Map", "MIT License", "Copyright (c) 2025 Talia Cao", "Open Development"):
        assert words in attribution


def test_the_boundary_is_served_to_every_logged_in_role(client: TestClient, personas: dict[str, str]) -> None:
    for username in ("citizen", "officer_b", "leader"):
        client.cookies.clear()
        login(client, username)
        answer = client.get("/api/v1/geo/boundary")
        assert answer.status_code == 200, (username, answer.text)
    document = answer.json()
    assert answer.headers["content-type"].startswith("application/geo+json")
    assert document["type"] == "FeatureCollection" and len(document["features"]) == 1
    feature = document["features"][0]
    assert feature["properties"]["code"] == "40"
    assert feature["properties"]["name_vi"] == "Tỉnh Nghệ An"
    assert "Talia Cao" in document["attribution"]
    # Vinh is inside; Hà Nội is not.
    assert geometry.contains(feature["geometry"], 105.68, 18.67)
    assert not geometry.contains(feature["geometry"], 105.85, 21.03)


def test_the_boundary_is_cacheable(client: TestClient, personas: dict[str, str], clock: FrozenClock) -> None:
    login(client, "citizen")
    first = client.get("/api/v1/geo/boundary")
    assert "max-age" in first.headers["cache-control"] and first.headers["etag"]
    clock.advance(timedelta(minutes=5))
    again = client.get("/api/v1/geo/boundary", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    other = client.get("/api/v1/geo/boundary", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200


def test_the_boundary_is_served_to_agency_keys(client: TestClient, hcc_key: AgencyKey) -> None:
    answer = client.get("/api/v1/geo/boundary", headers=hcc_key.headers)
    assert answer.status_code == 200


def test_the_boundary_needs_a_login(client: TestClient) -> None:
    answer = client.get("/api/v1/geo/boundary")
    assert answer.status_code == 401
    body: dict[str, Any] = answer.json()
    assert body["code"] == "unauthenticated" and body["message_vi"] and body["message_en"]
    assert client.get("/api/v1/geo/boundary", headers={"Authorization": "Bearer cok_nope"}).status_code == 401
