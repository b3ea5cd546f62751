"""What is stored: every period form, null with a reason, dimensions, and replace-with-history."""

from __future__ import annotations

from datetime import timedelta

import pytest
from observations_support import item, send_ok, series
from sqlalchemy import text

from conftest import AgencyKey, count_rows, make_key

INDICATOR_OF_PERIOD = {
    "day": "pakn.tiep_nhan",
    "month": "hcc.ho_so_tiep_nhan",
    "quarter": "ktxh.tang_truong_grdp",
    "year": "ktxh.ho_ngheo_da_chieu",
    "school_year": "giaoduc.so_truong",
    "instant": "hcc.ho_so_qua_han",
}


@pytest.fixture
def ioc_key(database, clock) -> AgencyKey:
    """The operations centre's integration feed, holding one indicator of each period type."""
    return make_key(
        database,
        clock(),
        agency="trung_tam_giam_sat_dieu_hanh",
        feed="ioc_lien_thong",
        indicators=list(INDICATOR_OF_PERIOD.values()),
    )


def history(database) -> list[tuple[float | None, str]]:
    """The replaced values, oldest first: (value, null_reason)."""
    with database.reading() as session:
        rows = session.execute(text("SELECT value, null_reason FROM observation_history ORDER BY id"))
        return [(row.value, row.null_reason) for row in rows]


@pytest.mark.parametrize(
    ("period_type", "sent", "stored", "start"),
    [
        ("day", "2026-11-27", "2026-11-27", "2026-11-26T17:00:00+00:00"),
        ("month", "2026-11", "2026-11", "2026-10-31T17:00:00+00:00"),
        ("quarter", "2026-Q3", "2026-Q3", "2026-06-30T17:00:00+00:00"),
        ("quarter", "2026-q3", "2026-Q3", "2026-06-30T17:00:00+00:00"),
        ("year", "2026", "2026", "2025-12-31T17:00:00+00:00"),
        ("school_year", "2025-2026", "2025-2026", "2025-08-31T17:00:00+00:00"),
        ("instant", "2026-11-27T08:30:00+07:00", "2026-11-27T01:30:00.000000Z", "2026-11-27T01:30:00+00:00"),
        ("instant", "2026-11-27T01:30:00Z", "2026-11-27T01:30:00.000000Z", "2026-11-27T01:30:00+00:00"),
    ],
)
def test_every_period_form_is_stored_under_its_canonical_key_from_local_midnight(
    client, ioc_key: AgencyKey, period_type: str, sent: str, stored: str, start: str
) -> None:
    indicator = INDICATOR_OF_PERIOD[period_type]

    answer = send_ok(client, ioc_key, item(indicator=indicator, period=sent, value=7))

    assert answer["accepted"] == 1, answer["rejected"]
    [row] = series(client, ioc_key.headers, indicator, subject="40")["items"]
    assert (row["period"], row["period_type"], row["period_start"], row["value"]) == (stored, period_type, start, 7.0)


@pytest.mark.parametrize("instant", ["2026-11-27T08:30:00", "2026-11-27T08:30", "2026-11-27 08:30:00"])
def test_an_instant_without_offset_is_an_invalid_period(client, ioc_key: AgencyKey, instant: str) -> None:
    answer = send_ok(client, ioc_key, item(indicator="hcc.ho_so_qua_han", period=instant, value=3))

    assert [(r["code"], r["field"]) for r in answer["rejected"]] == [("invalid_period", "period")]


@pytest.mark.parametrize("school_year", ["2025-2027", "2026-2025"])
def test_a_school_year_is_two_consecutive_years(client, ioc_key: AgencyKey, school_year: str) -> None:
    answer = send_ok(client, ioc_key, item(indicator="giaoduc.so_truong", period=school_year, value=1520))

    assert [r["code"] for r in answer["rejected"]] == ["invalid_period"]


def test_an_instant_a_few_minutes_ahead_is_tolerated_but_an_hour_ahead_is_the_future(
    client, ioc_key: AgencyKey
) -> None:
    answer = send_ok(
        client,
        ioc_key,
        item(indicator="hcc.ho_so_qua_han", period="2026-11-27T10:04:00+07:00", value=1),
        item(indicator="hcc.ho_so_qua_han", period="2026-11-27T11:00:00+07:00", value=2),
    )

    assert answer["accepted"] == 1
    assert [(r["index"], r["code"]) for r in answer["rejected"]] == [(1, "period_in_future")]


def test_a_null_value_with_a_reason_is_stored_with_its_reason(client, hcc_key: AgencyKey) -> None:
    answer = send_ok(client, hcc_key, item(value=None, null_reason="iGate bảo trì, chưa tổng hợp được số liệu"))

    assert answer["accepted"] == 1
    [row] = series(client, hcc_key.headers, "hcc.ho_so_tiep_nhan", subject="40")["items"]
    assert row["value"] is None
    assert row["null_reason"] == "iGate bảo trì, chưa tổng hợp được số liệu"


def test_values_with_dimensions_are_kept_apart_and_read_by_their_dimensions(client, hcc_key: AgencyKey) -> None:
    send_ok(
        client,
        hcc_key,
        item(value=12000),
        item(value=9000, dimensions={"kenh": "truc_tuyen"}),
        item(value=3000, dimensions={"kenh": "truc_tiep"}),
    )

    online = series(client, hcc_key.headers, "hcc.ho_so_tiep_nhan", subject="40", dimensions="kenh=truc_tuyen")
    total = series(client, hcc_key.headers, "hcc.ho_so_tiep_nhan", subject="40", dimensions="")
    every = series(client, hcc_key.headers, "hcc.ho_so_tiep_nhan", subject="40")

    assert [(row["value"], row["dimensions"]) for row in online["items"]] == [(9000.0, {"kenh": "truc_tuyen"})]
    assert [(row["value"], row["dimensions"]) for row in total["items"]] == [(12000.0, {})]
    assert sorted(row["value"] for row in every["items"]) == [3000.0, 9000.0, 12000.0]


def test_dimensions_are_found_whatever_order_they_are_named_in(client, hcc_key: AgencyKey) -> None:
    send_ok(client, hcc_key, item(value=40, dimensions={"linh_vuc": "dat_dai", "kenh": "truc_tuyen"}))

    found = series(
        client, hcc_key.headers, "hcc.ho_so_tiep_nhan", subject="40", dimensions="kenh=truc_tuyen&linh_vuc=dat_dai"
    )

    assert [row["value"] for row in found["items"]] == [40.0]


def test_a_source_reference_is_stored_and_read_back(client, hcc_key: AgencyKey) -> None:
    send_ok(client, hcc_key, item(source_ref="igate-bc-2026-10"))

    [row] = series(client, hcc_key.headers, "hcc.ho_so_tiep_nhan", subject="40")["items"]
    assert row["source_ref"] == "igate-bc-2026-10"


def test_a_new_value_replaces_the_current_one_and_the_old_one_goes_to_history(
    client, hcc_key: AgencyKey, database, clock
) -> None:
    first = send_ok(client, hcc_key, item(value=12000))
    clock.advance(timedelta(hours=2))

    second = send_ok(client, hcc_key, item(value=12500))

    assert (first["created"], first["replaced"]) == (1, 0)
    assert (second["created"], second["replaced"], second["unchanged"]) == (0, 1, 0)
    [row] = series(client, hcc_key.headers, "hcc.ho_so_tiep_nhan", subject="40")["items"]
    assert row["value"] == 12500.0
    assert row["received_at"] == "2026-11-27T05:00:00+00:00"
    assert count_rows(database, "observations") == 1
    assert history(database) == [(12000.0, "")]


def test_resending_the_identical_value_is_unchanged_and_adds_no_history(
    client, hcc_key: AgencyKey, database, clock
) -> None:
    send_ok(client, hcc_key, item(value=12000, source_ref="bc-10"))
    clock.advance(timedelta(hours=1))

    again = send_ok(client, hcc_key, item(value=12000, source_ref="bc-10"))

    assert (again["accepted"], again["created"], again["replaced"], again["unchanged"]) == (1, 0, 0, 1)
    [row] = series(client, hcc_key.headers, "hcc.ho_so_tiep_nhan", subject="40")["items"]
    assert row["received_at"] == "2026-11-27T03:00:00+00:00"
    assert count_rows(database, "observations") == 1
    assert count_rows(database, "observation_history") == 0


def test_each_replacement_adds_one_history_row(client, hcc_key: AgencyKey, database) -> None:
    for value in (100, 110, 110, 120):
        send_ok(client, hcc_key, item(value=value))

    assert history(database) == [(100.0, ""), (110.0, "")]
    assert series(client, hcc_key.headers, "hcc.ho_so_tiep_nhan", subject="40")["items"][0]["value"] == 120.0


def test_a_figure_can_replace_a_null_and_the_null_with_its_reason_goes_to_history(
    client, hcc_key: AgencyKey, database
) -> None:
    send_ok(client, hcc_key, item(value=None, null_reason="chưa tổng hợp"))

    answer = send_ok(client, hcc_key, item(value=12000))

    assert answer["replaced"] == 1
    assert history(database) == [(None, "chưa tổng hợp")]
    [row] = series(client, hcc_key.headers, "hcc.ho_so_tiep_nhan", subject="40")["items"]
    assert (row["value"], row["null_reason"]) == (12000.0, None)


def test_a_new_source_reference_with_the_same_value_is_a_replacement(client, hcc_key: AgencyKey, database) -> None:
    send_ok(client, hcc_key, item(value=12000, source_ref="bc-10"))

    answer = send_ok(client, hcc_key, item(value=12000, source_ref="bc-10-dieu-chinh"))

    assert answer["replaced"] == 1
    assert count_rows(database, "observation_history") == 1


def test_replacing_one_dimension_leaves_the_total_and_other_dimensions_alone(
    client, hcc_key: AgencyKey, database
) -> None:
    send_ok(
        client,
        hcc_key,
        item(value=12000),
        item(value=9000, dimensions={"kenh": "truc_tuyen"}),
        item(value=3000, dimensions={"kenh": "truc_tiep"}),
    )

    answer = send_ok(client, hcc_key, item(value=9100, dimensions={"kenh": "truc_tuyen"}))

    assert (answer["created"], answer["replaced"]) == (0, 1)
    values = {
        row["dimensions"].get("kenh", ""): row["value"]
        for row in series(client, hcc_key.headers, "hcc.ho_so_tiep_nhan", subject="40")["items"]
    }
    assert values == {"": 12000.0, "truc_tuyen": 9100.0, "truc_tiep": 3000.0}
    assert history(database) == [(9000.0, "")]


def test_a_batch_both_creating_and_replacing_counts_each(client, hcc_key: AgencyKey) -> None:
    send_ok(client, hcc_key, item(period="2026-09", value=1), item(period="2026-10", value=2))

    answer = send_ok(
        client,
        hcc_key,
        item(period="2026-09", value=1),
        item(period="2026-10", value=3),
        item(period="2026-11", value=4),
    )

    assert (answer["accepted"], answer["created"], answer["replaced"], answer["unchanged"]) == (3, 1, 1, 1)
