"""Shapes of the feeds API: a feed as created, changed and shown, and a run of its connector."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

MAX_SETTINGS_DEPTH = 12
# Which form or API field a feed error is about (shown next to that field; named in the problem answer).
ERROR_FIELDS = {
    "invalid_code": "code",
    "exists": "code",
    "unknown_kind": "kind",
    "invalid_settings": "settings",
    "settings_missing": "settings",
    "settings_unknown_field": "settings",
    "no_secret_key": "settings",
    "invalid_cadence": "cadence",
    "invalid_grace": "grace_minutes",
    "invalid_coverage": "coverage",
    "no_subjects": "subjects",
    "unknown_subjects": "subjects",
    "unknown_indicators": "indicators",
    "invalid_poll": "poll_seconds",
    "not_updatable": "",
}


def _no_control(text: str) -> str:
    # NUL cannot be stored by PostgreSQL (text or JSONB); no code, name or setting needs a control character.
    if "\x00" in text:
        raise ValueError("text must not hold NUL (U+0000)")
    return text


Text = Annotated[str, AfterValidator(_no_control)]


def _check_json(value: Any, depth: int = 0) -> None:
    if depth > MAX_SETTINGS_DEPTH:
        raise ValueError(f"settings nest deeper than {MAX_SETTINGS_DEPTH} levels")
    if isinstance(value, str):
        _no_control(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_control(str(key))
            _check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth + 1)


class _Settings(BaseModel):
    @field_validator("settings", check_fields=False)
    @classmethod
    def _clean_settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_json(value)
        return value


class FeedIn(_Settings):
    """A new feed. The kind's settings are checked by the kind's own schema; secrets are encrypted at rest."""

    model_config = ConfigDict(extra="forbid")

    code: Text = Field(max_length=64, description="Lower-case letters, digits, underscores, e.g. hcc_igate")
    agency: Text = Field(max_length=64, description="The agency that supplies the feed, e.g. so_y_te")
    name: Text = Field(default="", max_length=255)
    description: Text = Field(default="", max_length=5000)
    kind: Text = Field(default="push", max_length=32, description="push, http_pull, spreadsheet, mqtt …")
    indicators: list[Annotated[Text, Field(max_length=80)]] = Field(default_factory=list, max_length=500)
    settings: dict[str, Any] = Field(default_factory=dict, description="The kind's settings, secrets included")
    cadence: Text = Field(default="", max_length=64, description='e.g. "daily by 17:00", "hằng tháng trước ngày 5"')
    grace_minutes: int = Field(default=0, description="Minutes after the deadline before the feed counts as late")
    coverage: Text = Field(default="province", max_length=16, description="province, communes or list")
    subjects: list[Annotated[Text, Field(max_length=40)]] = Field(default_factory=list, max_length=5000)
    poll_seconds: int = Field(default=0, description="Scheduled kinds: seconds between pulls (0 = not pulled)")
    paused: bool = False


class FeedPatch(_Settings):
    """Changes to a feed: only the fields sent change. A secret sent empty or as the mask keeps its value.

    Other fields (code, agency, kind) are kept aside and refused with a clear message: they cannot change.
    """

    model_config = ConfigDict(extra="allow")

    name: Text = Field(default="", max_length=255)
    description: Text = Field(default="", max_length=5000)
    indicators: list[Annotated[Text, Field(max_length=80)]] = Field(default_factory=list, max_length=500)
    settings: dict[str, Any] = Field(default_factory=dict)
    cadence: Text = Field(default="", max_length=64)
    grace_minutes: int = 0
    coverage: Text = Field(default="province", max_length=16)
    subjects: list[Annotated[Text, Field(max_length=40)]] = Field(default_factory=list, max_length=5000)
    poll_seconds: int = 0
    paused: bool = False


class RunErrorOut(BaseModel):
    code: str
    retryable: bool | None = Field(description="Whether trying again can help (a timeout may pass, a bad password not)")
    message_vi: str
    message_en: str


class RunOut(BaseModel):
    """One run of a feed's connector: a pull, an upload, a pushed batch."""

    id: int
    trigger: str = Field(description="schedule, manual, upload, push, message")
    started_at: str
    finished_at: str | None
    status: str = Field(description="running, ok, partial, failed")
    attempts: int
    received: int
    accepted: int
    rejected: int
    batch_id: int | None
    error: RunErrorOut | None
    details: dict[str, Any]


class LastRunOut(BaseModel):
    trigger: str
    status: str
    started_at: str
    finished_at: str | None
    error_code: str


class FeedOut(BaseModel):
    """A feed as shown: its settings with every secret masked, its schedule in words, its last run."""

    code: str
    name: str
    description: str
    agency: str | None
    agency_name: str
    kind: str
    scheduled: bool = Field(description="Pulled on a schedule (and may be run now)")
    settings: dict[str, Any] = Field(description="A set secret shows as ••••••, an unset one as null")
    secrets_set: list[str]
    cadence: str = Field(description="Canonical, e.g. daily by 17:00")
    cadence_text: str = Field(description="In the reader's language, e.g. hằng ngày trước 17:00")
    grace_minutes: int
    coverage: str
    subjects: list[str]
    indicators: list[str]
    poll_seconds: int
    next_run_at: str | None
    paused: bool
    last_run: LastRunOut | None
    created_at: str
    updated_at: str | None


class FeedList(BaseModel):
    items: list[FeedOut]


class RunList(BaseModel):
    feed: str
    items: list[RunOut]
