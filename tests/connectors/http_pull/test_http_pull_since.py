"""The incremental "since" cursor: each run sends the newest update time it has stored, so only new or changed
records come; the cursor moves only once a batch is stored, and never backwards."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cityops.clock import FrozenClock
from cityops.db.engine import Database
from connectors.http_pull.source import (
    COMMUNE,
    RECEIVED,
    Reply,
    Seen,
    SourceServer,
    answer,
    cursor_of,
    make_feed,
    record,
    rejections,
    run,
    settings,
    stored,
)

SINCE = {"since_param": "tuNgay", "cursor_path": "capNhat"}


class Updates:
    """An endpoint that answers the records updated after ?tuNgay= (all of them without it)."""

    def __init__(self, source: SourceServer) -> None:
        self.records: list[dict[str, Any]] = []
        source.answer = self.reply

    def add(self, subject: str, period: str, received: Any, updated: str) -> None:
        self.records.append(record(subject, period, received, 1, capNhat=updated))

    def reply(self, seen: Seen) -> Reply:
        since = seen.query.get("tuNgay")
        if since is None:
            return Reply(body=answer(*self.records))
        after = datetime.fromisoformat(since)
        return Reply(body=answer(*[r for r in self.records if datetime.fromisoformat(r["capNhat"]) > after]))


def test_the_next_run_sends_the_cursor_and_only_new_records_come(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    updates = Updates(source)
    updates.add("40", "09/2026", 900, "2026-10-05T08:00:00+07:00")
    updates.add("40", "10/2026", 1000, "2026-11-05T09:30:00+07:00")
    updates.add(COMMUNE, "10/2026", 40, "2026-11-04T16:00:00+07:00")
    feed_id = make_feed(database, clock, settings(source, **SINCE))

    first = run(database, feed_id, clock)

    assert (first["status"], first["received"]) == ("ok", 6)
    assert first["details"] == {"pages": 1, "records": 3, "since": None, "cursor": "2026-11-05T09:30:00+07:00"}
    assert cursor_of(database, feed_id) == "2026-11-05T09:30:00+07:00"

    updates.add("40", "10/2026", 1012, "2026-11-26T10:00:00+07:00")  # October corrected
    updates.add(COMMUNE, "11/2026", 35, "2026-11-27T07:00:00+07:00")  # November so far
    second = run(database, feed_id, clock)

    assert [seen.query.get("tuNgay") for seen in source.seen] == [None, "2026-11-05T09:30:00+07:00"]
    assert (second["status"], second["received"], second["accepted"]) == ("ok", 4, 4)
    assert second["details"]["since"] == "2026-11-05T09:30:00+07:00"
    assert cursor_of(database, feed_id) == "2026-11-27T07:00:00+07:00"
    values = {key: value for key, value in stored(database).items() if key[0] == RECEIVED}
    assert values == {
        (RECEIVED, "40", "2026-09"): 900,
        (RECEIVED, "40", "2026-10"): 1012,
        (RECEIVED, COMMUNE, "2026-10"): 40,
        (RECEIVED, COMMUNE, "2026-11"): 35,
    }

    third = run(database, feed_id, clock)

    assert source.seen[-1].query["tuNgay"] == "2026-11-27T07:00:00+07:00"
    assert (third["status"], third["received"]) == ("ok", 0)
    assert cursor_of(database, feed_id) == "2026-11-27T07:00:00+07:00"


def test_the_first_run_sends_since_start(database: Database, clock: FrozenClock, source: SourceServer) -> None:
    updates = Updates(source)
    updates.add("40", "12/2025", 800, "2025-12-31T23:00:00+07:00")
    updates.add("40", "01/2026", 810, "2026-02-01T08:00:00+07:00")
    feed_id = make_feed(database, clock, settings(source, **SINCE, since_start="2026-01-01T00:00:00+07:00"))

    result = run(database, feed_id, clock)

    assert source.seen[0].query["tuNgay"] == "2026-01-01T00:00:00+07:00"
    assert result["accepted"] == 2
    assert {key[2] for key in stored(database)} == {"2026-01"}


def test_a_numeric_cursor_is_compared_as_a_number(database: Database, clock: FrozenClock, source: SourceServer) -> None:
    source.script(
        Reply(body=answer(*[record("40", f"{month:02d}/2026", month, 1, phienBan=month) for month in (8, 9, 10)])),
        Reply(body=answer(record("40", "10/2026", 11, 1, phienBan=11))),
    )
    feed_id = make_feed(database, clock, settings(source, since_param="sau", cursor_path="phienBan"))

    run(database, feed_id, clock)
    assert cursor_of(database, feed_id) == "10"
    run(database, feed_id, clock)

    assert source.seen[1].query["sau"] == "10"
    assert cursor_of(database, feed_id) == "11"


def test_the_cursor_never_moves_back_when_the_source_ignores_it(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    source.script(Reply(body=answer(record("40", "10/2026", 5, 1, capNhat="2026-11-20 08:00:00"))))
    feed_id = make_feed(database, clock, settings(source, **SINCE, since_start="2026-11-25T00:00:00+07:00"))

    result = run(database, feed_id, clock)

    assert result["status"] == "ok"
    assert cursor_of(database, feed_id) == "2026-11-25T00:00:00+07:00"


def test_a_rejected_record_is_passed_by_the_cursor_and_its_correction_is_stored(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    updates = Updates(source)
    updates.add("40", "10/2026", "mười hai", "2026-11-20T08:00:00+07:00")
    updates.add(COMMUNE, "10/2026", 40, "2026-11-20T09:00:00+07:00")
    feed_id = make_feed(database, clock, settings(source, **SINCE))

    first = run(database, feed_id, clock)

    assert (first["status"], first["accepted"], first["rejected"]) == ("partial", 2, 1)
    assert [r.code for r in rejections(database, feed_id)] == ["mapping_unreadable"]
    assert cursor_of(database, feed_id) == "2026-11-20T09:00:00+07:00"

    updates.add("40", "10/2026", "12", "2026-11-21T08:00:00+07:00")
    second = run(database, feed_id, clock)

    assert (second["status"], second["accepted"]) == ("ok", 2)
    assert stored(database)[(RECEIVED, "40", "2026-10")] == 12
