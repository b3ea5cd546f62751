"""The largest batch allowed: 10,000 observations in one request, all stored and readable."""

from __future__ import annotations

from typing import Any

import pytest
from observations_support import item, send_ok, series
from sqlalchemy import select

from cityops.geo.models import Subject
from conftest import AgencyKey, count_rows

MONTHS = [f"{year}-{month:02d}" for year in range(2020, 2027) for month in range(1, 13)][3:-1]  # 2020-04 … 2026-11


@pytest.fixture
def ten_thousand(database) -> list[dict[str, Any]]:
    """Dossiers received in 125 communes and wards over 80 months."""
    with database.reading() as session:
        query = select(Subject.code).where(Subject.kind == "commune").order_by(Subject.code).limit(125)
        communes = list(session.scalars(query))
    assert len(communes) == 125 and len(MONTHS) == 80
    return [item(subject=code, period=month, value=n) for code in communes for n, month in enumerate(MONTHS)]


def test_a_batch_of_10000_observations_is_stored_whole_and_readable(
    client, hcc_key: AgencyKey, database, ten_thousand: list[dict[str, Any]]
) -> None:
    answer = send_ok(client, hcc_key, *ten_thousand)

    assert (answer["received"], answer["accepted"], answer["created"], answer["rejected_count"]) == (
        10_000,
        10_000,
        10_000,
        0,
    )
    assert count_rows(database, "observations") == 10_000
    one_commune = series(client, hcc_key.headers, "hcc.ho_so_tiep_nhan", subject=ten_thousand[0]["subject"], limit=5000)
    assert [row["period"] for row in one_commune["items"]] == MONTHS
    latest = client.get(
        "/api/v1/indicators/hcc.ho_so_tiep_nhan/latest",
        headers=hcc_key.headers,
        params={"subject_kind": "commune", "limit": 5000},
    ).json()
    assert latest["total"] == 125
    assert {(row["period"], row["value"]) for row in latest["items"]} == {("2026-11", 79.0)}


def test_resending_a_batch_of_10000_observations_changes_nothing(
    client, hcc_key: AgencyKey, database, ten_thousand: list[dict[str, Any]]
) -> None:
    send_ok(client, hcc_key, *ten_thousand)

    again = send_ok(client, hcc_key, *ten_thousand)

    assert (again["accepted"], again["created"], again["replaced"], again["unchanged"]) == (10_000, 0, 0, 10_000)
    assert count_rows(database, "observations") == 10_000
    assert count_rows(database, "observation_history") == 0
