"""đúng and sạch: rejected items, a part above its whole, duplicates, a changed final figure and an outlier.

Every count is worked out by hand from the items sent; the rows listed must be exactly the ones that lowered a score.
Flagged values stay stored.
"""

from __future__ import annotations

import statistics
from datetime import timedelta

import pytest
from health_support import BEDS, PATIENTS, VISITS, cells, communes, item, make_feed, send, trust
from sqlalchemy import select

from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.health import service as health
from cityops.observations.models import Observation

FEED = "yte_benh_vien"
OTHER = "yte_khac"


def test_rejections_and_a_part_above_its_whole_lower_correct_and_a_fix_restores_it(
    database: Database, clock: FrozenClock
) -> None:
    (c1, _), (c2, _), (c3, _) = communes(database, 3)
    make_feed(database, clock(), FEED, [VISITS, PATIENTS, BEDS])
    make_feed(database, clock(), OTHER, [VISITS])
    now = clock()
    instant = "2026-11-27T02:00:00Z"
    result = send(
        database,
        FEED,
        now,
        item(VISITS, c1, "2026-11-26", 120),
        item(VISITS, c2, "2026-11-26", 80),
        item(VISITS, c3, "2026-11-26", -5),  # below the catalog's minimum: rejected
        item(VISITS, "99999", "2026-11-26", 3),  # no such subject: rejected
        item(PATIENTS, c1, instant, 130),  # 130 in-patients …
        item(BEDS, c1, instant, 100),  # … in 100 beds: a part above its whole
        item(PATIENTS, c2, instant, 50),
        item(BEDS, c2, instant, 100),
    )
    assert (result.accepted, len(result.rejected)) == (6, 2)
    send(database, OTHER, now, item(VISITS, c1, "2026-11-26", -1))  # another feed's rejection: not this one's

    first = trust(database, FEED, now)
    assert (first.correct.accepted, first.correct.rejected, first.correct.violations) == (6, 2, 1)
    assert first.correct.score == pytest.approx(100 * (6 - 1) / (6 + 2))
    assert cells(first.correct.rejected_rows, "code", "indicator", "index") == {
        ("value_out_of_range", VISITS, 2),
        ("unknown_subject", VISITS, 3),
    }
    out_of_range = next(row for row in first.correct.rejected_rows if row["code"] == "value_out_of_range")
    assert "-5" in out_of_range["message_vi"] and out_of_range["message_en"]
    assert '"value":-5' in out_of_range["item"]
    [violation] = first.correct.violation_rows
    assert (violation["numerator"], violation["denominator"], violation["subject"]) == (PATIENTS, BEDS, c1)
    assert (violation["numerator_value"], violation["denominator_value"]) == (130, 100)
    assert violation["period"] == "2026-11-27T02:00:00.000000Z"
    assert trust(database, OTHER, now).correct.rejected == 1

    # An hour later the hospital corrects the in-patients: the rule holds again; the old value is kept in history.
    clock.advance(timedelta(hours=1))
    send(database, FEED, clock(), item(PATIENTS, c1, instant, 90))
    fixed = trust(database, FEED, clock())
    assert (fixed.correct.accepted, fixed.correct.rejected, fixed.correct.violations) == (7, 2, 0)
    assert fixed.correct.score == pytest.approx(100 * 7 / 9)
    assert fixed.correct.violation_rows == []
    # The correction changed a figure already sent for a moment past: a conflicting re-send, flagged in sạch.
    assert (fixed.clean.accepted, fixed.clean.conflicts, fixed.clean.flagged) == (7, 1, 1)
    assert fixed.clean.score == pytest.approx(100 * (1 - 1 / 7))
    [conflict] = fixed.clean.conflict_rows
    assert (conflict["indicator"], conflict["subject"], conflict["old_value"], conflict["new_value"]) == (
        PATIENTS,
        c1,
        130,
        90,
    )

    # A window that starts after the first batch sees only the correction.
    later = trust(database, FEED, clock(), start=now + timedelta(minutes=30))
    assert (later.correct.accepted, later.correct.rejected, later.correct.score) == (1, 0, 100)


def test_duplicates_changed_final_figures_and_an_outlier_lower_clean_and_stay_stored(
    database: Database, clock: FrozenClock
) -> None:
    (c1, _), *_ = communes(database, 1)
    make_feed(database, clock(), FEED, [VISITS])
    start = clock()
    history = [100, 104, 98, 101, 99, 103]
    # Ten days ago: a week of ordinary visits (before the window judged below, but part of the series).
    send(
        database,
        FEED,
        start - timedelta(days=10),
        *(item(VISITS, c1, f"2026-11-{day}", value) for day, value in zip(range(11, 17), history, strict=True)),
    )
    # In the window (the last two days):
    send(
        database,
        FEED,
        start - timedelta(days=1),
        item(VISITS, c1, "2026-11-25", 1000),  # ten times the usual: an outlier
        item(VISITS, c1, "2026-11-24", 102),
        item(VISITS, c1, "2026-11-23", 97),
    )
    send(database, FEED, start - timedelta(hours=12), item(VISITS, c1, "2026-11-24", 102))  # identical again
    # The same value with a new reference: sent again, nothing changed.
    send(database, FEED, start - timedelta(hours=11), item(VISITS, c1, "2026-11-24", 102, source_ref="bc-2"))
    send(database, FEED, start - timedelta(hours=6), item(VISITS, c1, "2026-11-23", 95))  # a final figure changed
    # Today's running figure grows during the day: neither a conflict nor judged as an outlier.
    send(database, FEED, start - timedelta(hours=2), item(VISITS, c1, "2026-11-27", 10))
    send(database, FEED, start - timedelta(hours=1), item(VISITS, c1, "2026-11-27", 20))

    result = trust(database, FEED, start, start=start - timedelta(days=2))
    # Items received in the window: 3 + 1 + 1 + 1 + 1 + 1 = 8, all accepted.
    assert (result.correct.accepted, result.correct.rejected, result.correct.score) == (8, 0, 100)
    # Flagged: the identical re-send, the same value again, the changed 23/11, the outlier 25/11.
    assert (result.clean.duplicates, result.clean.conflicts, result.clean.outliers) == (2, 1, 1)
    assert result.clean.flagged == 4
    assert result.clean.score == pytest.approx(100 * (1 - 4 / 8))
    assert cells(result.clean.duplicate_rows, "kind", "count") == {("identical", 1), ("same_value", 1)}
    same = next(row for row in result.clean.duplicate_rows if row["kind"] == "same_value")
    assert (same["indicator"], same["subject"], same["period"], same["value"]) == (VISITS, c1, "2026-11-24", 102)
    assert cells(result.clean.conflict_rows, "period", "old_value", "new_value") == {("2026-11-23", 97, 95)}

    # The series of ended days: the week before and 23, 24 and 25/11 (today's running figure is left out).
    series = [*history, 95, 102, 1000]
    median = statistics.median(series)
    mad = statistics.median(abs(value - median) for value in series)
    assert (median, mad) == (101, 2)
    [outlier] = result.clean.outlier_rows
    assert (outlier["period"], outlier["value"], outlier["median"]) == ("2026-11-25", 1000, 101)
    assert outlier["scale"] == pytest.approx(1.4826 * 2)
    assert outlier["deviation"] == pytest.approx((1000 - 101) / (1.4826 * 2))
    assert outlier["series_size"] == 9
    # 95 is |95 − 101| / 2.97 ≈ 2 from the median: kept unflagged.

    # Flagged, never dropped: every value is still stored as sent last.
    with database.reading() as session:
        stored = {key: value for key, value in session.execute(select(Observation.period_key, Observation.value))}
    assert stored["2026-11-25"] == 1000 and stored["2026-11-23"] == 95 and stored["2026-11-27"] == 20


def test_when_the_spread_is_zero_the_mean_deviation_stands_in(database: Database, clock: FrozenClock) -> None:
    assert health.robust_centre([12, 12, 12, 12, 12, 12, 12, 12, 12, 13]) == (12, pytest.approx(1.2533 * 0.1))
    assert health.robust_centre([5, 5, 5, 5, 5, 5]) == (5, 0)  # all equal: no spread, nothing flagged

    (c1, _), *_ = communes(database, 1)
    make_feed(database, clock(), FEED, [VISITS])
    start = clock()
    send(
        database,
        FEED,
        start - timedelta(days=10),
        *(item(VISITS, c1, f"2026-11-{day:02d}", 12) for day in range(1, 10)),
    )
    send(database, FEED, start - timedelta(hours=3), item(VISITS, c1, "2026-11-20", 13))
    # MAD is 0; mean deviation 0.1 → |13 − 12| / 0.125 ≈ 8 > 5: flagged.
    flagged = trust(database, FEED, start, start=start - timedelta(days=1))
    assert flagged.clean.outliers == 1 and flagged.clean.outlier_rows[0]["period"] == "2026-11-20"
    assert flagged.clean.score == 0  # the one item received in the window is flagged
