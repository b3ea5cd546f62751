"""Reading the places registry: GET /api/v1/places, its GeoJSON variant, one place; and the demo's sample."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from cityops.accounts.service import Actor
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.geo.service import SAMPLE_PLACES, import_places
from conftest import AgencyKey, count_rows, login

EXTRA = (
    "code,kind,name_vi,latitude,longitude,commune,address\n"
    "bv.huu_nghi,hospital,Bệnh viện Hữu nghị Đa khoa Nghệ An,18.7311,105.6929,,Đại lộ Lê Nin\n"
    "cho.vinh,market,Chợ Vinh,18.6710,105.6900,16681,Đường Cao Thắng\n"
).encode()


@pytest.fixture
def registry(database: Database, clock: FrozenClock) -> int:
    """The Nghệ An sample and two more places; returns how many."""
    with database.writing() as session:
        sample = import_places(session, Actor("test"), clock(), SAMPLE_PLACES["40"].read_bytes(), province_code="40")
        extra = import_places(session, Actor("test"), clock(), EXTRA, province_code="40")
    assert not sample.rejected and not extra.rejected
    return sample.created + extra.created


@pytest.fixture
def officer(client: TestClient, personas: dict[str, str], registry: int) -> TestClient:
    login(client, "officer_b")
    return client


def test_every_place_in_code_order_with_paging(officer: TestClient, registry: int) -> None:
    page = officer.get("/api/v1/places", params={"limit": 5}).json()
    assert page["total"] == registry and len(page["items"]) == 5
    codes = [item["code"] for item in page["items"]]
    assert codes == sorted(codes)
    rest = officer.get("/api/v1/places", params={"limit": 1000, "offset": 5}).json()["items"]
    assert len(rest) == registry - 5 and not set(codes) & {item["code"] for item in rest}


def test_filter_by_kind_commune_and_words(officer: TestClient) -> None:
    hospitals = officer.get("/api/v1/places", params={"kind": "hospital"}).json()
    assert [item["code"] for item in hospitals["items"]] == ["bv.huu_nghi"]
    in_vinh = officer.get("/api/v1/places", params={"commune": "16681"}).json()["items"]
    by_name = officer.get("/api/v1/places", params={"commune": "thanh vinh"}).json()["items"]
    assert in_vinh == by_name and "cho.vinh" in {item["code"] for item in in_vinh}
    assert {item["commune"]["code"] for item in in_vinh} == {"16681"}
    for q in ("Kim Liên", "kim lien", "KIM LIEN"):
        assert [item["code"] for item in officer.get("/api/v1/places", params={"q": q}).json()["items"]] == [
            "dl.kim_lien"
        ]
    by_address = officer.get("/api/v1/places", params={"q": "dai lo le nin"}).json()["items"]
    assert [item["code"] for item in by_address] == ["bv.huu_nghi"]
    assert officer.get("/api/v1/places", params={"q": "100%_"}).json()["total"] == 0


def test_bad_filters_are_refused_clearly(officer: TestClient) -> None:
    unknown = officer.get("/api/v1/places", params={"commune": "Xã Không Có"})
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_subject"
    kind = officer.get("/api/v1/places", params={"kind": "casino"})
    assert kind.status_code == 422 and kind.json()["code"] == "validation_failed"


def test_one_place(officer: TestClient) -> None:
    place = officer.get("/api/v1/places/dl.bien_cua_lo").json()
    assert place["name_vi"] == "Bãi biển Cửa Lò" and place["name_en"] == "Cua Lo Beach"
    assert place["commune"]["name_vi"] == "Phường Cửa Lò" and place["kind"] == "tourist_site"
    assert place["created_at"] == "2026-11-27T03:00:00+00:00"
    missing = officer.get("/api/v1/places/nowhere")
    assert missing.status_code == 404 and missing.json()["code"] == "unknown_place"


def test_places_as_geojson_points_for_the_map(officer: TestClient, registry: int) -> None:
    answer = officer.get("/api/v1/places.geojson", params={"kind": "tourist_site"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/geo+json")
    document = answer.json()
    assert document["type"] == "FeatureCollection" and len(document["features"]) == registry - 3
    feature = next(f for f in document["features"] if f["id"] == "dl.vqg_pu_mat")
    assert feature["geometry"]["type"] == "Point"
    assert feature["properties"]["name_vi"] == "Vườn quốc gia Pù Mát"
    longitude, latitude = feature["geometry"]["coordinates"]
    assert 104 < longitude < 105 and 18.5 < latitude < 19.5


def test_agency_keys_read_places(client: TestClient, hcc_key: AgencyKey, registry: int) -> None:
    answer = client.get("/api/v1/places", headers=hcc_key.headers)
    assert answer.status_code == 200 and answer.json()["total"] == registry


@pytest.mark.parametrize("path", ["/api/v1/places", "/api/v1/places.geojson", "/api/v1/places/dl.kim_lien"])
def test_citizens_may_not_read_the_registry(
    client: TestClient, personas: dict[str, str], registry: int, path: str
) -> None:
    login(client, "citizen")
    answer = client.get(path)
    assert answer.status_code == 403 and answer.json()["code"] == "forbidden"


@pytest.mark.parametrize("path", ["/api/v1/places", "/api/v1/places.geojson", "/api/v1/places/dl.kim_lien"])
def test_anonymous_may_not_read_the_registry(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 401


def test_the_demo_loads_the_sample_places_once(database: Database, clock: FrozenClock) -> None:
    from cityops.demo.runner import Connections, provision

    connections = Connections("http://127.0.0.1:9", "lgsp-token", None, "test")
    for _run in range(2):
        with database.writing() as session:
            provision(session, clock(), interval=10, connections=connections, secret_key="test-secret-key")
    expected = sum(1 for line in SAMPLE_PLACES["40"].read_text(encoding="utf-8").splitlines()[1:] if line.strip())
    assert count_rows(database, "places") == expected
