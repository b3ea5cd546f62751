"""The daily roll-up of instant indicators: the newest reading per commune and day, whatever order readings arrive
in, the same when made again from every reading, and what the screens read over a day or a month."""

from __future__ import annotations

from derived_support import PROVINCE, by_subject, communes, observation, seed, values
from sqlalchemy import select

from cityops.observations import rollup
from cityops.observations.models import ObservationDay
from conftest import make_key

POPULATION = "yte.dan_so"  # last, instant


def _days(database) -> list[tuple[str, str, float | None]]:
    with database.reading() as session:
        rows = session.execute(
            select(ObservationDay.day_key, ObservationDay.period_key, ObservationDay.value).order_by(
                ObservationDay.subject_id, ObservationDay.day_key
            )
        )
        return [tuple(row) for row in rows]


def test_the_newest_reading_of_each_day_wins_whatever_the_order_of_arrival(client, database, clock) -> None:
    key = make_key(database, clock(), agency="thong_ke_tinh", feed="thong_ke", indicators=[POPULATION])
    [a] = communes(database, 1)
    seed(client, key, observation(POPULATION, a, 1000, "2026-11-26T08:00:00+07:00"))
    seed(client, key, observation(POPULATION, a, 1200, "2026-11-26T23:30:00+07:00"))  # still the 26th in Hà Nội
    seed(client, key, observation(POPULATION, a, 1100, "2026-11-26T09:00:00+07:00"))  # late, older: changes nothing
    seed(
        client,
        key,
        observation(POPULATION, a, 1300, "2026-11-27T07:00:00+07:00"),
        observation(POPULATION, a, 1250, "2026-11-27T06:00:00+07:00"),  # one batch, out of order
    )
    assert _days(database) == [
        ("2026-11-26", "2026-11-26T16:30:00.000000Z", 1200),
        ("2026-11-27", "2026-11-27T00:00:00.000000Z", 1300),
    ]
    seed(client, key, observation(POPULATION, a, 1210, "2026-11-26T23:30:00+07:00"))  # the newest, corrected
    assert _days(database)[0] == ("2026-11-26", "2026-11-26T16:30:00.000000Z", 1210)

    kept = _days(database)
    with database.writing() as session:
        assert rollup.rebuild_days(session) == 2
    assert _days(database) == kept  # made again from every reading: the same

    day = by_subject(values(client, key.headers, POPULATION, period="2026-11-26"))
    month = by_subject(values(client, key.headers, POPULATION, period="2026-11"))
    assert (day[a]["value"], day[PROVINCE]["value"]) == (1210, 1210)
    assert (month[a]["value"], month[a]["stored_period"]) == (1300, "2026-11-27T00:00:00.000000Z")
