"""The values API: problems for a bad request, who may see what, and a fixed number of queries per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from derived_support import PROVINCE, RATE, RECEIVED, by_subject, communes, observation, seed, seed_rates, values
from fastapi.testclient import TestClient
from observations_support import assert_problem
from sqlalchemy import event

from conftest import AgencyKey, login, make_key

CAMERAS, ONLINE, ONLINE_RATE = "antt.camera", "antt.camera_truc_tuyen", "antt.ty_le_camera_truc_tuyen"
ACCIDENTS = "antt.tai_nan_giao_thong"  # restricted, owned by the provincial police
NOW = "2026-11-27T09:00:00+07:00"


@pytest.fixture
def igate(database, clock) -> AgencyKey:
    return make_key(
        database,
        clock(),
        agency="trung_tam_phuc_vu_hcc",
        feed="igate_api",
        indicators=[RATE, RECEIVED, "hcc.ho_so_dung_han", "hcc.ho_so_giai_quyet"],
    )


@pytest.fixture
def police(client, database, clock) -> AgencyKey:
    """The police's key with cameras and accidents in two communes."""
    key = make_key(
        database, clock(), agency="cong_an_tinh", feed="antt_cameras", indicators=[CAMERAS, ONLINE, ACCIDENTS]
    )
    a, b = communes(database, 2)
    seed(
        client,
        key,
        observation(CAMERAS, a, 4, NOW),
        observation(ONLINE, a, 3, NOW),
        observation(CAMERAS, b, 6, NOW),
        observation(ONLINE, b, 6, NOW),
        observation(ACCIDENTS, a, 2),
        observation(ACCIDENTS, b, 1),
    )
    return key


def test_an_unknown_indicator_is_a_404_problem(client, igate: AgencyKey) -> None:
    for path in ("values?period=2026-10", "versions"):
        assert_problem(
            client.get(f"/api/v1/indicators/hcc.khong_co/{path}", headers=igate.headers), 404, "unknown_indicator"
        )


@pytest.mark.parametrize("period", ["10/2026", "2026-13", "2026-11-27T10:00:00", "Q3-2026"])
def test_a_bad_period_is_a_422_problem(client, igate: AgencyKey, period: str) -> None:
    answer = client.get(f"/api/v1/indicators/{RATE}/values", headers=igate.headers, params={"period": period})

    problem = assert_problem(answer, 422, "invalid_period")
    assert period in problem["message_vi"] and period in problem["message_en"]


def test_a_period_of_another_kind_is_a_422_problem(client, igate: AgencyKey) -> None:
    answer = client.get(f"/api/v1/indicators/{RATE}/values", headers=igate.headers, params={"period": "2026-Q3"})

    problem = assert_problem(answer, 422, "period_type_mismatch")
    assert "tháng" in problem["message_vi"] and "quý" in problem["message_vi"]
    assert "month" in problem["message_en"] and "quarter" in problem["message_en"]


def test_the_period_is_required(client, igate: AgencyKey) -> None:
    assert_problem(client.get(f"/api/v1/indicators/{RATE}/values", headers=igate.headers), 422, "validation_failed")


def test_an_unknown_subject_is_a_404_problem(client, igate: AgencyKey) -> None:
    answer = client.get(
        f"/api/v1/indicators/{RATE}/values", headers=igate.headers, params={"period": "2026-10", "subject": "99999"}
    )

    assert_problem(answer, 404, "unknown_subject")


def test_an_instant_ratio_is_computed_over_a_day(client, database, police: AgencyKey) -> None:
    a, b = communes(database, 2)

    rows = by_subject(values(client, police.headers, ONLINE_RATE, period="2026-11-27"))

    assert rows[a]["value"] == pytest.approx(75.0) and rows[b]["value"] == pytest.approx(100.0)
    assert rows[PROVINCE]["value"] == pytest.approx(90.0)  # 9 of 10 cameras online
    assert rows[PROVINCE]["communes_reported"] == 2


@pytest.mark.parametrize("username", ["leader", "operator", "admin"])
def test_province_wide_roles_see_a_restricted_indicators_values(client, personas, police, username: str) -> None:
    login(client, username)

    accidents = by_subject(values(client, {}, ACCIDENTS, period="2026-10"))
    rate = by_subject(values(client, {}, ONLINE_RATE, period="2026-11-27"))

    assert accidents[PROVINCE]["value"] == 3
    assert rate[PROVINCE]["value"] == pytest.approx(90.0)


def test_the_owner_agencys_key_sees_its_restricted_indicators_values(client, police: AgencyKey) -> None:
    assert by_subject(values(client, police.headers, ACCIDENTS, period="2026-10"))[PROVINCE]["value"] == 3
    assert client.get(f"/api/v1/indicators/{ACCIDENTS}/versions", headers=police.headers).status_code == 200


@pytest.mark.parametrize("username", ["officer_a", "officer_b"])
def test_an_officer_of_another_agency_does_not_see_a_restricted_indicators_values(
    client, personas, police, username: str
) -> None:
    login(client, username)

    for code, period in ((ACCIDENTS, "2026-10"), (ONLINE_RATE, "2026-11-27"), (CAMERAS, "2026-11-27")):
        assert_problem(
            client.get(f"/api/v1/indicators/{code}/values", params={"period": period}), 404, "unknown_indicator"
        )
        assert_problem(client.get(f"/api/v1/indicators/{code}/versions"), 404, "unknown_indicator")


def test_an_officer_sees_the_values_of_public_indicators(client, personas, database, igate: AgencyKey) -> None:
    [a] = communes(database, 1)
    seed_rates(client, igate, {a: (3, 4)})
    login(client, "officer_b")

    assert by_subject(values(client, {}, RATE, period="2026-10"))[PROVINCE]["value"] == pytest.approx(75.0)


def test_a_citizen_may_not_read_values(client, personas) -> None:
    login(client, "citizen")

    assert_problem(client.get(f"/api/v1/indicators/{RATE}/values", params={"period": "2026-10"}), 403, "forbidden")
    assert_problem(client.get(f"/api/v1/indicators/{RATE}/versions"), 403, "forbidden")


@pytest.fixture
def anonymous(app) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def test_anonymous_may_not_read_values(anonymous: TestClient) -> None:
    for path in (f"/api/v1/indicators/{RATE}/values?period=2026-10", f"/api/v1/indicators/{RATE}/versions"):
        assert_problem(anonymous.get(path), 401, "unauthenticated")


def _statements(database, run: Any) -> list[str]:
    """The SQL statements a call runs."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        run()
    finally:
        event.remove(database.engine, "before_cursor_execute", count)
    return seen


def test_the_number_of_queries_does_not_grow_with_the_number_of_subjects(client, database, igate: AgencyKey) -> None:
    many = communes(database, 60)
    seed_rates(client, igate, {code: (9, 10) for code in many[:2]})
    values(client, igate.headers, RATE, period="2026-10")  # the key's last use is recorded once a minute: warm up

    few = _statements(database, lambda: values(client, igate.headers, RATE, period="2026-10"))
    seed_rates(client, igate, {code: (9, 10) for code in many})
    page = _statements(database, lambda: values(client, igate.headers, RATE, period="2026-10"))

    assert len(page) == len(few) <= 12
    # One statement reads the observations, whatever the number of subjects.
    assert sum("FROM observations" in statement for statement in page) == 1
    assert len(values(client, igate.headers, RATE, period="2026-10")["items"]) == 61


def test_the_openapi_description_lists_the_values_and_versions_paths(client) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    assert "period" in {
        parameter["name"] for parameter in paths["/api/v1/indicators/{code}/values"]["get"]["parameters"]
    }
    assert "/api/v1/indicators/{code}/versions" in paths
