"""Open data: public indicators as CSV and JSON with a DCAT catalog and a public page; never a restricted or
internal indicator, never a citizen's report or contact."""

from __future__ import annotations

import csv
import io
from typing import Any

from reports_support import CITIZEN_PHONE, CITIZEN_TEXT, COMMUNE, seed, send

from cityops.accounts import service as accounts
from cityops.clock import FrozenClock
from cityops.feeds import service as feeds


def _restricted_and_internal(database: Any, clock: FrozenClock) -> None:
    with database.writing() as session:
        feed = feeds.create_feed(
            session,
            accounts.SYSTEM,
            clock(),
            code="rp_closed",
            agency_code="trung_tam_kiem_soat_benh_tat",
            indicator_codes=["yte.ca_sot_xuat_huyet"],
        )
        principal, feed_id = feeds.feed_principal(feed), feed.id
        attt = feeds.create_feed(
            session, accounts.SYSTEM, clock(), code="rp_soc", agency_code="so_khcn", indicator_codes=["attt.su_kien"]
        )
        soc, soc_id = feeds.feed_principal(attt), attt.id
    send(database, principal, feed_id, clock(), ("yte.ca_sot_xuat_huyet", COMMUNE, "2026-11-20", 7.0))
    send(database, soc, soc_id, clock(), ("attt.su_kien", "40", "2026-11-20", 4321.0))


def test_open_data_publishes_public_indicators_only(client: Any, database: Any, clock: FrozenClock) -> None:
    seed(database, clock())
    _restricted_and_internal(database, clock)
    catalog = client.get("/open-data/catalog.json")
    assert catalog.status_code == 200 and catalog.headers["content-type"].startswith("application/ld+json")
    document = catalog.json()
    assert document["@type"] == "dcat:Catalog" and "dcat" in document["@context"]
    datasets = {item["dct:identifier"]: item for item in document["dcat:dataset"]}
    rate = datasets["hcc.ty_le_dung_han"]
    assert rate["@type"] == "dcat:Dataset"
    assert {"@language": "vi", "@value": "Tỷ lệ hồ sơ giải quyết đúng hạn"} in rate["dct:title"]
    assert {t["@language"] for t in rate["dct:description"]} == {"vi", "en"}
    assert rate["dct:publisher"]["dct:identifier"] == "trung_tam_phuc_vu_hcc"
    assert rate["dct:license"].startswith("https://creativecommons.org/licenses/by/4.0")
    assert rate["dct:temporal"]["dcat:startDate"].startswith("2025-12-31T17:00")  # January 2026, local
    assert rate["dct:modified"] is not None
    assert sorted(d["dcat:mediaType"] for d in rate["dcat:distribution"]) == ["application/json", "text/csv"]
    assert "yte.ca_sot_xuat_huyet" not in datasets and "attt.su_kien" not in datasets  # internal, restricted
    as_json = client.get("/open-data/hcc.ty_le_dung_han.json").json()
    first = as_json["values"][0]
    assert first == {
        "period": "2026-01",
        "period_start": first["period_start"],
        "period_end": first["period_end"],
        "subject_code": "40",
        "subject_name": first["subject_name"],
        "value": 90.0,
        "unit": "%",
    }
    assert "Nghệ An" in first["subject_name"] and len(as_json["values"]) == 10
    answer = client.get("/open-data/hcc.ho_so_tiep_nhan.csv")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[-1]["subject_code"] == COMMUNE and float(rows[-1]["value"]) == 400.0 and rows[-1]["period"] == "2026-11"
    for code in ("yte.ca_sot_xuat_huyet", "attt.su_kien", "khong_co"):
        for kind in ("csv", "json"):
            refused = client.get(f"/open-data/{code}.{kind}")
            assert refused.status_code == 404 and refused.json()["code"] == "open_data_not_found"
    page = client.get("/open-data")
    assert (
        page.status_code == 200
        and "Dữ liệu mở" in page.text
        and 'href="/open-data/hcc.ty_le_dung_han.csv"' in page.text
    )
    assert "Open data" in client.get("/open-data?lang=en").text
    everything = (
        catalog.text
        + page.text
        + "".join(client.get(f"/open-data/{code}.{kind}").text for code in datasets for kind in ("csv", "json"))
    )
    for secret in (CITIZEN_TEXT, CITIZEN_PHONE, "bimat@example.vn", "Bí Mật", "4321", "Máy chủ trả lỗi"):
        assert secret not in everything
