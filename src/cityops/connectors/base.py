"""What every connector shares: the context it gets of its feed, what a fetch returns, the one error type."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, SecretStr

from cityops.i18n import both
from cityops.observations.service import Rejection


class ConnectorError(Exception):
    """Anything a connector cannot do, with a code, a message in Vietnamese and English, and whether retrying can
    help (a timeout or a 503 may pass; a wrong password or a changed schema will not)."""

    def __init__(self, code: str, /, *, retryable: bool, **params: Any) -> None:
        self.code = code
        self.retryable = retryable
        self.params = params
        self.message_vi, self.message_en = both(f"connector.error.{code}", **params)
        super().__init__(f"{code}: {self.message_en}")


@dataclass
class FeedContext:
    """What a connector knows of its feed: identity, validated settings (secrets included), and its cursor."""

    id: int
    code: str
    agency_id: int
    kind: str
    settings: BaseModel
    cursor: str = ""
    indicator_codes: list[str] = field(default_factory=list)
    subject_codes: list[str] = field(default_factory=list)
    period_type: str = ""


@dataclass
class Fetched:
    """What one fetch brought: observation items (as the data-sharing API takes them), the records that could not
    be mapped (their rejections), and the cursor to keep once the items are stored."""

    items: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    cursor: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class Connector:
    """A kind of connector. Subclasses set `kind` and `settings_model`, and implement what their kind does:
    scheduled kinds implement `fetch`; long-running kinds (mqtt) are started by the worker's supervisor."""

    kind: ClassVar[str]
    settings_model: ClassVar[type[BaseModel]]
    scheduled: ClassVar[bool] = False  # pulled by the worker every `poll_seconds`
    long_running: ClassVar[bool] = False  # held open by one worker (a subscription)

    def __init__(self, feed: FeedContext) -> None:
        self.feed = feed

    def fetch(self) -> Fetched:
        """Fetch new data once (scheduled kinds)."""
        raise ConnectorError("not_pullable", retryable=False, kind=self.kind)


def secret_fields(model: type[BaseModel]) -> list[str]:
    """The names of a settings model's secret fields (typed SecretStr)."""
    return [
        name
        for name, info in model.model_fields.items()
        if info.annotation is SecretStr or info.annotation == SecretStr | None
    ]
