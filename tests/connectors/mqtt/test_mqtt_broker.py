"""The mqtt connector against a Mosquitto of the test's own: it survives the broker being killed and started again,
and says clearly (in Vietnamese and English) when the broker refuses it."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from itertools import islice

import aiomqtt
from mqtt_support import (
    ONLINE,
    SensorFeed,
    communes,
    connector,
    eventually,
    own_broker,
    publish,
    reading,
    subscribed,
)

from cityops.accounts import service as accounts
from cityops.connectors.mqtt.client import backoff
from cityops.feeds.service import update_feed
from cityops.worker import Worker
from conftest import service_missing


def test_the_feed_reconnects_by_itself_after_the_broker_is_killed_and_restarted(backend, clock, tmp_path) -> None:
    first, second = communes(backend.database)
    with own_broker(tmp_path) as broker:
        feed = SensorFeed(backend, clock, "127.0.0.1", broker.port)

        async def scenario() -> None:
            worker = Worker(backend.database, clock, feed.secret_key, name="worker-a")
            await worker.supervise()
            try:
                await subscribed(worker, feed)
                await publish("127.0.0.1", broker.port, (feed.topic(first), reading(5)))
                await eventually(lambda: feed.values() == {(first, ONLINE): 5}, "the first reading")

                await asyncio.to_thread(broker.kill)
                await eventually(
                    lambda: {"mqtt_connection_lost", "mqtt_unreachable"} <= {run.error_code for run in feed.runs()},
                    "the lost connection and a failed attempt to reconnect in the run log",
                )
                assert not connector(worker, feed).subscribed.is_set()

                await asyncio.to_thread(broker.start)  # same port, a broker that knows nothing of the feed
                await subscribed(worker, feed)  # nobody asked it to: it reconnected and subscribed again
                await publish(
                    "127.0.0.1",
                    broker.port,
                    (feed.topic(first), reading(6, "2026-11-27T09:57:00+07:00")),
                    (feed.topic(second), reading(7)),
                )
                await eventually(lambda: len(feed.observations()) == 3, "the readings after the restart")
                assert worker.held[feed.id].task is not None and not worker.held[feed.id].task.done()
            finally:
                await worker.release()

        asyncio.run(scenario())
    assert feed.values() == {(first, ONLINE): 6, (second, ONLINE): 7}
    failures = {run.error_code: run for run in feed.runs() if run.status == "failed"}
    assert set(failures) == {"mqtt_connection_lost", "mqtt_unreachable"}  # each said once, not at every attempt
    lost = failures["mqtt_connection_lost"]
    assert lost.retryable is True
    assert f"Mất kết nối với máy chủ MQTT 127.0.0.1:{broker.port}" in lost.message_vi
    assert f"The connection to the MQTT broker 127.0.0.1:{broker.port} was lost" in lost.message_en
    unreachable = failures["mqtt_unreachable"]
    assert "Không kết nối được máy chủ MQTT" in unreachable.message_vi and "Cannot connect" in unreachable.message_en
    assert sum(run.accepted for run in feed.runs()) == 3


def test_a_refused_password_is_reported_and_the_corrected_one_is_used_at_once(backend, clock, tmp_path) -> None:
    first = communes(backend.database, 1)[0]
    passwords = tmp_path / "passwords"
    if shutil.which("mosquitto_passwd") is None:
        service_missing("the mosquitto_passwd program", "not on PATH")
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "sensors", "đúng-mật-khẩu"], check=True)
    config = f"allow_anonymous false\npassword_file {passwords}\n"
    with own_broker(tmp_path, config) as broker:
        feed = SensorFeed(backend, clock, "127.0.0.1", broker.port, username="sensors", password="sai-mật-khẩu")

        async def scenario() -> None:
            worker = Worker(backend.database, clock, feed.secret_key, name="worker-a")
            await worker.supervise()
            try:
                await eventually(lambda: [r for r in feed.runs() if r.error_code == "mqtt_refused"], "the refusal")

                def correct() -> None:
                    with backend.database.writing() as session:
                        update_feed(
                            session,
                            accounts.SYSTEM,
                            clock(),
                            feed.code,
                            {"settings": {**feed.settings, "password": "đúng-mật-khẩu"}},
                            secret_key=feed.secret_key,
                        )

                await asyncio.to_thread(correct)
                await worker.supervise()  # the feed changed: its subscription starts again with the new settings
                await subscribed(worker, feed)
                async with aiomqtt.Client(
                    "127.0.0.1", broker.port, username="sensors", password="đúng-mật-khẩu"
                ) as gateway:
                    await gateway.publish(feed.topic(first), reading(9), qos=1)
                await eventually(lambda: feed.values() == {(first, ONLINE): 9}, "the reading")
            finally:
                await worker.release()

        asyncio.run(scenario())
    refused = [run for run in feed.runs() if run.error_code == "mqtt_refused"]
    assert len(refused) == 1
    assert refused[0].retryable is False
    assert "từ chối kết nối" in refused[0].message_vi and "mật khẩu" in refused[0].message_vi
    assert "refused the connection" in refused[0].message_en and "password" in refused[0].message_en
    assert "sai-mật-khẩu" not in refused[0].message_vi + refused[0].message_en + str(refused[0].details)


def test_reconnection_attempts_wait_longer_each_time_but_never_more_than_30_seconds() -> None:
    assert list(islice(backoff(), 8)) == [1, 2, 4, 8, 16, 30, 30, 30]
