"""The read API: indicators, a series over time, the latest value per subject, and who may see what."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from observations_support import assert_problem, item, send_ok, series
from sqlalchemy import func, select

from cityops.accounts import service as accounts
from cityops.catalog.models import Indicator
from cityops.geo.models import Subject
from conftest import PASSWORD, AgencyKey, login, make_key

POLICE_INDICATOR = "antt.tai_nan_giao_thong"  # restricted, owned by cong_an_tinh
SOC_INDICATOR = "attt.su_kien"  # restricted, owned by so_khcn


def indicator_count(database, *conditions: Any) -> int:
    with database.reading() as session:
        return int(session.scalar(select(func.count()).select_from(Indicator).where(*conditions)) or 0)


def communes(database, how_many: int) -> list[str]:
    with database.reading() as session:
        query = select(Subject.code).where(Subject.kind == "commune").order_by(Subject.code).limit(how_many)
        return list(session.scalars(query))


def get(client: TestClient, path: str, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
    answer = client.get(path, headers=headers or {}, params=params)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


@pytest.fixture
def police_key(database, clock) -> AgencyKey:
    """The provincial police's key, writing its traffic-accident figures."""
    return make_key(database, clock(), agency="cong_an_tinh", feed="csdl_antt", indicators=[POLICE_INDICATOR])


@pytest.fixture
def police_data(client, police_key: AgencyKey) -> AgencyKey:
    send_ok(client, police_key, item(indicator=POLICE_INDICATOR, value=14))
    return police_key


# --- indicators ------------------------------------------------------------------------------------


def test_the_indicator_list_pages_with_limit_and_offset_and_gives_the_total(client, hcc_key: AgencyKey) -> None:
    everything = get(client, "/api/v1/indicators", hcc_key.headers, limit=1000)
    first = get(client, "/api/v1/indicators", hcc_key.headers, limit=5, offset=0)
    second = get(client, "/api/v1/indicators", hcc_key.headers, limit=5, offset=5)
    past_the_end = get(client, "/api/v1/indicators", hcc_key.headers, limit=5, offset=everything["total"])

    codes = [row["code"] for row in everything["items"]]
    assert everything["total"] == len(codes) > 10
    assert (first["total"], first["limit"], first["offset"]) == (everything["total"], 5, 0)
    assert [row["code"] for row in first["items"]] == codes[:5]
    assert [row["code"] for row in second["items"]] == codes[5:10]
    assert past_the_end["items"] == [] and past_the_end["total"] == everything["total"]


def test_the_indicator_list_filters_by_domain(client, hcc_key: AgencyKey, database) -> None:
    page = get(client, "/api/v1/indicators", hcc_key.headers, domain="hcc", limit=1000)

    assert page["total"] == indicator_count(database, Indicator.code.like("hcc.%")) == len(page["items"])
    assert {row["domain"] for row in page["items"]} == {"hcc"}
    assert get(client, "/api/v1/indicators", hcc_key.headers, domain="khong_co")["total"] == 0


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("đúng hạn", {"hcc.ho_so_dung_han", "hcc.ty_le_dung_han"}),
        ("on time", {"hcc.ho_so_dung_han", "hcc.ty_le_dung_han"}),
        ("HCC.TY_LE_DUNG", {"hcc.ty_le_dung_han"}),
    ],
)
def test_the_indicator_list_searches_codes_and_both_names(
    client, hcc_key: AgencyKey, q: str, expected: set[str]
) -> None:
    page = get(client, "/api/v1/indicators", hcc_key.headers, q=q, domain="hcc")

    assert {row["code"] for row in page["items"]} == expected
    assert page["total"] == len(expected)


@pytest.mark.parametrize("q", ["Điểm du lịch", "ĐIỂM DU LỊCH", "diem du lich", "tourist site"])
def test_the_search_finds_a_vietnamese_name_with_or_without_diacritics(client, hcc_key: AgencyKey, q: str) -> None:
    page = get(client, "/api/v1/indicators", hcc_key.headers, q=q)

    assert {row["code"] for row in page["items"]} == {"dulich.diem_du_lich", "dulich.diem_du_lich_duoc_cong_nhan"}


def test_the_search_treats_percent_and_underscore_literally(client, hcc_key: AgencyKey) -> None:
    assert get(client, "/api/v1/indicators", hcc_key.headers, q="%%")["total"] == 0
    assert get(client, "/api/v1/indicators", hcc_key.headers, q="hcc.ho_so_tiep_nhan_")["total"] == 1


def test_one_indicator_is_described_by_its_code(client, hcc_key: AgencyKey) -> None:
    indicator = get(client, "/api/v1/indicators/hcc.ty_le_dung_han", hcc_key.headers)

    assert indicator["code"] == "hcc.ty_le_dung_han"
    assert indicator["name_vi"] == "Tỷ lệ hồ sơ giải quyết đúng hạn"
    assert indicator["name_en"] == "Dossiers resolved on time (%)"
    assert (indicator["domain"], indicator["period_type"], indicator["unit"]) == ("hcc", "month", "percent")
    assert (indicator["min_value"], indicator["max_value"]) == (0, 100)
    assert indicator["owner_agency"] == "trung_tam_phuc_vu_hcc"
    assert (indicator["numerator"], indicator["denominator"]) == ("hcc.ho_so_dung_han", "hcc.ho_so_giai_quyet")
    assert indicator["dimensions"] == ["linh_vuc", "co_quan"]


def test_an_unknown_indicator_is_a_404_problem(client, hcc_key: AgencyKey) -> None:
    for path in ("/api/v1/indicators/hcc.khong_co", "/api/v1/indicators/hcc.khong_co/latest"):
        problem = assert_problem(client.get(path, headers=hcc_key.headers), 404, "unknown_indicator")
        assert problem["message_vi"] == "Không có chỉ tiêu mã hcc.khong_co mà bạn được xem."


# --- series ----------------------------------------------------------------------------------------

TWELVE_MONTHS = ["2025-12"] + [f"2026-{month:02d}" for month in range(1, 12)]


@pytest.fixture
def a_year_of_dossiers(client, hcc_key: AgencyKey) -> AgencyKey:
    """Dossiers received in the province each month from December 2025 to November 2026 (1000 + month)."""
    send_ok(client, hcc_key, *[item(period=period, value=1000 + n) for n, period in enumerate(TWELVE_MONTHS)])
    return hcc_key


def test_a_series_is_every_value_of_the_subject_oldest_first(client, a_year_of_dossiers: AgencyKey) -> None:
    page = series(client, a_year_of_dossiers.headers, "hcc.ho_so_tiep_nhan", subject="40")

    assert page["total"] == 12
    assert [row["period"] for row in page["items"]] == TWELVE_MONTHS
    assert page["items"][0]["value"] == 1000.0
    assert {row["subject"] for row in page["items"]} == {"40"}
    assert {row["subject_name"] for row in page["items"]} == {"Tỉnh Nghệ An"}


def test_a_series_is_limited_to_the_periods_from_up_to_before_to(client, a_year_of_dossiers: AgencyKey) -> None:
    page = series(
        client, a_year_of_dossiers.headers, "hcc.ho_so_tiep_nhan", subject="40", **{"from": "2026-01"}, to="2026-07"
    )

    assert [row["period"] for row in page["items"]] == [
        "2026-01",
        "2026-02",
        "2026-03",
        "2026-04",
        "2026-05",
        "2026-06",
    ]
    assert page["total"] == 6


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2026", None, TWELVE_MONTHS[1:]),
        ("2026-Q3", "2026-Q4", ["2026-07", "2026-08", "2026-09"]),
        ("2026-03-01", "2026-05-01", ["2026-03", "2026-04"]),
        ("2026-10-31T17:00:00Z", None, ["2026-11"]),
        (None, "2026-01", ["2025-12"]),
    ],
)
def test_a_series_range_may_be_given_in_any_period_form(
    client, a_year_of_dossiers: AgencyKey, start: str | None, end: str | None, expected: list[str]
) -> None:
    params = {name: value for name, value in (("from", start), ("to", end)) if value}

    page = series(client, a_year_of_dossiers.headers, "hcc.ho_so_tiep_nhan", subject="40", **params)

    assert [row["period"] for row in page["items"]] == expected


def test_a_series_pages_with_limit_and_offset_within_its_range(client, a_year_of_dossiers: AgencyKey) -> None:
    page = series(
        client,
        a_year_of_dossiers.headers,
        "hcc.ho_so_tiep_nhan",
        subject="40",
        **{"from": "2026-01"},
        limit=2,
        offset=2,
    )

    assert [row["period"] for row in page["items"]] == ["2026-03", "2026-04"]
    assert (page["total"], page["limit"], page["offset"]) == (11, 2, 2)


def test_a_series_of_another_subject_holds_only_that_subjects_values(client, a_year_of_dossiers: AgencyKey) -> None:
    send_ok(client, a_year_of_dossiers, item(subject="16681", period="2026-10", value=75))

    commune = series(client, a_year_of_dossiers.headers, "hcc.ho_so_tiep_nhan", subject="16681")

    assert [(row["period"], row["value"]) for row in commune["items"]] == [("2026-10", 75.0)]


def test_a_series_of_an_unknown_subject_is_a_404_problem(client, hcc_key: AgencyKey) -> None:
    answer = client.get(
        "/api/v1/indicators/hcc.ho_so_tiep_nhan/series", headers=hcc_key.headers, params={"subject": "99"}
    )

    problem = assert_problem(answer, 404, "unknown_subject")
    assert problem["message_vi"] == "Không có đơn vị hành chính hoặc đối tượng mã 99."


def test_a_series_of_an_unknown_indicator_is_a_404_problem(client, hcc_key: AgencyKey) -> None:
    answer = client.get("/api/v1/indicators/hcc.khong_co/series", headers=hcc_key.headers, params={"subject": "40"})

    assert_problem(answer, 404, "unknown_indicator")


# --- latest ----------------------------------------------------------------------------------------


def test_latest_gives_the_newest_period_of_each_subject(client, hcc_key: AgencyKey, database) -> None:
    first, second = communes(database, 2)
    send_ok(
        client,
        hcc_key,
        item(subject="40", period="2026-09", value=11000),
        item(subject="40", period="2026-10", value=12000),
        item(subject=first, period="2026-08", value=80),
        item(subject=first, period="2026-10", value=100),
        item(subject=first, period="2026-09", value=90),
        item(subject=second, period="2026-09", value=50),
        item(subject="40", period="2026-11", value=1, dimensions={"kenh": "truc_tuyen"}),
    )

    page = get(client, "/api/v1/indicators/hcc.ho_so_tiep_nhan/latest", hcc_key.headers)

    newest = {row["subject"]: (row["period"], row["value"]) for row in page["items"]}
    assert newest == {"40": ("2026-10", 12000.0), first: ("2026-10", 100.0), second: ("2026-09", 50.0)}
    assert page["total"] == 3


def test_latest_filters_by_subject_kind(client, hcc_key: AgencyKey, database) -> None:
    some = communes(database, 3)
    send_ok(client, hcc_key, item(value=12000), *[item(subject=code, value=10 + n) for n, code in enumerate(some)])

    province = get(client, "/api/v1/indicators/hcc.ho_so_tiep_nhan/latest", hcc_key.headers, subject_kind="province")
    commune = get(client, "/api/v1/indicators/hcc.ho_so_tiep_nhan/latest", hcc_key.headers, subject_kind="commune")

    assert [row["subject"] for row in province["items"]] == ["40"]
    assert sorted(row["subject"] for row in commune["items"]) == sorted(some)
    assert commune["total"] == 3


def test_latest_pages_with_limit_and_offset(client, hcc_key: AgencyKey, database) -> None:
    some = communes(database, 5)
    send_ok(client, hcc_key, *[item(subject=code, value=n) for n, code in enumerate(some)])

    page = get(client, "/api/v1/indicators/hcc.ho_so_tiep_nhan/latest", hcc_key.headers, limit=2, offset=2)

    assert [row["subject"] for row in page["items"]] == sorted(some)[2:4]
    assert page["total"] == 5


# --- who may read ----------------------------------------------------------------------------------


def test_province_wide_roles_see_restricted_indicators_and_their_values(
    client, personas, police_data: AgencyKey, database
) -> None:
    for username in ("leader", "operator", "admin"):
        login(client, username)

        listed = get(client, "/api/v1/indicators", domain="antt", limit=1000)
        described = get(client, f"/api/v1/indicators/{POLICE_INDICATOR}")
        values = series(client, {}, POLICE_INDICATOR, subject="40")

        assert listed["total"] == indicator_count(database, Indicator.code.like("antt.%")) > 0, username
        assert described["access"] == "restricted"
        assert [row["value"] for row in values["items"]] == [14.0], username
        assert get(client, f"/api/v1/indicators/{SOC_INDICATOR}")["code"] == SOC_INDICATOR


def test_an_officer_of_another_agency_does_not_see_a_restricted_indicator(
    client, personas, police_data: AgencyKey, database
) -> None:
    login(client, "officer_b")

    everything = get(client, "/api/v1/indicators", limit=1000)
    police = get(client, "/api/v1/indicators", domain="antt")

    assert POLICE_INDICATOR not in {row["code"] for row in everything["items"]}
    assert {row["access"] for row in everything["items"]} <= {"public", "internal"}
    assert everything["total"] == indicator_count(database, Indicator.access != "restricted")
    assert police["total"] == 0
    for path in ("", "/series?subject=40", "/latest"):
        assert_problem(client.get(f"/api/v1/indicators/{POLICE_INDICATOR}{path}"), 404, "unknown_indicator")


def test_an_officer_sees_the_public_indicators_of_other_agencies(client, personas, hcc_key: AgencyKey) -> None:
    send_ok(client, hcc_key, item(value=12000))
    login(client, "officer_b")

    values = series(client, {}, "hcc.ho_so_tiep_nhan", subject="40")

    assert [row["value"] for row in values["items"]] == [12000.0]


def test_the_owner_agencys_key_sees_its_restricted_indicator(client, police_data: AgencyKey) -> None:
    described = get(client, f"/api/v1/indicators/{POLICE_INDICATOR}", police_data.headers)
    values = series(client, police_data.headers, POLICE_INDICATOR, subject="40")
    latest = get(client, f"/api/v1/indicators/{POLICE_INDICATOR}/latest", police_data.headers)

    assert described["owner_agency"] == "cong_an_tinh"
    assert [row["value"] for row in values["items"]] == [14.0]
    assert [row["value"] for row in latest["items"]] == [14.0]


def test_the_owner_agencys_key_does_not_see_another_agencys_restricted_indicator(
    client, police_data: AgencyKey
) -> None:
    answer = client.get(f"/api/v1/indicators/{SOC_INDICATOR}", headers=police_data.headers)

    assert_problem(answer, 404, "unknown_indicator")
    listed = get(client, "/api/v1/indicators", police_data.headers, domain="attt")
    assert listed["total"] == 0


def test_an_officer_of_the_owner_agency_sees_its_restricted_indicator(
    client, police_data: AgencyKey, database, clock
) -> None:
    with database.writing() as session:
        accounts.create_user(
            session,
            accounts.SYSTEM,
            clock(),
            username="can_bo_ca",
            password=PASSWORD,
            role="officer",
            agency_code="cong_an_tinh",
        )
    login(client, "can_bo_ca")

    values = series(client, {}, POLICE_INDICATOR, subject="40")

    assert [row["value"] for row in values["items"]] == [14.0]


def test_another_agencys_key_does_not_see_a_restricted_indicator(
    client, police_data: AgencyKey, hcc_key: AgencyKey
) -> None:
    answer = client.get(
        f"/api/v1/indicators/{POLICE_INDICATOR}/series", headers=hcc_key.headers, params={"subject": "40"}
    )

    assert_problem(answer, 404, "unknown_indicator")


READ_PATHS = [
    "/api/v1/indicators",
    "/api/v1/indicators/hcc.ho_so_tiep_nhan",
    "/api/v1/indicators/hcc.ho_so_tiep_nhan/series?subject=40",
    "/api/v1/indicators/hcc.ho_so_tiep_nhan/latest",
]


def test_a_citizen_may_not_use_the_read_api(client, personas) -> None:
    login(client, "citizen")

    for path in READ_PATHS:
        assert_problem(client.get(path), 403, "forbidden")


@pytest.fixture
def anonymous(app) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.mark.parametrize("path", READ_PATHS)
def test_an_anonymous_caller_must_authenticate_to_read(anonymous: TestClient, path: str) -> None:
    answer = anonymous.get(path)

    assert_problem(answer, 401, "unauthenticated")
    assert answer.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("path", READ_PATHS)
def test_an_agency_key_may_read(client, hcc_key: AgencyKey, path: str) -> None:
    assert client.get(path, headers=hcc_key.headers).status_code == 200
