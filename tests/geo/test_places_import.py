"""Importing places from CSV and GeoJSON: good rows kept, bad rows rejected with their row and reason."""

from __future__ import annotations

import json
import unicodedata
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cityops.accounts.models import AuditEntry
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.geo.api import MAX_IMPORT_BYTES
from cityops.geo.models import Place
from cityops.geo.service import SAMPLE_PLACES
from conftest import AgencyKey, count_rows, csrf_header, login

IMPORT = "/api/v1/places/import"
HEADER = "code,kind,name_vi,name_en,latitude,longitude,commune,address,owner,source\n"


@pytest.fixture
def operator(client: TestClient, app: Any, personas: dict[str, str]) -> dict[str, str]:
    """The operator logged in; returns the CSRF header a page script sends."""
    login(client, "operator")
    return csrf_header(client, app)


def upload(client: TestClient, headers: dict[str, str], data: bytes, name: str = "places.csv") -> Any:
    return client.post(IMPORT, files={"file": (name, data, "text/csv")}, headers=headers)


def windows_1258(text: str) -> bytes:
    """Text as Windows-1258 writes it: base letters (ê, ơ, đ …) followed by combining tone marks."""
    tones = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}
    parts = []
    for character in text:
        decomposed = unicodedata.normalize("NFD", character)
        base = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in tones))
        parts.append(base + "".join(c for c in decomposed if c in tones))
    return "".join(parts).encode("cp1258")


def places(database: Database) -> dict[str, Place]:
    with database.reading() as session:
        return {place.code: place for place in session.scalars(select(Place))}


def test_the_sample_of_nghe_an_tourist_sites_loads_whole(
    client: TestClient, operator: dict[str, str], database: Database
) -> None:
    answer = upload(client, operator, SAMPLE_PLACES["40"].read_bytes())
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["rejected"] == [] and result["created"] == result["received"] >= 15
    stored = places(database)
    kim_lien = stored["dl.kim_lien"]
    assert kim_lien.name_vi == "Khu di tích Kim Liên" and kim_lien.kind == "tourist_site"
    listed = client.get("/api/v1/places", params={"commune": "Phường Cửa Lò"}).json()["items"]
    assert {"dl.bien_cua_lo", "dl.dao_lan_chau"} <= {item["code"] for item in listed}
    beach = next(item for item in listed if item["code"] == "dl.bien_cua_lo")
    assert beach["commune"] == {"code": "16732", "name_vi": "Phường Cửa Lò", "name_en": "Cua Lo Ward"}


def test_bad_rows_are_rejected_with_row_and_reason_and_good_rows_kept(
    client: TestClient, operator: dict[str, str], database: Database
) -> None:
    data = (
        HEADER
        + "dl.ok,tourist_site,Đền Cuông,Cuong Temple,19.0180,105.6050,,,,\n"  # row 2: good
        + ",tourist_site,Không mã,,18.7,105.6,,,,\n"  # row 3: no code
        + "dl.kind,casino,Sòng bạc,,18.7,105.6,,,,\n"  # row 4: unknown kind
        + "dl.lat,tourist_site,Sai vĩ độ,,abc,105.6,,,,\n"  # row 5: not a number
        + "dl.swap,tourist_site,Đảo ngược,,105.6,18.7,,,,\n"  # row 6: latitude and longitude swapped
        + "dl.hanoi,tourist_site,Hồ Gươm,,21.0287,105.8523,,,,\n"  # row 7: outside the province
        + "dl.commune,tourist_site,Sai xã,,18.7,105.6,Xã Không Có,,,\n"  # row 8: unknown commune
        + "dl.owner,tourist_site,Sai cơ quan,,18.7,105.6,,,so_khong_co,\n"  # row 9: unknown agency
        + "dl.ok,tourist_site,Trùng mã,,18.7,105.6,,,,\n"  # row 10: same code as row 2
        + "dl.extra,tourist_site,Thừa cột,,18.7,105.6,,Vinh, Nghệ An,,Sở Du lịch\n"  # row 11: unquoted comma
        + "\n"  # row 12: empty, skipped
        + 'dl.good2,Bệnh viện,Bệnh viện Hữu nghị Đa khoa Nghệ An,,"18,7311",105.6929,,,so_y_te,Sở Y tế\n'
    ).encode()
    answer = upload(client, operator, data)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["received"], result["accepted"], result["created"], result["rejected_count"]) == (11, 2, 2, 9)
    reasons = {rejection["row"]: rejection for rejection in result["rejected"]}
    assert {row: reasons[row]["code"] for row in reasons} == {
        3: "missing_field",
        4: "unknown_kind",
        5: "invalid_coordinate",
        6: "coordinate_out_of_range",
        7: "outside_province",
        8: "unknown_commune",
        9: "unknown_agency",
        10: "duplicate_in_file",
        11: "too_many_values",
    }
    assert reasons[3]["field"] == "code" and reasons[3]["place"] is None
    assert reasons[4]["place"] == "dl.kind" and "casino" in reasons[4]["message_vi"]
    assert "đổi chỗ" in reasons[6]["message_vi"] and "swapped" in reasons[6]["message_en"]
    assert "ngoài tỉnh" in reasons[7]["message_vi"] and "outside the province" in reasons[7]["message_en"]
    assert "dòng 2" in reasons[10]["message_vi"] and "row 2" in reasons[10]["message_en"]
    stored = places(database)
    assert set(stored) == {"dl.ok", "dl.good2"}
    hospital = stored["dl.good2"]
    assert hospital.kind == "hospital" and hospital.latitude == pytest.approx(18.7311)  # a decimal comma is fine
    assert hospital.owner_agency_id is not None and hospital.source == "Sở Y tế"
    assert hospital.commune_id is not None  # the nearest commune centroid
    assert stored["dl.ok"].name_en == "Cuong Temple"


def test_vietnamese_headers_and_commune_by_name_without_diacritics(
    client: TestClient, operator: dict[str, str], database: Database
) -> None:
    data = (
        "Mã,Tên,Loại,Vĩ độ,Kinh độ,Xã/Phường,Địa chỉ,Điện thoại\n"
        "cho.vinh,Chợ Vinh,Chợ,18.6710,105.6900,thanh vinh,Đường Cao Thắng,0238 3 844 000\n"
    ).encode()
    result = upload(client, operator, data).json()
    assert result["created"] == 1, result
    market = places(database)["cho.vinh"]
    assert market.kind == "market" and market.name_en == "Cho Vinh"
    assert market.address == "Đường Cao Thắng" and market.attributes == {"dien_thoai": "0238 3 844 000"}
    item = client.get("/api/v1/places/cho.vinh").json()
    assert item["commune"]["code"] == "16681" and item["attributes"] == {"dien_thoai": "0238 3 844 000"}


def test_reimporting_a_code_updates_it_and_is_audited(
    client: TestClient, operator: dict[str, str], database: Database, clock: FrozenClock
) -> None:
    first = (HEADER + "dl.x,tourist_site,Đền Cuông,,19.0180,105.6050,,,,\n").encode()
    assert upload(client, operator, first).json()["created"] == 1
    clock.advance(timedelta(hours=1))
    assert upload(client, operator, first).json()["unchanged"] == 1
    second = (HEADER + "dl.x,tourist_site,Đền Cuông (Diễn Châu),,19.0180,105.6050,,,,\n").encode()
    result = upload(client, operator, second).json()
    assert (result["created"], result["updated"], result["unchanged"]) == (0, 1, 0)
    place = places(database)["dl.x"]
    assert place.name_vi == "Đền Cuông (Diễn Châu)" and place.updated_at == clock() and place.created_at < clock()
    with database.reading() as session:
        entries = list(
            session.scalars(select(AuditEntry).where(AuditEntry.entity_type == "place").order_by(AuditEntry.id))
        )
    assert [(entry.action, entry.actor) for entry in entries] == [
        ("place.create", "operator"),
        ("place.update", "operator"),
    ]
    assert entries[1].details["changes"]["name_vi"] == ["Đền Cuông", "Đền Cuông (Diễn Châu)"]


def test_a_bom_is_accepted(client: TestClient, operator: dict[str, str], database: Database) -> None:
    data = b"\xef\xbb\xbf" + (HEADER + "dl.bom,tourist_site,Đảo Chè,,18.7150,105.2550,,,,\n").encode()
    assert upload(client, operator, data).json()["created"] == 1
    assert places(database)["dl.bom"].name_vi == "Đảo Chè"


def test_a_windows_1258_file_is_refused_clearly_and_nothing_is_stored(
    client: TestClient, operator: dict[str, str], database: Database
) -> None:
    data = windows_1258(HEADER + "dl.x,tourist_site,Đền Cuông,,19.0180,105.6050,,,,\n")
    assert data.decode("cp1258") != data.decode("utf-8", errors="replace")
    answer = upload(client, operator, data)
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["code"] == "places_file_not_utf8"
    assert "UTF-8" in problem["message_vi"] and "dòng 2" in problem["message_vi"]
    assert "CSV UTF-8" in problem["message_en"] and "line 2" in problem["message_en"]
    assert count_rows(database, "places") == 0


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "places_file_empty"),
        (b"code,kind,name_vi\nx,tourist_site,X\n", "places_file_missing_columns"),
        (b"code,ma,kind,name_vi,latitude,longitude\n", "places_file_duplicate_column"),
        (b'{"type": "FeatureCollection", "features": [', "places_file_not_geojson"),
        (b'{"type": "Point", "coordinates": [105, 18]}', "places_file_not_geojson"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole(
    client: TestClient, operator: dict[str, str], data: bytes, code: str
) -> None:
    answer = upload(client, operator, data)
    assert answer.status_code == 422 and answer.json()["code"] == code
    assert answer.json()["message_vi"] and answer.json()["message_en"]


def test_a_geojson_with_a_broken_feature_keeps_the_good_ones(
    client: TestClient, operator: dict[str, str], database: Database
) -> None:
    document = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "dl.pu_mat",
                "geometry": {"type": "Point", "coordinates": [104.68, 19.0]},
                "properties": {"loai": "Điểm du lịch", "ten": "Vườn quốc gia Pù Mát", "website": "pumat.vn"},
            },
            {"type": "Feature", "geometry": None, "properties": {"code": "a", "kind": "park", "name_vi": "A"}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": ["105", 18]}, "properties": {}},
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [[105, 18], [105.1, 18.1]]},
                "properties": {"code": "b"},
            },
            "not a feature",
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [105.6, 18.7]}, "properties": [1]},
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [105.69, 18.67, 12.0]},
                "properties": {"code": "qt.hcm", "kind": "park", "name_vi": "Quảng trường Hồ Chí Minh"},
            },
        ],
    }
    answer = client.post(
        IMPORT,
        files={"file": ("places.geojson", json.dumps(document).encode(), "application/geo+json")},
        headers=operator,
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["format"] == "geojson" and result["created"] == 2
    assert {r["row"]: r["code"] for r in result["rejected"]} == {
        2: "not_a_point",
        3: "invalid_point",
        4: "not_a_point",
        5: "not_a_feature",
        6: "properties_not_object",
    }
    stored = places(database)
    assert stored["dl.pu_mat"].attributes == {"website": "pumat.vn"}
    assert stored["dl.pu_mat"].latitude == 19.0 and stored["dl.pu_mat"].longitude == 104.68


def test_an_oversized_upload_is_refused_with_413(
    client: TestClient, operator: dict[str, str], database: Database
) -> None:
    data = (HEADER + "dl.x,tourist_site,X,,19.0,105.6,,,,\n").encode()
    data += b"#" * (MAX_IMPORT_BYTES + 1 - len(data))
    answer = upload(client, operator, data)
    assert answer.status_code == 413 and answer.json()["code"] == "body_too_large"
    assert count_rows(database, "places") == 0


def test_too_many_rows_are_refused_with_413(client: TestClient, app: Any, operator: dict[str, str]) -> None:
    limit = app.state.parts.settings.max_batch_items
    data = (HEADER + "x,park,X,,18.7,105.6,,,,\n" * (limit + 1)).encode()
    answer = upload(client, operator, data)
    assert answer.status_code == 413 and answer.json()["code"] == "places_file_too_many_rows"


def test_a_csv_may_be_sent_as_the_body(client: TestClient, operator: dict[str, str]) -> None:
    data = (HEADER + "dl.raw,tourist_site,Đền Cuông,,19.0180,105.6050,,,,\n").encode()
    answer = client.post(IMPORT, content=data, headers={**operator, "Content-Type": "text/csv; charset=utf-8"})
    assert answer.status_code == 200 and answer.json()["created"] == 1
    other = client.post(IMPORT, content=b"x", headers={**operator, "Content-Type": "application/pdf"})
    assert other.status_code == 415
    no_file = client.post(IMPORT, data={"note": "x"}, files={"other": ("a.csv", b"a", "text/csv")}, headers=operator)
    assert no_file.status_code == 422 and no_file.json()["code"] == "validation_failed"


# --- who may import -------------------------------------------------------------------------------------


def test_the_admin_imports_and_is_the_audited_actor(
    client: TestClient, app: Any, personas: dict[str, str], database: Database
) -> None:
    login(client, "admin")
    answer = upload(client, csrf_header(client, app), (HEADER + "dl.a,park,A,,18.67,105.68,,,,\n").encode())
    assert answer.status_code == 200 and answer.json()["created"] == 1
    with database.reading() as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "place.create"))
    assert entry is not None and entry.actor == "admin" and entry.details["code"] == "dl.a"


@pytest.mark.parametrize("username", ["leader", "officer_a", "citizen"])
def test_other_roles_may_not_import(
    client: TestClient, app: Any, personas: dict[str, str], database: Database, username: str
) -> None:
    login(client, username)
    answer = upload(client, csrf_header(client, app), (HEADER + "dl.a,park,A,,18.67,105.68,,,,\n").encode())
    assert answer.status_code == 403 and answer.json()["code"] == "forbidden"
    assert count_rows(database, "places") == 0


def test_an_agency_key_may_not_import(client: TestClient, hcc_key: AgencyKey) -> None:
    answer = upload(client, hcc_key.headers, (HEADER + "dl.a,park,A,,18.67,105.68,,,,\n").encode())
    assert answer.status_code == 403


def test_a_session_without_csrf_token_may_not_import(
    client: TestClient, personas: dict[str, str], database: Database
) -> None:
    login(client, "operator")
    answer = upload(client, {}, (HEADER + "dl.a,park,A,,18.67,105.68,,,,\n").encode())
    assert answer.status_code == 403 and answer.json()["code"] == "csrf_failed"
    assert count_rows(database, "places") == 0


def test_anonymous_may_not_import(client: TestClient) -> None:
    answer = upload(client, {}, (HEADER + "dl.a,park,A,,18.67,105.68,,,,\n").encode())
    assert answer.status_code == 401 and answer.json()["code"] == "unauthenticated"


def test_control_characters_reject_their_row_only(
    client: TestClient, operator: dict[str, str], database: Database
) -> None:
    data = (
        "code,kind,name_vi,latitude,longitude,ghi_chu\n"
        "dl.nul,park,Công\x00viên,18.67,105.68,\n"
        "dl.nul2,park,Công viên,18.67,105.68,ghi\x00chú\n"
        "dl.ok,park,Công viên Trung tâm,18.67,105.68,ghi chú\n"
    ).encode()
    result = upload(client, operator, data).json()
    assert {r["row"]: (r["code"], r["field"]) for r in result["rejected"]} == {
        2: ("control_character", "name_vi"),
        3: ("control_character", "attributes"),
    }
    assert set(places(database)) == {"dl.ok"}
