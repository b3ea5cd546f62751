"""API keys: only a hash is kept, use is recorded, revocation is immediate, writes stay within the key's feeds."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from account_helpers import audit_entries, problem_code
from sqlalchemy import select

from cityops.accounts import service as accounts
from cityops.accounts.models import ApiKey
from cityops.feeds.service import create_feed
from conftest import AgencyKey, count_rows, make_key


def observation(indicator: str, period: str = "2026-10", **extra: object) -> dict[str, object]:
    return {"indicator": indicator, "subject": "40", "period": period, "value": 5, **extra}


def stored_key(database, prefix: str) -> ApiKey:
    with database.reading() as session:
        key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    assert key is not None
    return key


def test_api_key_is_stored_only_as_a_hash(database, hcc_key: AgencyKey) -> None:
    key = stored_key(database, hcc_key.prefix)
    secret_part = hcc_key.key.split("_", 2)[2]
    assert key.key_hash == hashlib.sha256(hcc_key.key.encode()).hexdigest()
    assert all(secret_part not in str(getattr(key, column.key)) for column in ApiKey.__table__.columns)


def test_api_key_secret_is_not_in_the_audit_log(database, hcc_key: AgencyKey) -> None:
    secret_part = hcc_key.key.split("_", 2)[2]
    (created,) = audit_entries(database, "api_key.create")
    assert created.details["prefix"] == hcc_key.prefix
    assert secret_part not in repr(created.details)


def test_api_key_has_no_last_use_before_it_is_used(database, hcc_key: AgencyKey) -> None:
    assert stored_key(database, hcc_key.prefix).last_used_at is None


def test_api_key_use_sets_last_used_at(client, clock, database, hcc_key: AgencyKey) -> None:
    clock.advance(timedelta(minutes=5))
    assert client.get("/api/v1/me", headers=hcc_key.headers).status_code == 200
    assert stored_key(database, hcc_key.prefix).last_used_at == clock()


def test_revoked_api_key_is_refused_at_once(client, clock, database, hcc_key: AgencyKey) -> None:
    assert client.get("/api/v1/me", headers=hcc_key.headers).status_code == 200
    with database.writing() as session:
        accounts.revoke_api_key(session, accounts.SYSTEM, clock(), hcc_key.prefix)
    answer = client.get("/api/v1/me", headers=hcc_key.headers)
    assert answer.status_code == 401
    assert problem_code(answer) == "invalid_api_key"


def test_revoked_api_key_cannot_write(client, clock, database, hcc_key: AgencyKey) -> None:
    with database.writing() as session:
        accounts.revoke_api_key(session, accounts.SYSTEM, clock(), hcc_key.prefix)
    answer = client.post(
        "/api/v1/observations", headers=hcc_key.headers, json={"observations": [observation("hcc.ho_so_tiep_nhan")]}
    )
    assert answer.status_code == 401
    assert count_rows(database, "observations") == 0


def test_wrong_secret_with_a_real_prefix_is_refused(client, hcc_key: AgencyKey) -> None:
    forged = f"cok_{hcc_key.prefix}_{'A' * 43}"
    answer = client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401


def test_api_key_writes_indicators_of_its_feed(client, database, hcc_key: AgencyKey) -> None:
    answer = client.post(
        "/api/v1/observations", headers=hcc_key.headers, json={"observations": [observation("hcc.ho_so_tiep_nhan")]}
    )
    assert answer.json()["accepted"] == 1
    assert count_rows(database, "observations") == 1


def test_api_key_cannot_write_an_own_agency_indicator_outside_its_feeds(client, database, hcc_key: AgencyKey) -> None:
    answer = client.post(
        "/api/v1/observations", headers=hcc_key.headers, json={"observations": [observation("hcc.ho_so_giai_quyet")]}
    )
    body = answer.json()
    assert body["accepted"] == 0
    assert [item["code"] for item in body["rejected"]] == ["indicator_not_in_feed"]
    assert count_rows(database, "observations") == 0


def test_api_key_cannot_write_another_agencys_indicator(client, clock, database, hcc_key: AgencyKey) -> None:
    make_key(database, clock(), agency="so_y_te", feed="yte_his", indicators=["yte.luot_dieu_tri_noi_tru"])
    answer = client.post(
        "/api/v1/observations",
        headers=hcc_key.headers,
        json={"observations": [observation("yte.luot_dieu_tri_noi_tru", "2026-11-26")]},
    )
    body = answer.json()
    assert body["accepted"] == 0
    assert [item["code"] for item in body["rejected"]] == ["indicator_not_in_feed"]
    assert count_rows(database, "observations") == 0


def test_api_key_cannot_write_through_another_agencys_feed(client, clock, database, hcc_key: AgencyKey) -> None:
    make_key(database, clock(), agency="so_y_te", feed="yte_his", indicators=["yte.luot_dieu_tri_noi_tru"])
    answer = client.post(
        "/api/v1/observations",
        headers=hcc_key.headers,
        json={"observations": [observation("yte.luot_dieu_tri_noi_tru", "2026-11-26", feed="yte_his")]},
    )
    body = answer.json()
    assert body["accepted"] == 0
    assert [item["code"] for item in body["rejected"]] == ["unknown_feed"]
    assert count_rows(database, "observations") == 0


def test_key_for_a_feed_of_another_agency_is_refused(clock, database) -> None:
    with database.writing() as session:
        create_feed(
            session,
            accounts.SYSTEM,
            clock(),
            code="hcc_igate",
            agency_code="trung_tam_phuc_vu_hcc",
            indicator_codes=["hcc.ho_so_tiep_nhan"],
        )
    with pytest.raises(accounts.AccountError, match="another agency: hcc_igate"), database.writing() as session:
        accounts.create_api_key(session, accounts.SYSTEM, clock(), agency_code="so_y_te", feed_codes=["hcc_igate"])
    assert count_rows(database, "api_keys") == 0
