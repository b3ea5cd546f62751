"""Settings of an mqtt feed: which broker, which topics, and how a topic and its JSON payload map to observations."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from cityops.connectors.mapping import Mapping

MAX_TOPICS = 50
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def check_topic_filter(topic: str) -> str:
    """A valid MQTT topic filter (MQTT 3.1.1 §4.7): "+" fills a whole level, "#" only as the whole last level."""
    if not topic:
        raise ValueError("a topic cannot be empty")
    if "\x00" in topic or len(topic.encode()) > 65535:
        raise ValueError(f"the topic {topic[:60]!r} holds a NUL character or is too long")
    levels = topic.split("/")
    for position, level in enumerate(levels):
        if "#" in level and (level != "#" or position != len(levels) - 1):
            raise ValueError(f"in {topic[:60]!r}, “#” must be a whole level and the last one")
        if "+" in level and level != "+":
            raise ValueError(f"in {topic[:60]!r}, “+” must be a whole level")
    return topic


class MqttSettings(BaseModel):
    """Which broker, which topics, and how topic and payload map to observations.

    `client_id` empty means "cityops-<feed code>": the id must stay the same from one connection to the next so
    that the broker keeps the feed's session (its subscriptions, and the QoS 1 messages sent while it was away).
    """

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", min_length=1, max_length=255, pattern=r"^[^\s/]+$")
    port: int = Field(default=1883, ge=1, le=65535)
    username: str = Field(default="", max_length=255)
    password: SecretStr | None = None
    topics: list[str] = Field(min_length=1, max_length=MAX_TOPICS)
    qos: Literal[0, 1] = 1
    client_id: str = ""
    keepalive: int = Field(default=60, ge=5, le=3600)
    tls: bool = False
    mapping: Mapping

    @field_validator("topics")
    @classmethod
    def _valid_topics(cls, topics: list[str]) -> list[str]:
        checked = [check_topic_filter(topic.strip()) for topic in topics]
        if len(set(checked)) != len(checked):
            raise ValueError("a topic is listed twice")
        return checked

    @field_validator("client_id")
    @classmethod
    def _valid_client_id(cls, client_id: str) -> str:
        client_id = client_id.strip()
        if client_id and not _CLIENT_ID.match(client_id):
            raise ValueError("a client id is 1 to 128 letters, digits, “.”, “_”, “:” or “-”")
        return client_id
