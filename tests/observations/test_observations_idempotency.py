"""Idempotency-Key: a retried batch is stored once and answered exactly as the first time."""

from __future__ import annotations

import json
from datetime import timedelta

from observations_support import OBSERVATIONS, assert_problem, item, series

from conftest import AgencyKey, count_rows, make_key

BATCH = json.dumps({"observations": [item(value=12000), item(period="2026-09", value="x")]})


def post(client, key: AgencyKey, body: str, idempotency_key: str):
    return client.post(
        OBSERVATIONS,
        headers={**key.headers, "Content-Type": "application/json", "Idempotency-Key": idempotency_key},
        content=body,
    )


def test_a_retry_with_the_same_key_stores_nothing_twice_and_gets_the_same_answer_bytes(
    client, hcc_key: AgencyKey, database, clock
) -> None:
    first = post(client, hcc_key, BATCH, "lo-2026-10-001")
    clock.advance(timedelta(minutes=10))

    retry = post(client, hcc_key, BATCH, "lo-2026-10-001")

    assert first.status_code == retry.status_code == 200
    assert retry.content == first.content
    assert "idempotent-replayed" not in first.headers
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["accepted"] == 1
    assert count_rows(database, "ingest_batches") == 1
    assert count_rows(database, "observations") == 1
    assert count_rows(database, "observation_history") == 0


def test_a_retry_is_replayed_even_after_the_data_changed_in_between(client, hcc_key: AgencyKey) -> None:
    first = post(client, hcc_key, BATCH, "lo-a")
    post(client, hcc_key, json.dumps({"observations": [item(value=13000)]}), "lo-b")

    retry = post(client, hcc_key, BATCH, "lo-a")

    assert retry.content == first.content
    assert series(client, hcc_key.headers, "hcc.ho_so_tiep_nhan", subject="40")["items"][0]["value"] == 13000.0


def test_the_same_key_with_another_body_is_a_409_and_stores_nothing(client, hcc_key: AgencyKey, database) -> None:
    post(client, hcc_key, BATCH, "lo-2026-10-001")

    other = post(client, hcc_key, json.dumps({"observations": [item(value=99999)]}), "lo-2026-10-001")

    problem = assert_problem(other, 409, "idempotency_key_reused")
    assert "lo-2026-10-001" in problem["message_en"]
    assert series(client, hcc_key.headers, "hcc.ho_so_tiep_nhan", subject="40")["items"][0]["value"] == 12000.0
    assert count_rows(database, "ingest_batches") == 1


def test_keys_are_per_agency_so_another_agency_may_use_the_same_key(
    client, hcc_key: AgencyKey, database, clock
) -> None:
    education = make_key(database, clock(), agency="so_gd_dt", feed="csdl_nganh_gd", indicators=["giaoduc.so_truong"])
    schools = json.dumps({"observations": [item(indicator="giaoduc.so_truong", period="2025-2026", value=1520)]})
    post(client, hcc_key, BATCH, "lo-001")

    answer = post(client, education, schools, "lo-001")

    assert answer.status_code == 200, answer.text
    assert "idempotent-replayed" not in answer.headers
    assert answer.json()["accepted"] == 1
    assert count_rows(database, "ingest_batches") == 2
    assert count_rows(database, "observations") == 2


def test_two_keys_of_the_same_agency_share_its_idempotency_keys(client, hcc_key: AgencyKey, database, clock) -> None:
    second_key = make_key(
        database, clock(), agency="trung_tam_phuc_vu_hcc", feed="hcc_igate_du_phong", indicators=["hcc.danh_gia"]
    )
    first = post(client, hcc_key, BATCH, "lo-001")

    retry = post(client, second_key, BATCH, "lo-001")

    assert retry.content == first.content
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert count_rows(database, "ingest_batches") == 1


def test_a_key_may_be_reused_for_a_new_body_once_its_record_expired(
    client, hcc_key: AgencyKey, database, clock
) -> None:
    post(client, hcc_key, BATCH, "lo-001")
    clock.advance(timedelta(hours=24, minutes=1))

    answer = post(client, hcc_key, json.dumps({"observations": [item(value=12500)]}), "lo-001")

    assert answer.status_code == 200, answer.text
    assert "idempotent-replayed" not in answer.headers
    assert answer.json()["replaced"] == 1
    assert count_rows(database, "ingest_batches") == 2


def test_without_a_key_a_resent_batch_is_processed_again(client, hcc_key: AgencyKey, database) -> None:
    headers = {**hcc_key.headers, "Content-Type": "application/json"}
    first = client.post(OBSERVATIONS, headers=headers, content=BATCH)

    again = client.post(OBSERVATIONS, headers=headers, content=BATCH)

    assert (first.json()["created"], again.json()["unchanged"]) == (1, 1)
    assert count_rows(database, "ingest_batches") == 2


def test_an_idempotency_key_longer_than_255_characters_is_a_400(client, hcc_key: AgencyKey, database) -> None:
    answer = post(client, hcc_key, BATCH, "k" * 256)

    assert_problem(answer, 400, "invalid_idempotency_key")
    assert count_rows(database, "observations") == 0
