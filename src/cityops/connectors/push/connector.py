"""The push kind: data arrives through POST /api/v1/observations; each batch is logged as a run of the feed."""

from __future__ import annotations

from cityops.connectors import register
from cityops.connectors.base import Connector
from cityops.connectors.push.schema import PushSettings


@register
class PushConnector(Connector):
    """Nothing to fetch: the agency's system sends."""

    kind = "push"
    settings_model = PushSettings
