"""A pull from the agency's endpoint: its records become observations the read API serves, the run is logged,
and a record with a bad value is rejected (and kept for the data-health page) while the others are stored."""

from __future__ import annotations

from fastapi.testclient import TestClient

from cityops.clock import FrozenClock
from cityops.db.engine import Database
from conftest import count_rows, login
from connectors.http_pull.source import (
    COMMUNE,
    ON_TIME,
    RECEIVED,
    Reply,
    SourceServer,
    answer,
    make_feed,
    record,
    rejections,
    run,
    runs,
    settings,
    stored,
)


def test_a_pull_stores_every_record_and_the_read_api_serves_it(
    database: Database, clock: FrozenClock, source: SourceServer, client: TestClient, personas: dict[str, str]
) -> None:
    source.script(
        Reply(
            body=answer(
                record("40", "10/2026", "12.345", 11000),
                record("40", "09/2026", "11.020,0", "10.500"),
                record(COMMUNE, "10/2026", 420, "398"),
            )
        )
    )
    feed_id = make_feed(database, clock, settings(source))

    result = run(database, feed_id, clock)

    assert result["status"] == "ok", result
    assert (result["attempts"], result["received"], result["accepted"], result["rejected"]) == (1, 6, 6, 0)
    assert result["details"]["pages"] == 1 and result["details"]["records"] == 3
    assert stored(database) == {
        (RECEIVED, "40", "2026-10"): 12345,
        (ON_TIME, "40", "2026-10"): 11000,
        (RECEIVED, "40", "2026-09"): 11020,
        (ON_TIME, "40", "2026-09"): 10500,
        (RECEIVED, COMMUNE, "2026-10"): 420,
        (ON_TIME, COMMUNE, "2026-10"): 398,
    }
    [logged] = runs(database, feed_id)
    assert (logged.status, logged.trigger, logged.accepted, logged.error_code) == ("ok", "schedule", 6, "")
    assert logged.finished_at == clock()

    login(client, "leader")
    page = client.get(f"/api/v1/indicators/{RECEIVED}/series", params={"subject": "40"}).json()
    assert [(item["period"], item["value"], item["feed"], item["source_ref"]) for item in page["items"]] == [
        ("2026-09", 11020, "igate_pull", "HS-40-09/2026"),
        ("2026-10", 12345, "igate_pull", "HS-40-10/2026"),
    ]


def test_the_request_says_it_wants_json_and_sends_the_configured_parameters_and_headers(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    source.script(Reply(body=answer(record())))
    feed_id = make_feed(
        database, clock, settings(source, params={"donVi": "40", "nam": "2026"}, headers={"X-Don-Vi": "hcc"})
    )

    assert run(database, feed_id, clock)["status"] == "ok"

    [seen] = source.seen
    assert seen.path == "/igate/api/ho-so"
    assert seen.query == {"donVi": "40", "nam": "2026"}
    assert seen.headers["accept"] == "application/json"
    assert seen.headers["x-don-vi"] == "hcc"
    assert seen.headers["user-agent"].startswith("cityops/")


def test_a_record_with_a_bad_value_is_rejected_and_the_others_are_kept(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    source.script(
        Reply(
            body=answer(
                record("40", "10/2026", "12.345", 11000),
                record(COMMUNE, "10/2026", "không rõ", 398),  # the received count is not a number
                record(COMMUNE, "09/2026", 400, -5),  # a negative count: out of the indicator's range
            )
        )
    )
    feed_id = make_feed(database, clock, settings(source))

    result = run(database, feed_id, clock)

    assert result["status"] == "partial"
    assert (result["received"], result["accepted"], result["rejected"]) == (5, 3, 2)
    assert stored(database) == {
        (RECEIVED, "40", "2026-10"): 12345,
        (ON_TIME, "40", "2026-10"): 11000,
        (RECEIVED, COMMUNE, "2026-09"): 400,
    }
    unreadable, out_of_range = rejections(database, feed_id)
    assert (unreadable.code, unreadable.field) == ("mapping_unreadable", "value")
    assert unreadable.message_vi == "Bản ghi 2: không đọc được giá trị “không rõ” của trường “value”."
    assert unreadable.message_en == "Record 2: the value “không rõ” of “value” cannot be read."
    assert out_of_range.code == "value_out_of_range"
    assert '"value":-5' in out_of_range.item.replace(" ", "")
    assert result["error"]["code"] == "mapping_unreadable" and result["error"]["retryable"] is False
    assert count_rows(database, "ingest_rejections") == 2


def test_a_record_whose_subject_or_period_is_unknown_is_rejected_with_the_reason(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    source.script(
        Reply(
            body=answer(
                record("99999", "10/2026"),
                record("40", "31/02/2026"),
                record("40", "10/2026"),
                {"kyBaoCao": "10/2026", "soTiepNhan": 1, "soDungHan": 1},
            )
        )
    )
    feed_id = make_feed(database, clock, settings(source))

    result = run(database, feed_id, clock)

    assert (result["status"], result["accepted"]) == ("partial", 2)
    codes = sorted(rejection.code for rejection in rejections(database, feed_id))
    assert codes == ["mapping_missing", "mapping_unreadable", "unknown_subject", "unknown_subject"]
    missing = next(r for r in rejections(database, feed_id) if r.code == "mapping_missing")
    assert missing.message_en == "Record 4: the field “subject” is missing (path “maDonVi”)."
    assert missing.message_vi == "Bản ghi 4: thiếu trường “subject” (đường dẫn “maDonVi”)."


def test_an_answer_with_no_records_is_an_ok_run_that_stores_nothing(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    source.script(Reply(body=answer()), Reply(body={"status": "success", "data": {"items": None}}), Reply(204))
    feed_id = make_feed(database, clock, settings(source))

    for _ in range(3):
        result = run(database, feed_id, clock)
        assert (result["status"], result["received"], result["error"]) == ("ok", 0, None)

    assert stored(database) == {}
    assert count_rows(database, "ingest_batches") == 0
    assert len(runs(database, feed_id)) == 3
