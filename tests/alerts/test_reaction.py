"""A running worker evaluates the rules new data made due at once, not at its next tick (issue 10: an observation
reaches the alert screens in well under a second, though the worker's rounds are ten seconds or more apart)."""

from __future__ import annotations

import asyncio
import time

import pytest
from alerts_support import CASES, CDC, WARD, alerts, make_rule, send, value

from cityops.live.bus import bus_for, close_all
from cityops.worker import Worker
from conftest import make_key


@pytest.fixture(autouse=True, scope="module")
def _buses_closed():
    """Leave no listener behind (the test database is dropped at the end of the session)."""
    yield
    close_all()


def test_the_worker_fires_a_threshold_alert_as_soon_as_the_value_is_stored(client, database, clock) -> None:
    key = make_key(database, clock(), agency=CDC, feed="cdc_ngay", indicators=[CASES])
    make_rule(
        database,
        clock,
        code="sxh_cao",
        name_vi="Sốt xuất huyết tăng cao",
        name_en="Dengue cases high",
        kind="threshold",
        indicator=CASES,
        params={"op": ">", "value": 20},
        severity="critical",
    )
    worker = Worker(database, clock, "test-secret", name="reacting-worker")
    bus = bus_for(database.engine.url)

    async def scenario() -> list[str]:
        stop = asyncio.Event()
        # A round every hour: only the reaction to the stored value can fire the alert within the test.
        running = asyncio.create_task(worker.run(stop, tick_seconds=3600))
        try:
            await _until(lambda: bus.subscriber_count >= 1, "the worker to listen for new values")
            await asyncio.sleep(0.5)  # the first round (at start) is over
            assert alerts(database) == []
            await asyncio.to_thread(send, client, key, value(CASES, WARD, "2026-11-27", 25))
            await _until(lambda: [alert.state for alert in alerts(database)] == ["firing"], "the alert to fire")
            return [alert.key for alert in alerts(database)]
        finally:
            stop.set()
            await asyncio.wait_for(running, timeout=30)

    assert len(asyncio.run(scenario())) == 1


async def _until(condition, what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds:.0f} s for {what}"
        await asyncio.sleep(0.05)
