"""The demo's feeds: every connector kind, schedules that fit the period types, one agency late on purpose — and a
provisioning that runs again (after a stop, on an older demo's data, with or without MQTT) without duplicating."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import Select, func, select

from cityops.accounts import service as accounts
from cityops.accounts.models import ApiKey, AuditEntry, User, api_key_feeds
from cityops.alerts.models import FIRING, Alert
from cityops.catalog.service import read_catalog
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.demo.feeds import LATE_AGENCY, PREFIX, FeedPlan, instant_schedule, plan_feeds
from cityops.demo.runner import DEMO_USERS, Connections, Provisioned, provision
from cityops.demo.simulator import IndicatorPlan
from cityops.feeds import lateness
from cityops.feeds.cadence import parse_cadence
from cityops.feeds.models import LATE, Feed, FeedExpectation
from cityops.feeds.service import FEED_CODE, create_feed, feed_indicator_codes, settings_of
from conftest import START, Backend

CONNECTIONS = Connections("http://127.0.0.1:9", "lgsp-token-first-run", ("127.0.0.1", 1883), "test0001")
CAMERAS = {"antt.camera", "antt.camera_truc_tuyen"}


def _catalog_plans() -> list[IndicatorPlan]:
    return [
        IndicatorPlan(
            i.code, i.owner, i.period, i.aggregation, i.subject_level, i.unit, i.numerator, i.denominator, i.min, i.max
        )
        for file in read_catalog().domains
        for i in file.indicators
    ]


def _carrier(feeds: list[FeedPlan], code: str) -> FeedPlan:
    return next(feed for feed in feeds if code in feed.indicators)


def test_every_connector_kind_carries_what_fits_it() -> None:
    indicators = {plan.code: plan for plan in _catalog_plans()}
    feeds = plan_feeds(list(indicators.values()), interval=10, mqtt=True)
    assert {feed.kind for feed in feeds} == {"push", "http_pull", "spreadsheet", "mqtt"}
    carried = Counter(code for feed in feeds for code in feed.indicators)
    assert set(carried) == set(indicators) and set(carried.values()) == {1}, "every indicator in exactly one feed"
    for code, plan in indicators.items():
        feed = _carrier(feeds, code)
        if plan.owner == "trung_tam_phuc_vu_hcc":
            assert feed.kind == "http_pull", code  # the iGate, through the LGSP
        elif code.startswith(("ktxh.", "dulich.")):
            assert feed.kind == "spreadsheet", code  # the manual subsystems
        elif code in CAMERAS:
            assert feed.kind == "mqtt", code
        else:
            assert feed.kind == "push", code
    assert len({feed.code for feed in feeds}) == len(feeds)
    assert all(FEED_CODE.fullmatch(feed.code) and feed.code.startswith(PREFIX) for feed in feeds)


def test_each_feed_has_one_period_type_a_fitting_cadence_and_its_coverage() -> None:
    indicators = {plan.code: plan for plan in _catalog_plans()}
    for feed in plan_feeds(list(indicators.values()), interval=10, mqtt=True):
        assert {indicators[code].period_type for code in feed.indicators} == {feed.period_type}, feed.code
        assert parse_cadence(feed.cadence).period_type == feed.period_type, feed.code
        communes = {indicators[code].subject_level == "commune" for code in feed.indicators}
        assert communes == {feed.coverage == "communes"}, feed.code
        assert feed.grace_minutes > 0
        assert (feed.poll_seconds > 0) == (feed.kind == "http_pull")
    plans = plan_feeds(list(indicators.values()), interval=10, mqtt=True)
    by_code = {feed.code: feed for feed in plans}
    assert by_code["demo_trung_tam_giam_sat_dieu_hanh_day"].cadence == "daily by 17:00"
    assert by_code["demo_trung_tam_phuc_vu_hcc_month_lgsp"].cadence == "monthly by day 5"
    assert by_code["demo_cong_an_tinh_instant_mqtt"].cadence == "every 5 minutes"
    # An agency with commune-level and other indicators of one period type gets one feed for each coverage.
    assert by_code["demo_so_y_te_instant_communes"].coverage == "communes"
    assert by_code["demo_so_y_te_instant_province"].coverage == "province"


def test_exactly_one_feed_is_late_on_purpose_the_cdc_daily_reports() -> None:
    late = [feed for feed in plan_feeds(_catalog_plans(), interval=10, mqtt=False) if feed.late]
    assert [(feed.agency, feed.period_type, feed.kind) for feed in late] == [(LATE_AGENCY, "day", "push")]
    now = START
    since = late[0].silent_since(now)
    assert since is not None and (now - since) > timedelta(days=2), "today and the two days before are never sent"


def test_without_a_broker_the_cameras_are_pushed() -> None:
    feeds = plan_feeds(_catalog_plans(), interval=10, mqtt=False)
    assert "mqtt" not in {feed.kind for feed in feeds}
    assert {_carrier(feeds, code).code for code in CAMERAS} == {"demo_cong_an_tinh_instant"}


@pytest.mark.parametrize(
    ("interval", "cadence"),
    [(2, "every 5 minutes"), (10, "every 5 minutes"), (60, "every 15 minutes"), (600, "every 3 hours")],
)
def test_values_now_are_expected_in_slots_that_hold_several_rounds(interval: float, cadence: str) -> None:
    text, grace = instant_schedule(interval)
    assert text == cadence
    assert parse_cadence(text).seconds == grace * 60


# --- provisioning, on both databases ------------------------------------------------------------------


def _provision(backend: Backend, now: datetime, connections: Connections = CONNECTIONS) -> Provisioned:
    with backend.database.writing() as session:
        return provision(
            session,
            now,
            interval=10,
            connections=connections,
            secret_key=backend.settings.resolved_secret_key,
        )


def _feeds(database: Database) -> dict[str, Feed]:
    with database.reading() as session:
        return {feed.code: feed for feed in session.scalars(select(Feed))}


def _count(database: Database, query: Select[tuple[int]]) -> int:
    with database.reading() as session:
        return int(session.scalar(query) or 0)


def test_provisioning_again_duplicates_nothing_and_renews_keys_and_the_lgsp_address(
    backend: Backend, clock: FrozenClock
) -> None:
    database = backend.database
    first = _provision(backend, clock())
    before = _feeds(database)
    assert set(before) == {feed.code for feed in first.feeds}
    clock.advance(timedelta(hours=1))
    moved = Connections("http://127.0.0.1:10", "lgsp-token-second-run", CONNECTIONS.mqtt, CONNECTIONS.install)
    second = _provision(backend, clock(), moved)
    after = _feeds(database)
    assert {code: feed.id for code, feed in after.items()} == {code: feed.id for code, feed in before.items()}
    assert _count(database, select(func.count()).select_from(User)) == len(DEMO_USERS)
    assert _count(database, select(func.count()).where(AuditEntry.action == "feed.create")) == len(before)
    assert set(second.keys) == set(first.keys) and not set(second.keys.values()) & set(first.keys.values())
    revoked = select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_not(None))
    assert _count(database, revoked) == len(first.keys)
    assert all(not feed.paused for feed in after.values())

    pulled = after["demo_trung_tam_phuc_vu_hcc_month_lgsp"]
    assert pulled.kind == "http_pull" and pulled.settings["url"].startswith("http://127.0.0.1:10/")
    assert "lgsp-token" not in pulled.secrets and pulled.secret_names == ["token"]
    token = settings_of(pulled, backend.settings.resolved_secret_key).token
    assert isinstance(token, SecretStr) and token.get_secret_value() == "lgsp-token-second-run"
    assert pulled.poll_seconds == 10


def test_an_older_demos_feeds_do_not_break_it_and_are_paused(backend: Backend, clock: FrozenClock) -> None:
    database = backend.database
    with database.writing() as session:  # what `cityops demo` made before feeds had schedules
        for agency, codes in (("so_y_te", ["yte.luot_kham_ngoai_tru"]), ("trung_tam_phuc_vu_hcc", ["hcc.danh_gia"])):
            create_feed(
                session, accounts.SYSTEM, clock(), code=f"demo_{agency}", agency_code=agency, indicator_codes=codes
            )
            accounts.create_api_key(
                session,
                accounts.SYSTEM,
                clock(),
                agency_code=agency,
                feed_codes=[f"demo_{agency}"],
                name="demo simulator",
            )
    provisioned = _provision(backend, clock())
    feeds = _feeds(database)
    assert feeds["demo_so_y_te"].paused and feeds["demo_trung_tam_phuc_vu_hcc"].paused
    assert all(not feeds[feed.code].paused for feed in provisioned.feeds)
    with database.reading() as session:
        bound = set(
            session.scalars(
                select(Feed.code)
                .join(api_key_feeds, api_key_feeds.c.feed_id == Feed.id)
                .join(ApiKey, ApiKey.id == api_key_feeds.c.api_key_id)
                .where(ApiKey.revoked_at.is_(None))
            )
        )
    assert bound and not bound & {"demo_so_y_te", "demo_trung_tam_phuc_vu_hcc"}


def _late(database: Database) -> dict[str, int]:
    with database.reading() as session:
        rows = session.execute(
            select(Feed.code, func.count())
            .join(FeedExpectation, FeedExpectation.feed_id == Feed.id)
            .where(FeedExpectation.state == LATE)
            .group_by(Feed.code)
        )
        return {code: count for code, count in rows}


def _firing(database: Database) -> set[str]:
    with database.reading() as session:
        return set(
            session.scalars(
                select(Feed.code)
                .join(Alert, Alert.feed_id == Feed.id)
                .where(Alert.state == FIRING, Alert.kind == "feed_late")
            )
        )


def test_only_the_late_agency_is_late_even_after_the_demo_was_stopped(backend: Backend, clock: FrozenClock) -> None:
    database = backend.database
    late_feed = "demo_trung_tam_kiem_soat_benh_tat_day"
    _provision(backend, clock())
    assert _feeds(database)[late_feed].created_at == clock() - timedelta(days=4)
    with database.writing() as session:
        lateness.tick(session, clock())
    # 27/11 10:00 in Hà Nội: 23, 24, 25 and 26/11 were due at 17:00 (+ 1 h of grace), and nothing came.
    assert _late(database) == {late_feed: 4}
    assert _firing(database) == {late_feed}

    clock.advance(timedelta(days=2))  # the demo was stopped for two days, then started again
    _provision(backend, clock())
    with database.writing() as session:
        lateness.tick(session, clock())
    assert _late(database) == {late_feed: 6}, "periods owed while the demo was stopped are excused, but not its own"
    assert _firing(database) == {late_feed}
    with database.reading() as session:
        codes = feed_indicator_codes(session, _feeds(database)[late_feed].id)
    assert codes == ["yte.ca_benh_truyen_nhiem", "yte.ca_sot_xuat_huyet", "yte.ca_tay_chan_mieng"]


def test_mqtt_feed_follows_the_broker(backend: Backend, clock: FrozenClock) -> None:
    database = backend.database
    mqtt_feed, push_feed = "demo_cong_an_tinh_instant_mqtt", "demo_cong_an_tinh_instant"

    def cameras_of(code: str) -> set[str]:
        with database.reading() as session:
            return set(feed_indicator_codes(session, _feeds(database)[code].id)) & CAMERAS

    _provision(backend, clock())
    feed = _feeds(database)[mqtt_feed]
    assert feed.kind == "mqtt" and not feed.paused
    assert feed.settings["topics"] == ["cityops-demo-test0001/antt/camera/+"]
    assert cameras_of(mqtt_feed) == CAMERAS and cameras_of(push_feed) == set()

    clock.advance(timedelta(minutes=30))
    no_broker = Connections(CONNECTIONS.lgsp_url, CONNECTIONS.lgsp_token, None, CONNECTIONS.install)
    provisioned = _provision(backend, clock(), no_broker)
    assert _feeds(database)[mqtt_feed].paused
    assert cameras_of(push_feed) == CAMERAS
    assert {plan.kind for plan in provisioned.plans if plan.code in CAMERAS} == {"push"}

    clock.advance(timedelta(minutes=30))
    _provision(backend, clock())
    assert not _feeds(database)[mqtt_feed].paused and cameras_of(push_feed) == set()
