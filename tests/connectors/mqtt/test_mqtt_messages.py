"""The mqtt connector against the real Mosquitto: messages become observations, bad ones are rejected with reasons
while the good ones are kept, and QoS 1 messages sent while the feed was not connected still arrive."""

from __future__ import annotations

import asyncio
import json

import pytest
from mqtt_support import (
    CAMERAS,
    ONLINE,
    SensorFeed,
    communes,
    eventually,
    publish,
    reading,
    shared_broker,
    subscribed,
)

from cityops.worker import Worker


@pytest.fixture
def broker() -> tuple[str, int]:
    return shared_broker()


@pytest.fixture
def feed(backend, clock, broker):
    made = SensorFeed(backend, clock, *broker)
    yield made
    made.forget_session()


def test_messages_become_observations_and_a_run_log(backend, clock, broker, feed: SensorFeed) -> None:
    first, second = communes(backend.database)

    async def scenario() -> None:
        worker = Worker(backend.database, clock, feed.secret_key, name="worker-a")
        await worker.supervise()
        try:
            await subscribed(worker, feed)
            await publish(
                *broker,
                (feed.topic(first, ONLINE), reading(17)),
                (feed.topic(first, CAMERAS), reading(19)),
                (feed.topic(second, ONLINE), reading(12.5)),
            )
            await eventually(lambda: len(feed.values()) == 3, "three observations")
        finally:
            await worker.release()

    asyncio.run(scenario())
    assert feed.values() == {(first, ONLINE): 17, (first, CAMERAS): 19, (second, ONLINE): 12.5}
    stored = feed.observations()
    assert {row.source_ref for row in stored} == {
        feed.topic(first, ONLINE),
        feed.topic(first, CAMERAS),
        feed.topic(second, ONLINE),
    }
    assert {row.period_type for row in stored} == {"instant"}
    runs = feed.runs()
    assert runs and {run.trigger for run in runs} == {"message"}
    assert sum(run.accepted for run in runs) == 3
    assert {run.status for run in runs} == {"ok"}
    assert {run.details["worker"] for run in runs} == {"worker-a"}
    assert feed.lease() == ("", None)  # released on stop


def test_a_bad_message_is_rejected_with_reasons_and_the_good_ones_are_kept(
    backend, clock, broker, feed: SensorFeed
) -> None:
    first, second = communes(backend.database)

    async def scenario() -> None:
        worker = Worker(backend.database, clock, feed.secret_key, name="worker-a")
        await worker.supervise()
        try:
            await subscribed(worker, feed)
            await publish(
                *broker,
                (feed.topic(first), reading(15)),
                (feed.topic(first, CAMERAS), b'{"ts": "2026-11-27T09:55:00+07:00", "value": 1'),  # cut short
                (feed.topic(second, CAMERAS), b'{"ts": "2026-11-27T09:55:00+07:00"}'),  # no value
                (feed.topic(second, ONLINE), reading(-3)),  # below the indicator's minimum
                (feed.topic(second, "antt.khong_co"), reading(4)),  # no such indicator
                (feed.topic(second), reading(16, "2026-11-27T09:56:00+07:00")),
            )
            await eventually(lambda: len(feed.rejections()) == 4, "four rejections")
            await eventually(lambda: len(feed.observations()) == 2, "two observations")
        finally:
            await worker.release()

    asyncio.run(scenario())
    assert feed.values() == {(first, ONLINE): 15, (second, ONLINE): 16}
    rejections = {row.code: row for row in feed.rejections()}
    assert set(rejections) == {"mqtt_invalid_json", "mapping_missing", "value_out_of_range", "unknown_indicator"}
    bad_json = rejections["mqtt_invalid_json"]
    assert feed.topic(first, CAMERAS) in bad_json.message_vi and "không phải JSON hợp lệ" in bad_json.message_vi
    assert feed.topic(first, CAMERAS) in bad_json.message_en and "not valid JSON" in bad_json.message_en
    missing = rejections["mapping_missing"]
    assert feed.topic(second, CAMERAS) in missing.message_vi and "thiếu trường “value”" in missing.message_vi
    assert "the field “value” is missing" in missing.message_en
    for row in rejections.values():
        assert row.message_vi and row.message_en and row.message_vi != row.message_en
    runs = feed.runs()
    assert sum(run.accepted for run in runs) == 2 and sum(run.rejected for run in runs) == 4
    assert any(run.status == "partial" and run.error_code for run in runs)


def test_messages_sent_while_the_feed_was_stopped_arrive_when_it_starts_again(
    backend, clock, broker, feed: SensorFeed
) -> None:
    """The persistent session: the broker keeps QoS 1 messages for the feed's fixed client id."""
    first, second = communes(backend.database)

    async def scenario() -> None:
        worker = Worker(backend.database, clock, feed.secret_key, name="worker-a")
        await worker.supervise()
        await subscribed(worker, feed)
        await worker.release()  # disconnects; the broker keeps the session
        await publish(*broker, (feed.topic(first), reading(11)), (feed.topic(second), reading(12)))
        again = Worker(backend.database, clock, feed.secret_key, name="worker-b")
        await again.supervise()
        try:
            await eventually(lambda: len(feed.values()) == 2, "the two messages sent while stopped")
        finally:
            await again.release()

    asyncio.run(scenario())
    assert feed.values() == {(first, ONLINE): 11, (second, ONLINE): 12}
    assert {run.details["worker"] for run in feed.runs()} == {"worker-b"}


def test_a_reading_sent_twice_in_a_burst_is_stored_once_and_a_correction_replaces_it(
    backend, clock, broker, feed: SensorFeed
) -> None:
    first = communes(backend.database, 1)[0]

    async def scenario() -> None:
        worker = Worker(backend.database, clock, feed.secret_key, name="worker-a")
        await worker.supervise()
        try:
            await subscribed(worker, feed)
            await publish(
                *broker,
                (feed.topic(first), reading(10)),
                (feed.topic(first), reading(10)),  # a re-delivery
                (feed.topic(first), reading(13)),  # a correction of the same moment
            )
            await eventually(lambda: sum(run.received for run in feed.runs()) == 3, "three messages counted")
        finally:
            await worker.release()

    asyncio.run(scenario())
    assert feed.values() == {(first, ONLINE): 13}
    assert feed.rejections() == []


def test_a_gateway_message_with_several_readings_keeps_the_good_ones(backend, clock, broker) -> None:
    """One message per gateway, a list of readings; the subject comes from the topic, the indicator is fixed."""
    first, second = communes(backend.database)
    mapping = {
        "records": "readings",
        "subject": {"topic": 3},
        "period": {"path": "t", "format": "epoch_s"},
        "source_ref": {"topic": 1},
        "observations": [{"indicator": {"value": ONLINE}, "value": {"path": "online", "format": "number"}}],
    }
    feed = SensorFeed(backend, clock, *broker, mapping=mapping)
    gateway = feed.prefix.split("/")[1]
    moment = 1795747800  # 2026-11-27 02:50 UTC

    async def scenario() -> None:
        worker = Worker(backend.database, clock, feed.secret_key, name="worker-a")
        await worker.supervise()
        try:
            await subscribed(worker, feed)
            batch = {"readings": [{"t": moment, "online": "17"}, {"t": moment + 60}, {"t": moment + 120, "online": 18}]}
            await publish(
                *broker,
                (feed.topic(first, "all"), json.dumps(batch)),
                (feed.topic(second, "all"), json.dumps({"readings": 5})),  # not a list of readings
            )
            await eventually(lambda: len(feed.rejections()) == 2, "two rejections")
            await eventually(lambda: len(feed.observations()) == 2, "two observations")
        finally:
            await worker.release()
            feed.forget_session()

    asyncio.run(scenario())
    assert sorted(row.value for row in feed.observations()) == [17, 18]
    assert {row.source_ref for row in feed.observations()} == {gateway}  # the mapping's, not the topic
    missing, shape = sorted(feed.rejections(), key=lambda row: row.code)
    assert missing.code == "mapping_missing" and "Bản ghi 2: thiếu trường “value”" in missing.message_vi
    assert feed.topic(first, "all") in missing.message_en and "Record 2" in missing.message_en
    assert shape.code == "mqtt_not_records" and feed.topic(second, "all") in shape.message_vi
    assert "“readings”" in shape.message_vi and "“readings”" in shape.message_en
