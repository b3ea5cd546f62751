"""Running a feed: retries with back-off only for what retrying can fix, a run log for every run (failed ones too),
and a feed that cannot run anymore fails with the reason instead of stopping the worker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from cityops.clock import FrozenClock
from cityops.connectors import runner
from cityops.db.engine import Database
from cityops.feeds.models import Feed
from cityops.feeds.service import FeedError
from cityops.worker import Worker
from conftest import make_key
from connectors.http_pull.source import (
    SECRET_KEY,
    Reply,
    SourceServer,
    answer,
    make_feed,
    record,
    run,
    runs,
    settings,
    stored,
)


@pytest.fixture
def source() -> Iterator[SourceServer]:
    with SourceServer() as server:
        yield server


def test_the_number_of_attempts_and_the_first_wait_can_be_chosen(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    source.script(Reply(503))
    feed_id = make_feed(database, clock, settings(source))
    delays: list[float] = []

    result = runner.run_feed(database, feed_id, clock, SECRET_KEY, attempts=4, backoff_seconds=0.5, sleep=delays.append)

    assert (result["status"], result["attempts"]) == ("failed", 4)
    assert delays == [0.5, 1.0, 2.0]
    assert len(source.seen) == 4


def test_a_single_attempt_does_not_wait(database: Database, clock: FrozenClock, source: SourceServer) -> None:
    source.script(Reply(503))
    feed_id = make_feed(database, clock, settings(source))
    delays: list[float] = []

    result = runner.run_feed(database, feed_id, clock, SECRET_KEY, attempts=1, sleep=delays.append)

    assert (result["status"], result["attempts"], delays) == ("failed", 1, [])


def test_a_run_is_logged_with_its_trigger_and_times(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    source.script(Reply(body=answer(record())))
    feed_id = make_feed(database, clock, settings(source))

    result = runner.run_feed(database, feed_id, clock, SECRET_KEY, trigger="manual", sleep=[].append)

    [logged] = runs(database, feed_id)
    assert (logged.trigger, logged.status, logged.accepted, logged.batch_id) == ("manual", "ok", 2, result["batch_id"])
    assert logged.started_at == logged.finished_at == clock()


def test_an_unknown_feed_cannot_be_run(database: Database, clock: FrozenClock) -> None:
    with pytest.raises(FeedError) as refused:
        runner.run_feed(database, 999_999, clock, SECRET_KEY, sleep=[].append)

    assert refused.value.code == "unknown_feed"


def test_a_push_feed_has_nothing_to_pull(database: Database, clock: FrozenClock) -> None:
    make_key(database, clock(), agency="trung_tam_phuc_vu_hcc", feed="hcc_push", indicators=["hcc.ho_so_tiep_nhan"])
    with database.reading() as session:
        feed_id = runner.feed_id_for(session, "hcc_push")

    result = run(database, feed_id, clock)

    assert (result["status"], result["error"]["code"], result["error"]["retryable"]) == (
        "failed",
        "not_pullable",
        False,
    )
    assert result["error"]["message_vi"] == "Loại kết nối “push” không lấy dữ liệu theo lịch."
    assert result["error"]["message_en"] == "A “push” connector does not fetch data on a schedule."


def test_settings_that_no_longer_validate_fail_the_run_without_calling_the_source(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    feed_id = make_feed(database, clock, settings(source))
    with database.writing() as session:  # e.g. settings written by an older version
        session.execute(update(Feed).where(Feed.id == feed_id).values(settings={"url": source.url()}))
    delays: list[float] = []

    result = run(database, feed_id, clock, delays)

    assert (result["status"], result["attempts"], delays) == ("failed", 1, [])
    assert result["error"]["code"] == "invalid_settings" and result["error"]["retryable"] is False
    assert result["error"]["message_vi"].startswith("Cấu hình của nguồn dữ liệu không còn hợp lệ: ")
    assert "mapping" in result["error"]["message_en"]
    assert source.seen == []


def test_a_feed_whose_kind_is_no_longer_installed_fails_with_the_reason(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    feed_id = make_feed(database, clock, settings(source))
    with database.writing() as session:
        session.execute(update(Feed).where(Feed.id == feed_id).values(kind="lgsp_soap"))

    result = run(database, feed_id, clock)

    assert (result["status"], result["error"]["code"]) == ("failed", "invalid_settings")
    assert "lgsp_soap" in result["error"]["message_en"]
    assert [r.status for r in runs(database, feed_id)] == ["failed"]


def test_the_worker_pulls_a_feed_when_it_is_due_and_not_before(
    database: Database, clock: FrozenClock, source: SourceServer
) -> None:
    source.answer = lambda seen: Reply(body=answer(record("40", "10/2026", len(source.seen), 1)))
    feed_id = make_feed(database, clock, settings(source))  # every 300 seconds, due at once
    worker = Worker(database, clock, SECRET_KEY, name="test-worker")

    first = worker.tick()
    clock.advance(timedelta(seconds=299))
    early = worker.tick()
    clock.advance(timedelta(seconds=1))
    second = worker.tick()

    assert [len(tick["runs"]) for tick in (first, early, second)] == [1, 0, 1]
    assert len(source.seen) == 2
    assert [r.status for r in runs(database, feed_id)] == ["ok", "ok"]
    assert stored(database)[("hcc.ho_so_tiep_nhan", "40", "2026-10")] == 2
