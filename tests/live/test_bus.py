"""The live bus on both databases: a change reaches subscribers once its transaction commits and never when it rolls
back, from a worker thread too; a subscriber that falls behind is dropped; on PostgreSQL a change made through one
Database reaches the listener of another (as another process would hear it)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from cityops import live
from cityops.db.engine import Database
from cityops.live.bus import Bus, LocalBus, Message, PostgresBus, Subscription, bus_for, close_all
from conftest import Backend

WAIT = 10.0


@pytest.fixture(autouse=True, scope="module")
def _buses_closed() -> Iterator[None]:
    """Leave no listener behind (the test database is dropped at the end of the session)."""
    yield
    close_all()


class Boom(Exception):
    pass


async def next_message(subscription: Subscription) -> Message:
    return await asyncio.wait_for(anext(aiter(subscription)), WAIT)


def change(database: Database, topic: str, payload: dict[str, Any], *, fail: bool = False) -> None:
    """Publish inside a writing transaction that commits, or fails and rolls back."""
    try:
        with database.writing() as session:
            live.publish(session, topic, payload)
            if fail:
                raise Boom
    except Boom:
        pass


def test_a_committed_change_arrives_and_a_rolled_back_one_never_does(database: Database) -> None:
    async def scenario() -> None:
        bus = bus_for(database.engine.url)
        async with bus.subscribe(["values"]) as values, bus.subscribe(["alerts", "values"]) as both:
            # Published from worker threads, as the services run.
            await asyncio.to_thread(change, database, "values", {"n": "rolled back"}, fail=True)
            await asyncio.to_thread(change, database, "alerts", {"id": 7, "state": "firing"})
            await asyncio.to_thread(change, database, "values", {"n": "committed"})
            await asyncio.to_thread(change, database, "values", {"n": "rolled back too"}, fail=True)
            await asyncio.to_thread(change, database, "values", {"n": "last"})
            assert [(await next_message(values)).payload for _ in range(2)] == [{"n": "committed"}, {"n": "last"}]
            assert [(await next_message(both)).topic for _ in range(3)] == ["alerts", "values", "values"]
        assert bus.subscriber_count == 0

    asyncio.run(scenario())


def _bus(database: Database, size: int) -> Bus:
    return PostgresBus(database.engine.url, size) if database.dialect == "postgresql" else LocalBus(size)


def test_a_subscriber_that_falls_behind_is_dropped_and_the_others_keep_everything(database: Database) -> None:
    async def scenario() -> None:
        bus = _bus(database, size=3)
        try:
            async with bus.subscribe(["reports"]) as slow, bus.subscribe(["reports"]) as fast:
                received = []
                for number in range(6):
                    await asyncio.to_thread(bus.publish, "reports", {"tracking_code": f"PA-{number}"})
                    received.append((await next_message(fast)).payload["tracking_code"])
                assert received == [f"PA-{n}" for n in range(6)]
                assert slow.dropped and slow.queue.qsize() <= 1  # what it held is let go
                with pytest.raises(StopAsyncIteration):
                    await next_message(slow)
        finally:
            bus.close()

    asyncio.run(scenario())


def test_postgres_carries_a_change_from_one_database_object_to_another_process_listener(
    postgres_backend: Backend,
) -> None:
    url = postgres_backend.database.engine.url
    writer = Database(url.render_as_string(hide_password=False))

    async def scenario() -> None:
        elsewhere = PostgresBus(url)  # what another process's bus is: its own listening connection
        try:
            async with elsewhere.subscribe(["incidents"]) as subscription:
                assert elsewhere.listening
                await asyncio.to_thread(change, writer, "incidents", {"id": 1, "status": "new"}, fail=True)
                await asyncio.to_thread(change, writer, "incidents", {"id": 2, "status": "new"})
                message = await next_message(subscription)
                assert (message.topic, message.payload) == ("incidents", {"id": 2, "status": "new"})
        finally:
            elsewhere.close()

    try:
        asyncio.run(scenario())
    finally:
        writer.dispose()
