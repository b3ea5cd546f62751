"""What the mqtt tests share: the real broker (the shared one on 1883, or one a test starts and kills), a feed of
kind mqtt with a topic mapping, publishing, and waiting for what a user would see in the database."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiomqtt
import paho.mqtt.client as paho
from sqlalchemy import select

from cityops.accounts import service as accounts
from cityops.clock import FrozenClock
from cityops.connectors.mqtt.connector import MqttConnector
from cityops.db.engine import Database
from cityops.feeds.models import Feed, FeedRun
from cityops.feeds.service import create_feed
from cityops.geo.models import Subject
from cityops.observations.models import IngestRejection, Observation
from cityops.worker import Worker
from conftest import Backend, service_missing

SHARED_HOST, SHARED_PORT = "127.0.0.1", 1883
MOSQUITTO = "/usr/sbin/mosquitto"
ONLINE, CAMERAS = "antt.camera_truc_tuyen", "antt.camera"  # instant, per commune, owned by the provincial police
AGENCY = "cong_an_tinh"
MOMENT = "2026-11-27T09:55:00+07:00"  # five minutes before the test clock's now
WAIT_SECONDS = 30.0
T = TypeVar("T")


def shared_broker() -> tuple[str, int]:
    """The Mosquitto every test may use, or a skip (a failure in CI) when it is absent."""
    try:
        with socket.create_connection((SHARED_HOST, SHARED_PORT), timeout=3):
            pass
    except OSError as exc:
        service_missing(f"Mosquitto at {SHARED_HOST}:{SHARED_PORT}", str(exc))
    return SHARED_HOST, SHARED_PORT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class OwnBroker:
    """A Mosquitto of the test's own on a free port, to be killed and started again on the same port."""

    def __init__(self, directory: Path, config: str = "allow_anonymous true\n") -> None:
        if not os.access(MOSQUITTO, os.X_OK) and shutil.which("mosquitto") is None:
            service_missing("the mosquitto program", f"{MOSQUITTO} not found")
        self.program = MOSQUITTO if os.access(MOSQUITTO, os.X_OK) else str(shutil.which("mosquitto"))
        self.port = free_port()
        self.config = directory / "mosquitto.conf"
        # "user": started as root, mosquitto would become the user "mosquitto", who may not read the test's files.
        self.config.write_text(f"listener {self.port} 127.0.0.1\nuser {getpass.getuser()}\n{config}")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([self.program, "-c", str(self.config)], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:  # until it listens: waiting for an event, not for the clock
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mosquitto did not start on port {self.port}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: the broker vanishes without a word, as a crashed or unplugged one would."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@contextmanager
def own_broker(directory: Path, config: str = "allow_anonymous true\n") -> Iterator[OwnBroker]:
    broker = OwnBroker(directory, config)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def communes(database: Database, count: int = 2) -> list[str]:
    with database.reading() as session:
        return list(session.scalars(select(Subject.code).where(Subject.kind == "commune").order_by(Subject.code)))[
            :count
        ]


def sensor_mapping() -> dict[str, Any]:
    """cityops/test-<id>/sensors/<subject>/<indicator> with {"ts": …, "value": …}."""
    return {
        "subject": {"topic": 3},
        "period": "ts",
        "observations": [{"indicator": {"topic": 4}, "value": "value"}],
    }


class SensorFeed:
    """A feed of kind mqtt reading sensors under a topic prefix of its own."""

    def __init__(self, backend: Backend, clock: FrozenClock, host: str, port: int, **settings: Any) -> None:
        self.database = backend.database
        self.secret_key = backend.settings.resolved_secret_key
        self.host, self.port = host, port
        self.prefix = f"cityops/test-{uuid.uuid4().hex[:12]}/sensors"
        self.code = f"mqtt_{uuid.uuid4().hex[:10]}"
        self.settings = {
            "host": host,
            "port": port,
            "topics": [f"{self.prefix}/+/+"],
            "qos": 1,
            "mapping": sensor_mapping(),
            **settings,
        }
        with self.database.writing() as session:
            self.id = create_feed(
                session,
                accounts.SYSTEM,
                clock(),
                code=self.code,
                agency_code=AGENCY,
                indicator_codes=[ONLINE, CAMERAS],
                kind="mqtt",
                settings=self.settings,
                secret_key=self.secret_key,
            ).id

    @property
    def client_id(self) -> str:
        return f"cityops-{self.code}"

    def topic(self, subject: str, indicator: str = ONLINE) -> str:
        return f"{self.prefix}/{subject}/{indicator}"

    def forget_session(self) -> None:
        """Remove the feed's persistent session from the broker (it would outlive the test otherwise)."""
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=True)
        try:
            client.connect(self.host, self.port, keepalive=5)
            client.loop_start()
            client.disconnect()
            client.loop_stop()
        except OSError:
            pass

    # --- what a user sees -------------------------------------------------------------------------

    def values(self) -> dict[tuple[str, str], float | None]:
        """(subject, indicator) → stored value, for this feed."""
        from cityops.catalog.models import Indicator

        with self.database.reading() as session:
            rows = session.execute(
                select(Subject.code, Indicator.code, Observation.value)
                .join(Subject, Subject.id == Observation.subject_id)
                .join(Indicator, Indicator.id == Observation.indicator_id)
                .where(Observation.feed_id == self.id)
            )
            return {(subject, indicator): value for subject, indicator, value in rows}

    def observations(self) -> list[Observation]:
        with self.database.reading() as session:
            return list(session.scalars(select(Observation).where(Observation.feed_id == self.id)))

    def rejections(self) -> list[IngestRejection]:
        with self.database.reading() as session:
            return list(
                session.scalars(
                    select(IngestRejection).where(IngestRejection.feed_id == self.id).order_by(IngestRejection.id)
                )
            )

    def runs(self) -> list[FeedRun]:
        with self.database.reading() as session:
            return list(session.scalars(select(FeedRun).where(FeedRun.feed_id == self.id).order_by(FeedRun.id)))

    def lease(self) -> tuple[str, Any]:
        with self.database.reading() as session:
            feed = session.get_one(Feed, self.id)
            return feed.lease_owner, feed.lease_until


def reading(value: float | None, moment: str = MOMENT) -> bytes:
    return json.dumps({"ts": moment, "value": value}).encode()


async def publish(host: str, port: int, *messages: tuple[str, bytes | str], qos: int = 1) -> None:
    """Publish messages as a sensor gateway would (QoS 1: each acknowledged by the broker)."""
    async with aiomqtt.Client(host, port, identifier=f"test-publisher-{uuid.uuid4().hex[:8]}") as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=qos)


async def eventually(check: Callable[[], T], what: str) -> T:
    """Poll the database (in a thread) until `check` answers something true; fail after a generous timeout."""
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while True:
        result = await asyncio.to_thread(check)
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still waiting after {WAIT_SECONDS:.0f} s for {what}; last answer: {result!r}")
        await asyncio.sleep(0.05)


def connector(worker: Worker, feed: SensorFeed) -> MqttConnector:
    """The connector a worker runs for a feed (it must hold the feed)."""
    held = worker.held[feed.id]
    assert isinstance(held.prepared.connector, MqttConnector)
    return held.prepared.connector


async def subscribed(worker: Worker, feed: SensorFeed) -> None:
    """Wait until the worker's connector for the feed is subscribed at the broker."""
    await asyncio.wait_for(connector(worker, feed).subscribed.wait(), timeout=WAIT_SECONDS)
