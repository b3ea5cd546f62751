"""GET /api/v1/units: the province and its communes and wards, as agency systems look up subject codes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from conftest import AgencyKey, login


@pytest.fixture
def citizen(client: TestClient, personas: dict[str, str]) -> TestClient:
    login(client, "citizen")
    return client


def test_the_province_and_its_130_communes_and_wards(citizen: TestClient) -> None:
    answer = citizen.get("/api/v1/units")
    assert answer.status_code == 200
    page = answer.json()
    assert page["total"] == 131 and len(page["items"]) == 131
    province = page["items"][0]
    assert province["code"] == "40" and province["kind"] == "province" and province["name_vi"] == "Tỉnh Nghệ An"
    assert province["parent"] is None and province["area_km2"] > 16000
    vinh = next(item for item in page["items"] if item["code"] == "16681")
    assert vinh == {
        "code": "16681",
        "kind": "commune",
        "name_vi": "Phường Thành Vinh",
        "name_en": "Thanh Vinh Ward",
        "parent": "40",
        "latitude": pytest.approx(18.675, abs=0.01),
        "longitude": pytest.approx(105.66, abs=0.01),
        "area_km2": vinh["area_km2"],
    }
    assert vinh["area_km2"] > 0


def test_filter_by_kind_and_page(citizen: TestClient) -> None:
    communes = citizen.get("/api/v1/units", params={"kind": "commune", "limit": 50, "offset": 100}).json()
    assert communes["total"] == 130 and len(communes["items"]) == 30
    assert {item["kind"] for item in communes["items"]} == {"commune"}
    first = citizen.get("/api/v1/units", params={"kind": "commune", "limit": 50}).json()["items"]
    assert not {item["code"] for item in first} & {item["code"] for item in communes["items"]}
    province = citizen.get("/api/v1/units", params={"kind": "province"}).json()
    assert [item["code"] for item in province["items"]] == ["40"]


@pytest.mark.parametrize(
    "q", ["Phường Thành Vinh", "Thành Vinh", "thanh vinh", "PHUONG THANH VINH", "P. Thành Vinh", "16681"]
)
def test_search_with_or_without_diacritics_and_type_word(citizen: TestClient, q: str) -> None:
    items = citizen.get("/api/v1/units", params={"q": q}).json()["items"]
    assert items[0]["code"] == "16681"


def test_an_exact_name_comes_before_names_that_hold_it(citizen: TestClient) -> None:
    # "Anh Sơn" is a commune; "Anh Sơn Đông" holds the same words.
    items = citizen.get("/api/v1/units", params={"q": "xa anh son"}).json()["items"]
    assert [item["name_vi"] for item in items] == ["Xã Anh Sơn", "Xã Anh Sơn Đông"]


def test_a_search_that_finds_nothing_is_an_empty_page(citizen: TestClient) -> None:
    page = citizen.get("/api/v1/units", params={"q": "Hoàn Kiếm"}).json()
    assert page == {"total": 0, "limit": 200, "offset": 0, "items": []}


def test_one_unit_by_code(citizen: TestClient) -> None:
    answer = citizen.get("/api/v1/units/17971")
    assert answer.status_code == 200 and answer.json()["name_vi"] == "Xã Kim Liên"
    missing = citizen.get("/api/v1/units/99999")
    assert missing.status_code == 404 and missing.json()["code"] == "unknown_subject"
    assert "99999" in missing.json()["message_vi"] and "99999" in missing.json()["message_en"]


def test_units_as_geojson_points(citizen: TestClient) -> None:
    answer = citizen.get("/api/v1/units.geojson", params={"kind": "commune"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/geo+json")
    document = answer.json()
    assert document["type"] == "FeatureCollection" and len(document["features"]) == 130
    feature = next(f for f in document["features"] if f["id"] == "16681")
    assert feature["geometry"]["type"] == "Point"
    longitude, latitude = feature["geometry"]["coordinates"]
    assert 105 < longitude < 106 and 18 < latitude < 19
    assert feature["properties"]["name_vi"] == "Phường Thành Vinh"


def test_bad_filters_are_refused_clearly(citizen: TestClient) -> None:
    answer = citizen.get("/api/v1/units", params={"kind": "district"})
    assert answer.status_code == 422 and answer.json()["code"] == "validation_failed"
    assert citizen.get("/api/v1/units", params={"limit": 0}).status_code == 422


def test_agency_keys_read_the_units(client: TestClient, hcc_key: AgencyKey) -> None:
    answer = client.get("/api/v1/units", params={"q": "Cửa Lò"}, headers=hcc_key.headers)
    assert answer.status_code == 200 and answer.json()["items"][0]["code"] == "16732"


@pytest.mark.parametrize("path", ["/api/v1/units", "/api/v1/units.geojson", "/api/v1/units/40"])
def test_units_need_a_login(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 401 and answer.json()["code"] == "unauthenticated"
