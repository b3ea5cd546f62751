"""Settings of a push feed: nothing to configure — the agency's key and the feed's indicators say it all."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class PushSettings(BaseModel):
    """A push feed takes no settings."""

    model_config = ConfigDict(extra="forbid")
