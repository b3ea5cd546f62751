"""Shapes of the notifications API: notifications, preferences, webhooks, deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _no_nul(text: str) -> str:
    # PostgreSQL cannot store NUL, and no field needs it.
    if "\x00" in text:
        raise ValueError("text must not hold NUL (U+0000)")
    return text


Text = Annotated[str, AfterValidator(_no_nul)]


class NotificationOut(BaseModel):
    """One notification: in the reader's language (title, body) and in both."""

    id: int
    kind: str
    title: str
    body: str
    title_vi: str
    title_en: str
    body_vi: str
    body_en: str
    link: str = Field(description="Where it leads in the app, e.g. /incidents/12")
    created_at: datetime
    read_at: datetime | None
    unread: bool


class NotificationList(BaseModel):
    """A page of the caller's notifications, newest first."""

    items: list[NotificationOut]
    total: int = Field(description="How many match the filter in all")
    unread: int = Field(description="How many of the caller's notifications are unread")
    limit: int
    offset: int


class UnreadCount(BaseModel):
    unread: int


class Marked(BaseModel):
    marked: int = Field(description="How many notifications were unread and are now read")


class KindChoice(BaseModel):
    """Whether a kind comes in the app and by e-mail."""

    model_config = ConfigDict(extra="forbid")

    kind: Text = Field(max_length=40, description="alert.fired, incident.assigned …")
    in_app: bool | None = None
    email: bool | None = None


class KindChoiceOut(BaseModel):
    kind: str
    name: str
    in_app: bool
    email: bool


class PreferencesIn(BaseModel):
    """What to change: the address (omit to keep it, "" for none) and the kinds listed (others keep theirs)."""

    model_config = ConfigDict(extra="forbid")

    email: Text | None = Field(default=None, max_length=300)
    kinds: list[KindChoice] = Field(default_factory=list, max_length=50)


class PreferencesOut(BaseModel):
    email: str
    kinds: list[KindChoiceOut]


class WebhookIn(BaseModel):
    """A new webhook. The secret signs every post (at least 16 characters); it is never shown again."""

    model_config = ConfigDict(extra="forbid")

    name: Text = Field(max_length=255)
    url: Text = Field(max_length=500, description="http(s) URL the posts go to")
    secret: Text = Field(max_length=500, description="Shared secret of the HMAC-SHA256 signature")
    kinds: list[Annotated[Text, Field(max_length=40)]] = Field(default_factory=list, max_length=20)
    enabled: bool = True


class WebhookPatch(BaseModel):
    """The fields to change; an empty secret keeps the stored one."""

    model_config = ConfigDict(extra="forbid")

    name: Text | None = Field(default=None, max_length=255)
    url: Text | None = Field(default=None, max_length=500)
    secret: Text | None = Field(default=None, max_length=500)
    kinds: list[Annotated[Text, Field(max_length=40)]] | None = Field(default=None, max_length=20)
    enabled: bool | None = None


class WebhookOut(BaseModel):
    id: int
    name: str
    url: str
    kinds: list[str] = Field(description="Kinds posted; empty: every kind")
    enabled: bool
    secret_set: bool = Field(description="The secret itself is never shown")
    created_by: str
    created_at: datetime
    updated_at: datetime | None


class WebhookList(BaseModel):
    items: list[WebhookOut]


class DeliveryOut(BaseModel):
    """One e-mail or webhook post of the outbox."""

    id: int
    key: str
    channel: str
    target: str = Field(description="The e-mail address or the webhook's URL")
    webhook_id: int | None
    kind: str
    what: str = Field(description="The subject or title sent")
    status: str = Field(description="pending, sent or dead")
    attempts: int
    next_attempt_at: datetime | None
    last_error: str = Field(description="The code of the last failure, e.g. http_status:503")
    last_error_text: str
    last_error_vi: str
    last_error_en: str
    created_at: datetime
    sent_at: datetime | None


class DeliveryList(BaseModel):
    items: list[DeliveryOut]
    total: int
    limit: int
    offset: int
