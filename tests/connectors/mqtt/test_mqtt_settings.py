"""Settings of an mqtt feed: topic filters checked as MQTT defines them, the password kept encrypted and never
shown back, and a client id that stays the same from one connection to the next."""

from __future__ import annotations

import pytest
from mqtt_support import AGENCY, ONLINE, sensor_mapping

from cityops.accounts import service as accounts
from cityops.connectors.mqtt.connector import MqttConnector
from cityops.connectors.runner import prepare
from cityops.feeds.models import Feed
from cityops.feeds.service import SECRET_MASK, FeedError, create_feed, feed_out


def make(backend, clock, code: str = "mqtt_cam", **settings: object) -> Feed:
    with backend.database.writing() as session:
        feed = create_feed(
            session,
            accounts.SYSTEM,
            clock(),
            code=code,
            agency_code=AGENCY,
            indicator_codes=[ONLINE],
            kind="mqtt",
            settings={"topics": ["camera/+/online"], "mapping": sensor_mapping(), **settings},
            secret_key=backend.settings.resolved_secret_key,
        )
        session.expunge(feed)
        return feed


@pytest.mark.parametrize(
    "topic",
    ["camera/online#", "camera/#/online", "camera/a+/online", "", "camera/\x00"],
    ids=["hash-inside-level", "hash-not-last", "plus-inside-level", "empty", "nul"],
)
def test_a_topic_filter_mqtt_would_refuse_is_refused_when_the_feed_is_saved(backend, clock, topic: str) -> None:
    with pytest.raises(FeedError) as refused:
        make(backend, clock, topics=[topic])
    assert refused.value.code == "invalid_settings"
    assert "topics" in refused.value.message_vi and "topics" in refused.value.message_en


def test_wildcards_in_their_place_are_accepted(backend, clock) -> None:
    feed = make(backend, clock, topics=["camera/+/online", "sensors/#", "#", "+/+"])
    assert feed.settings["topics"] == ["camera/+/online", "sensors/#", "#", "+/+"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("qos", 2), ("port", 0), ("keepalive", 1), ("client_id", "có dấu"), ("host", "mqtt://broker"), ("topics", [])],
)
def test_other_settings_out_of_range_are_refused(backend, clock, field: str, value: object) -> None:
    with pytest.raises(FeedError) as refused:
        make(backend, clock, **{field: value})
    assert refused.value.params["field"].startswith(field)


def test_the_password_is_stored_encrypted_and_never_shown_back(backend, clock) -> None:
    feed = make(backend, clock, username="camera", password="mật-khẩu-bí-mật")
    assert "password" not in feed.settings
    assert "mật-khẩu-bí-mật" not in feed.secrets and feed.secrets
    with backend.database.reading() as session:
        shown = feed_out(session, session.get_one(Feed, feed.id))
        assert shown["settings"]["password"] == SECRET_MASK
        connector = prepare(session, session.get_one(Feed, feed.id), backend.settings.resolved_secret_key).connector
    assert isinstance(connector, MqttConnector)
    options = connector.broker_options()
    assert options.password == "mật-khẩu-bí-mật" and options.username == "camera"


def test_the_client_id_is_fixed_by_the_feed_unless_one_is_given(backend, clock) -> None:
    default = make(backend, clock, code="mqtt_default")
    given = make(backend, clock, code="mqtt_given", client_id="ioc-camera-01")
    with backend.database.reading() as session:
        connectors = [prepare(session, session.get_one(Feed, feed.id), "").connector for feed in (default, given)]
    ids = [connector.broker_options().client_id for connector in connectors if isinstance(connector, MqttConnector)]
    assert ids == ["cityops-mqtt_default", "ioc-camera-01"]
