"""Keys that must not collide, retries that only re-format the JSON, and credentials with control characters."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from observations_support import assert_problem, item, send_ok, send_raw, series

from cityops.db.engine import Database
from conftest import AgencyKey, count_rows


def test_a_dimension_value_holding_separators_does_not_overwrite_another_set(
    client: TestClient, hcc_key: AgencyKey, database: Database
) -> None:
    send_ok(client, hcc_key, item(dimensions={"kenh": "a&linh_vuc=b"}, value=1))
    send_ok(client, hcc_key, item(dimensions={"kenh": "a", "linh_vuc": "b"}, value=2))

    assert count_rows(database, "observations") == 2
    assert count_rows(database, "observation_history") == 0
    tricky = series(client, hcc_key.headers, "hcc.ho_so_tiep_nhan", subject="40", dimensions="kenh=a%26linh_vuc%3Db")
    assert [row["value"] for row in tricky["items"]] == [1]
    plain = series(client, hcc_key.headers, "hcc.ho_so_tiep_nhan", subject="40", dimensions="kenh=a&linh_vuc=b")
    assert [row["value"] for row in plain["items"]] == [2]


def test_a_retry_with_the_same_json_formatted_differently_is_the_same_request(
    client: TestClient, hcc_key: AgencyKey, database: Database
) -> None:
    batch = {"observations": [item(value=7, source_ref="igate-1")]}
    compact = json.dumps(batch, separators=(",", ":"))
    spaced = json.dumps(batch, indent=4, sort_keys=True)

    first = send_raw(client, hcc_key, compact, **{"Idempotency-Key": "lo-2026-10-01"})
    again = send_raw(client, hcc_key, spaced, **{"Idempotency-Key": "lo-2026-10-01"})

    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again.headers["Idempotent-Replayed"] == "true"
    assert count_rows(database, "ingest_batches") == 1


def test_a_key_with_a_control_character_is_refused_cleanly(client: TestClient, hcc_key: AgencyKey) -> None:
    answer = client.get("/api/v1/indicators", headers={"Authorization": f"Bearer {hcc_key.key}\x01"})
    assert_problem(answer, 401, "invalid_api_key")
