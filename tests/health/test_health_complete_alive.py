"""đủ and sống: a daily feed that delivers, then delivers late, then not at all — scores and state as time moves.

Each score is computed by hand below from what the test sent; the rows listed must be exactly the cells and periods
that lowered it. Time moves only through the FrozenClock and explicit lateness ticks.
"""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from health_support import (
    BEDS,
    INPATIENT_DAYS,
    VISITS,
    cells,
    communes,
    item,
    local,
    make_feed,
    pause,
    send,
    tick,
    trust,
)

from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.health import service as health

FEED = "yte_kham_benh_ngay"


def _all(indicators: list[str], subjects: list[str], period: str, value: float = 10) -> list[dict]:
    return [item(code, subject, period, value) for code in indicators for subject in subjects]


def test_a_daily_feed_goes_late_recovers_and_lists_exactly_what_is_missing(
    database: Database, clock: FrozenClock
) -> None:
    three = communes(database, 3)
    codes = [code for code, _ in three]
    c1, c2, c3 = codes
    # Created on 27/11 at 10:00 (the clock's start): expected daily by 17:00, for three communes, two daily indicators;
    # the hospital beds (an instant indicator) ride along but are not expected by a daily cadence.
    assert clock() == local(2026, 11, 27, 10)
    make_feed(
        database,
        clock(),
        FEED,
        [VISITS, INPATIENT_DAYS, BEDS],
        cadence="hằng ngày trước 17:00",
        coverage="list",
        subjects=codes,
    )
    tick(database, clock())
    before = trust(database, FEED, clock())
    assert before.state == health.ON_TIME
    assert before.complete.score is None and before.alive.score is None  # nothing due yet: nothing to judge
    assert before.complete.applicable is False and before.alive.applicable is False

    # 27/11: everything by 16:00, on time.
    clock.current = local(2026, 11, 27, 16)
    assert send(database, FEED, clock(), *_all([VISITS, INPATIENT_DAYS], codes, "2026-11-27")).accepted == 6
    clock.current = local(2026, 11, 27, 17, 1)
    assert tick(database, clock()).late == []
    assert trust(database, FEED, clock()).state == health.ON_TIME

    # 28/11: nothing by 17:00 → late (the tick claims it); two communes arrive at 18:00 → on time again.
    clock.current = local(2026, 11, 28, 17, 1)
    assert tick(database, clock()).late == [(FEED, "2026-11-28")]
    late = trust(database, FEED, clock())
    assert late.state == health.LATE and late.late_now == 1
    clock.current = local(2026, 11, 28, 18)
    assert send(database, FEED, clock(), *_all([VISITS, INPATIENT_DAYS], [c1, c2], "2026-11-28")).accepted == 4
    assert trust(database, FEED, clock()).state == health.ON_TIME

    # 29/11: nothing at all.
    clock.current = local(2026, 11, 29, 17, 1)
    tick(database, clock())
    clock.current = local(2026, 11, 30, 9)
    tick(database, clock())
    result = trust(database, FEED, clock())
    assert result.state == health.LATE

    # Judged: 27, 28 and 29/11 (30/11 is not due yet) × 3 communes × 2 daily indicators = 18 cells; 6 + 4 received.
    assert (result.complete.periods, result.complete.subjects, result.complete.indicators) == (3, 3, 2)
    assert (result.complete.expected, result.complete.received, result.complete.missing) == (18, 10, 8)
    assert result.complete.score == pytest.approx(100 * 10 / 18)
    missing = cells(result.complete.missing_rows, "indicator", "subject", "period")
    assert missing == {
        (VISITS, c3, "2026-11-28"),
        (INPATIENT_DAYS, c3, "2026-11-28"),
        *((code, subject, "2026-11-29") for code in (VISITS, INPATIENT_DAYS) for subject in codes),
    }
    names = dict(three)
    assert {(row["subject"], row["subject_name_vi"]) for row in result.complete.missing_rows} == {
        (code, names[code]) for code in codes
    }
    due = {row["period"]: row["due_at"] for row in result.complete.missing_rows}
    assert due == {
        "2026-11-28": local(2026, 11, 28, 17).astimezone(UTC).isoformat(),
        "2026-11-29": local(2026, 11, 29, 17).astimezone(UTC).isoformat(),
    }
    assert result.complete.missing_rows[0]["period"] == "2026-11-29"  # newest first

    # Only 27/11 arrived on time: 1 of 3.
    assert (result.alive.periods, result.alive.on_time) == (3, 1)
    assert result.alive.score == pytest.approx(100 / 3)
    assert cells(result.alive.late_rows, "period", "state") == {
        ("2026-11-28", "received_late"),
        ("2026-11-29", "missing"),
    }
    assert result.last_received_at == local(2026, 11, 28, 18)
    assert result.overall == pytest.approx((100 * 10 / 18 + 100 / 3 + 100 + 100) / 4)

    # A window that starts after 28/11 17:00 judges 29/11 alone.
    narrow = trust(database, FEED, clock(), start=local(2026, 11, 29))
    assert (narrow.complete.expected, narrow.complete.received, narrow.alive.periods) == (6, 0, 1)
    assert narrow.complete.score == 0 and narrow.alive.score == 0

    # 30/11 at 16:00: 29 (late) and 30 (on time) arrive in full → on time again, and đủ complete.
    clock.current = local(2026, 11, 30, 16)
    send(
        database,
        FEED,
        clock(),
        *_all([VISITS, INPATIENT_DAYS], codes, "2026-11-29"),
        *_all([VISITS, INPATIENT_DAYS], codes, "2026-11-30"),
        item(INPATIENT_DAYS, c3, "2026-11-28", 7),
    )
    clock.current = local(2026, 11, 30, 17, 30)
    tick(database, clock())
    recovered = trust(database, FEED, clock())
    assert recovered.state == health.ON_TIME
    # 4 periods × 6 cells = 24; only visits of c3 on 28/11 never came.
    assert (recovered.complete.expected, recovered.complete.received) == (24, 23)
    assert cells(recovered.complete.missing_rows, "indicator", "subject", "period") == {(VISITS, c3, "2026-11-28")}
    assert (recovered.alive.periods, recovered.alive.on_time) == (4, 2)


def test_three_late_periods_in_a_row_make_a_feed_down_and_pausing_shows_paused(
    database: Database, clock: FrozenClock
) -> None:
    (c1, _name), *_ = communes(database, 1)
    make_feed(database, clock(), FEED, [VISITS], cadence="daily by 17:00", coverage="list", subjects=[c1])
    clock.current = local(2026, 11, 27, 12)
    send(database, FEED, clock(), item(VISITS, c1, "2026-11-27", 5))
    states = []
    for day in (28, 29, 30):
        clock.current = local(2026, 11, day, 17, 1)
        tick(database, clock())
        states.append(trust(database, FEED, clock()).state)
    # 27 on time, then 28, 29 late: late; with 30 the last three due periods are all late: down.
    assert states == [health.LATE, health.LATE, health.DOWN]
    down = trust(database, FEED, clock())
    assert (down.alive.periods, down.alive.on_time) == (4, 1)

    # A late arrival for 30/11 is still not on time: the last three stay late, the feed stays down.
    clock.advance(timedelta(hours=1))
    send(database, FEED, clock(), item(VISITS, c1, "2026-11-30", 6))
    assert trust(database, FEED, clock()).state == health.DOWN

    pause(database, clock(), FEED)
    paused = trust(database, FEED, clock())
    assert paused.state == health.PAUSED
    # Pausing does not rewrite the past: the scores still judge what was due.
    assert (paused.alive.periods, paused.alive.on_time) == (4, 1)


def test_three_failed_runs_in_a_row_make_a_feed_down_and_a_feed_without_a_cadence_has_no_complete_or_alive(
    database: Database, clock: FrozenClock
) -> None:
    (c1, _name), *_ = communes(database, 1)
    make_feed(database, clock(), "yte_day_tu_do", [VISITS])  # a push feed without a cadence
    for minutes in (0, 10, 20):
        clock.current = local(2026, 11, 27, 11, minutes)
        result = send(database, "yte_day_tu_do", clock(), item(VISITS, c1, "2026-11-27", -1))
        assert result.accepted == 0 and len(result.rejected) == 1  # every item refused: the run failed
    down = trust(database, "yte_day_tu_do", clock())
    assert down.state == health.DOWN
    assert down.complete.score is None and down.alive.score is None
    assert down.complete.applicable is False and down.alive.applicable is False
    assert [run["error_code"] for run in down.alive.failed_runs] == ["value_out_of_range"] * 3
    assert down.correct.score == 0  # three items received, none accepted
    assert down.overall == 0  # the mean of the scores that apply: đúng 0; sạch has nothing to judge
    assert down.clean.score is None

    clock.advance(timedelta(minutes=10))
    send(database, "yte_day_tu_do", clock(), item(VISITS, c1, "2026-11-27", 12))
    up = trust(database, "yte_day_tu_do", clock())
    assert up.state == health.UNSCHEDULED
    assert up.correct.score == pytest.approx(100 * 1 / 4)
    assert up.last_received_at == clock()


def test_an_interval_feed_counts_an_instant_inside_each_slot(database: Database, clock: FrozenClock) -> None:
    # Every 2 hours, for the province, from 10:00 (Hà Nội): the slots 10–12 and 12–14 are due by 14:01.
    make_feed(database, clock(), "yte_giuong_2h", [BEDS], cadence="every 2 hours")
    send(database, "yte_giuong_2h", clock(), item(BEDS, "40", "2026-11-27T09:55:00+07:00", 820))  # before: not owed
    clock.current = local(2026, 11, 27, 11, 30)
    send(database, "yte_giuong_2h", clock(), item(BEDS, "40", "2026-11-27T11:30:00+07:00", 815))
    clock.current = local(2026, 11, 27, 14, 1)
    tick(database, clock())
    result = trust(database, "yte_giuong_2h", clock())
    assert (result.complete.periods, result.complete.subjects, result.complete.indicators) == (2, 1, 1)
    assert (result.complete.expected, result.complete.received) == (2, 1)
    [missing] = result.complete.missing_rows
    assert (missing["indicator"], missing["subject"], missing["period"]) == (BEDS, "40", "2026-11-27T05:00:00Z")
    assert missing["subject_name_vi"] == "Tỉnh Nghệ An"
    assert missing["due_at"] == local(2026, 11, 27, 14).astimezone(UTC).isoformat()
    assert (result.alive.periods, result.alive.on_time) == (2, 1)
    assert result.state == health.LATE
    assert result.correct.accepted == 2  # the early instant is accepted, just not owed
