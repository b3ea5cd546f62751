"""A feed going late and recovering: expected periods, lateness claimed once, the owner agency's alert, recovery.

Time only moves when a test moves the FrozenClock; data arrives through the real API (POST /api/v1/observations).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from cityops.accounts import service as accounts
from cityops.accounts.models import Agency
from cityops.alerts import service as alerts
from cityops.alerts.models import Alert, AlertEvent
from cityops.clock import LOCAL_TZ, FrozenClock
from cityops.db.engine import Database
from cityops.feeds import lateness
from cityops.feeds.models import EXPECTED, LATE, RECEIVED, Feed, FeedExpectation
from cityops.feeds.service import create_feed, update_feed
from cityops.i18n import format_period
from cityops.worker import Worker
from conftest import AgencyKey, Backend

OBSERVATIONS = "/api/v1/observations"
CDC = "trung_tam_kiem_soat_benh_tat"  # the disease-control centre: daily dengue cases, monthly vaccinations
POLICE = "cong_an_tinh"  # provincial police: cameras online, an instant every few minutes
HCC = "trung_tam_phuc_vu_hcc"  # public-service centre: monthly dossiers


def local(text: str) -> datetime:
    """A wall-clock time in Hà Nội, as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=LOCAL_TZ).astimezone(UTC)


def make_feed(
    database: Database,
    now: datetime,
    *,
    code: str,
    agency: str,
    indicators: list[str],
    cadence: str,
    grace: int = 0,
    paused: bool = False,
) -> AgencyKey:
    """A feed with a cadence, and an agency key bound to it."""
    with database.writing() as session:
        create_feed(
            session,
            accounts.SYSTEM,
            now,
            code=code,
            agency_code=agency,
            indicator_codes=indicators,
            cadence=cadence,
            grace_minutes=grace,
            paused=paused,
        )
        key, secret = accounts.create_api_key(session, accounts.SYSTEM, now, agency_code=agency, feed_codes=[code])
    return AgencyKey(secret, key.prefix, code, agency)


def tick(database: Database, now: datetime) -> lateness.TickResult:
    with database.writing() as session:
        return lateness.tick(session, now)


def send(client: Any, key: AgencyKey, *items: dict[str, Any]) -> None:
    answer = client.post(OBSERVATIONS, headers=key.headers, json={"observations": list(items)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == len(items), answer.text


@dataclass
class Row:
    key: str
    state: str
    on_time: bool | None
    due_at: datetime
    late_at: datetime
    received_at: datetime | None


def rows(database: Database, feed: str) -> dict[str, Row]:
    """The feed's expected periods by key."""
    with database.reading() as session:
        found = session.scalars(
            select(FeedExpectation)
            .join(Feed, Feed.id == FeedExpectation.feed_id)
            .where(Feed.code == feed)
            .order_by(FeedExpectation.period_start)
        )
        return {r.period_key: Row(r.period_key, r.state, r.on_time, r.due_at, r.late_at, r.received_at) for r in found}


def alert_of(database: Database, feed: str) -> Alert | None:
    with database.reading() as session:
        feed_id = session.scalar(select(Feed.id).where(Feed.code == feed))
        assert feed_id is not None
        return session.scalar(select(Alert).where(Alert.key == lateness.late_alert_key(feed_id)))


def events_of(database: Database, feed: str) -> list[str]:
    with database.reading() as session:
        feed_id = session.scalar(select(Feed.id).where(Feed.code == feed))
        assert feed_id is not None
        return [event.event for event in alerts.events(session, lateness.late_alert_key(feed_id))]


def agency_id(database: Database, code: str) -> int:
    with database.reading() as session:
        found = session.scalar(select(Agency.id).where(Agency.code == code))
        assert found is not None
        return found


def firing_for(database: Database, agency: str) -> list[str]:
    with database.reading() as session:
        return [alert.key for alert in alerts.firing(session, agency_ids=[agency_id(database, agency)])]


# --- a daily feed going late and recovering ----------------------------------------------------------


@pytest.fixture
def cdc_key(database: Database, clock: FrozenClock) -> AgencyKey:
    """Dengue cases every day by 17:00 with 30 minutes' grace (and a monthly indicator on the same feed)."""
    assert clock().astimezone(LOCAL_TZ).hour == 10  # 27/11/2026 10:00 in Hà Nội
    return make_feed(
        database,
        clock(),
        code="cdc_hang_ngay",
        agency=CDC,
        indicators=["yte.ca_sot_xuat_huyet", "yte.tre_tron_1_tuoi"],
        cadence="hằng ngày trước 17:00",
        grace=30,
    )


def test_a_daily_feed_is_late_one_minute_after_deadline_plus_grace_not_before(
    client: Any, database: Database, clock: FrozenClock, cdc_key: AgencyKey
) -> None:
    tick(database, clock())
    today = rows(database, "cdc_hang_ngay")["2026-11-27"]
    assert (today.state, today.due_at, today.late_at) == (
        EXPECTED,
        local("2026-11-27T17:00"),
        local("2026-11-27T17:30"),
    )

    clock.current = local("2026-11-27T17:29")
    result = tick(database, clock())
    assert result.late == [] and result.alerts_fired == []
    assert rows(database, "cdc_hang_ngay")["2026-11-27"].state == EXPECTED
    assert alert_of(database, "cdc_hang_ngay") is None

    clock.current = local("2026-11-27T17:31")
    result = tick(database, clock())
    assert result.late == [("cdc_hang_ngay", "2026-11-27")]
    assert result.alerts_fired == ["cdc_hang_ngay"]
    assert rows(database, "cdc_hang_ngay")["2026-11-27"].state == LATE
    alert = alert_of(database, "cdc_hang_ngay")
    assert alert is not None
    assert (alert.state, alert.kind, alert.agency_id) == ("firing", "feed_late", agency_id(database, CDC))
    assert alert.title_vi == "Nguồn dữ liệu “cdc_hang_ngay” đang trễ hạn: chưa nhận số liệu kỳ 27/11/2026."
    assert alert.title_en == "Data feed “cdc_hang_ngay” is late: no data yet for 27/11/2026."
    assert alert.details["late_periods"] == ["2026-11-27"]
    assert events_of(database, "cdc_hang_ngay") == ["fired"]
    # Addressed to the owner agency, not to another one.
    assert firing_for(database, CDC) == [alert.key]
    assert firing_for(database, "so_gd_dt") == []


def test_another_tick_raises_no_second_alert(
    client: Any, database: Database, clock: FrozenClock, cdc_key: AgencyKey
) -> None:
    clock.current = local("2026-11-27T17:31")
    assert tick(database, clock()).alerts_fired == ["cdc_hang_ngay"]
    for minutes in (1, 2, 30):
        clock.current = local("2026-11-27T17:31") + timedelta(minutes=minutes)
        result = tick(database, clock())
        assert result.late == [] and result.alerts_fired == []
    alert = alert_of(database, "cdc_hang_ngay")
    assert alert is not None and alert.fire_count == 1
    assert events_of(database, "cdc_hang_ngay") == ["fired"]


def test_data_arriving_after_the_alert_resolves_it_and_the_next_day_is_on_time(
    client: Any, database: Database, clock: FrozenClock, cdc_key: AgencyKey
) -> None:
    clock.current = local("2026-11-27T17:31")
    tick(database, clock())

    # A monthly figure on the same feed does not deliver the day.
    clock.current = local("2026-11-27T17:45")
    send(client, cdc_key, {"indicator": "yte.tre_tron_1_tuoi", "subject": "40", "period": "2026-11", "value": 310})
    assert rows(database, "cdc_hang_ngay")["2026-11-27"].state == LATE
    assert alert_of(database, "cdc_hang_ngay").state == "firing"  # type: ignore[union-attr]

    clock.current = local("2026-11-27T18:02")
    send(client, cdc_key, {"indicator": "yte.ca_sot_xuat_huyet", "subject": "40", "period": "2026-11-27", "value": 7})
    today = rows(database, "cdc_hang_ngay")["2026-11-27"]
    assert (today.state, today.on_time, today.received_at) == (RECEIVED, False, local("2026-11-27T18:02"))
    alert = alert_of(database, "cdc_hang_ngay")
    assert alert is not None
    assert (alert.state, alert.resolved_at) == ("resolved", local("2026-11-27T18:02"))
    assert events_of(database, "cdc_hang_ngay") == ["fired", "resolved"]
    assert firing_for(database, CDC) == []

    # The next day's figures before 17:00: on time, nothing fires.
    clock.current = local("2026-11-28T09:00")
    tick(database, clock())
    send(client, cdc_key, {"indicator": "yte.ca_sot_xuat_huyet", "subject": "40", "period": "2026-11-28", "value": 4})
    clock.current = local("2026-11-28T17:31")
    assert tick(database, clock()).late == []
    tomorrow = rows(database, "cdc_hang_ngay")["2026-11-28"]
    assert (tomorrow.state, tomorrow.on_time) == (RECEIVED, True)
    assert events_of(database, "cdc_hang_ngay") == ["fired", "resolved"]

    # A day missed again fires the same alert again.
    clock.current = local("2026-11-29T17:31")
    assert tick(database, clock()).alerts_fired == ["cdc_hang_ngay"]
    assert events_of(database, "cdc_hang_ngay") == ["fired", "resolved", "fired"]
    alert = alert_of(database, "cdc_hang_ngay")
    assert alert is not None and alert.fire_count == 2 and alert.state == "firing"
    assert "29/11/2026" in alert.title_vi


def test_the_alert_stays_until_every_late_period_arrives(
    client: Any, database: Database, clock: FrozenClock, cdc_key: AgencyKey
) -> None:
    tick(database, clock())
    clock.current = local("2026-11-28T17:31")  # the worker was down: both days come due at once
    result = tick(database, clock())
    assert sorted(key for _, key in result.late) == ["2026-11-27", "2026-11-28"]
    alert = alert_of(database, "cdc_hang_ngay")
    assert alert is not None
    assert alert.title_vi.endswith("27/11/2026, 28/11/2026.")
    assert events_of(database, "cdc_hang_ngay") == ["fired"]

    send(client, cdc_key, {"indicator": "yte.ca_sot_xuat_huyet", "subject": "40", "period": "2026-11-28", "value": 2})
    assert alert_of(database, "cdc_hang_ngay").state == "firing"  # type: ignore[union-attr]
    send(client, cdc_key, {"indicator": "yte.ca_sot_xuat_huyet", "subject": "40", "period": "2026-11-27", "value": 5})
    assert alert_of(database, "cdc_hang_ngay").state == "resolved"  # type: ignore[union-attr]
    assert {row.state for row in rows(database, "cdc_hang_ngay").values() if row.key <= "2026-11-28"} == {RECEIVED}


def test_data_sent_before_its_period_is_planned_is_counted_received(
    client: Any, database: Database, clock: FrozenClock, cdc_key: AgencyKey
) -> None:
    assert rows(database, "cdc_hang_ngay") == {}  # no tick yet
    clock.current = local("2026-11-27T10:05")
    send(client, cdc_key, {"indicator": "yte.ca_sot_xuat_huyet", "subject": "40", "period": "2026-11-27", "value": 3})
    tick(database, clock())
    today = rows(database, "cdc_hang_ngay")["2026-11-27"]
    assert (today.state, today.on_time, today.received_at) == (RECEIVED, True, local("2026-11-27T10:05"))
    clock.current = local("2026-11-27T17:31")
    assert tick(database, clock()).late == []
    assert alert_of(database, "cdc_hang_ngay") is None


# --- other cadences ----------------------------------------------------------------------------------


def test_a_monthly_feed_is_late_after_the_end_of_day_5_of_the_next_month(
    client: Any, database: Database, clock: FrozenClock
) -> None:
    key = make_feed(
        database,
        clock(),
        code="hcc_thang",
        agency=HCC,
        indicators=["hcc.ho_so_tiep_nhan", "hcc.ho_so_qua_han"],
        cadence="monthly by day 5",
    )
    tick(database, clock())
    november = rows(database, "hcc_thang")["2026-11"]
    assert (november.state, november.late_at) == (EXPECTED, local("2026-12-06T00:00"))
    assert "2026-10" not in rows(database, "hcc_thang")  # due before the feed existed

    # A reading of overdue dossiers (an instant in November) is not November's monthly report.
    send(client, key, {"indicator": "hcc.ho_so_qua_han", "subject": "40", "period": clock().isoformat(), "value": 3})
    assert rows(database, "hcc_thang")["2026-11"].state == EXPECTED

    clock.current = local("2026-12-05T23:59")
    assert tick(database, clock()).late == []
    assert rows(database, "hcc_thang")["2026-12"].state == EXPECTED  # planned when December began

    clock.current = local("2026-12-06T00:00:30")
    result = tick(database, clock())
    assert result.late == [("hcc_thang", "2026-11")] and result.alerts_fired == ["hcc_thang"]
    alert = alert_of(database, "hcc_thang")
    assert alert is not None and alert.agency_id == agency_id(database, HCC)
    assert alert.title_vi.endswith("kỳ tháng 11/2026.") and alert.title_en.endswith("for 11/2026.")

    clock.current = local("2026-12-08T08:00")
    send(client, key, {"indicator": "hcc.ho_so_tiep_nhan", "subject": "40", "period": "2026-11", "value": 4210})
    assert (rows(database, "hcc_thang")["2026-11"].state, rows(database, "hcc_thang")["2026-11"].on_time) == (
        RECEIVED,
        False,
    )
    assert events_of(database, "hcc_thang") == ["fired", "resolved"]


def test_an_interval_feed_owes_an_instant_in_every_slot(client: Any, database: Database, clock: FrozenClock) -> None:
    key = make_feed(
        database,
        clock(),
        code="camera_5_phut",
        agency=POLICE,
        indicators=["antt.camera_truc_tuyen"],
        cadence="every 5 minutes",
        grace=1,
    )
    start = clock()  # 03:00 UTC
    tick(database, clock())
    planned = rows(database, "camera_5_phut")
    assert list(planned) == ["2026-11-27T03:00:00Z", "2026-11-27T03:05:00Z", "2026-11-27T03:10:00Z"]
    assert planned["2026-11-27T03:00:00Z"].late_at == start + timedelta(minutes=6)

    def camera(at: datetime) -> dict[str, Any]:
        return {"indicator": "antt.camera_truc_tuyen", "subject": "40", "period": at.isoformat(), "value": 412}

    clock.current = start + timedelta(minutes=2)
    send(client, key, camera(clock()))
    clock.current = start + timedelta(minutes=10, seconds=30)
    assert tick(database, clock()).late == []  # the 03:05 slot is due at 03:10, late at 03:11

    clock.current = start + timedelta(minutes=11, seconds=30)
    result = tick(database, clock())
    assert result.late == [("camera_5_phut", "2026-11-27T03:05:00Z")] and result.alerts_fired == ["camera_5_phut"]
    alert = alert_of(database, "camera_5_phut")
    assert alert is not None
    assert alert.title_vi.endswith("kỳ 27/11/2026 10:05.")

    send(client, key, camera(clock()))  # the current slot, on time: the 03:05 one is still missing
    assert alert_of(database, "camera_5_phut").state == "firing"  # type: ignore[union-attr]
    send(client, key, camera(start + timedelta(minutes=7)))  # the missing reading, late
    state = rows(database, "camera_5_phut")
    assert (state["2026-11-27T03:00:00Z"].state, state["2026-11-27T03:00:00Z"].on_time) == (RECEIVED, True)
    assert (state["2026-11-27T03:05:00Z"].state, state["2026-11-27T03:05:00Z"].on_time) == (RECEIVED, False)
    assert (state["2026-11-27T03:10:00Z"].state, state["2026-11-27T03:10:00Z"].on_time) == (RECEIVED, True)
    assert events_of(database, "camera_5_phut") == ["fired", "resolved"]


def test_a_long_silence_is_named_in_short(database: Database, clock: FrozenClock) -> None:
    make_feed(
        database,
        clock(),
        code="camera_5_phut",
        agency=POLICE,
        indicators=["antt.camera_truc_tuyen"],
        cadence="every 5 minutes",
    )
    clock.advance(timedelta(hours=1, seconds=1))
    result = tick(database, clock())
    assert len(result.late) == 12
    alert = alert_of(database, "camera_5_phut")
    assert alert is not None
    assert alert.title_vi.endswith(
        "kỳ 27/11/2026 10:35, 27/11/2026 10:40, 27/11/2026 10:45, 27/11/2026 10:50, 27/11/2026 10:55 và 7 kỳ khác."
    )
    assert alert.title_en.endswith("27/11/2026 10:55 and 7 more.")
    assert alert.details["late_count"] == 12

    clock.advance(timedelta(minutes=5))
    assert tick(database, clock()).alerts_fired == []  # still firing: its title follows, no new event
    alert = alert_of(database, "camera_5_phut")
    assert alert is not None and alert.title_en.endswith("and 8 more.") and alert.details["late_count"] == 13
    assert events_of(database, "camera_5_phut") == ["fired"]


@pytest.mark.parametrize(
    ("period_type", "key", "vietnamese", "english"),
    [
        ("day", "2026-11-27", "27/11/2026", "27/11/2026"),
        ("month", "2026-11", "tháng 11/2026", "11/2026"),
        ("quarter", "2026-Q4", "quý 4/2026", "Q4 2026"),
        ("year", "2026", "năm 2026", "2026"),
        ("school_year", "2025-2026", "năm học 2025-2026", "school year 2025-2026"),
        ("instant", "2026-11-27T03:05:00Z", "27/11/2026 10:05", "27/11/2026 10:05"),
    ],
)
def test_periods_are_named_the_way_readers_say_them(period_type: str, key: str, vietnamese: str, english: str) -> None:
    assert format_period(period_type, key, "vi") == vietnamese
    assert format_period(period_type, key, "en") == english


# --- schedules that change, feeds that pause ---------------------------------------------------------


def test_a_new_schedule_is_planned_again(database: Database, clock: FrozenClock, cdc_key: AgencyKey) -> None:
    tick(database, clock())
    assert list(rows(database, "cdc_hang_ngay")) == ["2026-11-27"]
    with database.writing() as session:
        update_feed(
            session,
            accounts.SYSTEM,
            clock(),
            "cdc_hang_ngay",
            {"cadence": "hằng tháng trước ngày 5", "grace_minutes": 0},
        )
    tick(database, clock())
    planned = rows(database, "cdc_hang_ngay")
    assert list(planned) == ["2026-11"]
    assert (planned["2026-11"].state, planned["2026-11"].late_at) == (EXPECTED, local("2026-12-06T00:00"))
    clock.current = local("2026-11-27T17:31")  # the old daily deadline means nothing any more
    assert tick(database, clock()).late == []

    # A grace period changed: the open period's deadline moves with it.
    with database.writing() as session:
        update_feed(session, accounts.SYSTEM, clock(), "cdc_hang_ngay", {"grace_minutes": 24 * 60})
    tick(database, clock())
    assert rows(database, "cdc_hang_ngay")["2026-11"].late_at == local("2026-12-07T00:00")


def test_a_deadline_already_past_when_the_schedule_changes_is_not_held_against_the_feed(
    database: Database, clock: FrozenClock, cdc_key: AgencyKey
) -> None:
    tick(database, clock())
    clock.current = local("2026-11-27T13:00")
    with database.writing() as session:
        update_feed(
            session, accounts.SYSTEM, clock(), "cdc_hang_ngay", {"cadence": "daily by 12:00", "grace_minutes": 0}
        )
    assert tick(database, clock()).late == []
    assert "2026-11-27" not in rows(database, "cdc_hang_ngay")
    clock.current = local("2026-11-28T12:01")
    assert tick(database, clock()).late == [("cdc_hang_ngay", "2026-11-28")]


def test_a_paused_feed_is_not_late_and_resuming_it_raises_nothing_for_the_pause(
    database: Database, clock: FrozenClock, cdc_key: AgencyKey
) -> None:
    tick(database, clock())  # today's period is planned before the pause
    clock.current = local("2026-11-27T16:00")
    with database.writing() as session:
        update_feed(session, accounts.SYSTEM, clock(), "cdc_hang_ngay", {"paused": True})
    for moment in ("2026-11-27T17:31", "2026-11-28T09:00", "2026-11-28T17:31"):
        clock.current = local(moment)
        assert tick(database, clock()).late == []
    assert LATE not in {row.state for row in rows(database, "cdc_hang_ngay").values()}
    assert alert_of(database, "cdc_hang_ngay") is None

    clock.current = local("2026-11-28T18:00")
    with database.writing() as session:
        update_feed(session, accounts.SYSTEM, clock(), "cdc_hang_ngay", {"paused": False})
    assert tick(database, clock()).late == []
    assert alert_of(database, "cdc_hang_ngay") is None

    clock.current = local("2026-11-29T17:31")  # the first deadline after the pause counts again
    assert tick(database, clock()).late == [("cdc_hang_ngay", "2026-11-29")]
    assert events_of(database, "cdc_hang_ngay") == ["fired"]


def test_a_feed_created_paused_owes_nothing(database: Database, clock: FrozenClock) -> None:
    make_feed(
        database,
        clock(),
        code="cdc_tam_dung",
        agency=CDC,
        indicators=["yte.ca_sot_xuat_huyet"],
        cadence="daily by 17:00",
        paused=True,
    )
    clock.current = local("2026-11-30T17:31")
    assert tick(database, clock()).late == []
    assert alert_of(database, "cdc_tam_dung") is None


# --- two workers ---------------------------------------------------------------------------------------


FEEDS_IN_RACE = 8


def _racing_feeds(database: Database, now: datetime) -> None:
    for number in range(FEEDS_IN_RACE):
        make_feed(
            database,
            now,
            code=f"race_{number}",
            agency=CDC,
            indicators=["yte.ca_sot_xuat_huyet"],
            cadence="daily by 17:00",
        )


def race(workers: list[Worker]) -> list[dict[str, Any]]:
    """One tick of each worker, in threads released at the same moment."""
    barrier = threading.Barrier(len(workers))

    def work(worker: Worker) -> dict[str, Any]:
        barrier.wait(timeout=30)
        return worker.tick()

    with ThreadPoolExecutor(len(workers)) as pool:
        return list(pool.map(work, workers, timeout=120))


def test_two_workers_at_the_same_moment_claim_each_late_period_once_and_fire_once(
    backend: Backend, database: Database, clock: FrozenClock
) -> None:
    """On PostgreSQL the two ticks really overlap; on SQLite the write lock puts one after the other."""
    _racing_feeds(database, clock())
    second = Database(backend.settings.resolved_database_url)  # another process's engine, as a second worker has
    workers = [
        Worker(database, clock, backend.settings.resolved_secret_key, name="worker-a"),
        Worker(second, clock, backend.settings.resolved_secret_key, name="worker-b"),
    ]
    try:
        claimed: list[tuple[str, str]] = []
        fired: list[str] = []
        for day in ("2026-11-27", "2026-11-28"):
            clock.current = local(f"{day}T10:00")
            workers[0].tick()  # the day's periods are planned long before their deadline
            clock.current = local(f"{day}T17:01")  # both workers see the same overdue rows at once
            for result in race(workers):
                claimed += [(code, key) for code, key in result["late"]]
                fired += result["alerts"]

        late_rows = {
            (f"race_{number}", key)
            for number in range(FEEDS_IN_RACE)
            for key, row in rows(database, f"race_{number}").items()
            if row.state == LATE
        }
        assert len(late_rows) == FEEDS_IN_RACE * 2
        assert sorted(claimed) == sorted(late_rows)  # every late period claimed, none twice
        assert sorted(fired) == [f"race_{number}" for number in range(FEEDS_IN_RACE)]
        with database.reading() as session:
            assert session.scalars(select(AlertEvent.event)).all() == ["fired"] * FEEDS_IN_RACE
            assert set(session.scalars(select(Alert.fire_count))) == {1}
    finally:
        second.dispose()


def test_lateness_ticks_one_after_the_other_claim_nothing_twice(database: Database, clock: FrozenClock) -> None:
    _racing_feeds(database, clock())
    clock.current = local("2026-11-27T17:01")
    first, second = tick(database, clock()), tick(database, clock())
    assert len(first.late) == FEEDS_IN_RACE and len(first.alerts_fired) == FEEDS_IN_RACE
    assert second.late == [] and second.alerts_fired == [] and second.planned == 0
