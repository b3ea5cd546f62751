"""When the endpoint fails: transient errors (5xx, 429, timeouts, a refused connection) are retried with back-off,
lasting ones (a 404, a body that is not JSON, a changed structure) fail the run at once with a reason in Vietnamese
and English; whatever was stored before stays intact."""

from __future__ import annotations

import pytest

from cityops.clock import FrozenClock
from cityops.db.engine import Database
from conftest import count_rows
from connectors.http_pull.source import (
    COMMUNE,
    MAPPING,
    ON_TIME,
    RECEIVED,
    Reply,
    SourceServer,
    answer,
    closed_port,
    cursor_of,
    make_feed,
    record,
    rejections,
    run,
    runs,
    settings,
    stored,
)

GOOD = answer(record("40", "10/2026", 12345, 11000), record(COMMUNE, "10/2026", 420, 398))
GOOD_VALUES = {
    (RECEIVED, "40", "2026-10"): 12345,
    (ON_TIME, "40", "2026-10"): 11000,
    (RECEIVED, COMMUNE, "2026-10"): 420,
    (ON_TIME, COMMUNE, "2026-10"): 398,
}


def test_a_503_then_a_200_is_retried_after_two_seconds(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    source.script(Reply(503, {"error": "bảo trì"}), Reply(body=GOOD))
    feed_id = make_feed(database, clock, settings(source))
    delays: list[float] = []

    result = run(database, feed_id, clock, delays)

    assert (result["status"], result["attempts"], result["accepted"]) == ("ok", 2, 4)
    assert delays == [2.0]
    assert len(source.seen) == 2
    assert stored(database) == GOOD_VALUES


def test_the_back_off_doubles_between_attempts(database: Database, clock: FrozenClock, source: SourceServer) -> None:
    source.script(Reply(502), Reply(504), Reply(body=GOOD))
    feed_id = make_feed(database, clock, settings(source))
    delays: list[float] = []

    result = run(database, feed_id, clock, delays)

    assert (result["status"], result["attempts"]) == ("ok", 3)
    assert delays == [2.0, 4.0]


def test_a_server_that_stays_down_fails_the_run_as_retryable_after_every_attempt(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    source.script(Reply(503, {"error": "bảo trì"}))
    feed_id = make_feed(database, clock, settings(source))
    delays: list[float] = []

    result = run(database, feed_id, clock, delays)

    assert (result["status"], result["attempts"], result["received"]) == ("failed", 3, 0)
    assert delays == [2.0, 4.0]
    assert result["error"] == {
        "code": "http_status",
        "retryable": True,
        "message_vi": "Hệ thống nguồn trả về lỗi: HTTP 503 (Service Unavailable).",
        "message_en": "The source system answered with an error: HTTP 503 (Service Unavailable).",
    }
    assert "bảo trì" in result["details"]["params"]["body"]


def test_a_short_retry_after_is_waited_for(database: Database, clock: FrozenClock, source: SourceServer) -> None:
    source.script(Reply(429, headers={"Retry-After": "7"}), Reply(body=GOOD))
    feed_id = make_feed(database, clock, settings(source))
    delays: list[float] = []

    result = run(database, feed_id, clock, delays)

    assert (result["status"], result["attempts"]) == ("ok", 2)
    assert delays == [7.0]


def test_a_retry_after_longer_than_a_minute_ends_the_run_for_the_next_scheduled_one(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    source.script(Reply(503, headers={"Retry-After": "3600"}), Reply(body=GOOD))
    feed_id = make_feed(database, clock, settings(source))
    delays: list[float] = []

    result = run(database, feed_id, clock, delays)

    assert (result["status"], result["attempts"], result["error"]["retryable"]) == ("failed", 1, True)
    assert delays == []
    assert result["details"]["params"]["retry_after"] == "3600.0"


def test_a_timeout_is_a_retryable_failure(database: Database, clock: FrozenClock, source: SourceServer) -> None:
    source.script(Reply(hold=True))
    feed_id = make_feed(database, clock, settings(source, timeout_seconds=0.2))
    delays: list[float] = []

    result = run(database, feed_id, clock, delays)

    assert (result["status"], result["attempts"]) == ("failed", 3)
    assert delays == [2.0, 4.0]
    assert result["error"]["code"] == "timeout" and result["error"]["retryable"] is True
    assert result["error"]["message_vi"] == "Hệ thống nguồn 127.0.0.1 không trả lời trong 0.2 giây."
    assert result["error"]["message_en"] == "The source system 127.0.0.1 did not answer within 0.2 seconds."


def test_a_timeout_then_an_answer_stores_the_data(database: Database, clock: FrozenClock, source: SourceServer) -> None:
    source.script(Reply(hold=True), Reply(body=GOOD))
    feed_id = make_feed(database, clock, settings(source, timeout_seconds=0.2))

    result = run(database, feed_id, clock)

    assert (result["status"], result["attempts"]) == ("ok", 2)
    assert stored(database) == GOOD_VALUES


def test_a_server_that_cannot_be_reached_is_a_retryable_failure(database: Database, clock: FrozenClock) -> None:
    unreachable = {"url": f"http://127.0.0.1:{closed_port()}/api", "timeout_seconds": 2, "mapping": MAPPING}
    feed_id = make_feed(database, clock, unreachable)
    delays: list[float] = []

    result = run(database, feed_id, clock, delays)

    assert (result["status"], result["attempts"], result["error"]["code"]) == ("failed", 3, "connection_failed")
    assert result["error"]["retryable"] is True
    assert result["error"]["message_vi"].startswith("Không kết nối được tới hệ thống nguồn 127.0.0.1: ")
    assert result["error"]["message_en"].startswith("Cannot connect to the source system 127.0.0.1: ")


def test_a_404_is_not_retried_and_names_the_address(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    source.script(Reply(404, {"error": "not found"}))
    feed_id = make_feed(database, clock, settings(source))
    delays: list[float] = []

    result = run(database, feed_id, clock, delays)

    assert (result["status"], result["attempts"], delays) == ("failed", 1, [])
    assert result["error"]["code"] == "http_not_found" and result["error"]["retryable"] is False
    assert f"{source.url()} không tồn tại" in result["error"]["message_vi"]
    assert f"{source.url()} does not exist" in result["error"]["message_en"]


@pytest.mark.parametrize(
    ("body", "content_type", "hint"),
    [
        pytest.param(b'{"data": {"items": [', "application/json", "line 1, column 21", id="cut_off"),
        pytest.param(b"{'data': 1}", "application/json", "line 1, column 2", id="single_quotes"),
        pytest.param(b"<html><body>Dang nhap</body></html>", "text/html", "HTML page", id="html_login_page"),
        pytest.param(b"", "application/json", "empty answer", id="empty"),
        pytest.param(b'{"a": "Ngh\xea An"}', "application/json", "not UTF-8", id="windows_1258_text"),
    ],
)
def test_an_answer_that_is_not_json_fails_the_run_without_retrying(
    database: Database, clock: FrozenClock, source: SourceServer, body: bytes, content_type: str, hint: str
) -> None:
    source.script(Reply(body=GOOD), Reply(body=body, headers={"Content-Type": content_type}))
    feed_id = make_feed(database, clock, settings(source))
    assert run(database, feed_id, clock)["status"] == "ok"
    delays: list[float] = []

    result = run(database, feed_id, clock, delays)

    assert (result["status"], result["attempts"], delays) == ("failed", 1, [])
    assert result["error"]["code"] == "not_json" and result["error"]["retryable"] is False
    assert result["error"]["message_vi"].startswith("Dữ liệu hệ thống nguồn trả về không phải JSON hợp lệ: ")
    assert result["error"]["message_en"].startswith("The source system's answer is not valid JSON: ")
    assert hint in result["error"]["message_en"]
    assert stored(database) == GOOD_VALUES


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param({"status": "success", "result": {"rows": []}}, id="records_path_gone"),
        pytest.param({"status": "success", "data": {"items": "không có dữ liệu"}}, id="records_not_a_list"),
        pytest.param([1, 2, 3], id="a_list_instead_of_an_object"),
    ],
)
def test_a_changed_structure_fails_the_run_as_schema_changed_and_keeps_what_was_stored(
    database: Database, clock: FrozenClock, source: SourceServer, changed: object
) -> None:
    source.script(Reply(body=GOOD), Reply(body=changed))
    feed_id = make_feed(database, clock, settings(source))
    assert run(database, feed_id, clock)["status"] == "ok"
    delays: list[float] = []

    result = run(database, feed_id, clock, delays)

    assert (result["status"], result["attempts"], delays) == ("failed", 1, [])
    assert result["error"]["code"] == "schema_changed" and result["error"]["retryable"] is False
    assert "đã đổi cấu trúc" in result["error"]["message_vi"]
    assert "no longer has the declared structure" in result["error"]["message_en"]
    assert stored(database) == GOOD_VALUES


def test_renamed_fields_reject_every_record_with_the_field_named_and_keep_what_was_stored(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    renamed = answer(
        {"ma_don_vi": "40", "ky_bao_cao": "11/2026", "so_tiep_nhan": 13000, "so_dung_han": 12000},
        {"ma_don_vi": COMMUNE, "ky_bao_cao": "11/2026", "so_tiep_nhan": 500, "so_dung_han": 480},
    )
    source.script(Reply(body=GOOD), Reply(body=renamed))
    feed_id = make_feed(database, clock, settings(source))
    assert run(database, feed_id, clock)["status"] == "ok"

    result = run(database, feed_id, clock)

    assert (result["status"], result["received"], result["accepted"], result["rejected"]) == ("failed", 2, 0, 2)
    assert result["error"]["code"] == "mapping_missing"
    assert result["error"]["message_en"] == "Record 1: the field “subject” is missing (path “maDonVi”)."
    assert result["error"]["message_vi"] == "Bản ghi 1: thiếu trường “subject” (đường dẫn “maDonVi”)."
    assert [r.code for r in rejections(database, feed_id)] == ["mapping_missing", "mapping_missing"]
    assert stored(database) == GOOD_VALUES


def test_a_failed_run_does_not_move_the_cursor(database: Database, clock: FrozenClock, source: SourceServer) -> None:
    first = answer(record("40", "10/2026", 1, 1, capNhat="2026-11-20T08:00:00+07:00"))
    source.script(Reply(body=first), Reply(body=b"<html>502 Bad Gateway</html>", headers={"Content-Type": "text/html"}))
    feed_id = make_feed(
        database, clock, settings(source, since_param="tuNgay", cursor_path="capNhat", since_start="2026-01-01")
    )
    assert run(database, feed_id, clock)["status"] == "ok"
    assert cursor_of(database, feed_id) == "2026-11-20T08:00:00+07:00"

    assert run(database, feed_id, clock)["status"] == "failed"

    assert cursor_of(database, feed_id) == "2026-11-20T08:00:00+07:00"
    assert [seen.query["tuNgay"] for seen in source.seen] == ["2026-01-01", "2026-11-20T08:00:00+07:00"]
    assert [r.status for r in runs(database, feed_id)] == ["ok", "failed"]
    assert count_rows(database, "ingest_batches") == 1
