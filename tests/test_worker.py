"""The worker's supervision of long-running feeds (mqtt, against the real Mosquitto): one worker holds each feed
under a lease, another takes over when it stops or dies, a paused or broken feed is let go, and `run` does it all
until stopped. Time moves with the injected clock; the broker and the database are real."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import update

from cityops.accounts import service as accounts
from cityops.feeds.models import Feed
from cityops.feeds.service import update_feed
from cityops.worker import LEASE, RESTART_FIRST, Worker
from connectors.mqtt.mqtt_support import (
    ONLINE,
    SensorFeed,
    communes,
    eventually,
    publish,
    reading,
    shared_broker,
    subscribed,
)

SECOND = timedelta(seconds=1)


@pytest.fixture
def broker() -> tuple[str, int]:
    return shared_broker()


@pytest.fixture
def feed(backend, clock, broker):
    made = SensorFeed(backend, clock, *broker)
    yield made
    made.forget_session()


def later(minutes: int) -> str:
    return f"2026-11-27T09:{minutes:02d}:00+07:00"


def test_of_two_workers_one_holds_the_feed_and_the_other_takes_over_when_it_releases(
    backend, clock, broker, feed: SensorFeed
) -> None:
    first, second = communes(backend.database)

    async def scenario() -> None:
        a = Worker(backend.database, clock, feed.secret_key, name="worker-a")
        b = Worker(backend.database, clock, feed.secret_key, name="worker-b")
        try:
            await a.supervise()
            await b.supervise()
            assert list(a.held) == [feed.id] and b.held == {}
            assert feed.lease() == ("worker-a", clock() + LEASE)
            await subscribed(a, feed)
            await publish(*broker, (feed.topic(first), reading(3, later(50))), (feed.topic(second), reading(4)))
            await eventually(lambda: len(feed.values()) == 2, "the first two readings")

            await a.release()
            assert feed.lease() == ("", None)
            await b.supervise()  # released: taken at once, without waiting for the lease to run out
            assert list(b.held) == [feed.id]
            await subscribed(b, feed)
            await publish(*broker, (feed.topic(first), reading(5, later(50))))  # a correction of the same moment
            await eventually(lambda: feed.values()[(first, ONLINE)] == 5, "the reading after the takeover")
        finally:
            await a.release()
            await b.release()

    asyncio.run(scenario())
    runs = feed.runs()
    assert sum(run.received for run in runs) == 3  # each message stored once, by one worker
    assert [run.details["worker"] for run in runs if run.accepted] == ["worker-a", "worker-b"]
    assert len(feed.observations()) == 2


def test_a_worker_that_dies_is_replaced_once_its_lease_runs_out(backend, clock, broker, feed: SensorFeed) -> None:
    first = communes(backend.database, 1)[0]

    async def scenario() -> None:
        a = Worker(backend.database, clock, feed.secret_key, name="worker-a")
        b = Worker(backend.database, clock, feed.secret_key, name="worker-b")
        try:
            await a.supervise()
            await subscribed(a, feed)
            clock.advance(LEASE / 2)
            await a.supervise()  # renews its lease
            assert feed.lease() == ("worker-a", clock() + LEASE)

            for held in a.held.values():  # worker-a dies: its subscription ends, its lease stays in the database
                assert held.task is not None
                held.task.cancel()
                await asyncio.gather(held.task, return_exceptions=True)
            clock.advance(LEASE - SECOND)
            await b.supervise()
            assert b.held == {} and feed.lease()[0] == "worker-a"  # not yet: the lease still runs

            clock.advance(2 * SECOND)
            await b.supervise()
            assert list(b.held) == [feed.id] and feed.lease()[0] == "worker-b"
            await subscribed(b, feed)
            await publish(*broker, (feed.topic(first), reading(8)))
            await eventually(lambda: feed.values() == {(first, ONLINE): 8}, "the reading stored by worker-b")

            await a.supervise()  # worker-a comes back: the feed is no longer its own, it does not start again
            assert a.held == {} and feed.lease()[0] == "worker-b"
        finally:
            await a.release()
            await b.release()

    asyncio.run(scenario())
    assert {run.details["worker"] for run in feed.runs()} == {"worker-b"}


def test_a_paused_feed_is_let_go_and_taken_again_when_resumed(backend, clock, broker, feed: SensorFeed) -> None:
    first = communes(backend.database, 1)[0]

    def change(**changes: object) -> None:
        with backend.database.writing() as session:
            update_feed(session, accounts.SYSTEM, clock(), feed.code, changes, secret_key=feed.secret_key)

    async def scenario() -> None:
        worker = Worker(backend.database, clock, feed.secret_key, name="worker-a")
        try:
            await worker.supervise()
            await subscribed(worker, feed)
            await asyncio.to_thread(change, paused=True)
            await worker.supervise()
            assert worker.held == {} and feed.lease() == ("", None)
            await publish(*broker, (feed.topic(first), reading(21)))  # kept by the broker for the feed's session

            await asyncio.to_thread(change, paused=False)
            await worker.supervise()
            assert list(worker.held) == [feed.id]
            await eventually(lambda: feed.values() == {(first, ONLINE): 21}, "the reading sent while paused")
        finally:
            await worker.release()

    asyncio.run(scenario())


def test_a_feed_whose_settings_no_longer_fit_is_logged_and_retried_later_not_at_every_round(
    backend, clock, broker, feed: SensorFeed
) -> None:
    first = communes(backend.database, 1)[0]

    def set_settings(settings: dict[str, object]) -> None:
        with backend.database.writing() as session:  # as an upgrade of the connector might leave it
            session.execute(update(Feed).where(Feed.id == feed.id).values(settings=settings))

    async def scenario() -> None:
        worker = Worker(backend.database, clock, feed.secret_key, name="worker-a")
        try:
            await asyncio.to_thread(set_settings, {**feed.settings, "topics": ["a/#/b"]})
            await worker.supervise()
            assert worker.held == {} and feed.lease()[0] == "worker-a"  # held, so no other worker fails the same
            assert [run.error_code for run in feed.runs()] == ["invalid_settings"]
            await worker.supervise()
            assert len(feed.runs()) == 1  # not at every round

            clock.advance(RESTART_FIRST)
            await worker.supervise()
            assert [run.error_code for run in feed.runs()] == ["invalid_settings"] * 2

            await asyncio.to_thread(set_settings, feed.settings)  # mended: started at the next round
            await worker.supervise()
            await subscribed(worker, feed)
            await publish(*broker, (feed.topic(first), reading(2)))
            await eventually(lambda: feed.values() == {(first, ONLINE): 2}, "the reading once mended")
        finally:
            await worker.release()

    asyncio.run(scenario())
    failed = feed.runs()[0]
    assert failed.status == "failed" and failed.retryable is False
    assert "Cấu hình của nguồn dữ liệu không còn hợp lệ" in failed.message_vi
    assert "settings are no longer valid" in failed.message_en


def test_run_supervises_until_stopped_then_gives_the_feed_back(backend, clock, broker, feed: SensorFeed) -> None:
    first = communes(backend.database, 1)[0]

    async def scenario() -> None:
        worker = Worker(backend.database, clock, feed.secret_key, name="worker-a")
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop, tick_seconds=0.2))
        try:
            await eventually(lambda: feed.id in worker.held, "the worker to hold the feed")
            await subscribed(worker, feed)
            await publish(*broker, (feed.topic(first), reading(30)))
            await eventually(lambda: feed.values() == {(first, ONLINE): 30}, "the reading")
        finally:
            stop.set()
            await asyncio.wait_for(running, timeout=30)
        assert worker.held == {}

    asyncio.run(scenario())
    assert feed.lease() == ("", None)
    assert [run.details["worker"] for run in feed.runs()] == ["worker-a"]
