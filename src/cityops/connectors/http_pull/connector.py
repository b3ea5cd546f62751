"""The http_pull kind: a scheduled GET of JSON from an agency's REST endpoint (LGSP / iGate style).

One fetch:
1. builds the request from the feed's settings: its authentication headers, query parameters, and the "since"
   cursor kept from the last stored run (or `since_start` the first time);
2. GETs every page (client.fetch_pages), the answer's records found by the mapping's `records` path;
3. maps each page's records to observation items (mapping.apply): a record that cannot be read becomes a
   rejection, the others are kept;
4. returns the items, the rejections and the new cursor — the largest `cursor_path` value seen, which the runner
   keeps only once the batch is stored.

A failure of the protocol (PullError) becomes a ConnectorError with the same code; a document without its list of
records is `schema_changed`.
"""

from __future__ import annotations

import math
from datetime import datetime
from functools import partial
from typing import Any

from cityops import __version__
from cityops.clock import LOCAL_TZ
from cityops.connectors import register
from cityops.connectors.base import Connector, ConnectorError, Fetched
from cityops.connectors.http_pull.client import Paging, PullError, PullRequest, fetch_pages
from cityops.connectors.http_pull.schema import HttpPullSettings
from cityops.connectors.mapping import MISSING, MappingFailed, apply, dig, records_of
from cityops.observations.service import Rejection

USER_AGENT = f"cityops/{__version__} (http_pull)"


@register
class HttpPullConnector(Connector):
    """Scheduled GET of JSON from a REST endpoint."""

    kind = "http_pull"
    settings_model = HttpPullSettings
    scheduled = True

    @property
    def settings(self) -> HttpPullSettings:
        settings = self.feed.settings
        assert isinstance(settings, HttpPullSettings)
        return settings

    def fetch(self) -> Fetched:
        """Fetch every page once; ConnectorError when the endpoint cannot be read."""
        settings = self.settings
        since = self.feed.cursor or settings.since_start
        next_link_of = partial(dig, path=settings.next_path) if settings.paging == "next_link" else None
        items: list[dict[str, Any]] = []
        rejected: list[Rejection] = []
        cursor_values: list[Any] = []
        records = pages = 0
        try:
            for page in fetch_pages(request_of(settings, since), partial(records_of, settings.mapping), next_link_of):
                pages += 1
                page_items, page_rejected = apply(settings.mapping, page.document, first_index=records + 1)
                items.extend(page_items)
                rejected.extend(page_rejected)
                records += len(page.records)
                if settings.cursor_path:
                    cursor_values.extend(dig(record, settings.cursor_path) for record in page.records)
        except PullError as exc:
            raise ConnectorError(exc.code, retryable=exc.retryable, **exc.details) from exc
        except MappingFailed as exc:
            raise ConnectorError("schema_changed", retryable=False, reason=str(exc)[:200]) from exc
        cursor = newest([since, *cursor_values]) if settings.cursor_path else None
        details: dict[str, Any] = {"pages": pages, "records": records}
        if settings.since_param:
            details.update(since=since or None, cursor=cursor or None)
        return Fetched(items, rejected, cursor if cursor and cursor != self.feed.cursor else None, details)


def request_of(settings: HttpPullSettings, since: str) -> PullRequest:
    """The GET of a feed's settings, with the cursor to send."""
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **settings.headers}
    token = settings.token.get_secret_value() if settings.token is not None else ""
    if settings.auth == "bearer":
        headers["Authorization"] = f"Bearer {token.strip()}"
    elif settings.auth == "header":
        headers[settings.auth_header] = token
    params = dict(settings.params)
    if settings.since_param and since:
        params[settings.since_param] = since
    return PullRequest(
        url=settings.url,
        headers=headers,
        params=params,
        basic_auth=(settings.username, token) if settings.auth == "basic" else None,
        timeout_seconds=settings.timeout_seconds,
        paging=Paging(
            mode=settings.paging,
            page_param=settings.page_param,
            size_param=settings.size_param,
            page_size=settings.page_size,
            first_page=settings.first_page,
            offset_param=settings.offset_param,
            max_pages=settings.max_pages,
        ),
    )


def _order(value: Any) -> tuple[int, Any] | None:
    """How a cursor value sorts: numbers as numbers, moments as moments, other texts as texts."""
    if value is MISSING or value is None or isinstance(value, bool | dict | list):
        return None
    if isinstance(value, int | float):
        return (0, float(value)) if math.isfinite(value) else None
    text = str(value).strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return (0, number) if math.isfinite(number) else None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return (2, text)
    if moment.tzinfo is None:  # a moment without an offset is local time
        moment = moment.replace(tzinfo=LOCAL_TZ)
    return (1, moment.timestamp())


def newest(values: list[Any]) -> str:
    """The largest of the cursor values (as the source wrote it); "" when there is none."""
    best: tuple[tuple[int, Any], Any] | None = None
    for value in values:
        order = _order(value)
        if order is not None and (best is None or order > best[0]):
            best = (order, value)
    if best is None:
        return ""
    value = best[1]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
